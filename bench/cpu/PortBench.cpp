//===- PortBench.cpp - what FP8's kernels cost a core, per instruction ----===//
//
// Compiled with AVX512-BF16, VBMI and GFNI (runtime/src/engine.cmake) and
// run only where the CPU has all three. Each throughput is a loop of
// twelve independent chains, each latency a loop of one chain, whose
// operands an empty asm statement keeps the compiler from hoisting; the
// cycle is a quarter of a dependent FMA's time (4 cycles on the Intel and
// AMD cores that run these kernels). Twelve chains, not eight: on Zen 5 a
// vdpbf16ps takes 6 cycles and two issue a cycle, so eight chains measured
// its latency / 8 (0.75) where it issues every 0.5.
// bench/RESULTS.md reads it: a zmm vdpbf16ps held both FMA ports for two
// cycles on Emerald Rapids ("forty-seventh session"), so FP8's GEMV is
// bound by its dot products as much as by its e4m3 conversion there; on
// Zen 5 it issues every 0.5 cycles ("forty-eighth session").
//
//===----------------------------------------------------------------------===//
#include "PortBench.h"
#include "BenchUtil.h"

#include "cpu/Isa.h"
#include "cpu/Kernels.h"
#include "cpu/TileChoice.h"

#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#if defined(__x86_64__)
#include <immintrin.h>

namespace {

volatile float sinkF;
volatile long long sinkI;

constexpr long kIters = 1'000'000;

/// Seconds per iteration of body(n), the best of reps runs of kIters.
template <typename F> double perIter(int reps, F body) {
  return dsbench::best(reps, [&] { body(kIters); }) / double(kIters);
}

/// Independent chains a throughput loop runs: as many as the latency of
/// the slowest instruction here (6 cycles) times its issue rate (2 a
/// cycle), and twice that (24) plus the two operands still fit the 32 zmm
/// registers for the mixes.
constexpr int kChains = 12;

template <int N> inline void start(__m512 (&v)[N]) {
  for (__m512 &x : v)
    x = _mm512_set1_ps(1.0f);
}
template <int N> inline void start(__m512i (&v)[N]) {
  for (__m512i &x : v)
    x = _mm512_set1_epi32(0x01020304);
}
/// The chains' values kept, so that no chain is optimized away.
template <int N> inline void keep(const __m512 (&v)[N]) {
  __m512 s = v[0];
  for (int j = 1; j < N; ++j)
    s = _mm512_add_ps(s, v[j]);
  sinkF = _mm512_reduce_add_ps(s);
}
template <int N> inline void keep(const __m512i (&v)[N]) {
  __m512i s = v[0];
  for (int j = 1; j < N; ++j)
    s = _mm512_xor_si512(s, v[j]);
  sinkI = _mm512_reduce_add_epi64(s);
}

/// kChains independent chains of A and kChains of B (a step may leave
/// B's alone): seconds per iteration of step(a, x, b, c) on all of them.
template <typename A, typename B, typename Step>
double chains(int reps, Step step) {
  return perIter(reps, [&](long n) {
    A a[kChains];
    B x[kChains];
    start(a);
    start(x);
    __m512i b = _mm512_set1_epi32(0x3f803f80), c = b;
    for (long i = 0; i < n; ++i) {
      asm volatile("" : "+v"(b), "+v"(c));
      step(a, x, b, c);
    }
    keep(a);
    keep(x);
  });
}

/// Seconds per instruction of one chain of op (its latency).
template <typename Op> double dependent(int reps, Op op) {
  return perIter(reps,
                 [&](long n) {
                   __m512 a = _mm512_set1_ps(1.0f);
                   __m512i b = _mm512_set1_epi32(0x3f803f80), c = b;
                   for (long i = 0; i < n; ++i) {
                     asm volatile("" : "+v"(b), "+v"(c));
                     for (int j = 0; j < 8; ++j)
                       a = op(a, b, c);
                   }
                   sinkF = _mm512_reduce_add_ps(a);
                 }) /
         8.0;
}

inline __m512 fma(__m512 a, __m512i b, __m512i c) {
  return _mm512_fmadd_ps(a, _mm512_castsi512_ps(b), _mm512_castsi512_ps(c));
}
inline __m512 dp(__m512 a, __m512i b, __m512i c) {
  return _mm512_dpbf16_ps(a, (__m512bh)b, (__m512bh)c);
}

/// Seconds per iteration of kChains vdpbf16ps chains, each beside a chain
/// of op on B.
template <typename B, typename Op> double besideDp(int reps, Op op) {
  return chains<__m512, B>(reps, [op](__m512 *a, B *x, __m512i b, __m512i c) {
    for (int j = 0; j < kChains; ++j) {
      a[j] = dp(a[j], b, c);
      x[j] = op(x[j], b, c);
    }
  });
}

/// GB/s of e4m3 codes the set's fp8ToBf16 converts from L1: 64 rows of 128
/// codes, each 64-byte group normal (exponents 2-15, so that no group holds
/// the rare codes that send it to the table: KernelsAvx512Fp8.cpp), or with
/// a zero code in every group.
double convertRate(const dsrt::cpu::KernelSet &ks, bool zeroInEachGroup,
                   int reps) {
  constexpr int64_t kRows = 64, kN = 128;
  std::mt19937 rng(3);
  std::vector<uint8_t> codes(size_t(kRows * kN));
  for (uint8_t &c : codes) {
    int e = 2 + int(rng() % 14), m = int(rng() % 8);
    if (e == 15 && m == 7)
      m = 6; // not NaN
    c = uint8_t((rng() & 0x80) | (e << 3) | m);
  }
  if (zeroInEachGroup)
    for (size_t i = 0; i < codes.size(); i += 64)
      codes[i + (i / 64) % 64] = 0;
  std::vector<uint16_t> out(codes.size());
  constexpr long kCalls = 20000;
  double t = dsbench::best(reps, [&] {
    for (long i = 0; i < kCalls; ++i) {
      ks.fp8ToBf16(codes.data(), kN, kRows, kN, out.data(), kN);
      asm volatile("" ::"r"(out.data()) : "memory");
    }
  });
  return double(kCalls) * double(codes.size()) / t / 1e9;
}

} // namespace

int dsbench::portBench(int reps) {
  if (!__builtin_cpu_supports("avx512bf16") ||
      !__builtin_cpu_supports("avx512vbmi") || !__builtin_cpu_supports("gfni")) {
    std::fprintf(stderr,
                 "ds-cpu-bench ports: needs AVX512-BF16, VBMI and GFNI\n");
    return 1;
  }
  // A dependent chain of four FMAs: 16 cycles an iteration.
  double cycle = perIter(reps, [](long n) {
                   __m512 a = _mm512_set1_ps(1.0f), b = a;
                   for (long i = 0; i < n; ++i) {
                     asm volatile("" : "+v"(b));
                     a = _mm512_fmadd_ps(a, b, b);
                     a = _mm512_fmadd_ps(a, b, b);
                     a = _mm512_fmadd_ps(a, b, b);
                     a = _mm512_fmadd_ps(a, b, b);
                   }
                   sinkF = _mm512_reduce_add_ps(a);
                 }) /
                 16.0;
  // Cycles per instruction: kChains a loop iteration.
  auto each = [&](double seconds) { return seconds / cycle / kChains; };
  // Cycles per eight of each instruction of a mix.
  auto mix = [&](double seconds) { return seconds / cycle * 8.0 / kChains; };
  // Cycles from an instruction's operand to its result.
  auto latency = [&](double seconds) { return seconds / cycle; };
  using F = __m512;
  using I = __m512i;
  double fmaCycles = each(chains<F, I>(reps, [](F *a, I *, I b, I c) {
    for (int j = 0; j < kChains; ++j)
      a[j] = fma(a[j], b, c);
  }));
  double dpCycles = each(chains<F, I>(reps, [](F *a, I *, I b, I c) {
    for (int j = 0; j < kChains; ++j)
      a[j] = dp(a[j], b, c);
  }));
  double permi2b = each(chains<I, I>(reps, [](I *a, I *, I b, I c) {
    for (int j = 0; j < kChains; ++j)
      a[j] = _mm512_permutex2var_epi8(b, a[j], c);
  }));
  double permb = each(chains<I, I>(reps, [](I *a, I *, I b, I) {
    for (int j = 0; j < kChains; ++j)
      a[j] = _mm512_permutexvar_epi8(a[j], b);
  }));
  double unpack = each(chains<I, I>(reps, [](I *a, I *, I b, I) {
    for (int j = 0; j < kChains; ++j)
      a[j] = _mm512_unpacklo_epi8(a[j], b);
  }));
  double affine = each(chains<I, I>(reps, [](I *a, I *, I b, I) {
    for (int j = 0; j < kChains; ++j)
      a[j] = _mm512_gf2p8affine_epi64_epi8(a[j], b, 0);
  }));
  double fmaLatency =
      latency(dependent(reps, [](F a, I b, I c) { return fma(a, b, c); }));
  double dpLatency =
      latency(dependent(reps, [](F a, I b, I c) { return dp(a, b, c); }));
  // Eight vdpbf16ps alone (the loop above), then beside eight of another
  // instruction: what a mix takes past the larger of its two alone shows
  // the two sharing ports (vpermb and vpermi2b: port 5 on Intel; on Zen 5
  // the FMA pipes are the dot product's).
  double dp8 = 8 * dpCycles;
  double dp8permb8 = mix(besideDp<I>(
      reps, [](I x, I b, I) { return _mm512_permutexvar_epi8(x, b); }));
  double dp8permi2b8 = mix(besideDp<I>(
      reps, [](I x, I b, I c) { return _mm512_permutex2var_epi8(b, x, c); }));
  double dp8affine8 = mix(besideDp<I>(reps, [](I x, I b, I) {
    return _mm512_gf2p8affine_epi64_epi8(x, b, 0);
  }));
  double dp8fma8 =
      mix(besideDp<F>(reps, [](F f, I b, I c) { return fma(f, b, c); }));
  const dsrt::cpu::KernelSet &ks = dsrt::cpu::activeKernels();
  double normal = ks.fp8ToBf16 ? convertRate(ks, false, reps) : 0.0;
  double zeros = ks.fp8ToBf16 ? convertRate(ks, true, reps) : 0.0;
  std::printf(
      "{\"isa\": \"%s\", \"ghz\": %.2f, \"cycles\": {\"vfmadd231ps\": %.2f, "
      "\"vdpbf16ps\": %.2f, \"vpermi2b\": %.2f, \"vpermb\": %.2f, "
      "\"vpunpcklbw\": %.2f, \"vgf2p8affineqb\": %.2f, "
      "\"8_vdpbf16ps\": %.2f, \"8_vdpbf16ps_8_vpermb\": %.2f, "
      "\"8_vdpbf16ps_8_vpermi2b\": %.2f, "
      "\"8_vdpbf16ps_8_vgf2p8affineqb\": %.2f, "
      "\"8_vdpbf16ps_8_vfmadd231ps\": %.2f}, "
      "\"latency\": {\"vfmadd231ps\": %.2f, \"vdpbf16ps\": %.2f}, "
      "\"fp8_to_bf16_gbps_normal_groups\": %.2f, "
      "\"fp8_to_bf16_gbps_a_zero_in_each_group\": %.2f}\n",
      dsrt::cpu::isaName(dsrt::cpu::activeIsa()), 1e-9 / cycle, fmaCycles,
      dpCycles, permi2b, permb, unpack, affine, dp8, dp8permb8, dp8permi2b8,
      dp8affine8, dp8fma8, fmaLatency, dpLatency, normal, zeros);
  return 0;
}

#else
int dsbench::portBench(int) {
  std::fprintf(stderr, "ds-cpu-bench ports: x86-64 only\n");
  return 1;
}
#endif
