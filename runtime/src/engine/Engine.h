//===- Engine.h - continuous batching over an Executor ----------*- C++ -*-===//
//
// Requests arrive from any thread into an inbox; the stepping thread (the
// caller's, or the engine's own loop) drains it, schedules, runs the
// executor on the StepBatch, samples, streams events and frees finished
// requests. Only the inbox and the stats snapshot are shared between
// threads, each behind its own lock, and no lock is held while callbacks
// run, so a callback may add or abort requests.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_ENGINE_ENGINE_H
#define DSRT_ENGINE_ENGINE_H

#include "engine/Executor.h"
#include "engine/Scheduler.h"

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace dsrt::engine {

struct EngineConfig {
  SchedulerConfig scheduler;
  int64_t maxModelLen = 0;
  int64_t eosTokenId = -1;
  /// Speculative decoding: drafts per decoding request and step (0: off;
  /// needs Executor::canDraft()).
  int64_t speculativeTokens = 0;
};

class Engine {
public:
  /// Checks the config against the executor; "" or the problem.
  static std::string check(const EngineConfig &config, const Executor &ex);
  Engine(std::unique_ptr<Executor> executor, const EngineConfig &config);
  ~Engine();

  /// Checks and queues; the id, or -1 with `error` set.
  int64_t add(const int32_t *prompt, int64_t n,
              const dsrt_request_params &params, dsrt_engine_callback callback,
              void *userData, std::string &error);
  /// False for an id never handed out.
  bool abort(int64_t id);
  /// One step; DSRT_OK with `hasWork` telling whether requests remain.
  dsrt_status step(bool &hasWork);

  dsrt_status start();
  dsrt_status stop();
  dsrt_status waitIdle();
  bool loopRunning() const { return looping; }

  dsrt_engine_stats stats();
  /// Test hooks, stepping thread only.
  const Scheduler &schedulerState() const { return scheduler; }
  Executor &executorRef() { return *executor; }
  /// Checks the page invariants against the live requests; "" or what broke.
  std::string checkInvariants() const;

private:
  void drainInbox();
  StepBatch buildBatch(const std::vector<ScheduledRequest> &sched,
                       std::vector<int64_t> &firstRow);
  void afterStep(const std::vector<ScheduledRequest> &sched,
                 const std::vector<int64_t> &firstRow, const float *logits);
  void finish(Request *r, dsrt_finish_reason reason);
  void emit(Request *r, int32_t token, const float *row,
            dsrt_finish_reason reason);
  /// prompt_logits: the prompt rows among a chunk's `count` rows (the
  /// first after token `first`) that were not sent yet.
  void emitPromptRows(Request *r, int64_t first, int64_t count,
                      const float *rows);
  void publishStats(int64_t stepTokens);
  // Speculative decoding (EngineSpeculative.cpp).
  dsrt_status proposeDrafts();
  void dropDrafts(Request *r, int64_t keep);
  void trimDrafts(const std::vector<ScheduledRequest> &sched);
  void afterVerify(const ScheduledRequest &s, const float *rows);
  int64_t specRounds = 0, specDrafted = 0, specAccepted = 0;
  std::vector<float> draftLogits;
  void loop();

  std::unique_ptr<Executor> executor;
  EngineConfig config;
  int64_t vocab;
  Scheduler scheduler;
  std::unordered_map<int64_t, std::unique_ptr<Request>> live;
  std::vector<float> logitsBuffer;

  std::mutex inboxMutex;
  std::condition_variable inboxCv, idleCv;
  std::vector<std::unique_ptr<Request>> inboxAdds;
  std::vector<int64_t> inboxAborts;
  std::atomic<int64_t> nextId{1};
  bool idle = true; // under inboxMutex: nothing queued, running or waiting

  std::mutex statsMutex;
  dsrt_engine_stats snapshot{};

  std::mutex stepMutex; // one stepping thread at a time
  std::thread thread;
  std::atomic<bool> looping{false}, stopRequested{false};
  dsrt_status loopStatus = DSRT_OK;
  std::string loopError;
};

} // namespace dsrt::engine

#endif // DSRT_ENGINE_ENGINE_H
