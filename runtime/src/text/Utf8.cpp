//===- Utf8.cpp - UTF-8 checks, lossy decoding, GPT-2 byte symbols --------===//
#include "text/Utf8.h"

#include "support/Utf8Encode.h"

#include <array>

using namespace dsrt::text;

namespace {

/// Length of the sequence lead byte `b` starts and the range its second
/// byte must fall in (Unicode Table 3-7); 0 for a byte that starts nothing.
struct Lead {
  int length;
  uint8_t lo, hi;
};

Lead leadOf(uint8_t b) {
  if (b < 0x80)
    return {1, 0, 0};
  if (b >= 0xC2 && b <= 0xDF)
    return {2, 0x80, 0xBF};
  if (b == 0xE0)
    return {3, 0xA0, 0xBF};
  if (b == 0xED)
    return {3, 0x80, 0x9F};
  if (b >= 0xE1 && b <= 0xEF)
    return {3, 0x80, 0xBF};
  if (b == 0xF0)
    return {4, 0x90, 0xBF};
  if (b >= 0xF1 && b <= 0xF3)
    return {4, 0x80, 0xBF};
  if (b == 0xF4)
    return {4, 0x80, 0x8F};
  return {0, 0, 0};
}

/// Bytes of the longest well-formed prefix of a sequence at s[i] (its
/// full length when complete); `truncated` when the input ends inside it.
int scanSequence(std::string_view s, size_t i, bool &truncated) {
  truncated = false;
  Lead lead = leadOf(uint8_t(s[i]));
  if (lead.length <= 1)
    return lead.length;
  for (int k = 1; k < lead.length; ++k) {
    if (i + k >= s.size()) {
      truncated = true;
      return k;
    }
    uint8_t c = uint8_t(s[i + k]);
    uint8_t lo = k == 1 ? lead.lo : 0x80, hi = k == 1 ? lead.hi : 0xBF;
    if (c < lo || c > hi)
      return k;
  }
  return lead.length;
}

const std::array<uint32_t, 256> &byteSymbols() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    uint32_t extra = 0;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) ||
                       (b >= 174 && b <= 255);
      t[b] = printable ? uint32_t(b) : 256 + extra++;
    }
    return t;
  }();
  return table;
}

} // namespace

size_t dsrt::text::findInvalidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (uint8_t(s[i]) < 0x80) {
      ++i;
      continue;
    }
    bool truncated;
    int n = scanSequence(s, i, truncated);
    if (truncated || n == 0 || n != leadOf(uint8_t(s[i])).length)
      return i;
    i += size_t(n);
  }
  return std::string_view::npos;
}

size_t dsrt::text::appendUtf8Lossy(std::string_view s, bool final,
                                   std::string &out) {
  size_t i = 0, runStart = 0;
  while (i < s.size()) {
    if (uint8_t(s[i]) < 0x80) {
      ++i;
      continue;
    }
    bool truncated;
    int n = scanSequence(s, i, truncated);
    if (n > 0 && n == leadOf(uint8_t(s[i])).length && !truncated) {
      i += size_t(n);
      continue;
    }
    out.append(s.data() + runStart, i - runStart);
    if (truncated && !final)
      return i;
    appendCodepoint(0xFFFD, out);
    i += size_t(n == 0 ? 1 : n);
    runStart = i;
  }
  out.append(s.data() + runStart, i - runStart);
  return i;
}

void dsrt::text::appendCodepoint(uint32_t cp, std::string &out) {
  dsrt::appendUtf8(out, cp);
}

uint32_t dsrt::text::byteToSymbol(uint8_t b) { return byteSymbols()[b]; }

int dsrt::text::symbolToByte(uint32_t cp) {
  static const std::array<int16_t, 512> inverse = [] {
    std::array<int16_t, 512> t;
    t.fill(-1);
    for (int b = 0; b < 256; ++b)
      t[byteSymbols()[b]] = int16_t(b);
    return t;
  }();
  return cp < inverse.size() ? inverse[cp] : -1;
}

uint32_t dsrt::text::nextCodepoint(std::string_view s, size_t &i) {
  uint8_t b = uint8_t(s[i++]);
  if (b < 0x80)
    return b;
  int n = b >= 0xF0 ? 3 : b >= 0xE0 ? 2 : 1;
  uint32_t cp = b & (0x3F >> n);
  for (int k = 0; k < n && i < s.size(); ++k)
    cp = (cp << 6) | (uint8_t(s[i++]) & 0x3F);
  return cp;
}
