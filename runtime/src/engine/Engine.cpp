//===- Engine.cpp - continuous batching over an Executor ------------------===//
#include "engine/Engine.h"

#include "api/Error.h"
#include "api/Validation.h"
#include "engine/Sampler.h"
#include "engine/Speculative.h"

#include <algorithm>
#include <cstring>

using namespace dsrt;
using namespace dsrt::engine;

std::string Engine::check(const EngineConfig &c, const Executor &ex) {
  const SchedulerConfig &s = c.scheduler;
  if (c.maxModelLen <= 0 || c.maxModelLen > ex.maxContext())
    return "max_model_len must be in [1, " + std::to_string(ex.maxContext()) +
           "] (the model's positions), got " + std::to_string(c.maxModelLen);
  if (s.maxNumSeqs <= 0)
    return "max_num_seqs must be >= 1, got " + std::to_string(s.maxNumSeqs);
  if (s.maxNumBatchedTokens <= 0)
    return "max_num_batched_tokens must be >= 1, got " +
           std::to_string(s.maxNumBatchedTokens);
  int64_t need = (c.maxModelLen + kPageTokens - 1) / kPageTokens;
  if (s.numPages < need)
    return "the KV cache pool of " + std::to_string(s.numPages) +
           " pages (64 tokens x " + std::to_string(ex.cacheBytesPerToken()) +
           " bytes each) cannot hold one request of max_model_len " +
           std::to_string(c.maxModelLen) + " tokens (" + std::to_string(need) +
           " pages, " +
           std::to_string(need * kPageTokens * ex.cacheBytesPerToken()) +
           " bytes)";
  if (s.numPages > INT32_MAX / kPageTokens)
    return "the KV cache pool of " + std::to_string(s.numPages) +
           " pages is larger than page ids allow";
  if (c.speculativeTokens < 0 || c.speculativeTokens > kMaxSpeculativeTokens)
    return "speculative tokens must be in [0, " +
           std::to_string(kMaxSpeculativeTokens) + "], got " +
           std::to_string(c.speculativeTokens);
  if (c.speculativeTokens > 0 && !ex.canDraft())
    return "speculative decoding needs a drafter, and this executor has none";
  return "";
}

Engine::Engine(std::unique_ptr<Executor> ex, const EngineConfig &c)
    : executor(std::move(ex)), config(c), vocab(executor->vocabSize()),
      scheduler(c.scheduler) {
  publishStats(0);
}

Engine::~Engine() { stop(); }

int64_t Engine::add(const int32_t *prompt, int64_t n,
                    const dsrt_request_params &params,
                    dsrt_engine_callback callback, void *userData,
                    std::string &error) {
  // Lengths first: the ids are read only once n is known to be sane.
  int64_t poolTokens = config.scheduler.numPages * kPageTokens;
  error.clear();
  if (n > config.maxModelLen)
    error = "prompt of " + std::to_string(n) +
            " tokens exceeds max_model_len (" +
            std::to_string(config.maxModelLen) + ")";
  else if (n > poolTokens)
    error = "prompt of " + std::to_string(n) +
            " tokens exceeds the KV cache pool (" + std::to_string(poolTokens) +
            " tokens)";
  else
    error = checkTokens(prompt, n, vocab);
  auto r = std::make_unique<Request>();
  if (error.empty())
    error = readParams(params, vocab, r->params);
  if (error.empty() && params.priority != 0 && !config.scheduler.priority)
    error = "priority " + std::to_string(params.priority) +
            " needs priority scheduling (scheduling_policy "
            "DSRT_SCHEDULE_PRIORITY; ds-serve --scheduling-policy priority)";
  if (!error.empty())
    return -1;
  r->tokens.assign(prompt, prompt + n);
  r->promptLen = n;
  r->maxTokens = std::min(r->params.maxTokens, config.maxModelLen - n);
  r->callback = callback;
  r->userData = userData;
  r->rng = initialRngState(r->params.seed);
  int64_t id = r->id = nextId++;
  {
    std::lock_guard<std::mutex> lock(inboxMutex);
    inboxAdds.push_back(std::move(r));
    idle = false;
  }
  inboxCv.notify_all();
  return id;
}

bool Engine::abort(int64_t id) {
  if (id <= 0 || id >= nextId)
    return false;
  {
    std::lock_guard<std::mutex> lock(inboxMutex);
    inboxAborts.push_back(id);
  }
  inboxCv.notify_all();
  return true;
}

void Engine::drainInbox() {
  std::vector<std::unique_ptr<Request>> adds;
  std::vector<int64_t> aborts;
  {
    std::lock_guard<std::mutex> lock(inboxMutex);
    adds.swap(inboxAdds);
    aborts.swap(inboxAborts);
  }
  for (auto &r : adds) {
    scheduler.addWaiting(r.get());
    int64_t id = r->id;
    live.emplace(id, std::move(r));
  }
  for (int64_t id : aborts) {
    auto it = live.find(id);
    if (it != live.end())
      finish(it->second.get(), DSRT_FINISH_ABORT);
  }
}

StepBatch Engine::buildBatch(const std::vector<ScheduledRequest> &sched,
                             std::vector<int64_t> &firstRow) {
  StepBatch b;
  b.queryStart.push_back(0);
  for (const ScheduledRequest &s : sched)
    b.maxPagesPerSeq =
        std::max(b.maxPagesPerSeq, int32_t(s.request->pages.size()));
  for (const ScheduledRequest &s : sched) {
    const Request &r = *s.request;
    int64_t end = r.numComputed + s.numNew;
    int32_t q0 = int32_t(b.tokens.size());
    firstRow.push_back(int64_t(b.logitsRows.size()));
    for (int64_t p = r.numComputed; p < end; ++p) {
      b.tokens.push_back(r.tokens[size_t(p)]);
      b.positions.push_back(int32_t(p));
      // The last fed token's row, and with drafts each draft's row too.
      if (r.wantsAllRows(r.numComputed) || p >= r.numTokens() - 1 - r.numDrafts)
        b.logitsRows.push_back(q0 + int32_t(p - r.numComputed));
    }
    b.seqIds.push_back(r.id);
    b.queryStart.push_back(int32_t(b.tokens.size()));
    b.contextLens.push_back(int32_t(end));
    for (int32_t i = 0; i < b.maxPagesPerSeq; ++i)
      b.blockTables.push_back(size_t(i) < r.pages.size() ? r.pages[size_t(i)]
                                                         : -1);
  }
  return b;
}

void Engine::emit(Request *r, int32_t token, const float *row,
                  dsrt_finish_reason reason) {
  if (!r->callback)
    return;
  dsrt_engine_event e{};
  e.request_id = r->id;
  e.token = token;
  e.index = token >= 0 ? r->numFed() - 1 : -1;
  e.vocab_size = vocab;
  e.finish_reason = reason;
  e.prefix_hit_tokens = r->prefixHitTokens;
  if (token >= 0) {
    e.logits = row;
    e.num_logits_rows = 1;
  } else if (r->params.returnLogits && reason != DSRT_FINISH_ABORT) {
    e.logits = r->logits.data();
    e.num_logits_rows = r->numTokens();
  }
  r->callback(r->userData, &e);
}

void Engine::emitPromptRows(Request *r, int64_t first, int64_t count,
                            const float *rows) {
  // Rows of prompt tokens but the last, each once.
  int64_t b = std::max(first, r->promptRowsSent);
  int64_t e = std::min(first + count, r->promptLen - 1);
  if (b >= e)
    return;
  r->promptRowsSent = e;
  if (!r->callback)
    return;
  dsrt_engine_event ev{};
  ev.request_id = r->id;
  ev.token = -1;
  ev.index = b;
  ev.logits = rows + (b - first) * vocab;
  ev.num_logits_rows = e - b;
  ev.vocab_size = vocab;
  ev.finish_reason = DSRT_FINISH_NONE;
  ev.prefix_hit_tokens = r->prefixHitTokens;
  r->callback(r->userData, &ev);
}

void Engine::finish(Request *r, dsrt_finish_reason reason) {
  scheduler.remove(r);
  executor->release(r->id);
  emit(r, -1, nullptr, reason);
  live.erase(r->id);
  std::lock_guard<std::mutex> lock(statsMutex);
  ++snapshot.finished_requests;
}

void Engine::afterStep(const std::vector<ScheduledRequest> &sched,
                       const std::vector<int64_t> &firstRow,
                       const float *logits) {
  for (size_t i = 0; i < sched.size(); ++i) {
    Request *r = sched[i].request;
    if (r->numDrafts > 0) {
      afterVerify(sched[i], logits + firstRow[i] * vocab);
      continue;
    }
    int64_t before = r->numComputed;
    bool allRows = r->wantsAllRows(before);
    scheduler.computed(sched[i]);
    if (r->params.promptLogits && allRows)
      emitPromptRows(r, before, sched[i].numNew, logits + firstRow[i] * vocab);
    if (r->params.returnLogits) {
      r->logits.resize(size_t(r->numTokens() * vocab));
      std::memcpy(r->logits.data() + before * vocab,
                  logits + firstRow[i] * vocab,
                  size_t(sched[i].numNew * vocab) * sizeof(float));
    }
    if (r->numComputed < r->numTokens())
      continue; // a prompt chunk: no row to sample from yet
    const float *last =
        logits + (firstRow[i] + (allRows ? sched[i].numNew - 1 : 0)) * vocab;
    if (r->pendingFinish != DSRT_FINISH_NONE) {
      finish(r, r->pendingFinish);
      continue;
    }
    if (r->numFed() >= r->maxTokens) {
      finish(r, DSRT_FINISH_LENGTH);
      continue;
    }
    int32_t token = chooseToken(*r, last, vocab, config.eosTokenId);
    r->tokens.push_back(token);
    emit(r, token, last, DSRT_FINISH_NONE);
    dsrt_finish_reason reason = finishAfter(*r, token, config.eosTokenId);
    if (reason == DSRT_FINISH_NONE)
      continue;
    // Its row is part of the logits a return_logits request asked for.
    if (r->params.returnLogits)
      r->pendingFinish = reason;
    else
      finish(r, reason);
  }
}

dsrt_status Engine::step(bool &hasWork) {
  std::unique_lock<std::mutex> lock(stepMutex, std::try_to_lock);
  if (!lock.owns_lock())
    return fail(DSRT_ERROR_ARGUMENT,
                "dsrt_engine_step: another step is running (the engine's "
                "loop, another thread or a callback)");
  drainInbox();
  if (config.speculativeTokens > 0)
    if (dsrt_status st = proposeDrafts())
      return st;
  std::vector<ScheduledRequest> sched = scheduler.schedule([&](Request *r) {
    dropDrafts(r, 0);
    executor->release(r->id);
  });
  if (config.speculativeTokens > 0)
    trimDrafts(sched);
  int64_t stepTokens = 0;
  if (!sched.empty()) {
    std::vector<int64_t> firstRow;
    StepBatch batch = buildBatch(sched, firstRow);
    stepTokens = batch.numTokens();
    logitsBuffer.resize(batch.logitsRows.size() * size_t(vocab));
    if (dsrt_status st = executor->run(batch, logitsBuffer.data()))
      return st;
    afterStep(sched, firstRow, logitsBuffer.data());
  }
  publishStats(stepTokens);
  std::lock_guard<std::mutex> inbox(inboxMutex);
  hasWork = !live.empty() || !inboxAdds.empty() || !inboxAborts.empty();
  idle = !hasWork;
  if (idle)
    idleCv.notify_all();
  return DSRT_OK;
}

void Engine::publishStats(int64_t stepTokens) {
  const BlockPool &pool = scheduler.blockPool();
  std::lock_guard<std::mutex> lock(statsMutex);
  dsrt_engine_stats &s = snapshot;
  s.running = int64_t(scheduler.runningList().size());
  s.waiting = int64_t(scheduler.waitingQueue().size());
  s.pages_total = pool.numPages();
  s.pages_free = pool.numFree();
  s.pages_used = s.pages_total - s.pages_free;
  s.pages_cached = pool.cache().numCached();
  s.preemptions = scheduler.preemptions;
  s.prefix_query_tokens = scheduler.prefixQueryTokens;
  s.prefix_hit_tokens = scheduler.prefixHitTokens;
  if (stepTokens > 0) {
    ++s.steps;
    s.scheduled_tokens += stepTokens;
  }
  s.last_step_tokens = stepTokens;
  s.spec_rounds = specRounds;
  s.spec_draft_tokens = specDrafted;
  s.spec_accepted_tokens = specAccepted;
  s.speculative_tokens = config.speculativeTokens;
  executor->addStats(s);
  s.max_model_len = config.maxModelLen;
  s.page_tokens = kPageTokens;
}

dsrt_engine_stats Engine::stats() {
  dsrt_engine_stats s;
  {
    std::lock_guard<std::mutex> lock(statsMutex);
    s = snapshot;
  }
  std::lock_guard<std::mutex> lock(inboxMutex);
  s.waiting += int64_t(inboxAdds.size());
  return s;
}

void Engine::loop() {
  bool hasWork = false;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(inboxMutex);
      inboxCv.wait(lock, [&] {
        return stopRequested || hasWork || !inboxAdds.empty() ||
               !inboxAborts.empty();
      });
      if (stopRequested)
        break;
    }
    if (dsrt_status st = step(hasWork)) {
      loopStatus = st;
      loopError = dsrt_last_error();
      break;
    }
  }
  std::lock_guard<std::mutex> lock(inboxMutex);
  looping = false;
  idleCv.notify_all();
}

dsrt_status Engine::start() {
  if (looping)
    return fail(DSRT_ERROR_ARGUMENT, "the engine's loop is already running");
  if (thread.joinable())
    thread.join(); // a loop that ended on a failure
  stopRequested = false;
  loopStatus = DSRT_OK;
  looping = true;
  thread = std::thread([this] { loop(); });
  return DSRT_OK;
}

dsrt_status Engine::stop() {
  {
    std::lock_guard<std::mutex> lock(inboxMutex);
    stopRequested = true;
  }
  inboxCv.notify_all();
  if (thread.joinable())
    thread.join();
  if (loopStatus != DSRT_OK)
    return fail(loopStatus, loopError);
  return DSRT_OK;
}

dsrt_status Engine::waitIdle() {
  std::unique_lock<std::mutex> lock(inboxMutex);
  if (!looping && !idle)
    return fail(DSRT_ERROR_ARGUMENT,
                "dsrt_engine_wait_idle: requests are pending and the loop is "
                "not running (dsrt_engine_start)");
  idleCv.wait(lock, [&] { return idle || !looping; });
  if (!idle)
    return fail(loopStatus != DSRT_OK ? loopStatus : DSRT_ERROR_ARGUMENT,
                loopError.empty() ? "the engine's loop stopped" : loopError);
  return DSRT_OK;
}

std::string Engine::checkInvariants() const {
  const BlockPool &pool = scheduler.blockPool();
  if (!pool.consistent())
    return "free queue or prefix cache inconsistent";
  std::vector<int32_t> holders(size_t(pool.numPages()), 0);
  for (const auto &[id, r] : live) {
    for (size_t i = 0; i < r->pages.size(); ++i) {
      int32_t p = r->pages[i];
      ++holders[size_t(p)];
      // A page written by this request (past its cached prefix) is its
      // own: nobody else may hold it.
      if (int64_t(i) * kPageTokens >= r->prefixHitTokens &&
          int64_t(i) >= r->numPagesOffered && pool.refCount(p) != 1)
        return "page " + std::to_string(p) + " of request " +
               std::to_string(id) + " is shared while being written";
    }
    if (r->state == RequestState::Running &&
        int64_t(r->pages.size()) * kPageTokens < r->numComputed)
      return "request " + std::to_string(id) +
             " has computed tokens outside its pages";
    if (r->state == RequestState::Waiting && !r->pages.empty())
      return "waiting request " + std::to_string(id) + " holds pages";
  }
  for (int32_t p = 0; p < int32_t(pool.numPages()); ++p)
    if (holders[size_t(p)] != pool.refCount(p))
      return "page " + std::to_string(p) + " has " +
             std::to_string(pool.refCount(p)) + " references but " +
             std::to_string(holders[size_t(p)]) + " holders";
  return "";
}
