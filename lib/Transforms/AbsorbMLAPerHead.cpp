//===- AbsorbMLAPerHead.cpp - ds.mla over a per-head K/V cache ------------===//
//
// Part of ds-absorb-mla (AbsorbMLA.cpp): a ds.mla whose cache is a
// `!ds.paged_kv_cache` (ds-compile --kv-layout=per-head) becomes what a
// multi-head attention deployment runs, MLA's naive form with nothing
// absorbed: the new tokens' latents are expanded through kv_b_proj into
// per-head keys and values as they are written, and attention is ordinary
// per-head softmax attention over the cached K/V. The queries, the latent
// and the rope key are computed exactly as in the absorbed form, so the
// two layouts differ only in what the pages hold.
//
//===----------------------------------------------------------------------===//
#include "MLABuilders.h"
#include "ds/Transforms/Patterns.h"

#include "mlir/IR/PatternMatch.h"

using namespace mlir;
using namespace mlir::ds;
using namespace mlir::ds::mla;

namespace {

struct PerHeadMLAPattern : OpRewritePattern<MLAOp> {
  using OpRewritePattern::OpRewritePattern;

  LogicalResult matchAndRewrite(MLAOp op, PatternRewriter &b) const override {
    auto cacheType = dyn_cast<PagedKVCacheType>(op.getCache().getType());
    if (!cacheType)
      return failure();
    Location loc = op.getLoc();
    MLAConfigAttr cfg = op.getConfig();
    int64_t h = cfg.getNumHeads(), dv = cfg.getVHeadDim();
    Value x = op.getInput(), pos = op.getPositions();
    Value qs = op.getQueryStart(), bt = op.getBlockTables();
    auto layer = op.getLayerAttr();

    auto [qNope, qPe, latent, kPe] = projectInputs(b, loc, op);
    // Per head [k_nope | v] = c W_h^T: the expansion an MHA cache pays once
    // per token at write time instead of once per step at read time.
    Value kvHeads =
        splitHeads(b, loc, linear(b, loc, latent, op.getKvBProj()), h);
    Value cache = PagedKVWriteOp::create(b, loc, cacheType, op.getCache(),
                                         kvHeads, kPe, pos, qs, bt, layer);

    auto tokens = cast<RankedTensorType>(x.getType()).getDimSize(0);
    auto scale = b.getF64FloatAttr(cfg.getSoftmaxScale().convertToDouble());
    Value oh = PagedKVAttentionOp::create(
        b, loc, RankedTensorType::get({tokens, h, dv}, b.getF32Type()), qNope,
        qPe, cache, pos, qs, bt, layer, scale);
    Value out = linear(b, loc, mergeHeads(b, loc, oh), op.getOProj());
    b.replaceOp(op, {out, cache});
    return success();
  }
};

} // namespace

void mlir::ds::populateAbsorbMLAPerHeadPatterns(RewritePatternSet &patterns) {
  patterns.add<PerHeadMLAPattern>(patterns.getContext());
}
