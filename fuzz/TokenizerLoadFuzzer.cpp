//===- TokenizerLoadFuzzer.cpp - fuzz tokenizer.json loading --------------===//
//
// Each input is one tokenizer.json (no config). What loads must then encode
// and decode a fixed text without crashing, and decode it back exactly.
//
//===----------------------------------------------------------------------===//
#include "OneLineCheck.h"
#include "text/Tokenizer.h"

#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string error;
  auto t = dsrt::text::Tokenizer::loadFromText(
      std::string_view(reinterpret_cast<const char *>(data), size),
      "tokenizer.json", "", "tokenizer_config.json", error);
  if (!t) {
    requireOneLine(error);
    return 0;
  }
  const std::string text = "Hello, 世界! 123 <a>\r\n  \xF0\x9F\x98\x80";
  std::vector<int32_t> ids;
  if (!t->encode(text, false, ids, error))
    return 0; // only regex resource limits can fail here
  std::string back;
  if (!t->decode(ids.data(), ids.size(), false, back, error) || back != text)
    __builtin_trap(); // a loaded byte-level tokenizer round-trips any text
  return 0;
}
