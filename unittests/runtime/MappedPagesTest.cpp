// The checkpoint's file mappings (2 MiB aligned, huge pages asked for) and
// the kernel's account of how they sit in memory (smaps), with the advice
// the tools print when the weights sit in 4 KiB pages.
#include "weights/MappedPages.h"
#include "TestFiles.h"
#include "support/HugePages.h"
#include "weights/Checkpoint.h"

#include <cstdlib>
#include <fstream>
#include <gtest/gtest.h>
#include <sstream>
#include <string>
#include <unistd.h>

using namespace dsrt;
using namespace dsrt::testing;

namespace {

constexpr int64_t kMiB = int64_t(1) << 20;

/// Inaccessible mappings ("---p", as the reservation the file is mapped
/// into) that end where [begin, end) starts or start where it ends.
int reservationsBeside(uintptr_t begin, uintptr_t end) {
  std::ifstream f("/proc/self/maps");
  int n = 0;
  for (std::string line; std::getline(f, line);) {
    unsigned long lo = 0, hi = 0;
    char perms[8] = {};
    if (std::sscanf(line.c_str(), "%lx-%lx %7s", &lo, &hi, perms) == 3 &&
        std::string(perms) == "---p" && (hi == begin || lo == end))
      ++n;
  }
  return n;
}

/// Whether the mapping holding `p` has VmFlags flag `flag` ("hg": advised
/// MADV_HUGEPAGE).
bool hasVmFlag(const void *p, const std::string &flag) {
  std::istringstream flags(mappingField(p, "VmFlags"));
  for (std::string f; flags >> f;)
    if (f == flag)
      return true;
  return false;
}

/// A file of `n` f32 values i * 0.5 in one tensor "w".
std::string writeLarge(const TempDir &dir, int64_t n) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    v[size_t(i)] = float(i) * 0.5f;
  std::string path = dir.file("model.safetensors");
  writeBytes(path, safetensorsOf({{"w", "F32", {n}, bytesOf(v)}}));
  return path;
}

TEST(HugePages, AccountsTheMappingsInsideEachRange) {
  std::vector<PageAccount> ranges(2);
  ranges[0].begin = 0x7f0000000000;
  ranges[0].size = 0x800000;
  ranges[1].begin = 0x7f1000000000;
  ranges[1].size = 0x200000;
  const char *smaps =
      "7f0000000000-7f0000400000 r--p 00000000 fe:01 12 /m/a.safetensors\n"
      "Size:               4096 kB\n"
      "Rss:                4096 kB\n"
      "RssAnon:              99 kB\n"
      "FilePmdMapped:      2048 kB\n"
      "VmFlags: rd mr mw me hg\n"
      "7f0000400000-7f0000800000 r--p 00400000 fe:01 12 /m/a.safetensors\n"
      "Rss:                1024 kB\n"
      "FilePmdMapped:         0 kB\n"
      // Straddles range 0's end: not inside it.
      "7f00007ff000-7f0000a00000 rw-p 00000000 00:00 0\n"
      "Rss:                 512 kB\n"
      "AnonHugePages:       512 kB\n"
      "7f1000000000-7f1000200000 rw-p 00000000 00:00 0\n"
      "Rss:                2048 kB\n"
      "AnonHugePages:      2048 kB\n"
      "7f2000000000-7f2000001000 r--p 00000000 00:00 0\n"
      "Rss:                   4 kB\n";
  accountPages(smaps, ranges);
  EXPECT_EQ(ranges[0].residentBytes, 5 * kMiB);
  EXPECT_EQ(ranges[0].hugeBytes, 2 * kMiB);
  EXPECT_EQ(ranges[1].residentBytes, 2 * kMiB);
  EXPECT_EQ(ranges[1].hugeBytes, 2 * kMiB);
  accountPages("garbage\n-\nRss: 5 kB\n", ranges);
  EXPECT_EQ(ranges[0].residentBytes, 0);
  EXPECT_EQ(ranges[1].hugeBytes, 0);
}

// A field of the mapping holding an address: not the one before it, not
// the one after, and "" where the mapping has no such field or none holds
// the address.
TEST(HugePages, ReadsAFieldOfTheMappingHoldingAnAddress) {
  const char *smaps = "7f0000000000-7f0000400000 r--p 00000000 fe:01 12 /a\n"
                      "Rss:                4096 kB\n"
                      "THPeligible:    0\n"
                      "VmFlags: rd mr mw me\n"
                      "7f0000400000-7f0000800000 rw-p 00000000 00:00 0\n"
                      "THPeligible:    1\n"
                      "VmFlags: rd wr mr mw me ac hg\n"
                      "7f0000800000-7f0000801000 r--p 00000000 00:00 0\n"
                      "Rss:                   4 kB\n";
  EXPECT_EQ(mappingField(smaps, 0x7f0000000000, "VmFlags"), "rd mr mw me");
  EXPECT_EQ(mappingField(smaps, 0x7f00003fffff, "THPeligible"), "0");
  EXPECT_EQ(mappingField(smaps, 0x7f0000400000, "THPeligible"), "1");
  EXPECT_EQ(mappingField(smaps, 0x7f00007fffff, "VmFlags"),
            "rd wr mr mw me ac hg");
  EXPECT_EQ(mappingField(smaps, 0x7f0000800000, "VmFlags"), "");
  EXPECT_EQ(mappingField(smaps, 0x7f0000801000, "Rss"), "");
  EXPECT_EQ(mappingField(smaps, 0x7f0000000000, "Rs"), "");
  // This process's own smaps: the stack holds `here`.
  int here = 0;
  EXPECT_NE(mappingField(&here, "Rss"), "");
}

// A file that spans a huge page is mapped at a 2 MiB boundary with the
// advice the kernel records ("hg"), reads back, and keeps nothing of the
// aligned reservation around it.
TEST(MappedPages, LargeFilesMapAlignedAndAdvised) {
  if (!hugePagesAllowed())
    GTEST_SKIP() << "DSRT_HUGE_PAGES=0 in this environment";
  TempDir dir;
  writeLarge(dir, 3 * kMiB / 4 + 5); // 3 MiB and a little
  {
    std::string err;
    auto c = Checkpoint::open(dir.path, err);
    ASSERT_NE(c, nullptr) << err;
    ASSERT_EQ(c->mappedFiles().size(), 1u);
    const SafetensorsFile &f = *c->mappedFiles()[0];
    EXPECT_EQ(reinterpret_cast<uintptr_t>(f.mappedData()) % kHugePageBytes, 0u);
    EXPECT_TRUE(f.hugePagesAdvised());
    EXPECT_TRUE(hasVmFlag(f.mappedData(), "hg"))
        << mappingField(f.mappedData(), "VmFlags");
    uintptr_t begin = reinterpret_cast<uintptr_t>(f.mappedData());
    size_t page = size_t(sysconf(_SC_PAGESIZE));
    EXPECT_EQ(reservationsBeside(begin, (begin + f.mappedBytes() + page - 1) /
                                            page * page),
              0);
    std::vector<float> w(size_t(3 * kMiB / 4 + 5));
    ASSERT_TRUE(c->readF32("w", w.data(), err)) << err;
    EXPECT_EQ(w[0], 0.0f);
    EXPECT_EQ(w.back(), float(w.size() - 1) * 0.5f);
  }
}

TEST(MappedPages, HugePagesCanBeTurnedOff) {
  TempDir dir;
  writeLarge(dir, 3 * kMiB / 4);
  ASSERT_EQ(setenv("DSRT_HUGE_PAGES", "0", 1), 0);
  std::string err;
  auto c = Checkpoint::open(dir.path, err);
  unsetenv("DSRT_HUGE_PAGES");
  ASSERT_NE(c, nullptr) << err;
  const SafetensorsFile &f = *c->mappedFiles()[0];
  EXPECT_FALSE(f.hugePagesAdvised());
  EXPECT_FALSE(hasVmFlag(f.mappedData(), "hg"));
}

// Small files are mapped as they are (an aligned span would only waste
// address space) and not advised.
TEST(MappedPages, SmallFilesAreNotAdvised) {
  TempDir dir;
  writeLarge(dir, 1000);
  std::string err;
  auto c = Checkpoint::open(dir.path, err);
  ASSERT_NE(c, nullptr) << err;
  EXPECT_FALSE(c->mappedFiles()[0]->hugePagesAdvised());
}

// Touched pages are resident through the mapping, and the kernel's 2 MiB
// share of them never exceeds them.
TEST(MappedPages, CountsTouchedPages) {
  TempDir dir;
  writeLarge(dir, 5 * kMiB / 4); // 5 MiB
  std::string err;
  auto c = Checkpoint::open(dir.path, err);
  ASSERT_NE(c, nullptr) << err;
  std::vector<FilePages> untouched = mappedPages(*c);
  ASSERT_EQ(untouched.size(), 1u);
  EXPECT_EQ(untouched[0].path, dir.file("model.safetensors"));
  EXPECT_GE(untouched[0].mappedBytes, 5 * kMiB);
  EXPECT_LT(untouched[0].residentBytes, 5 * kMiB);
  std::vector<float> w(size_t(5 * kMiB / 4));
  ASSERT_TRUE(c->readF32("w", w.data(), err)) << err;
  std::vector<FilePages> touched = mappedPages(*c);
  EXPECT_GE(touched[0].residentBytes, 5 * kMiB);
  EXPECT_LE(touched[0].residentBytes, touched[0].mappedBytes + 4096);
  EXPECT_GE(touched[0].hugeBytes, 0);
  EXPECT_LE(touched[0].hugeBytes, touched[0].residentBytes);
}

FilePages pages(const std::string &path, int64_t residentMiB, int64_t hugeMiB) {
  FilePages p;
  p.path = path;
  p.mappedBytes = residentMiB * kMiB;
  p.residentBytes = residentMiB * kMiB;
  p.hugeBytes = hugeMiB * kMiB;
  return p;
}

TEST(MappedPages, NotesWeightsInSmallPages) {
  std::string note = smallPagesNote({pages("/m/a.safetensors", 1536, 0),
                                     pages("/m/b.safetensors", 1024, 1000)});
  EXPECT_NE(note.find("1.5 GiB"), std::string::npos) << note;
  EXPECT_NE(note.find("/m/a.safetensors"), std::string::npos) << note;
  // b is nearly all in 2 MiB pages: not one to drop.
  EXPECT_EQ(note.find("/m/b.safetensors"), std::string::npos) << note;
  EXPECT_NE(note.find("iflag=nocache count=0"), std::string::npos) << note;
  EXPECT_EQ(note.find('\n'), std::string::npos);
}

TEST(MappedPages, NoNoteBelowAGiBOrWhereHugePagesDominate) {
  EXPECT_EQ(smallPagesNote({pages("/m/a", 1000, 0)}), "");
  EXPECT_EQ(smallPagesNote({pages("/m/a", 1200, 0), pages("/m/b", 2000, 2000)}),
            "");
  EXPECT_EQ(smallPagesNote({}), "");
}

TEST(MappedPages, NoteListsThreeFilesAndCountsTheRest) {
  std::vector<FilePages> files;
  for (int i = 0; i < 5; ++i)
    files.push_back(pages("/m/s" + std::to_string(i), 400, 0));
  std::string note = smallPagesNote(files);
  EXPECT_NE(note.find("/m/s2"), std::string::npos) << note;
  EXPECT_EQ(note.find("/m/s3"), std::string::npos) << note;
  EXPECT_NE(note.find("(and 2 more)"), std::string::npos) << note;
  EXPECT_NE(note.find("2.0 GiB"), std::string::npos) << note;
}

} // namespace
