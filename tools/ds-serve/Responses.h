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
#include "ReasoningSplitter.h"
#include "StopStrings.h"
#include "ToolCalls.h"

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dsserve {

/// Serializes for the wire: never throws, invalid UTF-8 becomes U+FFFD.
std::string dumpJson(const nlohmann::json &j);
/// "data: <json>\n\n"
std::string sseEvent(const nlohmann::json &j);
/// 24 random hex digits, for response and tool call ids.
std::string randomHex();

/// One choice's text: incremental decode, stop strings, logprobs, and its
/// SSE chunks (CompletionWriter's part for choice `index`).
class ChoiceWriter {
public:
  /// With request.echo, the choice starts with its prompt: `promptText`
  /// where the prompt came as text (else its tokens decoded) and, with
  /// logprobs, the prompt tokens' (the first null, the rest arriving
  /// through onPromptLogprobs).
  ChoiceWriter(const ParsedRequest &request, Tokenizer *tokenizer, int index,
               const std::vector<int32_t> &prompt,
               const std::optional<std::string> &promptText);

  /// Takes one token. Returns false once a stop string matched: the
  /// choice is then finished with reason "stop" and the caller aborts it.
  bool onToken(const TokenOutput &token);
  /// Prompt tokens' logprobs (echo), in order, before any onToken.
  void onPromptLogprobs(const std::vector<TokenOutput> &tokens);
  void onFinish(FinishReason reason);
  bool finished() const { return done; }
  const char *finishReason() const { return finishName; }
  /// The stop string that ended the answer, null where none did.
  const std::string *matchedStop() const {
    return stops.stopped() ? &stops.matched() : nullptr;
  }
  int64_t completionTokens() const { return int64_t(tokenIds.size()); }
  /// The prompt's tokens the backend read from its prefix cache.
  int64_t cachedPromptTokens() const { return cachedTokens; }
  /// Tokens generated while the reasoning was open (--reasoning-parser),
  /// the one closing it included.
  int64_t reasoningTokens() const { return reasoningCount; }

  /// The choice objects of the chunks for what arrived since the last
  /// call, and the finish chunk's once finished (each once).
  std::vector<nlohmann::json> takeChunkChoices();
  /// The choice object of the non-streaming body.
  nlohmann::json bodyChoice() const;

  struct ToolCall {
    std::string id, name, arguments;
  };
  /// What arrived since the last call, for writers of other shapes (the
  /// Responses API): reasoning, then content, then call pieces.
  struct Pieces {
    std::string reasoning, content;
    std::vector<ToolCallDelta> calls;
  };
  Pieces takePieces();
  /// The answer so far: content, reasoning, tool calls.
  const std::string &contentText() const { return text; }
  const std::string &reasoningContent() const { return reasoningText; }
  const std::vector<ToolCall> &toolCalls() const { return calls; }

private:
  std::string tokenText(int32_t token) const;
  nlohmann::json formatLogprobs(const std::vector<TokenOutput> &tokens,
                                size_t textOffset) const;
  /// A chunk's choice: `text` under `field` ("content", or
  /// "reasoning_content" on chat), or the delta's tool_calls.
  nlohmann::json chunkChoice(const std::string &text,
                             const std::vector<TokenOutput> &tokens,
                             const char *finish, const char *field = "content",
                             nlohmann::json toolCalls = nullptr);
  void appendText(const std::string &t);
  /// Content after the reasoning: through the tool-call parser if any.
  void appendContent(const std::string &t);
  void takeToolDeltas(const std::string &content,
                      const std::vector<ToolCallDelta> &deltas);
  /// The pending tool-call deltas as a chunk delta's tool_calls.
  nlohmann::json pendingToolCalls();
  /// Echo with logprobs: chunks wait until the prompt's logprobs are in,
  /// so the first chunk carries the whole prompt with them.
  bool holdingForPrompt() const { return promptRowsWanted > 0 && !done; }

  bool chat;
  bool wantLogprobs;
  bool returnTokenIds;
  int index;
  bool includeStop;
  Tokenizer *tokenizer;
  std::unique_ptr<TextStream> stream;
  StopStrings stops;
  std::unique_ptr<ReasoningSplitter> reasoning; // --reasoning-parser, chat
  std::string reasoningText, pendingReasoning;
  // --tool-call-parser, chat with tools: the answer's calls.
  std::unique_ptr<ToolCallParser> tools;
  std::vector<ToolCall> calls;
  std::vector<ToolCallDelta> pendingCalls;
  int maxCalls = 0;       // > 0: the answer ends once this many are closed
  bool namedCall = false; // tool_choice named a function: finish "stop"

  std::string text;           // everything emitted so far
  std::vector<int32_t> tokenIds;
  std::vector<int32_t> promptIds;   // completions with return_token_ids
  int64_t cachedTokens = 0;
  int64_t reasoningCount = 0;
  std::vector<TokenOutput> outputs; // with logprobs, for the body
  std::string pendingText;          // not yet sent as a chunk
  std::vector<TokenOutput> pendingOutputs;
  size_t pendingOffset = 0;         // text offset of pendingText
  int64_t promptRowsWanted = 0;     // echo: prompt logprobs still to come
  bool sentRole = false;
  bool done = false;
  bool finishSent = false;
  const char *finishName = nullptr;
};

/// A response of another API over one chat choice (OpenAI's Responses
/// API, Anthropic's Messages API): its whole body, or its stream events.
class AnswerWriter {
public:
  virtual ~AnswerWriter() = default;
  /// The SSE events for what arrived since the last call.
  virtual std::string takeStreamEvents() = 0;
  virtual nlohmann::json body() const = 0;
  /// The stream's last event was sent.
  virtual bool ended() const = 0;
  /// The event that ends a stream whose generation failed.
  virtual std::string errorEvent(const std::string &message) = 0;
};

/// One request's response: its choices (prompts x n; choice c answers
/// prompt c / n, as vLLM numbers them), as a whole body or as SSE events.
class CompletionWriter {
public:
  /// prompts: each prompt's tokens (one per prompt).
  CompletionWriter(const ParsedRequest &request, Tokenizer *tokenizer,
                   std::string id, std::string model, int64_t created,
                   const std::vector<std::vector<int32_t>> &prompts);
  /// Prompts of these lengths whose tokens do not matter (no echo).
  CompletionWriter(const ParsedRequest &request, Tokenizer *tokenizer,
                   std::string id, std::string model, int64_t created,
                   const std::vector<int64_t> &promptLengths);
  /// One prompt of `promptTokens` tokens (no echo).
  CompletionWriter(const ParsedRequest &request, Tokenizer *tokenizer,
                   std::string id, std::string model, int64_t created,
                   int64_t promptTokens)
      : CompletionWriter(request, tokenizer, std::move(id), std::move(model),
                         created, std::vector<int64_t>{promptTokens}) {}

  size_t size() const { return choices.size(); }
  ChoiceWriter &choice(size_t c) { return choices[c]; }
  const ChoiceWriter &choice(size_t c) const { return choices[c]; }
  /// Choice 0's, for one-choice requests.
  bool onToken(const TokenOutput &token) { return choices[0].onToken(token); }
  void onFinish(FinishReason reason) { choices[0].onFinish(reason); }
  /// Every choice finished.
  bool finished() const;
  /// The prompt tokens of choice c's prompt.
  int64_t promptTokensOf(size_t c) const { return numPrompt[c / perPrompt]; }
  /// Choice c is its prompt's first (of n).
  bool isFirstOfPrompt(size_t c) const { return c % perPrompt == 0; }
  int64_t promptTokens() const;     // each prompt once
  int64_t completionTokens() const; // every choice's

  /// The SSE events for what arrived since the last call (possibly none);
  /// once every choice finished and with `end`, also the usage chunk and
  /// [DONE] (once).
  std::string takeStreamEvents(bool end = true);
  /// The non-streaming body.
  nlohmann::json body() const;
  nlohmann::json usage() const;

private:
  nlohmann::json envelope(nlohmann::json choiceList) const;

  bool chat;
  bool includeUsage;
  bool continuousUsage; // every chunk carries the usage so far
  std::string id, model;
  int64_t created;
  std::vector<int64_t> numPrompt;
  // Chat with return_token_ids: the prompt, on the body (as vLLM).
  std::optional<std::vector<int32_t>> chatPromptIds;
  size_t perPrompt;
  std::vector<ChoiceWriter> choices;
  bool doneSent = false;
};

} // namespace dsserve

#endif // DS_SERVE_RESPONSES_H
