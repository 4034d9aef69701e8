//===- Backend.h - what ds-serve needs from an engine and a tokenizer -----===//
//
// The HTTP layer talks to generation through this small interface so that
// it can be tested against a fake (FakeBackend) and run on the batching
// engine of dsrt_engine.h (EngineBackend). Everything here is thread-safe
// unless noted.
//
//===----------------------------------------------------------------------===//
#ifndef DS_SERVE_BACKEND_H
#define DS_SERVE_BACKEND_H

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace dsserve {

/// Constrained decoding (structured outputs): which tokens may come next.
/// Called on the backend's thread, one request's calls in order.
class TokenConstraint {
public:
  virtual ~TokenConstraint() = default;
  /// Sets mask[t] = 1 for every token that may follow `output` (the tokens
  /// generated so far; mask arrives zeroed, `vocab` bytes).
  virtual void allowed(const int32_t *output, int64_t n, uint8_t *mask,
                       int64_t vocab) = 0;
};

struct SamplingParams {
  int64_t maxTokens = 16;
  float temperature = 1.0f; // <= 0: greedy
  float topP = 1.0f;
  int32_t topK = 0; // 0: off
  uint64_t seed = 0;
  std::vector<int32_t> stopTokenIds; // end the request like eos
  bool ignoreEos = false;
  int topLogprobs = -1; // -1: no logprobs; 0..20: the chosen one + that many
  /// The prompt's logprobs too (echo): each prompt token after the first,
  /// with topLogprobs alternatives (RequestSink::onPromptLogprobs).
  bool promptLogprobs = false;
  // Logits processing (dsrt_request_params' fields; neutral: off).
  float presencePenalty = 0, frequencyPenalty = 0, repetitionPenalty = 1;
  float minP = 0;
  int64_t minTokens = 0;
  std::vector<std::pair<int32_t, float>> logitBias;
  /// Structured outputs: only the tokens this allows (null: any).
  std::shared_ptr<TokenConstraint> constraint;
  int32_t priority = 0; // priority scheduling: lower first
};

struct GenerateRequest {
  std::vector<int32_t> prompt;
  SamplingParams params;
};

enum class FinishReason { Stop, Length, Abort, Error };
const char *finishReasonName(FinishReason r);

struct TokenOutput {
  int32_t token = 0;
  float logprob = 0; // valid when the request asked for logprobs
  std::vector<std::pair<int32_t, float>> top; // most likely first
  bool isEos = false;
  bool noLogprob = false; // a prompt's first token: logprob null
  double time = 0; // steadySeconds() when the token was produced
  /// The prompt's tokens read from the prefix cache rather than computed
  /// (the same in every token of a request).
  int64_t cachedPromptTokens = 0;
};

/// The clock of TokenOutput::time, which the server compares with its own
/// readings (arrival, gaps between tokens).
inline double steadySeconds() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// Receives one request's tokens, on a backend thread. onFinish is called
/// exactly once for every accepted request, after its last onToken, also
/// when the request was aborted.
class RequestSink {
public:
  virtual ~RequestSink() = default;
  virtual void onToken(const TokenOutput &token) = 0;
  /// With SamplingParams::promptLogprobs, before any onToken: the logprobs
  /// of prompt tokens 1, 2, ... in order, a run at a time (`token` is the
  /// prompt's token; `time` unset).
  virtual void onPromptLogprobs(const std::vector<TokenOutput> &tokens) {
    (void)tokens;
  }
  virtual void onFinish(FinishReason reason, const std::string &error) = 0;
};

struct BackendStats {
  int64_t running = 0;
  int64_t waiting = 0;
  int64_t pagesTotal = 0;
  int64_t pagesUsed = 0;   // held by live requests
  int64_t pagesCached = 0; // free but holding reusable prefixes
  int64_t prefixCacheQueries = 0; // prompt tokens looked up
  int64_t prefixCacheHits = 0;    // prompt tokens found cached
  // Speculative decoding: verify rounds, drafts checked, drafts accepted.
  int64_t specRounds = 0, specDraftTokens = 0, specAcceptedTokens = 0;
  // The checkpoint's pages touched through its mapping, and those the
  // kernel maps in 2 MiB pages (dsrt_model_weight_pages).
  int64_t weightsResidentBytes = 0, weightsHugePageBytes = 0;
};

struct ModelInfo {
  std::string name;
  int64_t vocabSize = 0;
  int64_t maxContext = 0; // prompt + generated tokens per request
  int64_t eosToken = -1;
};

/// Turns one request's tokens into text a piece at a time, never splitting a
/// UTF-8 character: push() returns only complete characters.
class TextStream {
public:
  virtual ~TextStream() = default;
  virtual std::string push(int32_t token) = 0;
  virtual std::string flush() = 0; // what is held back, at the end
};

/// What a chat request's prompt is made of.
struct ChatPrompt {
  /// The OpenAI "messages" array, already validated (OpenAIRequest.h).
  std::string messagesJson;
  /// "" or a JSON object merged into the template's context (tools, ...).
  std::string contextJson;
  /// Text after the generation prompt: the opening of a forced tool call.
  std::string assistantPrefix;
  bool addGenerationPrompt = true;
  /// Not empty: the rendering ends right after the last place it holds
  /// this text (the final message's content, which the answer continues).
  std::string continueAfter;
};

class Tokenizer {
public:
  virtual ~Tokenizer() = default;
  /// False with a one-line message on failure. addSpecialTokens: BOS (and
  /// whatever else tokenizer.json's post-processor adds), as prompts get.
  virtual bool encode(const std::string &text, bool addSpecialTokens,
                      std::vector<int32_t> &out, std::string &error) = 0;
  /// Renders a chat prompt (add_generation_prompt on) and encodes it.
  virtual bool renderChat(const ChatPrompt &chat, std::vector<int32_t> &out,
                          std::string &error) = 0;
  /// skipSpecialTokens: special tokens (BOS, EOS, ...) add no text
  /// (vLLM's skip_special_tokens, default on).
  virtual std::unique_ptr<TextStream> newStream(bool skipSpecialTokens) = 0;
  /// The bytes of one token (for logprobs); may be part of a character.
  virtual std::string tokenBytes(int32_t token) = 0;
  /// A special token (BOS, EOS, ...): never text of an answer.
  virtual bool isSpecial(int32_t token) {
    (void)token;
    return false;
  }
  /// Tokens to text, special tokens included (Hugging Face's decode
  /// default, /detokenize); false with a message for an unknown id.
  virtual bool decode(const std::vector<int32_t> &tokens, std::string &text,
                      std::string &error) = 0;
};

class Backend {
public:
  virtual ~Backend() = default;
  virtual ModelInfo info() const = 0;
  /// May be null: then only token-id prompts are served.
  virtual Tokenizer *tokenizer() = 0;
  /// Returns a nonzero id, or 0 with `error` set (the request is not taken
  /// and the sink is never called).
  virtual uint64_t submit(GenerateRequest request,
                          std::shared_ptr<RequestSink> sink,
                          std::string &error) = 0;
  /// Stops a request soon; its sink gets onFinish(Abort) unless it already
  /// finished. Unknown ids are ignored.
  virtual void abort(uint64_t id) = 0;
  virtual BackendStats stats() const = 0;
  /// Prompt tokens a later request with the same prompt finds computed
  /// (the prefix cache's unit), 0 without such a cache: the server then
  /// starts a prompt's further samples (n > 1) after the first's prefill.
  virtual int64_t sharedPrefixTokens() const { return 0; }
  /// Aborts everything and joins the backend's threads.
  virtual void shutdown() = 0;
};

} // namespace dsserve

#endif // DS_SERVE_BACKEND_H
