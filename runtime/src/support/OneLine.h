//===- OneLine.h - error messages kept on one line --------------*- C++ -*-===//
//
// Every refusal is one line naming the culprit, and culprits are often the
// input's own strings (a tensor name, a token, a config value) which may
// hold anything. Header-only: the runtime and the compiler's importer
// (which reads configs and checkpoints) share it.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_SUPPORT_ONELINE_H
#define DSRT_SUPPORT_ONELINE_H

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace dsrt {

/// `s` with its control characters written as \xNN and Unicode's line
/// breaks (U+0085, U+2028, U+2029, where Python's splitlines breaks) as
/// \uNNNN; everything else, other UTF-8 included, as it is.
inline std::string oneLine(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    uint8_t c = uint8_t(s[i]);
    auto next = [&](size_t k) {
      return i + k < s.size() ? uint8_t(s[i + k]) : uint8_t(0);
    };
    if (c < 0x20 || c == 0x7F) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02X", unsigned(c));
      out += buf;
    } else if (c == 0xC2 && next(1) == 0x85) {
      out += "\\u0085";
      ++i;
    } else if (c == 0xE2 && next(1) == 0x80 &&
               (next(2) == 0xA8 || next(2) == 0xA9)) {
      out += next(2) == 0xA8 ? "\\u2028" : "\\u2029";
      i += 2;
    } else {
      out += char(c);
    }
  }
  return out;
}

} // namespace dsrt

#endif // DSRT_SUPPORT_ONELINE_H
