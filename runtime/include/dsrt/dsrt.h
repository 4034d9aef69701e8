/*===- dsrt.h - the ds runtime C API -------------------------------------===*
 *
 * Load a compiled artifact with its checkpoint (a model), open sessions (one
 * latent KV cache each), prefill, decode, sample.
 *
 * Conventions:
 * - Every function that can fail returns a dsrt_status; on failure
 *   dsrt_last_error() holds the message: one line naming the culprit (file,
 *   tensor, token index), or one line per problem when a checkpoint has
 *   several. No function aborts on bad input, NULL pointers included.
 * - Inputs are checked before any generated code runs: token ids in
 *   [0, vocab), at least one token, position + n <= capacity. A failed call
 *   leaves the session as it was.
 * - A model may serve several sessions; each session is used by one thread
 *   at a time.
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
  DSRT_ERROR_IO = 1,            /* a file cannot be read or written */
  DSRT_ERROR_FORMAT = 2,        /* artifact malformed or not runnable here */
  DSRT_ERROR_WEIGHTS = 3,       /* checkpoint does not fit the model */
  DSRT_ERROR_ARGUMENT = 4,      /* bad token ids, lengths, options */
  DSRT_ERROR_DEVICE = 5,        /* device unavailable */
  DSRT_ERROR_OUT_OF_MEMORY = 6, /* weights or cache do not fit */
} dsrt_status;

typedef struct dsrt_model dsrt_model;
typedef struct dsrt_session dsrt_session;

typedef struct dsrt_model_info {
  int64_t vocab_size;
  int64_t num_layers;
  int64_t cache_width;               /* kv_lora_rank + qk_rope_head_dim */
  int64_t kv_cache_bytes_per_token;  /* num_layers x row bytes (f32: 4 x
                                        cache_width; fp8: 656 for V3; an
                                        artifact compiled with
                                        --kv-layout=per-head: its per-head
                                        K/V rows, heads x (qk_nope +
                                        qk_rope + v_head_dim) values) */
  int64_t weights_bytes;             /* bound (f32) weight buffers */
  int64_t max_position_embeddings;
  int64_t bos_token_id;              /* -1 when absent */
  int64_t eos_token_id;              /* -1 when absent */
} dsrt_model_info;

/* The message of the last failure on this thread ("" if none). */
const char *dsrt_last_error(void);

/*===--- Models -----------------------------------------------------------===*/

/* Reads the artifact, checks every weight it needs against the checkpoint
 * in weights_dir (all problems reported at once), converts the weights to
 * f32 and loads the native code. device: "cpu" (NULL means "cpu"); "cuda"
 * fails with DSRT_ERROR_DEVICE in builds without the CUDA backend. */
dsrt_status dsrt_model_load(const char *artifact_path, const char *weights_dir,
                            const char *device, dsrt_model **out);
void dsrt_model_free(dsrt_model *model); /* NULL is a no-op */
dsrt_status dsrt_model_info_get(const dsrt_model *model, dsrt_model_info *out);
/* Scans every weight the model needs for NaN/Inf in the checkpoint files;
 * fails listing each bad tensor (one line each). */
dsrt_status dsrt_model_check_weights(const dsrt_model *model);

/* How the model's checkpoint files sit in memory now, by the kernel's
 * account (/proc/self/smaps): bytes mapped, bytes resident through the
 * mapping (pages a run has touched), and of those, bytes mapped in 2 MiB
 * pages. A file written since it was last read (a download, a conversion)
 * stays in the page cache in 4 KiB pages, from which decode streams large
 * weights up to a fifth slower; `note` is then one line saying so and naming
 * the files to drop from the cache, else "" (always "" under
 * DSRT_HUGE_PAGES=0). The counts are zero where the model keeps no mapping
 * (GPU models, weights all copied at load). `note` is valid until the next
 * call on this model. */
typedef struct dsrt_weight_pages {
  int64_t mapped_bytes;
  int64_t resident_bytes;
  int64_t huge_page_bytes;
  const char *note;
} dsrt_weight_pages;
dsrt_status dsrt_model_weight_pages(const dsrt_model *model,
                                    dsrt_weight_pages *out);

/* JSON array of the expert choices recorded by artifacts compiled with
 * --trace-routing: [{"layer": moe_ordinal, "experts": [[...], ...]}, ...].
 * Valid until the next call on this model. */
const char *dsrt_model_routing_trace(const dsrt_model *model);

/*===--- Sessions ---------------------------------------------------------===*/

/* A cache of `capacity` tokens (kv_cache_bytes_per_token each). */
dsrt_status dsrt_session_create(dsrt_model *model, int64_t capacity,
                                dsrt_session **out);
void dsrt_session_free(dsrt_session *session); /* NULL is a no-op */
/* Tokens already in the cache (-1 for NULL). */
int64_t dsrt_session_position(const dsrt_session *session);
/* Forgets the context: the next token goes to position 0. */
void dsrt_session_reset(dsrt_session *session);
/* Moves to `position` in [0, capacity): the cache rows before it count as
 * context as they are (zeros in a fresh session). For benchmarks of decode
 * at a long context without prefilling it. */
dsrt_status dsrt_session_seek(dsrt_session *session, int64_t position);
/* Appends n >= 1 tokens; logits receives n x vocab floats, row i = the
 * logits after token i. One token runs the decode entry point, more the
 * prefill entry point. */
dsrt_status dsrt_session_prefill(dsrt_session *session, const int32_t *tokens,
                                 int64_t n, float *logits);
/* Appends one token; logits receives vocab floats. */
dsrt_status dsrt_session_decode(dsrt_session *session, int32_t token,
                                float *logits);

/*===--- Generation -------------------------------------------------------===*/

typedef struct dsrt_generate_options {
  int64_t max_new_tokens;
  const int32_t *force_tokens; /* teacher forcing: fed instead of sampled */
  int64_t num_force_tokens;    /* must be >= max_new_tokens when forcing */
  float temperature;           /* <= 0: greedy */
  float top_p;                 /* <= 0: greedy; >= 1: no nucleus cut */
  uint64_t seed;
  /* Called with each fed token as soon as it is chosen (NULL: not called),
   * so front ends can stream text while the run goes on. */
  void (*on_token)(void *user_data, int32_t token);
  void *user_data;
  int32_t top_k; /* <= 0: off; else only the k most likely, before top_p */
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
  int64_t activation_bytes;     /* the activations buffer (ds-plan-activations) */
  int64_t decode_allocations;   /* buffer growths during decode: 0 in steady state */
} dsrt_stats;

/* Prefills `prompt` (n tokens), then feeds up to max_new_tokens tokens,
 * each sampled from the previous logits row (or forced), stopping after
 * feeding eos unless forced. out_tokens receives the fed tokens
 * (max_new_tokens room), *out_count their number; out_logits (may be NULL)
 * receives (n + *out_count) x vocab floats, row t = logits after token t of
 * prompt + fed tokens (room for n + max_new_tokens rows). stats may be
 * NULL. Every argument, forced tokens included, is checked before the first
 * token runs. */
dsrt_status dsrt_generate(dsrt_session *session, const int32_t *prompt,
                          int64_t n, const dsrt_generate_options *options,
                          int32_t *out_tokens, int64_t *out_count,
                          float *out_logits, dsrt_stats *stats);

/* Picks a token from one logits row. temperature <= 0 or top_p <= 0:
 * greedy (the first maximum). Otherwise samples softmax(logits /
 * temperature) restricted to the smallest set of most likely tokens whose
 * mass reaches top_p, advancing *rng_state (xorshift64*): the same state
 * and inputs give the same token. NaN logits are never picked. Returns -1
 * for NULL logits or vocab <= 0. */
int32_t dsrt_sample(const float *logits, int64_t vocab, float temperature,
                    float top_p, uint64_t *rng_state);

#ifdef __cplusplus
}
#endif

#endif /* DSRT_DSRT_H */
