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

#include <cmath>
#include <limits>

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

/// The per-segment choice of a ragged step. Per head, expanding one context
/// row through kv_b_proj (naive) costs what projecting one new token's
/// query and output through W_UK / W_UV costs (absorbed): (dn + dv) * dc.
/// Each (new token, context row) pair then costs 2 * dc + dr absorbed
/// (score over the whole row, the latent as value) and dn + dr + dv naive.
/// A segment of T new tokens over a context of S rows pays the expansion
/// S times (naive) against T times (absorbed) and the pairs T * S times in
/// both: naive wins once T * (pair_absorbed - pair_naive) > (dn + dv) * dc,
/// whatever S (the lowering projects every token's query, so that is also
/// the exact break-even of what runs).
struct SegmentThreshold {
  int64_t minTokens; // kNeverNaive: the naive form never wins
  double expandPerRow, pairAbsorbed, pairNaive; // FLOPs, all heads
};

SegmentThreshold segmentThreshold(MLAConfigAttr cfg) {
  double h = cfg.getNumHeads(), dn = cfg.getQkNopeHeadDim(),
         dr = cfg.getQkRopeHeadDim(), dv = cfg.getVHeadDim(),
         dc = cfg.getKvLoraRank();
  SegmentThreshold t{kNeverNaive, h * (dn + dv) * dc, h * (2 * dc + dr),
                     h * (dn + dr + dv)};
  if (t.pairAbsorbed > t.pairNaive)
    t.minTokens = std::max<int64_t>(
        1, int64_t(std::floor(t.expandPerRow /
                              (t.pairAbsorbed - t.pairNaive))) + 1);
  return t;
}

void absorb(RewriterBase &b, MLAOp op, bool naive, int64_t naiveMinTokens) {
    b.setInsertionPoint(op);
    Location loc = op.getLoc();
    MLAConfigAttr cfg = op.getConfig();
    int64_t h = cfg.getNumHeads(), dn = cfg.getQkNopeHeadDim(),
            dv = cfg.getVHeadDim(), dc = cfg.getKvLoraRank();
    Value x = op.getInput(), pos = op.getPositions();
    auto layer = op.getLayerAttr();

    // Queries, and the new tokens' cache rows: normalised latent | roped
    // shared key.
    auto [qNope, qPe, latent, kPe] = projectInputs(b, loc, op);
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
    // A ragged step whose long segments may take the naive form: the
    // absorbed kernels (both head products and the attention) skip them and
    // ds.paged_naive_attention fills them.
    bool perSegment = qs && naiveMinTokens < kNeverNaive;
    IntegerAttr minTokens =
        perSegment ? b.getI64IntegerAttr(naiveMinTokens) : IntegerAttr();
    Value skipQs = perSegment ? qs : Value();
    // Absorb W_UK into the query: q_latent[t,h] = q_nope[t,h] W_UK_h.
    auto group = b.getI64IntegerAttr(dn + dv);
    Value qLat = HeadMatmulOp::create(
        b, loc, RankedTensorType::get({tokens, h, dc}, f32), qNope, kvb,
        skipQs, group, b.getI64IntegerAttr(0), b.getI64IntegerAttr(dn),
        UnitAttr(), minTokens);
    auto uType = RankedTensorType::get({tokens, h, dc}, f32);
    Value u = qs ? Value(PagedLatentAttentionOp::create(
                       b, loc, uType, qLat, qPe, cache, pos, qs, bt, layer,
                       scale, minTokens))
                 : Value(LatentAttentionOp::create(b, loc, uType, qLat, qPe,
                                                   cache, pos, layer, scale));
    // Absorb W_UV into the output: o_h = u_h W_UV_h^T.
    auto ohType = RankedTensorType::get({tokens, h, dv}, f32);
    Value oh = HeadMatmulOp::create(
        b, loc, ohType, u, kvb, skipQs, group, b.getI64IntegerAttr(dn),
        b.getI64IntegerAttr(dv), b.getUnitAttr(), minTokens);
    if (perSegment)
      oh = PagedNaiveAttentionOp::create(b, loc, ohType, qNope, qPe, cache, pos,
                                         qs, bt, kvb, oh, layer, scale,
                                         minTokens);
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
    // form is chosen per sequence at run time (the absorbed chain, with the
    // long segments taken over by ds.paged_naive_attention).
    int64_t minTokens = kNeverNaive;
    if (op.getQueryStart()) {
      naive = false;
      minTokens = naiveMinTokensFor(op, options);
    }
    LLVM_DEBUG(llvm::dbgs() << "[" DEBUG_TYPE "] layer " << op.getLayer()
                            << ": "
                            << (op.getQueryStart()
                                    ? "per segment, naive from " +
                                          std::to_string(minTokens) +
                                          " new tokens"
                                    : std::string(naive ? "naive"
                                                        : "absorbed"))
                            << " form\n");
    absorb(rewriter, op, naive, minTokens);
    return success();
  }

  /// The segment length from which a ragged step takes the naive form:
  /// the override, else the forced form (naive: every segment; absorbed:
  /// none), else the cost model. kNeverNaive: the absorbed form only.
  static int64_t naiveMinTokensFor(MLAOp op, const AbsorbMLAOptions &options) {
    int64_t n = options.naiveMinTokens;
    if (n < 0)
      n = options.form == AbsorbMLAOptions::Form::Naive      ? 0
          : options.form == AbsorbMLAOptions::Form::Absorbed ? kNeverNaive
                                                             : segmentThreshold(
                                                                   op.getConfig())
                                                                   .minTokens;
    // No segment has more tokens than an i32 position can count.
    return n > std::numeric_limits<int32_t>::max() ? kNeverNaive : n;
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

  /// The ragged step's threshold and the costs it comes from.
  void explainSegments(MLAOp op, const AbsorbMLAOptions &options) {
    SegmentThreshold t = segmentThreshold(op.getConfig());
    int64_t n = AbsorbMLAPattern::naiveMinTokensFor(op, options);
    InFlightDiagnostic d = getOperation().emitRemark();
    d << "ds-absorb-mla: @" << getOperation().getName()
      << " (a ragged batch over the paged cache) chooses the form per "
         "sequence at run time: ";
    if (n == kNeverNaive)
      d << "absorbed for every sequence";
    else if (n == 0)
      d << "naive for every sequence";
    else
      d << "naive for sequences with >= " << n
        << " new tokens, absorbed below";
    d << " (" << (naiveMinTokens >= 0 ? "forced by naive-min-tokens"
                  : form != "auto" ? "forced by form=" + form
                                   : std::string("cost model"))
      << "). Per layer, absorbed costs " << formatF64(t.expandPerRow)
      << " FLOP per new token (W_UK/W_UV projections) + "
      << formatF64(t.pairAbsorbed)
      << " per (token, context row); naive costs "
      << formatF64(t.expandPerRow)
      << " per context row (its latent expanded through kv_b_proj) + "
      << formatF64(t.pairNaive) << " per (token, context row); ";
    if (t.minTokens == kNeverNaive)
      d << "naive never wins for this config";
    else
      d << "naive wins when new tokens * "
        << formatF64(t.pairAbsorbed - t.pairNaive) << " > "
        << formatF64(t.expandPerRow) << ", i.e. from " << t.minTokens
        << " new tokens";
  }
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
    options.naiveMinTokens = naiveMinTokens;
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
      explainSegments(first, options);
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
