//===- EngineBackend.h - serving on the batching engine (dsrt_engine.h) ---===//
//
// Requests go to one dsrt_engine (continuous batching, a pool of 64-token
// pages, prefix caching) stepping on its own thread; its per-token events
// become RequestSink calls. Under mpiexec (a --tp/--ep artifact) rank 0
// serves and the other ranks follow its engine's steps. Logprobs are computed
// here from the logits row each token event carries.
//
//===----------------------------------------------------------------------===//
#ifndef DS_SERVE_ENGINEBACKEND_H
#define DS_SERVE_ENGINEBACKEND_H

#include "Backend.h"
#include "dsrt/dsrt_engine.h"

#include <atomic>
#include <map>
#include <memory>
#include <mutex>

struct dsrt_model;
struct dsrt_engine;
struct dsrt_engine_event;

namespace dsserve {

/// The engine's parameters for a request's sampling parameters; `params`
/// points into `s` (stop ids) and into this object (logit bias), so both
/// must outlive dsrt_engine_add_request, which copies them.
struct EngineParams {
  explicit EngineParams(const SamplingParams &s);
  EngineParams(const EngineParams &) = delete;
  dsrt_request_params params;
  std::vector<int32_t> biasIds;
  std::vector<float> biasValues;
};

class EngineBackend : public Backend {
public:
  struct Config {
    std::string artifact, weights, device = "cpu", name;
    int64_t maxNumSeqs = 4;
    int64_t maxWaiting = 64;
    int64_t maxModelLen = 0;  // 0: min(max_position_embeddings, 4096)
    int64_t kvCacheBytes = 0; // 0: room for max_num_seqs full contexts
    int64_t maxNumBatchedTokens = 0;
    bool prefixCaching = true;
    std::string speculative; // dsrt_engine_options.speculative
    bool priorityScheduling = false;
  };
  static std::unique_ptr<EngineBackend>
  create(const Config &config, std::unique_ptr<Tokenizer> tokenizer,
         std::string &error);
  ~EngineBackend() override;

  ModelInfo info() const override { return modelInfo; }
  Tokenizer *tokenizer() override { return tok.get(); }
  uint64_t submit(GenerateRequest request, std::shared_ptr<RequestSink> sink,
                  std::string &error) override;
  void abort(uint64_t id) override;
  BackendStats stats() const override;
  int64_t sharedPrefixTokens() const override { return sharedPrefix; }
  void shutdown() override;

  /// A partitioned model's rank other than 0 (mpiexec): it serves no HTTP
  /// and runs rank 0's engine steps instead (follow()).
  bool isFollower() const { return follower; }
  /// Runs rank 0's steps until its engine ends; the exit code (1 with a
  /// line on stderr when following failed).
  int follow(const char *tool);

  struct Live; // one request between add_request and its final event

private:
  int64_t sharedPrefix = 0; // pages' tokens with prefix caching, else 0
  EngineBackend() = default;
  static void onEvent(void *user, const dsrt_engine_event *event);

  dsrt_model *model = nullptr;
  dsrt_engine *engine = nullptr;
  std::unique_ptr<Tokenizer> tok;
  ModelInfo modelInfo;
  int64_t maxWaiting = 0;
  int64_t maxNumSeqs = 0;
  mutable std::mutex mutex;
  std::map<int64_t, Live *> live; // by engine id
  bool stopped = false;
  bool follower = false;
  /// Whether the first finished request has checked how the weights sit
  /// in memory (the note is printed once, when the pages are touched).
  std::atomic<bool> pagesChecked{false};
};

} // namespace dsserve

#endif // DS_SERVE_ENGINEBACKEND_H
