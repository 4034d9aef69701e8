//===- PrefixCache.cpp - full pages found by their content ----------------===//
#include "engine/PrefixCache.h"

#include "engine/Executor.h"

#include <algorithm>

using namespace dsrt::engine;

uint64_t PrefixCache::pageHash(uint64_t parent, const int32_t *tokens) {
  // FNV-1a over the parent's name and the ids, then a splitmix finalizer.
  uint64_t h = 14695981039346656037ULL;
  auto eat = [&](uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xFF;
      h *= 1099511628211ULL;
    }
  };
  eat(parent);
  for (int64_t i = 0; i < kPageTokens; ++i)
    eat(uint64_t(uint32_t(tokens[i])));
  h ^= h >> 31;
  h *= 0x94D049BB133111EBULL;
  return (h ^ (h >> 29)) | 1; // never 0, the first page's parent name
}

std::vector<int32_t>
PrefixCache::lookup(const std::vector<uint64_t> &hashes,
                    const std::vector<int32_t> &tokens) const {
  std::vector<int32_t> pages;
  for (size_t i = 0; i < hashes.size(); ++i) {
    auto it = byHash.find(hashes[i]);
    if (it == byHash.end())
      break;
    const Entry &e = entries[size_t(it->second)];
    int32_t parent = i ? pages.back() : -1;
    if (e.parent != parent ||
        !std::equal(e.tokens.begin(), e.tokens.end(),
                    tokens.begin() + int64_t(i) * kPageTokens))
      break;
    pages.push_back(it->second);
  }
  return pages;
}

bool PrefixCache::insert(int32_t page, int32_t parentPage, uint64_t hash,
                         const int32_t *tokens) {
  Entry &e = entries[size_t(page)];
  if (e.cached || byHash.count(hash) ||
      (parentPage >= 0 && !entries[size_t(parentPage)].cached))
    return false;
  if (parentPage >= 0)
    entries[size_t(parentPage)].children.push_back(page);
  e.cached = true;
  e.hash = hash;
  e.parent = parentPage;
  e.tokens.assign(tokens, tokens + kPageTokens);
  byHash.emplace(hash, page);
  return true;
}

void PrefixCache::evict(int32_t page) {
  Entry &e = entries[size_t(page)];
  if (!e.cached)
    return;
  byHash.erase(e.hash);
  if (e.parent >= 0) {
    std::vector<int32_t> &siblings = entries[size_t(e.parent)].children;
    siblings.erase(std::find(siblings.begin(), siblings.end(), page));
  }
  std::vector<int32_t> children = std::move(e.children);
  e = Entry();
  for (int32_t c : children) {
    entries[size_t(c)].parent = -1; // already detached from `page`
    evict(c);
  }
}

bool PrefixCache::consistent() const {
  int64_t named = 0;
  for (size_t p = 0; p < entries.size(); ++p) {
    if (!entries[p].cached)
      continue;
    ++named;
    auto it = byHash.find(entries[p].hash);
    if (it == byHash.end() || it->second != int32_t(p))
      return false;
    int32_t parent = entries[p].parent;
    if (parent >= 0) {
      const Entry &pe = entries[size_t(parent)];
      if (!pe.cached ||
          std::count(pe.children.begin(), pe.children.end(), int32_t(p)) != 1)
        return false;
    }
    for (int32_t c : entries[p].children)
      if (!entries[size_t(c)].cached || entries[size_t(c)].parent != int32_t(p))
        return false;
  }
  return named == int64_t(byHash.size());
}
