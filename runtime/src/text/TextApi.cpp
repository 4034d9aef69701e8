//===- TextApi.cpp - the tokenizer's C API --------------------------------===//
#include "api/Error.h"
#include "dsrt/dsrt_text.h"
#include "text/Tokenizer.h"

#include <cstdlib>
#include <cstring>

using namespace dsrt;

struct dsrt_tokenizer {
  std::unique_ptr<text::Tokenizer> impl;
};

struct dsrt_text_stream {
  text::StreamDecoder decoder;
  std::string out;
};

namespace {

dsrt_status nullArgument(const char *what) {
  return fail(DSRT_ERROR_ARGUMENT, std::string(what) + " is NULL");
}

} // namespace

extern "C" {

dsrt_status dsrt_tokenizer_load(const char *dir, dsrt_tokenizer **out) {
  if (!out)
    return nullArgument("out");
  *out = nullptr;
  if (!dir)
    return nullArgument("dir");
  return guarded("loading the tokenizer", [&] {
    std::string error;
    bool io = false;
    auto t = text::Tokenizer::loadDirectory(dir, error, &io);
    if (!t)
      return fail(io ? DSRT_ERROR_IO : DSRT_ERROR_FORMAT, error);
    *out = new dsrt_tokenizer{std::move(t)};
    return DSRT_OK;
  });
}

void dsrt_tokenizer_free(dsrt_tokenizer *tokenizer) { delete tokenizer; }

int64_t dsrt_tokenizer_vocab_size(const dsrt_tokenizer *t) {
  return t ? t->impl->vocabSize() : -1;
}
int32_t dsrt_tokenizer_bos_id(const dsrt_tokenizer *t) {
  return t ? t->impl->bosId() : -1;
}
int32_t dsrt_tokenizer_eos_id(const dsrt_tokenizer *t) {
  return t ? t->impl->eosId() : -1;
}
int dsrt_tokenizer_is_special(const dsrt_tokenizer *t, int32_t id) {
  return t && t->impl->isSpecial(id);
}
int32_t dsrt_tokenizer_token_id(const dsrt_tokenizer *t, const char *token) {
  return t && token ? t->impl->tokenToId(token) : -1;
}
const char *dsrt_tokenizer_chat_template(const dsrt_tokenizer *t) {
  return t ? t->impl->chatTemplate().c_str() : "";
}

dsrt_status dsrt_tokenizer_encode(const dsrt_tokenizer *t, const char *text,
                                  size_t len, int add_special_tokens,
                                  int32_t **ids, size_t *count) {
  if (!ids || !count)
    return nullArgument(!ids ? "ids" : "count");
  *ids = nullptr;
  *count = 0;
  if (!t)
    return nullArgument("tokenizer");
  if (!text && len)
    return nullArgument("text");
  return guarded("encoding", [&] {
    std::vector<int32_t> out;
    std::string error;
    if (!t->impl->encode(std::string_view(text ? text : "", len),
                         add_special_tokens != 0, out, error))
      return fail(DSRT_ERROR_ARGUMENT, error);
    if (!out.empty()) {
      *ids = static_cast<int32_t *>(std::malloc(out.size() * sizeof(int32_t)));
      if (!*ids)
        return fail(DSRT_ERROR_OUT_OF_MEMORY, "encoding: out of memory");
      std::memcpy(*ids, out.data(), out.size() * sizeof(int32_t));
    }
    *count = out.size();
    return DSRT_OK;
  });
}

dsrt_status dsrt_tokenizer_decode(const dsrt_tokenizer *t, const int32_t *ids,
                                  size_t n, int skip_special_tokens,
                                  char **text, size_t *len) {
  if (!text || !len)
    return nullArgument(!text ? "text" : "len");
  *text = nullptr;
  *len = 0;
  if (!t)
    return nullArgument("tokenizer");
  if (!ids && n)
    return nullArgument("ids");
  return guarded("decoding", [&] {
    std::string out, error;
    if (!t->impl->decode(ids, n, skip_special_tokens != 0, out, error))
      return fail(DSRT_ERROR_ARGUMENT, error);
    *text = static_cast<char *>(std::malloc(out.size() + 1));
    if (!*text)
      return fail(DSRT_ERROR_OUT_OF_MEMORY, "decoding: out of memory");
    std::memcpy(*text, out.c_str(), out.size() + 1);
    *len = out.size();
    return DSRT_OK;
  });
}

void dsrt_text_free(void *p) { std::free(p); }

dsrt_status dsrt_text_stream_create(const dsrt_tokenizer *t,
                                    int skip_special_tokens,
                                    dsrt_text_stream **out) {
  if (!out)
    return nullArgument("out");
  *out = nullptr;
  if (!t)
    return nullArgument("tokenizer");
  return guarded("creating a text stream", [&] {
    *out = new dsrt_text_stream{
        text::StreamDecoder(*t->impl, skip_special_tokens != 0), {}};
    return DSRT_OK;
  });
}

dsrt_status dsrt_text_stream_push(dsrt_text_stream *s, int32_t id,
                                  const char **text, size_t *len) {
  if (!s || !text || !len)
    return nullArgument(!s ? "stream" : !text ? "text" : "len");
  *text = "";
  *len = 0;
  return guarded("decoding", [&] {
    s->out.clear();
    std::string error;
    if (!s->decoder.push(id, s->out, error))
      return fail(DSRT_ERROR_ARGUMENT, error);
    *text = s->out.c_str();
    *len = s->out.size();
    return DSRT_OK;
  });
}

dsrt_status dsrt_text_stream_finish(dsrt_text_stream *s, const char **text,
                                    size_t *len) {
  if (!s || !text || !len)
    return nullArgument(!s ? "stream" : !text ? "text" : "len");
  return guarded("decoding", [&] {
    s->out.clear();
    s->decoder.finish(s->out);
    *text = s->out.c_str();
    *len = s->out.size();
    return DSRT_OK;
  });
}

void dsrt_text_stream_free(dsrt_text_stream *s) { delete s; }

} // extern "C"
