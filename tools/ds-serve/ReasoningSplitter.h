//===- ReasoningSplitter.h - DeepSeek-R1's reasoning apart from content ---===//
//
// `ds-serve --reasoning-parser deepseek_r1` (vLLM's name): a chat answer's
// text up to "</think>" is its reasoning (a leading "<think>" dropped), the
// rest its content, as DeepSeek's API returns reasoning_content. R1's chat
// template opens the thinking in the prompt, so an answer that never closes
// it is all reasoning. A prompt that closed the thinking itself (V3.1's
// non-thinking mode ends with "</think>") leaves the answer all content.
//
//===----------------------------------------------------------------------===//
#ifndef DS_SERVE_REASONINGSPLITTER_H
#define DS_SERVE_REASONINGSPLITTER_H

#include <string>

namespace dsserve {

class ReasoningSplitter {
public:
  /// thinkingClosed: the prompt ended the thinking already.
  explicit ReasoningSplitter(bool thinkingClosed = false)
      : ended(thinkingClosed) {}
  /// Routes a piece of generated text: what is now known to be reasoning
  /// or content is appended to those. A tag split across pieces is held
  /// back until the next piece decides it.
  void push(const std::string &piece, std::string &reasoning,
            std::string &content);
  /// The end of the text: what was held back is reasoning.
  void finish(std::string &reasoning);
  /// "</think>" was seen: the rest is content.
  bool inContent() const { return ended; }

private:
  std::string held;
  bool started = false; // past a possible leading "<think>"
  bool ended = false;
};

} // namespace dsserve

#endif // DS_SERVE_REASONINGSPLITTER_H
