//===- MoEPatterns.cpp - MoE routing ops -> loop nests --------------------===//
//
// Routing (scores, groups, top-k, weights), the counting-sort permutation of
// (token, slot) pairs by expert, both fused in one kernel, and the weighted
// combine. The grouped expert GEMMs are in GemmPatterns.cpp.
//
//===----------------------------------------------------------------------===//
#include "LoweringPatterns.h"

#include <string>

using namespace mlir;
using namespace mlir::ds;
using namespace mlir::ds::loops;

namespace {

/// What routing alone and routing fused with the permutation share: the
/// kernel operands (logits, ids, weights, the score scratch buffers; the
/// caller appends the rest and the bias last), the kernel body and the
/// routing trace.
template <typename Op>
struct RoutePattern : KernelPattern<Op> {
  using KernelPattern<Op>::KernelPattern;
  using KernelPattern<Op>::alloc;
  using KernelPattern<Op>::use;

  SmallVector<Value> routeOperands(KernelEmitter &k, Op op, Value logits,
                                   MoEConfigAttr cfg, Value &ids,
                                   Value &weights) const {
    Value t = k.dim(logits, 0);
    ids = alloc(k, op.getExpertIds(), {t});
    weights = alloc(k, op.getWeights(), {t});
    Type f32 = k.builder().getF32Type();
    auto scratch = [&](int64_t width) {
      return k.alloc(RankedTensorType::get({ShapedType::kDynamic, width}, f32),
                     {t});
    };
    SmallVector<Value> operands = {logits, ids, weights,
                                   scratch(cfg.getNumExperts()),
                                   scratch(cfg.getNumExperts())};
    if (cfg.isGrouped()) {
      operands.push_back(scratch(cfg.getNGroup()));
      operands.push_back(scratch(cfg.getNGroup()));
    }
    return operands;
  }

  static void routeBody(KernelEmitter &k, ValueRange a, MoEConfigAttr cfg,
                        Value bias) {
    bool grouped = cfg.isGrouped();
    k.moeRoute(a[0], bias, a[1], a[2], cfg, a[3], a[4],
               grouped ? a[5] : Value(), grouped ? a[6] : Value());
  }

  /// What the GPU mapping's block-per-token routing reads off the kernel
  /// (RoutingKernel.cpp): the config, and whether the bias is the last
  /// operand.
  static void describe(func::FuncOp kernel, MoEConfigAttr cfg, bool hasBias) {
    kernel->setAttr("ds.moe_config", cfg);
    if (hasBias)
      kernel->setAttr("ds.moe_bias", UnitAttr::get(kernel.getContext()));
  }

  /// Numbers MoE layers in program order per entry point.
  void traced(KernelEmitter &k, Op op, Value ids) const {
    Operation *fn = op->template getParentOfType<func::FuncOp>();
    int64_t &ordinal = this->state.moeOrdinal[fn];
    if (this->state.traceRouting)
      k.traceRouting(this->contextOf(op), ordinal, ids);
    ++ordinal;
  }
};

struct MoERouteLowering : RoutePattern<MoERouteOp> {
  using RoutePattern::RoutePattern;
  LogicalResult
  matchAndRewrite(MoERouteOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    MoEConfigAttr cfg = op.getConfig();
    Value ids, weights;
    SmallVector<Value> operands =
        routeOperands(k, op, use(k, op, op.getLogits(), adaptor.getLogits()),
                      cfg, ids, weights);
    if (op.getBias())
      operands.push_back(use(k, op, op.getBias(), adaptor.getBias()));
    std::string key;
    llvm::raw_string_ostream(key) << cfg;
    bool hasBias = bool(op.getBias());
    describe(k.outline("moe_route", key, operands,
                       [&](ValueRange a) {
                         routeBody(k, a, cfg, hasBias ? a.back() : Value());
                       }),
             cfg, hasBias);
    traced(k, op, ids);
    rewriter.replaceOp(op, ValueRange{ids, weights});
    return success();
  }
};

struct MoERoutePermuteLowering : RoutePattern<MoERoutePermuteOp> {
  using RoutePattern::RoutePattern;
  LogicalResult
  matchAndRewrite(MoERoutePermuteOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    MoEConfigAttr cfg = op.getConfig();
    Value ids, weights;
    SmallVector<Value> operands =
        routeOperands(k, op, use(k, op, op.getLogits(), adaptor.getLogits()),
                      cfg, ids, weights);
    size_t routeCount = operands.size();
    Value pairs = k.mul(k.dim(ids, 0), k.dim(ids, 1));
    // Without permuted rows (ds-gather-expert-rows) the kernel neither
    // reads x nor moves a row.
    bool moves = bool(op.getPermuted());
    Value x, xp;
    if (moves) {
      x = use(k, op, op.getInput(), adaptor.getInput());
      xp = alloc(k, op.getPermuted(), {pairs});
    }
    Value off = alloc(k, op.getOffsets());
    Value rows = alloc(k, op.getRowOfSlot(), {pairs});
    int64_t shared = int64_t(op.getSharedExperts());
    Value cursor = k.alloc(
        RankedTensorType::get({int64_t(cfg.getNumExperts()) + shared},
                              rewriter.getI32Type()),
        {});
    if (moves)
      operands.append({x, xp});
    operands.append({off, rows, cursor});
    if (op.getBias())
      operands.push_back(use(k, op, op.getBias(), adaptor.getBias()));
    std::string key;
    llvm::raw_string_ostream(key) << cfg;
    bool hasBias = bool(op.getBias());
    func::FuncOp kernel =
        k.outline("moe_route_permute",
                  key + "/" + std::to_string(shared) + (moves ? "" : "/index"),
                  operands, [&](ValueRange a) {
                    routeBody(k, a, cfg, hasBias ? a.back() : Value());
                    if (shared)
                      k.appendSharedExperts(a[1], a[2], cfg.getTopK(),
                                            cfg.getNumExperts());
                    // x and permuted (when moving), offsets, rows, cursor.
                    ValueRange p = a.slice(routeCount, moves ? 5 : 3);
                    ValueRange counts = p.take_back(3);
                    k.moePermute(moves ? p[0] : Value(), a[1],
                                 moves ? p[1] : Value(), counts[0], counts[1],
                                 counts[2], state.moeRowLoops);
                  });
    describe(kernel, cfg, hasBias);
    // Traces report the routed choices only.
    traced(k, op, shared ? k.leadingColumns(ids, cfg.getTopK()) : ids);
    SmallVector<Value> results = {ids, weights};
    if (moves)
      results.push_back(xp);
    results.append({off, rows});
    rewriter.replaceOp(op, results);
    return success();
  }
};

struct MoEPermuteLowering : KernelPattern<MoEPermuteOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(MoEPermuteOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    Value x = use(k, op, op.getInput(), adaptor.getInput());
    Value ids = use(k, op, op.getExpertIds(), adaptor.getExpertIds());
    Value pairs = k.mul(k.dim(ids, 0), k.dim(ids, 1));
    Value xp = alloc(k, op.getPermuted(), {pairs});
    Value off = alloc(k, op.getOffsets());
    Value rows = alloc(k, op.getRowOfSlot(), {pairs});
    // The counting sort's cursors: a buffer of the entry point (planned
    // with the others), not an allocation inside the kernel.
    int64_t experts = cast<MemRefType>(off.getType()).getDimSize(0) - 1;
    Value cursor = k.alloc(
        RankedTensorType::get({experts}, rewriter.getI32Type()), {});
    k.outline(
        "moe_permute", "", {x, ids, xp, off, rows, cursor}, [&](ValueRange a) {
          k.moePermute(a[0], a[1], a[2], a[3], a[4], a[5], state.moeRowLoops);
        });
    rewriter.replaceOp(op, ValueRange{xp, off, rows});
    return success();
  }
};

struct MoECombineLowering : KernelPattern<MoECombineOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(MoECombineOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    Value w = use(k, op, op.getWeights(), adaptor.getWeights());
    Value out = alloc(k, op.getResult(), {k.dim(w, 0)});
    k.outline("moe_combine", "",
              {use(k, op, op.getExpertOut(), adaptor.getExpertOut()),
               use(k, op, op.getRowOfSlot(), adaptor.getRowOfSlot()), w, out},
              [&](ValueRange a) {
                k.moeCombine(a[0], a[1], a[2], a[3], state.moeRowLoops);
              });
    rewriter.replaceOp(op, out);
    return success();
  }
};

} // namespace

void mlir::ds::loops::populateMoEPatterns(const TypeConverter &converter,
                                          LoweringState &state,
                                          RewritePatternSet &patterns) {
  patterns.add<MoERouteLowering, MoERoutePermuteLowering, MoEPermuteLowering,
               MoECombineLowering>(converter, patterns.getContext(), state);
}
