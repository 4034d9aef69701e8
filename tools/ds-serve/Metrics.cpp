//===- Metrics.cpp - Prometheus counters and histograms -------------------===//
//
// Names follow Prometheus conventions (base units, _total counters) and
// mirror vLLM's so dashboards carry over with the prefix changed.
//
//===----------------------------------------------------------------------===//

#include "Metrics.h"

#include <cstdio>

namespace dsserve {

Histogram::Histogram(std::vector<double> b)
    : bounds(std::move(b)), counts(bounds.size() + 1, 0) {}

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds.size() && v > bounds[i])
    ++i;
  ++counts[i];
  sum += v;
  ++count;
}

static std::string num(double v) {
  char buf[64];
  snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

void Histogram::render(const std::string &name, std::string &out) const {
  out += "# TYPE " + name + " histogram\n";
  uint64_t cum = 0;
  for (size_t i = 0; i < bounds.size(); ++i) {
    cum += counts[i];
    out += name + "_bucket{le=\"" + num(bounds[i]) + "\"} " +
           std::to_string(cum) + "\n";
  }
  cum += counts.back();
  out += name + "_bucket{le=\"+Inf\"} " + std::to_string(cum) + "\n";
  out += name + "_sum " + num(sum) + "\n";
  out += name + "_count " + std::to_string(count) + "\n";
}

Metrics::Metrics()
    : ttft({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
            1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0}),
      itl({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,
           0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0}),
      e2e({0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0,
           40.0, 50.0, 60.0, 120.0}) {}

void Metrics::requestFinished(const char *reason, int64_t prompt,
                              int64_t generated, double seconds) {
  std::lock_guard<std::mutex> lock(mutex);
  promptTokens += uint64_t(prompt);
  generationTokens += uint64_t(generated);
  ++finished[reason];
  e2e.observe(seconds);
}

void Metrics::firstToken(double s) {
  std::lock_guard<std::mutex> lock(mutex);
  ttft.observe(s);
}

void Metrics::interToken(double s) {
  std::lock_guard<std::mutex> lock(mutex);
  itl.observe(s);
}

void Metrics::httpResponse(int status) {
  std::lock_guard<std::mutex> lock(mutex);
  ++responses[status];
}

static void gauge(std::string &out, const char *name, const char *help,
                  double v) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name +
         " gauge\n" + name + " " + num(v) + "\n";
}

static void counter(std::string &out, const char *name, const char *help,
                    double v) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name +
         " counter\n" + name + " " + num(v) + "\n";
}

std::string Metrics::render(const BackendStats &s, int64_t inFlight) const {
  std::string out;
  gauge(out, "ds_num_requests_running", "Requests the engine is generating.",
        double(s.running));
  gauge(out, "ds_num_requests_waiting", "Requests queued in the engine.",
        double(s.waiting));
  gauge(out, "ds_http_requests_in_flight",
        "Generation requests admitted by the server and not yet answered.",
        double(inFlight));
  gauge(out, "ds_cache_pages_total", "KV cache pages in the pool.",
        double(s.pagesTotal));
  gauge(out, "ds_cache_pages_used", "KV cache pages held by live requests.",
        double(s.pagesUsed));
  gauge(out, "ds_cache_pages_cached",
        "Free KV cache pages that still hold reusable prefixes.",
        double(s.pagesCached));
  counter(out, "ds_prefix_cache_queries_total",
          "Prompt tokens looked up in the prefix cache.",
          double(s.prefixCacheQueries));
  counter(out, "ds_prefix_cache_hits_total",
          "Prompt tokens found in the prefix cache.",
          double(s.prefixCacheHits));
  gauge(out, "ds_weights_resident_bytes",
        "Checkpoint bytes resident through the server's mapping.",
        double(s.weightsResidentBytes));
  gauge(out, "ds_weights_huge_page_bytes",
        "Of those, bytes mapped in 2 MiB pages (decode streams them faster).",
        double(s.weightsHugePageBytes));
  // vLLM's spec_decode_num_drafts / _draft_tokens / _accepted_tokens.
  counter(out, "ds_spec_decode_num_drafts_total",
          "Speculative verify rounds (a request's step that checked drafts).",
          double(s.specRounds));
  counter(out, "ds_spec_decode_num_draft_tokens_total",
          "Draft tokens checked by the main model.", double(s.specDraftTokens));
  counter(out, "ds_spec_decode_num_accepted_tokens_total",
          "Draft tokens the main model accepted.",
          double(s.specAcceptedTokens));
  std::lock_guard<std::mutex> lock(mutex);
  counter(out, "ds_prompt_tokens_total", "Prompt tokens of finished requests.",
          double(promptTokens));
  counter(out, "ds_generation_tokens_total",
          "Generated tokens of finished requests.", double(generationTokens));
  out += "# HELP ds_request_success_total Finished requests by finish "
         "reason.\n# TYPE ds_request_success_total counter\n";
  for (const char *r : {"stop", "length", "abort", "error"}) {
    auto it = finished.find(r);
    out += std::string("ds_request_success_total{finished_reason=\"") + r +
           "\"} " + std::to_string(it == finished.end() ? 0 : it->second) +
           "\n";
  }
  out += "# HELP ds_http_responses_total Responses to /v1 requests by "
         "status.\n# TYPE ds_http_responses_total counter\n";
  for (const auto &[status, n] : responses)
    out += "ds_http_responses_total{status=\"" + std::to_string(status) +
           "\"} " + std::to_string(n) + "\n";
  out += "# HELP ds_time_to_first_token_seconds From arrival to the first "
         "generated token.\n";
  ttft.render("ds_time_to_first_token_seconds", out);
  out += "# HELP ds_inter_token_latency_seconds Between consecutive tokens of "
         "one request.\n";
  itl.render("ds_inter_token_latency_seconds", out);
  out += "# HELP ds_e2e_request_latency_seconds From arrival to the last "
         "token.\n";
  e2e.render("ds_e2e_request_latency_seconds", out);
  return out;
}

} // namespace dsserve
