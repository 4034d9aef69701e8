/*===- dsrt_mtp.h - multi-token prediction (V3's MTP module) -------------===*
 *
 * Artifacts compiled from a config with num_nextn_predict_layers >= 1 carry
 * two more entry points: @prefill_hidden (the main model, also returning
 * its hidden states after the final norm) and @draft (the first MTP module,
 * SEMANTICS.md "Multi-token prediction"). A session then holds a second,
 * one-layer latent cache for the module, filled position by position like
 * the main one. Conventions as in dsrt.h. CPU only for now: on a cuda
 * model these calls fail with DSRT_ERROR_DEVICE.
 *
 *===----------------------------------------------------------------------===*/
#ifndef DSRT_DSRT_MTP_H
#define DSRT_DSRT_MTP_H

#include "dsrt/dsrt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The hidden size the MTP calls exchange; 0 when the artifact has no MTP
 * module (or model is NULL). */
int64_t dsrt_model_mtp_hidden_size(const dsrt_model *model);

/* Like dsrt_session_prefill (n >= 1 tokens appended to the main cache),
 * and hidden receives n x hidden_size floats: row i = the main model's
 * state at that token after the final norm. */
dsrt_status dsrt_session_prefill_hidden(dsrt_session *session,
                                        const int32_t *tokens, int64_t n,
                                        float *logits, float *hidden);

/* Runs the MTP module for n >= 1 positions starting at
 * dsrt_session_draft_position: row i takes hidden row i (h at position
 * p + i, as dsrt_session_prefill_hidden returns it) and next_tokens[i]
 * (the token at p + i + 1); logits receives n x vocab floats, row i
 * predicting the token at p + i + 2. The module's cache grows by n.
 * hidden_out (NULL: not wanted) receives n x hidden_size floats: row i =
 * the module's output state at p + i (its decoder layer's, before
 * shared_head.norm). Chained drafts feed the last row back as `hidden`
 * with the token drafted from it, one position further (as vLLM and
 * SGLang run k > 1 drafts with one module). */
dsrt_status dsrt_session_draft(dsrt_session *session, const float *hidden,
                               const int32_t *next_tokens, int64_t n,
                               float *logits, float *hidden_out);

/* Positions in the MTP module's cache (-1 for NULL). dsrt_session_reset
 * clears it with the main position. */
int64_t dsrt_session_draft_position(const dsrt_session *session);

#ifdef __cplusplus
}
#endif

#endif /* DSRT_DSRT_MTP_H */
