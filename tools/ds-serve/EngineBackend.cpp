//===- EngineBackend.cpp - serving on the batching engine (dsrt_engine.h) -===//

#include "EngineBackend.h"

#include "Logprobs.h"
#include "dsrt/dsrt_comm.h"
#include "dsrt/dsrt_engine.h"

#include <algorithm>
#include <cstdio>

namespace dsserve {

struct EngineBackend::Live {
  EngineBackend *owner;
  std::shared_ptr<RequestSink> sink;
  int topLogprobs;
  std::vector<int32_t> stopTokenIds;
  std::vector<int32_t> prompt; // with prompt logprobs
  int64_t id = -1;
  /// Asked by the engine's thread until the final event.
  std::shared_ptr<TokenConstraint> constraint;
};

namespace {
void allowedTokens(void *user, const int32_t *output, int64_t n, uint8_t *mask,
                   int64_t vocab) {
  static_cast<TokenConstraint *>(user)->allowed(output, n, mask, vocab);
}
} // namespace

std::unique_ptr<EngineBackend>
EngineBackend::create(const Config &c, std::unique_ptr<Tokenizer> tokenizer,
                      std::string &error) {
  std::unique_ptr<EngineBackend> b(new EngineBackend());
  b->tok = std::move(tokenizer);
  if (dsrt_model_load(c.artifact.c_str(), c.weights.c_str(), c.device.c_str(),
                      &b->model) != DSRT_OK) {
    error = dsrt_last_error();
    return nullptr;
  }
  dsrt_model_info mi;
  dsrt_model_info_get(b->model, &mi);
  // A partitioned model under mpiexec: the other ranks serve nothing, they
  // run rank 0's engine steps (follow()).
  if (dsrt_model_rank(b->model) != 0) {
    b->follower = true;
    return b;
  }
  int64_t len = c.maxModelLen > 0
                    ? c.maxModelLen
                    : std::min<int64_t>(mi.max_position_embeddings, 4096);
  dsrt_engine_options o;
  dsrt_engine_options_default(&o);
  o.max_num_seqs = c.maxNumSeqs;
  o.max_model_len = len;
  o.max_num_batched_tokens = c.maxNumBatchedTokens;
  o.enable_prefix_caching = c.prefixCaching ? 1 : 0;
  o.speculative = c.speculative.c_str();
  o.scheduling_policy =
      c.priorityScheduling ? DSRT_SCHEDULE_PRIORITY : DSRT_SCHEDULE_FCFS;
  if (c.kvCacheBytes > 0)
    o.kv_cache_bytes = c.kvCacheBytes;
  else // every seat can hold a whole context
    o.num_pages = c.maxNumSeqs *
                  ((len + DSRT_ENGINE_PAGE_TOKENS - 1) / DSRT_ENGINE_PAGE_TOKENS);
  if (dsrt_engine_create(b->model, &o, &b->engine) != DSRT_OK ||
      dsrt_engine_start(b->engine) != DSRT_OK) {
    error = dsrt_last_error();
    return nullptr;
  }
  b->modelInfo = {c.name, mi.vocab_size, len, mi.eos_token_id};
  b->maxWaiting = c.maxWaiting;
  b->sharedPrefix = c.prefixCaching ? DSRT_ENGINE_PAGE_TOKENS : 0;
  b->maxNumSeqs = c.maxNumSeqs;
  return b;
}

EngineBackend::~EngineBackend() {
  shutdown();
  dsrt_engine_free(engine);
  dsrt_model_free(model);
}

void EngineBackend::onEvent(void *user, const dsrt_engine_event *e) {
  auto *l = static_cast<Live *>(user);
  if (e->finish_reason == DSRT_FINISH_NONE && e->token < 0) {
    // Prompt rows: row r scores prompt token index + r + 1.
    std::vector<TokenOutput> out(size_t(e->num_logits_rows));
    for (int64_t r = 0; r < e->num_logits_rows; ++r) {
      size_t at = size_t(e->index + r + 1);
      int32_t token = at < l->prompt.size() ? l->prompt[at] : 0;
      out[size_t(r)].token = token;
      computeLogprobs(e->logits + r * e->vocab_size, e->vocab_size, token,
                      std::max(0, l->topLogprobs), out[size_t(r)]);
    }
    l->sink->onPromptLogprobs(out);
    return;
  }
  if (e->finish_reason == DSRT_FINISH_NONE) {
    TokenOutput t;
    t.token = e->token;
    // A stop token ends the request as eos does, and like eos its text is
    // not part of the completion (vLLM's stop_token_ids).
    t.isEos = e->token == l->owner->modelInfo.eosToken ||
              std::find(l->stopTokenIds.begin(), l->stopTokenIds.end(),
                        e->token) != l->stopTokenIds.end();
    if (l->topLogprobs >= 0 && e->logits)
      computeLogprobs(e->logits, e->vocab_size, e->token, l->topLogprobs, t);
    t.time = steadySeconds();
    t.cachedPromptTokens = e->prefix_hit_tokens;
    l->sink->onToken(t);
    return;
  }
  FinishReason r = e->finish_reason == DSRT_FINISH_STOP     ? FinishReason::Stop
                   : e->finish_reason == DSRT_FINISH_LENGTH ? FinishReason::Length
                                                            : FinishReason::Abort;
  {
    std::lock_guard<std::mutex> lock(l->owner->mutex);
    l->owner->live.erase(e->request_id);
  }
  l->sink->onFinish(r, "");
  // After a first request the weights a step reads are resident: say once
  // if they sit in 4 KiB pages, which slow every step after it.
  dsrt_weight_pages pages;
  if (!l->owner->pagesChecked.exchange(true) &&
      dsrt_model_weight_pages(l->owner->model, &pages) == DSRT_OK &&
      pages.note[0])
    fprintf(stderr, "ds-serve: note: %s\n", pages.note);
  delete l;
}

EngineParams::EngineParams(const SamplingParams &s) {
  dsrt_request_params_default(&params);
  params.max_tokens = s.maxTokens;
  params.temperature = std::max(0.0f, s.temperature);
  params.top_p = s.topP;
  params.top_k = s.topK;
  params.stop_token_ids = s.stopTokenIds.data(); // the engine copies them
  params.num_stop_token_ids = int64_t(s.stopTokenIds.size());
  params.seed = s.seed;
  params.ignore_eos = s.ignoreEos ? 1 : 0;
  params.prompt_logits = s.promptLogprobs ? 1 : 0;
  params.presence_penalty = s.presencePenalty;
  params.frequency_penalty = s.frequencyPenalty;
  params.repetition_penalty = s.repetitionPenalty;
  params.min_p = s.minP;
  params.min_tokens = s.minTokens;
  params.priority = s.priority;
  for (const auto &[t, bias] : s.logitBias) {
    biasIds.push_back(t);
    biasValues.push_back(bias);
  }
  params.logit_bias_ids = biasIds.data();
  params.logit_bias_values = biasValues.data();
  params.num_logit_bias = int64_t(biasIds.size());
  if (s.constraint) { // the request's Live keeps it alive
    params.allowed_tokens = &allowedTokens;
    params.allowed_tokens_user = s.constraint.get();
  }
}

uint64_t EngineBackend::submit(GenerateRequest req,
                               std::shared_ptr<RequestSink> sink,
                               std::string &error) {
  dsrt_engine_stats st;
  // A request the step loop has not moved into a free seat yet is still
  // "waiting": free seats count towards the bound, so that only the server's
  // own in-flight limit (seats + queue, a 429) refuses under a burst.
  if (dsrt_engine_stats_get(engine, &st) == DSRT_OK &&
      st.waiting >= maxWaiting + std::max<int64_t>(0, maxNumSeqs - st.running)) {
    error = "the waiting queue is full (" + std::to_string(maxWaiting) + ")";
    return 0;
  }
  EngineParams ep(req.params);
  const dsrt_request_params &p = ep.params;
  auto *l =
      new Live{this,
               std::move(sink),
               req.params.topLogprobs,
               req.params.stopTokenIds,
               req.params.promptLogprobs ? req.prompt : std::vector<int32_t>(),
               -1,
               req.params.constraint};
  // Registered under the lock so that a final event racing this call finds
  // the entry to erase only after it exists.
  std::lock_guard<std::mutex> lock(mutex);
  if (stopped) {
    delete l;
    error = "shutting down";
    return 0;
  }
  int64_t id = -1;
  if (dsrt_engine_add_request(engine, req.prompt.data(),
                              int64_t(req.prompt.size()), &p, &EngineBackend::onEvent,
                              l, &id) != DSRT_OK) {
    delete l;
    error = dsrt_last_error();
    return 0;
  }
  l->id = id;
  live[id] = l;
  return uint64_t(id) + 1;
}

void EngineBackend::abort(uint64_t id) {
  if (id == 0)
    return;
  dsrt_engine_abort(engine, int64_t(id - 1)); // finished ids just fail
}

BackendStats EngineBackend::stats() const {
  BackendStats s;
  dsrt_engine_stats st;
  if (dsrt_engine_stats_get(engine, &st) != DSRT_OK)
    return s;
  s.running = st.running;
  s.waiting = st.waiting;
  s.pagesTotal = st.pages_total;
  s.pagesUsed = st.pages_used;
  s.pagesCached = st.pages_cached;
  s.prefixCacheQueries = st.prefix_query_tokens;
  s.prefixCacheHits = st.prefix_hit_tokens;
  s.specRounds = st.spec_rounds;
  s.specDraftTokens = st.spec_draft_tokens;
  s.specAcceptedTokens = st.spec_accepted_tokens;
  dsrt_weight_pages pages;
  if (dsrt_model_weight_pages(model, &pages) == DSRT_OK) {
    s.weightsResidentBytes = pages.resident_bytes;
    s.weightsHugePageBytes = pages.huge_page_bytes;
  }
  return s;
}

int EngineBackend::follow(const char *tool) {
  fprintf(stderr, "%s: rank %d of %d: following rank 0's engine\n", tool,
          dsrt_model_rank(model), dsrt_model_world_size(model));
  if (dsrt_engine_follow(model) != DSRT_OK) {
    fprintf(stderr, "%s: error: %s\n", tool, dsrt_last_error());
    return 1;
  }
  return 0;
}

void EngineBackend::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (stopped || !engine)
      return;
    stopped = true;
    for (const auto &[id, l] : live)
      dsrt_engine_abort(engine, id);
  }
  // Aborted requests end at the next step with their final events, so no
  // sink is left waiting; then the loop stops.
  dsrt_engine_wait_idle(engine);
  dsrt_engine_stop(engine);
}

} // namespace dsserve
