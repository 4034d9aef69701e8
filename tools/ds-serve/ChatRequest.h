//===- ChatRequest.h - a chat request's messages, tools and template input
//-===//
//
// Internal to the request parsers: the fields of /v1/chat/completions (and
// /tokenize's chat form) that become the chat template's input.
//
//===----------------------------------------------------------------------===//
#ifndef DS_SERVE_CHATREQUEST_H
#define DS_SERVE_CHATREQUEST_H

#include "OpenAIRequest.h"
#include "RequestFields.h"

namespace dsserve {

/// messages (with tool calls and tool results), tools, tool_choice,
/// parallel_tool_calls and chat_template_kwargs, validated into `out`.
void parseChatInput(Fields &f, ChatInput &out);

} // namespace dsserve

#endif // DS_SERVE_CHATREQUEST_H
