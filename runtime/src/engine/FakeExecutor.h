//===- FakeExecutor.h - a deterministic stand-in model ----------*- C++ -*-===//
//
// For the engine's tests: the logits after position p are a pure function
// of the tokens [0, p] as read back through the sequence's pages, so a page
// shared when it must not be, a wrong block table, a lost prefix or a bad
// recompute after preemption changes the logits, while any correct batching
// gives exactly the logits of the request run alone.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_ENGINE_FAKEEXECUTOR_H
#define DSRT_ENGINE_FAKEEXECUTOR_H

#include "engine/Executor.h"

#include <unordered_map>

namespace dsrt::engine {

class FakeExecutor : public Executor {
public:
  FakeExecutor(int64_t vocab, int64_t maxContext, int64_t numPages)
      : vocab(vocab), maxCtx(maxContext) {
    pages.resize(numPages);
  }
  int64_t vocabSize() const override { return vocab; }
  int64_t maxContext() const override { return maxCtx; }
  int64_t cacheBytesPerToken() const override { return 64; }
  dsrt_status run(const StepBatch &batch, float *logits) override;

  /// A fake drafter: its row after a history is agreement x the model's
  /// row + (1 - agreement) x an unrelated row, so 1 drafts what the model
  /// would and 0 mostly something else. It checks that the engine's idea
  /// of each sequence's computed tokens is the executor's (truncation).
  void enableDrafter(double agreement) {
    drafter = true;
    this->agreement = agreement;
  }
  bool canDraft() const override { return drafter; }
  dsrt_status draft(const std::vector<DraftQuery> &queries,
                    float *logits) override;
  void truncate(int64_t seqId, int64_t len) override;
  void release(int64_t seqId) override { computedLen.erase(seqId); }
  /// The fake drafter's row after `history`.
  static void draftAfter(const std::vector<int32_t> &history, int64_t vocab,
                         double agreement, float *row);

  /// The logits row after `history` (what a solo run gives).
  static void logitsAfter(const std::vector<int32_t> &history, int64_t vocab,
                          float *row);

  int64_t steps = 0;

private:
  int64_t vocab, maxCtx;
  PageTokens pages;
  bool drafter = false;
  double agreement = 0;
  /// Tokens of each sequence whose entries exist (after truncations).
  std::unordered_map<int64_t, int64_t> computedLen;
};

} // namespace dsrt::engine

#endif // DSRT_ENGINE_FAKEEXECUTOR_H
