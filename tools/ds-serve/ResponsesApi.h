//===- ResponsesApi.h - OpenAI's Responses API (POST /v1/responses) -------===//
//
// A Responses request is read as the chat request it amounts to: its
// `instructions` and `input` items become messages (function calls and
// their outputs included), its function tools and `text.format` the chat
// fields, and the chat parser validates the rest. The answer, read by a
// chat ChoiceWriter (reasoning, content, tool calls), is written back as
// Response output items: reasoning, a message with output_text, and
// function_call items; whole, or as the API's typed stream events.
// The server keeps no responses: previous_response_id and background are
// refused; store is ignored.
//
//===----------------------------------------------------------------------===//
#ifndef DS_SERVE_RESPONSESAPI_H
#define DS_SERVE_RESPONSESAPI_H

#include "OpenAIRequest.h"
#include "Responses.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace dsserve {

/// The chat request a Responses body asks for; `echo` gets the fields the
/// response repeats (instructions, tools, text, ...).
std::optional<ParsedRequest> parseResponsesRequest(const std::string &body,
                                                   ApiError &error,
                                                   nlohmann::json &echo);

/// One response from one chat choice.
class ResponsesWriter : public AnswerWriter {
public:
  ResponsesWriter(ChoiceWriter &choice, std::string id, std::string model,
                  int64_t created, nlohmann::json echo, int64_t promptTokens);
  /// The SSE events for what arrived since the last call: first
  /// response.created, last response.completed (or .incomplete).
  std::string takeStreamEvents() override;
  /// The whole response object.
  nlohmann::json body() const override;
  bool ended() const override { return endSent; }
  std::string errorEvent(const std::string &message) override;

private:
  enum class Item { None, Reasoning, Message, Call };
  nlohmann::json envelope(const char *status) const;
  std::string event(const char *type, nlohmann::json fields);
  /// Closes the open item (its done events) before another kind opens.
  std::string closeItem();
  std::string openItem(Item kind, const ToolCallDelta *call = nullptr);
  /// Reasoning or message text: its item opened if needed, and the delta.
  std::string textDelta(Item kind, const std::string &delta);

  ChoiceWriter &choice;
  std::string id, model;
  int64_t created;
  nlohmann::json echo;
  int64_t promptTokens;
  // The stream's state: items sent so far and the open one.
  int64_t sequence = 0;
  bool startSent = false, endSent = false;
  std::vector<nlohmann::json> items; // each as done
  Item open = Item::None;
  std::string openText; // the open item's text so far
  int openCall = -1;    // the open function_call's index
  std::string messageId, reasoningId;
};

} // namespace dsserve

#endif // DS_SERVE_RESPONSESAPI_H
