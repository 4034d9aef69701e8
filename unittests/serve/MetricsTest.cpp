//===- MetricsTest.cpp - Prometheus exposition ----------------------------===//

#include "Metrics.h"

#include <gtest/gtest.h>

using namespace dsserve;

TEST(Metrics, HistogramBucketsAreCumulative) {
  Histogram h({0.1, 1.0});
  h.observe(0.05);
  h.observe(0.5);
  h.observe(0.5);
  h.observe(7);
  std::string out;
  h.render("x", out);
  EXPECT_NE(out.find("x_bucket{le=\"0.1\"} 1\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_bucket{le=\"1\"} 3\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_bucket{le=\"+Inf\"} 4\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_count 4\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_sum 8.05\n"), std::string::npos) << out;
}

TEST(Metrics, RenderCountsAndGauges) {
  Metrics m;
  m.requestFinished("stop", 5, 9, 0.5);
  m.requestFinished("length", 2, 3, 0.5);
  m.firstToken(0.01);
  BackendStats s;
  s.running = 2;
  s.pagesUsed = 7;
  s.prefixCacheHits = 11;
  s.specRounds = 4;
  s.specDraftTokens = 8;
  s.specAcceptedTokens = 5;
  s.weightsResidentBytes = 4096;
  s.weightsHugePageBytes = 2097152;
  std::string out = m.render(s, 3);
  for (const char *line :
       {"ds_num_requests_running 2\n", "ds_cache_pages_used 7\n",
        "ds_prefix_cache_hits_total 11\n", "ds_prompt_tokens_total 7\n",
        "ds_generation_tokens_total 12\n", "ds_http_requests_in_flight 3\n",
        "ds_request_success_total{finished_reason=\"stop\"} 1\n",
        "ds_time_to_first_token_seconds_count 1\n",
        "ds_spec_decode_num_drafts_total 4\n",
        "ds_spec_decode_num_draft_tokens_total 8\n",
        "ds_spec_decode_num_accepted_tokens_total 5\n",
        "ds_weights_resident_bytes 4096\n",
        "ds_weights_huge_page_bytes 2097152\n"})
    EXPECT_NE(out.find(line), std::string::npos) << line;
}
