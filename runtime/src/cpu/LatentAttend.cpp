//===- LatentAttend.cpp - decode's absorbed attention over the cache ------===//
//
// Per task (token t, block of kLatentBlock rows):
//   s[h, i] = scale * (q_h . row_i) for every head, q_h = [qLatent | qRope]
//             packed once per call (LatentBlockKernels::scores);
//   m_h     = max_i s[h, i]; p = exp(s - m_h) (blockSoftmax, every head at
//             once: s is stored row by row, a row's heads side by side);
//   l_h     = sum_i p[h, i]; acc_h = sum_i p[h, i] latent_i
//             (LatentBlockKernels::weightedRows).
// Then per (t, h), in block order: M = max_b m_b, w_b = exp(m_b - M),
// out = (sum_b w_b acc_b) / (sum_b w_b l_b).
//
//===----------------------------------------------------------------------===//
#include "cpu/LatentAttend.h"
#include "cpu/Axpy.h"
#include "cpu/CacheDecode.h"
#include "cpu/GrowBuffer.h"
#include "cpu/NaiveAttend.h"
#include "cpu/SseTranspose.h"
#include "cpu/ThreadPool.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <tuple>
#include <utility>
#include <vector>

using namespace dsrt;
using namespace dsrt::cpu;

namespace {

void scoresScalar(const float *qT, int64_t ldq, int64_t heads, int64_t width,
                  const float *const *rows, int64_t n, float scale, float *s,
                  const LatentPrefetch *) {
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t h = 0; h < heads; ++h) {
      float v = 0;
      for (int64_t k = 0; k < width; ++k)
        v += qT[k * ldq + h] * rows[i][k];
      s[i * ldq + h] = v * scale;
    }
    std::fill(s + i * ldq + heads, s + (i + 1) * ldq, 0.0f);
  }
}

void weightedRowsScalar(const float *p, int64_t ldp, int64_t heads,
                        const float *const *rows, int64_t n, int64_t dc,
                        float *acc, const LatentPrefetch *) {
  for (int64_t h = 0; h < heads; ++h) {
    float *a = acc + h * dc;
    std::fill(a, a + dc, 0.0f);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t c = 0; c < dc; ++c)
        a[c] += p[i * ldp + h] * rows[i][c];
  }
}

/// The block's softmax in scores' layout (row i's heads at s + i * ldq),
/// in place: per head h < heads, m = max_i s, s = exp(s - m), l = sum_i s
/// in row order; m and l to bmax[h], bsum[h]. Row by row over all the heads
/// at once (the lanes), where a loop per head strode through the rows; the
/// same operations in the same order per head as that loop.
void blockSoftmax(void (*expInPlace)(float *, int64_t), float *s, int64_t ldq,
                  int64_t heads, int64_t n, float *bmax, float *bsum) {
  std::copy(s, s + heads, bmax);
  for (int64_t i = 1; i < n; ++i)
    for (int64_t h = 0; h < heads; ++h)
      bmax[h] = std::max(bmax[h], s[i * ldq + h]);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t h = 0; h < heads; ++h)
      s[i * ldq + h] -= bmax[h];
  // Lanes past heads hold zeros: exp(0), not read.
  expInPlace(s, n * ldq);
  std::fill(bsum, bsum + heads, 0.0f);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t h = 0; h < heads; ++h)
      bsum[h] += s[i * ldq + h];
}

std::string str(int64_t v) { return std::to_string(v); }

/// The queries' and the output's shapes.
std::string queryError(const MemRef<float, 3> &ql, const MemRef<float, 3> &qr,
                       const MemRef<float, 3> &out,
                       const MemRef<int32_t, 1> &positions) {
  int64_t tokens = ql.sizes[0], heads = ql.sizes[1], dc = ql.sizes[2],
          dr = qr.sizes[2];
  if (qr.sizes[0] != tokens || qr.sizes[1] != heads)
    return "latent_attention: q_rope is [" + str(qr.sizes[0]) + ", " +
           str(qr.sizes[1]) + ", _], expected [" + str(tokens) + ", " +
           str(heads) + ", _]";
  if (out.sizes[0] != tokens || out.sizes[1] != heads || out.sizes[2] != dc)
    return "latent_attention: the output is [" + str(out.sizes[0]) + ", " +
           str(out.sizes[1]) + ", " + str(out.sizes[2]) + "], expected [" +
           str(tokens) + ", " + str(heads) + ", " + str(dc) + "]";
  if (positions.sizes[0] != tokens)
    return "latent_attention: " + str(positions.sizes[0]) +
           " positions for " + str(tokens) + " tokens";
  if ((dc > 1 && (ql.strides[2] != 1 || out.strides[2] != 1)) ||
      (dr > 1 && qr.strides[2] != 1))
    return "latent_attention: strided columns";
  return "";
}

int64_t positionOf(const MemRef<int32_t, 1> &positions, int64_t t) {
  return positions.data()[t * positions.strides[0]];
}

/// How a cache row's bytes become the kernels' f32 values (the compiler's
/// CacheLayout): f32 or bf16 values, dc latent then dr rope; or FP8, dc
/// e4m3 bytes, dc / group f32 scales, dr bf16 rope values.
struct RowCodec {
  enum Kind { F32, BF16, FP8 } kind = F32;
  int64_t dc = 0, dr = 0, group = 0;
  int64_t ropeOffset() const { return dc + 4 * (dc / group); }
  /// Bytes of one row.
  int64_t bytes() const {
    switch (kind) {
    case F32:
      return (dc + dr) * int64_t(sizeof(float));
    case BF16:
      return (dc + dr) * 2;
    case FP8:
      return ropeOffset() + 2 * dr;
    }
    return 0;
  }
  /// The row as f32: the cache's own values (F32), else decoded into dst.
  const float *decode(const KernelSet &ks, const uint8_t *raw,
                      float *dst) const {
    switch (kind) {
    case F32:
      return reinterpret_cast<const float *>(raw);
    case BF16:
      bf16Values(ks, raw, dc + dr, dst);
      return dst;
    case FP8:
      decodeCacheFp8(ks, raw, raw + dc, dc, group, dst);
      bf16Values(ks, raw + ropeOffset(), dr, dst + dc);
      return dst;
    }
    return dst;
  }
  /// n bf16 values from `src`, which an odd row size or offset may leave at
  /// an odd address.
  static void bf16Values(const KernelSet &ks, const uint8_t *src, int64_t n,
                         float *dst) {
    if (reinterpret_cast<uintptr_t>(src) % 2 == 0)
      return ks.decodeBf16(reinterpret_cast<const uint16_t *>(src), n, dst);
    for (int64_t i = 0; i < n; ++i) {
      uint16_t v;
      std::memcpy(&v, src + 2 * i, 2);
      uint32_t bits = uint32_t(v) << 16;
      std::memcpy(dst + i, &bits, 4);
    }
  }
};

/// The caller's buffers for one call (workers reach them through pointers
/// taken before the split): grow-only, no steady-state allocation.
struct CallBuffers {
  GrowBuffer<float> q, acc, max, sum;
  GrowBuffer<int64_t> first, rows, seq;
};
/// The task whose rows a thread last fetched during the task before it, in
/// which attend call.
struct FedTask {
  uint64_t call = 0;
  int64_t task = -1;
};

CallBuffers &callBuffers() {
  static thread_local CallBuffers b;
  return b;
}

/// The queries of every token with rows (rowsOf[t] > 0) transposed into
/// `cb.q`: column k of its heads' [q_latent | q_rope] rows is row k of ldq
/// values, zero past the heads. perToken: the floats per token. A step's
/// tokens left to the naive form have no rows here: packing a 256-token
/// prefill chunk's queries for nothing was ~1.3% of a prefill, on the caller
/// alone.
const float *packQueries(const MemRef<float, 3> &qLatent,
                         const MemRef<float, 3> &qRope, const int64_t *rowsOf,
                         int64_t ldq, CallBuffers &cb, int64_t &perToken) {
  int64_t tokens = qLatent.sizes[0], heads = qLatent.sizes[1],
          dc = qLatent.sizes[2], dr = qRope.sizes[2], width = dc + dr;
  perToken = width * ldq;
  float *q = cb.q.get(size_t(tokens * perToken));
  for (int64_t t = 0; t < tokens; ++t) {
    if (rowsOf[t] <= 0)
      continue;
    float *qt = q + t * perToken;
    transposeStrided(qLatent.data() + t * qLatent.strides[0],
                     qLatent.strides[1], heads, dc, qt, ldq);
    transposeStrided(qRope.data() + t * qRope.strides[0], qRope.strides[1],
                     heads, dr, qt + dc * ldq, ldq);
    if (heads < ldq)
      for (int64_t k = 0; k < width; ++k)
        std::fill(qt + k * ldq + heads, qt + (k + 1) * ldq, 0.0f);
  }
  return q;
}

/// rowsOf[t] of a token left to ds.paged_naive_attention: no rows, and its
/// output row is not written. A prefill chunk's tokens are all such, and
/// zeroing their rows wrote [tokens, heads, kv_lora_rank] floats a layer
/// that nothing read (~1% of a bf16 prefill, bench/RESULTS.md).
constexpr int64_t kLeftToNaive = -1;

/// The merge: per (token, head), its blocks (tasks [first[t], first[t +
/// 1])) in order, rescaled to their common max. Small next to the blocks
/// (dc values per block against a block's rows), so a decode step's few
/// heads stay on the caller. Each output row also costs its dc stores,
/// counted as one more block. A token without blocks gets a zero row,
/// unless it is left to the naive form (rowsOf[t] == kLeftToNaive).
void mergeBlocks(Isa isa, const int64_t *first, const int64_t *rowsOf,
                 int64_t maxBlocks, const float *acc, const float *bmax,
                 const float *bsum, const MemRef<float, 3> &out) {
  int64_t tokens = out.sizes[0], heads = out.sizes[1], dc = out.sizes[2];
  Axpy axpy = axpyFor(isa);
  int64_t grain =
      std::max<int64_t>(1, (int64_t(1) << 15) / ((maxBlocks + 1) * dc));
  parallelFor(tokens * heads, grain, [&](int64_t b, int64_t e) {
    for (int64_t th = b; th < e; ++th) {
      int64_t t = th / heads, h = th % heads;
      float *o = out.data() + t * out.strides[0] + h * out.strides[1];
      if (first[t] == first[t + 1]) {
        if (rowsOf[t] != kLeftToNaive)
          std::fill(o, o + dc, 0.0f);
        continue;
      }
      float m = -INFINITY;
      for (int64_t k = first[t]; k < first[t + 1]; ++k)
        m = std::max(m, bmax[k * heads + h]);
      float l = 0;
      for (int64_t k = first[t]; k < first[t + 1]; ++k) {
        float w = std::exp(bmax[k * heads + h] - m);
        l += w * bsum[k * heads + h];
        const float *a = acc + (k * heads + h) * dc;
        if (k == first[t])
          for (int64_t c = 0; c < dc; ++c)
            o[c] = w * a[c];
        else
          axpy(w, a, dc, o);
      }
      float inv = 1.0f / l;
      for (int64_t c = 0; c < dc; ++c)
        o[c] *= inv;
    }
  });
}

/// The kernel once the shapes hold: rowsOf[t] rows for token t (0: its
/// output row is zeroed; kLeftToNaive: not written), row r of token t at
/// rowAt(t, r) (its bytes, read through `codec`).
template <typename RowAt>
void attend(Isa isa, const MemRef<float, 3> &qLatent,
            const MemRef<float, 3> &qRope, const int64_t *rowsOf, RowAt rowAt,
            const RowCodec &codec, const MemRef<float, 3> &out, float scale) {
  int64_t tokens = qLatent.sizes[0], heads = qLatent.sizes[1],
          dc = qLatent.sizes[2], dr = qRope.sizes[2], width = dc + dr;
  const LatentBlockKernels &bk = latentBlockKernelsFor(isa);
  const KernelSet &ks = kernelsFor(isa);
  auto expInPlace = attendKernelsFor(isa).expInPlace;
  CallBuffers &cb = callBuffers();
  const int64_t ldq =
      (heads + kLatentHeadAlign - 1) / kLatentHeadAlign * kLatentHeadAlign;
  int64_t perToken = 0;
  const float *q = packQueries(qLatent, qRope, rowsOf, ldq, cb, perToken);
  // Token t's blocks are tasks [first[t], first[t + 1]).
  int64_t *first = cb.first.get(size_t(tokens + 1));
  first[0] = 0;
  int64_t maxBlocks = 0;
  for (int64_t t = 0; t < tokens; ++t) {
    int64_t blocks = (rowsOf[t] + kLatentBlock - 1) / kLatentBlock;
    first[t + 1] = first[t] + blocks;
    maxBlocks = std::max(maxBlocks, blocks);
  }
  int64_t tasks = first[tokens];
  float *acc = cb.acc.get(size_t(std::max<int64_t>(tasks, 1) * heads * dc));
  float *bmax = cb.max.get(size_t(std::max<int64_t>(tasks, 1) * heads));
  float *bsum = cb.sum.get(size_t(std::max<int64_t>(tasks, 1) * heads));

  // Task k's rows (their bytes in the cache) into blockRows; returns its
  // token and row count.
  auto rowsOfTask = [&](int64_t task, const uint8_t **blockRows) {
    int64_t t = std::upper_bound(first, first + tokens + 1, task) - first - 1;
    int64_t r0 = (task - first[t]) * kLatentBlock;
    int64_t n = std::min<int64_t>(kLatentBlock, rowsOf[t] - r0);
    for (int64_t i = 0; i < n; ++i)
      blockRows[i] = rowAt(t, r0 + i);
    return std::pair<int64_t, int64_t>(t, n);
  };
  const int64_t lines = (codec.bytes() + kLineBytes - 1) / kLineBytes;
  static std::atomic<uint64_t> calls{0};
  const uint64_t call = calls.fetch_add(1, std::memory_order_relaxed) + 1;

  parallelFor(tasks, 1, [&](int64_t b, int64_t e) {
    static thread_local GrowBuffer<float> scoreBuffer;
    float *s = scoreBuffer.get(size_t(kLatentBlock * ldq));
    if (b >= e)
      return;
    // Each task's kernels fetch the next task's rows, half each. The next
    // task is e's after a run's last: the pool hands a thread its slice in
    // runs (of one task each for a decode step's few blocks), and its next
    // run starts at e unless e begins another thread's slice or was taken
    // (then the fetched rows are merely not used). A run whose first task
    // was not fetched so requests that task's rows at once.
    const uint8_t *rowsA[kLatentBlock], *rowsB[kLatentBlock];
    const uint8_t **blockRows = rowsA, **nextRows = rowsB;
    auto [t, n] = rowsOfTask(b, blockRows);
    static thread_local FedTask fed;
    if (fed.call != call || fed.task != b)
      for (int64_t i = 0; i < n; ++i)
        for (int64_t l = 0; l < lines; ++l)
          __builtin_prefetch(blockRows[i] + l * kLineBytes, 0, 3);
    // A bf16 or FP8 block's rows decoded once for every head.
    static thread_local GrowBuffer<float> decodeBuffer;
    float *decoded = codec.kind == RowCodec::F32
                         ? nullptr
                         : decodeBuffer.get(size_t(kLatentBlock * width));
    for (int64_t task = b; task < e; ++task) {
      const float *values[kLatentBlock];
      for (int64_t i = 0; i < n; ++i)
        values[i] = codec.decode(ks, blockRows[i],
                                 decoded ? decoded + i * width : nullptr);
      LatentPrefetch scoresNext, weightedNext;
      int64_t nextT = 0, nextN = 0;
      if (task + 1 < tasks) {
        std::tie(nextT, nextN) = rowsOfTask(task + 1, nextRows);
        int64_t all = nextN * lines;
        scoresNext = {nextRows, lines, 0, all / 2};
        weightedNext = {nextRows, lines, all / 2, all};
        fed = {call, task + 1};
      }
      bk.scores(q + t * perToken, ldq, heads, width, values, n, scale, s,
                &scoresNext);
      blockSoftmax(expInPlace, s, ldq, heads, n, bmax + task * heads,
                   bsum + task * heads);
      bk.weightedRows(s, ldq, heads, values, n, dc, acc + task * heads * dc,
                      &weightedNext);
      std::swap(blockRows, nextRows);
      t = nextT;
      n = nextN;
    }
  });

  mergeBlocks(isa, first, rowsOf, maxBlocks, acc, bmax, bsum, out);
}

/// The codec for a cache of T (float, uint16_t: bf16) or of bytes (FP8,
/// group > 0) given the queries' widths, or an error naming what the last
/// dimension (`lastDim`, unit-strided where longer than 1) holds instead.
template <typename T>
std::string rowCodec(int64_t dc, int64_t dr, int64_t group, int64_t lastDim,
                     int64_t lastStride, RowCodec &codec) {
  codec.dc = dc;
  codec.dr = dr;
  codec.group = group;
  codec.kind = sizeof(T) == 4   ? RowCodec::F32
               : sizeof(T) == 2 ? RowCodec::BF16
                                : RowCodec::FP8;
  if (codec.kind == RowCodec::FP8) {
    if (group <= 0 || dc % group)
      return "latent_attention: an FP8 scale group of " + str(group) + " for " +
             str(dc) + " latent values (a positive divisor)";
    if (lastDim != codec.bytes())
      return "latent_attention: FP8 cache rows of " + str(lastDim) +
             " bytes, expected " + str(codec.bytes()) + " (" + str(dc) +
             " e4m3 values, " + str(dc / group) + " f32 scales, " + str(dr) +
             " bf16 rope values)";
  } else if (lastDim != dc + dr) {
    return "latent_attention: cache rows of " + str(lastDim) +
           " values, expected " + str(dc + dr) + " (latent + rope)";
  }
  if (lastDim > 1 && lastStride != 1)
    return "latent_attention: strided columns";
  return "";
}

template <typename T>
std::string contiguous(Isa isa, const MemRef<float, 3> &qLatent,
                       const MemRef<float, 3> &qRope, const MemRef<T, 3> &cache,
                       int64_t group, const MemRef<int32_t, 1> &positions,
                       const MemRef<float, 3> &out, int64_t layer,
                       float scale) {
  if (std::string e = queryError(qLatent, qRope, out, positions); !e.empty())
    return e;
  RowCodec codec;
  if (std::string e = rowCodec<T>(qLatent.sizes[2], qRope.sizes[2], group,
                                  cache.sizes[2], cache.strides[2], codec);
      !e.empty())
    return e;
  if (layer < 0 || layer >= cache.sizes[0])
    return "latent_attention: layer " + str(layer) + " of a cache of " +
           str(cache.sizes[0]) + " layers";
  int64_t tokens = qLatent.sizes[0];
  int64_t *rows = callBuffers().rows.get(size_t(tokens + 1));
  for (int64_t t = 0; t < tokens; ++t) {
    int64_t p = positionOf(positions, t);
    if (p < 0 || p >= cache.sizes[1])
      return "latent_attention: position " + str(p) + " of token " + str(t) +
             " outside the cache's " + str(cache.sizes[1]) + " rows";
    rows[t] = p + 1;
  }
  if (tokens == 0 || qLatent.sizes[1] == 0 || qLatent.sizes[2] == 0)
    return "";
  const T *base = cache.data() + layer * cache.strides[0];
  int64_t stride = cache.strides[1];
  attend(
      isa, qLatent, qRope, rows,
      [=](int64_t, int64_t r) {
        return reinterpret_cast<const uint8_t *>(base + r * stride);
      },
      codec, out, scale);
  return "";
}

template <typename T>
std::string
paged(Isa isa, const MemRef<float, 3> &qLatent, const MemRef<float, 3> &qRope,
      const MemRef<T, 4> &cache, int64_t group,
      const MemRef<int32_t, 1> &positions, const MemRef<int32_t, 1> &queryStart,
      const MemRef<int32_t, 2> &blockTables, const MemRef<float, 3> &out,
      int64_t layer, int64_t pageSize, int64_t naiveMinTokens, float scale) {
  if (std::string e = queryError(qLatent, qRope, out, positions); !e.empty())
    return "paged_" + e;
  RowCodec codec;
  if (std::string e = rowCodec<T>(qLatent.sizes[2], qRope.sizes[2], group,
                                  cache.sizes[3], cache.strides[3], codec);
      !e.empty())
    return "paged_" + e;
  if (layer < 0 || layer >= cache.sizes[0])
    return "paged_latent_attention: layer " + str(layer) + " of a cache of " +
           str(cache.sizes[0]) + " layers";
  if (pageSize <= 0 || cache.sizes[2] != pageSize)
    return "paged_latent_attention: pages of " + str(cache.sizes[2]) +
           " rows, expected " + str(pageSize);
  int64_t seqs = queryStart.sizes[0] - 1;
  if (seqs < 1 || blockTables.sizes[0] < seqs)
    return "paged_latent_attention: " + str(queryStart.sizes[0]) +
           " query starts for " + str(blockTables.sizes[0]) +
           " block tables";
  int64_t tokens = qLatent.sizes[0];
  CallBuffers &cb = callBuffers();
  int64_t *rows = cb.rows.get(size_t(tokens + 1));
  int64_t *seqOf = cb.seq.get(size_t(tokens + 1));
  auto qs = [&](int64_t i) {
    return int64_t(queryStart.data()[i * queryStart.strides[0]]);
  };
  auto page = [&](int64_t s, int64_t p) {
    return int64_t(blockTables.data()[s * blockTables.strides[0] +
                                      p * blockTables.strides[1]]);
  };
  for (int64_t t = 0; t < tokens; ++t) {
    // The generated kernels' rule: sequences [1, S) starting at or before t.
    int64_t s = 0;
    for (int64_t i = 1; i < seqs; ++i)
      s += qs(i) <= t;
    seqOf[t] = s;
    if (naiveMinTokens >= 0 && qs(s + 1) - qs(s) >= naiveMinTokens) {
      rows[t] = kLeftToNaive;
      continue;
    }
    int64_t p = positionOf(positions, t);
    if (p < 0 || p >= blockTables.sizes[1] * pageSize)
      return "paged_latent_attention: position " + str(p) + " of token " +
             str(t) + " past the block table's " +
             str(blockTables.sizes[1] * pageSize) + " rows";
    for (int64_t i = 0; i <= p / pageSize; ++i)
      if (page(s, i) < 0 || page(s, i) >= cache.sizes[1])
        return "paged_latent_attention: page " + str(page(s, i)) +
               " of sequence " + str(s) + " outside the cache's " +
               str(cache.sizes[1]) + " pages";
    rows[t] = p + 1;
  }
  if (tokens == 0 || qLatent.sizes[1] == 0 || qLatent.sizes[2] == 0)
    return "";
  const T *base = cache.data() + layer * cache.strides[0];
  int64_t pageStride = cache.strides[1], rowStride = cache.strides[2];
  attend(
      isa, qLatent, qRope, rows,
      [&](int64_t t, int64_t r) {
        return reinterpret_cast<const uint8_t *>(
            base + page(seqOf[t], r / pageSize) * pageStride +
            (r % pageSize) * rowStride);
      },
      codec, out, scale);
  return "";
}

} // namespace

const LatentBlockKernels &cpu::scalarLatentBlockKernels() {
  static const LatentBlockKernels set{scoresScalar, weightedRowsScalar};
  return set;
}

const LatentBlockKernels &cpu::latentBlockKernelsFor(Isa isa) {
#if defined(__x86_64__)
  if (isa >= Isa::Avx512)
    return avx512LatentBlockKernels();
  if (isa >= Isa::Avx2)
    return avx2LatentBlockKernels();
#endif
  (void)isa;
  return scalarLatentBlockKernels();
}

std::string cpu::latentAttendDecode(Isa isa, const MemRef<float, 3> &qLatent,
                                    const MemRef<float, 3> &qRope,
                                    const MemRef<float, 3> &cache,
                                    const MemRef<int32_t, 1> &positions,
                                    const MemRef<float, 3> &out, int64_t layer,
                                    float scale) {
  return contiguous(isa, qLatent, qRope, cache, 0, positions, out, layer,
                    scale);
}

std::string cpu::latentAttendDecode(Isa isa, const MemRef<float, 3> &qLatent,
                                    const MemRef<float, 3> &qRope,
                                    const MemRef<uint16_t, 3> &cache,
                                    const MemRef<int32_t, 1> &positions,
                                    const MemRef<float, 3> &out, int64_t layer,
                                    float scale) {
  return contiguous(isa, qLatent, qRope, cache, 0, positions, out, layer,
                    scale);
}

std::string cpu::latentAttendDecodeFp8(Isa isa, const MemRef<float, 3> &qLatent,
                                       const MemRef<float, 3> &qRope,
                                       const MemRef<uint8_t, 3> &cache,
                                       int64_t group,
                                       const MemRef<int32_t, 1> &positions,
                                       const MemRef<float, 3> &out,
                                       int64_t layer, float scale) {
  return contiguous(isa, qLatent, qRope, cache, group, positions, out, layer,
                    scale);
}

std::string cpu::pagedLatentAttendDecode(
    Isa isa, const MemRef<float, 3> &qLatent, const MemRef<float, 3> &qRope,
    const MemRef<float, 4> &cache, const MemRef<int32_t, 1> &positions,
    const MemRef<int32_t, 1> &queryStart, const MemRef<int32_t, 2> &blockTables,
    const MemRef<float, 3> &out, int64_t layer, int64_t pageSize,
    int64_t naiveMinTokens, float scale) {
  return paged(isa, qLatent, qRope, cache, 0, positions, queryStart,
               blockTables, out, layer, pageSize, naiveMinTokens, scale);
}

std::string cpu::pagedLatentAttendDecode(
    Isa isa, const MemRef<float, 3> &qLatent, const MemRef<float, 3> &qRope,
    const MemRef<uint16_t, 4> &cache, const MemRef<int32_t, 1> &positions,
    const MemRef<int32_t, 1> &queryStart, const MemRef<int32_t, 2> &blockTables,
    const MemRef<float, 3> &out, int64_t layer, int64_t pageSize,
    int64_t naiveMinTokens, float scale) {
  return paged(isa, qLatent, qRope, cache, 0, positions, queryStart,
               blockTables, out, layer, pageSize, naiveMinTokens, scale);
}

std::string cpu::pagedLatentAttendDecodeFp8(
    Isa isa, const MemRef<float, 3> &qLatent, const MemRef<float, 3> &qRope,
    const MemRef<uint8_t, 4> &cache, int64_t group,
    const MemRef<int32_t, 1> &positions, const MemRef<int32_t, 1> &queryStart,
    const MemRef<int32_t, 2> &blockTables, const MemRef<float, 3> &out,
    int64_t layer, int64_t pageSize, int64_t naiveMinTokens, float scale) {
  return paged(isa, qLatent, qRope, cache, group, positions, queryStart,
               blockTables, out, layer, pageSize, naiveMinTokens, scale);
}
