//===- Responses.h - OpenAI response bodies and SSE chunks -----------------===//
//
// One CompletionWriter per request turns the backend's tokens into text
// (incremental decode, then stop strings) and writes the response in the
// shape of the endpoint: a whole body, or Server-Sent Events chunks.
//
//===----------------------------------------------------------------------===//
#ifndef DS_SERVE_RESPONSES_H
#define DS_SERVE_RESPONSES_H

#include "Backend.h"
#include "OpenAIRequest.h"
#include "StopStrings.h"

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <vector>

namespace dsserve {

/// Serializes for the wire: never throws, invalid UTF-8 becomes U+FFFD.
std::string dumpJson(const nlohmann::json &j);
/// "data: <json>\n\n"
std::string sseEvent(const nlohmann::json &j);

class CompletionWriter {
public:
  CompletionWriter(const ParsedRequest &request, Tokenizer *tokenizer,
                   std::string id, std::string model, int64_t created,
                   int64_t promptTokens);

  /// Takes one token. Returns false once a stop string matched: the
  /// request is then finished with reason "stop" and the caller aborts it.
  bool onToken(const TokenOutput &token);
  void onFinish(FinishReason reason);
  bool finished() const { return done; }
  const char *finishReason() const { return finishName; }
  int64_t completionTokens() const { return int64_t(tokenIds.size()); }
  int64_t promptTokens() const { return numPrompt; }

  /// The SSE events for what arrived since the last call (possibly none);
  /// after onFinish, also the finish chunk and the usage chunk.
  std::string takeStreamEvents();
  /// The non-streaming body.
  nlohmann::json body() const;
  nlohmann::json usage() const;

private:
  std::string tokenText(int32_t token) const;
  nlohmann::json formatLogprobs(const std::vector<TokenOutput> &tokens,
                                size_t textOffset) const;
  nlohmann::json chunk(const std::string &text,
                       const std::vector<TokenOutput> &tokens,
                       const char *finish);
  void appendText(const std::string &t);

  bool chat;
  bool wantLogprobs;
  bool returnTokenIds;
  bool includeUsage;
  Tokenizer *tokenizer;
  std::string id, model;
  int64_t created;
  int64_t numPrompt;
  std::unique_ptr<TextStream> stream;
  StopStrings stops;

  std::string text;           // everything emitted so far
  std::vector<int32_t> tokenIds;
  std::vector<TokenOutput> outputs; // with logprobs, for the body
  std::string pendingText;          // not yet sent as a chunk
  std::vector<TokenOutput> pendingOutputs;
  size_t pendingOffset = 0;         // text offset of pendingText
  bool sentRole = false;
  bool done = false;
  bool finishSent = false;
  const char *finishName = nullptr;
};

} // namespace dsserve

#endif // DS_SERVE_RESPONSES_H
