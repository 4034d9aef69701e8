//===- ServeRequestFuzzer.cpp - fuzz ds-serve's request parsing -----------===//
//
// Every body goes through both endpoints' validation; an accepted one is
// then answered by a CompletionWriter fed the body's bytes as tokens (with
// its stop strings and logprobs settings, dealt round its choices: prompts
// x n), so the response and SSE writers see whatever text the input
// carries. Parsing must never throw or crash.
//
//===----------------------------------------------------------------------===//
#include "OpenAIRequest.h"
#include "Responses.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

using namespace dsserve;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string body(reinterpret_cast<const char *>(data), size);
  for (Endpoint ep : {Endpoint::Completions, Endpoint::ChatCompletions}) {
    ApiError error;
    auto r = parseRequest(ep, body, error);
    if (!r) {
      if (error.status != 400 || error.message.empty())
        __builtin_trap();
      (void)error.toJson();
      continue;
    }
    // --reasoning-parser on for half the chat inputs.
    r->splitReasoning = ep == Endpoint::ChatCompletions && (size & 1);
    // Every prompt of a batch, n choices each: the bytes dealt round.
    std::vector<int64_t> prompts(std::max<size_t>(1, r->prompts.size()), 1);
    CompletionWriter w(*r, nullptr, "id", "m", 0, prompts);
    for (size_t i = 0; i < size && i < 64; ++i) {
      TokenOutput t;
      t.token = data[i];
      t.top = {{data[i], -0.5f}};
      if (!w.choice(i % w.size()).onToken(t) && w.finished())
        break;
      (void)w.takeStreamEvents();
    }
    for (size_t c = 0; c < w.size(); ++c)
      w.choice(c).onFinish(FinishReason::Length);
    (void)w.takeStreamEvents();
    (void)dumpJson(w.body());
  }
  return 0;
}
