//===- DSPerHeadCacheOps.cpp - per-head K/V cache type and op verifiers ---===//
#include "DSVerifyUtils.h"
#include "ds/DSDialect.h"

using namespace mlir;
using namespace mlir::ds;
using namespace mlir::ds::detail;

LogicalResult
PagedKVCacheType::verify(function_ref<InFlightDiagnostic()> emitError,
                         int64_t numLayers, int64_t numHeads, int64_t keyWidth,
                         int64_t valueWidth, Type elementType,
                         int64_t pageSize) {
  std::pair<const char *, int64_t> sizes[] = {{"num_layers", numLayers},
                                              {"num_heads", numHeads},
                                              {"key_width", keyWidth},
                                              {"value_width", valueWidth}};
  for (auto [name, v] : sizes)
    if (v <= 0)
      return emitError() << "paged per-head K/V cache " << name << " (" << v
                         << ") must be positive";
  if (isa<Float8E4M3FNType>(elementType))
    return emitError() << "paged per-head K/V cache: fp8 elements are not "
                          "supported (the fp8 codec is the latent layout's)";
  if (!isa<Float32Type, BFloat16Type, Float16Type>(elementType))
    return emitError() << "paged per-head K/V cache element type must be "
                          "f32, bf16 or f16, got "
                       << elementType;
  // The runtime's page pool and block tables assume FlashMLA's 64 tokens.
  if (pageSize != 64)
    return emitError() << "paged per-head K/V cache page_size (" << pageSize
                       << ") must be 64";
  return success();
}

LogicalResult mlir::ds::detail::checkPerHeadCache(Operation *op,
                                                  PagedKVCacheType cache,
                                                  int64_t heads, int64_t nope,
                                                  int64_t rope, int64_t value,
                                                  int64_t layer) {
  if (cache.getNumHeads() != heads || cache.getKeyWidth() != nope + rope ||
      cache.getValueWidth() != value)
    return op->emitOpError()
           << "per-head K/V cache (num_heads " << cache.getNumHeads()
           << ", key_width " << cache.getKeyWidth() << ", value_width "
           << cache.getValueWidth() << ") must hold " << heads
           << " heads of key " << nope << " + " << rope << " and value "
           << value;
  if (layer >= cache.getNumLayers())
    return op->emitOpError()
           << "layer (" << layer << ") must be < the cache's num_layers ("
           << cache.getNumLayers() << ")";
  return success();
}

static RankedTensorType rt(Value v) {
  return cast<RankedTensorType>(v.getType());
}

LogicalResult PagedKVWriteOp::verify() {
  auto kv = rt(getKv()), kpe = rt(getRopeKey());
  if (kv.getRank() != 3 || kpe.getRank() != 2)
    return emitOpError() << "kv must be [tokens, heads, nope + v] and the "
                            "rope key [tokens, rope]";
  auto cache = getCache().getType();
  int64_t dr = kpe.getDimSize(1), dv = cache.getValueWidth();
  int64_t dn = kv.getDimSize(2) - dv;
  if (dn <= 0)
    return emitOpError() << "kv width (" << kv.getDimSize(2)
                         << ") must exceed the cache's value_width (" << dv
                         << ")";
  if (failed(checkPerHeadCache(*this, cache, kv.getDimSize(1), dn, dr, dv,
                               getLayer())))
    return failure();
  return checkRaggedBatch(*this, getQueryStart(), getBlockTables());
}

LogicalResult PagedKVAttentionOp::verify() {
  auto qn = rt(getQNope()), qr = rt(getQRope());
  if (qn.getRank() != 3 || qr.getRank() != 3)
    return emitOpError() << "queries must be [tokens, heads, dim]";
  auto cache = getCache().getType();
  int64_t h = qn.getDimSize(1);
  if (qr.getDimSize(1) != h)
    return emitOpError() << "q_rope heads (" << qr.getDimSize(1)
                         << ") must equal q_nope heads (" << h << ")";
  if (failed(checkPerHeadCache(*this, cache, h, qn.getDimSize(2),
                               qr.getDimSize(2), cache.getValueWidth(),
                               getLayer())) ||
      failed(checkRaggedBatch(*this, getQueryStart(), getBlockTables())))
    return failure();
  return expectShape(*this, "result", getResult(),
                     {kDyn, h, cache.getValueWidth()});
}
