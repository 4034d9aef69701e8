//===- Tokenizer.h - Hugging Face byte-level BPE tokenizers -----*- C++ -*-===//
//
// What DeepSeek checkpoints ship in tokenizer.json: a BPE model (vocab +
// ranked merges) over GPT-2 byte symbols, a sequence of Split regexes then
// ByteLevel as pre-tokenizer, added tokens matched verbatim before
// pre-tokenization, the ByteLevel decoder. tokenizer_config.json adds the
// BOS rule (add_bos_token / bos_token) and the chat template. Anything else
// a file asks for is refused at load with the JSON path that asks for it.
//
// A Tokenizer is immutable after load (its encode caches are per thread,
// PieceCache.h), so one instance serves any number of threads.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_TEXT_TOKENIZER_H
#define DSRT_TEXT_TOKENIZER_H

#include "text/PieceCache.h"
#include "text/PreTokenizer.h"

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace dsrt::text {

/// (left id, right id) -> (rank, merged id), open addressing: the inner
/// loop of BPE is this lookup.
class MergeTable {
public:
  void reserve(size_t merges);
  /// Keeps the first (lowest) rank when a pair repeats.
  void insert(int32_t left, int32_t right, uint32_t rank, int32_t merged);
  /// False when the pair never merges.
  bool find(int32_t left, int32_t right, uint32_t &rank,
            int32_t &merged) const {
    if (keys.empty())
      return false;
    uint64_t key = pack(left, right);
    for (size_t i = slot(key);; i = (i + 1) & mask) {
      if (keys[i] == key) {
        rank = uint32_t(values[i] >> 32);
        merged = int32_t(uint32_t(values[i]));
        return true;
      }
      if (keys[i] == kEmpty)
        return false;
    }
  }

private:
  static constexpr uint64_t kEmpty = ~uint64_t(0);
  static uint64_t pack(int32_t a, int32_t b) {
    return (uint64_t(uint32_t(a)) << 32) | uint32_t(b);
  }
  size_t slot(uint64_t key) const {
    return size_t((key * 0x9E3779B97F4A7C15ULL) >> shift) & mask;
  }
  std::vector<uint64_t> keys, values;
  size_t mask = 0;
  int shift = 64;
};

class Tokenizer {
public:
  /// Reads DIR/tokenizer.json and, when it exists, DIR/tokenizer_config.json.
  /// `ioProblem` tells a missing or unreadable file from a malformed one.
  static std::unique_ptr<Tokenizer> loadDirectory(const std::string &dir,
                                                  std::string &error,
                                                  bool *ioProblem = nullptr);
  /// From file contents; the names prefix error messages. An empty
  /// `config` means no tokenizer_config.json.
  static std::unique_ptr<Tokenizer> loadFromText(std::string_view tokenizerJson,
                                                 const std::string &jsonName,
                                                 std::string_view config,
                                                 const std::string &configName,
                                                 std::string &error);

  /// Appends the ids of `text` (well-formed UTF-8, else an error naming
  /// the byte offset) to `ids`; with `addSpecialTokens`, BOS first when the
  /// config asks for it (and EOS last with add_eos_token).
  bool encode(std::string_view text, bool addSpecialTokens,
              std::vector<int32_t> &ids, std::string &error) const;
  /// The text of `ids`; an id without a token is an error naming it and its
  /// index. Bytes that do not form UTF-8 come out as U+FFFD.
  bool decode(const int32_t *ids, size_t n, bool skipSpecialTokens,
              std::string &out, std::string &error) const;

  /// One more than the largest id (ids in between may lack a token).
  int64_t vocabSize() const { return int64_t(bytesOf.size()); }
  int32_t bosId() const { return bos; }
  int32_t eosId() const { return eos; }
  bool addsBos() const { return addBos; }
  bool isSpecial(int32_t id) const {
    return id >= 0 && size_t(id) < flags.size() && (flags[id] & kSpecial);
  }
  /// The id of a token as tokenizer.json spells it (byte symbols for the
  /// vocab, plain text for added tokens), or -1.
  int32_t tokenToId(std::string_view token) const;
  /// The bytes token `id` decodes to, or nullptr when it has none.
  const std::string *tokenBytes(int32_t id) const {
    return id >= 0 && size_t(id) < flags.size() && (flags[id] & kPresent)
               ? &bytesOf[size_t(id)]
               : nullptr;
  }
  /// "token id 7 at index 2 is out of range [0, 100)" or "" when valid.
  std::string checkId(int32_t id, size_t index) const;
  const std::string &chatTemplate() const { return chatTemplateText; }
  const std::string &bosToken() const { return bosText; }
  const std::string &eosToken() const { return eosText; }

private:
  friend class TokenizerLoader;
  static constexpr uint8_t kPresent = 1, kSpecial = 2;

  /// Text with no added token in it: pre-tokenize, then BPE each piece.
  bool encodeOrdinary(std::string_view text, uint32_t begin, uint32_t end,
                      std::vector<int32_t> &ids, std::string &error) const;
  void encodePiece(std::string_view piece, PieceCache &cache,
                   std::vector<int32_t> &ids) const;
  PieceCache &threadCache() const;
  void bpe(std::string_view piece, std::vector<int32_t> &ids) const;
  /// Longest added token starting at text[i]: its id and length, or -1.
  int32_t matchAdded(std::string_view text, size_t i, size_t &length) const;

  std::vector<std::string> bytesOf;               // id -> decoded bytes
  std::vector<uint8_t> flags;                     // id -> kPresent | kSpecial
  std::unordered_map<std::string, int32_t> vocab; // token string -> id
  int32_t byteIds[256];
  MergeTable merges;
  PreTokenizer pre;

  // Added tokens: a byte trie, leftmost-longest like Hugging Face's.
  struct TrieNode {
    int32_t token = -1;
    std::vector<std::pair<uint8_t, uint32_t>> next;
  };
  std::vector<TrieNode> trie;
  bool startsAdded[256] = {};

  int32_t bos = -1, eos = -1;
  bool addBos = false, addEos = false;
  std::string bosText, eosText, chatTemplateText;

  // Names this instance in the per-thread caches (an address could be
  // reused by a later tokenizer).
  const uint64_t serial = nextSerial++;
  static std::atomic<uint64_t> nextSerial;
};

/// Decodes ids one at a time for streaming: each push returns the text
/// that is complete so far (never half a character); finish() flushes the
/// rest. The concatenation equals Tokenizer::decode of all the ids.
class StreamDecoder {
public:
  StreamDecoder(const Tokenizer &tokenizer, bool skipSpecialTokens)
      : tok(tokenizer), skipSpecial(skipSpecialTokens) {}
  /// Appends the newly complete text to `out`; fails for an id without a
  /// token (the stream is unchanged then).
  bool push(int32_t id, std::string &out, std::string &error);
  /// Appends what is left (an unfinished character as U+FFFD) and resets.
  void finish(std::string &out);

private:
  const Tokenizer &tok;
  bool skipSpecial;
  size_t count = 0;
  std::string pending;
};

} // namespace dsrt::text

#endif // DSRT_TEXT_TOKENIZER_H
