//===- ReasoningSplitter.cpp - DeepSeek-R1's reasoning apart from content -===//

#include "ReasoningSplitter.h"
#include "StopStrings.h"

namespace dsserve {
namespace {

constexpr const char kOpen[] = "<think>";
constexpr const char kClose[] = "</think>";

} // namespace

void ReasoningSplitter::push(const std::string &piece, std::string &reasoning,
                             std::string &content) {
  if (ended) {
    content += piece;
    return;
  }
  held += piece;
  if (!started) {
    const std::string open = kOpen;
    // Still possibly the opening tag: wait for more.
    if (couldBecome(held, open))
      return;
    if (held.compare(0, open.size(), open) == 0)
      held.erase(0, open.size());
    started = true;
  }
  const std::string close = kClose;
  if (size_t end = held.find(close); end != std::string::npos) {
    reasoning += held.substr(0, end);
    content += held.substr(end + close.size());
    held.clear();
    ended = true;
    return;
  }
  size_t keep = partialMatch(held, close);
  reasoning += held.substr(0, held.size() - keep);
  held.erase(0, held.size() - keep);
}

void ReasoningSplitter::finish(std::string &reasoning) {
  if (!ended)
    reasoning += held;
  held.clear();
}

} // namespace dsserve
