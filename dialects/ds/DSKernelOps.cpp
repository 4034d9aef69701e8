//===- DSKernelOps.cpp - ds kernel-level op verifiers ---------------------===//
#include "DSVerifyUtils.h"
#include "ds/DSDialect.h"

using namespace mlir;
using namespace mlir::ds;
using namespace mlir::ds::detail;

static RankedTensorType rt(Value v) {
  return cast<RankedTensorType>(v.getType());
}

LogicalResult RopeOp::verify() {
  auto t = getInput().getType();
  int64_t dr = getConfig().getQkRopeHeadDim();
  if (t.getRank() < 2 || t.getRank() > 3 || t.getShape().back() != dr)
    return emitOpError() << "input must be [tokens, (heads,) " << dr
                         << "], got " << shapeString(t.getShape());
  return success();
}

/// What ds.cache_write and ds.latent_attention ask of their cache beyond
/// its width: an FP8 cache's rope columns are the op's `dr`, and `layer` is
/// one of its layers.
static LogicalResult verifyCacheLayer(Operation *op, LatentCacheType cache,
                                      int64_t dr, int64_t layer) {
  if (cache.isFp8() && cache.getRopeWidth() != dr)
    return op->emitOpError()
           << "fp8 latent cache rope_width (" << cache.getRopeWidth()
           << ") must equal the rope width (" << dr << ")";
  if (layer >= cache.getNumLayers())
    return op->emitOpError()
           << "layer (" << layer << ") must be < the cache's num_layers ("
           << cache.getNumLayers() << ")";
  return success();
}

LogicalResult CacheWriteOp::verify() {
  auto cache = getCache().getType();
  int64_t dc = rt(getLatent()).getShape().back();
  int64_t dr = rt(getRopeKey()).getShape().back();
  if (dc + dr != cache.getWidth())
    return emitOpError() << "latent (" << dc << ") + rope key (" << dr
                         << ") must fill the cache width ("
                         << cache.getWidth() << ")";
  return verifyCacheLayer(*this, cache, dr, getLayer());
}

LogicalResult LatentAttentionOp::verify() {
  auto ql = rt(getQLatent()), qr = rt(getQRope());
  auto cache = getCache().getType();
  if (ql.getRank() != 3 || qr.getRank() != 3)
    return emitOpError() << "queries must be [tokens, heads, dim]";
  int64_t dc = ql.getDimSize(2), dr = qr.getDimSize(2);
  if (dc + dr != cache.getWidth())
    return emitOpError() << "query widths (" << dc << " + " << dr
                         << ") must equal the cache width ("
                         << cache.getWidth() << ")";
  if (failed(verifyCacheLayer(*this, cache, dr, getLayer())))
    return failure();
  return expectShape(*this, "result", getResult(),
                     {kDyn, ql.getDimSize(1), dc});
}

LogicalResult NaiveAttentionOp::verify() {
  auto qn = rt(getQNope()), qr = rt(getQRope()), out = rt(getResult());
  auto w = rt(getKvBProj());
  auto cache = getCache().getType();
  if (qn.getRank() != 3 || qr.getRank() != 3 || out.getRank() != 3 ||
      w.getRank() != 2)
    return emitOpError() << "queries and result must be [tokens, heads, dim] "
                            "and kv_b_proj 2-D";
  int64_t h = qn.getDimSize(1), dn = qn.getDimSize(2), dr = qr.getDimSize(2),
          dv = out.getDimSize(2), dc = cache.getWidth() - dr;
  if (cache.isFp8() && cache.getRopeWidth() != dr)
    return emitOpError() << "fp8 latent cache rope_width ("
                         << cache.getRopeWidth() << ") must equal the rope "
                         << "width (" << dr << ")";
  if (failed(expectShape(*this, "kv_b_proj", getKvBProj(), {h * (dn + dv), dc})))
    return failure();
  if (static_cast<int64_t>(getLayer()) >= cache.getNumLayers())
    return emitOpError() << "layer (" << getLayer()
                         << ") must be < the cache's num_layers ("
                         << cache.getNumLayers() << ")";
  return success();
}

/// The widths of a paged kernel op's new rows or queries against its cache,
/// and its layer.
static LogicalResult checkPagedCache(Operation *op, PagedLatentCacheType cache,
                                     int64_t dc, int64_t dr, int64_t layer,
                                     StringRef what) {
  if (dc + dr != cache.getWidth())
    return op->emitOpError() << what << " (" << dc << " + " << dr
                             << ") must fill the cache width ("
                             << cache.getWidth() << ")";
  if (cache.isFp8() && cache.getRopeWidth() != dr)
    return op->emitOpError()
           << "fp8 latent cache rope_width (" << cache.getRopeWidth()
           << ") must equal the rope width (" << dr << ")";
  if (layer >= cache.getNumLayers())
    return op->emitOpError() << "layer (" << layer
                             << ") must be < the cache's num_layers ("
                             << cache.getNumLayers() << ")";
  return success();
}

LogicalResult PagedCacheWriteOp::verify() {
  auto lat = rt(getLatent()), kpe = rt(getRopeKey());
  if (lat.getRank() != 2 || kpe.getRank() != 2)
    return emitOpError() << "latent and rope key must be [tokens, width]";
  if (failed(checkPagedCache(*this, getCache().getType(), lat.getDimSize(1),
                             kpe.getDimSize(1), getLayer(),
                             "latent + rope key widths")))
    return failure();
  return checkRaggedBatch(*this, getQueryStart(), getBlockTables());
}

LogicalResult PagedLatentAttentionOp::verify() {
  auto ql = rt(getQLatent()), qr = rt(getQRope());
  if (ql.getRank() != 3 || qr.getRank() != 3)
    return emitOpError() << "queries must be [tokens, heads, dim]";
  int64_t dc = ql.getDimSize(2);
  if (failed(checkPagedCache(*this, getCache().getType(), dc,
                             qr.getDimSize(2), getLayer(), "query widths")) ||
      failed(checkRaggedBatch(*this, getQueryStart(), getBlockTables())))
    return failure();
  return expectShape(*this, "result", getResult(),
                     {kDyn, ql.getDimSize(1), dc});
}

LogicalResult PagedNaiveAttentionOp::verify() {
  auto qn = rt(getQNope()), qr = rt(getQRope()), out = rt(getResult());
  auto w = rt(getKvBProj());
  if (qn.getRank() != 3 || qr.getRank() != 3 || out.getRank() != 3 ||
      w.getRank() != 2)
    return emitOpError() << "queries and result must be [tokens, heads, dim] "
                            "and kv_b_proj 2-D";
  int64_t h = qn.getDimSize(1), dn = qn.getDimSize(2), dr = qr.getDimSize(2),
          dv = out.getDimSize(2);
  if (qr.getDimSize(1) != h || out.getDimSize(1) != h)
    return emitOpError() << "q_rope and result heads (" << qr.getDimSize(1)
                         << ", " << out.getDimSize(1)
                         << ") must equal q_nope's (" << h << ")";
  int64_t dc = getCache().getType().getWidth() - dr;
  if (failed(checkPagedCache(*this, getCache().getType(), dc, dr, getLayer(),
                             "kv_b_proj columns + rope width")) ||
      failed(expectShape(*this, "kv_b_proj", getKvBProj(),
                         {h * (dn + dv), dc})) ||
      failed(checkRaggedBatch(*this, getQueryStart(), getBlockTables())))
    return failure();
  return success();
}

LogicalResult GatherRowsOp::verify() {
  auto in = rt(getInput());
  if (in.getRank() != 2)
    return emitOpError() << "input must be [tokens, features], got "
                         << shapeString(in.getShape());
  int64_t rows = rt(getRows()).getDimSize(0);
  return expectShape(*this, "result", getResult(), {rows, in.getDimSize(1)});
}

LogicalResult HeadMatmulOp::verify() {
  auto in = getInput().getType();
  auto w = getWeight().getType();
  if (in.getRank() != 3 || w.getRank() != 2)
    return emitOpError() << "input must be [tokens, heads, k] and weight 2-D";
  int64_t heads = in.getDimSize(1), group = getGroup(), rows = getRows();
  if (w.getDimSize(0) != heads * group || getOffset() + rows > group)
    return emitOpError() << "weight rows (" << w.getDimSize(0)
                         << ") must be heads (" << heads << ") x group ("
                         << group << ") with offset + rows <= group";
  int64_t k = getTranspose() ? w.getDimSize(1) : rows;
  int64_t n = getTranspose() ? rows : w.getDimSize(1);
  if (in.getDimSize(2) != k)
    return emitOpError() << "input width (" << in.getDimSize(2)
                         << ") must be " << k;
  if (static_cast<bool>(getQueryStart()) != getNaiveMinTokens().has_value())
    return emitOpError() << "skip(query_start) and naive_min_tokens go "
                            "together: got "
                         << (getQueryStart() ? "query_start only"
                                             : "naive_min_tokens only");
  return expectShape(*this, "result", getResult(), {kDyn, heads, n});
}

LogicalResult SiluMulPackedOp::verify() {
  int64_t w = getInput().getType().getShape().back();
  if (ShapedType::isDynamic(w) || w % 2)
    return emitOpError() << "input width (" << w << ") must be even";
  return expectShape(*this, "result", getResult(), {kDyn, w / 2});
}

LogicalResult MoERouteOp::verify() {
  auto cfg = getConfig();
  if (failed(expectShape(*this, "logits", getLogits(),
                         {kDyn, cfg.getNumExperts()})) ||
      failed(expectShape(*this, "expert_ids", getExpertIds(),
                         {kDyn, cfg.getTopK()})) ||
      failed(expectShape(*this, "weights", getWeights(),
                         {kDyn, cfg.getTopK()})))
    return failure();
  if (cfg.hasBias() != static_cast<bool>(getBias()))
    return emitOpError() << "a router bias is needed exactly for noaux_tc";
  return success();
}

LogicalResult MoEPermuteOp::verify() {
  int64_t e = getNumExperts();
  if (failed(expectShape(*this, "offsets", getOffsets(), {e + 1})))
    return failure();
  int64_t d = getInput().getType().getShape().back();
  return expectShape(*this, "permuted", getPermuted(), {kDyn, d});
}

LogicalResult LinearSiluMulOp::verify() {
  auto w = getWeight().getType();
  if (w.getRank() != 2 || w.getDimSize(0) % 2 != 0)
    return emitOpError() << "weight must be a packed [2F, in] gate|up, got "
                         << shapeString(w.getShape());
  if (getInput().getType().getRank() != 2)
    return emitOpError() << "input must be [tokens, in]";
  if (failed(expectShape(*this, "input", getInput(), {kDyn, w.getDimSize(1)})))
    return failure();
  return expectShape(*this, "result", getResult(),
                     {kDyn, w.getDimSize(0) / 2});
}

LogicalResult MoERoutePermuteOp::verify() {
  auto cfg = getConfig();
  int64_t e = cfg.getNumExperts(), k = cfg.getTopK();
  int64_t shared = getSharedExperts();
  if (shared < 0)
    return emitOpError() << "shared_experts must be >= 0, got " << shared;
  int64_t d = getInput().getType().getShape().back();
  if (failed(expectShape(*this, "logits", getLogits(), {kDyn, e})) ||
      failed(expectShape(*this, "expert_ids", getExpertIds(),
                         {kDyn, k + shared})) ||
      failed(expectShape(*this, "weights", getWeights(), {kDyn, k + shared})) ||
      (getPermuted() &&
       failed(expectShape(*this, "permuted", getPermuted(), {kDyn, d}))) ||
      failed(expectShape(*this, "offsets", getOffsets(), {e + shared + 1})))
    return failure();
  if (getInput().getType().getRank() != 2)
    return emitOpError() << "input must be [tokens, hidden]";
  if (cfg.hasBias() != static_cast<bool>(getBias()))
    return emitOpError() << "a router bias is needed exactly for noaux_tc";
  return success();
}

/// A grouped product's rows: with gather(row_of_slot) one per slot, whose
/// count is a whole number of slots per input row (token); else the
/// input's.
static LogicalResult groupedRows(Operation *op, Value input, Value rowOfSlot,
                                 Value result, int64_t n) {
  if (failed(expectShape(op, "result", result, {kDyn, n})))
    return failure();
  if (!rowOfSlot)
    return sameTokens(op, input, result);
  int64_t tokens = rt(input).getDimSize(0), slots = rt(rowOfSlot).getDimSize(0),
          rows = rt(result).getDimSize(0);
  if (!ShapedType::isDynamic(slots) && !ShapedType::isDynamic(tokens) &&
      (tokens == 0 ? slots != 0 : slots % tokens != 0))
    return op->emitOpError()
           << "gather(row_of_slot) has " << slots
           << " slots, not a whole number per input row (" << tokens << ")";
  if (!ShapedType::isDynamic(slots) && !ShapedType::isDynamic(rows) &&
      slots != rows)
    return op->emitOpError()
           << "result has " << rows << " rows but gather(row_of_slot) has "
           << slots << " slots";
  return success();
}

LogicalResult GroupedMatmulOp::verify() {
  auto w = getWeights().getType();
  if (w.getRank() != 3)
    return emitOpError() << "weights must be [experts, out, in]";
  // Expert parallelism: the weights hold this rank's share of the experts
  // the offsets delimit (see the op description).
  int64_t local = w.getDimSize(0);
  int64_t groups = getOffsets().getType().getDimSize(0) - 1;
  bool share = local > 0 && groups > local && groups % local == 0;
  if (failed(expectShape(*this, "offsets", getOffsets(),
                         {(share ? groups : local) + 1})) ||
      failed(expectShape(*this, "input", getInput(), {kDyn, w.getDimSize(2)})))
    return failure();
  return groupedRows(*this, getInput(), getRowOfSlot(), getResult(),
                     w.getDimSize(1));
}

LogicalResult GroupedMatmulSiluMulOp::verify() {
  auto g = getGate().getType(), u = getUp().getType();
  if (g.getRank() != 3 || g.getShape() != u.getShape())
    return emitOpError() << "gate and up must be [experts, out, in] of one "
                            "shape, got "
                         << shapeString(g.getShape()) << " and "
                         << shapeString(u.getShape());
  int64_t local = g.getDimSize(0);
  int64_t groups = getOffsets().getType().getDimSize(0) - 1;
  bool share = local > 0 && groups > local && groups % local == 0;
  if (failed(expectShape(*this, "offsets", getOffsets(),
                         {(share ? groups : local) + 1})) ||
      failed(expectShape(*this, "input", getInput(), {kDyn, g.getDimSize(2)})))
    return failure();
  return groupedRows(*this, getInput(), getRowOfSlot(), getResult(),
                     g.getDimSize(1));
}

LogicalResult MoECombineOp::verify() {
  int64_t d = getExpertOut().getType().getShape().back();
  return expectShape(*this, "result", getResult(), {kDyn, d});
}

LogicalResult MTPConcatOp::verify() {
  FailureOr<int64_t> d = featureSize(*this, "embedding", getEmbedding());
  if (failed(d))
    return failure();
  int64_t t = getEmbedding().getType().getDimSize(0);
  if (failed(expectShape(*this, "hidden", getHidden(), {t, *d})) ||
      failed(expectShape(*this, "positions", getPositions(), {t})) ||
      failed(expectShape(*this, "result", getResult(), {t, 2 * *d})))
    return failure();
  return success();
}

/// Local experts L of an expert-parallel exchange: offsets delimit
/// `ranks` x L experts.
static FailureOr<int64_t> localExperts(Operation *op, Value offsets,
                                       int64_t ranks) {
  int64_t experts = rt(offsets).getDimSize(0) - 1;
  if (ShapedType::isDynamic(rt(offsets).getDimSize(0)) || experts < 1 ||
      experts % ranks != 0)
    return op->emitOpError()
           << "offsets must delimit a positive multiple of "
              "ranks ("
           << ranks << ") experts, got " << shapeString(rt(offsets).getShape());
  return experts / ranks;
}

LogicalResult MoEDispatchOp::verify() {
  FailureOr<int64_t> d = featureSize(*this, "permuted", getPermuted());
  if (failed(d))
    return failure();
  FailureOr<int64_t> local = localExperts(*this, getOffsets(), getRanks());
  if (failed(local))
    return failure();
  if (failed(expectShape(*this, "received", getReceived(), {kDyn, *d})) ||
      failed(expectShape(*this, "received_offsets", getReceivedOffsets(),
                         {*local + 1})))
    return failure();
  return expectShape(*this, "counts", getCounts(),
                     {int64_t(getRanks()), *local});
}

LogicalResult MoECollectOp::verify() {
  FailureOr<int64_t> n = featureSize(*this, "expert_out", getExpertOut());
  if (failed(n))
    return failure();
  FailureOr<int64_t> local = localExperts(*this, getOffsets(), getRanks());
  if (failed(local))
    return failure();
  if (failed(expectShape(*this, "counts", getCounts(),
                         {int64_t(getRanks()), *local})))
    return failure();
  return expectShape(*this, "result", getResult(), {kDyn, *n});
}
