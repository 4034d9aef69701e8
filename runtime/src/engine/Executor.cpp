//===- Executor.cpp - batch checks and the page token store ---------------===//
#include "engine/Executor.h"

#include "api/Error.h"

using namespace dsrt::engine;

dsrt_status Executor::draft(const std::vector<DraftQuery> &, float *) {
  return dsrt::fail(DSRT_ERROR_ARGUMENT, "this executor has no drafter");
}

std::string dsrt::engine::checkBatch(const StepBatch &b, int64_t vocab,
                                     int64_t maxContext) {
  int64_t S = b.numSeqs(), T = b.numTokens();
  if (b.positions.size() != size_t(T) || b.queryStart.size() != size_t(S + 1) ||
      b.contextLens.size() != size_t(S) ||
      b.blockTables.size() != size_t(S * b.maxPagesPerSeq))
    return "step batch: array sizes disagree with " + std::to_string(S) +
           " sequences and " + std::to_string(T) + " tokens";
  if (S == 0 || b.queryStart[0] != 0 || b.queryStart[size_t(S)] != T)
    return "step batch: query offsets do not cover the tokens";
  for (int64_t s = 0; s < S; ++s) {
    int32_t q0 = b.queryStart[size_t(s)], q1 = b.queryStart[size_t(s + 1)];
    int32_t ctx = b.contextLens[size_t(s)];
    if (q1 <= q0 || ctx < q1 - q0 || ctx > maxContext ||
        (ctx + kPageTokens - 1) / kPageTokens > b.maxPagesPerSeq)
      return "step batch: sequence " + std::to_string(b.seqIds[size_t(s)]) +
             " has " + std::to_string(q1 - q0) + " new tokens, context " +
             std::to_string(ctx);
    for (int32_t t = q0; t < q1; ++t) {
      if (b.positions[size_t(t)] != ctx - (q1 - t))
        return "step batch: token " + std::to_string(t) + " of sequence " +
               std::to_string(b.seqIds[size_t(s)]) + " has position " +
               std::to_string(b.positions[size_t(t)]) + ", expected " +
               std::to_string(ctx - (q1 - t));
      if (b.tokens[size_t(t)] < 0 || b.tokens[size_t(t)] >= vocab)
        return "step batch: token id " + std::to_string(b.tokens[size_t(t)]) +
               " is out of range [0, " + std::to_string(vocab) + ")";
    }
  }
  for (size_t i = 0; i < b.logitsRows.size(); ++i)
    if (b.logitsRows[i] < 0 || b.logitsRows[i] >= T ||
        (i && b.logitsRows[i] <= b.logitsRows[i - 1]))
      return "step batch: logits rows are not ascending token indices";
  return "";
}

std::string PageTokens::write(const StepBatch &b) {
  for (int64_t s = 0; s < b.numSeqs(); ++s)
    for (int32_t t = b.queryStart[size_t(s)]; t < b.queryStart[size_t(s + 1)];
         ++t) {
      int32_t pos = b.positions[size_t(t)];
      int32_t page = b.page(s, pos);
      int64_t slot = int64_t(page) * kPageTokens + pos % kPageTokens;
      if (page < 0 || slot >= int64_t(slots.size()))
        return "step batch: sequence " + std::to_string(b.seqIds[size_t(s)]) +
               " has no valid page for position " + std::to_string(pos);
      slots[size_t(slot)] = b.tokens[size_t(t)];
    }
  return "";
}

std::vector<int32_t> PageTokens::history(const StepBatch &b, int64_t seq,
                                         int64_t n) const {
  std::vector<int32_t> out(size_t(n), -1);
  for (int64_t p = 0; p < n; ++p) {
    int32_t page = b.page(seq, p);
    int64_t slot = int64_t(page) * kPageTokens + p % kPageTokens;
    if (page >= 0 && slot < int64_t(slots.size()))
      out[size_t(p)] = slots[size_t(slot)];
  }
  return out;
}
