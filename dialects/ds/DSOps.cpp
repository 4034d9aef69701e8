//===- DSOps.cpp - ds op verifiers ----------------------------------------===//
//
// Verifiers are the first line of defence against bad input: every shape or
// configuration the semantics forbid is reported here with the expected and
// the observed values, before any pass touches the op.
//
//===----------------------------------------------------------------------===//
#include "ds/DSDialect.h"
#include "DSVerifyUtils.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"
#include "llvm/ADT/STLExtras.h"

using namespace mlir;
using namespace mlir::ds;

#define GET_OP_CLASSES
#include "ds/DSOps.cpp.inc"

using namespace mlir::ds::detail;

//===----------------------------------------------------------------------===//
// Weights
//===----------------------------------------------------------------------===//

/// `split = [dim, parts]` names a dim of `type` and at least one part.
static LogicalResult verifySplit(Operation *op, StringRef name,
                                 std::optional<ArrayRef<int64_t>> split,
                                 RankedTensorType type) {
  if (!split)
    return success();
  if (split->size() != 2)
    return op->emitOpError() << "weight '" << name
                             << "': split must be [dim, parts], got "
                             << split->size() << " values";
  int64_t dim = (*split)[0], parts = (*split)[1];
  if (dim < 0 || dim >= type.getRank())
    return op->emitOpError() << "weight '" << name << "': split dim " << dim
                             << " must be < rank " << type.getRank();
  if (parts < 1)
    return op->emitOpError() << "weight '" << name << "': split parts ("
                             << parts << ") must be positive";
  return success();
}

static SmallVector<int64_t>
fullShapeOf(RankedTensorType type, std::optional<ArrayRef<int64_t>> split) {
  SmallVector<int64_t> shape(type.getShape());
  if (split && split->size() == 2)
    shape[(*split)[0]] *= (*split)[1];
  return shape;
}

LogicalResult WeightOp::verify() {
  if (getName().empty())
    return emitOpError() << "weight name must not be empty";
  if (!getResult().getType().hasStaticShape())
    return emitOpError() << "weight '" << getName()
                         << "' must have a static shape";
  return verifySplit(*this, getName(), getSplit(), getResult().getType());
}

SmallVector<int64_t> WeightOp::getFullShape() {
  return fullShapeOf(getResult().getType(), getSplit());
}

SmallVector<int64_t> StackedWeightOp::getFullShape() {
  return fullShapeOf(getResult().getType(), getSplit());
}

LogicalResult StackedWeightOp::verify() {
  StringRef pattern = getPattern();
  if (pattern.count('*') != 1)
    return emitOpError() << "pattern '" << pattern
                         << "' must contain exactly one '*' (the member index)";
  auto type = getResult().getType();
  if (!type.hasStaticShape() || type.getRank() < 2)
    return emitOpError() << "stacked weight '" << pattern
                         << "' must have a static shape of rank >= 2";
  return verifySplit(*this, pattern, getSplit(), type);
}

std::string StackedWeightOp::getMemberName(int64_t index) {
  auto [head, tail] = getPattern().split('*');
  return (head + std::to_string(index) + tail).str();
}

LogicalResult DequantizeOp::verify() {
  auto w = getWeight().getType();
  auto r = getResult().getType();
  if (w.getShape() != r.getShape())
    return emitOpError() << "result shape " << shapeString(r.getShape())
                         << " must equal the weight shape "
                         << shapeString(w.getShape());
  if (w.getRank() < 2 || !w.hasStaticShape())
    return emitOpError() << "weight must have a static shape of rank >= 2";
  int64_t b = getBlockSize();
  SmallVector<int64_t> expected(w.getShape());
  int64_t rank = expected.size();
  expected[rank - 2] = ceilDiv(expected[rank - 2], b);
  expected[rank - 1] = ceilDiv(expected[rank - 1], b);
  return expectShape(*this, "scale_inv", getScaleInv(), expected);
}

LogicalResult ConcatWeightsOp::verify() {
  auto a = getFirst().getType(), b = getSecond().getType();
  auto r = getResult().getType();
  // `second` one rank lower is appended as one more slice (a shared expert
  // after the routed ones).
  bool slice = b.getRank() + 1 == a.getRank();
  if (a.getRank() < 1 ||
      (slice ? a.getShape().drop_front() != b.getShape()
             : a.getRank() != b.getRank() ||
                   a.getShape().drop_front() != b.getShape().drop_front()))
    return emitOpError() << "weights " << shapeString(a.getShape()) << " and "
                         << shapeString(b.getShape())
                         << " differ beyond their first dimension";
  SmallVector<int64_t> expected(a.getShape());
  expected[0] += slice ? 1 : b.getDimSize(0);
  if (failed(expectShape(*this, "result", getResult(), expected)))
    return failure();
  if (a.getElementType() != b.getElementType() ||
      r.getElementType() != a.getElementType())
    return emitOpError() << "element types must match";
  return success();
}

//===----------------------------------------------------------------------===//
// Dense building blocks
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::verify() {
  auto table = getTable().getType();
  if (table.getRank() != 2)
    return emitOpError() << "table must be [vocab, hidden], got "
                         << shapeString(table.getShape());
  if (failed(expectShape(*this, "result", getResult(),
                         {kDyn, table.getDimSize(1)})))
    return failure();
  return sameTokens(*this, getIds(), getResult());
}

static LogicalResult verifyEps(Operation *op, APFloat eps) {
  if (eps.convertToDouble() > 0)
    return success();
  return op->emitOpError() << "eps (" << formatF64(eps.convertToDouble())
                           << ") must be positive";
}

LogicalResult RMSNormOp::verify() {
  if (failed(verifyEps(*this, getEps())))
    return failure();
  FailureOr<int64_t> d = featureSize(*this, "input", getInput());
  if (failed(d) || failed(expectShape(*this, "weight", getWeight(), {*d})))
    return failure();
  if (getInput().getType() != getResult().getType())
    return emitOpError() << "result type must equal the input type";
  return success();
}

LogicalResult LinearOp::verify() {
  FailureOr<int64_t> in = featureSize(*this, "input", getInput());
  if (failed(in))
    return failure();
  auto w = getWeight().getType();
  if (w.getRank() != 2)
    return emitOpError() << "weight must be [out, in], got "
                         << shapeString(w.getShape());
  if (w.getDimSize(1) != *in)
    return emitOpError() << "weight in-features (" << w.getDimSize(1)
                         << ") must equal the input features (" << *in << ")";
  if (failed(expectShape(*this, "result", getResult(),
                         {kDyn, w.getDimSize(0)})))
    return failure();
  return sameTokens(*this, getInput(), getResult());
}

LogicalResult MLPOp::verify() {
  FailureOr<int64_t> d = featureSize(*this, "input", getInput());
  if (failed(d))
    return failure();
  auto g = getGate().getType();
  if (g.getRank() != 2 || g.getDimSize(1) != *d)
    return emitOpError() << "gate must be [intermediate, " << *d << "], got "
                         << shapeString(g.getShape());
  int64_t f = g.getDimSize(0);
  if (failed(expectShape(*this, "up", getUp(), {f, *d})) ||
      failed(expectShape(*this, "down", getDown(), {*d, f})) ||
      failed(expectShape(*this, "result", getResult(), {kDyn, *d})))
    return failure();
  return sameTokens(*this, getInput(), getResult());
}

LogicalResult LMHeadOp::verify() {
  if (failed(verifyEps(*this, getEps())))
    return failure();
  FailureOr<int64_t> d = featureSize(*this, "input", getInput());
  if (failed(d) || failed(expectShape(*this, "norm", getNorm(), {*d})))
    return failure();
  auto head = getHead().getType();
  if (head.getRank() != 2 || head.getDimSize(1) != *d)
    return emitOpError() << "head must be [vocab, " << *d << "], got "
                         << shapeString(head.getShape());
  if (failed(expectShape(*this, "result", getResult(),
                         {kDyn, head.getDimSize(0)})))
    return failure();
  return sameTokens(*this, getInput(), getResult());
}

LogicalResult MTPProjectOp::verify() {
  if (failed(verifyEps(*this, getEps())))
    return failure();
  FailureOr<int64_t> d = featureSize(*this, "embedding", getEmbedding());
  if (failed(d))
    return failure();
  // Static token counts must agree; a dynamic one accepts any.
  int64_t t = getEmbedding().getType().getDimSize(0);
  if (failed(expectShape(*this, "hidden", getHidden(), {t, *d})) ||
      failed(expectShape(*this, "positions", getPositions(), {t})) ||
      failed(expectShape(*this, "enorm", getEnorm(), {*d})) ||
      failed(expectShape(*this, "hnorm", getHnorm(), {*d})) ||
      failed(expectShape(*this, "eh_proj", getEhProj(), {*d, 2 * *d})))
    return failure();
  if (getResult().getType() != getEmbedding().getType())
    return emitOpError() << "result type must equal the embedding type";
  return success();
}

//===----------------------------------------------------------------------===//
// MLA
//===----------------------------------------------------------------------===//

LogicalResult MLAOp::verify() {
  MLAConfigAttr cfg = getConfig();
  FailureOr<int64_t> d = featureSize(*this, "input", getInput());
  if (failed(d))
    return failure();
  int64_t h = cfg.getNumHeads(), dn = cfg.getQkNopeHeadDim(),
          dr = cfg.getQkRopeHeadDim(), dv = cfg.getVHeadDim(),
          dc = cfg.getKvLoraRank();

  if (getCache().getType() != getCacheOut().getType())
    return emitOpError() << "cache result type must equal the cache operand";
  CacheShape cache = cacheShape(getCache().getType());
  if (auto kv = dyn_cast<PagedKVCacheType>(getCache().getType())) {
    if (failed(checkPerHeadCache(*this, kv, h, dn, dr, dv, getLayer())))
      return failure();
  } else if (cache.width != dc + dr)
    return emitOpError() << "latent cache width (" << cache.width
                         << ") must equal kv_lora_rank + qk_rope_head_dim ("
                         << dc << " + " << dr << " = " << dc + dr << ")";
  LatentCacheType lc = dyn_cast<LatentCacheType>(getCache().getType());
  if (auto p = dyn_cast<PagedLatentCacheType>(getCache().getType()))
    lc = p.getRowType();
  if (lc && lc.isFp8() && lc.getRopeWidth() != dr)
    return emitOpError() << "fp8 latent cache rope_width ("
                         << lc.getRopeWidth()
                         << ") must equal qk_rope_head_dim (" << dr << ")";
  if (static_cast<int64_t>(getLayer()) >= cache.numLayers)
    return emitOpError() << "layer (" << getLayer()
                         << ") must be < the cache's num_layers ("
                         << cache.numLayers << ")";
  if (cache.paged != static_cast<bool>(getQueryStart()))
    return emitOpError() << (cache.paged
                                 ? "a paged latent cache needs "
                                   "paged(query_start, block_tables)"
                                 : "paged(query_start, block_tables) needs a "
                                   "!ds.paged_latent_cache or "
                                   "!ds.paged_kv_cache");
  if (static_cast<bool>(getQueryStart()) != static_cast<bool>(getBlockTables()))
    return emitOpError() << "query_start and block_tables go together";
  if (cache.paged &&
      failed(checkRaggedBatch(*this, getQueryStart(), getBlockTables())))
    return failure();

  bool hasLora = getQAProj() || getQANorm() || getQBProj();
  if (hasLora && (!getQAProj() || !getQANorm() || !getQBProj()))
    return emitOpError() << "q_a_proj, q_a_norm and q_b_proj go together";
  if (std::optional<int64_t> dq = cfg.getQLoraRank()) {
    if (!hasLora || getQProj())
      return emitOpError() << "q_lora_rank (" << *dq
                           << ") is set: queries need q_a_proj, q_a_norm, "
                              "q_b_proj and no q_proj";
    if (failed(expectShape(*this, "q_a_proj", getQAProj(), {*dq, *d})) ||
        failed(expectShape(*this, "q_a_norm", getQANorm(), {*dq})) ||
        failed(expectShape(*this, "q_b_proj", getQBProj(),
                           {h * (dn + dr), *dq})))
      return failure();
  } else {
    if (hasLora || !getQProj())
      return emitOpError() << "q_lora_rank is absent: queries need q_proj "
                              "and no q_a_proj/q_a_norm/q_b_proj";
    if (failed(expectShape(*this, "q_proj", getQProj(), {h * (dn + dr), *d})))
      return failure();
  }
  if (failed(expectShape(*this, "kv_a_proj", getKvAProj(), {dc + dr, *d})) ||
      failed(expectShape(*this, "kv_a_norm", getKvANorm(), {dc})) ||
      failed(expectShape(*this, "kv_b_proj", getKvBProj(),
                         {h * (dn + dv), dc})) ||
      failed(expectShape(*this, "o_proj", getOProj(), {*d, h * dv})) ||
      failed(expectShape(*this, "result", getResult(), {kDyn, *d})))
    return failure();
  int64_t tokens = getInput().getType().getDimSize(0);
  int64_t positions = getPositions().getType().getDimSize(0);
  if (!ShapedType::isDynamic(tokens) && !ShapedType::isDynamic(positions) &&
      tokens != positions)
    return emitOpError() << "positions (" << positions
                         << ") must have one entry per token (" << tokens
                         << ")";
  return sameTokens(*this, getInput(), getResult());
}

//===----------------------------------------------------------------------===//
// MoE
//===----------------------------------------------------------------------===//

LogicalResult MoEOp::verify() {
  MoEConfigAttr cfg = getConfig();
  FailureOr<int64_t> d = featureSize(*this, "input", getInput());
  if (failed(d))
    return failure();
  int64_t e = cfg.getNumExperts(), f = cfg.getIntermediateSize(),
          ns = cfg.getNSharedExperts();
  if (failed(expectShape(*this, "router", getRouter(), {e, *d})))
    return failure();
  if (cfg.hasBias() && !getBias())
    return emitOpError() << "topk_method noaux_tc needs the router bias "
                            "(e_score_correction_bias)";
  if (!cfg.hasBias() && getBias())
    return emitOpError() << "topk_method "
                         << stringifyTopkMethod(cfg.getTopkMethod())
                         << " takes no router bias";
  if (getBias() && failed(expectShape(*this, "bias", getBias(), {e})))
    return failure();
  // Expert parallelism (ds-partition-model): a rank holds num_experts / W
  // of the routed experts, W dividing num_experts.
  int64_t local = getExpertsGate().getType().getDimSize(0);
  if (local <= 0 || e % local != 0)
    local = e; // not a share: the shape check below names what is expected
  if (failed(expectShape(*this, "experts_gate", getExpertsGate(),
                         {local, f, *d})) ||
      failed(expectShape(*this, "experts_up", getExpertsUp(),
                         {local, f, *d})) ||
      failed(expectShape(*this, "experts_down", getExpertsDown(),
                         {local, *d, f})))
    return failure();
  bool hasShared = getSharedGate() || getSharedUp() || getSharedDown();
  if (hasShared && (!getSharedGate() || !getSharedUp() || !getSharedDown()))
    return emitOpError() << "shared_gate, shared_up and shared_down go "
                            "together";
  if (ns > 0 && !hasShared)
    return emitOpError() << "n_shared_experts (" << ns
                         << ") needs shared expert weights";
  if (ns == 0 && hasShared)
    return emitOpError() << "n_shared_experts is 0 but shared expert weights "
                            "are given";
  // Under expert parallelism the shared experts are split over the ranks
  // (columns/rows) while `f` stays the routed experts' whole width: the
  // shared width is then ns * f / (num_experts / local experts).
  int64_t fs = ns * f / (e / local);
  if (hasShared && (ns * f) % (e / local) != 0)
    return emitOpError() << "shared experts' width (" << ns * f
                         << ") does not split over " << e / local << " ranks";
  if (hasShared &&
      (failed(expectShape(*this, "shared_gate", getSharedGate(), {fs, *d})) ||
       failed(expectShape(*this, "shared_up", getSharedUp(), {fs, *d})) ||
       failed(expectShape(*this, "shared_down", getSharedDown(), {*d, fs}))))
    return failure();
  if (failed(expectShape(*this, "result", getResult(), {kDyn, *d})))
    return failure();
  return sameTokens(*this, getInput(), getResult());
}
