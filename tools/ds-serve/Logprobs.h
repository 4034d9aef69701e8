//===- Logprobs.h - log-softmax of a logits row for OpenAI logprobs -------===//
#ifndef DS_SERVE_LOGPROBS_H
#define DS_SERVE_LOGPROBS_H

#include "Backend.h"

namespace dsserve {

/// Sets out.logprob to log softmax(row)[chosen] and out.top to the k most
/// likely tokens (ties: lower id first), summing in double.
void computeLogprobs(const float *row, int64_t vocab, int32_t chosen, int k,
                     TokenOutput &out);

} // namespace dsserve

#endif // DS_SERVE_LOGPROBS_H
