//===- SessionExecutor.cpp - one dsrt_session per running sequence --------===//
#include "engine/SessionExecutor.h"

#include "api/Error.h"

#include <algorithm>
#include <cstring>

using namespace dsrt::engine;

SessionExecutor::SessionExecutor(dsrt_model *model, int64_t maxContext,
                                 int64_t numPages)
    : model(model), maxCtx(maxContext) {
  dsrt_model_info_get(model, &info);
  pages.resize(numPages);
}

dsrt_status SessionExecutor::run(const StepBatch &b, float *logits) {
  std::string problem = checkBatch(b, info.vocab_size, maxCtx);
  if (problem.empty())
    problem = pages.write(b);
  if (!problem.empty())
    return fail(DSRT_ERROR_ARGUMENT, problem);
  size_t nextRow = 0;
  for (int64_t s = 0; s < b.numSeqs(); ++s)
    if (dsrt_status st = runSequence(b, s, logits, nextRow))
      return st;
  return DSRT_OK;
}

dsrt_status SessionExecutor::runSequence(const StepBatch &b, int64_t s,
                                         float *logits, size_t &nextRow) {
  int64_t vocab = info.vocab_size;
  int32_t q0 = b.queryStart[size_t(s)], q1 = b.queryStart[size_t(s + 1)];
  int64_t n = q1 - q0, start = b.positions[size_t(q0)];
  auto it = sessions.find(b.seqIds[size_t(s)]);
  if (it == sessions.end()) {
    dsrt_session *raw = nullptr;
    if (dsrt_status st = dsrt_session_create(model, maxCtx, &raw))
      return st;
    it = sessions
             .emplace(b.seqIds[size_t(s)], SessionPtr(raw, dsrt_session_free))
             .first;
  }
  dsrt_session *session = it->second.get();
  int64_t have = dsrt_session_position(session);
  if (have > start) { // the engine recomputes from an earlier point
    dsrt_session_reset(session);
    have = 0;
  }
  if (have < start) {
    // A prefix-cache hit: the context's ids come back through the pages
    // (written by whichever request computed them) and are recomputed.
    std::vector<int32_t> prefix = pages.history(b, s, start);
    scratch.resize(size_t((start - have) * vocab));
    if (dsrt_status st = dsrt_session_prefill(session, prefix.data() + have,
                                              start - have, scratch.data()))
      return st;
    recomputedTokens += start - have;
  }
  scratch.resize(size_t(n * vocab));
  if (dsrt_status st = dsrt_session_prefill(session, b.tokens.data() + q0, n,
                                            scratch.data()))
    return st;
  for (; nextRow < b.logitsRows.size() && b.logitsRows[nextRow] < q1; ++nextRow)
    std::memcpy(logits + int64_t(nextRow) * vocab,
                scratch.data() + (b.logitsRows[nextRow] - q0) * vocab,
                size_t(vocab) * sizeof(float));
  return DSRT_OK;
}
