//===- TextTokenizer.h - the Tokenizer interface on dsrt_text / dsrt_chat -===//
#ifndef DS_SERVE_TEXTTOKENIZER_H
#define DS_SERVE_TEXTTOKENIZER_H

#include "Backend.h"

struct dsrt_tokenizer;
struct dsrt_chat_template;

namespace dsserve {

/// A checkpoint's tokenizer.json (dsrt_text.h) and the chat template of its
/// tokenizer_config.json (dsrt_chat.h). Without a usable template, chat
/// requests get a 400 saying why.
class TextTokenizer : public Tokenizer {
public:
  static std::unique_ptr<TextTokenizer> load(const std::string &dir,
                                             std::string &error);
  ~TextTokenizer() override;
  /// Replaces the chat template with a Jinja file's (the special tokens
  /// stay the tokenizer_config.json's); false with a message if the file
  /// cannot be read or parsed.
  bool useChatTemplate(const std::string &file, std::string &error);
  /// The chat template names the variable `name` (whole word): "tools"
  /// tells whether the model is shown the request's tools at all.
  bool templateNames(const std::string &name) const;
  bool encode(const std::string &text, bool addSpecialTokens,
              std::vector<int32_t> &out, std::string &error) override;
  bool renderChat(const ChatPrompt &chat, std::vector<int32_t> &out,
                  std::string &error) override;
  std::unique_ptr<TextStream> newStream(bool skipSpecialTokens) override;
  std::string tokenBytes(int32_t token) override;
  bool isSpecial(int32_t token) override;
  bool decode(const std::vector<int32_t> &tokens, std::string &text,
              std::string &error) override;

private:
  TextTokenizer() = default;
  bool encodeWith(const std::string &text, bool addSpecial,
                  std::vector<int32_t> &out, std::string &error);
  dsrt_tokenizer *tok = nullptr;
  dsrt_chat_template *chat = nullptr;
  std::string chatError;
  std::string dir;
  std::string templateSource;
};

} // namespace dsserve

#endif // DS_SERVE_TEXTTOKENIZER_H
