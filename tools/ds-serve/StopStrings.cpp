//===- StopStrings.cpp - stop sequences on decoded text --------------------===//

#include "StopStrings.h"

#include <algorithm>

namespace dsserve {

size_t partialMatch(const std::string &text, const std::string &tag) {
  if (tag.empty())
    return 0;
  for (size_t n = std::min(text.size(), tag.size() - 1); n > 0; --n)
    if (text.compare(text.size() - n, n, tag, 0, n) == 0)
      return n;
  return 0;
}

std::string StopStrings::push(const std::string &text) {
  if (hit)
    return "";
  if (stops.empty())
    return text;
  // Only the held-back tail plus the new text can hold a new match.
  pending += text;
  size_t best = std::string::npos;
  for (const std::string &s : stops) {
    size_t at = pending.find(s);
    if (at != std::string::npos && (best == std::string::npos || at < best)) {
      best = at;
      matchedStop = s;
    }
  }
  if (best != std::string::npos) {
    hit = true;
    std::string out = pending.substr(0, best);
    pending.clear();
    return out;
  }
  // Hold back the longest tail that is a proper prefix of some stop.
  size_t keep = 0;
  for (const std::string &s : stops)
    keep = std::max(keep, partialMatch(pending, s));
  std::string out = pending.substr(0, pending.size() - keep);
  pending.erase(0, pending.size() - keep);
  return out;
}

std::string StopStrings::flush() {
  if (hit)
    return "";
  std::string out;
  out.swap(pending);
  return out;
}

} // namespace dsserve
