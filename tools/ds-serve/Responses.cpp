//===- Responses.cpp - OpenAI response bodies and SSE chunks ---------------===//

#include "Responses.h"

#include <cmath>

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

CompletionWriter::CompletionWriter(const ParsedRequest &r, Tokenizer *tok,
                                   std::string id, std::string model,
                                   int64_t created, int64_t promptTokens)
    : chat(r.endpoint == Endpoint::ChatCompletions), wantLogprobs(r.logprobs),
      returnTokenIds(r.returnTokenIds), includeUsage(r.includeUsage),
      tokenizer(tok), id(std::move(id)), model(std::move(model)),
      created(created), numPrompt(promptTokens),
      stream(tok ? tok->newStream() : nullptr), stops(r.stop) {}

/// Without a tokenizer a token shows as "token_id:N", vLLM's rendering for
/// return_tokens_as_token_ids, so clients still see every token.
std::string CompletionWriter::tokenText(int32_t token) const {
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

json CompletionWriter::formatLogprobs(const std::vector<TokenOutput> &toks,
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
    lps.push_back(finiteLogprob(t.logprob));
    json top = json::object();
    for (const auto &[id, lp] : t.top)
      top[tokenText(id)] = finiteLogprob(lp);
    tops.push_back(top);
    offsets.push_back(offset);
    offset += s.size();
  }
  return {{"tokens", tokens},
          {"token_logprobs", lps},
          {"top_logprobs", tops},
          {"text_offset", offsets}};
}

void CompletionWriter::appendText(const std::string &t) {
  text += t;
  pendingText += t;
}

bool CompletionWriter::onToken(const TokenOutput &t) {
  if (done)
    return false;
  tokenIds.push_back(t.token);
  if (wantLogprobs) {
    outputs.push_back(t);
    pendingOutputs.push_back(t);
  }
  std::string piece;
  if (!t.isEos)
    piece = stream ? stream->push(t.token) : tokenText(t.token);
  appendText(stops.push(piece));
  if (stops.stopped()) {
    done = true;
    finishName = "stop";
    return false;
  }
  return true;
}

void CompletionWriter::onFinish(FinishReason reason) {
  if (done)
    return;
  if (stream)
    appendText(stops.push(stream->flush()));
  if (!stops.stopped())
    appendText(stops.flush());
  done = true;
  finishName = stops.stopped() ? "stop" : finishReasonName(reason);
}

json CompletionWriter::usage() const {
  int64_t n = completionTokens();
  return {{"prompt_tokens", numPrompt},
          {"completion_tokens", n},
          {"total_tokens", numPrompt + n}};
}

json CompletionWriter::chunk(const std::string &piece,
                             const std::vector<TokenOutput> &toks,
                             const char *finish) {
  json lp = nullptr;
  if (wantLogprobs && (!toks.empty() || !chat))
    lp = formatLogprobs(toks, pendingOffset);
  json choice;
  if (chat) {
    json delta = json::object();
    if (!sentRole) {
      delta["role"] = "assistant";
      sentRole = true;
    }
    if (!piece.empty() || !finish)
      delta["content"] = piece;
    choice = {{"index", 0},
              {"delta", delta},
              {"logprobs", lp},
              {"finish_reason", finish ? json(finish) : json(nullptr)}};
  } else {
    choice = {{"index", 0},
              {"text", piece},
              {"logprobs", lp},
              {"finish_reason", finish ? json(finish) : json(nullptr)}};
  }
  json c = {{"id", id},
            {"object", chat ? "chat.completion.chunk" : "text_completion"},
            {"created", created},
            {"model", model},
            {"choices", json::array({choice})}};
  if (includeUsage)
    c["usage"] = nullptr;
  return c;
}

std::string CompletionWriter::takeStreamEvents() {
  std::string out;
  if (!pendingText.empty() || (chat && !sentRole)) {
    out += sseEvent(chunk(pendingText, pendingOutputs, nullptr));
    pendingOffset += pendingText.size();
    pendingText.clear();
    pendingOutputs.clear();
  }
  if (done && !finishSent) {
    out += sseEvent(chunk("", pendingOutputs, finishName));
    pendingOutputs.clear();
    finishSent = true;
    if (includeUsage) {
      json u = {{"id", id},
                {"object", chat ? "chat.completion.chunk" : "text_completion"},
                {"created", created},
                {"model", model},
                {"choices", json::array()},
                {"usage", usage()}};
      out += sseEvent(u);
    }
    out += "data: [DONE]\n\n";
  }
  return out;
}

json CompletionWriter::body() const {
  json lp = wantLogprobs ? formatLogprobs(outputs, 0) : json(nullptr);
  json choice;
  if (chat)
    choice = {{"index", 0},
              {"message", {{"role", "assistant"}, {"content", text},
                           {"refusal", nullptr}}},
              {"logprobs", lp},
              {"finish_reason", finishName ? finishName : "abort"}};
  else
    choice = {{"index", 0},
              {"text", text},
              {"logprobs", lp},
              {"finish_reason", finishName ? finishName : "abort"}};
  if (returnTokenIds)
    choice["token_ids"] = tokenIds;
  return {{"id", id},
          {"object", chat ? "chat.completion" : "text_completion"},
          {"created", created},
          {"model", model},
          {"choices", json::array({choice})},
          {"usage", usage()}};
}

} // namespace dsserve
