/*===- dsrt_chat.h - chat templates through the C API ---------------------===*
 *
 * Renders a Hugging Face chat template (the `chat_template` of
 * tokenizer_config.json) over a conversation given as JSON.
 *
 * Conventions as in dsrt.h: functions return a dsrt_status and leave a
 * one-line message in dsrt_last_error() on failure; NULL pointers are
 * refused, never dereferenced.
 *
 *===----------------------------------------------------------------------===*/
#ifndef DSRT_DSRT_CHAT_H
#define DSRT_DSRT_CHAT_H

#include "dsrt/dsrt.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dsrt_chat_template dsrt_chat_template;

/* From a tokenizer_config.json path: chat_template (a string, or the
 * "default" entry of a list of {name, template}) plus its special tokens
 * (bos_token, eos_token, ...) as context defaults. DSRT_ERROR_IO when the
 * file cannot be read, DSRT_ERROR_FORMAT when it or its template is bad. */
dsrt_status dsrt_chat_template_load(const char *tokenizer_config_path,
                                    dsrt_chat_template **out);

/* `source` as the template, with the special tokens of a
 * tokenizer_config.json (whose own chat_template, if any, is not used): a
 * replacement template for a checkpoint, as vLLM's --chat-template. */
dsrt_status dsrt_chat_template_load_source(const char *tokenizer_config_path,
                                           const char *source,
                                           dsrt_chat_template **out);

/* From template source; DSRT_ERROR_FORMAT names the line of a syntax error
 * or of a construct the interpreter does not support. */
dsrt_status dsrt_chat_template_create(const char *source,
                                      dsrt_chat_template **out);

void dsrt_chat_template_free(dsrt_chat_template *tmpl); /* NULL: no-op */

/* messages_json: a JSON array of message objects. extra_context_json: NULL
 * or a JSON object merged into the context (it overrides the config's
 * special tokens). On success *out is a malloc'ed NUL-terminated string the
 * caller releases with dsrt_chat_string_free (or free). Malformed JSON and
 * template errors (raise_exception included) give DSRT_ERROR_ARGUMENT. */
dsrt_status dsrt_chat_template_render(const dsrt_chat_template *tmpl,
                                      const char *messages_json,
                                      int add_generation_prompt,
                                      const char *extra_context_json,
                                      char **out);

void dsrt_chat_string_free(char *s); /* NULL: no-op */

#ifdef __cplusplus
}
#endif

#endif /* DSRT_DSRT_CHAT_H */
