//===- TextTokenizer.h - the Tokenizer interface on dsrt_text / dsrt_chat -===//
#ifndef DS_SERVE_TEXTTOKENIZER_H
#define DS_SERVE_TEXTTOKENIZER_H

#include "Backend.h"

struct dsrt_tokenizer;

namespace dsserve {

/// A checkpoint's tokenizer.json and tokenizer_config.json (dsrt_text.h).
/// Chat templates are not rendered yet: chat requests get a 400.
class TextTokenizer : public Tokenizer {
public:
  static std::unique_ptr<TextTokenizer> load(const std::string &dir,
                                             std::string &error);
  ~TextTokenizer() override;
  bool encode(const std::string &text, std::vector<int32_t> &out,
              std::string &error) override;
  bool renderChat(const std::string &messagesJson, std::vector<int32_t> &out,
                  std::string &error) override;
  std::unique_ptr<TextStream> newStream() override;
  std::string tokenBytes(int32_t token) override;

private:
  TextTokenizer() = default;
  bool encodeWith(const std::string &text, bool addSpecial,
                  std::vector<int32_t> &out, std::string &error);
  dsrt_tokenizer *tok = nullptr;
};

} // namespace dsserve

#endif // DS_SERVE_TEXTTOKENIZER_H
