//===- HugePages.h - 2 MiB pages: the switch and the account ----*- C++ -*-===//
//
// The runtime asks for transparent huge pages in two places: the latent
// caches' zeroed memory (cpu/ZeroedPages.h) and the checkpoint's file
// mappings (weights/Checkpoint.cpp). DSRT_HUGE_PAGES=0 turns both off.
// What the kernel actually gave is its own account in /proc/self/smaps
// (Rss, and FilePmdMapped / AnonHugePages for 2 MiB mappings).
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_SUPPORT_HUGEPAGES_H
#define DSRT_SUPPORT_HUGEPAGES_H

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dsrt {

/// Huge-page granule: the alignment and the size above which one is
/// asked for.
constexpr size_t kHugePageBytes = size_t(2) << 20;

/// False where DSRT_HUGE_PAGES is "0" (read at each call).
bool hugePagesAllowed();

/// Whether this build has AddressSanitizer: buffers that would otherwise
/// be mapped for huge pages (cpu/Scratch.cpp, cpu/GrowBuffer.h) come from
/// malloc instead, whose redzones catch a kernel writing past them.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif

/// A range of this process's address space and what smaps says of the
/// mappings inside it.
struct PageAccount {
  uintptr_t begin = 0;
  size_t size = 0;
  int64_t residentBytes = 0; // Rss
  int64_t hugeBytes = 0;     // FilePmdMapped + AnonHugePages
};

/// Fills each range's residentBytes and hugeBytes from smaps text (the
/// format of /proc/self/smaps): the sums over the mappings that lie inside
/// it. Lines it does not know are skipped.
void accountPages(std::string_view smaps, std::vector<PageAccount> &ranges);

/// The same from this process's /proc/self/smaps; false (ranges left at
/// zero) where it cannot be read.
bool accountPages(std::vector<PageAccount> &ranges);

/// Field `name` ("VmFlags", "THPeligible", ...) of the mapping in smaps
/// text that holds `address`: the text after the colon, leading blanks
/// dropped; "" where no mapping holds it or the mapping has no such field.
std::string mappingField(std::string_view smaps, uintptr_t address,
                         std::string_view name);

/// The same from this process's /proc/self/smaps ("" where it cannot be
/// read).
std::string mappingField(const void *address, std::string_view name);

} // namespace dsrt

#endif // DSRT_SUPPORT_HUGEPAGES_H
