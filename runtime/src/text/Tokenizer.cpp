//===- Tokenizer.cpp - encode, decode, BPE --------------------------------===//
#include "text/Tokenizer.h"
#include "text/Utf8.h"

#include <algorithm>
#include <cstring>

using namespace dsrt::text;

//===--- MergeTable -------------------------------------------------------===//

void MergeTable::reserve(size_t merges) {
  size_t cap = 16;
  shift = 60;
  while (cap < merges * 2 + 16) {
    cap <<= 1;
    --shift;
  }
  keys.assign(cap, kEmpty);
  values.assign(cap, 0);
  mask = cap - 1;
}

void MergeTable::insert(int32_t left, int32_t right, uint32_t rank,
                        int32_t merged) {
  uint64_t key = pack(left, right);
  for (size_t i = slot(key);; i = (i + 1) & mask) {
    if (keys[i] == key)
      return; // the earlier rank wins
    if (keys[i] == kEmpty) {
      keys[i] = key;
      values[i] = (uint64_t(rank) << 32) | uint32_t(merged);
      return;
    }
  }
}

//===--- Encoding ---------------------------------------------------------===//

int32_t Tokenizer::matchAdded(std::string_view text, size_t i,
                              size_t &length) const {
  int32_t found = -1;
  uint32_t node = 0;
  for (size_t j = i; j < text.size(); ++j) {
    const auto &kids = trie[node].next;
    uint8_t c = uint8_t(text[j]);
    auto it = std::find_if(kids.begin(), kids.end(),
                           [c](const auto &k) { return k.first == c; });
    if (it == kids.end())
      break;
    node = it->second;
    if (trie[node].token >= 0) {
      found = trie[node].token;
      length = j + 1 - i;
    }
  }
  return found;
}

bool Tokenizer::encode(std::string_view text, bool addSpecialTokens,
                       std::vector<int32_t> &ids, std::string &error) const {
  if (text.size() >= UINT32_MAX) {
    error = "text of " + std::to_string(text.size()) +
            " bytes is too long (at most 4 GiB)";
    return false;
  }
  size_t bad = findInvalidUtf8(text);
  if (bad != std::string_view::npos) {
    error = "text is not valid UTF-8 at byte " + std::to_string(bad);
    return false;
  }
  if (addSpecialTokens && addBos)
    ids.push_back(bos);
  // Added tokens are cut out first so no regex or merge can split them
  // (leftmost, then longest, as Hugging Face's AddedVocabulary matches).
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (!startsAdded[uint8_t(text[i])])
      continue;
    size_t len = 0;
    int32_t id = matchAdded(text, i, len);
    if (id < 0)
      continue;
    if (i > start &&
        !encodeOrdinary(text, uint32_t(start), uint32_t(i), ids, error))
      return false;
    ids.push_back(id);
    start = i + len;
    i = start - 1;
  }
  if (start < text.size() &&
      !encodeOrdinary(text, uint32_t(start), uint32_t(text.size()), ids, error))
    return false;
  if (addSpecialTokens && addEos)
    ids.push_back(eos);
  return true;
}

bool Tokenizer::encodeOrdinary(std::string_view text, uint32_t begin,
                               uint32_t end, std::vector<int32_t> &ids,
                               std::string &error) const {
  thread_local std::vector<Piece> pieces;
  pieces.clear();
  if (!pre.split(text, {begin, end}, pieces, error))
    return false;
  PieceCache &cache = threadCache();
  for (Piece p : pieces)
    encodePiece(text.substr(p.begin, p.end - p.begin), cache, ids);
  return true;
}

std::atomic<uint64_t> Tokenizer::nextSerial{1};

PieceCache &Tokenizer::threadCache() const {
  // The last few tokenizers this thread used, each with its cache; the
  // oldest gives way, so a thread never holds caches of many tokenizers.
  struct Entry {
    uint64_t serial = 0;
    PieceCache cache;
  };
  thread_local Entry entries[4];
  thread_local unsigned next = 0;
  for (Entry &e : entries)
    if (e.serial == serial)
      return e.cache;
  Entry &e = entries[next++ % 4];
  e.serial = serial;
  e.cache.clear();
  return e.cache;
}

void Tokenizer::encodePiece(std::string_view piece, PieceCache &cache,
                            std::vector<int32_t> &ids) const {
  if (piece.size() == 1) {
    ids.push_back(byteIds[uint8_t(piece[0])]);
    return;
  }
  if (piece.size() > PieceCache::kMaxKeyBytes) {
    bpe(piece, ids);
    return;
  }
  uint64_t hash = PieceCache::hashOf(piece);
  const int32_t *hit;
  uint32_t count;
  if (cache.find(piece, hash, hit, count)) {
    ids.insert(ids.end(), hit, hit + count);
    return;
  }
  size_t first = ids.size();
  bpe(piece, ids);
  cache.insert(piece, hash, ids.data() + first, uint32_t(ids.size() - first));
}

void Tokenizer::bpe(std::string_view piece, std::vector<int32_t> &ids) const {
  // Symbols stay in place and are unlinked as they merge; candidates are
  // (rank, position) in a min-heap, and a popped candidate whose pair has
  // changed since it was pushed is stale. Lowest rank first, leftmost on a
  // tie: Hugging Face's order, so the result is the same.
  size_t n = piece.size();
  thread_local std::vector<int32_t> sym;
  thread_local std::vector<uint32_t> prev, next;
  thread_local std::vector<uint64_t> heap;
  thread_local std::vector<uint8_t> dead;
  heap.clear();
  dead.assign(n, 0);
  sym.resize(n);
  prev.resize(n);
  next.resize(n);
  for (size_t i = 0; i < n; ++i) {
    sym[i] = byteIds[uint8_t(piece[i])];
    prev[i] = uint32_t(i) - 1; // ~0 for the first: no predecessor
    next[i] = uint32_t(i + 1);
  }
  auto consider = [&](uint32_t at) {
    uint32_t nx = next[at];
    if (nx >= n)
      return;
    uint32_t rank;
    int32_t merged;
    if (merges.find(sym[at], sym[nx], rank, merged)) {
      heap.push_back((uint64_t(rank) << 32) | at);
      std::push_heap(heap.begin(), heap.end(), std::greater<uint64_t>());
    }
  };
  for (uint32_t i = 0; i + 1 < n; ++i)
    consider(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<uint64_t>());
    uint64_t top = heap.back();
    heap.pop_back();
    uint32_t at = uint32_t(top), wantRank = uint32_t(top >> 32);
    uint32_t nx = next[at];
    if (dead[at] || nx >= n)
      continue;
    uint32_t rank;
    int32_t merged;
    if (!merges.find(sym[at], sym[nx], rank, merged) || rank != wantRank)
      continue;
    sym[at] = merged;
    dead[nx] = 1;
    next[at] = next[nx];
    if (next[nx] < n)
      prev[next[nx]] = at;
    if (prev[at] < n)
      consider(prev[at]);
    consider(at);
  }
  for (uint32_t i = 0; i < n; i = next[i])
    ids.push_back(sym[i]);
}

//===--- Decoding ---------------------------------------------------------===//

std::string Tokenizer::checkId(int32_t id, size_t index) const {
  if (id < 0 || int64_t(id) >= vocabSize())
    return "token id " + std::to_string(id) + " at index " +
           std::to_string(index) + " is out of range [0, " +
           std::to_string(vocabSize()) + ")";
  if (!(flags[size_t(id)] & kPresent))
    return "token id " + std::to_string(id) + " at index " +
           std::to_string(index) + " has no token in the vocabulary";
  return "";
}

bool Tokenizer::decode(const int32_t *ids, size_t n, bool skipSpecialTokens,
                       std::string &out, std::string &error) const {
  std::string bytes;
  for (size_t i = 0; i < n; ++i) {
    uint32_t id = uint32_t(ids[i]);
    if (id >= flags.size() || !(flags[id] & kPresent)) {
      error = checkId(ids[i], i);
      return false;
    }
    if (!(skipSpecialTokens && (flags[id] & kSpecial)))
      bytes += bytesOf[id];
  }
  appendUtf8Lossy(bytes, /*final=*/true, out);
  return true;
}

int32_t Tokenizer::tokenToId(std::string_view token) const {
  auto it = vocab.find(std::string(token));
  return it == vocab.end() ? -1 : it->second;
}

bool StreamDecoder::push(int32_t id, std::string &out, std::string &error) {
  error = tok.checkId(id, count);
  if (!error.empty())
    return false;
  ++count;
  if (skipSpecial && tok.isSpecial(id))
    return true;
  pending += *tok.tokenBytes(id);
  size_t used = appendUtf8Lossy(pending, /*final=*/false, out);
  pending.erase(0, used);
  return true;
}

void StreamDecoder::finish(std::string &out) {
  appendUtf8Lossy(pending, /*final=*/true, out);
  pending.clear();
  count = 0;
}
