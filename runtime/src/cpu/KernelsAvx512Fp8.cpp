//===- KernelsAvx512Fp8.cpp - FP8 weights through the bf16 dot product ----===//
//
// Compiled with the avx512bf16 flags plus -mavx512vbmi and -mgfni (runtime/
// src/engine.cmake) and only called when the CPU has VBMI (Isa.cpp); the
// GFNI instructions only where the CPU has GFNI too (cpuHasGfni).
//
// Every e4m3 value, its subnormals included (the smallest is 2^-9), is a
// normal bf16: so an e4m3 byte becomes its exact bf16 by table lookup, and
// the weights go into vdpbf16ps as bf16 weights do (vdpbf16ps reads bf16
// denormals as zero, which is why e4m3 bits shifted into a bf16's place
// would lose the subnormals). The 128 magnitudes' bf16 high and low bytes
// are two 128-byte tables, each looked up by one vpermi2b (its index is the
// byte's low 7 bits); the sign goes into the high byte, and an unpack
// interleaves low and high bytes into 16-bit lanes. The unpack works within
// 128-bit lanes, so its results do not hold k in order. The dot products
// take x in that order instead (orderFp8Pairs, once per row of x): a
// permute per 64 weights saved. The prefill's packing (fp8ToBf16) permutes
// the bytes first (vpermb), so that its panels keep the bf16 tiles' layout.
// e4m3's NaN (0x7f, 0xff) becomes a bf16 NaN.
//
// The 128-wide block scale multiplies each block's partial sums (f32) once,
// as in the f32 kernels: the products of bf16 weights and bf16 activations
// are exact in f32, so this path differs from the f32 one only by the
// activations' rounding to bf16 (Gemv.cpp gemvInput, TileGemm.cpp pack).
//
//===----------------------------------------------------------------------===//
#include "cpu/Kernels.h"
#include "cpu/KernelsInline.h"

#if defined(__x86_64__)
#include <algorithm>
#include <immintrin.h>
#include <utility>

using namespace dsrt::cpu;

namespace {

constexpr int kMr = 12; // as KernelsAvx512.cpp's tiles

/// The bf16 bits of the e4m3 magnitude v (0..127).
constexpr uint16_t bf16OfE4m3(int v) {
  int e = v >> 3, m = v & 7;
  if (v == 0x7f)
    return 0x7fc0; // NaN
  // Normal: (1 + m/8) 2^(e-7), a bf16 exponent of e - 7 + 127.
  if (e)
    return uint16_t(((e + 120) << 7) | (m << 4));
  if (!m)
    return 0;
  int p = m >= 4 ? 2 : m >= 2 ? 1 : 0; // m 2^-9 = (m / 2^p) 2^(p-9)
  return uint16_t(((118 + p) << 7) | ((m << (7 - p)) & 0x7f));
}

struct Tables {
  alignas(64) uint8_t lo[128];
  alignas(64) uint8_t hi[128];
  /// Byte i of the permuted input is byte order[i] of the weights: after
  /// the unpacks, 16-bit lane j of the first result is weight j and of the
  /// second weight 32 + j.
  alignas(64) uint8_t order[64];
};

constexpr Tables makeTables() {
  Tables t{};
  for (int v = 0; v < 128; ++v) {
    t.lo[v] = uint8_t(bf16OfE4m3(v) & 0xff);
    t.hi[v] = uint8_t(bf16OfE4m3(v) >> 8);
  }
  for (int lane = 0; lane < 4; ++lane)
    for (int m = 0; m < 8; ++m) {
      t.order[16 * lane + m] = uint8_t(8 * lane + m);
      t.order[16 * lane + 8 + m] = uint8_t(32 + 8 * lane + m);
    }
  return t;
}

constexpr Tables kTables = makeTables();

/// GF(2) affine maps (vgf2p8affineqb) giving a normal e4m3 byte's bf16
/// high and low bytes. For exponent e in 1..15 the bf16 exponent is e + 120:
/// its bits are e's top bit, then that bit inverted four times, then e's
/// other three bits, so both bytes are affine in the byte's bits (sign to
/// bit 15; e's low bit and the mantissa to the low byte's top four bits).
/// Row i of a map (output bit i's input bits) is byte 7 - i of its qword.
constexpr uint64_t affineRows(const uint8_t (&rows)[8]) {
  uint64_t q = 0;
  for (int i = 0; i < 8; ++i)
    q |= uint64_t(rows[i]) << (8 * (7 - i));
  return q;
}
constexpr uint8_t kHiRows[8] = {1 << 4, 1 << 5, 1 << 6, 1 << 6,
                                1 << 6, 1 << 6, 1 << 6, 1 << 7};
constexpr uint8_t kHiFlip = 0x3C; // the inverted copies of e's top bit
constexpr uint8_t kLoRows[8] = {0, 0, 0, 0, 1 << 0, 1 << 1, 1 << 2, 1 << 3};

/// Whether the CPU has GFNI (every AVX512-VBMI CPU since Ice Lake does).
bool cpuHasGfni() {
  static const bool has = __builtin_cpu_supports("gfni");
  return has;
}

/// The lookup's constants, loaded once per kernel call.
struct Fp8Bf16 {
  __m512i lo0, lo1, hi0, hi1, order, sign, hiMap, loMap, oneByte, rareCodes;
  bool gfni;
  Fp8Bf16()
      : lo0(_mm512_load_si512(kTables.lo)),
        lo1(_mm512_load_si512(kTables.lo + 64)),
        hi0(_mm512_load_si512(kTables.hi)),
        hi1(_mm512_load_si512(kTables.hi + 64)),
        order(_mm512_load_si512(kTables.order)),
        sign(_mm512_set1_epi8(char(0x80))),
        hiMap(_mm512_set1_epi64(int64_t(affineRows(kHiRows)))),
        loMap(_mm512_set1_epi64(int64_t(affineRows(kLoRows)))),
        oneByte(_mm512_set1_epi8(1)), rareCodes(_mm512_set1_epi8(0x70)),
        gfni(cpuHasGfni()) {}

  /// 64 e4m3 bytes as bf16 in the lookup's own order (orderFp8Pairs):
  /// 16-bit lane j of a is byte 16 (j / 8) + j % 8, of b byte 16 (j / 8) +
  /// 8 + j % 8 (the unpacks work within 128-bit lanes). Where the CPU has
  /// GFNI and no byte is zero, subnormal (exponent 0) or NaN, two affine
  /// maps give the same bits as the table lookups at fewer shuffle-port
  /// operations (two vpermi2b took 4 of the lookup's 6 port-5 cycles).
  ///
  /// Those codes are found as the bytes b with (b + 1) & 0x70 zero: 0x7f
  /// and 0xff (NaN) wrap to 0x80 and 0, exponent 0 goes to 1-8 (sign
  /// kept), and only exponent 1 with mantissa 0-6 comes along, exact on
  /// either path. Two operations where the exact test took three and a
  /// mask OR; with the affine path laid out as the fall-through, FP8's
  /// GEMV ran 1.2x faster from L2 on Zen 5, whose front end the old
  /// form's taken branches held (bench/RESULTS.md, "forty-eighth
  /// session").
  inline void convert(__m512i v, __m512i &a, __m512i &b) const {
    __m512i l, h;
    if (__builtin_expect(gfni && !_mm512_testn_epi8_mask(
                                     _mm512_add_epi8(v, oneByte), rareCodes),
                         1)) {
      l = _mm512_gf2p8affine_epi64_epi8(v, loMap, 0);
      h = _mm512_gf2p8affine_epi64_epi8(v, hiMap, kHiFlip);
    } else {
      l = _mm512_permutex2var_epi8(lo0, v, lo1);
      h = _mm512_permutex2var_epi8(hi0, v, hi1);
      h = _mm512_ternarylogic_epi32(h, v, sign, 0xF8); // h | (v & sign)
    }
    a = _mm512_unpacklo_epi8(l, h);
    b = _mm512_unpackhi_epi8(l, h);
  }

  /// The same with weights [0, 32) into a, [32, 64) into b, in order.
  inline void convertInOrder(__m512i bytes, __m512i &a, __m512i &b) const {
    convert(_mm512_permutexvar_epi8(order, bytes), a, b);
  }
};

inline __mmask64 byteMask(int64_t n) {
  return n >= 64 ? ~__mmask64(0) : (__mmask64(1) << n) - 1;
}

void fp8ToBf16(const uint8_t *src, int64_t ld, int64_t rows, int64_t n,
               uint16_t *dst, int64_t ldDst) {
  // The constants once for every row, whole blocks of 64 unmasked: the
  // rows' loads then overlap (they come from memory in prefill's chunks).
  Fp8Bf16 cv;
  const int64_t whole = n / 64 * 64, left = n - whole;
  const __mmask32 ma = left >= 32 ? ~__mmask32(0) : (__mmask32(1) << left) - 1;
  const __mmask32 mb =
      left <= 32 ? __mmask32(0) : (__mmask32(1) << (left - 32)) - 1;
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t *s = src + r * ld;
    uint16_t *d = dst + r * ldDst;
    __m512i a, b;
    for (int64_t i = 0; i < whole; i += 64) {
      cv.convertInOrder(_mm512_loadu_si512(s + i), a, b);
      _mm512_storeu_si512(d + i, a);
      _mm512_storeu_si512(d + i + 32, b);
    }
    if (left) {
      cv.convertInOrder(_mm512_maskz_loadu_epi8(byteMask(left), s + whole), a,
                        b);
      _mm512_mask_storeu_epi16(d + whole, ma, a);
      _mm512_mask_storeu_epi16(d + whole + 32, mb, b);
    }
  }
}

/// c[i * kPanel + t] += scales[i] * sum_j w-pair j of row i . xb-pair
/// (j, t), over panel rows [0, 8 Q) (Q = 4: tileFp8): tileBf16 over one
/// scale block, its sums scaled once.
template <int Q>
void tileFp8Rows(const uint16_t *w, int64_t ldw, const float *scales,
                 const uint16_t *xb, int64_t kp, float *c,
                 const TilePrefetch *pf) {
  PrefetchCursor next(pf);
  if constexpr (Q == 3) {
    // As tileBf16Rows takes its partial tiles.
    tileFp8Rows<2>(w, ldw, scales, xb, kp, c, pf);
    tileFp8Rows<1>(w, ldw, scales, xb + 4 * kQuarterPanel, kp,
                   c + 2 * kQuarterPanel, nullptr);
  } else if constexpr (Q == 1) {
    PairAcc<kMr> a;
    a.zero();
    bf16PairSteps(a, w, ldw, xb, kp, next);
    a.scaleInto(scales, c);
  } else {
    TileAcc<kMr, Q> a;
    a.zero();
    bf16TileSteps(a, w, ldw, xb, kp, next);
    a.scaleInto(scales, c);
  }
}

/// The FP8 dot products of one weight row with R rows of x (ldxb apart, in
/// orderFp8Pairs' order, zero to a multiple of 64), as 16 lanes each. One
/// 128-column block at a time: its weights are looked up once for all R
/// rows, then each row's two partial sums (a lookup's two halves, so one
/// row (decode) is not bound by vdpbf16ps's latency) are added and scaled
/// once. Only the R accumulators live across rows, so R may reach 16
/// (gemvFp8PairsRows) without spilling. The tail's weights are masked to
/// zero (the row's padding in the file may hold anything), against x's
/// zeros.
template <int R>
inline void rowSums(const Fp8Bf16 &cv, const uint8_t *w, const float *scales,
                    const uint16_t *xb, int64_t ldxb, int64_t k, __m512 *out) {
#pragma unroll
  for (int t = 0; t < R; ++t)
    out[t] = _mm512_setzero_ps();
  // Every row's sums over one block whose two 64-weight halves are (a0,
  // b0) and, where `two`, (a1, b1).
  auto block = [&](const uint16_t *xp, __m512i a0, __m512i b0, __m512i a1,
                   __m512i b1, bool two, float scale) {
    __m512 s = _mm512_set1_ps(scale);
#pragma unroll
    for (int t = 0; t < R; ++t) {
      const uint16_t *x = xp + t * ldxb;
      __m512 p0 = _mm512_dpbf16_ps(_mm512_setzero_ps(), (__m512bh)a0,
                                   (__m512bh)_mm512_loadu_si512(x));
      __m512 p1 = _mm512_dpbf16_ps(_mm512_setzero_ps(), (__m512bh)b0,
                                   (__m512bh)_mm512_loadu_si512(x + 32));
      if (two) {
        p0 = _mm512_dpbf16_ps(p0, (__m512bh)a1,
                              (__m512bh)_mm512_loadu_si512(x + 64));
        p1 = _mm512_dpbf16_ps(p1, (__m512bh)b1,
                              (__m512bh)_mm512_loadu_si512(x + 96));
      }
      out[t] = _mm512_fmadd_ps(_mm512_add_ps(p0, p1), s, out[t]);
    }
  };
  // The whole blocks in a loop of their own: no per-block bounds.
  int64_t whole = k / kScaleBlock;
  const uint8_t *wp = w;
  const uint16_t *xp = xb;
  for (int64_t blk = 0; blk < whole;
       ++blk, wp += kScaleBlock, xp += kScaleBlock) {
    // Each line's prefetches go out after its conversion, not all four
    // with both loads at the block's start: on an Emerald Rapids VM the
    // FP8 GEMV then streamed 24.7-25.8 GB/s where it had 19.7-21.9 (read
    // stream 29-33), and V3-width FP8 decode ran 36.9-37.1 tok/s against
    // 30.2-30.4 (bench/RESULTS.md, "forty-third session"). The same
    // prefetches through a jump table at the block's start measured as
    // the spread ones do, so it is their bunching that cost, not their
    // distance or hint (the VM exposes no counters to say more).
    __m512i a0, b0, a1, b1;
    cv.convert(_mm512_loadu_si512(wp), a0, b0);
    prefetchFp8Ahead(wp);
    cv.convert(_mm512_loadu_si512(wp + 64), a1, b1);
    prefetchFp8Ahead(wp + 64);
    block(xp, a0, b0, a1, b1, true, scales[blk]);
  }
  if (int64_t left = k - whole * kScaleBlock) {
    __m512i a0, b0, a1 = _mm512_setzero_si512(), b1 = _mm512_setzero_si512();
    cv.convert(_mm512_maskz_loadu_epi8(byteMask(left), wp), a0, b0);
    if (left > 64)
      cv.convert(_mm512_maskz_loadu_epi8(byteMask(left - 64), wp + 64), a1, b1);
    block(xp, a0, b0, a1, b1, left > 64, scales[whole]);
  }
}

/// The upper 256 bits of v.
inline __m256 upper256(__m512 v) {
  return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
}

/// The sum of v's lanes, paired as reduceRows pairs them: lane i with
/// i + 8, then i + 4, i + 2 and i + 1.
inline float laneSum(__m512 v) {
  __m256 t8 = _mm256_add_ps(_mm512_castps512_ps256(v), upper256(v));
  __m128 t4 =
      _mm_add_ps(_mm256_castps256_ps128(t8), _mm256_extractf128_ps(t8, 1));
  __m128 t2 = _mm_add_ps(t4, _mm_movehl_ps(t4, t4));
  return _mm_cvtss_f32(_mm_add_ss(t2, _mm_movehdup_ps(t2)));
}

/// y[r] = laneSum(v[r]) for r < m (<= 16), bit for bit (the same pairs
/// added), for 16 rows at once: a transpose whose every step adds, about
/// 3 operations a row where a lone laneSum takes 7. With the 256-byte
/// rows of small expert products, the lone sums were ~15% of a row.
inline void reduceRows(const __m512 *v, int m, float *y) {
  __m512 s1[8], s2[4], s3[2];
  // Lane i + lane i + 8: rows 2p and 2p + 1 in one vector, 8 lanes each.
#pragma unroll
  for (int p = 0; p < 8; ++p)
    s1[p] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * p], v[2 * p + 1], 0x44),
                          _mm512_shuffle_f32x4(v[2 * p], v[2 * p + 1], 0xEE));
    // + lane i + 4: 128-bit lane q holds row 4p + q.
#pragma unroll
  for (int p = 0; p < 4; ++p)
    s2[p] = _mm512_add_ps(_mm512_shuffle_f32x4(s1[2 * p], s1[2 * p + 1], 0x88),
                          _mm512_shuffle_f32x4(s1[2 * p], s1[2 * p + 1], 0xDD));
    // + lane i + 2: lane q holds rows 8p + q and 8p + 4 + q, 2 values each.
#pragma unroll
  for (int p = 0; p < 2; ++p)
    s3[p] = _mm512_add_ps(_mm512_shuffle_ps(s2[2 * p], s2[2 * p + 1], 0x44),
                          _mm512_shuffle_ps(s2[2 * p], s2[2 * p + 1], 0xEE));
  // + lane i + 1: element c of 128-bit lane q is row q + 4 c.
  __m512 s4 = _mm512_add_ps(_mm512_shuffle_ps(s3[0], s3[1], 0x88),
                            _mm512_shuffle_ps(s3[0], s3[1], 0xDD));
  const __m512i rows =
      _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  _mm512_mask_storeu_ps(y, __mmask16((1u << m) - 1),
                        _mm512_permutexvar_ps(rows, s4));
}

/// Row after row (not interleaved: see KernelsAvx2.cpp's gemvF32), each
/// one's arithmetic that of runFp8PairsRows<1>, 16 rows' sums reduced
/// together. The lookup tables stay in registers across the call, and the
/// rows' address and scales come without the per-row division of
/// WeightMatrix::row / scaleRow: with the 1 KiB rows of a 1024-wide model,
/// those per-row costs were as much as the row's conversion.
void gemvFp8Pairs(const uint8_t *w, int64_t ldw, int64_t n, const float *scales,
                  const uint16_t *xb, int64_t k, float *y) {
  Fp8Bf16 cv;
  __m512 sums[16];
  for (int64_t j0 = 0; j0 < n; j0 += 16) {
    int m = n - j0 < 16 ? int(n - j0) : 16;
    for (int r = 0; r < m; ++r, w += ldw)
      rowSums<1>(cv, w, scales, xb, 0, k, &sums[r]);
    for (int r = m; r < 16; ++r)
      sums[r] = _mm512_setzero_ps();
    reduceRows(sums, m, y + j0);
  }
}

/// R rows of x over a run of n weight rows (ldw apart, one scale row):
/// each weight row's rowSums<R>, its rows' lanes summed by laneSum or,
/// past kMaxDotRows, all together by reduceRows (laneSum's pairs), so each
/// sum is the same bit for bit whatever R and n (dotFp8Pairs is this
/// kernel over one weight row). Each weight block is looked up once for
/// all R rows: 4 rows at a time, a batch of 16 decode rows looked each
/// weight up four times, and the lookups bound the product. The lookup
/// tables, the rows' addresses and scales come once a call: called a
/// weight row at a time, those per-row costs were as much as a 1 KiB row's
/// conversion (as gemvFp8Pairs found for one row), and a batch's experts
/// get a few rows of x each (B = 16: 16.0-16.1 ms a step against
/// 16.4-16.7).
template <int R>
void runFp8PairsRows(const uint8_t *w, int64_t ldw, int64_t n,
                     const float *scales, const uint16_t *xb, int64_t ldxb,
                     int64_t k, float *y, int64_t ldy) {
  static_assert(R >= 1 && R <= 16, "reduceRows sums up to 16 rows");
  Fp8Bf16 cv;
  for (int64_t j = 0; j < n; ++j, w += ldw) {
    __m512 acc[16];
    if constexpr (R > kMaxDotRows)
      for (int t = R; t < 16; ++t) // zero for reduceRows
        acc[t] = _mm512_setzero_ps();
    rowSums<R>(cv, w, scales, xb, ldxb, k, acc);
    if constexpr (R <= kMaxDotRows) {
      // A few rows: their lone sums cost less than a 16-row transpose.
#pragma unroll
      for (int t = 0; t < R; ++t)
        y[t * ldy + j] = laneSum(acc[t]);
    } else {
      float out[16];
      reduceRows(acc, R, out);
#pragma unroll
      for (int t = 0; t < R; ++t)
        y[t * ldy + j] = out[t];
    }
  }
}

template <int... R>
void runFp8PairsDispatch(std::integer_sequence<int, R...>, const uint8_t *w,
                         int64_t ldw, int64_t n, const float *scales,
                         const uint16_t *xb, int64_t ldxb, int rows, int64_t k,
                         float *y, int64_t ldy) {
  (void)((rows == R + 1 &&
          (runFp8PairsRows<R + 1>(w, ldw, n, scales, xb, ldxb, k, y, ldy),
           true)) ||
         ...);
}

/// KernelSet::gemvFp8PairsRows.
void gemvFp8PairsRows(const uint8_t *w, int64_t ldw, int64_t n,
                      const float *scales, const uint16_t *xb, int64_t ldxb,
                      int rows, int64_t k, float *y, int64_t ldy) {
  runFp8PairsDispatch(std::make_integer_sequence<int, kMaxManyRows>(), w, ldw,
                      n, scales, xb, ldxb, rows, k, y, ldy);
}

/// 64 bf16 activations at a time into the order Fp8Bf16::convert leaves
/// the weights in (n a multiple of 64): value j of the first 32 is
/// 16 (j / 8) + j % 8, of the second 16 (j / 8) + 8 + j % 8. Done once per
/// x row, it saves the weights' byte permute in every row's conversion.
void orderFp8Pairs(uint16_t *xb, int64_t n) {
  alignas(64) static constexpr uint16_t kFirst[32] = {
      0,  1,  2,  3,  4,  5,  6,  7,  16, 17, 18, 19, 20, 21, 22, 23,
      32, 33, 34, 35, 36, 37, 38, 39, 48, 49, 50, 51, 52, 53, 54, 55};
  __m512i first = _mm512_load_si512(kFirst);
  __m512i second = _mm512_add_epi16(first, _mm512_set1_epi16(8));
  for (int64_t i = 0; i < n; i += 64) {
    __m512i lo = _mm512_loadu_si512(xb + i),
            hi = _mm512_loadu_si512(xb + i + 32);
    _mm512_storeu_si512(xb + i, _mm512_permutex2var_epi16(lo, first, hi));
    _mm512_storeu_si512(xb + i + 32, _mm512_permutex2var_epi16(lo, second, hi));
  }
}

/// 64 e4m3 bytes' exact f32 values: f[j]'s 128-bit lane L holds those of
/// bytes 16 L + 4 j to 16 L + 4 j + 3 (the bf16 words widened in place).
inline void convertF32(const Fp8Bf16 &cv, __m512i bytes, __m512 f[4]) {
  __m512i a, b, z = _mm512_setzero_si512();
  cv.convert(bytes, a, b);
  f[0] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(z, a));
  f[1] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(z, a));
  f[2] = _mm512_castsi512_ps(_mm512_unpacklo_epi16(z, b));
  f[3] = _mm512_castsi512_ps(_mm512_unpackhi_epi16(z, b));
}

/// Columns [c0, c0 + width) of combineFp8Rows, width <= 128 G: G scale
/// blocks a pass over the rows, 4 G accumulators for each 64 columns.
/// `first`: the columns of a call's first pass (the next head's, fetched
/// during the last pass).
template <int G>
void combineFp8Pass(const Fp8Bf16 &cv, const void *const *rows,
                    const float *const *scaleRows, const float *x, int64_t k,
                    int64_t n, int64_t ahead, int64_t first, int64_t c0,
                    int64_t width, float *out) {
  __mmask64 mask[2 * G];
#pragma unroll
  for (int h = 0; h < 2 * G; ++h)
    mask[h] = width > 64 * h ? byteMask(width - 64 * h) : __mmask64(0);
  __m512 acc[8 * G];
#pragma unroll
  for (int j = 0; j < 8 * G; ++j)
    acc[j] = _mm512_setzero_ps();
  const bool last = c0 + width >= n;
  const int64_t pass = G * kScaleBlock;
  for (int64_t i = 0; i < k; ++i) {
    const uint8_t *r = static_cast<const uint8_t *>(rows[i]) + c0;
    prefetchCombineRow(rows, i, k, ahead, 1, c0, width, last, first);
    // The row's next columns, which the next pass reads: the passes walk
    // the rows at a stride the prefetchers follow only for the first.
    for (int64_t l = 0; l < pass && c0 + pass + l < n; l += 64)
      _mm_prefetch(reinterpret_cast<const char *>(r) + pass + l, _MM_HINT_T0);
    __m512 xi = _mm512_set1_ps(x[i]);
#pragma unroll
    for (int g = 0; g < G; ++g) {
      __m512 s = _mm512_set1_ps(scaleRows[i][c0 / kScaleBlock + g]);
#pragma unroll
      for (int h = 2 * g; h < 2 * g + 2; ++h) {
        if (!mask[h])
          continue;
        __m512 f[4];
        convertF32(cv, _mm512_maskz_loadu_epi8(mask[h], r + 64 * h), f);
#pragma unroll
        for (int j = 0; j < 4; ++j)
          acc[4 * h + j] =
              _mm512_fmadd_ps(xi, _mm512_mul_ps(f[j], s), acc[4 * h + j]);
      }
    }
  }
  // Column 64 h + 16 L + 4 j + e is acc[4 h + j]'s lane L, element e.
  alignas(64) float block[G * kScaleBlock];
#pragma unroll
  for (int h = 0; h < 2 * G; ++h)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      __m512 v = acc[4 * h + j];
      float *d = block + 64 * h + 4 * j;
      _mm_store_ps(d, _mm512_castps512_ps128(v));
      _mm_store_ps(d + 16, _mm512_extractf32x4_ps(v, 1));
      _mm_store_ps(d + 32, _mm512_extractf32x4_ps(v, 2));
      _mm_store_ps(d + 48, _mm512_extractf32x4_ps(v, 3));
    }
  for (int64_t c = 0; c < width; c += 16) {
    __mmask16 m = width - c >= 16 ? __mmask16(0xFFFF)
                                  : __mmask16((1u << (width - c)) - 1);
    _mm512_mask_storeu_ps(out + c0 + c, m, _mm512_load_ps(block + c));
  }
}

/// KernelSet::combineFp8Rows. Per weight, as combineRowsAvx2: the value
/// times its block's scale rounded to f32, then one fused add of x[i]
/// times it per row, rows in order. 256 columns (16 accumulators, two
/// scales per row) a pass over the rows, the last 128 or fewer in a pass
/// of their own; columns past n are loaded as zeros and not stored. The
/// lookup's lane order is undone at the store.
void combineFp8Rows(const void *const *rows, const float *const *scaleRows,
                    const float *x, int64_t k, int64_t n, int64_t ahead,
                    float *out) {
  Fp8Bf16 cv;
  const int64_t first =
      n > kScaleBlock ? std::min<int64_t>(n, 2 * kScaleBlock) : n;
  int64_t c0 = 0;
  for (; n - c0 > kScaleBlock; c0 += 2 * kScaleBlock)
    combineFp8Pass<2>(cv, rows, scaleRows, x, k, n, ahead, first, c0,
                      std::min<int64_t>(n - c0, 2 * kScaleBlock), out);
  for (; c0 < n; c0 += kScaleBlock)
    combineFp8Pass<1>(cv, rows, scaleRows, x, k, n, ahead, first, c0,
                      std::min<int64_t>(n - c0, kScaleBlock), out);
}

void dotFp8Pairs(const uint8_t *w, const float *scales, const uint16_t *xb,
                 int64_t ldxb, int rows, int64_t k, float *out) {
  gemvFp8PairsRows(w, 0, 1, scales, xb, ldxb, rows, k, out, 1);
}

} // namespace

const KernelSet &dsrt::cpu::avx512VbmiKernels() {
  static const KernelSet set = [] {
    KernelSet s = avx512Bf16Kernels();
    s.isa = Isa::Avx512Vbmi;
    s.fp8ToBf16 = fp8ToBf16;
    s.tileFp8 = tileFp8Rows<4>;
    s.tileFp8Part[0] = tileFp8Rows<1>;
    s.tileFp8Part[1] = tileFp8Rows<2>;
    s.tileFp8Part[2] = tileFp8Rows<3>;
    s.dotFp8Pairs = dotFp8Pairs;
    s.gemvFp8Pairs = gemvFp8Pairs;
    s.gemvFp8PairsRows = gemvFp8PairsRows;
    s.orderFp8Pairs = orderFp8Pairs;
    s.combineFp8Rows = combineFp8Rows;
    return s;
  }();
  return set;
}

#else
const dsrt::cpu::KernelSet &dsrt::cpu::avx512VbmiKernels() {
  return scalarKernels();
}
#endif
