//===- BlockPool.cpp - the pages of the latent cache ----------------------===//
#include "engine/BlockPool.h"

using namespace dsrt::engine;

BlockPool::BlockPool(int64_t numPages)
    : refs(size_t(numPages), 0), where(size_t(numPages)),
      queued(size_t(numPages), true), prefix(numPages) {
  for (int32_t p = 0; p < int32_t(numPages); ++p)
    where[size_t(p)] = freeQueue.insert(freeQueue.end(), p);
}

bool BlockPool::allocate(int64_t n, std::vector<int32_t> &out) {
  if (n > numFree())
    return false;
  for (int64_t i = 0; i < n; ++i) {
    int32_t p = freeQueue.front();
    freeQueue.pop_front();
    queued[size_t(p)] = false;
    prefix.evict(p);
    refs[size_t(p)] = 1;
    out.push_back(p);
  }
  return true;
}

void BlockPool::touch(int32_t page) {
  if (refs[size_t(page)]++ == 0) {
    freeQueue.erase(where[size_t(page)]);
    queued[size_t(page)] = false;
  }
}

void BlockPool::release(const std::vector<int32_t> &pages) {
  for (auto it = pages.rbegin(); it != pages.rend(); ++it) {
    int32_t p = *it;
    if (--refs[size_t(p)] > 0)
      continue;
    where[size_t(p)] = prefix.isCached(p)
                           ? freeQueue.insert(freeQueue.end(), p)
                           : freeQueue.insert(freeQueue.begin(), p);
    queued[size_t(p)] = true;
  }
}

bool BlockPool::consistent() const {
  std::vector<int> seen(refs.size(), 0);
  for (int32_t p : freeQueue)
    if (p < 0 || size_t(p) >= refs.size() || seen[size_t(p)]++ ||
        refs[size_t(p)] != 0 || !queued[size_t(p)])
      return false;
  for (size_t p = 0; p < refs.size(); ++p) {
    if (refs[p] < 0 || (refs[p] == 0) != bool(seen[p]))
      return false;
    // Whoever holds a named page holds its parent too.
    int32_t parent =
        prefix.isCached(int32_t(p)) ? prefix.parentOf(int32_t(p)) : -1;
    if (refs[p] > 0 && parent >= 0 && refs[size_t(parent)] == 0)
      return false;
  }
  return prefix.consistent();
}
