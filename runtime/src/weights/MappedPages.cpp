//===- MappedPages.cpp - how a checkpoint's files sit in memory -----------===//
#include "weights/MappedPages.h"
#include "support/HugePages.h"
#include "weights/Checkpoint.h"

#include <cstdio>
#include <unistd.h>

using namespace dsrt;

std::vector<FilePages> dsrt::mappedPages(const Checkpoint &ckpt) {
  std::vector<PageAccount> ranges;
  for (const auto &f : ckpt.mappedFiles()) {
    PageAccount r;
    r.begin = reinterpret_cast<uintptr_t>(f->mappedData());
    // The mapping's last page is whole.
    size_t page = size_t(sysconf(_SC_PAGESIZE));
    r.size = (f->mappedBytes() + page - 1) / page * page;
    ranges.push_back(r);
  }
  accountPages(ranges);
  std::vector<FilePages> out;
  for (size_t i = 0; i < ranges.size(); ++i) {
    FilePages p;
    p.path = ckpt.mappedFiles()[i]->path();
    p.mappedBytes = int64_t(ckpt.mappedFiles()[i]->mappedBytes());
    p.residentBytes = ranges[i].residentBytes;
    p.hugeBytes = ranges[i].hugeBytes;
    out.push_back(p);
  }
  return out;
}

static std::string gib(int64_t bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f GiB", double(bytes) / double(1 << 30));
  return b;
}

std::string dsrt::smallPagesNote(const std::vector<FilePages> &files) {
  int64_t small = 0, huge = 0;
  std::string names;
  size_t listed = 0;
  for (const FilePages &f : files) {
    int64_t s = f.residentBytes - f.hugeBytes;
    huge += f.hugeBytes;
    if (s <= 0)
      continue;
    small += s;
    if (s * 2 > f.residentBytes && listed++ < 3)
      names += (names.empty() ? "" : " ") + f.path;
  }
  if (small < kSmallPagesNoteBytes || small <= huge)
    return "";
  if (listed > 3)
    names += " (and " + std::to_string(listed - 3) + " more)";
  return gib(small) +
         " of the weights are cached in 4 KiB pages, as a file written "
         "since it was last read is; decode can stream them up to a fifth "
         "slower than 2 MiB pages. `dd if=FILE iflag=nocache count=0` drops a "
         "file from the page cache, and the next run reads it back in "
         "2 MiB pages where the kernel caches files in large folios: " +
         names;
}
