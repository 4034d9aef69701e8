//===- ServeRequestFuzzer.cpp - fuzz ds-serve's request parsing -----------===//
//
// Every body goes through both endpoints' validation; an accepted one is
// then answered by a CompletionWriter fed the body's bytes as tokens (with
// its stop strings and logprobs settings), so the response and SSE writers
// see whatever text the input carries. Parsing must never throw or crash.
//
//===----------------------------------------------------------------------===//
#include "OpenAIRequest.h"
#include "Responses.h"

#include <cstdint>
#include <string>

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
    CompletionWriter w(*r, nullptr, "id", "m", 0, 1);
    for (size_t i = 0; i < size && i < 64; ++i) {
      TokenOutput t;
      t.token = data[i];
      t.top = {{data[i], -0.5f}};
      if (!w.onToken(t))
        break;
      (void)w.takeStreamEvents();
    }
    w.onFinish(FinishReason::Length);
    (void)w.takeStreamEvents();
    (void)dumpJson(w.body());
  }
  return 0;
}
