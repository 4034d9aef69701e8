//===- Kernels.h - the per-ISA inner loops of the GEMMs ---------*- C++ -*-===//
//
// Raw-pointer kernels, one set per instruction set, each compiled in its
// own file with that set's flags. They take nothing with inline functions
// (no STL), so no inline code compiled for AVX-512 can be picked by the
// linker for a caller on a CPU without it.
//
// GEMM tiles read x packed in panels of kPanel rows, transposed: panel p
// holds x[p*kPanel + t][k] at xp[k * kPanel + t] (f32), or for the bf16 dot
// product pairs (x[t][2j], x[t][2j+1]) at xb[(j * kPanel + t) * 2]. The
// weight rows come at a stride of ldw elements (TileGemm.cpp hands them in
// an L1 tile).
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_CPU_KERNELS_H
#define DSRT_CPU_KERNELS_H

#include "cpu/Isa.h"

#include <cstdint>

namespace dsrt::cpu {

/// x rows per GEMM panel (the tile's width in activations).
constexpr int kPanel = 32;
/// Token rows of a quarter of a panel: the granularity of the partial tiles
/// (KernelSet::tileF32Part).
constexpr int kQuarterPanel = kPanel / 4;

/// K per tile pass: a 12-row f32 weight chunk (12 KiB) stays in L1 while
/// every panel of x goes by; a multiple of the FP8 block (128).
constexpr int64_t kKc = 256;
/// Row stride of the weight tile TileGemm.cpp decodes or copies rows into:
/// not a power of two, so its rows do not all fall into one L1 set
/// (in-place rows K apart often do: a 2048-wide f32 row is 8 KiB, and 12
/// of them thrash an 8-way L1 set, which is why f32 rows are copied into
/// the tile too). The tile kernels are compiled for this stride as a
/// constant beside the general one (see tileF32Rows).
constexpr int64_t kTileLd = kKc + 16;

/// Rows ahead of the one it adds that a head product (combineBf16Rows,
/// combineFp8Rows) fetches. A head's rows are a few dozen KiB (64 rows of
/// 512 bytes for the bench model's bf16 W_UK), each head started cold
/// and the prefetchers stopped at every 4 KiB page: a decode step's head
/// products read 24 GB/s, and the next head's first rows fetched during
/// this head's last ones (the `ahead` rows) keep the stream going across
/// heads (bench/RESULTS.md, "head products' rows fetched ahead").
constexpr int64_t kCombineAhead = 16;
/// Side of the FP8 scale blocks.
constexpr int64_t kScaleBlock = 128;
/// Most x rows a dot-product (GEMV) call takes at once.
constexpr int kMaxDotRows = 4;
/// Most x rows KernelSet::gemvFp8PairsRows and dotBf16PairsMany take at
/// once (MatMul.h's kGemvRows, the most the dot products see).
constexpr int kMaxManyRows = 16;
/// Row stride of bf16 activations for dotBf16Pairs: a multiple of this.
constexpr int64_t kPairsAlign = 32;
/// The same for dotFp8Pairs / gemvFp8Pairs where the set has orderFp8Pairs.
constexpr int64_t kFp8PairsAlign = 64;

/// Weight bytes a tile kernel prefetches while it computes: `rows` rows of
/// `bytes` bytes from `base`, `ld` bytes apart (the next chunk of the
/// weights, read in place; a block of experts' weights is read once per
/// prompt, so without this every chunk would wait on memory before its
/// compute starts). One cache line per step of k, into L2, or into L1
/// where `l1`: rows that are copied into a tile right after this call (a
/// copy waiting on L2 cost 5-9% of a large GEMM), not rows read in place
/// (they would evict the tile's own weights and x from L1).
struct TilePrefetch {
  const char *base = nullptr;
  int64_t ld = 0, bytes = 0;
  int rows = 0;
  bool l1 = false;
};

struct KernelSet {
  Isa isa;
  /// Weight rows per GEMM tile (the accumulators the ISA's registers hold).
  int mr;
  /// c[i * kPanel + t] += sum_k w[i * ldw + k] * xp[k * kPanel + t] for
  /// i < mr, t < kPanel, k < kc; prefetches `pf` (may be null) meanwhile.
  void (*tileF32)(const float *w, int64_t ldw, const float *xp, int64_t kc,
                  float *c, const TilePrefetch *pf);
  /// The same over bf16 weights and bf16 activation pairs, kp pairs of k
  /// (nullptr where the ISA has no bf16 dot product).
  void (*tileBf16)(const uint16_t *w, int64_t ldw, const uint16_t *xb,
                   int64_t kp, float *c, const TilePrefetch *pf);
  /// dst[i] = src[i] widened (bf16), or e4m3 * scale (FP8), i < n.
  void (*decodeBf16)(const uint16_t *src, int64_t n, float *dst);
  void (*decodeFp8)(const uint8_t *src, int64_t n, float scale, float *dst);
  /// out[t] = sum_k w[k] * x[t * ldx + k], t < rows (<= kMaxDotRows). For
  /// FP8, scales[b] scales w[b * 128, (b + 1) * 128).
  void (*dotF32)(const float *w, const float *x, int64_t ldx, int rows,
                 int64_t k, float *out);
  void (*dotBf16)(const uint16_t *w, const float *x, int64_t ldx, int rows,
                  int64_t k, float *out);
  void (*dotFp8)(const uint8_t *w, const float *scales, const float *x,
                 int64_t ldx, int rows, int64_t k, float *out);
  /// dotBf16 over activations already rounded to bf16 (xb rows at a
  /// stride of ldxb elements, zero past k up to a multiple of 32), with the
  /// ISA's bf16 dot product: products are exact in f32 and summed in f32,
  /// so this is the bf16 path of prefill's arithmetic at a quarter of the
  /// instructions of widening each weight. nullptr where the ISA has none.
  void (*dotBf16Pairs)(const uint16_t *w, const uint16_t *xb, int64_t ldxb,
                       int rows, int64_t k, float *out) = nullptr;
  /// dst[i] = src[i] rounded to bf16, nearest even (Inf kept, NaN
  /// quieted), i < n: the activations of the bf16 paths.
  void (*roundBf16)(const float *src, int64_t n, uint16_t *dst) = nullptr;
  /// FP8 through the bf16 dot product (nullptr where the ISA has no exact
  /// e4m3 -> bf16 conversion in registers): dst[r * ldDst + i] = e4m3
  /// src[r * ld + i] as bf16, exact (every e4m3 value is a normal bf16),
  /// for r < rows, i < n. All rows in one call: a call a row measured 1.8x
  /// slower on a tile chunk's 32 rows from memory (bench/RESULTS.md,
  /// "forty-second session").
  void (*fp8ToBf16)(const uint8_t *src, int64_t ld, int64_t rows, int64_t n,
                    uint16_t *dst, int64_t ldDst) = nullptr;
  /// c[i * kPanel + t] += scales[i] * (tileBf16's sum over kp pairs), for
  /// i < mr: one 128-wide scale block of FP8 rows converted to bf16;
  /// prefetches `pf` (may be null) meanwhile, a line a pair of k.
  void (*tileFp8)(const uint16_t *w, int64_t ldw, const float *scales,
                  const uint16_t *xb, int64_t kp, float *c,
                  const TilePrefetch *pf) = nullptr;
  /// dotFp8 over activations rounded to bf16 (dotBf16Pairs' layout, then,
  /// where the set has orderFp8Pairs, zero to a multiple of kFp8PairsAlign
  /// and in that order).
  void (*dotFp8Pairs)(const uint8_t *w, const float *scales, const uint16_t *xb,
                      int64_t ldxb, int rows, int64_t k, float *out) = nullptr;
  /// The same for dotBf16Pairs: each weight vector loaded once for
  /// several rows of x, with more accumulator chains than kMaxDotRows rows
  /// keep busy (the small expert groups of a batched decode step or a
  /// prefill). Bit for bit dotBf16Pairs' sums for every row. nullptr:
  /// dotBf16Pairs per kMaxDotRows rows.
  void (*dotBf16PairsMany)(const uint16_t *w, const uint16_t *xb, int64_t ldxb,
                           int rows, int64_t k, float *out) = nullptr;
  /// The order dotFp8Pairs and gemvFp8Pairs take a bf16 row of x in
  /// (nullptr: as it is): xb[0, n) permuted in place, n a multiple of
  /// kFp8PairsAlign. It is the order the set's e4m3 lookup leaves weights
  /// in, so that no weight needs permuting.
  void (*orderFp8Pairs)(uint16_t *xb, int64_t n) = nullptr;
  /// One whole panel of x rows [0, rows) (rows <= kPanel, ldx apart), k
  /// columns, in the tiles' layout (the comment above), rows past `rows`
  /// zero: f32 moved bit for bit, or rounded to bf16 as roundBf16 rounds
  /// (an odd K's last pair zero in its high half). The round, the pairing
  /// and the transpose in registers, without an intermediate buffer.
  /// nullptr: TileGemm.cpp packs with roundBf16 and an SSE transpose.
  /// `index` (may be null): row t is x + index[t] * ldx instead of
  /// x + t * ldx (the experts' rows gathered from the tokens' rows).
  void (*packF32)(const float *x, int64_t ldx, const int32_t *index,
                  int64_t rows, int64_t k, float *panel) = nullptr;
  void (*packBf16)(const float *x, int64_t ldx, const int32_t *index,
                   int64_t rows, int64_t k, uint16_t *panel) = nullptr;
  /// packF32 with each value rounded to bf16 (roundBf16's rounding) and
  /// kept as f32: the widened tiles' x (nullptr: TileGemm.cpp's transpose,
  /// then a rounding pass over the panel).
  void (*packRoundedF32)(const float *x, int64_t ldx, const int32_t *index,
                         int64_t rows, int64_t k, float *panel) = nullptr;
  /// y[t * ldy + i] = c[i * kPanel + t] for i < m (<= 16), t < rows (<=
  /// kPanel): a tile's accumulators into the rows of y, one masked store
  /// of the m values per row (nullptr: SseTranspose.cpp's 4 x 4 blocks).
  void (*storeTile)(const float *c, int64_t m, int64_t rows, float *y,
                    int64_t ldy) = nullptr;
  /// Decode's product with one row of x over n weight rows ldw elements
  /// apart: y[j] is, bit for bit, what dotF32 / dotBf16Pairs / dotFp8Pairs
  /// give for weight row j with rows == 1 (the same operations in the same
  /// order), so no result depends on which path computed it. The rows go
  /// through the loop together, a few at a time: one row's accumulator
  /// chain does not bound the stream, and the per-row costs of a call
  /// (lookup tables, the row's address and scales) are paid once per call.
  /// FP8: every row's block scales are `scales` (the rows lie in one
  /// 128-row block). nullptr: Gemv.cpp calls the dot kernels per row.
  void (*gemvF32)(const float *w, int64_t ldw, int64_t n, const float *x,
                  int64_t k, float *y) = nullptr;
  void (*gemvBf16Pairs)(const uint16_t *w, int64_t ldw, int64_t n,
                        const uint16_t *xb, int64_t k, float *y) = nullptr;
  void (*gemvFp8Pairs)(const uint8_t *w, int64_t ldw, int64_t n,
                       const float *scales, const uint16_t *xb, int64_t k,
                       float *y) = nullptr;
  /// dotFp8Pairs' sums for 1 to kMaxManyRows rows of x (ldxb apart) over a
  /// run of n weight rows ldw apart in one 128-row scale block (`scales`
  /// their block scales): y[t * ldy + j] for x row t and weight row j, bit
  /// for bit what dotFp8Pairs gives a weight row at a time, each weight
  /// looked up once for all the rows of x and the per-row costs paid once a
  /// call. nullptr: dotFp8Pairs a weight row and kMaxDotRows rows of x at a
  /// time.
  void (*gemvFp8PairsRows)(const uint8_t *w, int64_t ldw, int64_t n,
                           const float *scales, const uint16_t *xb,
                           int64_t ldxb, int rows, int64_t k, float *y,
                           int64_t ldy) = nullptr;
  /// The same for dotBf16 / dotFp8 (f32 x: the exact f32 products, such as
  /// the absorbed heads' W_UV, and the sets without a bf16 dot product).
  void (*gemvBf16)(const uint16_t *w, int64_t ldw, int64_t n, const float *x,
                   int64_t k, float *y) = nullptr;
  void (*gemvFp8)(const uint8_t *w, int64_t ldw, int64_t n, const float *scales,
                  const float *x, int64_t k, float *y) = nullptr;
  /// combineRowsAvx2 for FP8 rows (elementBytes 1), bit for bit its sums
  /// for every weight but e4m3's NaN (NaN here, 480 there): the e4m3
  /// lookup in place of AVX2's conversion, a scale block (128 columns) of
  /// accumulators a pass. rows[k, k + ahead) are the rows the caller reads
  /// next (the next head's), fetched meanwhile (kCombineAhead). nullptr:
  /// combineRowsAvx2.
  void (*combineFp8Rows)(const void *const *rows, const float *const *scaleRows,
                         const float *x, int64_t k, int64_t n, int64_t ahead,
                         float *out) = nullptr;
  /// combineRowsAvx2 for bf16 rows (elementBytes 2), bit for bit its
  /// sums, with 256 columns of accumulators a pass: decode's head products
  /// q_h W_UK_h (HeadMatmul.cpp). `ahead` as combineFp8Rows'. nullptr:
  /// combineRowsAvx2.
  void (*combineBf16Rows)(const void *const *rows, const float *x, int64_t k,
                          int64_t n, int64_t ahead, float *out) = nullptr;
  /// tileF32, tileBf16 and tileFp8 over the first q * kQuarterPanel token
  /// rows of the panel only, at index q - 1 (q = 1, 2, 3: a quarter, half
  /// and three-quarter tile); c's other rows untouched. Same layout, same
  /// per-element sums, so bit for bit the full tile's values for those
  /// rows, except on AVX-512 in an odd q's last quarter: there the sums over
  /// even and odd steps of k (values of k, or bf16 pairs) are added at the end
  /// (KernelsInline.h's PairAcc, 16 lanes busy on 8 rows), within f32
  /// accumulation of the full tile's. For a group's last panel of fewer than
  /// kPanel tokens (experts get a few dozen tokens each) at a fraction of the
  /// work.
  void (*tileF32Part[3])(const float *w, int64_t ldw, const float *xp,
                         int64_t kc, float *c, const TilePrefetch *pf) = {};
  void (*tileBf16Part[3])(const uint16_t *w, int64_t ldw, const uint16_t *xb,
                          int64_t kp, float *c, const TilePrefetch *pf) = {};
  void (*tileFp8Part[3])(const uint16_t *w, int64_t ldw, const float *scales,
                         const uint16_t *xb, int64_t kp, float *c,
                         const TilePrefetch *pf) = {};
  /// tileFp8 and its partial tiles over x's `planes` planes (xb,
  /// xb + planeStride, ...; PackAs::Bf16Split's three terms of f32 x),
  /// summed in the accumulators before the block's one scaled add, the
  /// weight tiles loaded once for all planes: where a tileFp8 call a
  /// plane scales and adds each plane's sums on its own. nullptr: a
  /// tileFp8 call a plane.
  void (*tileFp8Planes)(const uint16_t *w, int64_t ldw, const float *scales,
                        const uint16_t *xb, int64_t planeStride, int planes,
                        int64_t kp, float *c, const TilePrefetch *pf) = nullptr;
  void (*tileFp8PlanesPart[3])(const uint16_t *w, int64_t ldw,
                               const float *scales, const uint16_t *xb,
                               int64_t planeStride, int planes, int64_t kp,
                               float *c, const TilePrefetch *pf) = {};
  /// c[i * kPanel + t] += scales[i] * (tileF32's sum over kc values of k
  /// from zero), i < mr: one 128-wide scale block of FP8 rows widened to
  /// f32 unscaled, its sums scaled once (tileFp8's arithmetic on f32
  /// panels; TileGemm.cpp's fp8TileF32), and the partial tiles as
  /// tileF32Part. Every set has them.
  void (*tileF32Scaled)(const float *w, int64_t ldw, const float *scales,
                        const float *xp, int64_t kc, float *c,
                        const TilePrefetch *pf) = nullptr;
  void (*tileF32ScaledPart[3])(const float *w, int64_t ldw, const float *scales,
                               const float *xp, int64_t kc, float *c,
                               const TilePrefetch *pf) = {};
  /// y[i] = expf(x[i]) for i < n (y may be x), bit for bit libm's: glibc's
  /// algorithm in the lanes (ExpfConstants.h). nullptr: libm's, one value
  /// at a time.
  void (*expfRow)(const float *x, int64_t n, float *y) = nullptr;
  /// y[i] = g[i] / (1 + expf(-g[i])) * u[i] for i < n: Gemm.h's siluMul
  /// over a row, bit for bit, with expfRow's exp (the dense MLP's
  /// epilogue: with an expf call a value, a bf16 prefill ran 1.026x longer).
  /// nullptr: siluMul one value at a time.
  void (*siluMulRow)(const float *g, const float *u, int64_t n,
                     float *y) = nullptr;
  /// The GEMMs over bf16 and FP8 weights (more than kGemvRows rows of x)
  /// run the f32 tiles on widened weights (decodeBf16, or decodeFp8
  /// unscaled into tileF32Scaled) rather than tileBf16 / tileFp8, with x
  /// still rounded to bf16 (its panels hold the rounded values as f32): the
  /// same arithmetic up to the order of f32 sums (a product of two bf16 values
  /// is exact in f32). For CPUs whose bf16 dot product runs below their f32
  /// FMA rate (TileChoice.h). The dot products (decode) are the set's own.
  bool widenedTiles = false;
  /// amxEmulatedKernels(): the AMX tiles computed in C++, for tests.
  bool emulatedAmx = false;
  /// Weight rows per bf16 and FP8 tile (tileBf16, tileFp8 and their
  /// partial tiles), where they differ from mr (AMX's 32); 0: mr.
  int mrPairs = 0;
  /// dst + r * ldDst = the `bytes` bytes at src + r * ld, r < rows (byte
  /// strides): a chunk of weight rows into an L1 tile, whole vectors
  /// unmasked and no call a row. nullptr: memcpy a row. On AMX at V3's
  /// widths the copied chunks' time fell 1-7% against memcpy in four of
  /// five pairs (level on the bench model; bench/RESULTS.md,
  /// "forty-second session").
  void (*copyRows)(const void *src, int64_t ld, int64_t rows, int64_t bytes,
                   void *dst, int64_t ldDst) = nullptr;
};

/// The most weight rows a set's tile has (KernelSet::mr, mrPairs).
constexpr int kMaxTileRows = 32;

/// Weight rows of the tile a GEMM runs: the bf16 and FP8 tiles' where x is
/// packed in bf16 pairs, else the f32 tile's.
inline int tileRows(const KernelSet &ks, bool pairs) {
  return pairs && ks.mrPairs ? ks.mrPairs : ks.mr;
}

/// One token's head product over rows of a weight (decode's q_h W_UK_h):
/// out[c] = sum_{i<k} x[i] * w_i[c] for c < n, summed from i = 0 up with
/// fused multiply-adds, 64 columns at a time in registers. w_i is rows[i]
/// with `elementBytes` 4 (f32), 2 (bf16, widened) or 1 (e4m3 times
/// scaleRows[i][c / 128], rounded to f32 first, as decodeFp8 does), so
/// every output is bit for bit that of decoding each row to f32 and adding
/// x[i] times it (fused) into out. AVX2 + FMA + F16C: call it only where
/// the CPU has them.
void combineRowsAvx2(int elementBytes, const void *const *rows,
                     const float *const *scaleRows, const float *x, int64_t k,
                     int64_t n, float *out);

/// f rounded to bf16 as every roundBf16 kernel rounds it.
uint16_t roundToBf16(float f);

const KernelSet &scalarKernels();
const KernelSet &avx2Kernels();
const KernelSet &avx512Kernels();
const KernelSet &avx512Bf16Kernels();
const KernelSet &avx512VbmiKernels();
/// avx512vbmi's set with its bf16 and FP8 tiles on AMX (KernelsAmx.cpp);
/// call its tiles only where amxAvailable().
const KernelSet &amxKernels();
/// The same tiles computed in C++ as the SDM defines TDPBF16PS: what the
/// tests run the AMX kernels' layouts through on CPUs without AMX (needs
/// avx512vbmi).
const KernelSet &amxEmulatedKernels();
/// Whether this CPU and OS run AMX bf16 tiles (CPUID, XCR0, Linux's
/// permission) and the hardware tiles give the emulated ones' exact sums
/// on a small product. Checked once.
bool amxAvailable();
/// The AVX-512 sets' dot products, GEMVs and combineBf16Rows into s (with
/// `bf16Pairs` the vdpbf16ps ones too): KernelsAvx512Dots.cpp, for
/// KernelsAvx512.cpp's sets only.
void setAvx512Dots(KernelSet &s, bool bf16Pairs);
const KernelSet &kernelsFor(Isa isa);
/// kernelsFor(isa) with widenedTiles set where that set has bf16 or FP8
/// tiles to replace; else kernelsFor(isa) itself.
const KernelSet &widenedTileKernels(Isa isa);

} // namespace dsrt::cpu

#endif // DSRT_CPU_KERNELS_H
