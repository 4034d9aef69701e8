//===- Speculative.h - drafting and verifying tokens ------------*- C++ -*-===//
//
// The arithmetic of speculative decoding (Leviathan et al. 2023, "Fast
// Inference from Transformers via Speculative Decoding", as vLLM's
// rejection sampler applies it): a draft token d drawn from the drafter's
// distribution q is kept with probability min(1, p(d) / q(d)), p being the
// main model's distribution at that position; on a rejection the token is
// drawn from norm(max(0, p - q)) and the rest of the drafts are dropped;
// when every draft was kept, one more token comes from the main model's
// next row. Each emitted token is then distributed exactly as p. p and q
// are both the distribution dsrt_sample_top_k draws from (temperature,
// then top-k, then top-p, renormalised). Greedy requests keep a draft
// while it equals the main model's argmax.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_ENGINE_SPECULATIVE_H
#define DSRT_ENGINE_SPECULATIVE_H

#include "engine/Request.h"

#include <string>
#include <vector>

namespace dsrt::engine {

/// Whether `params` sample at all (dsrt_sample_top_k's greedy cases apart).
bool samplesRandomly(const SamplingParams &params);

/// The distribution dsrt_sample_top_k draws from for `row` with `params`
/// (a one-hot of the argmax when the row leaves no choice), in `probs`
/// (vocab entries, summing to 1).
void samplingProbs(const float *row, int64_t vocab,
                   const SamplingParams &params, std::vector<double> &probs);

/// A uniform double in [0, 1) from the request's rng (xorshift64*, as the
/// sampler's).
double uniform01(uint64_t *rng);

/// A token drawn from `probs` (vocab entries, not necessarily normalised).
int32_t drawFrom(const double *probs, int64_t vocab, uint64_t *rng);

/// What verification decided for one sequence's drafts.
struct Verdict {
  int64_t accepted = 0; // leading drafts kept
  int32_t next = -1;    // the token after them (correction or bonus)
};

/// Verifies `drafts` (k tokens) of request `r` against the main model's
/// rows `mainRows` ((k + 1) x vocab: row j follows the token before draft
/// j) with `draftProbs` (k x vocab, the q each draft was drawn from; unused
/// when greedy), drawing from r.rng.
Verdict verifyDrafts(Request &r, const int32_t *drafts, int64_t k,
                     const float *mainRows, const double *draftProbs,
                     int64_t vocab);

/// Parses "mtp" or "mtp:K" into K (1 for "mtp"); "" or the problem.
std::string parseSpeculative(const std::string &text, int64_t &k);

/// Drafts a request may propose beyond the one token every step gives.
constexpr int64_t kMaxSpeculativeTokens = 16;

} // namespace dsrt::engine

#endif // DSRT_ENGINE_SPECULATIVE_H
