//===- PieceCache.h - pre-token bytes -> ids, per thread --------*- C++ -*-===//
//
// Natural text repeats its words, so most pre-tokens were already merged.
// The cache is an open-addressing table over one arena of key bytes and
// one of ids (no allocation per entry), and each thread has its own for
// each of the last few tokenizers it used: encoding takes no lock, and a
// tokenizer shared by a server's threads never serializes them.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_TEXT_PIECECACHE_H
#define DSRT_TEXT_PIECECACHE_H

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace dsrt::text {

class PieceCache {
public:
  /// Pieces longer than this rarely repeat and are not cached.
  static constexpr size_t kMaxKeyBytes = 64;

  /// The cached ids of `key` ([ids, ids + count)), or false.
  bool find(std::string_view key, uint64_t hash, const int32_t *&ids,
            uint32_t &count) const {
    if (slots.empty())
      return false;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      const Slot &s = slots[i];
      if (s.keyLength == kEmpty)
        return false;
      if (s.hash == hash && s.keyLength == key.size() &&
          std::memcmp(keys.data() + s.keyOffset, key.data(), key.size()) == 0) {
        ids = idArena.data() + s.idOffset;
        count = s.idCount;
        return true;
      }
    }
  }

  void insert(std::string_view key, uint64_t hash, const int32_t *ids,
              uint32_t count) {
    // Bounded memory: start over rather than evict one by one.
    if (idArena.size() + count > kMaxIds || keys.size() > kMaxKeyArena)
      clear();
    if ((used + 1) * 2 > slots.size())
      grow();
    Slot s{hash, uint32_t(keys.size()), uint32_t(idArena.size()),
           uint32_t(key.size()), count};
    keys.append(key.data(), key.size());
    idArena.insert(idArena.end(), ids, ids + count);
    size_t i = hash & mask;
    while (slots[i].keyLength != kEmpty)
      i = (i + 1) & mask;
    slots[i] = s;
    ++used;
  }

  void clear() {
    slots.clear();
    keys.clear();
    idArena.clear();
    used = 0;
    mask = 0;
  }

  static uint64_t hashOf(std::string_view key) {
    return std::hash<std::string_view>()(key);
  }

private:
  static constexpr uint32_t kEmpty = ~uint32_t(0);
  static constexpr size_t kMaxIds = size_t(1) << 22;
  static constexpr size_t kMaxKeyArena = size_t(16) << 20;
  struct Slot {
    uint64_t hash = 0;
    uint32_t keyOffset = 0, idOffset = 0, keyLength = kEmpty, idCount = 0;
  };

  void grow() {
    std::vector<Slot> old;
    old.swap(slots);
    slots.assign(old.empty() ? 4096 : old.size() * 2, Slot());
    mask = slots.size() - 1;
    for (const Slot &s : old) {
      if (s.keyLength == kEmpty)
        continue;
      size_t i = s.hash & mask;
      while (slots[i].keyLength != kEmpty)
        i = (i + 1) & mask;
      slots[i] = s;
    }
  }

  std::vector<Slot> slots;
  std::string keys;
  std::vector<int32_t> idArena;
  size_t used = 0, mask = 0;
};

} // namespace dsrt::text

#endif // DSRT_TEXT_PIECECACHE_H
