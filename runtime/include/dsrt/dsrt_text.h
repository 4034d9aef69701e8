/*===- dsrt_text.h - tokenizer C API -------------------------------------===*
 *
 * Text in, text out: the Hugging Face tokenizer.json (byte-level BPE) that
 * DeepSeek checkpoints ship, with tokenizer_config.json's BOS rule.
 *
 * Conventions are dsrt.h's: functions that can fail return a dsrt_status
 * and leave a one-line message in dsrt_last_error() naming the culprit (the
 * file and JSON path, the byte offset of invalid UTF-8, the token id and
 * its index). Nothing aborts on bad input, NULL included. A tokenizer is
 * immutable once loaded and may be shared by threads; a stream belongs to
 * one thread at a time.
 *
 *===----------------------------------------------------------------------===*/
#ifndef DSRT_DSRT_TEXT_H
#define DSRT_DSRT_TEXT_H

#include "dsrt/dsrt.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dsrt_tokenizer dsrt_tokenizer;
typedef struct dsrt_text_stream dsrt_text_stream;

/* Reads DIR/tokenizer.json and DIR/tokenizer_config.json (optional). A
 * construct the tokenizer does not implement (another model type, a
 * normalizer, an unknown pre-tokenizer, ...) fails with DSRT_ERROR_FORMAT
 * naming its JSON path. */
dsrt_status dsrt_tokenizer_load(const char *dir, dsrt_tokenizer **out);
void dsrt_tokenizer_free(dsrt_tokenizer *tokenizer); /* NULL is a no-op */

/* One more than the largest token id (-1 for NULL). */
int64_t dsrt_tokenizer_vocab_size(const dsrt_tokenizer *tokenizer);
/* -1 when the config names none. */
int32_t dsrt_tokenizer_bos_id(const dsrt_tokenizer *tokenizer);
int32_t dsrt_tokenizer_eos_id(const dsrt_tokenizer *tokenizer);
/* 1 for a special added token (skipped by skip_special_tokens), else 0. */
int dsrt_tokenizer_is_special(const dsrt_tokenizer *tokenizer, int32_t id);
/* The id of a token spelled as in tokenizer.json, or -1. */
int32_t dsrt_tokenizer_token_id(const dsrt_tokenizer *tokenizer,
                                const char *token);
/* tokenizer_config.json's chat_template ("" when absent); valid while the
 * tokenizer lives. */
const char *dsrt_tokenizer_chat_template(const dsrt_tokenizer *tokenizer);

/* Encodes `len` bytes of UTF-8 text. *ids receives a malloc'ed array of
 * *count ids (free it with dsrt_text_free; NULL when *count is 0). With
 * add_special_tokens, BOS comes first when tokenizer_config.json asks for
 * it (add_bos_token). Invalid UTF-8 fails with DSRT_ERROR_ARGUMENT naming
 * the byte offset. */
dsrt_status dsrt_tokenizer_encode(const dsrt_tokenizer *tokenizer,
                                  const char *text, size_t len,
                                  int add_special_tokens, int32_t **ids,
                                  size_t *count);

/* Decodes n ids into a malloc'ed NUL-terminated UTF-8 string *text of *len
 * bytes (free it with dsrt_text_free). An id without a token fails with
 * DSRT_ERROR_ARGUMENT naming it and its index; bytes that do not form
 * UTF-8 (ids cut inside a character) come out as U+FFFD. */
dsrt_status dsrt_tokenizer_decode(const dsrt_tokenizer *tokenizer,
                                  const int32_t *ids, size_t n,
                                  int skip_special_tokens, char **text,
                                  size_t *len);

void dsrt_text_free(void *p); /* for the arrays and strings above */

/* Incremental decoding for streaming: each push yields the text completed
 * by that id (possibly empty: never half a character); finish yields the
 * rest. The concatenation equals dsrt_tokenizer_decode of all the ids. The
 * returned text is valid until the next call on the stream. The tokenizer
 * must outlive the stream. */
dsrt_status dsrt_text_stream_create(const dsrt_tokenizer *tokenizer,
                                    int skip_special_tokens,
                                    dsrt_text_stream **out);
dsrt_status dsrt_text_stream_push(dsrt_text_stream *stream, int32_t id,
                                  const char **text, size_t *len);
dsrt_status dsrt_text_stream_finish(dsrt_text_stream *stream,
                                    const char **text, size_t *len);
void dsrt_text_stream_free(dsrt_text_stream *stream); /* NULL is a no-op */

#ifdef __cplusplus
}
#endif

#endif /* DSRT_DSRT_TEXT_H */
