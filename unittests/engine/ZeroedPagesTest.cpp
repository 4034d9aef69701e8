//===- ZeroedPagesTest.cpp - the latent caches' zeroed memory -------------===//
#include "cpu/ZeroedPages.h"
#include "cpu/GrowBuffer.h"
#include "cpu/Scratch.h"
#include "support/HugePages.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <utility>

using namespace dsrt;
using namespace dsrt::cpu;

namespace {

/// The system's transparent huge page mode: "always", "madvise", "never"
/// (the bracketed word), or "" where the file is not there.
std::string thpMode() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string all((std::istreambuf_iterator<char>(f)), {});
  size_t a = all.find('['), b = all.find(']');
  return a == std::string::npos || b == std::string::npos
             ? ""
             : all.substr(a + 1, b - a - 1);
}

/// Why this environment hands out no huge pages on request, THP being in
/// `mode` ("" where it does).
std::string noHugePages(const std::string &mode) {
  if (mode != "always" && mode != "madvise")
    return "transparent huge pages are '" + mode + "' here";
  if (!hugePagesAllowed())
    return "DSRT_HUGE_PAGES=0 in this environment";
  return "";
}

/// The "THPeligible" field of the mapping that holds `p` (-1: not found).
int thpEligible(const void *p) {
  std::string v = mappingField(p, "THPeligible");
  return v.empty() ? -1 : std::atoi(v.c_str());
}

TEST(ZeroedPages, ZeroAlignedAndWritable) {
  for (size_t n : {size_t(1), size_t(4097), kHugePageBytes * 3 + 5}) {
    ZeroedPages z;
    ASSERT_TRUE(z.allocate(n)) << n;
    ASSERT_EQ(z.size(), n);
    EXPECT_TRUE(std::all_of(z.get(), z.get() + n, [](uint8_t v) { return !v; }))
        << n;
    if (n >= kHugePageBytes)
      EXPECT_EQ(reinterpret_cast<uintptr_t>(z.get()) % kHugePageBytes, 0u);
    z.get()[0] = 1;
    z.get()[n - 1] = 2;
    EXPECT_EQ(z.get()[n - 1], 2);
  }
}

TEST(ZeroedPages, MovesAndResets) {
  ZeroedPages a;
  EXPECT_FALSE(a);
  ASSERT_TRUE(a.allocate(100));
  a.get()[99] = 7;
  ZeroedPages b = std::move(a);
  EXPECT_FALSE(a);
  ASSERT_TRUE(b);
  EXPECT_EQ(b.get()[99], 7);
  // A second allocation is fresh: zero again.
  ASSERT_TRUE(b.allocate(100));
  EXPECT_EQ(b.get()[99], 0);
  b.reset();
  EXPECT_FALSE(b);
  EXPECT_EQ(b.size(), 0u);
}

TEST(ZeroedPages, RefusesWhatCannotBeMapped) {
  ZeroedPages z;
  EXPECT_FALSE(z.allocate(SIZE_MAX - 16));
  EXPECT_FALSE(z);
  // calloc's form refuses a product past size_t, even a held buffer is
  // released, and a fitting one is zeroed.
  ASSERT_TRUE(z.allocate(4, 8));
  EXPECT_FALSE(z.allocate(SIZE_MAX / 2, 3));
  EXPECT_FALSE(z);
  ASSERT_TRUE(z.allocate(3, 5));
  EXPECT_EQ(z.size(), 15u);
  EXPECT_EQ(z.get()[14], 0);
}

// Where the system hands out transparent huge pages on request, a cache's
// memory is eligible for them (the kernel's own account in smaps), so its
// first touch of each 2 MiB faults once rather than 512 times.
TEST(ZeroedPages, AsksForHugePages) {
  std::string mode = thpMode();
  if (std::string why = noHugePages(mode); !why.empty())
    GTEST_SKIP() << why;
  ZeroedPages z;
  ASSERT_TRUE(z.allocate(kHugePageBytes * 4));
  EXPECT_TRUE(z.hugePagesAdvised());
  EXPECT_EQ(thpEligible(z.get()), 1);
  ZeroedPages small;
  ASSERT_TRUE(small.allocate(4096));
  EXPECT_FALSE(small.hugePagesAdvised());
}

// DSRT_HUGE_PAGES=0: no advice, so under "madvise" no huge pages (the
// memory is still zeroed and aligned).
TEST(ZeroedPages, HugePagesCanBeTurnedOff) {
  ASSERT_EQ(setenv("DSRT_HUGE_PAGES", "0", 1), 0);
  ZeroedPages z;
  bool ok = z.allocate(kHugePageBytes * 2);
  std::string mode = thpMode();
  int eligible = ok ? thpEligible(z.get()) : -1;
  bool advised = z.hugePagesAdvised();
  unsetenv("DSRT_HUGE_PAGES");
  ASSERT_TRUE(ok);
  EXPECT_FALSE(advised);
  EXPECT_TRUE(hugePagesAllowed()); // unset again
  EXPECT_EQ(z.get()[kHugePageBytes], 0);
  if (mode == "madvise")
    EXPECT_EQ(eligible, 0);
}

// The activations buffer (cpu/Scratch.h) is ZeroedPages' too: a V3-width
// prefill's quarter GB in 4 KiB pages faulted ~33 K times on first use and
// took 1.05-1.19 s for its first prompt against 0.77-0.84 s. A fresh
// thread's buffer (each thread has its own), large enough for huge pages,
// is eligible for them; growth keeps what fits.
TEST(Scratch, ActivationsAskForHugePages) {
  if (kAddressSanitizer)
    GTEST_SKIP() << "under AddressSanitizer the buffer is malloc's (redzones)";
  std::string mode = thpMode();
  if (std::string why = noHugePages(mode); !why.empty())
    GTEST_SKIP() << why;
  int eligible = -1;
  bool kept = false, aligned = false;
  std::thread([&] {
    uint8_t *a = scratch(kHugePageBytes * 4);
    if (!a)
      return;
    aligned = reinterpret_cast<uintptr_t>(a) % kHugePageBytes == 0;
    a[kHugePageBytes * 4 - 1] = 1;
    eligible = thpEligible(a);
    kept = scratch(kHugePageBytes) == a &&
           scratchStats().bytes >= kHugePageBytes * 4;
  }).join();
  EXPECT_EQ(eligible, 1);
  EXPECT_TRUE(aligned);
  EXPECT_TRUE(kept);
}

// The kernels' grow-only buffers (cpu/GrowBuffer.h) from kGrowHugeBytes
// up: huge pages where the system gives them, so a first prompt's packed
// x and the naive form's keys and values fault once a 2 MiB rather than
// 512 times; smaller ones stay malloc's (a partly used last huge page
// would be a large share of them). Growth replaces the memory; a smaller
// request keeps it.
TEST(GrowBuffer, LargeBuffersAskForHugePages) {
  if (kAddressSanitizer)
    GTEST_SKIP() << "under AddressSanitizer the buffers are malloc's";
  std::string mode = thpMode();
  if (std::string why = noHugePages(mode); !why.empty())
    GTEST_SKIP() << why;
  GrowBuffer<float> b;
  float *small = b.get(1000);
  ASSERT_NE(small, nullptr);
  small[999] = 1;
  EXPECT_EQ(reinterpret_cast<uintptr_t>(small) % 64, 0u);
  GrowBuffer<uint8_t> medium;
  uint8_t *m = medium.get(3 << 20); // as the bench model's 2.2-3.3 MB ones
  ASSERT_NE(m, nullptr);
  m[0] = 1;
  if (mode == "madvise")
    EXPECT_EQ(thpEligible(m), 0);
  size_t count = kGrowHugeBytes / sizeof(float);
  float *large = b.get(count);
  ASSERT_NE(large, nullptr);
  large[count - 1] = 2;
  EXPECT_EQ(reinterpret_cast<uintptr_t>(large) % kHugePageBytes, 0u);
  EXPECT_EQ(thpEligible(large), 1);
  EXPECT_EQ(b.get(count / 2), large);
  EXPECT_EQ(large[count - 1], 2);
}

// Tight: huge pages for the whole 2 MiB ranges only, the tail in 4 KiB
// pages, so a buffer touched whole holds no memory past its end.
TEST(ZeroedPages, TightLeavesTheTailInSmallPages) {
  std::string mode = thpMode();
  if (mode != "madvise")
    GTEST_SKIP() << "the tail's pages differ only under THP 'madvise'";
  if (std::string why = noHugePages(mode); !why.empty())
    GTEST_SKIP() << why;
  ZeroedPages z;
  ASSERT_TRUE(z.allocateTight(kHugePageBytes + kHugePageBytes / 2));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(z.get()) % kHugePageBytes, 0u);
  EXPECT_TRUE(z.hugePagesAdvised());
  z.get()[0] = 1;
  z.get()[z.size() - 1] = 1;
  EXPECT_EQ(thpEligible(z.get()), 1);
  EXPECT_EQ(thpEligible(z.get() + kHugePageBytes), 0);
  ZeroedPages whole;
  ASSERT_TRUE(whole.allocate(kHugePageBytes + kHugePageBytes / 2));
  EXPECT_EQ(thpEligible(whole.get() + kHugePageBytes), 1);
}

} // namespace
