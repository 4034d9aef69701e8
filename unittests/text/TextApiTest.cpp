//===- TextApiTest.cpp - the tokenizer's C API (libdsrt) ------------------===//
#include "dsrt/dsrt_text.h"
#include "text/Utf8.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <unistd.h>

namespace {

/// A directory with a byte-level tokenizer: ids 0..255 the bytes, 256 the
/// merge "h i", 257/258 added tokens; tokenizer_config.json adds BOS.
class TextApi : public ::testing::Test {
protected:
  void SetUp() override {
    char tmpl[] = "/tmp/dsrt-text-XXXXXX";
    ASSERT_TRUE(mkdtemp(tmpl));
    dir = tmpl;
    std::string vocab;
    for (int b = 0; b < 256; ++b) {
      std::string sym;
      dsrt::text::appendCodepoint(dsrt::text::byteToSymbol(uint8_t(b)), sym);
      if (sym == "\"" || sym == "\\")
        sym = "\\" + sym;
      vocab += "\"" + sym + "\":" + std::to_string(b) + ",";
    }
    vocab += "\"hi\":256";
    std::ofstream(dir + "/tokenizer.json")
        << "{\"added_tokens\":[{\"id\":257,\"content\":\"<s>\",\"special\":"
           "true},"
           "{\"id\":258,\"content\":\"<u>\",\"special\":false}],"
           "\"pre_tokenizer\":{\"type\":\"ByteLevel\"},\"decoder\":{\"type\":"
           "\"ByteLevel\"},\"model\":{\"type\":\"BPE\",\"vocab\":{"
        << vocab << "},\"merges\":[\"h i\"]}}";
    std::ofstream(dir + "/tokenizer_config.json")
        << "{\"add_bos_token\":true,\"bos_token\":\"<s>\",\"chat_template\":\"{"
           "{x}}\"}";
    ASSERT_EQ(dsrt_tokenizer_load(dir.c_str(), &tok), DSRT_OK)
        << dsrt_last_error();
  }
  void TearDown() override {
    dsrt_tokenizer_free(tok);
    std::remove((dir + "/tokenizer.json").c_str());
    std::remove((dir + "/tokenizer_config.json").c_str());
    rmdir(dir.c_str());
  }
  std::string dir;
  dsrt_tokenizer *tok = nullptr;
};

} // namespace

TEST_F(TextApi, EncodeDecodeRoundTrip) {
  EXPECT_EQ(dsrt_tokenizer_vocab_size(tok), 259);
  EXPECT_EQ(dsrt_tokenizer_bos_id(tok), 257);
  EXPECT_EQ(dsrt_tokenizer_eos_id(tok), -1);
  EXPECT_STREQ(dsrt_tokenizer_chat_template(tok), "{{x}}");
  EXPECT_EQ(dsrt_tokenizer_token_id(tok, "<u>"), 258);
  EXPECT_TRUE(dsrt_tokenizer_is_special(tok, 257));
  EXPECT_FALSE(dsrt_tokenizer_is_special(tok, 258));
  int32_t *ids = nullptr;
  size_t n = 0;
  std::string text = "hi<u>h";
  ASSERT_EQ(dsrt_tokenizer_encode(tok, text.data(), text.size(), 1, &ids, &n),
            DSRT_OK);
  ASSERT_EQ(n, 4u);
  EXPECT_EQ(ids[0], 257);
  EXPECT_EQ(ids[1], 256);
  EXPECT_EQ(ids[2], 258);
  EXPECT_EQ(ids[3], 'h');
  char *out = nullptr;
  size_t len = 0;
  ASSERT_EQ(dsrt_tokenizer_decode(tok, ids, n, 1, &out, &len), DSRT_OK);
  EXPECT_EQ(std::string(out, len), text);
  dsrt_text_free(out);
  dsrt_text_free(ids);
  // Empty text without special tokens: no ids, no allocation.
  ASSERT_EQ(dsrt_tokenizer_encode(tok, "", 0, 0, &ids, &n), DSRT_OK);
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(ids, nullptr);
}

TEST_F(TextApi, StreamYieldsWholeCharacters) {
  dsrt_text_stream *s = nullptr;
  ASSERT_EQ(dsrt_text_stream_create(tok, 0, &s), DSRT_OK);
  const char *text;
  size_t len;
  std::string got;
  for (int32_t id : {0xE4, 0xB8, 0xAD, int('x')}) {
    ASSERT_EQ(dsrt_text_stream_push(s, id, &text, &len), DSRT_OK);
    got += "[" + std::string(text, len) + "]";
  }
  EXPECT_EQ(got, "[][][\xE4\xB8\xAD][x]");
  ASSERT_EQ(dsrt_text_stream_push(s, 0xF0, &text, &len), DSRT_OK);
  EXPECT_EQ(len, 0u);
  EXPECT_EQ(dsrt_text_stream_push(s, 259, &text, &len), DSRT_ERROR_ARGUMENT);
  EXPECT_STREQ(dsrt_last_error(),
               "token id 259 at index 5 is out of range [0, 259)");
  ASSERT_EQ(dsrt_text_stream_finish(s, &text, &len), DSRT_OK);
  EXPECT_EQ(std::string(text, len), "\xEF\xBF\xBD");
  dsrt_text_stream_free(s);
}

TEST_F(TextApi, BadInputIsAnErrorNotACrash) {
  int32_t *ids = nullptr;
  size_t n = 0;
  EXPECT_EQ(dsrt_tokenizer_encode(tok, "a\xFF", 2, 0, &ids, &n),
            DSRT_ERROR_ARGUMENT);
  EXPECT_STREQ(dsrt_last_error(), "text is not valid UTF-8 at byte 1");
  EXPECT_EQ(dsrt_tokenizer_encode(nullptr, "a", 1, 0, &ids, &n),
            DSRT_ERROR_ARGUMENT);
  EXPECT_STREQ(dsrt_last_error(), "tokenizer is NULL");
  EXPECT_EQ(dsrt_tokenizer_encode(tok, nullptr, 3, 0, &ids, &n),
            DSRT_ERROR_ARGUMENT);
  EXPECT_EQ(dsrt_tokenizer_encode(tok, "a", 1, 0, nullptr, &n),
            DSRT_ERROR_ARGUMENT);
  char *text = nullptr;
  size_t len = 0;
  int32_t bad[] = {'a', -3};
  EXPECT_EQ(dsrt_tokenizer_decode(tok, bad, 2, 0, &text, &len),
            DSRT_ERROR_ARGUMENT);
  EXPECT_STREQ(dsrt_last_error(),
               "token id -3 at index 1 is out of range [0, 259)");
  EXPECT_EQ(text, nullptr);
  EXPECT_EQ(dsrt_tokenizer_decode(tok, nullptr, 1, 0, &text, &len),
            DSRT_ERROR_ARGUMENT);
  EXPECT_EQ(dsrt_tokenizer_vocab_size(nullptr), -1);
  EXPECT_EQ(dsrt_tokenizer_token_id(tok, nullptr), -1);
  dsrt_text_stream *s = nullptr;
  EXPECT_EQ(dsrt_text_stream_create(nullptr, 0, &s), DSRT_ERROR_ARGUMENT);
  EXPECT_EQ(dsrt_text_stream_push(nullptr, 1, nullptr, nullptr),
            DSRT_ERROR_ARGUMENT);
  dsrt_text_stream_free(nullptr);
  dsrt_tokenizer_free(nullptr);
}

TEST_F(TextApi, LoadErrorsNameTheFile) {
  dsrt_tokenizer *t = nullptr;
  EXPECT_EQ(dsrt_tokenizer_load("/nonexistent/dir", &t), DSRT_ERROR_IO);
  EXPECT_STREQ(dsrt_last_error(), "/nonexistent/dir: not a directory");
  EXPECT_EQ(dsrt_tokenizer_load(nullptr, &t), DSRT_ERROR_ARGUMENT);
  std::ofstream(dir + "/tokenizer_config.json") << "{\"add_bos_token\": 1}";
  EXPECT_EQ(dsrt_tokenizer_load(dir.c_str(), &t), DSRT_ERROR_FORMAT);
  EXPECT_EQ(std::string(dsrt_last_error()),
            dir + "/tokenizer_config.json: add_bos_token: expected true or "
                  "false, got 1");
  EXPECT_EQ(t, nullptr);
}
