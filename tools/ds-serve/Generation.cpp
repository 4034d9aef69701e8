//===- Generation.cpp - one request's generation, every choice's ----------===//

#include "Generation.h"

#include "ApiError.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

using nlohmann::json;

namespace dsserve {

bool StreamState::submit(size_t c, GenerateRequest g) {
  std::string why;
  uint64_t id = server.backend.submit(
      std::move(g), std::make_shared<ChoiceSink>(channel, c), why);
  if (!id) {
    if (error.empty())
      error = "the engine refused choice " + std::to_string(c) + ": " + why;
    runs[c].done = true;
    writer->choice(c).onFinish(FinishReason::Error);
    return false;
  }
  runs[c].backendId = id;
  if (serverId) { // registered: the server's stop() must reach it too
    std::lock_guard<std::mutex> lock(server.liveMutex);
    server.live[serverId].push_back(id);
  }
  return true;
}

void StreamState::releaseSiblings(size_t first, bool start,
                                  FinishReason reason) {
  for (size_t c = first + 1; c < first + perPrompt && c < deferred.size();
       ++c) {
    if (!deferred[c])
      continue;
    GenerateRequest g = std::move(*deferred[c]);
    deferred[c].reset();
    if (start) {
      submit(c, std::move(g));
    } else {
      runs[c].done = true;
      writer->choice(c).onFinish(reason);
    }
  }
}

void StreamState::pump(double seconds) {
  std::deque<Channel::Event> events;
  channel->take(events, seconds);
  for (Channel::Event &e : events) {
    Run &run = runs[e.choice];
    ChoiceWriter &w = writer->choice(e.choice);
    // A prompt's first choice has computed its prompt (its first token or
    // its end): its siblings start, and find the prompt's full pages in
    // the prefix cache.
    if (e.kind != Channel::Event::Prompt && e.choice % perPrompt == 0) {
      bool ok = e.kind == Channel::Event::Token ||
                e.reason == FinishReason::Stop ||
                e.reason == FinishReason::Length;
      releaseSiblings(e.choice, ok, e.reason);
    }
    if (e.kind == Channel::Event::Prompt) {
      w.onPromptLogprobs(e.prompt);
      continue;
    }
    if (e.kind == Channel::Event::Finish) {
      run.done = true;
      if (e.reason == FinishReason::Error && error.empty())
        error = e.error.empty() ? "unknown error" : e.error;
      w.onFinish(e.reason);
      continue;
    }
    const TokenOutput &t = e.token;
    if (run.lastToken == 0)
      server.metrics.firstToken(t.time - arrival);
    else
      server.metrics.interToken(t.time - run.lastToken);
    run.lastToken = t.time;
    if (!w.onToken(t))
      abort(e.choice); // a stop string matched
  }
  // One choice failing fails the response: the others stop too.
  if (failed())
    abortAll();
}

bool StreamState::send(httplib::DataSink &sink) {
  if (!allDone())
    pump(1.0);
  std::string events;
  if (failed() && allDone() && !errorSent) {
    errorSent = true;
    std::string message = "generation failed: " + error;
    if (answer) { // its own error event ends the stream
      events = answer->errorEvent(message);
    } else {
      // What came before the error, without the normal ending.
      events = writer->takeStreamEvents(/*end=*/false);
      events +=
          sseEvent(json::parse(
              ApiError{500, message, "internal_error", "", ""}.toJson())) +
          "data: [DONE]\n\n";
    }
  } else if (!failed()) {
    events = answer ? answer->takeStreamEvents() : writer->takeStreamEvents();
  }
  // A comment while nothing comes: keeps proxies patient and finds
  // clients that left while the request waited.
  if (events.empty())
    events = ": keep-alive\n\n";
  if (!sink.write(events.data(), events.size())) {
    abortAll();
    return false;
  }
  if (events.find("data: [DONE]") != std::string::npos ||
      (answer && (answer->ended() || errorSent)))
    sink.done();
  return true;
}

void StreamState::finish() {
  if (recorded)
    return;
  recorded = true;
  abortAll(); // those not done: the client left or the server stops
  double latency = steadySeconds() - arrival;
  // One record a choice (each was an engine request); a prompt's tokens
  // count once, with its first choice, as in the usage.
  for (size_t c = 0; c < writer->size(); ++c) {
    const ChoiceWriter &w = writer->choice(c);
    server.metrics.requestFinished(
        w.finished() ? w.finishReason() : "abort",
        writer->isFirstOfPrompt(c) ? writer->promptTokensOf(c) : 0,
        w.completionTokens(), latency);
  }
  std::lock_guard<std::mutex> lock(server.liveMutex);
  server.live.erase(serverId);
}

} // namespace dsserve
