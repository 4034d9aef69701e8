//===- Generate.cpp - prefill + decode loop shared by ds-run and Python ---===//
#include "api/Model.h"

#include <chrono>
#include <sys/resource.h>
#include <vector>

using namespace dsrt;

static double now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

extern "C" dsrt_status dsrt_generate(dsrt_session *s, const int32_t *prompt,
                                     int64_t n,
                                     const dsrt_generate_options *o,
                                     int32_t *outTokens, int64_t *outCount,
                                     float *outLogits, dsrt_stats *stats) {
  *outCount = 0;
  if (o->max_new_tokens < 0) {
    setLastError("max_new_tokens must be >= 0");
    return DSRT_ERROR_ARGUMENT;
  }
  if (o->force_tokens && o->num_force_tokens < o->max_new_tokens) {
    setLastError("max_new_tokens (" + std::to_string(o->max_new_tokens) +
                 ") exceeds the number of forced tokens (" +
                 std::to_string(o->num_force_tokens) + ")");
    return DSRT_ERROR_ARGUMENT;
  }
  dsrt_model_info info;
  dsrt_model_info_get(s->model, &info);
  int64_t vocab = info.vocab_size;
  if (s->position + n + o->max_new_tokens > s->capacity) {
    setLastError("context of " +
                 std::to_string(s->position + n + o->max_new_tokens) +
                 " tokens (prompt " + std::to_string(n) + " + " +
                 std::to_string(o->max_new_tokens) +
                 " new) exceeds the cache capacity (" +
                 std::to_string(s->capacity) + ")");
    return DSRT_ERROR_ARGUMENT;
  }
  std::vector<float> prefill(static_cast<size_t>(n * vocab));
  double t0 = now();
  if (dsrt_status st = dsrt_session_prefill(s, prompt, n, prefill.data()))
    return st;
  double prefillSeconds = now() - t0;
  if (outLogits)
    std::copy(prefill.begin(), prefill.end(), outLogits);

  std::vector<float> last(prefill.end() - vocab, prefill.end());
  uint64_t rng = o->seed * 0x9E3779B97F4A7C15ULL + 1;
  double t1 = now();
  for (int64_t i = 0; i < o->max_new_tokens; ++i) {
    int32_t next = o->force_tokens
                       ? o->force_tokens[i]
                       : dsrt_sample(last.data(), vocab, o->temperature,
                                     o->top_p, &rng);
    if (dsrt_status st = dsrt_session_decode(s, next, last.data()))
      return st;
    outTokens[i] = next;
    *outCount = i + 1;
    if (outLogits)
      std::copy(last.begin(), last.end(), outLogits + (n + i) * vocab);
    if (!o->force_tokens && next == info.eos_token_id)
      break;
  }
  double decodeSeconds = now() - t1;
  if (stats) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    stats->prefill_tokens = n;
    stats->decode_tokens = *outCount;
    stats->prefill_seconds = prefillSeconds;
    stats->decode_seconds = decodeSeconds;
    stats->decode_tokens_per_second =
        decodeSeconds > 0 ? double(*outCount) / decodeSeconds : 0.0;
    stats->kv_cache_bytes_per_token = info.kv_cache_bytes_per_token;
    stats->weights_bytes = info.weights_bytes;
    stats->peak_rss_bytes = int64_t(ru.ru_maxrss) * 1024;
  }
  return DSRT_OK;
}
