//===- Speculative.cpp - ds-run --speculative through the engine ----------===//
//
// dsrt_generate decodes one token per call; speculative decoding needs the
// engine's draft / verify / roll-back loop, so this path serves the one
// request through dsrt_engine with a pool of exactly the context's pages.
//
//===----------------------------------------------------------------------===//
#include "Speculative.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

using namespace ds;

namespace {

struct Collect {
  SpeculativeRun *run;
  const dsrt_generate_options *gen;
  std::chrono::steady_clock::time_point start, first, last;
  static void onEvent(void *user, const dsrt_engine_event *e) {
    auto *c = static_cast<Collect *>(user);
    if (e->token < 0)
      return;
    auto now = std::chrono::steady_clock::now();
    if (c->run->tokens.empty())
      c->first = now;
    c->last = now;
    c->run->tokens.push_back(e->token);
    if (c->gen->on_token)
      c->gen->on_token(c->gen->user_data, e->token);
  }
};

struct EngineFree {
  dsrt_engine *e = nullptr;
  ~EngineFree() { dsrt_engine_free(e); }
};

} // namespace

dsrt_status ds::runSpeculative(dsrt_model *model,
                               const std::string &speculative, int64_t capacity,
                               const std::vector<int32_t> &prompt,
                               const dsrt_generate_options &gen,
                               SpeculativeRun &out) {
  dsrt_engine_options o;
  dsrt_engine_options_default(&o);
  o.num_pages =
      (capacity + DSRT_ENGINE_PAGE_TOKENS - 1) / DSRT_ENGINE_PAGE_TOKENS;
  o.max_model_len = capacity;
  o.max_num_seqs = 1;
  o.speculative = speculative.c_str();
  EngineFree e;
  if (dsrt_status st = dsrt_engine_create(model, &o, &e.e))
    return st;
  dsrt_request_params p;
  dsrt_request_params_default(&p);
  p.max_tokens = gen.max_new_tokens;
  p.temperature = gen.temperature;
  p.top_p = gen.top_p > 0 ? (gen.top_p < 1 ? gen.top_p : 1.0f) : 1.0f;
  // dsrt_generate: top_p <= 0 means greedy.
  if (!(gen.top_p > 0))
    p.temperature = 0;
  p.top_k = std::max(0, gen.top_k);
  p.seed = gen.seed;
  p.force_tokens = gen.force_tokens;
  p.num_force_tokens = gen.num_force_tokens;
  Collect c{&out, &gen, std::chrono::steady_clock::now(), {}, {}};
  if (dsrt_status st =
          dsrt_engine_add_request(e.e, prompt.data(), int64_t(prompt.size()),
                                  &p, &Collect::onEvent, &c, nullptr))
    return st;
  int hasWork = 1;
  while (hasWork)
    if (dsrt_status st = dsrt_engine_step(e.e, &hasWork))
      return st;
  if (!out.tokens.empty()) {
    out.prefillSeconds =
        std::chrono::duration<double>(c.first - c.start).count();
    out.decodeSeconds = std::chrono::duration<double>(c.last - c.first).count();
  }
  return dsrt_engine_stats_get(e.e, &out.stats);
}

std::string ds::speculativeStatsJson(const SpeculativeRun &r) {
  const dsrt_engine_stats &s = r.stats;
  // Decode: the tokens after the first (which the prefill gives).
  int64_t decoded = r.tokens.empty() ? 0 : int64_t(r.tokens.size()) - 1;
  char buf[1024];
  std::snprintf(
      buf, sizeof(buf),
      "{\"prefill_seconds\": %.6f, \"decode_tokens\": %lld, "
      "\"decode_seconds\": %.6f, \"decode_tokens_per_second\": %.3f, "
      "\"speculative_tokens\": %lld, \"spec_rounds\": %lld, "
      "\"spec_draft_tokens\": %lld, \"spec_accepted_tokens\": %lld, "
      "\"spec_acceptance_rate\": %.4f, \"spec_mean_accepted_length\": %.4f, "
      "\"steps\": %lld}\n",
      r.prefillSeconds, (long long)decoded, r.decodeSeconds,
      r.decodeSeconds > 0 ? double(decoded) / r.decodeSeconds : 0.0,
      (long long)s.speculative_tokens, (long long)s.spec_rounds,
      (long long)s.spec_draft_tokens, (long long)s.spec_accepted_tokens,
      s.spec_draft_tokens
          ? double(s.spec_accepted_tokens) / double(s.spec_draft_tokens)
          : 0.0,
      s.spec_rounds ? 1.0 + double(s.spec_accepted_tokens) / s.spec_rounds
                    : 0.0,
      (long long)s.steps);
  return buf;
}
