/*===- dsrt.h - the ds runtime C API -------------------------------------===*
 *
 * Load a compiled artifact with its checkpoint, open sessions (one latent
 * KV cache each), prefill, decode, sample. Every function returns a status;
 * on failure dsrt_last_error() holds one line naming the culprit. No
 * function aborts on bad input.
 *
 *===----------------------------------------------------------------------===*/
#ifndef DSRT_DSRT_H
#define DSRT_DSRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dsrt_status {
  DSRT_OK = 0,
  DSRT_ERROR_IO = 1,          /* a file cannot be read or written */
  DSRT_ERROR_FORMAT = 2,      /* artifact or checkpoint malformed */
  DSRT_ERROR_WEIGHTS = 3,     /* checkpoint does not fit the model */
  DSRT_ERROR_ARGUMENT = 4,    /* bad token ids, lengths, options */
  DSRT_ERROR_DEVICE = 5,      /* device unavailable */
} dsrt_status;

typedef struct dsrt_model dsrt_model;
typedef struct dsrt_session dsrt_session;

typedef struct dsrt_model_info {
  int64_t vocab_size;
  int64_t num_layers;
  int64_t cache_width;               /* kv_lora_rank + qk_rope_head_dim */
  int64_t kv_cache_bytes_per_token;  /* num_layers x cache_width x elem */
  int64_t weights_bytes;             /* bound weight buffers */
  int64_t max_position_embeddings;
  int64_t bos_token_id;              /* -1 when absent */
  int64_t eos_token_id;              /* -1 when absent */
} dsrt_model_info;

/* The message of the last failure on this thread ("" if none): one line,
 * or one line per problem when a checkpoint has several. */
const char *dsrt_last_error(void);

/* device: "cpu" (or "cuda" in builds with the CUDA backend). */
dsrt_status dsrt_model_load(const char *artifact_path, const char *weights_dir,
                            const char *device, dsrt_model **out);
void dsrt_model_free(dsrt_model *model);
dsrt_status dsrt_model_info_get(const dsrt_model *model, dsrt_model_info *out);
/* Scans every bound weight for NaN/Inf; fails listing the first problems. */
dsrt_status dsrt_model_check_weights(const dsrt_model *model);

/* JSON array of the expert choices recorded by artifacts compiled with
 * --trace-routing: [{"layer": moe_ordinal, "experts": [[...], ...]}, ...]. */
const char *dsrt_model_routing_trace(const dsrt_model *model);

dsrt_status dsrt_session_create(dsrt_model *model, int64_t capacity,
                                dsrt_session **out);
void dsrt_session_free(dsrt_session *session);
/* Tokens already in the cache. */
int64_t dsrt_session_position(const dsrt_session *session);
void dsrt_session_reset(dsrt_session *session);
/* Appends n tokens; logits receives n x vocab floats (row i after token i). */
dsrt_status dsrt_session_prefill(dsrt_session *session, const int32_t *tokens,
                                 int64_t n, float *logits);
/* Appends one token; logits receives vocab floats. */
dsrt_status dsrt_session_decode(dsrt_session *session, int32_t token,
                                float *logits);

typedef struct dsrt_generate_options {
  int64_t max_new_tokens;
  const int32_t *force_tokens; /* teacher forcing: fed instead of sampled */
  int64_t num_force_tokens;    /* must be >= max_new_tokens when forcing */
  float temperature;           /* <= 0: greedy */
  float top_p;
  uint64_t seed;
} dsrt_generate_options;

typedef struct dsrt_stats {
  int64_t prefill_tokens;
  int64_t decode_tokens;
  double prefill_seconds;
  double decode_seconds;
  double decode_tokens_per_second;
  int64_t kv_cache_bytes_per_token;
  int64_t weights_bytes;
  int64_t peak_rss_bytes;
} dsrt_stats;

/* Prefills `prompt` (n tokens), then decodes up to max_new_tokens, stopping
 * at eos unless forced. out_tokens receives the fed tokens (max_new_tokens
 * room), *out_count their number; out_logits (may be NULL) receives
 * (n + max_new_tokens) x vocab floats, row t = logits after token t. */
dsrt_status dsrt_generate(dsrt_session *session, const int32_t *prompt,
                          int64_t n, const dsrt_generate_options *options,
                          int32_t *out_tokens, int64_t *out_count,
                          float *out_logits, dsrt_stats *stats);

/* temperature <= 0 or top_p <= 0: greedy (argmax). Deterministic per state. */
int32_t dsrt_sample(const float *logits, int64_t vocab, float temperature,
                    float top_p, uint64_t *rng_state);

#ifdef __cplusplus
}
#endif

#endif /* DSRT_DSRT_H */
