//===- ReadStream.cpp - the memory's read rate: decode's roofline ---------===//
#include "ReadStream.h"
#include "BenchUtil.h"
#include "cpu/Isa.h"
#include "cpu/ThreadPool.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <immintrin.h>
#include <new>
#include <sys/mman.h>

using namespace dsbench;

namespace {

constexpr size_t kHugePage = size_t(2) << 20;
/// How far ahead vector_ahead prefetches: the GEMVs' kGemvAheadBytes.
constexpr int64_t kAheadBytes = 4096;

uint64_t sumWords(const uint64_t *p, int64_t n) {
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += p[i];
    s1 += p[i + 1];
    s2 += p[i + 2];
    s3 += p[i + 3];
  }
  for (; i < n; ++i)
    s0 += p[i];
  return s0 + s1 + s2 + s3;
}

template <bool Ahead>
__attribute__((target("avx512f"))) uint64_t sumAvx512(const uint64_t *p,
                                                      int64_t n) {
  __m512i a = _mm512_setzero_si512(), b = a, c = a, d = a;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    if constexpr (Ahead) {
      const char *q = reinterpret_cast<const char *>(p + i) + kAheadBytes;
      for (int l = 0; l < 256; l += 64)
        _mm_prefetch(q + l, _MM_HINT_NTA);
    }
    a = _mm512_add_epi64(a, _mm512_loadu_si512(p + i));
    b = _mm512_add_epi64(b, _mm512_loadu_si512(p + i + 8));
    c = _mm512_add_epi64(c, _mm512_loadu_si512(p + i + 16));
    d = _mm512_add_epi64(d, _mm512_loadu_si512(p + i + 24));
  }
  uint64_t s = uint64_t(_mm512_reduce_add_epi64(
      _mm512_add_epi64(_mm512_add_epi64(a, b), _mm512_add_epi64(c, d))));
  return s + sumWords(p + i, n - i);
}

template <bool Ahead>
__attribute__((target("avx2"))) uint64_t sumAvx2(const uint64_t *p, int64_t n) {
  __m256i a = _mm256_setzero_si256(), b = a, c = a, d = a;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    if constexpr (Ahead) {
      const char *q = reinterpret_cast<const char *>(p + i) + kAheadBytes;
      _mm_prefetch(q, _MM_HINT_NTA);
      _mm_prefetch(q + 64, _MM_HINT_NTA);
    }
    const __m256i *v = reinterpret_cast<const __m256i *>(p + i);
    a = _mm256_add_epi64(a, _mm256_loadu_si256(v));
    b = _mm256_add_epi64(b, _mm256_loadu_si256(v + 1));
    c = _mm256_add_epi64(c, _mm256_loadu_si256(v + 2));
    d = _mm256_add_epi64(d, _mm256_loadu_si256(v + 3));
  }
  __m256i v = _mm256_add_epi64(_mm256_add_epi64(a, b), _mm256_add_epi64(c, d));
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i *>(lanes), v);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3] + sumWords(p + i, n - i);
}

using SumFn = uint64_t (*)(const uint64_t *, int64_t);

/// The spans as one sequence of words, split over the pool.
class Words {
public:
  explicit Words(const std::vector<ReadSpan> &spans) : spans(spans) {
    start.push_back(0);
    for (const ReadSpan &s : spans)
      start.push_back(start.back() + s.words);
  }
  int64_t size() const { return start.back(); }

  /// `sum` over words [b, e) of the sequence.
  uint64_t sum(SumFn f, int64_t b, int64_t e) const {
    size_t i = size_t(std::upper_bound(start.begin(), start.end(), b) -
                      start.begin() - 1);
    uint64_t total = 0;
    for (; b < e; ++i) {
      int64_t in = b - start[i], n = std::min(e, start[i + 1]) - b;
      total += f(spans[i].data + in, n);
      b += n;
    }
    return total;
  }

private:
  const std::vector<ReadSpan> &spans;
  std::vector<int64_t> start;
};

/// GB/s of `sum` over the words split over the pool, best of `reps`;
/// false when a pass's total is not `expect`.
bool passRate(const Words &words, uint64_t expect, int reps, SumFn sum,
              double &gbps) {
  int64_t n = words.size();
  bool ok = true;
  double t = best(
      reps,
      [&] {
        std::atomic<uint64_t> total{0};
        dsrt::cpu::parallelFor(n, int64_t(1) << 16, [&](int64_t b, int64_t e) {
          total.fetch_add(words.sum(sum, b, e), std::memory_order_relaxed);
        });
        ok = ok && total.load() == expect;
      },
      /*warm=*/true); // the first pass starts the pool's threads
  gbps = double(n) * 8 / t / 1e9;
  return ok;
}

/// The three loops over `words`, each pass checked against `expect`.
bool measureWords(const Words &words, uint64_t expect, int reps,
                  ReadRates &rates, const char *&error) {
  rates = ReadRates();
  if (!passRate(words, expect, reps, sumWords, rates.words)) {
    error = "the word loop's sum is not the buffer's";
    return false;
  }
  SumFn vector = nullptr, ahead = nullptr;
  // The runtime's path ($DSRT_CPU_ISA when set): the AVX2 loop can be
  // run on an AVX-512 machine, and a scalar run reads words only.
  dsrt::cpu::Isa isa = dsrt::cpu::activeIsa();
  if (isa >= dsrt::cpu::Isa::Avx512) {
    vector = sumAvx512<false>;
    ahead = sumAvx512<true>;
    rates.vectorIsa = "avx512f";
  } else if (isa >= dsrt::cpu::Isa::Avx2) {
    vector = sumAvx2<false>;
    ahead = sumAvx2<true>;
    rates.vectorIsa = "avx2";
  }
  if (!vector)
    return true;
  if (!passRate(words, expect, reps, vector, rates.vector) ||
      !passRate(words, expect, reps, ahead, rates.vectorAhead)) {
    error = "a vector loop's sum is not the buffer's";
    return false;
  }
  return true;
}

} // namespace

void HugeBytes::Free::operator()(void *p) const { std::free(p); }

HugeBytes::HugeBytes(size_t bytes) : size_(bytes) {
  size_t whole =
      std::max<size_t>(1, (bytes + kHugePage - 1) / kHugePage) * kHugePage;
  void *p = std::aligned_alloc(kHugePage, whole);
  if (!p)
    throw std::bad_alloc();
  // Advice only: without transparent huge pages the pages are 4 KiB.
  (void)madvise(p, whole, MADV_HUGEPAGE);
  bytes_.reset(p);
}

ReadBuffer::ReadBuffer(size_t words) : bytes_(words * 8), size_(words) {
  auto *p = static_cast<uint64_t *>(bytes_.data());
  for (size_t i = 0; i < words; ++i)
    p[i] = i;
}

double ReadRates::best() const {
  return std::max(words, std::max(vector, vectorAhead));
}

bool dsbench::measureRead(const ReadBuffer &buf, int reps, ReadRates &rates,
                          const char *&error) {
  std::vector<ReadSpan> one{{buf.data(), int64_t(buf.size())}};
  int64_t n = int64_t(buf.size());
  // Word i holds i: every pass sums to n (n - 1) / 2, modulo 2^64.
  uint64_t expect = n % 2 == 0 ? uint64_t(n / 2) * uint64_t(n - 1)
                               : uint64_t(n) * uint64_t((n - 1) / 2);
  return measureWords(Words(one), expect, reps, rates, error);
}

bool dsbench::measureRead(const std::vector<ReadSpan> &spans, int reps,
                          ReadRates &rates, const char *&error) {
  // The total from one untimed pass on this thread, which also faults in
  // any page not yet mapped: the timed passes read resident memory.
  Words words(spans);
  uint64_t expect = words.sum(sumWords, 0, words.size());
  return measureWords(words, expect, reps, rates, error);
}
