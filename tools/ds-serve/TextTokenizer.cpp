//===- TextTokenizer.cpp - the Tokenizer interface on dsrt_text / dsrt_chat ===//

#include "TextTokenizer.h"

#include "dsrt/dsrt_chat.h"
#include "dsrt/dsrt_text.h"

#include <cctype>
#include <fstream>
#include <sstream>
#include <sys/stat.h>


namespace dsserve {
namespace {

class Stream : public TextStream {
public:
  explicit Stream(dsrt_text_stream *s) : s(s) {}
  ~Stream() override { dsrt_text_stream_free(s); }
  std::string push(int32_t token) override {
    const char *t = nullptr;
    size_t n = 0;
    // An id the tokenizer lacks (the model's vocabulary can be larger)
    // shows as nothing rather than failing the response.
    if (!s || dsrt_text_stream_push(s, token, &t, &n) != DSRT_OK)
      return "";
    return std::string(t, n);
  }
  std::string flush() override {
    const char *t = nullptr;
    size_t n = 0;
    if (!s || dsrt_text_stream_finish(s, &t, &n) != DSRT_OK)
      return "";
    return std::string(t, n);
  }

private:
  dsrt_text_stream *s;
};

} // namespace

std::unique_ptr<TextTokenizer> TextTokenizer::load(const std::string &dir,
                                                   std::string &error) {
  std::unique_ptr<TextTokenizer> t(new TextTokenizer());
  t->dir = dir;
  if (dsrt_tokenizer_load(dir.c_str(), &t->tok) != DSRT_OK) {
    error = dsrt_last_error();
    return nullptr;
  }
  // The chat template and its special tokens come from
  // tokenizer_config.json; a checkpoint without one still serves text.
  std::string config = dir + "/tokenizer_config.json";
  struct stat st;
  if (stat(config.c_str(), &st) != 0)
    t->chatError = "no chat template: " + dir +
                   " has no tokenizer_config.json; use /v1/completions";
  else if (!dsrt_tokenizer_chat_template(t->tok)[0])
    t->chatError = "no chat template: " + config +
                   " has no chat_template; use /v1/completions";
  else if (dsrt_chat_template_load(config.c_str(), &t->chat) != DSRT_OK)
    t->chatError = std::string("the chat template cannot be used: ") +
                   dsrt_last_error();
  else
    t->templateSource = dsrt_tokenizer_chat_template(t->tok);
  return t;
}

bool TextTokenizer::useChatTemplate(const std::string &file,
                                    std::string &error) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    error = "cannot read '" + file + "'";
    return false;
  }
  std::stringstream source;
  source << in.rdbuf();
  std::string config = dir + "/tokenizer_config.json";
  struct stat st;
  dsrt_chat_template *t = nullptr;
  dsrt_status s = stat(config.c_str(), &st) == 0
                      ? dsrt_chat_template_load_source(config.c_str(),
                                                       source.str().c_str(), &t)
                      : dsrt_chat_template_create(source.str().c_str(), &t);
  if (s != DSRT_OK) {
    error = file + ": " + dsrt_last_error();
    return false;
  }
  dsrt_chat_template_free(chat);
  chat = t;
  chatError.clear();
  templateSource = source.str();
  return true;
}

bool TextTokenizer::templateNames(const std::string &name) const {
  auto word = [](char c) { return isalnum((unsigned char)c) || c == '_'; };
  for (size_t at = templateSource.find(name); at != std::string::npos;
       at = templateSource.find(name, at + 1)) {
    size_t end = at + name.size();
    if ((at == 0 || !word(templateSource[at - 1])) &&
        (end == templateSource.size() || !word(templateSource[end])))
      return true;
  }
  return false;
}

TextTokenizer::~TextTokenizer() {
  dsrt_chat_template_free(chat);
  dsrt_tokenizer_free(tok);
}

bool TextTokenizer::encodeWith(const std::string &text, bool addSpecial,
                               std::vector<int32_t> &out, std::string &error) {
  int32_t *ids = nullptr;
  size_t n = 0;
  if (dsrt_tokenizer_encode(tok, text.data(), text.size(), addSpecial ? 1 : 0,
                            &ids, &n) != DSRT_OK) {
    error = dsrt_last_error();
    return false;
  }
  out.assign(ids, ids + n);
  dsrt_text_free(ids);
  return true;
}

bool TextTokenizer::encode(const std::string &text, bool addSpecialTokens,
                           std::vector<int32_t> &out, std::string &error) {
  return encodeWith(text, addSpecialTokens, out, error);
}

bool TextTokenizer::renderChat(const ChatPrompt &prompt,
                               std::vector<int32_t> &out, std::string &error) {
  if (!chat) {
    error = chatError;
    return false;
  }
  char *text = nullptr;
  if (dsrt_chat_template_render(
          chat, prompt.messagesJson.c_str(), prompt.addGenerationPrompt ? 1 : 0,
          prompt.contextJson.empty() ? nullptr : prompt.contextJson.c_str(),
          &text) != DSRT_OK) {
    error = std::string("chat template: ") + dsrt_last_error();
    return false;
  }
  std::string rendered(text);
  dsrt_chat_string_free(text);
  if (!prompt.continueAfter.empty()) {
    // As transformers' continue_final_message: what the template writes
    // after the final message's text (its end-of-turn) goes.
    size_t at = rendered.rfind(prompt.continueAfter);
    if (at == std::string::npos) {
      error = "the chat template does not write the final message's text "
              "as it is, so it cannot be continued";
      return false;
    }
    rendered.resize(at + prompt.continueAfter.size());
  }
  rendered += prompt.assistantPrefix;
  // The template writes BOS itself (bos_token), so none is added here.
  return encodeWith(rendered, /*addSpecial=*/false, out, error);
}

std::unique_ptr<TextStream> TextTokenizer::newStream(bool skipSpecialTokens) {
  dsrt_text_stream *s = nullptr;
  if (dsrt_text_stream_create(tok, skipSpecialTokens ? 1 : 0, &s) != DSRT_OK)
    s = nullptr;
  return std::make_unique<Stream>(s);
}

std::string TextTokenizer::tokenBytes(int32_t token) {
  char *text = nullptr;
  size_t n = 0;
  if (dsrt_tokenizer_decode(tok, &token, 1, /*skip_special_tokens=*/0, &text,
                            &n) != DSRT_OK)
    return "";
  std::string s(text, n);
  dsrt_text_free(text);
  return s;
}

bool TextTokenizer::isSpecial(int32_t token) {
  return dsrt_tokenizer_is_special(tok, token) != 0;
}

bool TextTokenizer::decode(const std::vector<int32_t> &tokens, std::string &out,
                           std::string &error) {
  char *text = nullptr;
  size_t n = 0;
  // One call for all: a character split across tokens decodes whole.
  if (dsrt_tokenizer_decode(tok, tokens.data(), tokens.size(),
                            /*skip_special_tokens=*/0, &text, &n) != DSRT_OK) {
    error = dsrt_last_error();
    return false;
  }
  out.assign(text, n);
  dsrt_text_free(text);
  return true;
}

} // namespace dsserve
