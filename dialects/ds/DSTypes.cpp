//===- DSTypes.cpp - ds types ---------------------------------------------===//
#include "ds/DSDialect.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::ds;

#define GET_TYPEDEF_CLASSES
#include "ds/DSTypes.cpp.inc"

void DSDialect::registerTypes() {
  addTypes<
#define GET_TYPEDEF_LIST
#include "ds/DSTypes.cpp.inc"
      >();
}

LogicalResult
LatentCacheType::verify(function_ref<InFlightDiagnostic()> emitError,
                        int64_t numLayers, int64_t width, Type elementType,
                        int64_t ropeWidth, int64_t scaleGroup) {
  if (numLayers <= 0)
    return emitError() << "latent cache num_layers (" << numLayers
                       << ") must be positive";
  if (width <= 0)
    return emitError() << "latent cache width (" << width
                       << ") must be positive";
  if (isa<Float8E4M3FNType>(elementType)) {
    if (ropeWidth <= 0 || ropeWidth >= width)
      return emitError() << "fp8 latent cache rope_width (" << ropeWidth
                         << ") must be in (0, width = " << width << ")";
    if (scaleGroup <= 0)
      return emitError() << "fp8 latent cache scale_group (" << scaleGroup
                         << ") must be positive";
    // Groups never straddle the latent's end, so every scale covers a full
    // group and a row's byte layout follows from the type alone.
    if ((width - ropeWidth) % scaleGroup)
      return emitError() << "fp8 latent cache: the latent width (width - "
                            "rope_width = "
                         << width - ropeWidth
                         << ") must be a multiple of scale_group ("
                         << scaleGroup << ")";
    // Rows keep their f32 scales 4-byte aligned (one store each: see
    // CacheCodec.h) and their bf16 rope values 2-byte aligned.
    if (scaleGroup % 4 || ropeWidth % 2)
      return emitError() << "fp8 latent cache: scale_group (" << scaleGroup
                         << ") must be a multiple of 4 and rope_width ("
                         << ropeWidth
                         << ") even, so that every row's f32 scales are "
                            "4-byte aligned";
    return success();
  }
  if (!isa<Float32Type, BFloat16Type, Float16Type>(elementType))
    return emitError() << "latent cache element type must be f32, bf16, f16 "
                          "or f8E4M3FN, got "
                       << elementType;
  if (ropeWidth || scaleGroup)
    return emitError() << "latent cache rope_width and scale_group are for "
                          "the f8E4M3FN layout only, got element type "
                       << elementType;
  return success();
}

int64_t LatentCacheType::getRowBytes() const {
  if (isFp8()) {
    int64_t latent = getLatentWidth();
    return latent + 4 * (latent / getScaleGroup()) + 2 * getRopeWidth();
  }
  return getWidth() * (getElementType().getIntOrFloatBitWidth() / 8);
}

LogicalResult
PagedLatentCacheType::verify(function_ref<InFlightDiagnostic()> emitError,
                             int64_t numLayers, int64_t width, Type elementType,
                             int64_t pageSize, int64_t ropeWidth,
                             int64_t scaleGroup) {
  // Rows are !ds.latent_cache rows (the fp8 layout included).
  if (failed(LatentCacheType::verify(emitError, numLayers, width, elementType,
                                     ropeWidth, scaleGroup)))
    return failure();
  // The runtime's page pool, its block tables and the GPU kernels' tiling
  // all assume FlashMLA's 64-token pages.
  if (pageSize != 64)
    return emitError() << "paged latent cache page_size (" << pageSize
                       << ") must be 64";
  return success();
}
