//===- EngineSpeculative.cpp - drafts proposed, verified, rolled back -----===//
//
// Before scheduling, every request decoding one token at a time gets up to
// k drafts appended to its tokens, so the scheduler sees 1 + k new tokens
// (pages and budget counted as for any chunk) and the step verifies them
// in one segment. Afterwards the kept prefix is what computed() names and
// hashes; the rejected tail is cut from the tokens, its pages go back to
// the pool and the executor is told to truncate.
//
//===----------------------------------------------------------------------===//
#include "engine/Engine.h"
#include "engine/Sampler.h"
#include "engine/Speculative.h"

#include <algorithm>

using namespace dsrt;
using namespace dsrt::engine;

namespace {
/// Drafts `r` may propose this step: it decodes (its last token is the one
/// to run), samples or decodes greedily (forced tokens and full logits
/// need no drafts), and has room for the drafts and the token after them.
int64_t draftRoom(const Request &r, int64_t k) {
  if (r.state != RequestState::Running || r.params.forced ||
      r.params.returnLogits || r.params.processed() ||
      r.pendingFinish != DSRT_FINISH_NONE ||
      r.numComputed != r.numTokens() - 1 || r.numComputed == 0)
    return 0;
  return std::max<int64_t>(0, std::min(k, r.maxTokens - r.numFed() - 1));
}
} // namespace

dsrt_status Engine::proposeDrafts() {
  std::vector<Request *> drafting;
  std::vector<int64_t> room;
  for (Request *r : scheduler.runningList())
    if (int64_t n = draftRoom(*r, config.speculativeTokens)) {
      drafting.push_back(r);
      room.push_back(n);
    }
  std::vector<double> q;
  for (int64_t j = 0; j < config.speculativeTokens; ++j) {
    std::vector<DraftQuery> queries;
    std::vector<Request *> asked;
    for (size_t i = 0; i < drafting.size(); ++i)
      if (room[i] > j) {
        Request *r = drafting[i];
        queries.push_back(
            {r->id, r->tokens.data(), r->numTokens(), r->numComputed});
        asked.push_back(r);
      }
    if (queries.empty())
      break;
    draftLogits.resize(queries.size() * size_t(vocab));
    if (dsrt_status st = executor->draft(queries, draftLogits.data()))
      return st;
    for (size_t i = 0; i < asked.size(); ++i) {
      Request *r = asked[i];
      const float *row = draftLogits.data() + i * size_t(vocab);
      samplingProbs(row, vocab, r->params, q);
      int32_t d = samplesRandomly(r->params)
                      ? drawFrom(q.data(), vocab, &r->rng)
                      : dsrt_sample_top_k(row, vocab, 0, 1, 0, nullptr);
      if (samplesRandomly(r->params))
        r->draftProbs.insert(r->draftProbs.end(), q.begin(), q.end());
      r->tokens.push_back(d);
      ++r->numDrafts;
    }
  }
  return DSRT_OK;
}

void Engine::dropDrafts(Request *r, int64_t keep) {
  if (r->numDrafts <= keep)
    return;
  r->tokens.resize(size_t(r->numTokens() - (r->numDrafts - keep)));
  r->numDrafts = keep;
  if (!r->draftProbs.empty())
    r->draftProbs.resize(size_t(keep * vocab));
}

void Engine::trimDrafts(const std::vector<ScheduledRequest> &sched) {
  // The budget may have cut a request's segment short, or left it out.
  std::vector<Request *> scheduled;
  for (const ScheduledRequest &s : sched) {
    dropDrafts(s.request, s.numNew - 1);
    scheduled.push_back(s.request);
  }
  for (Request *r : scheduler.runningList())
    if (std::find(scheduled.begin(), scheduled.end(), r) == scheduled.end())
      dropDrafts(r, 0);
}

void Engine::afterVerify(const ScheduledRequest &s, const float *rows) {
  Request *r = s.request;
  int64_t k = r->numDrafts, base = r->numComputed;
  Verdict v = verifyDrafts(*r, r->tokens.data() + base + 1, k, rows,
                           r->draftProbs.data(), vocab);
  ++specRounds;
  specDrafted += k;
  specAccepted += v.accepted;
  std::vector<int32_t> out(r->tokens.begin() + base + 1,
                           r->tokens.begin() + base + 1 + v.accepted);
  out.push_back(v.next);
  r->tokens.resize(size_t(base + 1));
  r->numDrafts = 0;
  r->draftProbs.clear();
  // Emitted one by one, as plain steps would, up to a finishing token.
  dsrt_finish_reason reason = DSRT_FINISH_NONE;
  int64_t emitted = 0;
  for (int32_t t : out) {
    r->tokens.push_back(t);
    emit(r, t, rows + emitted * vocab, DSRT_FINISH_NONE);
    ++emitted;
    reason = finishAfter(*r, t, config.eosTokenId);
    if (reason != DSRT_FINISH_NONE)
      break;
  }
  // Cache entries kept: the fed token and the accepted drafts still in
  // the tokens.
  scheduler.computed({r, 1 + std::min(v.accepted, emitted)});
  executor->truncate(r->id, r->numComputed);
  scheduler.trimPages(r);
  if (reason != DSRT_FINISH_NONE)
    finish(r, reason);
}
