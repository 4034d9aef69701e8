//===- Generation.cpp - one request's generation, every choice's ----------===//

#include "Generation.h"

#include "ApiError.h"

#include <httplib.h>
#include <nlohmann/json.hpp>

using nlohmann::json;

namespace dsserve {

void StreamState::pump(double seconds) {
  std::deque<Channel::Event> events;
  channel->take(events, seconds);
  for (Channel::Event &e : events) {
    Run &run = runs[e.choice];
    ChoiceWriter &w = writer->choice(e.choice);
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
    // What came before the error, without the normal ending.
    events = writer->takeStreamEvents(/*end=*/false);
    events += sseEvent(json::parse(ApiError{500, "generation failed: " + error,
                                            "internal_error", "", ""}
                                       .toJson())) +
              "data: [DONE]\n\n";
  } else if (!failed()) {
    events = writer->takeStreamEvents();
  }
  // A comment while nothing comes: keeps proxies patient and finds
  // clients that left while the request waited.
  if (events.empty())
    events = ": keep-alive\n\n";
  if (!sink.write(events.data(), events.size())) {
    abortAll();
    return false;
  }
  if (events.find("data: [DONE]") != std::string::npos)
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
