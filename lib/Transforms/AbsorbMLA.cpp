//===- AbsorbMLA.cpp - ds.mla -> attention over the latent cache ----------===//
//
// Rewrites each ds.mla into SEMANTICS.md's absorbed form. The per-head key
// and value projections (W_UK, W_UV, both slices of kv_b_proj) move to the
// query side and the output side, so attention reads cache rows directly.
//
//===----------------------------------------------------------------------===//
#include "MLABuilders.h"
#include "ds/Transforms/Passes.h"
#include "ds/Transforms/Patterns.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/PatternMatch.h"
#include "llvm/Support/Debug.h"
#include "llvm/Support/Format.h"

#define DEBUG_TYPE "ds-absorb-mla"

namespace mlir::ds {
#define GEN_PASS_DEF_DSABSORBMLAPASS
#include "ds/Transforms/Passes.h.inc"
} // namespace mlir::ds

using namespace mlir;
using namespace mlir::ds;
using namespace mlir::ds::mla;

namespace {

struct FormChoice {
  bool naive;
  double absorbedFlops, naiveFlops;
  int64_t tokens;
};

/// The cost model of the pass description, FLOPs for all heads.
FormChoice chooseForm(MLAConfigAttr cfg, int64_t tokens, int64_t context) {
  double h = cfg.getNumHeads(), dn = cfg.getQkNopeHeadDim(),
         dr = cfg.getQkRopeHeadDim(), dv = cfg.getVHeadDim(),
         dc = cfg.getKvLoraRank();
  // The T new tokens attend over the cached context plus themselves.
  double t = tokens, s = context + tokens;
  double absorbed = h * (t * dn * dc + t * s * (2 * dc + dr) + t * dc * dv);
  double naive = h * (s * (dn + dv) * dc + t * s * (dn + dr + dv));
  return {naive < absorbed, absorbed, naive, tokens};
}

void absorb(RewriterBase &b, MLAOp op, bool naive) {
    b.setInsertionPoint(op);
    Location loc = op.getLoc();
    MLAConfigAttr cfg = op.getConfig();
    int64_t h = cfg.getNumHeads(), dn = cfg.getQkNopeHeadDim(),
            dr = cfg.getQkRopeHeadDim(), dv = cfg.getVHeadDim(),
            dc = cfg.getKvLoraRank();
    Value x = op.getInput(), pos = op.getPositions();
    auto layer = op.getLayerAttr();

    // Queries: [tokens, heads, nope | rope].
    Value q;
    if (cfg.getQLoraRank()) {
      Value cq = linear(b, loc, x, op.getQAProj());
      cq = rmsNorm(b, loc, cq, op.getQANorm(), kLatentNormEps);
      q = linear(b, loc, cq, op.getQBProj());
    } else {
      q = linear(b, loc, x, op.getQProj());
    }
    Value q3 = splitHeads(b, loc, q, h);
    Value qNope = sliceLast(b, loc, q3, 0, dn);
    Value qPe = sliceLast(b, loc, q3, dn, dr);
    qPe = RopeOp::create(b, loc, qPe.getType(), qPe, pos, cfg);

    // The new tokens' cache rows: normalised latent | roped shared key.
    Value kv = linear(b, loc, x, op.getKvAProj());
    Value latent = rmsNorm(b, loc, sliceLast(b, loc, kv, 0, dc),
                           op.getKvANorm(), kLatentNormEps);
    Value kPe = sliceLast(b, loc, kv, dc, dr);
    kPe = RopeOp::create(b, loc, kPe.getType(), kPe, pos, cfg);
    // A ragged batch over a paged cache (@ragged_step) finds each token's rows
    // through its sequence's block table.
    Value qs = op.getQueryStart(), bt = op.getBlockTables();
    Type cacheType = op.getCache().getType();
    Value cache =
        qs ? Value(PagedCacheWriteOp::create(b, loc, cacheType, op.getCache(),
                                             latent, kPe, pos, qs, bt, layer))
           : Value(CacheWriteOp::create(b, loc, cacheType, op.getCache(),
                                        latent, kPe, pos, layer));

    auto tokens = cast<RankedTensorType>(x.getType()).getDimSize(0);
    auto f32 = b.getF32Type();
    Value kvb = op.getKvBProj();
    auto scale = b.getF64FloatAttr(cfg.getSoftmaxScale().convertToDouble());
    if (naive) {
      Value oh = NaiveAttentionOp::create(
          b, loc, RankedTensorType::get({tokens, h, dv}, f32), qNope, qPe, cache,
          pos, kvb, layer, scale);
      Value out = linear(b, loc, mergeHeads(b, loc, oh), op.getOProj());
      b.replaceOp(op, {out, cache});
      return;
    }
    // Absorb W_UK into the query: q_latent[t,h] = q_nope[t,h] W_UK_h.
    auto group = b.getI64IntegerAttr(dn + dv);
    Value qLat = HeadMatmulOp::create(
        b, loc, RankedTensorType::get({tokens, h, dc}, f32), qNope, kvb, group,
        b.getI64IntegerAttr(0), b.getI64IntegerAttr(dn), UnitAttr());
    auto uType = RankedTensorType::get({tokens, h, dc}, f32);
    Value u = qs ? Value(PagedLatentAttentionOp::create(
                       b, loc, uType, qLat, qPe, cache, pos, qs, bt, layer,
                       scale))
                 : Value(LatentAttentionOp::create(b, loc, uType, qLat, qPe,
                                                   cache, pos, layer, scale));
    // Absorb W_UV into the output: o_h = u_h W_UV_h^T.
    Value oh = HeadMatmulOp::create(
        b, loc, RankedTensorType::get({tokens, h, dv}, f32), u, kvb, group,
        b.getI64IntegerAttr(dn), b.getI64IntegerAttr(dv), b.getUnitAttr());
    Value out = linear(b, loc, mergeHeads(b, loc, oh), op.getOProj());
    b.replaceOp(op, {out, cache});
}

/// ds.mla -> the absorbed or the naive form, chosen per op by the cost
/// model (or forced).
struct AbsorbMLAPattern : OpRewritePattern<MLAOp> {
  AbsorbMLAPattern(MLIRContext *ctx, const AbsorbMLAOptions &options)
      : OpRewritePattern(ctx), options(options) {}

  LogicalResult matchAndRewrite(MLAOp op,
                                PatternRewriter &rewriter) const override {
    // A per-head K/V cache has its own rewrite (AbsorbMLAPerHead.cpp).
    if (isa<PagedKVCacheType>(op.getCache().getType()))
      return failure();
    bool naive = options.form == AbsorbMLAOptions::Form::Naive;
    if (options.form == AbsorbMLAOptions::Form::Auto)
      naive = choiceFor(op, options).naive;
    // A ragged batch mixes decode tokens and prefill chunks in one op: the
    // absorbed form is exact for both, and the only one over pages so far.
    if (op.getQueryStart())
      naive = false;
    LLVM_DEBUG(llvm::dbgs() << "[" DEBUG_TYPE "] layer " << op.getLayer()
                            << ": " << (naive ? "naive" : "absorbed")
                            << " form\n");
    absorb(rewriter, op, naive);
    return success();
  }

  /// The cost model's inputs for `op`: its token count; when it is
  /// dynamic, the enclosing function's `ds.tokens_per_call` hint (an entry
  /// point of any length that is called with a few tokens, like @draft),
  /// else the assumed prefill chunk.
  static FormChoice choiceFor(MLAOp op, const AbsorbMLAOptions &options) {
    int64_t tokens =
        cast<RankedTensorType>(op.getInput().getType()).getDimSize(0);
    if (ShapedType::isDynamic(tokens)) {
      tokens = options.prefillTokens;
      if (auto fn = op->getParentOfType<func::FuncOp>())
        if (auto hint = fn->getAttrOfType<IntegerAttr>("ds.tokens_per_call");
            hint && hint.getInt() > 0)
          tokens = hint.getInt();
    }
    return chooseForm(op.getConfig(), tokens, options.contextTokens);
  }

  AbsorbMLAOptions options;
};

struct DSAbsorbMLAPass
    : mlir::ds::impl::DSAbsorbMLAPassBase<DSAbsorbMLAPass> {
  using Base::Base;
  void runOnOperation() override {
    AbsorbMLAOptions options;
    if (form == "auto")
      options.form = AbsorbMLAOptions::Form::Auto;
    else if (form == "absorbed")
      options.form = AbsorbMLAOptions::Form::Absorbed;
    else if (form == "naive")
      options.form = AbsorbMLAOptions::Form::Naive;
    else {
      getOperation().emitError() << "ds-absorb-mla: form must be auto, "
                                    "absorbed or naive, got '"
                                 << form << "'";
      return signalPassFailure();
    }
    options.prefillTokens = prefillTokens;
    options.contextTokens = contextTokens;
    // One remark per entry point: every layer has the same shapes.
    MLAOp first;
    getOperation().walk([&](MLAOp op) {
      first = op;
      return WalkResult::interrupt();
    });
    if (explain && first && isa<PagedKVCacheType>(first.getCache().getType()))
      getOperation().emitRemark()
          << "ds-absorb-mla: @" << getOperation().getName()
          << " keeps per-head K/V pages (--kv-layout=per-head): the naive "
             "form, kv_b_proj applied when a token is written, standard "
             "attention over the cached K/V; nothing is absorbed";
    else if (explain && first && first.getQueryStart()) {
      FormChoice c = AbsorbMLAPattern::choiceFor(first, options);
      getOperation().emitRemark()
          << "ds-absorb-mla: @" << getOperation().getName()
          << " (a ragged batch over the paged cache) uses the absorbed form "
             "for every sequence: exact for decode tokens and prefill "
             "chunks alike; a "
          << c.tokens << "-token chunk after " << int64_t(contextTokens)
          << " cached costs absorbed " << formatF64(c.absorbedFlops)
          << " FLOP vs naive " << formatF64(c.naiveFlops)
          << " FLOP per layer (the paged naive form is not built yet)";
    } else if (explain && first) {
      FormChoice c = AbsorbMLAPattern::choiceFor(first, options);
      bool naive = form == "naive" || (form == "auto" && c.naive);
      getOperation().emitRemark()
          << "ds-absorb-mla: @" << getOperation().getName() << " uses the "
          << (naive ? "naive" : "absorbed") << " form (" << form
          << "): " << c.tokens << " tokens per call"
          << " after " << int64_t(contextTokens) << " cached"
          << ", absorbed " << formatF64(c.absorbedFlops)
          << " FLOP vs naive " << formatF64(c.naiveFlops) << " FLOP per layer";
    }
    RewritePatternSet patterns(&getContext());
    populateAbsorbMLAPatterns(patterns, options);
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns),
                                     patternsOnlyConfig())))
      return signalPassFailure();
  }
};

} // namespace

void mlir::ds::populateAbsorbMLAPatterns(RewritePatternSet &patterns,
                                         const AbsorbMLAOptions &options) {
  patterns.add<AbsorbMLAPattern>(patterns.getContext(), options);
  populateAbsorbMLAPerHeadPatterns(patterns);
}
