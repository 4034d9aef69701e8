//===- Speculative.h - ds-run --speculative through the engine --*- C++ -*-===//
#ifndef DS_TOOLS_DSRUN_SPECULATIVE_H
#define DS_TOOLS_DSRUN_SPECULATIVE_H

#include "dsrt/dsrt.h"
#include "dsrt/dsrt_engine.h"

#include <string>
#include <vector>

namespace ds {

struct SpeculativeRun {
  std::vector<int32_t> tokens;
  dsrt_engine_stats stats{};
  double prefillSeconds = 0, decodeSeconds = 0;
};

/// Generates as dsrt_generate would (same options, on_token streamed),
/// through a one-request engine drafting with the artifact's MTP module
/// (`speculative` = "mtp" or "mtp:K"). Greedy output is dsrt_generate's;
/// sampled output has its distribution, not its exact tokens.
dsrt_status runSpeculative(dsrt_model *model, const std::string &speculative,
                           int64_t capacity, const std::vector<int32_t> &prompt,
                           const dsrt_generate_options &gen,
                           SpeculativeRun &out);

/// --stats-json's object for such a run.
std::string speculativeStatsJson(const SpeculativeRun &run);

} // namespace ds

#endif
