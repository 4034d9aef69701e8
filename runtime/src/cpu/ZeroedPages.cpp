//===- ZeroedPages.cpp - zeroed memory for latent caches ------------------===//
#include "cpu/ZeroedPages.h"

#include <cstdlib>
#include <sys/mman.h>

using namespace dsrt::cpu;

ZeroedPages &ZeroedPages::operator=(ZeroedPages &&o) noexcept {
  if (this != &o) {
    reset();
    data = o.data;
    bytes = o.bytes;
    mapping = o.mapping;
    mapped = o.mapped;
    huge = o.huge;
    o.data = nullptr;
    o.mapping = nullptr;
    o.bytes = o.mapped = 0;
    o.huge = false;
  }
  return *this;
}

bool ZeroedPages::map(size_t n, bool roundUp) {
  reset();
  n = n ? n : 1;
  // Below a huge page the alignment would only waste address space.
  bool wantHuge = n >= kHugePageBytes;
  // Whole huge pages from an aligned start: the last part of a buffer
  // that ends inside a 2 MiB range would get 4 KiB pages (a 3.5 MB cache
  // of 6 layers then faulted 300 times in 200 decode steps). What lies
  // past n is never touched, so never resident. Tight (!roundUp): that
  // last part keeps its 4 KiB pages, and only the whole ranges are advised.
  size_t span = n, slack = 0, advised = n;
  if (wantHuge) {
    if (n > SIZE_MAX - 2 * kHugePageBytes)
      return false;
    span = (n + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
    advised = roundUp ? span : n / kHugePageBytes * kHugePageBytes;
    slack = kHugePageBytes;
  }
  // MAP_NORESERVE: untouched pages cost nothing, as calloc's large blocks
  // (an mmap too) do not.
  void *m = mmap(nullptr, span + slack, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (m == MAP_FAILED)
    return false;
  mapping = m;
  mapped = span + slack;
  uintptr_t at = reinterpret_cast<uintptr_t>(m);
  if (wantHuge)
    at = (at + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  data = reinterpret_cast<uint8_t *>(at);
  bytes = n;
#ifdef MADV_HUGEPAGE
  // Advice only: where THP is off the pages are 4 KiB, as calloc's.
  huge = wantHuge && hugePagesAllowed() &&
         madvise(data, advised, MADV_HUGEPAGE) == 0;
#endif
  return true;
}

void ZeroedPages::reset() {
  if (mapping)
    munmap(mapping, mapped);
  data = nullptr;
  mapping = nullptr;
  bytes = mapped = 0;
  huge = false;
}
