//===- FakeBackend.h - a scripted backend for testing the HTTP layer ------===//
//
// Not a model: tokens are bytes (0..255) plus an end-of-text token (256),
// and the "generation" replays a fixed UTF-8 text, so tests know every
// answer in advance. Greedy requests start at the text's beginning;
// sampled ones at an offset drawn from the seed. It schedules like an
// engine (max_num_seqs running, a bounded waiting queue (by priority under
// priority scheduling), 16-token pages
// from a fixed pool, full pages of prompts remembered as a prefix cache's
// count) and emits one token per running request per step, a
// step every `tokenDelayMs`, so streaming, disconnects, queueing and the
// page accounting behind /metrics can be tested without a checkpoint. A
// request's constraint (structured outputs) replaces a script token it does
// not allow with the lowest it does (whitespace last).
//
//===----------------------------------------------------------------------===//
#ifndef DS_SERVE_FAKEBACKEND_H
#define DS_SERVE_FAKEBACKEND_H

#include "Backend.h"

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace dsserve {

class FakeBackend : public Backend {
public:
  struct Config {
    int64_t maxContext = 256;
    int maxNumSeqs = 4;
    int maxWaiting = 64;
    int64_t pages = 128;
    int tokenDelayMs = 2;
    std::string text; // replayed instead of script() when not empty
    bool priorityScheduling = false; // the waiting queue by priority
    std::string name = "fake";       // --served-model-name
  };
  static const char *script(); // the text greedy requests replay
  /// What requests replay: Config::text, or script().
  std::string text() const {
    return config.text.empty() ? script() : config.text;
  }
  static constexpr int32_t kEos = 256;

  explicit FakeBackend(Config config);
  ~FakeBackend() override;
  ModelInfo info() const override;
  Tokenizer *tokenizer() override { return tok.get(); }
  uint64_t submit(GenerateRequest request, std::shared_ptr<RequestSink> sink,
                  std::string &error) override;
  void abort(uint64_t id) override;
  BackendStats stats() const override;
  void shutdown() override;

private:
  struct Seq {
    GenerateRequest req;
    std::shared_ptr<RequestSink> sink;
    size_t offset = 0; // into the script
    int64_t generated = 0;
    std::vector<int32_t> out; // with a constraint: the tokens so far
    bool aborted = false;
    int64_t cached = 0; // prompt tokens "read from the prefix cache"
  };
  /// A prefix cache's count for a prompt admitted now: the leading full
  /// pages of prompts seen before (never the last token), as an engine's.
  int64_t cachedPrefix(const std::vector<int32_t> &prompt);
  void loop();
  int64_t pagesFor(const Seq &s) const;

  Config config;
  std::unique_ptr<Tokenizer> tok;
  mutable std::mutex mutex;
  std::condition_variable cv;
  std::map<uint64_t, Seq> running;
  std::set<std::vector<int32_t>> seenPages; // prompts' full-page prefixes
  std::deque<std::pair<uint64_t, Seq>> waiting;
  uint64_t nextId = 1;
  bool stopping = false;
  std::thread thread;
};

} // namespace dsserve

#endif // DS_SERVE_FAKEBACKEND_H
