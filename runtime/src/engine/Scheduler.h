//===- Scheduler.h - which tokens run in the next step ----------*- C++ -*-===//
//
// vLLM v1's scheduler (vllm/v1/core/sched/scheduler.py), reduced to what
// this engine needs: no prefill or decode phase, every request simply has
// tokens whose cache entries do not exist yet (a prompt, a prompt's rest,
// the last fed token). A step first gives the running requests their new
// tokens, oldest first, then admits waiting ones, both within the token
// budget (max_num_batched_tokens, which chunks long prompts) and
// max_num_seqs. When a running request needs a page and none is free, the
// newest running request is preempted: its pages go back and it waits at
// the front of the queue to be recomputed. A step that preempted admits
// nobody. Under priority scheduling (vLLM's policy) the queue is ordered
// by (priority, arrival) and the preempted one is the running request
// that comes last in that order.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_ENGINE_SCHEDULER_H
#define DSRT_ENGINE_SCHEDULER_H

#include "engine/BlockPool.h"
#include "engine/Executor.h"
#include "engine/Request.h"

#include <deque>
#include <functional>

namespace dsrt::engine {

struct SchedulerConfig {
  int64_t numPages = 0;
  int64_t maxNumSeqs = 256;
  int64_t maxNumBatchedTokens = 2048;
  bool prefixCaching = true;
  /// Priority scheduling: waiting requests by (priority, arrival), the
  /// running one of the largest (priority, arrival) preempted first.
  bool priority = false;
};

struct ScheduledRequest {
  Request *request;
  int64_t numNew; // tokens [numComputed, numComputed + numNew)
};

class Scheduler {
public:
  explicit Scheduler(const SchedulerConfig &config)
      : config(config), pool(config.numPages) {}

  /// Queues `r`: at the back (FCFS), or after every request of a lower or
  /// equal (priority, arrival) (priority scheduling).
  void addWaiting(Request *r);
  /// Picks this step's tokens; `onPreempt` hears of each preemption.
  std::vector<ScheduledRequest>
  schedule(const std::function<void(Request *)> &onPreempt);
  /// After the step ran: the tokens are computed, newly full pages named.
  void computed(const ScheduledRequest &s);
  /// After speculative tokens were rejected: the pages past those `r`'s
  /// computed tokens fill go back to the pool. They were never named
  /// (computed() names full pages of kept tokens only).
  void trimPages(Request *r);
  /// Drops `r` (finished or aborted) from the queues and frees its pages.
  void remove(Request *r);

  const std::deque<Request *> &waitingQueue() const { return waiting; }
  const std::vector<Request *> &runningList() const { return running; }
  const BlockPool &blockPool() const { return pool; }
  int64_t preemptions = 0;
  int64_t prefixQueryTokens = 0, prefixHitTokens = 0;

private:
  bool fitPages(Request *r, int64_t numTokens);
  void preempt(Request *r);
  /// The running request to preempt: the newest, or under priority
  /// scheduling the one of the largest (priority, arrival).
  size_t victimIndex() const;
  /// Pages holding the leading full pages of `r`'s tokens (one token at
  /// least is left to compute, for its logits row).
  std::vector<int32_t> prefixHits(Request *r);
  void extendHashes(Request *r, int64_t numPages);

  SchedulerConfig config;
  BlockPool pool;
  std::deque<Request *> waiting;
  std::vector<Request *> running; // admission order: newest last
};

} // namespace dsrt::engine

#endif // DSRT_ENGINE_SCHEDULER_H
