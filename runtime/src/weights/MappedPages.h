//===- MappedPages.h - how a checkpoint's files sit in memory ---*- C++ -*-===//
//
// A checkpoint's mappings are read where the page cache holds the file:
// in 2 MiB folios where the file was read in by a kernel that caches it in
// large folios, in 4 KiB pages where it was written since (a download, a
// conversion, a copy). Decode at DeepSeek-V3's widths ran up to 1.26x
// slower from the small pages (bench/RESULTS.md), which only dropping the
// file from the cache and reading it again undoes. This is the kernel's
// account of it, and the one-line advice the tools print.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_WEIGHTS_MAPPEDPAGES_H
#define DSRT_WEIGHTS_MAPPEDPAGES_H

#include <cstdint>
#include <string>
#include <vector>

namespace dsrt {

class Checkpoint;

struct FilePages {
  std::string path;
  int64_t mappedBytes = 0;
  int64_t residentBytes = 0; // touched through this process's mapping
  int64_t hugeBytes = 0;     // of those, mapped in 2 MiB pages
};

/// Each of the checkpoint's files, in its order. Resident and huge bytes
/// are 0 where /proc/self/smaps cannot be read.
std::vector<FilePages> mappedPages(const Checkpoint &ckpt);

/// Resident bytes in 4 KiB pages, over all files, from which the advice
/// is given.
constexpr int64_t kSmallPagesNoteBytes = int64_t(1) << 30;

/// "" or one line: how much of the weights sits in 4 KiB pages, what it
/// costs, and how to drop each such file from the page cache. Given where
/// the small pages add up to kSmallPagesNoteBytes and outnumber the huge.
std::string smallPagesNote(const std::vector<FilePages> &files);

} // namespace dsrt

#endif // DSRT_WEIGHTS_MAPPEDPAGES_H
