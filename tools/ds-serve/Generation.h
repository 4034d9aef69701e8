//===- Generation.h - one request's generation, every choice's ------------===//
//
// A request's choices (prompts x n) are backend requests whose sinks feed
// one Channel. The handler thread (whole response) or the SSE content
// provider (stream) pumps it into the response writer; a failed write
// means the client left, and every choice is aborted, which frees its
// cache pages.
//
//===----------------------------------------------------------------------===//
#ifndef DS_SERVE_GENERATION_H
#define DS_SERVE_GENERATION_H

#include "Backend.h"
#include "Responses.h"
#include "ResponsesApi.h"
#include "Routes.h"

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace httplib {
class DataSink;
} // namespace httplib

namespace dsserve {

/// Where the backend's thread leaves one request's tokens (every choice's)
/// for the HTTP thread.
class Channel {
public:
  struct Event {
    enum Kind { Token, Prompt, Finish } kind;
    size_t choice;
    TokenOutput token;
    std::vector<TokenOutput> prompt; // Prompt: prompt tokens' logprobs
    FinishReason reason = FinishReason::Abort;
    std::string error;
  };

  void onToken(size_t c, const TokenOutput &t) { push({Event::Token, c, t}); }
  void onPrompt(size_t c, const std::vector<TokenOutput> &toks) {
    push({Event::Prompt, c, {}, toks});
  }
  void onFinish(size_t c, FinishReason r, const std::string &e) {
    push({Event::Finish, c, {}, {}, r, e});
  }
  /// Moves out what arrived, waiting up to `seconds` for something.
  void take(std::deque<Event> &out, double seconds) {
    std::unique_lock<std::mutex> lock(mutex);
    cv.wait_for(lock, std::chrono::duration<double>(seconds),
                [&] { return !events.empty(); });
    out.swap(events);
    events.clear();
  }

private:
  void push(Event e) {
    std::lock_guard<std::mutex> lock(mutex);
    events.push_back(std::move(e));
    cv.notify_all();
  }
  std::mutex mutex;
  std::condition_variable cv;
  std::deque<Event> events;
};

/// One choice's end of the Channel: the backend's sink for its request.
class ChoiceSink : public RequestSink {
public:
  ChoiceSink(std::shared_ptr<Channel> channel, size_t choice)
      : channel(std::move(channel)), choice(choice) {}
  void onToken(const TokenOutput &t) override { channel->onToken(choice, t); }
  void onPromptLogprobs(const std::vector<TokenOutput> &toks) override {
    channel->onPrompt(choice, toks);
  }
  void onFinish(FinishReason r, const std::string &e) override {
    channel->onFinish(choice, r, e);
  }

private:
  std::shared_ptr<Channel> channel;
  size_t choice;
};

/// Counts an admitted request (weight: its choices) until its response is
/// complete.
struct InFlightGuard {
  Server &s;
  int64_t weight;
  InFlightGuard(Server &s, int64_t weight) : s(s), weight(weight) {}
  ~InFlightGuard() { s.inFlight -= weight; }
};

/// One request's generation (every choice's), shared by the handler and
/// (for streams) the content provider, which outlives the handler.
struct StreamState {
  /// One choice's backend request.
  struct Run {
    uint64_t backendId = 0;
    double lastToken = 0;
    bool done = false;
  };

  Server &server;
  std::unique_ptr<InFlightGuard> guard;
  std::shared_ptr<Channel> channel;
  std::unique_ptr<CompletionWriter> writer;
  /// /v1/responses, /v1/messages: their writer, over the writer's one
  /// choice.
  std::unique_ptr<AnswerWriter> answer;
  std::vector<Run> runs;
  /// Choices not submitted yet: a prompt's further samples wait for its
  /// first choice's first event (its prompt is then in the prefix cache).
  std::vector<std::optional<GenerateRequest>> deferred;
  size_t perPrompt = 1; // n
  uint64_t serverId = 0;
  double arrival = 0;
  bool recorded = false;
  std::string error; // the first choice that failed
  bool errorSent = false;

  explicit StreamState(Server &s) : server(s) {}

  bool allDone() const {
    for (const Run &r : runs)
      if (!r.done)
        return false;
    return true;
  }
  bool failed() const { return !error.empty(); }

  void abort(size_t c) {
    if (c < deferred.size() && deferred[c]) { // never submitted
      deferred[c].reset();
      runs[c].done = true;
      writer->choice(c).onFinish(FinishReason::Abort);
      return;
    }
    if (!runs[c].done && runs[c].backendId)
      server.backend.abort(runs[c].backendId);
  }
  /// Submits choice c (false with `error` set when the backend refuses).
  bool submit(size_t c, GenerateRequest g);
  /// The samples deferred behind choice `first`: submitted, or with
  /// `reason` ended unsubmitted (the first was aborted or failed).
  void releaseSiblings(size_t first, bool start, FinishReason reason);
  void abortAll() {
    for (size_t c = 0; c < runs.size(); ++c)
      abort(c);
  }

  /// Takes what the backend produced (waiting up to `seconds`).
  void pump(double seconds);

  /// The stream's next events to `sink` (SSE); false when the client left.
  bool send(httplib::DataSink &sink);

  /// Once, when the response is over (sent, failed or client gone).
  void finish();
};

} // namespace dsserve

#endif // DS_SERVE_GENERATION_H
