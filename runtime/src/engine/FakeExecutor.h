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

  /// The logits row after `history` (what a solo run gives).
  static void logitsAfter(const std::vector<int32_t> &history, int64_t vocab,
                          float *row);

  int64_t steps = 0;

private:
  int64_t vocab, maxCtx;
  PageTokens pages;
};

} // namespace dsrt::engine

#endif // DSRT_ENGINE_FAKEEXECUTOR_H
