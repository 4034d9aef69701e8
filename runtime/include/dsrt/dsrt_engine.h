/*===- dsrt_engine.h - the serving engine's C API -------------------------===*
 *
 * Many requests served at once over one model: a pool of 64-token pages
 * (the latent cache's page size), continuous batching scheduled as vLLM's
 * v1 scheduler does (no prefill or decode phase; running requests first,
 * then waiting ones, within a token budget and a sequence budget; long
 * prompts chunked; the newest running request preempted and later
 * recomputed when pages run out), prefix caching of full pages.
 *
 * Execution today: each running request has its own dsrt_session (a
 * contiguous latent cache) and the engine feeds it the request's new
 * tokens every step; the page pool does the accounting (admission,
 * preemption, prefix sharing) that the compiled ragged-batch step over a
 * paged cache will use, but the pages are not what attention reads yet,
 * and the batch does not go through the MoE together. A prefix-cache hit
 * fills the new session's context by copying the rows of a live session
 * sharing those pages (CPU), or else by recomputing the cached prefix (see
 * runtime/src/engine/SessionExecutor.h).
 *
 * Conventions (as dsrt.h): functions return a dsrt_status and leave a
 * one-line message in dsrt_last_error(); nothing aborts on bad input. A bad
 * request is refused at dsrt_engine_add_request and the engine keeps
 * serving the others.
 *
 * Threads: add_request, abort and stats may be called from any thread,
 * also from inside a callback. Steps run on one thread at a time: either
 * the caller's (dsrt_engine_step) or the engine's own loop
 * (dsrt_engine_start ... dsrt_engine_stop). Callbacks run on the stepping
 * thread.
 *
 *===----------------------------------------------------------------------===*/
#ifndef DSRT_DSRT_ENGINE_H
#define DSRT_DSRT_ENGINE_H

#include "dsrt/dsrt.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dsrt_engine dsrt_engine;

#define DSRT_ENGINE_PAGE_TOKENS 64

typedef struct dsrt_engine_options {
  /* Pool size: num_pages when > 0, else kv_cache_bytes / (64 x the model's
   * kv_cache_bytes_per_token). One of the two must be given. */
  int64_t kv_cache_bytes;
  int64_t num_pages;
  int64_t max_num_seqs;           /* <= 0: 256 */
  int64_t max_num_batched_tokens; /* <= 0: 2048 */
  int64_t max_model_len; /* <= 0: the model's max_position_embeddings */
  int enable_prefix_caching; /* 0 or 1; dsrt_engine_options_default sets 1 */
  /* Speculative decoding with the artifact's MTP module (dsrt_mtp.h):
   * NULL or "" off, "mtp" one draft per step, "mtp:K" K drafts (the module
   * reused autoregressively), K in [1, 16]. Greedy output is the plain
   * engine's; sampled output has the main model's distribution (rejection
   * sampling). Requests with force_tokens or return_logits do not draft. */
  const char *speculative;
  /* Which waiting request runs first and which running one gives way when
   * pages run out (vLLM's --scheduling-policy): DSRT_SCHEDULE_FCFS
   * (arrival order; the newest running request is preempted) or
   * DSRT_SCHEDULE_PRIORITY (dsrt_request_params::priority, lower first,
   * then arrival; the running request of the highest priority value, the
   * newest among equals, is preempted). */
  int scheduling_policy;
} dsrt_engine_options;

enum { DSRT_SCHEDULE_FCFS = 0, DSRT_SCHEDULE_PRIORITY = 1 };

/* Fills the defaults (prefix caching on, no pool size). */
void dsrt_engine_options_default(dsrt_engine_options *options);

typedef enum dsrt_finish_reason {
  DSRT_FINISH_NONE = 0,   /* still running */
  DSRT_FINISH_STOP = 1,   /* eos or a stop token was fed */
  DSRT_FINISH_LENGTH = 2, /* max_tokens or max_model_len reached */
  DSRT_FINISH_ABORT = 3,  /* dsrt_engine_abort */
} dsrt_finish_reason;

/* One event of a request, valid only during the callback.
 * - A token event (token >= 0): the token just chosen (sampled or forced)
 *   and fed back, `index` its position among the fed tokens, `logits` the
 *   row it was chosen from (vocab floats).
 * - A prompt-rows event (token = -1, finish_reason NONE; only with
 *   prompt_logits): `logits` holds num_logits_rows x vocab floats, row r =
 *   the logits after prompt token index + r (what scores prompt token
 *   index + r + 1). Each row of the prompt but its last comes once, in
 *   order, chunk by chunk as the prompt is computed, before any token
 *   event (the last row is the first token event's).
 * - The final event (finish_reason != NONE, token = -1): with return_logits
 *   `logits` holds num_logits_rows x vocab floats, row t = the logits after
 *   token t of prompt + fed tokens (ds-run --dump-logits' convention). */
typedef struct dsrt_engine_event {
  int64_t request_id;
  int32_t token;
  int64_t index;
  const float *logits;
  int64_t num_logits_rows;
  int64_t vocab_size;
  dsrt_finish_reason finish_reason;
  int64_t prefix_hit_tokens; /* tokens served from the prefix cache */
} dsrt_engine_event;

typedef void (*dsrt_engine_callback)(void *user_data,
                                     const dsrt_engine_event *event);

/* Constrained decoding's callback (dsrt_request_params::allowed_tokens). */
typedef void (*dsrt_allowed_tokens_fn)(void *user_data, const int32_t *output,
                                       int64_t num_output, uint8_t *allowed,
                                       int64_t vocab_size);

typedef struct dsrt_request_params {
  int64_t max_tokens;   /* tokens to feed after the prompt, >= 0 */
  float temperature;    /* 0: greedy; must be >= 0 */
  float top_p;          /* in (0, 1] */
  int32_t top_k;        /* 0: off; else >= 1 */
  uint64_t seed;        /* as dsrt_generate: same seed, same tokens */
  const int32_t *stop_token_ids;
  int64_t num_stop_token_ids;
  int ignore_eos;                /* 1: eos does not stop */
  const int32_t *force_tokens;   /* teacher forcing; no stop checks */
  int64_t num_force_tokens;      /* >= max_tokens when forcing */
  int return_logits; /* 1: all rows at the final event; such a request does
                        not read the prefix cache (its rows must exist) */
  int prompt_logits; /* 1: the prompt's rows in prompt-rows events, a chunk
                        at a time (prompt logprobs without keeping every
                        row); does not read the prefix cache either */
  /* Logits processing before sampling (vLLM's order: min_tokens, logit
   * bias, penalties; then temperature, min_p, top-k, top-p). Token events
   * still carry the model's own row. A request with any of these does not
   * draft (speculative decoding). */
  float presence_penalty;   /* in [-2, 2]; minus this for every token the
                               output holds; 0: off */
  float frequency_penalty;  /* in [-2, 2]; minus this times its count in
                               the output; 0: off */
  float repetition_penalty; /* > 0; tokens of prompt or output: positive
                               logits divided, negative multiplied; 0 or
                               1: off */
  float min_p;              /* in [0, 1]; drops tokens below min_p times the
                               most likely one's probability; 0: off */
  int64_t min_tokens;       /* eos and stop ids cannot be chosen before this
                               many tokens were fed; 0: off */
  const int32_t *logit_bias_ids; /* added to these tokens' logits */
  const float *logit_bias_values;
  int64_t num_logit_bias;
  /* Constrained decoding (structured outputs): before choosing each token
   * the engine zeroes `allowed` (vocab_size bytes) and calls
   * allowed_tokens(allowed_tokens_user, output, num_output, allowed,
   * vocab_size), `output` being the tokens fed after the prompt; only the
   * tokens it sets to 1 can be chosen (applied first, before the logits
   * processing above). Where nothing is left to choose, eos is. Called on
   * the engine's thread; allowed_tokens_user must outlive the request.
   * Such a request does not draft. NULL: off. */
  dsrt_allowed_tokens_fn allowed_tokens;
  void *allowed_tokens_user;
  /* DSRT_SCHEDULE_PRIORITY: lower values are served first (vLLM's
   * convention); must be 0 under DSRT_SCHEDULE_FCFS. */
  int32_t priority;
} dsrt_request_params;

/* Greedy, max_tokens 16, top_p 1, no top_k, seed 0. */
void dsrt_request_params_default(dsrt_request_params *params);

/* A pool and an executor over `model` (not owned: free the engine first).
 * Fails when not even one request of max_model_len tokens fits the pool. */
dsrt_status dsrt_engine_create(dsrt_model *model,
                               const dsrt_engine_options *options,
                               dsrt_engine **out);
/* Stops the loop if running; pending requests are dropped without events. */
void dsrt_engine_free(dsrt_engine *engine); /* NULL is a no-op */

/* Partitioned models (ds-compile --tp/--ep; one process per rank under
 * mpiexec, dsrt_comm.h): rank 0 creates the engine as above and is the only
 * rank that takes requests, schedules, samples and sees events; every other
 * rank loads the same artifact and calls dsrt_engine_follow, which waits
 * for rank 0's engine (creation must come within DSRT_COMM_TIMEOUT of the
 * followers' call), allocates the same page pool and runs each step rank 0
 * broadcasts (its batch: tokens, positions, block tables, logits rows) on
 * it, until rank 0 frees its engine (DSRT_OK). Rank 0's engine sends a
 * heartbeat while idle, so followers wait through quiet periods; a rank that
 * dies ends the job within the timeout with one line naming the collective.
 * When rank 0's dsrt_engine_create fails, the followers return
 * DSRT_ERROR_ARGUMENT with its message. Partitioned engines run @ragged_step
 * (CPU, f32 caches) and do not speculate; rank 0 must free its engine before
 * the process exits, or the job is aborted. dsrt_engine_create on another
 * rank fails, and so does this on rank 0 or on a model of one rank. */
dsrt_status dsrt_engine_follow(dsrt_model *model);

/* Checks and queues a request (prompt copied); *out_id identifies it. A
 * prompt longer than max_model_len or the pool, token ids outside the
 * vocabulary, bad sampling parameters: DSRT_ERROR_ARGUMENT, nothing
 * queued. `callback` may be NULL. */
dsrt_status dsrt_engine_add_request(dsrt_engine *engine, const int32_t *prompt,
                                    int64_t n, const dsrt_request_params *params,
                                    dsrt_engine_callback callback,
                                    void *user_data, int64_t *out_id);
/* Ends a request at the next step with DSRT_FINISH_ABORT (a no-op if it
 * already finished). Unknown ids fail. */
dsrt_status dsrt_engine_abort(dsrt_engine *engine, int64_t request_id);

/* One scheduling step + execution + sampling + callbacks; *out_has_work
 * (may be NULL) says whether requests remain. Not while the loop runs. */
dsrt_status dsrt_engine_step(dsrt_engine *engine, int *out_has_work);

/* Steps on an engine thread until dsrt_engine_stop, sleeping while idle.
 * A failed step is kept for dsrt_engine_stop and ends the loop. */
dsrt_status dsrt_engine_start(dsrt_engine *engine);
/* Joins the loop; returns the first step failure, if any. */
dsrt_status dsrt_engine_stop(dsrt_engine *engine);
/* Blocks until no request is waiting or running (loop mode). */
dsrt_status dsrt_engine_wait_idle(dsrt_engine *engine);

typedef struct dsrt_engine_stats {
  int64_t running, waiting;
  int64_t pages_total, pages_used, pages_free;
  int64_t pages_cached; /* pages with a prefix hash (used or free) */
  int64_t preemptions;
  int64_t prefix_query_tokens; /* prompt tokens looked up */
  int64_t prefix_hit_tokens;   /* of those, served from the cache */
  /* How today's session-per-request executor filled those hits: cache rows
   * copied from a live session sharing the pages, or recomputed. */
  int64_t prefix_copied_tokens;
  int64_t prefix_recomputed_tokens;
  int64_t steps;
  int64_t scheduled_tokens;    /* over all steps */
  int64_t last_step_tokens;
  int64_t finished_requests;
  int64_t max_model_len;
  int64_t page_tokens;
  /* Speculative decoding: drafts per request and step (0: off), verify
   * rounds (a request's step that checked drafts), drafts checked, drafts
   * accepted. Mean accepted length = 1 + accepted / rounds (tokens a
   * request gains per verify round). */
  int64_t speculative_tokens;
  int64_t spec_rounds;
  int64_t spec_draft_tokens;
  int64_t spec_accepted_tokens;
  /* Calls of the artifact's compiled ragged step (@ragged_step, one per engine
   * step over the shared page pool); 0 when the session-per-request
   * executor runs (artifacts without @ragged_step, fp8 caches on the GPU,
   * speculative decoding, or DSRT_ENGINE_EXECUTOR=session). */
  int64_t step_calls;
  /* Sequences those calls ran, and of them the ones that took the naive MLA
   * form (enough new tokens for the artifact's threshold, see ds-compile
   * --explain); the others took the absorbed form. */
  int64_t step_segments;
  int64_t step_naive_segments;
  /* The new tokens of those calls, those of the naive sequences, and the
   * rows the absorbed form's per-head products (q through W_UK, the
   * attention's output through W_UV) computed over all layers: 2 x layers x
   * (step_tokens - step_naive_tokens) when the naive rows are skipped. */
  int64_t step_tokens;
  int64_t step_naive_tokens;
  int64_t step_head_matmul_rows;
} dsrt_engine_stats;

dsrt_status dsrt_engine_stats_get(dsrt_engine *engine, dsrt_engine_stats *out);

/* dsrt_sample with a top-k cut (top_k <= 0: off) applied before top_p. */
int32_t dsrt_sample_top_k(const float *logits, int64_t vocab,
                          float temperature, float top_p, int32_t top_k,
                          uint64_t *rng_state);

#ifdef __cplusplus
}
#endif

#endif /* DSRT_DSRT_ENGINE_H */
