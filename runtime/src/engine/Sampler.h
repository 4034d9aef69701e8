//===- Sampler.h - request parameters and the next token --------*- C++ -*-===//
//
// The sampling itself is dsrt_sample_top_k (api/Sampling.cpp, the sampler
// dsrt_generate uses), seeded the way dsrt_generate seeds it, so a request
// gives the tokens of a solo dsrt_generate with the same seed.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_ENGINE_SAMPLER_H
#define DSRT_ENGINE_SAMPLER_H

#include "engine/Request.h"

#include <string>

namespace dsrt::engine {

/// Copies the C parameters into `out`; "" or the one-line problem.
std::string readParams(const dsrt_request_params &p, int64_t vocab,
                       SamplingParams &out);

/// The rng state dsrt_generate starts from for `seed`.
uint64_t initialRngState(uint64_t seed);

/// Fed token number `index` of `r`: forced, or drawn from `row` after r's
/// logits processing (min_tokens keeps `eosTokenId` out).
int32_t chooseToken(Request &r, const float *row, int64_t vocab,
                    int64_t eosTokenId);

/// Whether feeding `token` ends `r` (eos, stop ids, length), and why.
dsrt_finish_reason finishAfter(const Request &r, int32_t token,
                               int64_t eosTokenId);

} // namespace dsrt::engine

#endif // DSRT_ENGINE_SAMPLER_H
