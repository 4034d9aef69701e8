//===- Generate.cpp - prefill + decode loop shared by ds-run and Python ---===//
#include "api/Error.h"
#include "api/Model.h"
#include "api/Validation.h"
#include "cpu/Scratch.h"
#include "dsrt/dsrt_engine.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <sys/resource.h>
#include <vector>

using namespace dsrt;

namespace {

double now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// Every argument problem before the first token runs, so a bad forced
/// token or length costs no prefill.
std::string checkOptions(const dsrt_session *s, const int32_t *prompt,
                         int64_t n, const dsrt_generate_options *o,
                         const int32_t *outTokens) {
  const Manifest &m = s->model->manifest;
  if (o->max_new_tokens < 0)
    return "max_new_tokens must be >= 0, got " +
           std::to_string(o->max_new_tokens);
  if (o->max_new_tokens > 0 && !outTokens)
    return "no buffer given for the generated tokens";
  std::string problem = checkTokens(prompt, n, m.vocabSize);
  if (!problem.empty())
    return problem;
  if (o->force_tokens) {
    if (o->num_force_tokens < o->max_new_tokens)
      return "max_new_tokens (" + std::to_string(o->max_new_tokens) +
             ") exceeds the number of forced tokens (" +
             std::to_string(o->num_force_tokens) + ")";
    if (o->max_new_tokens > 0) {
      problem = checkTokens(o->force_tokens, o->max_new_tokens, m.vocabSize,
                            "forced token id");
      if (!problem.empty())
        return problem;
    }
  }
  int64_t room = s->capacity - s->position;
  if (n > room)
    return checkContext(s->position, n, s->capacity);
  if (o->max_new_tokens > room - n) {
    int64_t used = s->position + n; // <= capacity
    return "context of " +
           (o->max_new_tokens > INT64_MAX - used
                ? std::string("more than 2^63")
                : std::to_string(used + o->max_new_tokens)) +
           " tokens (prompt " + std::to_string(n) + " + " +
           std::to_string(o->max_new_tokens) +
           " new) exceeds the cache capacity (" + std::to_string(s->capacity) +
           ")";
  }
  return "";
}

/// Activation buffer growths so far: the CPU thread's scratch buffer, or
/// the GPU session's driver allocations.
int64_t activationAllocations(const dsrt_session *s) {
  return s->cuda ? s->cuda->arena.driverAllocations
                 : cpu::scratchStats().allocations;
}

dsrt_status generateGreedy(dsrt_session *s, const int32_t *prompt, int64_t n,
                           const dsrt_generate_options *o, int32_t *outTokens,
                           int64_t *outCount, dsrt_stats *stats,
                           const dsrt_model_info &info);
void fillStats(const dsrt_session *s, int64_t n, int64_t decoded,
               double prefillSeconds, double decodeSeconds,
               int64_t allocationsBefore, const dsrt_model_info &info,
               dsrt_stats *stats);

dsrt_status generate(dsrt_session *s, const int32_t *prompt, int64_t n,
                     const dsrt_generate_options *o, int32_t *outTokens,
                     int64_t *outCount, float *outLogits, dsrt_stats *stats) {
  dsrt_model_info info;
  dsrt_model_info_get(s->model, &info);
  int64_t vocab = info.vocab_size;
  // Greedy, nothing forced, no logits wanted: the generated sampler picks
  // each token (on the GPU, one id crosses back instead of the logits).
  bool greedy = o->temperature <= 0 || o->top_p <= 0;
  if (greedy && !o->force_tokens && !outLogits && s->model->sampleGreedy)
    return generateGreedy(s, prompt, n, o, outTokens, outCount, stats, info);
  // Every prompt row's logits only when the caller asks for them; sampling
  // reads the last row alone.
  std::vector<float> last(static_cast<size_t>(vocab));
  double t0 = now();
  if (outLogits) {
    if (dsrt_status st = dsrt_session_prefill(s, prompt, n, outLogits))
      return st;
    std::copy(outLogits + (n - 1) * vocab, outLogits + n * vocab, last.begin());
  } else if (dsrt_status st = runLastRow(s, prompt, n, last.data())) {
    return st;
  }
  double prefillSeconds = now() - t0;
  uint64_t rng = o->seed * 0x9E3779B97F4A7C15ULL + 1;
  int64_t allocationsBefore = activationAllocations(s);
  double t1 = now();
  for (int64_t i = 0; i < o->max_new_tokens; ++i) {
    int32_t next =
        o->force_tokens
            ? o->force_tokens[i]
            : dsrt_sample_top_k(last.data(), vocab, o->temperature, o->top_p,
                                std::max(0, o->top_k), &rng);
    if (dsrt_status st = shareToken(*s->model, next))
      return st;
    if (dsrt_status st = dsrt_session_decode(s, next, last.data()))
      return st;
    outTokens[i] = next;
    *outCount = i + 1;
    if (o->on_token)
      o->on_token(o->user_data, next);
    if (outLogits)
      std::copy(last.begin(), last.end(), outLogits + (n + i) * vocab);
    // The eos token is fed (its row exists) and ends the run, so rows are
    // always prompt + generated.
    if (!o->force_tokens && next == info.eos_token_id)
      break;
  }
  double decodeSeconds = now() - t1;
  fillStats(s, n, *outCount, prefillSeconds, decodeSeconds, allocationsBefore,
            info, stats);
  return DSRT_OK;
}

dsrt_status generateGreedy(dsrt_session *s, const int32_t *prompt, int64_t n,
                           const dsrt_generate_options *o, int32_t *outTokens,
                           int64_t *outCount, dsrt_stats *stats,
                           const dsrt_model_info &info) {
  int32_t next = 0;
  double t0 = now();
  if (dsrt_status st = runGreedy(s, prompt, n, &next))
    return st;
  if (dsrt_status st = shareToken(*s->model, next))
    return st;
  double prefillSeconds = now() - t0;
  int64_t allocationsBefore = activationAllocations(s);
  double t1 = now();
  for (int64_t i = 0; i < o->max_new_tokens; ++i) {
    int32_t fed = next;
    if (dsrt_status st = runGreedy(s, &fed, 1, &next))
      return st;
    if (dsrt_status st = shareToken(*s->model, next))
      return st;
    outTokens[i] = fed;
    *outCount = i + 1;
    if (o->on_token)
      o->on_token(o->user_data, fed);
    if (fed == info.eos_token_id)
      break;
  }
  double decodeSeconds = now() - t1;
  fillStats(s, n, *outCount, prefillSeconds, decodeSeconds, allocationsBefore,
            info, stats);
  return DSRT_OK;
}

void fillStats(const dsrt_session *s, int64_t n, int64_t decoded,
               double prefillSeconds, double decodeSeconds,
               int64_t allocationsBefore, const dsrt_model_info &info,
               dsrt_stats *stats) {
  if (stats) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    stats->prefill_tokens = n;
    stats->decode_tokens = decoded;
    stats->prefill_seconds = prefillSeconds;
    stats->decode_seconds = decodeSeconds;
    stats->decode_tokens_per_second =
        decodeSeconds > 0 ? double(decoded) / decodeSeconds : 0.0;
    stats->kv_cache_bytes_per_token = info.kv_cache_bytes_per_token;
    stats->weights_bytes = info.weights_bytes;
    stats->peak_rss_bytes = int64_t(ru.ru_maxrss) * 1024; // KiB on Linux
    stats->activation_bytes =
        s->cuda ? int64_t(s->cuda->arena.peakBytes())
                : int64_t(cpu::scratchStats().bytes);
    stats->decode_allocations = activationAllocations(s) - allocationsBefore;
  }
}

} // namespace

extern "C" dsrt_status dsrt_generate(dsrt_session *s, const int32_t *prompt,
                                     int64_t n, const dsrt_generate_options *o,
                                     int32_t *outTokens, int64_t *outCount,
                                     float *outLogits, dsrt_stats *stats) {
  if (!s || !o || !outCount)
    return fail(DSRT_ERROR_ARGUMENT, "dsrt_generate: NULL argument");
  *outCount = 0;
  std::string problem = checkOptions(s, prompt, n, o, outTokens);
  if (!problem.empty())
    return fail(DSRT_ERROR_ARGUMENT, problem);
  return guarded("generating", [&] {
    return generate(s, prompt, n, o, outTokens, outCount, outLogits, stats);
  });
}
