//===- FakeBackend.cpp - a scripted backend for testing the HTTP layer ----===//

#include "FakeBackend.h"

#include <algorithm>
#include <chrono>
#include <string_view>

namespace dsserve {
namespace {

/// Bytes in, complete UTF-8 characters out; a malformed byte becomes U+FFFD.
class ByteStream : public TextStream {
public:
  std::string push(int32_t token) override {
    if (token >= 0 && token < 256)
      buf.push_back(char(token));
    return drain(false);
  }
  std::string flush() override { return drain(true); }

private:
  std::string drain(bool end) {
    std::string out;
    size_t i = 0;
    while (i < buf.size()) {
      unsigned char c = buf[i];
      size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3
                            : (c >> 3) == 30 ? 4 : 0;
      if (n == 0) {
        out += "\xEF\xBF\xBD";
        ++i;
        continue;
      }
      if (i + n > buf.size()) {
        bool ok = true;
        for (size_t k = i + 1; k < buf.size(); ++k)
          ok &= (static_cast<unsigned char>(buf[k]) >> 6) == 2;
        if (ok && !end)
          break; // wait for the rest of the character
        out += "\xEF\xBF\xBD";
        ++i;
        continue;
      }
      bool ok = true;
      for (size_t k = i + 1; k < i + n; ++k)
        ok &= (static_cast<unsigned char>(buf[k]) >> 6) == 2;
      if (!ok) {
        out += "\xEF\xBF\xBD";
        ++i;
        continue;
      }
      out.append(buf, i, n);
      i += n;
    }
    buf.erase(0, i);
    return out;
  }
  std::string buf;
};

class ByteTokenizer : public Tokenizer {
public:
  bool encode(const std::string &text, bool, std::vector<int32_t> &out,
              std::string &) override {
    for (unsigned char c : text)
      out.push_back(c);
    return true;
  }
  bool renderChat(const ChatPrompt &chat, std::vector<int32_t> &out,
                  std::string &error) override {
    // The fake "template" keeps the validated JSON as the prompt text.
    std::string text = chat.messagesJson + chat.contextJson;
    if (chat.addGenerationPrompt)
      text += "\n<|assistant|>\n";
    if (!chat.continueAfter.empty()) {
      size_t at = text.rfind(chat.continueAfter);
      if (at == std::string::npos) {
        error = "cannot continue the final message";
        return false;
      }
      text.resize(at + chat.continueAfter.size());
    }
    return encode(text + chat.assistantPrefix, false, out, error);
  }
  std::unique_ptr<TextStream> newStream(bool) override {
    return std::make_unique<ByteStream>();
  }
  std::string tokenBytes(int32_t token) override {
    if (token >= 0 && token < 256)
      return std::string(1, char(token));
    return "";
  }
  bool decode(const std::vector<int32_t> &tokens, std::string &text,
              std::string &) override {
    for (int32_t t : tokens)
      text += tokenBytes(t);
    return true;
  }
};

} // namespace

const char *FakeBackend::script() {
  return "Hello! Gr\xC3\xBC\xC3\x9F" "e vom Server \xF0\x9F\xA6\x8A. The quick "
         "brown fox jumps over the lazy dog.";
}

FakeBackend::FakeBackend(Config c)
    : config(c), tok(std::make_unique<ByteTokenizer>()),
      thread([this] { loop(); }) {}

FakeBackend::~FakeBackend() { shutdown(); }

ModelInfo FakeBackend::info() const {
  return {config.name, 257, config.maxContext, kEos};
}

int64_t FakeBackend::pagesFor(const Seq &s) const {
  return (int64_t(s.req.prompt.size()) + s.generated + 1 + 15) / 16;
}

int64_t FakeBackend::cachedPrefix(const std::vector<int32_t> &prompt) {
  const size_t page = 16;
  int64_t hit = 0;
  bool hitting = true;
  for (size_t end = page; end < prompt.size(); end += page) {
    std::vector<int32_t> prefix(prompt.begin(), prompt.begin() + long(end));
    hitting = hitting && seenPages.count(prefix);
    if (hitting)
      hit = int64_t(end);
    if (seenPages.size() < 4096)
      seenPages.insert(std::move(prefix));
  }
  return hit;
}

uint64_t FakeBackend::submit(GenerateRequest req,
                             std::shared_ptr<RequestSink> sink,
                             std::string &error) {
  std::lock_guard<std::mutex> lock(mutex);
  if (stopping) {
    error = "shutting down";
    return 0;
  }
  // Free seats count towards the bound (EngineBackend::submit says why).
  if (int(waiting.size()) >=
      config.maxWaiting + std::max(0, config.maxNumSeqs - int(running.size()))) {
    error = "the waiting queue is full (" +
            std::to_string(config.maxWaiting) + ")";
    return 0;
  }
  Seq s;
  size_t len = text().size();
  if (req.params.temperature > 0)
    s.offset = size_t((req.params.seed * 0x9E3779B97F4A7C15ULL) >> 33) % len;
  s.req = std::move(req);
  s.sink = std::move(sink);
  uint64_t id = nextId++;
  // Priority scheduling: after every waiting request of a lower or equal
  // priority value (ids are in arrival order), as the engine's queue.
  auto at = waiting.end();
  if (config.priorityScheduling)
    at = std::find_if(waiting.begin(), waiting.end(), [&](const auto &w) {
      return w.second.req.params.priority > s.req.params.priority;
    });
  waiting.emplace(at, id, std::move(s));
  cv.notify_all();
  return id;
}

void FakeBackend::abort(uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex);
  if (auto it = running.find(id); it != running.end())
    it->second.aborted = true;
  for (auto &[wid, s] : waiting)
    if (wid == id)
      s.aborted = true;
}

BackendStats FakeBackend::stats() const {
  std::lock_guard<std::mutex> lock(mutex);
  BackendStats st;
  st.running = int64_t(running.size());
  st.waiting = int64_t(waiting.size());
  st.pagesTotal = config.pages;
  for (const auto &[id, s] : running)
    st.pagesUsed += pagesFor(s);
  return st;
}

void FakeBackend::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex);
    stopping = true;
    cv.notify_all();
  }
  if (thread.joinable())
    thread.join();
}

void FakeBackend::loop() {
  const std::string text = this->text();
  std::unique_lock<std::mutex> lock(mutex);
  while (true) {
    cv.wait_for(lock, std::chrono::milliseconds(config.tokenDelayMs), [&] {
      return stopping || (!waiting.empty() && running.empty());
    });
    // Finish what was aborted, then admit while pages and seats last.
    std::vector<std::pair<std::shared_ptr<RequestSink>, FinishReason>> done;
    for (auto it = waiting.begin(); it != waiting.end();)
      if (it->second.aborted || stopping) {
        done.push_back({it->second.sink, FinishReason::Abort});
        it = waiting.erase(it);
      } else {
        ++it;
      }
    int64_t used = 0;
    for (const auto &[id, s] : running)
      used += pagesFor(s);
    // Admitted requests that want their prompt's logprobs get them first
    // (each prompt token after the first at -0.5, its top list as below).
    std::vector<
        std::pair<std::shared_ptr<RequestSink>, std::vector<TokenOutput>>>
        prompts;
    while (!waiting.empty() && int(running.size()) < config.maxNumSeqs &&
           used + pagesFor(waiting.front().second) <= config.pages) {
      used += pagesFor(waiting.front().second);
      const GenerateRequest &req = waiting.front().second.req;
      if (req.params.promptLogprobs && req.prompt.size() > 1) {
        std::vector<TokenOutput> lp(req.prompt.size() - 1);
        for (size_t i = 0; i < lp.size(); ++i) {
          lp[i].token = req.prompt[i + 1];
          lp[i].logprob = -0.5f;
          for (int k = 0; k < req.params.topLogprobs; ++k)
            lp[i].top.push_back({k == 0 ? lp[i].token : (lp[i].token + k) % 256,
                                 -0.5f - float(k)});
        }
        prompts.push_back({waiting.front().second.sink, std::move(lp)});
      }
      waiting.front().second.cached = cachedPrefix(req.prompt);
      running.emplace(waiting.front().first,
                      std::move(waiting.front().second));
      waiting.pop_front();
    }
    std::vector<std::pair<std::shared_ptr<RequestSink>, TokenOutput>> out;
    double t = steadySeconds();
    for (auto it = running.begin(); it != running.end();) {
      Seq &s = it->second;
      if (s.aborted || stopping) {
        done.push_back({s.sink, FinishReason::Abort});
        it = running.erase(it);
        continue;
      }
      if (s.req.params.maxTokens <= 0) { // the prompt alone (echo)
        done.push_back({s.sink, FinishReason::Length});
        it = running.erase(it);
        continue;
      }
      TokenOutput o;
      o.time = t;
      o.cachedPromptTokens = s.cached;
      if (s.offset >= text.size() && !s.req.params.ignoreEos) {
        o.token = kEos;
        o.isEos = true;
      } else {
        o.token = static_cast<unsigned char>(text[s.offset % text.size()]);
        ++s.offset;
        // A stop token ends the request as the engine's do.
        const auto &stopIds = s.req.params.stopTokenIds;
        o.isEos =
            std::find(stopIds.begin(), stopIds.end(), o.token) != stopIds.end();
      }
      // A constraint (structured outputs) has the last word: the script's
      // token where it allows it, else the lowest it allows that is not
      // whitespace, else the lowest.
      if (s.req.params.constraint) {
        std::vector<uint8_t> mask(size_t(kEos) + 1, 0);
        s.req.params.constraint->allowed(s.out.data(), int64_t(s.out.size()),
                                         mask.data(), kEos + 1);
        if (!mask[size_t(o.token)]) {
          int32_t pick = -1;
          for (int32_t t = 0; t <= kEos && pick < 0; ++t)
            if (mask[size_t(t)] && std::string_view(" \t\n\r").find(char(t)) ==
                                       std::string_view::npos)
              pick = t;
          for (int32_t t = 0; t <= kEos && pick < 0; ++t)
            if (mask[size_t(t)])
              pick = t;
          o.token = pick < 0 ? kEos : pick;
          o.isEos = o.token == kEos;
        }
        s.out.push_back(o.token);
      }
      if (s.req.params.topLogprobs >= 0) {
        o.logprob = -0.25f;
        for (int k = 0; k < s.req.params.topLogprobs; ++k)
          o.top.push_back(
              {k == 0 ? o.token : (o.token + k) % 256, -0.25f - 1.75f * float(k)});
      }
      ++s.generated;
      out.push_back({s.sink, o});
      if (o.isEos || s.generated >= s.req.params.maxTokens) {
        done.push_back(
            {s.sink, o.isEos ? FinishReason::Stop : FinishReason::Length});
        it = running.erase(it);
      } else {
        ++it;
      }
    }
    bool exit = stopping && running.empty() && waiting.empty();
    lock.unlock();
    // Sinks are called without the lock: they may call abort().
    for (auto &[sink, lp] : prompts)
      sink->onPromptLogprobs(lp);
    for (auto &[sink, o] : out)
      sink->onToken(o);
    for (auto &[sink, r] : done)
      sink->onFinish(r, "");
    lock.lock();
    if (exit)
      return;
  }
}

} // namespace dsserve
