//===- SessionBackend.h - serving on dsrt sessions (one per seat) ----------===//
//
// The backend ds-serve runs today, on the runtime's session API
// (dsrt.h): max_num_seqs worker threads, each owning one session (a
// contiguous latent cache of max_context tokens), take requests from a
// bounded queue and run each to completion. Requests run concurrently but
// are not batched into one step; the batching engine (dsrt_engine.h, with
// paged cache and prefix caching) replaces this class behind the same
// Backend interface. Sampling is dsrt_sample with ds-run's seeding, so a
// greedy request gives ds-run's tokens.
//
// Cache pages are reported in 64-token units of the sessions' caches: used
// = the pages covering the tokens of running requests. There is no prefix
// cache here, so cached pages and prefix hits stay 0.
//
//===----------------------------------------------------------------------===//
#ifndef DS_SERVE_SESSIONBACKEND_H
#define DS_SERVE_SESSIONBACKEND_H

#include "Backend.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

struct dsrt_model;
struct dsrt_session;

namespace dsserve {

class SessionBackend : public Backend {
public:
  struct Config {
    std::string artifact, weights, device = "cpu", name;
    int maxNumSeqs = 4;
    int maxWaiting = 64;
    int64_t maxContext = 0;   // 0: min(max_position_embeddings, 4096)
    int64_t kvCacheBytes = 0; // 0: no limit; else caps maxContext
  };
  /// Null with a one-line message when the model cannot be served.
  static std::unique_ptr<SessionBackend> create(const Config &config,
                                                std::string &error);
  ~SessionBackend() override;

  ModelInfo info() const override { return modelInfo; }
  Tokenizer *tokenizer() override { return nullptr; }
  uint64_t submit(GenerateRequest request, std::shared_ptr<RequestSink> sink,
                  std::string &error) override;
  void abort(uint64_t id) override;
  BackendStats stats() const override;
  void shutdown() override;

private:
  struct Job {
    uint64_t id;
    GenerateRequest req;
    std::shared_ptr<RequestSink> sink;
    std::atomic<bool> aborted{false};
  };
  SessionBackend() = default;
  void worker(int index);
  void run(dsrt_session *session, Job &job, std::vector<float> &logits,
           std::atomic<int64_t> &position);

  dsrt_model *model = nullptr;
  std::vector<dsrt_session *> sessions;
  ModelInfo modelInfo;
  int maxWaiting = 0;
  static constexpr int64_t kPageTokens = 64;
  static constexpr int64_t kPrefillChunk = 256;

  mutable std::mutex mutex;
  std::condition_variable cv;
  std::deque<std::shared_ptr<Job>> queue;
  std::map<uint64_t, std::shared_ptr<Job>> jobs; // queued or running
  std::vector<std::unique_ptr<std::atomic<int64_t>>> positions; // per worker
  std::atomic<int64_t> running{0};
  uint64_t nextId = 1;
  bool stopping = false;
  std::vector<std::thread> threads;
};

} // namespace dsserve

#endif // DS_SERVE_SESSIONBACKEND_H
