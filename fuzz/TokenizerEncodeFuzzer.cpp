//===- TokenizerEncodeFuzzer.cpp - fuzz encoding arbitrary bytes ----------===//
//
// DeepSeek V3's tokenizer (from the npm test package when `make deps` has
// installed it, else a small one with the same pre-tokenizer) encodes each
// input: ill-formed UTF-8 must be refused, and well-formed text must decode
// back to itself, in one shot and streamed id by id.
//
//===----------------------------------------------------------------------===//
#include "text/Tokenizer.h"
#include "text/Utf8.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

namespace {

std::unique_ptr<dsrt::text::Tokenizer> fallback() {
  using namespace dsrt::text;
  std::string vocab;
  for (int b = 0; b < 256; ++b) {
    std::string sym;
    appendCodepoint(byteToSymbol(uint8_t(b)), sym);
    if (sym == "\"" || sym == "\\")
      sym = "\\" + sym;
    vocab += "\"" + sym + "\":" + std::to_string(b) + ",";
  }
  vocab +=
      "\"\xC4\xA0t\":256,\"he\":257,\"\xC4\xA0the\":258,\"\xC4\xA0th\":259";
  std::string json =
      "{\"added_tokens\":[{\"id\":260,\"content\":\"<|x|>\",\"special\":true}],"
      "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":["
      "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\p{N}{1,3}\"},"
      "\"behavior\":\"Isolated\"},"
      "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"[\xE4\xB8\x80-"
      "\xE9\xBE\xA5\xE3\x81\x80-\xE3\x82\x9F\xE3\x82\xA0-\xE3\x83\xBF]+\"},"
      "\"behavior\":\"Isolated\"},"
      "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"[!\\\"#$%&'()*+,\\\\-./"
      ":;<=>?@\\\\[\\\\\\\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\\\p{L}\\\\p{P}"
      "\\\\p{S}]?[\\\\p{L}\\\\p{M}]+| "
      "?[\\\\p{P}\\\\p{S}]+[\\r\\n]*|\\\\s*[\\r\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"},"
      "\"behavior\":\"Isolated\"},"
      "{\"type\":\"ByteLevel\"}]},\"decoder\":{\"type\":\"ByteLevel\"},"
      "\"model\":{\"type\":\"BPE\",\"vocab\":{" +
      vocab +
      "},\"merges\":[\"\xC4\xA0 t\",\"h e\",\"\xC4\xA0t h\",\"\xC4\xA0th "
      "e\"]}}";
  std::string error;
  auto t = Tokenizer::loadFromText(json, "fallback", "", "", error);
  if (!t) {
    std::fprintf(stderr, "fallback tokenizer: %s\n", error.c_str());
    __builtin_trap();
  }
  return t;
}

const dsrt::text::Tokenizer &tokenizer() {
  static std::unique_ptr<dsrt::text::Tokenizer> t = [] {
    std::string error;
    auto v3 = dsrt::text::Tokenizer::loadDirectory(DS_V3_TOKENIZER_DIR, error);
    std::fprintf(stderr, "tokenizer: %s\n",
                 v3 ? "DeepSeek V3" : ("fallback (" + error + ")").c_str());
    return v3 ? std::move(v3) : fallback();
  }();
  return *t;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  using namespace dsrt::text;
  const Tokenizer &t = tokenizer();
  std::string_view text(reinterpret_cast<const char *>(data), size);
  std::vector<int32_t> ids, withSpecial;
  std::string error;
  bool ok = t.encode(text, false, ids, error);
  if (ok != (findInvalidUtf8(text) == std::string_view::npos))
    __builtin_trap();
  if (!ok)
    return 0;
  // With special tokens: BOS (when the config adds it) and the same ids.
  if (!t.encode(text, true, withSpecial, error))
    __builtin_trap();
  size_t bos = t.addsBos() ? 1 : 0;
  if (withSpecial.size() != ids.size() + bos ||
      !std::equal(ids.begin(), ids.end(), withSpecial.begin() + long(bos)))
    __builtin_trap();
  // Special tokens spelled in the text encode to themselves, so decoding
  // them back (not skipping them) restores the text exactly.
  std::string back, streamed;
  if (!t.decode(ids.data(), ids.size(), false, back, error) || back != text)
    __builtin_trap();
  StreamDecoder s(t, false);
  for (int32_t id : ids)
    if (!s.push(id, streamed, error))
      __builtin_trap();
  s.finish(streamed);
  if (streamed != back)
    __builtin_trap();
  return 0;
}
