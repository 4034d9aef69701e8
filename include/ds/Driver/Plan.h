//===- Plan.h - ds-compile --plan: per-rank figures of a layout -*- C++ -*-===//
//
// What one rank of a parallel layout holds and exchanges, read from the
// partitioned IR (weights: the pieces each rank binds; cache: the latent
// cache type; communication: the shard collectives per entry point) and
// from the activation plan of the loops stage.
//
//===----------------------------------------------------------------------===//
#ifndef DS_DRIVER_PLAN_H
#define DS_DRIVER_PLAN_H

#include "mlir/IR/BuiltinOps.h"

#include <map>
#include <string>

namespace mlir::ds {

struct PlanOptions {
  int64_t tp = 1, ep = 1;
  bool dpAttention = false; // each rank its own sequences (decodeBatch each)
  int64_t prefillTokens = 512;     // tokens of one prefill chunk
  int64_t decodeBatch = 32;        // sequences of one decode step
  double deviceMemoryGB = 141;     // per rank (H200: 141 GB)
  double hbmTBs = 4.8;             // per rank (H200: 4.8 TB/s)
  double linkGBs = 450;            // per rank and direction (NVLink 4)
  double collectiveLatencyUs = 10; // one small collective
};

/// Per-rank figures of the partitioned module `m` (call it right after
/// ds-partition-model, or on the model level for one rank).
struct PlanFigures {
  int64_t worldSize = 1;
  int64_t weightBytes = 0, mtpWeightBytes = 0;
  int64_t kvBytesPerToken = 0, cacheLayers = 0, cacheWidth = 0;
  int64_t cacheElementBytes = 4;
  /// The MLA latent and rope widths (ds.mla), for the FP8 cache layout:
  /// e4m3 latent, one f32 scale per 128 latent values, bf16 rope.
  int64_t kvLoraRank = 0, ropeWidth = 0;
  int64_t fp8CacheRowBytes() const {
    return kvLoraRank + 4 * (kvLoraRank / 128) + 2 * ropeWidth;
  }
  struct Comm {
    int64_t allReduces = 0, allGathers = 0;
    /// Bytes of the tensors reduced / gathered per token (f32 in the IR).
    int64_t reduceBytesPerToken = 0, gatherBytesPerToken = 0;
    /// Expert parallelism's all-to-alls (ds.moe_dispatch, ds.moe_collect):
    /// how many, and the bytes of the rows they carry per token the rank
    /// dispatches (top_k rows each, f32 in the IR).
    int64_t allToAlls = 0, allToAllBytesPerToken = 0;
    /// Whether each rank dispatches 1/W of the step's tokens (shard.all_slice
    /// before the dispatch) rather than all of its own.
    bool tokensShared = false;
  };
  std::map<std::string, Comm> comm; // by entry point
  /// From the loops stage: activation bytes per entry point {per token, fixed}.
  std::map<std::string, std::pair<int64_t, int64_t>> activations;
};

void measurePartitioned(ModuleOp m, PlanFigures &out);
std::string formatPlan(const PlanFigures &f, const PlanOptions &o,
                       llvm::StringRef modelType);

} // namespace mlir::ds

#endif // DS_DRIVER_PLAN_H
