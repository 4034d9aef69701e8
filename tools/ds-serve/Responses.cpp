//===- Responses.cpp - OpenAI response bodies and SSE chunks ---------------===//

#include "Responses.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <utility>

using nlohmann::json;

namespace dsserve {

const char *finishReasonName(FinishReason r) {
  switch (r) {
  case FinishReason::Stop:
    return "stop";
  case FinishReason::Length:
    return "length";
  case FinishReason::Abort:
    return "abort";
  case FinishReason::Error:
    return "error";
  }
  return "error";
}

std::string dumpJson(const json &j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string sseEvent(const json &j) { return "data: " + dumpJson(j) + "\n\n"; }

std::string randomHex() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[40];
  snprintf(buf, sizeof(buf), "%016llx%08llx", (unsigned long long)rng(),
           (unsigned long long)(rng() & 0xffffffffu));
  return buf;
}

ChoiceWriter::ChoiceWriter(const ParsedRequest &r, Tokenizer *tok, int index,
                           const std::vector<int32_t> &prompt,
                           const std::optional<std::string> &promptText)
    : chat(r.endpoint == Endpoint::ChatCompletions), wantLogprobs(r.logprobs),
      returnTokenIds(r.returnTokenIds), index(index), tokenizer(tok),
      includeStop(r.includeStopStr),
      stream(tok ? tok->newStream(r.skipSpecialTokens) : nullptr),
      stops(r.stop) {
  if (chat && r.splitReasoning)
    reasoning = std::make_unique<ReasoningSplitter>(r.thinkingClosed);
  if (chat && r.toolFormat) {
    ToolChoice choice = r.chat.toolChoice;
    namedCall = choice == ToolChoice::Named;
    // A forced call starts where the prompt (forcedCallPrefix) left it.
    bool forced = namedCall || choice == ToolChoice::Required;
    tools = std::make_unique<ToolCallParser>(
        *r.toolFormat,
        forced ? ToolCallParser::Start::Forced : ToolCallParser::Start::Content,
        namedCall ? &r.chat.toolName : nullptr);
    maxCalls = namedCall || !r.chat.parallelToolCalls ? 1 : 0;
  }
  if (returnTokenIds && !chat)
    promptIds = prompt;
  if (!r.echo || chat)
    return;
  // The prompt as sent (text), else its tokens as a completion shows
  // them; stop strings apply to the completion only.
  std::string echoed;
  if (promptText) {
    echoed = *promptText;
  } else {
    std::unique_ptr<TextStream> s =
        tok ? tok->newStream(r.skipSpecialTokens) : nullptr;
    for (int32_t t : prompt)
      echoed += s ? s->push(t) : tokenText(t);
    if (s)
      echoed += s->flush();
  }
  text = pendingText = echoed;
  if (wantLogprobs && !prompt.empty()) {
    TokenOutput first; // nothing before it to score it
    first.token = prompt[0];
    first.noLogprob = true;
    outputs.push_back(first);
    pendingOutputs.push_back(first);
    promptRowsWanted = int64_t(prompt.size()) - 1;
  }
}

void ChoiceWriter::onPromptLogprobs(const std::vector<TokenOutput> &toks) {
  if (!wantLogprobs || done)
    return;
  for (const TokenOutput &t : toks) {
    outputs.push_back(t);
    pendingOutputs.push_back(t);
  }
  promptRowsWanted =
      std::max<int64_t>(0, promptRowsWanted - int64_t(toks.size()));
}

/// Without a tokenizer a token shows as "token_id:N", vLLM's rendering for
/// return_tokens_as_token_ids, so clients still see every token.
std::string ChoiceWriter::tokenText(int32_t token) const {
  if (tokenizer)
    return tokenizer->tokenBytes(token);
  return "token_id:" + std::to_string(token);
}

static json bytesOf(const std::string &s) {
  json b = json::array();
  for (unsigned char c : s)
    b.push_back(int(c));
  return b;
}

static double finiteLogprob(float lp) {
  // JSON has no -inf; OpenAI clients expect a number.
  return std::isfinite(lp) ? double(lp) : -9999.0;
}

json ChoiceWriter::formatLogprobs(const std::vector<TokenOutput> &toks,
                                  size_t textOffset) const {
  if (chat) {
    json content = json::array();
    for (const TokenOutput &t : toks) {
      std::string s = tokenText(t.token);
      json top = json::array();
      for (const auto &[id, lp] : t.top) {
        std::string ts = tokenText(id);
        top.push_back({{"token", ts},
                       {"logprob", finiteLogprob(lp)},
                       {"bytes", bytesOf(ts)}});
      }
      content.push_back({{"token", s},
                         {"logprob", finiteLogprob(t.logprob)},
                         {"bytes", bytesOf(s)},
                         {"top_logprobs", top}});
    }
    return {{"content", content}, {"refusal", nullptr}};
  }
  json tokens = json::array(), lps = json::array(), tops = json::array(),
       offsets = json::array();
  size_t offset = textOffset;
  for (const TokenOutput &t : toks) {
    std::string s = tokenText(t.token);
    tokens.push_back(s);
    if (t.noLogprob) { // an echoed prompt's first token
      lps.push_back(nullptr);
      tops.push_back(nullptr);
    } else {
      lps.push_back(finiteLogprob(t.logprob));
      json top = json::object();
      for (const auto &[id, lp] : t.top)
        top[tokenText(id)] = finiteLogprob(lp);
      tops.push_back(top);
    }
    offsets.push_back(offset);
    offset += s.size();
  }
  return {{"tokens", tokens},
          {"token_logprobs", lps},
          {"top_logprobs", tops},
          {"text_offset", offsets}};
}

void ChoiceWriter::appendText(const std::string &t) {
  if (!reasoning)
    return appendContent(t);
  std::string r, c;
  reasoning->push(t, r, c);
  reasoningText += r;
  pendingReasoning += r;
  appendContent(c);
}

void ChoiceWriter::appendContent(const std::string &t) {
  if (!tools) {
    text += t;
    pendingText += t;
    return;
  }
  std::string content;
  std::vector<ToolCallDelta> deltas;
  tools->push(t, content, deltas);
  takeToolDeltas(content, deltas);
}

void ChoiceWriter::takeToolDeltas(const std::string &content,
                                  const std::vector<ToolCallDelta> &deltas) {
  text += content;
  pendingText += content;
  for (const ToolCallDelta &d : deltas) {
    if (d.opens)
      calls.push_back({"chatcmpl-tool-" + randomHex(), d.name, ""});
    calls[size_t(d.index)].arguments += d.arguments;
    if (!pendingCalls.empty() && pendingCalls.back().index == d.index)
      pendingCalls.back().arguments += d.arguments;
    else
      pendingCalls.push_back(d);
  }
}

json ChoiceWriter::pendingToolCalls() {
  json list = json::array();
  for (const ToolCallDelta &d : pendingCalls) {
    json fn = {{"arguments", d.arguments}};
    json one = {{"index", d.index}};
    if (d.opens) { // the call's first chunk: its id, type and name
      one["id"] = calls[size_t(d.index)].id;
      one["type"] = "function";
      fn["name"] = d.name;
    }
    one["function"] = std::move(fn);
    list.push_back(std::move(one));
  }
  pendingCalls.clear();
  return list;
}

bool ChoiceWriter::onToken(const TokenOutput &t) {
  if (done)
    return false;
  tokenIds.push_back(t.token);
  cachedTokens = std::max(cachedTokens, t.cachedPromptTokens);
  if (reasoning && !reasoning->inContent())
    ++reasoningCount;
  if (wantLogprobs) {
    outputs.push_back(t);
    pendingOutputs.push_back(t);
  }
  std::string piece;
  if (!t.isEos)
    piece = stream ? stream->push(t.token) : tokenText(t.token);
  appendText(stops.push(piece));
  if (stops.stopped()) {
    if (includeStop) // vLLM's include_stop_str_in_output
      appendText(stops.matched());
    done = true;
    finishName = tools && !namedCall && !calls.empty() ? "tool_calls" : "stop";
    return false;
  }
  // A named tool_choice, or parallel_tool_calls false: one call is the
  // answer, and what the model writes after it is not wanted.
  if (tools && maxCalls && tools->callsClosed() >= maxCalls) {
    done = true;
    finishName = namedCall ? "stop" : "tool_calls";
    return false;
  }
  return true;
}

void ChoiceWriter::onFinish(FinishReason reason) {
  if (done)
    return;
  if (stream)
    appendText(stops.push(stream->flush()));
  if (!stops.stopped())
    appendText(stops.flush());
  if (reasoning) {
    std::string r;
    reasoning->finish(r);
    reasoningText += r;
    pendingReasoning += r;
  }
  if (tools) {
    std::string content;
    std::vector<ToolCallDelta> deltas;
    tools->finish(content, deltas);
    takeToolDeltas(content, deltas);
  }
  done = true;
  finishName = stops.stopped() ? "stop" : finishReasonName(reason);
  // As vLLM: an answer that called tools (the model's choice) ends with
  // "tool_calls"; a named tool_choice's with "stop".
  if (tools && !namedCall && !calls.empty() && !strcmp(finishName, "stop"))
    finishName = "tool_calls";
}

json ChoiceWriter::chunkChoice(const std::string &piece,
                               const std::vector<TokenOutput> &toks,
                               const char *finish, const char *field,
                               json toolCalls) {
  json lp = nullptr;
  if (wantLogprobs && (!toks.empty() || !chat))
    lp = formatLogprobs(toks, pendingOffset);
  json fin = finish ? json(finish) : json(nullptr);
  if (!chat)
    return {{"index", index},
            {"text", piece},
            {"logprobs", lp},
            {"finish_reason", fin}};
  json delta = json::object();
  if (!sentRole) {
    delta["role"] = "assistant";
    sentRole = true;
  }
  if (!toolCalls.is_null())
    delta["tool_calls"] = std::move(toolCalls);
  else if (!piece.empty() || !finish)
    delta[field] = piece;
  return {{"index", index},
          {"delta", delta},
          {"logprobs", lp},
          {"finish_reason", fin}};
}

std::vector<json> ChoiceWriter::takeChunkChoices() {
  std::vector<json> out;
  if (holdingForPrompt())
    return out;
  // Reasoning first (it came first), then content: one kind a chunk.
  if (!pendingReasoning.empty()) {
    out.push_back(chunkChoice(pendingReasoning, pendingOutputs, nullptr,
                              "reasoning_content"));
    pendingReasoning.clear();
    pendingOutputs.clear();
  }
  if (!pendingText.empty() || (chat && !sentRole)) {
    out.push_back(chunkChoice(pendingText, pendingOutputs, nullptr));
    pendingOffset += pendingText.size();
    pendingText.clear();
    pendingOutputs.clear();
  }
  if (!pendingCalls.empty()) {
    out.push_back(chunkChoice("", pendingOutputs, nullptr, "content",
                              pendingToolCalls()));
    pendingOutputs.clear();
  }
  if (done && !finishSent) {
    out.push_back(chunkChoice("", pendingOutputs, finishName));
    pendingOutputs.clear();
    finishSent = true;
  }
  return out;
}

ChoiceWriter::Pieces ChoiceWriter::takePieces() {
  Pieces p;
  if (holdingForPrompt())
    return p;
  p.reasoning = std::exchange(pendingReasoning, "");
  p.content = std::exchange(pendingText, "");
  p.calls = std::exchange(pendingCalls, {});
  pendingOutputs.clear();
  return p;
}

json ChoiceWriter::bodyChoice() const {
  json lp = wantLogprobs ? formatLogprobs(outputs, 0) : json(nullptr);
  const char *fin = finishName ? finishName : "abort";
  json choice;
  if (chat) {
    json message = {
        {"role", "assistant"}, {"content", text}, {"refusal", nullptr}};
    if (reasoning) { // as vLLM: null where there is none
      message["reasoning_content"] =
          reasoningText.empty() ? json(nullptr) : json(reasoningText);
      if (text.empty())
        message["content"] = nullptr;
    }
    if (!calls.empty()) { // content null where the answer is only calls
      json list = json::array();
      for (const ToolCall &c : calls)
        list.push_back(
            {{"id", c.id},
             {"type", "function"},
             {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
      message["tool_calls"] = std::move(list);
      if (text.empty())
        message["content"] = nullptr;
    }
    choice = {{"index", index},
              {"message", message},
              {"logprobs", lp},
              {"finish_reason", fin}};
  } else {
    choice = {{"index", index},
              {"text", text},
              {"logprobs", lp},
              {"finish_reason", fin}};
  }
  if (returnTokenIds) {
    choice["token_ids"] = tokenIds;
    if (!chat) // vLLM: on a completion's choice, on a chat's body
      choice["prompt_token_ids"] = promptIds;
  }
  return choice;
}

CompletionWriter::CompletionWriter(
    const ParsedRequest &r, Tokenizer *tok, std::string id, std::string model,
    int64_t created, const std::vector<std::vector<int32_t>> &prompts)
    : chat(r.endpoint == Endpoint::ChatCompletions),
      includeUsage(r.includeUsage), continuousUsage(r.continuousUsage),
      id(std::move(id)), model(std::move(model)), created(created),
      perPrompt(size_t(std::max<int64_t>(1, r.n))) {
  for (const std::vector<int32_t> &p : prompts)
    numPrompt.push_back(int64_t(p.size()));
  if (chat && r.returnTokenIds && !prompts.empty())
    chatPromptIds = prompts[0];
  size_t n = prompts.size() * perPrompt;
  choices.reserve(n);
  for (size_t c = 0; c < n; ++c) {
    size_t p = c / perPrompt;
    std::optional<std::string> text;
    if (p < r.prompts.size())
      text = r.prompts[p].text;
    choices.emplace_back(r, tok, int(c), prompts[p], text);
  }
}

static std::vector<std::vector<int32_t>>
zeroPrompts(const std::vector<int64_t> &lengths) {
  std::vector<std::vector<int32_t>> p;
  for (int64_t n : lengths)
    p.emplace_back(size_t(std::max<int64_t>(0, n)), 0);
  return p;
}

CompletionWriter::CompletionWriter(const ParsedRequest &r, Tokenizer *tok,
                                   std::string id, std::string model,
                                   int64_t created,
                                   const std::vector<int64_t> &promptLengths)
    : CompletionWriter(r, tok, std::move(id), std::move(model), created,
                       zeroPrompts(promptLengths)) {}

bool CompletionWriter::finished() const {
  for (const ChoiceWriter &c : choices)
    if (!c.finished())
      return false;
  return true;
}

int64_t CompletionWriter::promptTokens() const {
  int64_t n = 0;
  for (int64_t p : numPrompt)
    n += p;
  return n;
}

int64_t CompletionWriter::completionTokens() const {
  int64_t n = 0;
  for (const ChoiceWriter &c : choices)
    n += c.completionTokens();
  return n;
}

json CompletionWriter::usage() const {
  int64_t p = promptTokens(), n = completionTokens();
  // Each prompt counts once (with its first choice), its cached part too.
  int64_t cached = 0, reasoningTokens = 0;
  for (size_t c = 0; c < choices.size(); c += perPrompt)
    cached += choices[c].cachedPromptTokens();
  for (const ChoiceWriter &c : choices)
    reasoningTokens += c.reasoningTokens();
  // OpenAI's details, and DeepSeek's API's names for the cache's share.
  return {
      {"prompt_tokens", p},
      {"completion_tokens", n},
      {"total_tokens", p + n},
      {"prompt_tokens_details", {{"cached_tokens", cached}}},
      {"completion_tokens_details", {{"reasoning_tokens", reasoningTokens}}},
      {"prompt_cache_hit_tokens", cached},
      {"prompt_cache_miss_tokens", p - cached}};
}

json CompletionWriter::envelope(json choiceList) const {
  return {{"id", id},
          {"object", chat ? "chat.completion.chunk" : "text_completion"},
          {"created", created},
          {"model", model},
          {"choices", std::move(choiceList)}};
}

std::string CompletionWriter::takeStreamEvents(bool end) {
  std::string out;
  // One choice a chunk, as OpenAI and vLLM stream them.
  for (ChoiceWriter &c : choices)
    for (json &ch : c.takeChunkChoices()) {
      json e = envelope(json::array({std::move(ch)}));
      if (includeUsage)
        e["usage"] = continuousUsage ? usage() : json(nullptr);
      out += sseEvent(e);
    }
  if (end && finished() && !doneSent) {
    doneSent = true;
    if (includeUsage) {
      json u = envelope(json::array());
      u["usage"] = usage();
      out += sseEvent(u);
    }
    out += "data: [DONE]\n\n";
  }
  return out;
}

json CompletionWriter::body() const {
  json list = json::array();
  for (const ChoiceWriter &c : choices)
    list.push_back(c.bodyChoice());
  json b = envelope(std::move(list));
  b["object"] = chat ? "chat.completion" : "text_completion";
  b["usage"] = usage();
  if (chatPromptIds)
    b["prompt_token_ids"] = *chatPromptIds;
  return b;
}

} // namespace dsserve
