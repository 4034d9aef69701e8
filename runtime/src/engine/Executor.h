//===- Executor.h - one model step over a ragged batch ----------*- C++ -*-===//
//
// The narrow interface between the engine (scheduling, pages, sampling) and
// whatever runs the model. StepBatch is the argument list of the compiler's
// ragged-batch step entry point over a paged latent cache (issue #13): T
// tokens of S sequences, each sequence's new tokens contiguous and causal
// among themselves, attending to its context through its block table of
// 64-token pages. When that entry point exists, an executor calling it
// replaces SessionExecutor without the engine changing.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_ENGINE_EXECUTOR_H
#define DSRT_ENGINE_EXECUTOR_H

#include "dsrt/dsrt.h"
#include "dsrt/dsrt_engine.h"

#include <cstdint>
#include <string>
#include <vector>

namespace dsrt::engine {

constexpr int64_t kPageTokens = 64; // FlashMLA's page size

struct StepBatch {
  /// [T] token ids and their positions in their sequence.
  std::vector<int32_t> tokens, positions;
  /// [S] engine request ids: an executor may keep per-sequence state.
  std::vector<int64_t> seqIds;
  /// [S + 1] sequence s owns tokens [queryStart[s], queryStart[s + 1]).
  std::vector<int32_t> queryStart;
  /// [S] tokens in the sequence's cache once this step ran (context before
  /// the step + its new tokens); its new tokens sit at the end.
  std::vector<int32_t> contextLens;
  /// [S x maxPagesPerSeq] page ids, row s = sequence s, -1 past its pages.
  std::vector<int32_t> blockTables;
  int32_t maxPagesPerSeq = 0;
  /// Ascending indices into `tokens` whose logits the step returns, row i
  /// of the output = token logitsRows[i].
  std::vector<int32_t> logitsRows;

  int64_t numTokens() const { return int64_t(tokens.size()); }
  int64_t numSeqs() const { return int64_t(seqIds.size()); }
  int32_t page(int64_t seq, int64_t position) const {
    return blockTables[size_t(seq * maxPagesPerSeq + position / kPageTokens)];
  }
};

/// One sequence's question to a drafter (speculative decoding, issue #18).
struct DraftQuery {
  int64_t seqId = 0;
  /// Its tokens: the accepted history, the last sampled token (not run
  /// yet), then the drafts proposed so far in this step.
  const int32_t *tokens = nullptr;
  int64_t numTokens = 0;
  /// Leading tokens whose cache entries the executor computed and the
  /// engine kept (what truncate left): tokens [numComputed, numTokens) are
  /// the sampled one and the drafts, so numTokens - numComputed - 1 drafts
  /// precede this question.
  int64_t numComputed = 0;
};

class Executor {
public:
  virtual ~Executor() = default;
  virtual int64_t vocabSize() const = 0;
  /// Longest sequence the model takes (its positions).
  virtual int64_t maxContext() const = 0;
  /// Bytes of one token's cache entry over all layers.
  virtual int64_t cacheBytesPerToken() const = 0;
  /// Runs the step; `logits` receives logitsRows.size() x vocab floats.
  /// On failure, returns the status with dsrt_last_error() set.
  virtual dsrt_status run(const StepBatch &batch, float *logits) = 0;
  /// The engine stopped using sequence `seqId`'s context (finished, aborted
  /// or preempted): state kept beside the pages may go.
  virtual void release(int64_t seqId) { (void)seqId; }

  /// Speculative decoding (optional; the engine asks only when
  /// canDraft()). Each step the engine proposes up to k tokens per decoding
  /// sequence by asking draft() k times (one more token each time, all
  /// sequences at once), feeds the sampled token and the drafts as that
  /// sequence's new tokens of the next run() (a segment of 1 + k tokens,
  /// logits for each), keeps the accepted prefix and then calls truncate()
  /// so the rejected tail's cache entries are forgotten. An executor with
  /// a drafter (SessionExecutor over an artifact's MTP module) implements
  /// the three; a ragged step executor gets them by running its drafter on
  /// the hidden states its step kept for the last computed position.
  virtual bool canDraft() const { return false; }
  /// Row i of `logits` (vocab floats) receives the drafter's logits for the
  /// token following queries[i].tokens.
  virtual dsrt_status draft(const std::vector<DraftQuery> &queries,
                            float *logits);
  /// Sequence `seqId` keeps only its first `len` cache entries; its next
  /// run continues at position `len`.
  virtual void truncate(int64_t seqId, int64_t len) {
    (void)seqId;
    (void)len;
  }

  /// The executor's own figures (stepping thread).
  virtual void addStats(dsrt_engine_stats &stats) const { (void)stats; }
};

/// The token ids of every page slot, written as the engine's steps pass
/// through. A paged executor would hold latents there; the two executors of
/// today keep ids, which is enough to find a sequence's history through its
/// block table (and so to notice when two sequences share a page they must
/// not).
class PageTokens {
public:
  void resize(int64_t numPages) {
    slots.assign(size_t(numPages * kPageTokens), -1);
  }
  /// Writes every token of the batch at its page slot; "" or the problem
  /// (a page outside the pool, a missing block-table entry).
  std::string write(const StepBatch &batch);
  /// Tokens [0, n) of sequence `seq` read back through its block table.
  std::vector<int32_t> history(const StepBatch &batch, int64_t seq,
                               int64_t n) const;

private:
  std::vector<int32_t> slots;
};

/// Structure checks every executor wants before trusting a batch: sizes
/// agree, positions are each sequence's last tokens, pages cover them.
std::string checkBatch(const StepBatch &batch, int64_t vocab,
                       int64_t maxContext);

} // namespace dsrt::engine

#endif // DSRT_ENGINE_EXECUTOR_H
