//===- DSVerifyUtils.h - shape checks shared by the verifiers ---*- C++ -*-===//
#ifndef DS_DSVERIFYUTILS_H
#define DS_DSVERIFYUTILS_H

#include "ds/DSDialect.h"
#include "llvm/ADT/STLExtras.h"

namespace mlir::ds::detail {

inline std::string shapeString(ArrayRef<int64_t> shape) {
  std::string s = "[";
  llvm::raw_string_ostream os(s);
  llvm::interleave(
      shape, os,
      [&](int64_t d) {
        if (ShapedType::isDynamic(d))
          os << "?";
        else
          os << d;
      },
      ", ");
  os << "]";
  return s;
}

/// `value` must be a ranked tensor of exactly `expected` (dynamic entries in
/// `expected` accept any size).
inline LogicalResult expectShape(Operation *op, StringRef what, Value value,
                          ArrayRef<int64_t> expected) {
  auto type = cast<RankedTensorType>(value.getType());
  bool ok = type.getRank() == static_cast<int64_t>(expected.size());
  for (auto [got, want] : llvm::zip(type.getShape(), expected))
    ok &= ShapedType::isDynamic(want) || got == want;
  if (ok)
    return success();
  return op->emitOpError() << what << " must have shape "
                           << shapeString(expected) << ", got "
                           << shapeString(type.getShape());
}

/// Activations are [tokens, features] with a static feature size.
inline FailureOr<int64_t> featureSize(Operation *op, StringRef what, Value value) {
  auto type = cast<RankedTensorType>(value.getType());
  if (type.getRank() != 2 || type.isDynamicDim(1))
    return op->emitOpError()
           << what << " must be [tokens, features] with static features, got "
           << shapeString(type.getShape());
  return type.getDimSize(1);
}

inline LogicalResult sameTokens(Operation *op, Value in, Value out) {
  int64_t a = cast<RankedTensorType>(in.getType()).getDimSize(0);
  int64_t b = cast<RankedTensorType>(out.getType()).getDimSize(0);
  if (ShapedType::isDynamic(a) || ShapedType::isDynamic(b) || a == b)
    return success();
  return op->emitOpError() << "result has " << b
                           << " tokens but the input has " << a;
}

inline constexpr int64_t kDyn = ShapedType::kDynamic;

/// num_layers and width of a contiguous or paged latent cache type.
struct CacheShape {
  int64_t numLayers, width;
  bool paged;
};
inline CacheShape cacheShape(Type t) {
  if (auto p = dyn_cast<PagedLatentCacheType>(t))
    return {p.getNumLayers(), p.getWidth(), true};
  if (auto p = dyn_cast<PagedKVCacheType>(t))
    return {p.getNumLayers(), p.getRowWidth(), true};
  auto c = cast<LatentCacheType>(t);
  return {c.getNumLayers(), c.getWidth(), false};
}

/// A ragged batch's sequence operands: query_start [S + 1] and block tables
/// [S, pages]; S must agree where both are static.
inline LogicalResult checkRaggedBatch(Operation *op, Value queryStart,
                                      Value blockTables) {
  auto qs = cast<RankedTensorType>(queryStart.getType());
  auto bt = cast<RankedTensorType>(blockTables.getType());
  if (!qs.isDynamicDim(0) && qs.getDimSize(0) < 2)
    return op->emitOpError() << "query_start must hold at least 2 entries "
                                "(one sequence), got "
                             << qs.getDimSize(0);
  if (!qs.isDynamicDim(0) && !bt.isDynamicDim(0) &&
      bt.getDimSize(0) != qs.getDimSize(0) - 1)
    return op->emitOpError()
           << "block_tables rows (" << bt.getDimSize(0)
           << ") must be one per sequence (query_start has "
           << qs.getDimSize(0) << " entries)";
  return success();
}

/// A per-head K/V cache against the heads and widths of the op using it
/// (DSPerHeadCacheOps.cpp).
LogicalResult checkPerHeadCache(Operation *op, PagedKVCacheType cache,
                                int64_t heads, int64_t nope, int64_t rope,
                                int64_t value, int64_t layer);

inline int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

} // namespace mlir::ds::detail

#endif // DS_DSVERIFYUTILS_H
