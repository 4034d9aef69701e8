//===- MessagesApi.h - Anthropic's Messages API (POST /v1/messages) -------===//
//
// DeepSeek's own API also speaks Anthropic's Messages API, which agents
// built on Anthropic's SDKs (Claude Code among them) use. A Messages
// request is read as the chat request it amounts to: `system` and the
// messages' content blocks (text, tool_use, tool_result; earlier thinking
// is dropped, as DeepSeek's templates drop it) become chat messages, a
// final assistant message is continued (Anthropic's prefill), tools with
// an input_schema become functions, tool_choice auto / any / tool / none
// map to auto / required / a named function / none, `thinking` reaches
// the template as V3.1's `thinking` variable. The answer, read by a chat
// ChoiceWriter, is written back as content blocks (thinking, text,
// tool_use) with Anthropic's stop reasons, whole or as its stream events.
// Errors take Anthropic's shape (anthropicError).
//
//===----------------------------------------------------------------------===//
#ifndef DS_SERVE_MESSAGESAPI_H
#define DS_SERVE_MESSAGESAPI_H

#include "OpenAIRequest.h"
#include "Responses.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace dsserve {

/// The chat request a Messages body asks for. `countOnly`: the body of
/// /v1/messages/count_tokens, which has no max_tokens.
std::optional<ParsedRequest> parseMessagesRequest(const std::string &body,
                                                  ApiError &error,
                                                  bool countOnly = false);

/// An OpenAI error body (ApiError::toJson) in Anthropic's shape:
/// {"type": "error", "error": {"type", "message"}}, its type by `status`.
std::string anthropicError(int status, const std::string &openAiBody);

/// One message from one chat choice.
class MessagesWriter : public AnswerWriter {
public:
  MessagesWriter(ChoiceWriter &choice, std::string id, std::string model,
                 int64_t promptTokens);
  /// message_start first, message_stop last.
  std::string takeStreamEvents() override;
  nlohmann::json body() const override;
  bool ended() const override { return endSent; }
  std::string errorEvent(const std::string &message) override;

private:
  enum class Block { None, Thinking, Text, ToolUse };
  std::string event(const char *type, nlohmann::json fields) const;
  std::string openBlock(Block kind, const ToolCallDelta *call = nullptr);
  std::string closeBlock();
  std::string textDelta(Block kind, const std::string &delta);
  nlohmann::json usage() const;

  ChoiceWriter &choice;
  std::string id, model;
  int64_t promptTokens;
  bool startSent = false, endSent = false;
  int64_t blocks = 0; // blocks opened so far (the next one's index)
  Block open = Block::None;
};

} // namespace dsserve

#endif // DS_SERVE_MESSAGESAPI_H
