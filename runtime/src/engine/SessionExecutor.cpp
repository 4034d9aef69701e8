//===- SessionExecutor.cpp - one dsrt_session per running sequence --------===//
#include "engine/SessionExecutor.h"

#include "api/Error.h"
#include "api/Model.h"
#include "dsrt/dsrt_mtp.h"

#include <algorithm>
#include <cstring>

using namespace dsrt::engine;

SessionExecutor::SessionExecutor(dsrt_model *model, int64_t maxContext,
                                 int64_t numPages, bool drafting)
    : model(model), maxCtx(maxContext), drafting(drafting) {
  dsrt_model_info_get(model, &info);
  hiddenSize = dsrt_model_mtp_hidden_size(model);
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

const SessionExecutor::Sequence *
SessionExecutor::donorFor(const StepBatch &b, int64_t s, int64_t start,
                          int64_t self) const {
  int64_t n = (start + kPageTokens - 1) / kPageTokens;
  for (const auto &[id, seq] : sessions) {
    dsrt_session *d = seq.session.get();
    // Device caches would need a device copy; those recompute. A drafting
    // donor must also hold the MTP cache of the verified pairs before
    // start - 1 (it has drafted past them).
    if (id == self || d->cuda || dsrt_session_position(d) < start ||
        int64_t(seq.pages.size()) < n ||
        (drafting && (seq.mtpTrue < start - 1 || !d->mtpCache)))
      continue;
    bool same = true;
    for (int64_t i = 0; i < n && same; ++i)
      same = seq.pages[size_t(i)] == b.page(s, i * kPageTokens);
    if (same)
      return &seq;
  }
  return nullptr;
}

/// Rows [0, n) of every layer of a [layers, capacity, width] cache.
static void copyRows(uint8_t *dst, int64_t dstCapacity, const uint8_t *src,
                     int64_t srcCapacity, int64_t layers, size_t row,
                     int64_t n) {
  for (int64_t l = 0; l < layers; ++l)
    std::memcpy(dst + size_t(l * dstCapacity) * row,
                src + size_t(l * srcCapacity) * row, size_t(n) * row);
}

dsrt_status SessionExecutor::fillPrefix(const StepBatch &b, int64_t s,
                                        Sequence &seq, int64_t start) {
  dsrt_session *session = seq.session.get();
  int64_t have = dsrt_session_position(session);
  // Two live sequences holding the same page means that page is a named,
  // full prefix page: its cache rows are the same in both sessions.
  const Sequence *donorSeq =
      have == 0 && !session->cuda && (!drafting || start >= 2)
          ? donorFor(b, s, start, b.seqIds[size_t(s)])
          : nullptr;
  if (donorSeq && !drafting) {
    const dsrt_session *donor = donorSeq->session.get();
    copyRows(session->cache.get(), session->cacheRows, donor->cache.get(),
             donor->cacheRows, info.num_layers,
             size_t(model->manifest.cacheRowBytes()), start);
    session->position = start;
    copiedTokens += start;
    return DSRT_OK;
  }
  if (donorSeq) {
    // Drafting also needs the MTP cache of the pairs (h_i, t_{i+1}),
    // i < start - 1 (the donor's verified ones: same tokens), and the
    // hidden state h_{start-1}, which the donor may have dropped: the
    // main rows before start - 1 are copied and token start - 1 is run
    // again, which yields it.
    const dsrt_session *donor = donorSeq->session.get();
    size_t row = size_t(model->manifest.cacheRowBytes());
    int64_t mtpLayers = model->manifest.mtpCacheLayers;
    if (!session->mtpCache) {
      if (!session->mtpCache.allocate(size_t(maxCtx), size_t(mtpLayers) * row))
        return fail(DSRT_ERROR_OUT_OF_MEMORY, "cannot allocate the MTP cache");
    }
    copyRows(session->cache.get(), session->cacheRows, donor->cache.get(),
             donor->cacheRows, info.num_layers, row, start - 1);
    copyRows(session->mtpCache.get(), maxCtx, donor->mtpCache.get(),
             donor->capacity, mtpLayers, row, start - 1);
    session->position = start - 1;
    session->mtpPosition = seq.mtpTrue = seq.hiddenStart = start - 1;
    seq.hidden.clear();
    std::vector<int32_t> last = pages.history(b, s, start);
    scratch.resize(size_t(info.vocab_size));
    if (dsrt_status st = feed(seq, last.data() + start - 1, 1, scratch.data()))
      return st;
    copiedTokens += start - 1;
    recomputedTokens += 1;
    return DSRT_OK;
  }
  // The context's ids come back through the pages (written by whichever
  // request computed them) and are recomputed.
  std::vector<int32_t> prefix = pages.history(b, s, start);
  scratch.resize(size_t((start - have) * info.vocab_size));
  if (dsrt_status st =
          feed(seq, prefix.data() + have, start - have, scratch.data()))
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
    it = sessions
             .emplace(
                 id,
                 Sequence{SessionPtr(raw, dsrt_session_free), {}, {}, 0, 0, {}})
             .first;
  }
  Sequence &seq = it->second;
  dsrt_session *session = seq.session.get();
  if (dsrt_session_position(session) > start) { // recomputing from earlier
    dsrt_session_reset(session);
    seq.hidden.clear();
    seq.hiddenStart = seq.mtpTrue = 0;
  }
  if (dsrt_session_position(session) < start)
    if (dsrt_status st = fillPrefix(b, s, seq, start))
      return st;
  scratch.resize(size_t(n * vocab));
  if (dsrt_status st = feed(seq, b.tokens.data() + q0, n, scratch.data()))
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

dsrt_status SessionExecutor::feed(Sequence &seq, const int32_t *tokens,
                                  int64_t n, float *logits) {
  if (!drafting)
    return dsrt_session_prefill(seq.session.get(), tokens, n, logits);
  hiddenScratch.resize(size_t(n * hiddenSize));
  if (dsrt_status st = dsrt_session_prefill_hidden(
          seq.session.get(), tokens, n, logits, hiddenScratch.data()))
    return st;
  seq.hidden.insert(seq.hidden.end(), hiddenScratch.begin(),
                    hiddenScratch.end());
  return DSRT_OK;
}

void SessionExecutor::truncate(int64_t seqId, int64_t len) {
  auto it = sessions.find(seqId);
  if (it == sessions.end())
    return;
  Sequence &seq = it->second;
  dsrt_session *session = seq.session.get();
  // The kernels never read past the position: moving it back forgets the
  // rejected entries.
  if (len < session->position)
    session->position = len;
  int64_t rows = std::max<int64_t>(0, len - seq.hiddenStart);
  if (int64_t(seq.hidden.size()) > rows * hiddenSize)
    seq.hidden.resize(size_t(rows * hiddenSize));
  seq.mtpTrue = std::min(seq.mtpTrue, std::max<int64_t>(0, len - 1));
  session->mtpPosition = std::min(session->mtpPosition, seq.mtpTrue);
}

dsrt_status SessionExecutor::draftOne(const DraftQuery &q, float *row) {
  auto it = sessions.find(q.seqId);
  int64_t c = q.numComputed, drafts = q.numTokens - c - 1;
  if (it == sessions.end() || c < 1 || drafts < 0 ||
      dsrt_session_position(it->second.session.get()) != c)
    return fail(DSRT_ERROR_ARGUMENT, "draft: sequence " +
                                         std::to_string(q.seqId) +
                                         " has no computed context of " +
                                         std::to_string(c) + " tokens");
  Sequence &seq = it->second;
  dsrt_session *session = seq.session.get();
  int64_t vocab = info.vocab_size;
  int64_t rows = int64_t(seq.hidden.size()) / hiddenSize;
  if (c - 1 < seq.hiddenStart || c - 1 >= seq.hiddenStart + rows)
    return fail(DSRT_ERROR_ARGUMENT, "draft: sequence " +
                                         std::to_string(q.seqId) +
                                         " has no hidden state at position " +
                                         std::to_string(c - 1));
  if (drafts > 0) {
    // The module again, one position further, on its own output state at
    // the previous draft and the token drafted from it.
    if (session->mtpPosition != c - 1 + drafts ||
        int64_t(seq.chained.size()) != hiddenSize)
      return fail(DSRT_ERROR_ARGUMENT,
                  "draft: sequence " + std::to_string(q.seqId) +
                      " asked for draft " + std::to_string(drafts + 1) +
                      " out of order");
    hiddenScratch.resize(size_t(hiddenSize));
    if (dsrt_status st = dsrt_session_draft(session, seq.chained.data(),
                                            q.tokens + q.numTokens - 1, 1, row,
                                            hiddenScratch.data()))
      return st;
    seq.chained.swap(hiddenScratch);
    return DSRT_OK;
  }
  // The pairs (h_i, t_{i+1}) not in the MTP cache yet; the last one at
  // least (its logits draft the token after the sampled one), also when a
  // question came twice without a verification between.
  int64_t start = std::min(seq.mtpTrue, c - 1);
  if (start < seq.hiddenStart) // hiddenStart <= mtpTrue - 1 by construction
    return fail(DSRT_ERROR_ARGUMENT, "draft: sequence " +
                                         std::to_string(q.seqId) +
                                         " lost the hidden state of position " +
                                         std::to_string(start));
  session->mtpPosition = start;
  int64_t n = c - start;
  draftScratch.resize(size_t(n * vocab));
  hiddenScratch.resize(size_t(n * hiddenSize));
  if (dsrt_status st = dsrt_session_draft(
          session, seq.hidden.data() + (start - seq.hiddenStart) * hiddenSize,
          q.tokens + start + 1, n, draftScratch.data(), hiddenScratch.data()))
    return st;
  std::memcpy(row, draftScratch.data() + (n - 1) * vocab,
              size_t(vocab) * sizeof(float));
  seq.chained.assign(hiddenScratch.end() - hiddenSize, hiddenScratch.end());
  seq.mtpTrue = c;
  // Only h_{c-1} is needed from now on (chained drafts, a repeated
  // question).
  seq.hidden.erase(seq.hidden.begin(),
                   seq.hidden.begin() + (c - 1 - seq.hiddenStart) * hiddenSize);
  seq.hiddenStart = c - 1;
  return DSRT_OK;
}

dsrt_status SessionExecutor::draft(const std::vector<DraftQuery> &queries,
                                   float *logits) {
  if (!drafting)
    return Executor::draft(queries, logits);
  for (size_t i = 0; i < queries.size(); ++i)
    if (dsrt_status st =
            draftOne(queries[i], logits + int64_t(i) * info.vocab_size))
      return st;
  return DSRT_OK;
}
