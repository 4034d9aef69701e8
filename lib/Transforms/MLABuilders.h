//===- MLABuilders.h - IR builders shared by the MLA rewrites ---*- C++ -*-===//
//
// The small tensor-level pieces ds-absorb-mla's rewrites (AbsorbMLA.cpp, and
// AbsorbMLAPerHead.cpp for the per-head K/V cache) build MLA from.
//
//===----------------------------------------------------------------------===//
#ifndef DS_TRANSFORMS_MLABUILDERS_H
#define DS_TRANSFORMS_MLABUILDERS_H

#include "ds/DSDialect.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"

namespace mlir::ds::mla {

/// DeepSeek normalises q_a and the latent with eps 1e-6 whatever the config
/// says for the layer norms (SEMANTICS.md, known traps).
inline constexpr double kLatentNormEps = 1e-6;

/// Columns [offset, offset + width) of a [tokens, ...] tensor: the last
/// dimension is sliced, the others are kept whole.
inline Value sliceLast(OpBuilder &b, Location loc, Value v, int64_t offset,
                       int64_t width) {
  auto t = cast<RankedTensorType>(v.getType());
  int64_t rank = t.getRank();
  SmallVector<OpFoldResult> offsets(rank, b.getIndexAttr(0));
  SmallVector<OpFoldResult> sizes, strides(rank, b.getIndexAttr(1));
  for (int64_t i = 0; i < rank - 1; ++i)
    sizes.push_back(
        t.isDynamicDim(i)
            ? OpFoldResult(tensor::DimOp::create(b, loc, v, i).getResult())
            : OpFoldResult(b.getIndexAttr(t.getDimSize(i))));
  sizes.push_back(b.getIndexAttr(width));
  offsets.back() = b.getIndexAttr(offset);
  SmallVector<int64_t> shape(t.getShape());
  shape.back() = width;
  auto type = RankedTensorType::get(shape, t.getElementType());
  return tensor::ExtractSliceOp::create(b, loc, type, v, offsets, sizes,
                                        strides);
}

inline Value linear(OpBuilder &b, Location loc, Value x, Value w) {
  auto xt = cast<RankedTensorType>(x.getType());
  auto wt = cast<RankedTensorType>(w.getType());
  auto type = RankedTensorType::get({xt.getDimSize(0), wt.getDimSize(0)},
                                    xt.getElementType());
  return LinearOp::create(b, loc, type, x, w);
}

inline Value rmsNorm(OpBuilder &b, Location loc, Value x, Value w, double eps) {
  return RMSNormOp::create(b, loc, x.getType(), x, w, b.getF64FloatAttr(eps));
}

/// [tokens, heads * width] <-> [tokens, heads, width].
inline Value splitHeads(OpBuilder &b, Location loc, Value v, int64_t heads) {
  auto t = cast<RankedTensorType>(v.getType());
  auto type = RankedTensorType::get(
      {t.getDimSize(0), heads, t.getDimSize(1) / heads}, t.getElementType());
  SmallVector<OpFoldResult> outShape;
  outShape.push_back(
      t.isDynamicDim(0)
          ? OpFoldResult(tensor::DimOp::create(b, loc, v, 0).getResult())
          : OpFoldResult(b.getIndexAttr(t.getDimSize(0))));
  outShape.push_back(b.getIndexAttr(heads));
  outShape.push_back(b.getIndexAttr(t.getDimSize(1) / heads));
  return tensor::ExpandShapeOp::create(
      b, loc, type, v, ArrayRef<ReassociationIndices>{{0}, {1, 2}}, outShape);
}

inline Value mergeHeads(OpBuilder &b, Location loc, Value v) {
  return tensor::CollapseShapeOp::create(
      b, loc, v, ArrayRef<ReassociationIndices>{{0}, {1, 2}});
}

/// What every MLA form computes first from a layer's input: the queries
/// [tokens, heads, nope] and roped [tokens, heads, rope], and the new
/// tokens' cache rows, the normalised latent [tokens, kv_lora_rank] and the
/// roped shared key [tokens, rope].
struct MLAInputs {
  Value qNope, qPe, latent, kPe;
};

inline MLAInputs projectInputs(OpBuilder &b, Location loc, MLAOp op) {
  MLAConfigAttr cfg = op.getConfig();
  int64_t h = cfg.getNumHeads(), dn = cfg.getQkNopeHeadDim(),
          dr = cfg.getQkRopeHeadDim(), dc = cfg.getKvLoraRank();
  Value x = op.getInput(), pos = op.getPositions();
  Value q;
  if (cfg.getQLoraRank()) {
    Value cq = linear(b, loc, x, op.getQAProj());
    cq = rmsNorm(b, loc, cq, op.getQANorm(), kLatentNormEps);
    q = linear(b, loc, cq, op.getQBProj());
  } else {
    q = linear(b, loc, x, op.getQProj());
  }
  Value q3 = splitHeads(b, loc, q, h);
  MLAInputs in;
  in.qNope = sliceLast(b, loc, q3, 0, dn);
  Value qPe = sliceLast(b, loc, q3, dn, dr);
  in.qPe = RopeOp::create(b, loc, qPe.getType(), qPe, pos, cfg);
  Value kv = linear(b, loc, x, op.getKvAProj());
  in.latent = rmsNorm(b, loc, sliceLast(b, loc, kv, 0, dc), op.getKvANorm(),
                      kLatentNormEps);
  Value kPe = sliceLast(b, loc, kv, dc, dr);
  in.kPe = RopeOp::create(b, loc, kPe.getType(), kPe, pos, cfg);
  return in;
}

} // namespace mlir::ds::mla

#endif // DS_TRANSFORMS_MLABUILDERS_H
