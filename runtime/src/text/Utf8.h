//===- Utf8.h - UTF-8 checks, lossy decoding, GPT-2 byte symbols -*- C++
//-*-===//
//
// The tokenizer works on raw bytes; these helpers are the two places where
// text meets bytes: validating what a user gives us, and turning the bytes a
// model produced (possibly cut inside a character) back into text.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_TEXT_UTF8_H
#define DSRT_TEXT_UTF8_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace dsrt::text {

/// Offset of the first byte that does not begin a well-formed UTF-8
/// sequence (overlong forms, surrogates and code points past U+10FFFF are
/// ill-formed), or std::string_view::npos when all of `s` is well-formed.
size_t findInvalidUtf8(std::string_view s);

/// Appends `bytes` to `out`, replacing each maximal ill-formed subpart by
/// U+FFFD as Unicode recommends (and as Rust's from_utf8_lossy and the
/// WHATWG decoder do). With `final` false, a trailing prefix that could
/// still become a character is left unconsumed. Returns the bytes consumed,
/// so feeding the rest later gives the same text as one call with all of it.
size_t appendUtf8Lossy(std::string_view bytes, bool final, std::string &out);

void appendCodepoint(uint32_t cp, std::string &out);

/// GPT-2's reversible byte -> printable code point map used by ByteLevel
/// vocabularies ("Ġ" is the space byte).
uint32_t byteToSymbol(uint8_t b);
/// The byte a symbol stands for, or -1 when the code point is not one.
int symbolToByte(uint32_t cp);

/// Decodes the code point at s[i] (s must be well-formed), advancing i.
uint32_t nextCodepoint(std::string_view s, size_t &i);

} // namespace dsrt::text

#endif // DSRT_TEXT_UTF8_H
