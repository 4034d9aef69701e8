//===- MultiRank.h - the engine over the ranks of a partitioned model -*- C++
//-*-===//
//
// A model compiled with --tp/--ep runs one process per rank (mpiexec); each
// rank holds its pieces of the weights and a whole page pool of the latent
// cache. Rank 0 owns the engine: requests, scheduling, the block tables,
// sampling and output. Every step it broadcasts the StepBatch it built over
// the model's communicator, then every rank runs the same @ragged_step call
// on its own pool (identical block tables, since rank 0 decides), and the
// collectives inside the step meet. The other ranks only follow.
//
// What travels, each message a fixed header then its payload, all from rank 0:
//   Hello  (pool pages, max context)  once the engine exists;
//   Failed (reason)                   instead, when it could not be created;
//   Step   (T, S, R, max pages) + the batch's arrays;
//   Idle                              every timeout / 4 while nothing else
//                                     is sent, so followers waiting for the
//                                     next step tell a quiet server from a
//                                     dead rank 0 (DSRT_COMM_TIMEOUT);
//   Stop                              when rank 0 frees its engine.
// A rank that dies mid-step leaves its peers inside a collective: the
// communicator's timeout ends the job with one line naming it.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_ENGINE_MULTIRANK_H
#define DSRT_ENGINE_MULTIRANK_H

#include "engine/StepExecutor.h"

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

namespace dsrt::engine {

/// Rank 0's executor: broadcasts each batch, then runs it on its own pool.
class LeaderExecutor : public Executor {
public:
  LeaderExecutor(dsrt_model *model, std::unique_ptr<StepExecutor> inner);
  /// Sends Stop (the followers return) after the heartbeat ends.
  ~LeaderExecutor() override;

  /// Sends Hello with the pool the followers must allocate, then starts the
  /// heartbeat. Call once, after the inner executor's pool is allocated.
  dsrt_status hello(int64_t numPages, int64_t maxContext);

  int64_t vocabSize() const override { return inner->vocabSize(); }
  int64_t maxContext() const override { return inner->maxContext(); }
  int64_t cacheBytesPerToken() const override {
    return inner->cacheBytesPerToken();
  }
  dsrt_status run(const StepBatch &batch, float *logits) override;
  void addStats(dsrt_engine_stats &stats) const override {
    inner->addStats(stats);
  }

private:
  void heartbeat();
  /// Broadcasts a header (and payload); `commMutex` held.
  dsrt_status send(int64_t command, const int64_t *args, int numArgs,
                   std::vector<uint8_t> *payload);

  dsrt_model *model;
  std::unique_ptr<StepExecutor> inner;
  /// One message (or step) at a time on the communicator: the heartbeat
  /// thread and the stepping thread share it.
  std::mutex commMutex;
  std::chrono::steady_clock::time_point lastSent;
  std::mutex beatMutex;
  std::condition_variable beatCv;
  bool stopping = false;
  bool greeted = false;
  std::thread beat;
};

/// Tells the followers waiting for rank 0's Hello that its engine could not
/// be created (they return an error with `why` instead of timing out).
void announceFailure(dsrt_model *model, const std::string &why);

/// Ranks other than 0: waits for rank 0's Hello, allocates the same pool
/// and runs every Step until Stop (DSRT_OK) or Failed (an error).
dsrt_status followLeader(dsrt_model *model);

} // namespace dsrt::engine

#endif // DSRT_ENGINE_MULTIRANK_H
