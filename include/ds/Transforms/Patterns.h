//===- Patterns.h - the rewrite patterns of the ds transforms ---*- C++ -*-===//
//
// Each ds transform is a set of rewrite patterns (populate*Patterns) and a
// thin pass applying them with the greedy driver (lib/Transforms/<Pass>.cpp),
// so fusions can also run together in one driver:
//
//   RewritePatternSet patterns(ctx);
//   populateFuseResidualNormPatterns(patterns);
//   populateFuseGateUpPatterns(patterns);
//   (void)applyPatternsGreedily(fn, std::move(patterns), patternsOnlyConfig());
//
//===----------------------------------------------------------------------===//
#ifndef DS_TRANSFORMS_PATTERNS_H
#define DS_TRANSFORMS_PATTERNS_H

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <cstdint>
#include <limits>

namespace mlir::ds {

/// The greedy driver as the ds passes run it: their patterns only (no
/// folding, no constant hoisting, no region simplification), so each
/// stage's IR is exactly what its patterns build.
inline GreedyRewriteConfig patternsOnlyConfig() {
  return GreedyRewriteConfig()
      .enableFolding(false)
      .enableConstantCSE(false)
      .setRegionSimplificationLevel(GreedySimplifyRegionLevel::Disabled);
}

/// Which MLA form ds-absorb-mla writes (see its pass description).
struct AbsorbMLAOptions {
  enum class Form { Auto, Absorbed, Naive };
  Form form = Form::Auto;
  /// Token count the cost model assumes for a dynamic (prefill) op.
  int64_t prefillTokens = 512;
  int64_t contextTokens = 1024;
  /// A ragged step (paged ds.mla) takes the naive form for sequences with
  /// at least this many new tokens; -1: from the form and the cost model.
  int64_t naiveMinTokens = -1;
};

/// A naive_min_tokens no segment reaches: the absorbed form only.
constexpr int64_t kNeverNaive = std::numeric_limits<int64_t>::max();

void populateAbsorbMLAPatterns(RewritePatternSet &patterns,
                               const AbsorbMLAOptions &options);
/// ds.mla over a `!ds.paged_kv_cache`: the naive form over per-head K/V
/// pages (part of ds-absorb-mla, which adds them).
void populateAbsorbMLAPerHeadPatterns(RewritePatternSet &patterns);
void populateDispatchExpertsPatterns(RewritePatternSet &patterns);
void populateDecomposeDensePatterns(RewritePatternSet &patterns);
void populateFuseResidualNormPatterns(RewritePatternSet &patterns);
void populateFuseGateUpPatterns(RewritePatternSet &patterns);
void populateFuseRoutePermutePatterns(RewritePatternSet &patterns);
void populateFuseSiluEpiloguePatterns(RewritePatternSet &patterns);
/// ds-gather-expert-rows: grouped products of a routing's permuted rows
/// read the tokens' rows through row_of_slot; the routing then writes no
/// rows.
void populateGatherExpertRowsPatterns(RewritePatternSet &patterns);
/// f32 math.exp as MLIR's polynomial approximation (ds-approximate-exp).
void populateApproximateExpPatterns(RewritePatternSet &patterns);
void populateFoldSharedExpertsPatterns(RewritePatternSet &patterns);

} // namespace mlir::ds

#endif // DS_TRANSFORMS_PATTERNS_H
