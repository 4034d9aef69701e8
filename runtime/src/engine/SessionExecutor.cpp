//===- SessionExecutor.cpp - one dsrt_session per running sequence --------===//
#include "engine/SessionExecutor.h"

#include "api/Error.h"
#include "api/Model.h"

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

dsrt_session *SessionExecutor::donorFor(const StepBatch &b, int64_t s,
                                        int64_t start, int64_t self) const {
  int64_t n = (start + kPageTokens - 1) / kPageTokens;
  for (const auto &[id, seq] : sessions) {
    dsrt_session *d = seq.session.get();
    // Device caches would need a device copy; those recompute.
    if (id == self || d->cuda || dsrt_session_position(d) < start ||
        int64_t(seq.pages.size()) < n)
      continue;
    bool same = true;
    for (int64_t i = 0; i < n && same; ++i)
      same = seq.pages[size_t(i)] == b.page(s, i * kPageTokens);
    if (same)
      return d;
  }
  return nullptr;
}

dsrt_status SessionExecutor::fillPrefix(const StepBatch &b, int64_t s,
                                        Sequence &seq, int64_t start) {
  dsrt_session *session = seq.session.get();
  int64_t have = dsrt_session_position(session);
  // Two live sequences holding the same page means that page is a named,
  // full prefix page: its cache rows are the same in both sessions.
  if (have == 0 && !session->cuda) {
    if (dsrt_session *donor = donorFor(b, s, start, b.seqIds[size_t(s)])) {
      size_t row = size_t(info.cache_width) * model->cacheElementSize();
      for (int64_t l = 0; l < info.num_layers; ++l)
        std::memcpy(session->cache.get() + size_t(l * session->cacheRows) * row,
                    donor->cache.get() + size_t(l * donor->cacheRows) * row,
                    size_t(start) * row);
      session->position = start;
      copiedTokens += start;
      return DSRT_OK;
    }
  }
  // The context's ids come back through the pages (written by whichever
  // request computed them) and are recomputed.
  std::vector<int32_t> prefix = pages.history(b, s, start);
  scratch.resize(size_t((start - have) * info.vocab_size));
  if (dsrt_status st = dsrt_session_prefill(session, prefix.data() + have,
                                            start - have, scratch.data()))
    return st;
  recomputedTokens += start - have;
  return DSRT_OK;
}

dsrt_status SessionExecutor::runSequence(const StepBatch &b, int64_t s,
                                         float *logits, size_t &nextRow) {
  int64_t vocab = info.vocab_size;
  int32_t q0 = b.queryStart[size_t(s)], q1 = b.queryStart[size_t(s + 1)];
  int64_t n = q1 - q0, start = b.positions[size_t(q0)];
  int64_t id = b.seqIds[size_t(s)];
  auto it = sessions.find(id);
  if (it == sessions.end()) {
    dsrt_session *raw = nullptr;
    if (dsrt_status st = dsrt_session_create(model, maxCtx, &raw))
      return st;
    it = sessions.emplace(id, Sequence{SessionPtr(raw, dsrt_session_free), {}})
             .first;
  }
  Sequence &seq = it->second;
  dsrt_session *session = seq.session.get();
  if (dsrt_session_position(session) > start) // recomputing from earlier
    dsrt_session_reset(session);
  if (dsrt_session_position(session) < start)
    if (dsrt_status st = fillPrefix(b, s, seq, start))
      return st;
  scratch.resize(size_t(n * vocab));
  if (dsrt_status st = dsrt_session_prefill(session, b.tokens.data() + q0, n,
                                            scratch.data()))
    return st;
  int64_t numPages = (b.contextLens[size_t(s)] + kPageTokens - 1) / kPageTokens;
  seq.pages.assign(b.blockTables.begin() + s * b.maxPagesPerSeq,
                   b.blockTables.begin() + s * b.maxPagesPerSeq + numPages);
  for (; nextRow < b.logitsRows.size() && b.logitsRows[nextRow] < q1; ++nextRow)
    std::memcpy(logits + int64_t(nextRow) * vocab,
                scratch.data() + (b.logitsRows[nextRow] - q0) * vocab,
                size_t(vocab) * sizeof(float));
  return DSRT_OK;
}
