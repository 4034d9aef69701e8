//===- SessionBackend.cpp - serving on dsrt sessions (one per seat) --------===//

#include "SessionBackend.h"

#include "Logprobs.h"

#include "dsrt/dsrt.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace dsserve {

static double now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::unique_ptr<SessionBackend>
SessionBackend::create(const Config &c, std::string &error) {
  std::unique_ptr<SessionBackend> b(new SessionBackend());
  if (dsrt_model_load(c.artifact.c_str(), c.weights.c_str(), c.device.c_str(),
                      &b->model) != DSRT_OK) {
    error = dsrt_last_error();
    return nullptr;
  }
  dsrt_model_info mi;
  dsrt_model_info_get(b->model, &mi);
  int64_t ctx = c.maxContext > 0
                    ? c.maxContext
                    : std::min<int64_t>(mi.max_position_embeddings, 4096);
  if (c.maxNumSeqs < 1) {
    error = "--max-num-seqs must be at least 1";
    return nullptr;
  }
  if (c.kvCacheBytes > 0) {
    int64_t perSeat = c.kvCacheBytes / c.maxNumSeqs / mi.kv_cache_bytes_per_token;
    if (perSeat < 2) {
      error = "--kv-cache-bytes " + std::to_string(c.kvCacheBytes) +
              " leaves fewer than 2 tokens per sequence (" +
              std::to_string(mi.kv_cache_bytes_per_token) +
              " bytes per token, " + std::to_string(c.maxNumSeqs) +
              " sequences)";
      return nullptr;
    }
    ctx = std::min(ctx, perSeat);
  }
  for (int i = 0; i < c.maxNumSeqs; ++i) {
    dsrt_session *s = nullptr;
    if (dsrt_session_create(b->model, ctx, &s) != DSRT_OK) {
      error = dsrt_last_error();
      return nullptr;
    }
    b->sessions.push_back(s);
    b->positions.push_back(std::make_unique<std::atomic<int64_t>>(0));
  }
  b->modelInfo = {c.name, mi.vocab_size, ctx, mi.eos_token_id};
  b->maxWaiting = c.maxWaiting;
  for (int i = 0; i < c.maxNumSeqs; ++i)
    b->threads.emplace_back([p = b.get(), i] { p->worker(i); });
  return b;
}

SessionBackend::~SessionBackend() {
  shutdown();
  for (dsrt_session *s : sessions)
    dsrt_session_free(s);
  dsrt_model_free(model);
}

uint64_t SessionBackend::submit(GenerateRequest req,
                                std::shared_ptr<RequestSink> sink,
                                std::string &error) {
  std::lock_guard<std::mutex> lock(mutex);
  if (stopping) {
    error = "shutting down";
    return 0;
  }
  if (int(queue.size()) >= maxWaiting) {
    error = "the waiting queue is full (" + std::to_string(maxWaiting) + ")";
    return 0;
  }
  auto job = std::make_shared<Job>();
  job->id = nextId++;
  job->req = std::move(req);
  job->sink = std::move(sink);
  queue.push_back(job);
  jobs[job->id] = job;
  cv.notify_one();
  return job->id;
}

void SessionBackend::abort(uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex);
  if (auto it = jobs.find(id); it != jobs.end())
    it->second->aborted = true;
}

BackendStats SessionBackend::stats() const {
  BackendStats st;
  std::lock_guard<std::mutex> lock(mutex);
  st.waiting = int64_t(queue.size());
  st.running = running.load();
  st.pagesTotal = int64_t(sessions.size()) *
                  ((modelInfo.maxContext + kPageTokens - 1) / kPageTokens);
  for (const auto &p : positions)
    st.pagesUsed += (p->load() + kPageTokens - 1) / kPageTokens;
  return st;
}

void SessionBackend::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex);
    stopping = true;
    for (auto &[id, job] : jobs)
      job->aborted = true;
    cv.notify_all();
  }
  for (std::thread &t : threads)
    if (t.joinable())
      t.join();
  threads.clear();
}

void SessionBackend::worker(int index) {
  std::vector<float> logits;
  while (true) {
    std::shared_ptr<Job> job;
    {
      std::unique_lock<std::mutex> lock(mutex);
      cv.wait(lock, [&] { return stopping || !queue.empty(); });
      if (queue.empty())
        return; // stopping, nothing left
      job = queue.front();
      queue.pop_front();
      ++running;
    }
    run(sessions[index], *job, logits, *positions[index]);
    positions[index]->store(0);
    std::lock_guard<std::mutex> lock(mutex);
    jobs.erase(job->id);
    --running;
  }
}

void SessionBackend::run(dsrt_session *session, Job &job,
                         std::vector<float> &logits,
                         std::atomic<int64_t> &position) {
  const SamplingParams &p = job.req.params;
  const int64_t vocab = modelInfo.vocabSize;
  auto fail = [&](FinishReason r, std::string e) { job.sink->onFinish(r, e); };
  if (job.aborted)
    return fail(FinishReason::Abort, "");
  dsrt_session_reset(session);
  const std::vector<int32_t> &prompt = job.req.prompt;
  logits.resize(size_t(kPrefillChunk * vocab));
  int64_t n = int64_t(prompt.size()), lastRows = 0;
  for (int64_t at = 0; at < n; at += kPrefillChunk) {
    if (job.aborted)
      return fail(FinishReason::Abort, "");
    int64_t len = std::min(kPrefillChunk, n - at);
    if (dsrt_session_prefill(session, prompt.data() + at, len,
                             logits.data()) != DSRT_OK)
      return fail(FinishReason::Error, dsrt_last_error());
    lastRows = len;
    position.store(at + len);
  }
  const float *row = logits.data() + (lastRows - 1) * vocab;
  // ds-run's seeding (dsrt_generate), so seeded runs match it too.
  uint64_t rng = p.seed * 0x9E3779B97F4A7C15ULL + 1;
  for (int64_t generated = 0;;) {
    if (job.aborted)
      return fail(FinishReason::Abort, "");
    int32_t tok = dsrt_sample(row, vocab, p.temperature, p.topP, &rng);
    TokenOutput out;
    out.token = tok;
    out.isEos = tok == modelInfo.eosToken;
    if (p.topLogprobs >= 0)
      computeLogprobs(row, vocab, tok, p.topLogprobs, out);
    out.time = now();
    job.sink->onToken(out);
    ++generated;
    if (out.isEos && !p.ignoreEos)
      return fail(FinishReason::Stop, "");
    if (generated >= p.maxTokens)
      return fail(FinishReason::Length, "");
    if (dsrt_session_decode(session, tok, logits.data()) != DSRT_OK)
      return fail(FinishReason::Error, dsrt_last_error());
    position.fetch_add(1);
    row = logits.data();
  }
}

} // namespace dsserve
