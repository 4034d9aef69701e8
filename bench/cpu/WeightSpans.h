//===- WeightSpans.h - a checkpoint's decode weights as read spans -*- C++
//-*-===//
//
// Decode's roofline over the pages decode itself reads. On the VMs these
// benchmarks run on, where a page lies moves its read rate about as much
// as the kernel does: alternating in one process, the same bf16 lm_head
// GEMV (8192 x 7168) streamed 30-33 GB/s from the FP8 checkpoint's
// mapping and 39-49 from the bf16 checkpoint's, and a plain read of the
// two ranges 42-51 against 56-63 GB/s (twenty-seventh session,
// bench/RESULTS.md). A roofline from a fresh anonymous buffer measures
// other pages than the model's, so `ds-cpu-bench model` reads the
// checkpoint's own mapping too (the same page-cache pages the runtime
// maps).
//
//===----------------------------------------------------------------------===//
#ifndef DS_BENCH_CPU_WEIGHTSPANS_H
#define DS_BENCH_CPU_WEIGHTSPANS_H

#include "ReadStream.h"
#include "weights/Checkpoint.h"

#include <memory>
#include <string>
#include <vector>

namespace dsbench {

struct WeightSpans {
  /// Holds the mapping the spans point into.
  std::unique_ptr<dsrt::Checkpoint> checkpoint;
  std::vector<ReadSpan> spans;
  int64_t bytes = 0;
};

/// Every tensor of the checkpoint in `dir` but the token embeddings (a
/// decode step gathers one row of one), tensors adjacent in a file merged
/// into one span, each span's ends rounded inward to 8 bytes. False with
/// `error` when the checkpoint does not open.
bool decodeWeightSpans(const std::string &dir, WeightSpans &out,
                       std::string &error);

} // namespace dsbench

#endif // DS_BENCH_CPU_WEIGHTSPANS_H
