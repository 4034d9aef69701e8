//===- ChatTemplate.h - Hugging Face chat templates -------------*- C++ -*-===//
//
// Renders the `chat_template` of a tokenizer_config.json (a Jinja template)
// with our own interpreter (text/jinja), as transformers' apply_chat_template
// does: trim_blocks and lstrip_blocks on, the messages, add_generation_prompt
// and the special tokens in the context, raise_exception() available.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_TEXT_CHATTEMPLATE_H
#define DSRT_TEXT_CHATTEMPLATE_H

#include <memory>
#include <string>

namespace dsrt::text {

class ChatTemplate {
public:
  // Parses a template; on failure returns null and sets `error` to one line
  // ("line N: unsupported tag 'macro'").
  static std::unique_ptr<ChatTemplate> parse(const std::string &source,
                                             std::string &error);

  // Reads tokenizer_config.json: `chat_template` as a string, or a list of
  // {name, template} of which "default" is taken. Its special tokens
  // (bos_token, eos_token, ... as strings or AddedToken objects) become
  // context defaults that render's extraContextJson may override. With
  // `templateSource`, that template replaces the config's (which may then
  // have none).
  static std::unique_ptr<ChatTemplate>
  fromTokenizerConfig(const std::string &path, std::string &error,
                      const std::string *templateSource = nullptr);

  ~ChatTemplate();

  // messagesJson: a JSON array of message objects ({"role", "content", and
  // e.g. "tool_calls"}). extraContextJson: "" or a JSON object merged into
  // the context, e.g. {"bos_token":"...","eos_token":"..."} or {"tools":
  // [...]} (tools and documents are none unless given). Returns false
  // with a one-line `error` on malformed JSON or a template error (its line
  // named; raise_exception's message included).
  bool render(const std::string &messagesJson, bool addGenerationPrompt,
              const std::string &extraContextJson, std::string &out,
              std::string &error) const;

  // The context defaults from the tokenizer config, as a JSON object.
  std::string defaultContextJson() const;

private:
  ChatTemplate();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

} // namespace dsrt::text

#endif // DSRT_TEXT_CHATTEMPLATE_H
