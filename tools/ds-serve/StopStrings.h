//===- StopStrings.h - stop sequences on decoded text ----------------------===//
//
// Text arrives in complete UTF-8 characters (TextStream). A stop string may
// straddle pieces, so the tail that could still begin one is held back
// until it is known not to. Stop strings are valid UTF-8, so both the match
// and the held-back tail start on a character boundary: nothing emitted
// ever cuts a character.
//
//===----------------------------------------------------------------------===//
#ifndef DS_SERVE_STOPSTRINGS_H
#define DS_SERVE_STOPSTRINGS_H

#include <string>
#include <vector>

namespace dsserve {

/// The length of the longest suffix of `text` that is a proper prefix of
/// `tag`: what to hold back until the next piece says whether the tag
/// begins there.
size_t partialMatch(const std::string &text, const std::string &tag);
/// `text` is shorter than `tag` and could still become it.
inline bool couldBecome(const std::string &text, const std::string &tag) {
  return text.size() < tag.size() && tag.compare(0, text.size(), text) == 0;
}

class StopStrings {
public:
  explicit StopStrings(std::vector<std::string> stops)
      : stops(std::move(stops)) {}

  /// Appends `text`; returns what may be sent now. After a stop matched,
  /// stopped() is true, the text before the stop has been returned and
  /// further input is ignored.
  std::string push(const std::string &text);
  /// At the end of generation: the held-back tail (no stop matched).
  std::string flush();
  bool stopped() const { return hit; }
  const std::string &matched() const { return matchedStop; }

private:
  std::vector<std::string> stops;
  std::string pending;
  bool hit = false;
  std::string matchedStop;
};

} // namespace dsserve

#endif // DS_SERVE_STOPSTRINGS_H
