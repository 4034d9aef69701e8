//===- BlockPool.h - the pages of the latent cache --------------*- C++ -*-===//
//
// Pages are reference counted (a cached prefix page is held by every
// request reading it). Pages nobody holds wait in one free queue in
// eviction order: an unnamed page is handed out first, a page with a
// prefix name joins the back when its last holder lets go, so the least
// recently used cached page is the next to lose its name.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_ENGINE_BLOCKPOOL_H
#define DSRT_ENGINE_BLOCKPOOL_H

#include "engine/PrefixCache.h"

#include <list>
#include <vector>

namespace dsrt::engine {

class BlockPool {
public:
  explicit BlockPool(int64_t numPages);

  int64_t numPages() const { return int64_t(refs.size()); }
  int64_t numFree() const { return int64_t(freeQueue.size()); }
  int32_t refCount(int32_t page) const { return refs[size_t(page)]; }
  PrefixCache &cache() { return prefix; }
  const PrefixCache &cache() const { return prefix; }

  /// `n` pages off the free queue (evicting their names), or false and
  /// nothing taken when fewer are free.
  bool allocate(int64_t n, std::vector<int32_t> &out);
  /// One more holder of `page` (a prefix hit); takes it off the free queue.
  void touch(int32_t page);
  /// Each page loses one holder, the last page first (so a request's
  /// tail, least likely shared, is evicted before its head).
  void release(const std::vector<int32_t> &pages);

  /// Free queue holds exactly the pages of count 0, each once.
  bool consistent() const;

private:
  std::vector<int32_t> refs;
  std::list<int32_t> freeQueue;
  std::vector<std::list<int32_t>::iterator> where;
  std::vector<bool> queued;
  PrefixCache prefix;
};

} // namespace dsrt::engine

#endif // DSRT_ENGINE_BLOCKPOOL_H
