//===- NaiveAttend.cpp - the naive MLA form's attend step -----------------===//
//
// Per (head h, block of up to 32 tokens) over one chunk of rows:
//   lim[t]  rows of the chunk token t attends (position causal), their max
//           bounds the rows computed at all (earlier tokens skip the rest);
//   S       = K_h Q_h^T through KernelSet::tileF32 (K_h's nope and rope
//           parts packed into one [rows, dn + dr] panel once per chunk and
//           head, Q_h transposed into the tile's [k, 32] layout): S[r, t]
//           is a tile row;
//   P       = AttendKernels::softmaxTile: mask, scale, max, vector exp, in
//           place; S's layout is also the x panel of the next product;
//   O^T     = V_h^T P through tileF32 again (V_h transposed into
//           [dv, rows], also once per chunk and head);
//   merge   out = out * corr + O, sum = sum * corr + sum(P), max = new max.
// Blocks are ordered so that each thread's contiguous share of the pool's
// split holds as many late (long) as early (short) causal blocks.
//
//===----------------------------------------------------------------------===//
#include "cpu/NaiveAttend.h"
#include "cpu/GrowBuffer.h"
#include "cpu/Kernels.h"
#include "cpu/NaiveAttendInline.h"
#include "cpu/SseTranspose.h"
#include "cpu/ThreadPool.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

using namespace dsrt;
using namespace dsrt::cpu;

namespace {

struct V1 {
  static constexpr int W = 1;
  using T = float;
  using M = bool;
  static T load(const float *p) { return *p; }
  static void store(float *p, T v) { *p = v; }
  static T set1(float f) { return f; }
  static T add(T a, T b) { return a + b; }
  static T sub(T a, T b) { return a - b; }
  static T mul(T a, T b) { return a * b; }
  static T max(T a, T b) { return a > b ? a : b; }
  static M lt(T a, T b) { return a < b; }
  static M eq(T a, T b) { return a == b; }
  static T select(M m, T a, T b) { return m ? a : b; }
  static T exp(T x) { return std::exp(x); }
};

int64_t roundUp(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

std::string shapeError(const MemRef<float, 3> &qn, const MemRef<float, 3> &qr,
                       const MemRef<int32_t, 1> &positions,
                       const MemRef<float, 2> &kv, const MemRef<float, 2> &rope,
                       const MemRef<float, 2> &runMax,
                       const MemRef<float, 2> &runSum,
                       const MemRef<float, 3> &out, int64_t firstToken,
                       int64_t tokens, int64_t firstRow, int64_t rows) {
  auto str = [](int64_t v) { return std::to_string(v); };
  int64_t t = qn.sizes[0], h = qn.sizes[1], dn = qn.sizes[2],
          dr = qr.sizes[2], dv = out.sizes[2];
  if (qr.sizes[0] != t || qr.sizes[1] != h)
    return "naive_attend: q_rope is [" + str(qr.sizes[0]) + ", " +
           str(qr.sizes[1]) + ", _], expected [" + str(t) + ", " + str(h) +
           ", _]";
  if (out.sizes[0] != t || out.sizes[1] != h)
    return "naive_attend: out is [" + str(out.sizes[0]) + ", " +
           str(out.sizes[1]) + ", _], expected [" + str(t) + ", " + str(h) +
           ", _]";
  if (positions.sizes[0] != t)
    return "naive_attend: " + str(positions.sizes[0]) + " positions for " +
           str(t) + " tokens";
  for (const MemRef<float, 2> *s : {&runMax, &runSum})
    if (s->sizes[0] != t || s->sizes[1] != h)
      return "naive_attend: the softmax state is [" + str(s->sizes[0]) +
             ", " + str(s->sizes[1]) + "], expected [" + str(t) + ", " +
             str(h) + "]";
  if (kv.sizes[1] != h * (dn + dv))
    return "naive_attend: kv has " + str(kv.sizes[1]) + " columns, expected " +
           str(h * (dn + dv));
  if (rope.sizes[1] != dr)
    return "naive_attend: rope has " + str(rope.sizes[1]) +
           " columns, expected " + str(dr);
  if ((kv.sizes[1] > 1 && kv.strides[1] != 1) ||
      (rope.sizes[1] > 1 && rope.strides[1] != 1))
    return "naive_attend: strided key columns";
  if (firstToken < 0 || tokens < 0 || firstToken + tokens > t)
    return "naive_attend: tokens [" + str(firstToken) + ", " +
           str(firstToken + tokens) + ") past the " + str(t) + " queries";
  if (firstRow < 0 || rows < 0 || rows > kv.sizes[0] || rows > rope.sizes[0])
    return "naive_attend: " + str(rows) + " rows from row " + str(firstRow) +
           ", the chunk holds " + str(std::min(kv.sizes[0], rope.sizes[0]));
  return "";
}

/// Grow-only scratch of one thread: steady-state calls allocate nothing.
struct Scratch {
  std::vector<float> q, s, o, ot;
  static float *at(std::vector<float> &v, int64_t n) {
    if (v.size() < size_t(n))
      v.resize(size_t(n));
    return v.data();
  }
};

} // namespace

const AttendKernels &dsrt::cpu::scalarAttendKernels() {
  static const AttendKernels set{Isa::Scalar, softmaxTileT<V1>,
                                 expInPlaceT<V1>};
  return set;
}

const AttendKernels &dsrt::cpu::attendKernelsFor(Isa isa) {
#if defined(__x86_64__)
  if (isa >= Isa::Avx512)
    return avx512AttendKernels();
  if (isa >= Isa::Avx2)
    return avx2AttendKernels();
#endif
  (void)isa;
  return scalarAttendKernels();
}

std::string cpu::naiveAttendChunk(
    Isa isa, const MemRef<float, 3> &qn, const MemRef<float, 3> &qr,
    const MemRef<int32_t, 1> &positions, const MemRef<float, 2> &kv,
    const MemRef<float, 2> &rope, const MemRef<float, 2> &runMax,
    const MemRef<float, 2> &runSum, const MemRef<float, 3> &out,
    int64_t firstToken, int64_t tokens, int64_t firstRow, int64_t rows,
    float scale) {
  if (std::string e =
          shapeError(qn, qr, positions, kv, rope, runMax, runSum, out,
                     firstToken, tokens, firstRow, rows);
      !e.empty())
    return e;
  const int64_t heads = qn.sizes[1], dn = qn.sizes[2], dr = qr.sizes[2],
                dv = out.sizes[2], dk = dn + dr, group = dn + dv;
  if (tokens == 0 || rows == 0 || heads == 0)
    return "";
  const KernelSet &ks = kernelsFor(isa);
  const AttendKernels &ak = attendKernelsFor(isa);
  constexpr int64_t TB = kAttendTokens;
  static_assert(kAttendTokens == kPanel, "a token block is one GEMM panel");
  const int64_t mr = ks.mr, dvp = roundUp(dv, mr), rowsPad = roundUp(rows, mr);
  // Not a multiple of 4 KiB apart: the transposed rows' stores and the
  // tile's reads would all fall in one L1 set.
  const int64_t ldv = roundUp(rows, 16) + 16;
  const int64_t blocks = (tokens + TB - 1) / TB;
  const float *qnp = qn.data(), *qrp = qr.data(), *kvp = kv.data(),
              *rp = rope.data();
  const int32_t *pos = positions.data();
  float *mxp = runMax.data(), *smp = runSum.data(), *op = out.data();

  // Every head's keys as tile rows [rowsPad, dn + dr] and values
  // transposed [dvp, ldv], once per chunk: every token block of the head
  // reads them. The caller's buffer (the workers only read it).
  static thread_local GrowBuffer<float> packed;
  const int64_t kHead = rowsPad * dk, vHead = dvp * ldv;
  float *kpAll = packed.get(size_t(heads * (kHead + vHead)));
  parallelFor(heads, 1, [&](int64_t h0, int64_t h1) {
    for (int64_t h = h0; h < h1; ++h) {
      float *k = kpAll + h * (kHead + vHead), *vt = k + kHead;
      for (int64_t r = 0; r < rowsPad; ++r) {
        float *dst = k + r * dk;
        if (r >= rows) {
          std::fill(dst, dst + dk, 0.0f);
          continue;
        }
        const float *kr = kvp + r * kv.strides[0] + h * group;
        std::copy(kr, kr + dn, dst);
        std::copy(rp + r * rope.strides[0], rp + r * rope.strides[0] + dr,
                  dst + dn);
      }
      std::fill(vt, vt + vHead, 0.0f);
      for (int64_t r = 0; r < rows; ++r) {
        const float *v = kvp + r * kv.strides[0] + h * group + dn;
        for (int64_t j = 0; j < dv; ++j)
          vt[j * ldv + r] = v[j];
      }
    }
  });

  const bool unitQ = (dn <= 1 || qn.strides[2] == 1) &&
                     (dr <= 1 || qr.strides[2] == 1);
  auto storeO = ks.storeTile ? ks.storeTile : storeTile;
  auto task = [&](int64_t blk, int64_t h, Scratch &sc) {
    const int64_t t0 = firstToken + blk * TB,
                  nt = std::min(TB, firstToken + tokens - t0);
    float lim[TB], m[TB], corr[TB], psum[TB];
    int64_t used = 0;
    for (int64_t t = 0; t < TB; ++t) {
      int64_t l = 0;
      if (t < nt)
        l = std::clamp<int64_t>(
            int64_t(pos[(t0 + t) * positions.strides[0]]) + 1 - firstRow, 0,
            rows);
      lim[t] = float(l);
      used = std::max(used, l);
      m[t] = t < nt ? mxp[(t0 + t) * runMax.strides[0] + h * runMax.strides[1]]
                    : -std::numeric_limits<float>::infinity();
    }
    if (used == 0)
      return; // no token of the block reaches this chunk
    const int64_t up = roundUp(used, mr);
    const float *k = kpAll + h * (kHead + vHead), *vt = k + kHead;
    float *q = Scratch::at(sc.q, dk * TB), *s = Scratch::at(sc.s, up * TB),
          *o = Scratch::at(sc.o, dvp * TB);
    // The ISA's panel packer when the query rows are unit-stride: the
    // nope and rope parts as the panel's first dn and last dr k-rows (rows
    // past nt zero: lim 0 masks their scores). Else eight tokens at a
    // time: their rows (often 4 KiB apart, one L1 set) stay cached while
    // each is read across, and the stores are runs; a short block repeats
    // its last token.
    if (ks.packF32 && unitQ) {
      const int64_t hq = h * qn.strides[1], hr = h * qr.strides[1];
      ks.packF32(qnp + t0 * qn.strides[0] + hq, qn.strides[0], nullptr, nt, dn,
                 q);
      if (dr > 0)
        ks.packF32(qrp + t0 * qr.strides[0] + hr, qr.strides[0], nullptr, nt,
                   dr, q + dn * TB);
    } else {
      for (int64_t tb = 0; tb < TB; tb += 8) {
        const float *a[8], *b[8];
        for (int64_t u = 0; u < 8; ++u) {
          int64_t t = t0 + std::min(tb + u, nt - 1);
          a[u] = qnp + t * qn.strides[0] + h * qn.strides[1];
          b[u] = qrp + t * qr.strides[0] + h * qr.strides[1];
        }
        for (int64_t j = 0; j < dn; ++j)
          for (int64_t u = 0; u < 8; ++u)
            q[j * TB + tb + u] = a[u][j * qn.strides[2]];
        for (int64_t j = 0; j < dr; ++j)
          for (int64_t u = 0; u < 8; ++u)
            q[(dn + j) * TB + tb + u] = b[u][j * qr.strides[2]];
      }
    }
    std::fill(s, s + up * TB, 0.0f);
    for (int64_t r = 0; r < up; r += mr)
      ks.tileF32(k + r * dk, dk, q, dk, s + r * TB, nullptr);
    ak.softmaxTile(s, used, lim, scale, m, corr, psum);
    std::fill(o, o + dvp * TB, 0.0f);
    for (int64_t j = 0; j < dvp; j += mr)
      ks.tileF32(vt + j * ldv, ldv, s, used, o + j * TB, nullptr);
    // O^T's columns are tokens: turned into token rows [nt, dv] by the
    // tile store, so the merge reads and writes contiguous runs (the same
    // out * corr + O, element for element).
    const float *orow = o;
    int64_t ldo = 1, ljo = TB;
    if (out.strides[2] == 1) {
      float *ot = Scratch::at(sc.ot, TB * dv);
      for (int64_t j = 0; j < dv; j += 16)
        storeO(o + j * TB, std::min<int64_t>(16, dv - j), nt, ot + j, dv);
      orow = ot, ldo = dv, ljo = 1;
    }
    for (int64_t t = 0; t < nt; ++t) {
      float c = corr[t];
      float &mx = mxp[(t0 + t) * runMax.strides[0] + h * runMax.strides[1]];
      float &sm = smp[(t0 + t) * runSum.strides[0] + h * runSum.strides[1]];
      mx = m[t];
      sm = sm * c + psum[t];
      float *ot = op + (t0 + t) * out.strides[0] + h * out.strides[1];
      const float *src = orow + t * ldo;
      if (ljo == 1)
        for (int64_t j = 0; j < dv; ++j)
          ot[j] = ot[j] * c + src[j];
      else
        for (int64_t j = 0; j < dv; ++j)
          ot[j * out.strides[2]] = ot[j * out.strides[2]] * c + src[j * ljo];
    }
  };

  // A head's blocks in a row (its packed keys and values stay in L2),
  // in the order 0, B-1, 1, B-2, ...: causal blocks grow with their index,
  // so every contiguous run of tasks mixes short and long ones.
  parallelFor(blocks * heads, 1, [&](int64_t b, int64_t e) {
    static thread_local Scratch sc;
    for (int64_t i = b; i < e; ++i) {
      int64_t z = i % blocks, h = i / blocks;
      int64_t blk = z % 2 == 0 ? z / 2 : blocks - 1 - z / 2;
      task(blk, h, sc);
    }
  });
  return "";
}
