//===- LatentAttend.h - decode's absorbed attention over the cache -*- C++
//-*-===//
//
// ds.latent_attention on the CPU path over the contiguous f32 latent cache
// (decode): every head of a token scores each cache row in the latent
// space and sums the rows' latents weighted by the softmax. The generated
// loop nest ran it as an online softmax, one row at a time (an expf call
// and a rescale of every head's output per row), split over the pool in two
// halves of the heads, so a late second thread held the step for half the
// attention. Here the rows are split into fixed blocks: per (token, block)
// all heads' scores come at once (each row read once for every head), a
// vector exp runs over the block, and the block's weighted
// sum, its max and its sum are kept apart; the blocks then merge in block
// order. The blocks do not depend on the thread count, so neither does the
// result. A block's products run as register tiles (AVX-512, AVX2; loops
// on `scalar`): several rows and heads per loaded value.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_CPU_LATENTATTEND_H
#define DSRT_CPU_LATENTATTEND_H

#include "cpu/Isa.h"
#include "cpu/MemRef.h"

#include <cstdint>
#include <string>

namespace dsrt::cpu {

/// Cache rows per block (a task of the pool's split).
constexpr int64_t kLatentBlock = 32;

/// Heads a row of the transposed queries holds: a multiple of this.
constexpr int64_t kLatentHeadAlign = 8;

/// Bytes of a cache line, the unit of the rows' prefetches.
constexpr int64_t kLineBytes = 64;

/// Lines [first, last) of the next block's rows (n rows of `lines` cache
/// lines each, in row order; line l of row i at rows[i] + l * kLineBytes,
/// byte addresses) for a block kernel to request while it computes, a few
/// per register tile. A decode step's cache rows come from memory, and
/// requesting a block's 500-odd lines at once held the loads behind them
/// until they arrived: computing and fetching did not overlap.
struct LatentPrefetch {
  const uint8_t *const *rows = nullptr;
  int64_t lines = 0, first = 0, last = 0;
};

/// Requests a LatentPrefetch's lines a few per call of step(), spread over
/// `steps` calls (the register tiles a block kernel runs), so that the
/// loads it computes on are never queued behind a burst of them.
struct LatentFeed {
  const LatentPrefetch *pf;
  int64_t line, last, per;
  LatentFeed(const LatentPrefetch *p, int64_t steps)
      : pf(p), line(p ? p->first : 0), last(p ? p->last : 0),
        per(steps > 0 ? (last - line + steps - 1) / steps : 0) {}
  void step() {
    int64_t e = line + per < last ? line + per : last;
    for (; line < e; ++line)
      __builtin_prefetch(
          pf->rows[line / pf->lines] + line % pf->lines * kLineBytes, 0, 3);
  }
  /// Whatever the steps left.
  void finish() {
    per = last - line;
    step();
  }
};

/// A block's two products per ISA (raw pointers only, as Kernels.h's
/// sets): rows[i] is the block's row i (width values: dc latent, then rope);
/// `next` (may be null) is what to prefetch meanwhile.
struct LatentBlockKernels {
  /// s[i * ldq + h] = scale * sum_k qT[k * ldq + h] * rows[i][k], i < n,
  /// k < width, h < ldq: the queries transposed (column k of every head's
  /// query is one row of ldq >= heads values, a multiple of
  /// kLatentHeadAlign, zero past heads, so s is too), so that the heads are
  /// the vector lanes and each row value loaded feeds all of them; s keeps
  /// them so (a row's heads side by side), and the block's softmax runs on
  /// whole rows of heads. s: kLatentBlock * ldq floats.
  void (*scores)(const float *qT, int64_t ldq, int64_t heads, int64_t width,
                 const float *const *rows, int64_t n, float scale, float *s,
                 const LatentPrefetch *next);
  /// acc[h * dc + c] = sum over i < n of p[i * ldp + h] * rows[i][c],
  /// h < heads, c < dc (p in scores' layout).
  void (*weightedRows)(const float *p, int64_t ldp, int64_t heads,
                       const float *const *rows, int64_t n, int64_t dc,
                       float *acc, const LatentPrefetch *next);
};

/// The path for `isa`: AVX-512's from AVX512F up, AVX2's register tiles
/// from AVX2, loops below.
const LatentBlockKernels &latentBlockKernelsFor(Isa isa);
const LatentBlockKernels &scalarLatentBlockKernels();
#if defined(__x86_64__)
const LatentBlockKernels &avx2LatentBlockKernels();
const LatentBlockKernels &avx512LatentBlockKernels();
#endif

/// out[t, h, :] = softmax_r(scale * (qLatent[t, h] . latent_r + qRope[t, h]
/// . rope_r)) weighted sum of latent_r, over the rows r <= positions[t] of
/// cache[layer] (a row is dc latent values, then dr rope values):
///   qLatent [T, H, dc], qRope [T, H, dr], out [T, H, dc] (any strides but
///   unit columns); cache [layers, capacity, dc + dr] (unit columns).
/// Returns "" or a one-line description of what is inconsistent (then
/// nothing is written).
std::string latentAttendDecode(Isa isa, const MemRef<float, 3> &qLatent,
                               const MemRef<float, 3> &qRope,
                               const MemRef<float, 3> &cache,
                               const MemRef<int32_t, 1> &positions,
                               const MemRef<float, 3> &out, int64_t layer,
                               float scale);

/// latentAttendDecode over the paged cache of a ragged step: token t
/// belongs to sequence s, the last with queryStart[s] <= t (queryStart
/// [S + 1]), and its row r is cache[layer, blockTables[s, r / pageSize],
/// r % pageSize] (cache [layers, pages, pageSize, dc + dr]). The tokens of a
/// sequence with naiveMinTokens or more new tokens (naiveMinTokens >= 0)
/// are the naive form's: their rows of `out` are not written (the op leaves
/// them unspecified; ds.paged_naive_attention replaces them).
std::string pagedLatentAttendDecode(
    Isa isa, const MemRef<float, 3> &qLatent, const MemRef<float, 3> &qRope,
    const MemRef<float, 4> &cache, const MemRef<int32_t, 1> &positions,
    const MemRef<int32_t, 1> &queryStart, const MemRef<int32_t, 2> &blockTables,
    const MemRef<float, 3> &out, int64_t layer, int64_t pageSize,
    int64_t naiveMinTokens, float scale);

/// The same over a bf16 cache (rows of dc + dr bf16 values) and over
/// FlashMLA's FP8 layout (the compiler's CacheLayout: dc e4m3 bytes, one
/// f32 scale per `group` of them, then dr bf16 rope values; the cache is
/// its bytes). A block's rows are decoded once into f32 for all heads, as
/// the generated kernels' rows are (KernelSet::decodeFp8 / decodeBf16,
/// the same values), then run the f32 cache's kernels: for a cache holding
/// the decoded values the results are the f32 path's bit for bit.
std::string latentAttendDecode(Isa isa, const MemRef<float, 3> &qLatent,
                               const MemRef<float, 3> &qRope,
                               const MemRef<uint16_t, 3> &cache,
                               const MemRef<int32_t, 1> &positions,
                               const MemRef<float, 3> &out, int64_t layer,
                               float scale);
std::string latentAttendDecodeFp8(Isa isa, const MemRef<float, 3> &qLatent,
                                  const MemRef<float, 3> &qRope,
                                  const MemRef<uint8_t, 3> &cache,
                                  int64_t group,
                                  const MemRef<int32_t, 1> &positions,
                                  const MemRef<float, 3> &out, int64_t layer,
                                  float scale);
std::string pagedLatentAttendDecode(
    Isa isa, const MemRef<float, 3> &qLatent, const MemRef<float, 3> &qRope,
    const MemRef<uint16_t, 4> &cache, const MemRef<int32_t, 1> &positions,
    const MemRef<int32_t, 1> &queryStart, const MemRef<int32_t, 2> &blockTables,
    const MemRef<float, 3> &out, int64_t layer, int64_t pageSize,
    int64_t naiveMinTokens, float scale);
std::string pagedLatentAttendDecodeFp8(
    Isa isa, const MemRef<float, 3> &qLatent, const MemRef<float, 3> &qRope,
    const MemRef<uint8_t, 4> &cache, int64_t group,
    const MemRef<int32_t, 1> &positions, const MemRef<int32_t, 1> &queryStart,
    const MemRef<int32_t, 2> &blockTables, const MemRef<float, 3> &out,
    int64_t layer, int64_t pageSize, int64_t naiveMinTokens, float scale);

} // namespace dsrt::cpu

#endif // DSRT_CPU_LATENTATTEND_H
