//===- Utf8Encode.h - one code point as UTF-8 -------------------*- C++ -*-===//
//
// Shared by the JSON parser (\u escapes) and the tokenizer (byte-level
// decoding); header-only so every target that compiles either gets it.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_SUPPORT_UTF8ENCODE_H
#define DSRT_SUPPORT_UTF8ENCODE_H

#include <cstdint>
#include <string>

namespace dsrt {

/// Appends `cp` (at most 0x10FFFF; callers check) as 1-4 UTF-8 bytes.
inline void appendUtf8(std::string &out, uint32_t cp) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

} // namespace dsrt

#endif // DSRT_SUPPORT_UTF8ENCODE_H
