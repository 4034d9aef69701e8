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
                        int64_t numLayers, int64_t width, Type elementType) {
  if (numLayers <= 0)
    return emitError() << "latent cache num_layers (" << numLayers
                       << ") must be positive";
  if (width <= 0)
    return emitError() << "latent cache width (" << width
                       << ") must be positive";
  if (!isa<Float32Type, BFloat16Type, Float16Type>(elementType))
    return emitError() << "latent cache element type must be f32, bf16 or "
                          "f16, got "
                       << elementType;
  return success();
}

LogicalResult PagedLatentCacheType::verify(
    function_ref<InFlightDiagnostic()> emitError, int64_t numLayers,
    int64_t width, Type elementType, int64_t pageSize) {
  if (failed(LatentCacheType::verify(emitError, numLayers, width,
                                     elementType)))
    return failure();
  // The runtime's page pool, its block tables and the GPU kernels' tiling
  // all assume FlashMLA's 64-token pages.
  if (pageSize != 64)
    return emitError() << "paged latent cache page_size (" << pageSize
                       << ") must be 64";
  return success();
}
