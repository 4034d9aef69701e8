//===- OpenAIRequest.h - parsing and validating OpenAI request bodies -----===//
//
// Bodies of POST /v1/completions and /v1/chat/completions become a
// ParsedRequest, or an ApiError naming the parameter at fault. Parsing is
// nlohmann::json's; this file only checks shapes, types and ranges, so
// known fields of the wrong type are 400s and unknown fields are ignored
// (as vLLM does).
//
//===----------------------------------------------------------------------===//
#ifndef DS_SERVE_OPENAIREQUEST_H
#define DS_SERVE_OPENAIREQUEST_H

#include "ApiError.h"
#include "Backend.h"
#include "JsonGrammar.h"
#include "ToolCalls.h"

#include <optional>
#include <string>
#include <vector>

namespace dsserve {

enum class Endpoint { Completions, ChatCompletions };

/// Most choices (prompts x n) one request may ask for: OpenAI's bound on n.
constexpr int64_t kMaxChoices = 128;

/// One completions prompt: text or token ids (exactly one is set).
struct PromptInput {
  std::optional<std::string> text;
  std::optional<std::vector<int32_t>> tokens;
};

/// OpenAI's tool_choice: no call parsed (none), the model decides (auto),
/// a call forced (required), or a call of one function forced (named).
enum class ToolChoice { None, Auto, Required, Named };

/// A chat request's input to the template: the conversation, and what
/// else the template sees.
struct ChatInput {
  /// The messages array re-serialized: roles, string contents, and the
  /// tool fields (tool_calls, tool_call_id, name).
  std::string messagesJson;
  /// "" or a JSON object merged into the template's context: `tools`, and
  /// the request's chat_template_kwargs.
  std::string contextJson;
  ToolChoice toolChoice = ToolChoice::None;
  std::string toolName; // the named tool_choice's function
  bool parallelToolCalls = true;
  bool addGenerationPrompt = true; // vLLM's add_generation_prompt
  /// vLLM's continue_final_message, or DeepSeek's `"prefix": true` on the
  /// last (assistant) message: the answer continues that message's
  /// `finalContent` instead of starting a new one.
  bool continueFinal = false;
  std::string finalContent;
};

struct ParsedRequest {
  Endpoint endpoint = Endpoint::Completions;
  std::string model; // empty when absent
  // Completions: one prompt, or several (a batch: each its own choices).
  std::vector<PromptInput> prompts;
  // Choices per prompt; choice i answers prompt i / n.
  int64_t n = 1;
  bool echo = false; // completions: the prompt before the completion
  // Completions: not empty, fill in the middle: each prompt is the text
  // before the hole, this the text after it.
  std::string suffix;
  ChatInput chat;    // chat only
  std::optional<int64_t> maxTokens; // absent: up to the context
  float temperature = 1.0f;
  float topP = 1.0f;
  int32_t topK = 0; // vLLM's top_k; 0 (or -1 on the wire): off
  std::optional<uint64_t> seed;
  std::vector<int32_t> stopTokenIds; // vLLM's stop_token_ids
  bool ignoreEos = false;
  std::vector<std::string> stop;
  bool stream = false;
  bool includeUsage = false;
  // vLLM's continuous_usage_stats (with include_usage): every chunk's usage
  // so far.
  bool continuousUsage = false;
  bool logprobs = false;
  int topLogprobs = 0;
  bool returnTokenIds = false; // vLLM's return_token_ids
  int32_t priority = 0;        // vLLM's priority (lower first)
  bool skipSpecialTokens = true; // vLLM's skip_special_tokens
  // Logits processing: OpenAI's penalties and logit_bias, vLLM's
  // repetition_penalty, min_p and min_tokens.
  float presencePenalty = 0, frequencyPenalty = 0, repetitionPenalty = 1;
  float minP = 0;
  int64_t minTokens = 0;
  std::vector<std::pair<int32_t, float>> logitBias;
  bool includeStopStr = false;   // vLLM's include_stop_str_in_output
  // Set by the server (--reasoning-parser), chat only: reasoning_content
  // apart from content.
  bool splitReasoning = false;
  // Set by the server: the chat prompt closed the thinking ("</think>" at
  // its end), so the answer is all content.
  bool thinkingClosed = false;
  // Structured outputs (response_format json_object / json_schema, vLLM's
  // guided_json / guided_choice, a named tool_choice's parameters): the
  // answer (or the forced call's arguments) follows this grammar.
  std::shared_ptr<const Grammar> grammar;
  // tool_choice "required" or "auto": each function's name and parameters
  // (in their written order), for the server to build the calls' grammars
  // in its format.
  std::vector<std::pair<std::string, nlohmann::ordered_json>> toolParameters;
  // tool_choice "auto", set by the server: each function's call body
  // (arguments following its parameters, then the closing), for the calls
  // the model opens.
  std::vector<std::pair<std::string, std::shared_ptr<const Grammar>>>
      callBodies;
  // Set by the server (--tool-call-parser) when the answer's tool calls are
  // parsed: chat with tools and a tool_choice other than none.
  std::optional<ToolCallFormat> toolFormat;
};

/// Parses and validates a body. Never throws.
std::optional<ParsedRequest> parseRequest(Endpoint endpoint,
                                          const std::string &body,
                                          ApiError &error);

/// POST /tokenize (vLLM's): a text prompt, or chat messages rendered with
/// the generation prompt, as the generation endpoints would tokenize them.
struct TokenizeRequest {
  std::string model; // empty when absent
  std::optional<std::string> prompt;
  ChatInput chat;               // the chat form (prompt unset)
  bool addSpecialTokens = true; // default: true for text, false for chat
};
std::optional<TokenizeRequest> parseTokenizeRequest(const std::string &body,
                                                    ApiError &error);

/// POST /detokenize (vLLM's): token ids back to text.
struct DetokenizeRequest {
  std::string model;
  std::vector<int32_t> tokens;
};
std::optional<DetokenizeRequest> parseDetokenizeRequest(const std::string &body,
                                                        ApiError &error);

} // namespace dsserve

#endif // DS_SERVE_OPENAIREQUEST_H
