//===- PrefixCache.h - full pages found by their content --------*- C++ -*-===//
//
// As vLLM's kv_cache_utils: a full page is named by hash(previous page's
// hash, its 64 token ids), so a page's name covers the whole prefix up to
// it. The hash only finds a candidate: a hit also compares the page's
// tokens and its parent page. A page is named only under a named parent,
// and losing a name takes the names of the pages named under it, so the
// chain of parents of a named page holds exactly the tokens its cache
// entries were computed from; a 64-bit collision can never hand a request
// another prefix's cache. (A page's descendants are free whenever it is:
// every holder of a page also holds its parent.)
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_ENGINE_PREFIXCACHE_H
#define DSRT_ENGINE_PREFIXCACHE_H

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace dsrt::engine {

class PrefixCache {
public:
  explicit PrefixCache(int64_t numPages) : entries(size_t(numPages)) {}

  /// The name of a page holding `tokens` (64 ids) after a page named
  /// `parent` (0 for the first page).
  static uint64_t pageHash(uint64_t parent, const int32_t *tokens);

  /// Pages holding the prefix whose page names are `hashes` and tokens
  /// `tokens`, stopping at the first miss.
  std::vector<int32_t> lookup(const std::vector<uint64_t> &hashes,
                              const std::vector<int32_t> &tokens) const;
  /// Names `page` (full, holding `tokens`, after `parentPage` or -1). A
  /// name already taken by another page, or an unnamed parent, leaves
  /// `page` unnamed: false.
  bool insert(int32_t page, int32_t parentPage, uint64_t hash,
              const int32_t *tokens);
  /// Forgets `page`'s name (its content is about to be overwritten), and
  /// the names of the pages named under it.
  void evict(int32_t page);
  bool isCached(int32_t page) const { return entries[size_t(page)].cached; }
  int32_t parentOf(int32_t page) const { return entries[size_t(page)].parent; }
  int64_t numCached() const { return int64_t(byHash.size()); }
  /// The name map and the per-page entries agree.
  bool consistent() const;

private:
  struct Entry {
    bool cached = false;
    uint64_t hash = 0;
    int32_t parent = -1;
    std::vector<int32_t> tokens;
    std::vector<int32_t> children;
  };
  std::vector<Entry> entries;
  std::unordered_map<uint64_t, int32_t> byHash;
};

} // namespace dsrt::engine

#endif // DSRT_ENGINE_PREFIXCACHE_H
