//===- NaiveAttend.h - the naive MLA form's attend step ---------*- C++ -*-===//
//
// The naive MLA form (ds.naive_attention / ds.paged_naive_attention on the
// CPU path) expands a chunk of cache rows into every head's keys and values
// (one GEMM), then every (token, head) extends its online softmax over the
// chunk's rows at or before its position. This is that second step: per
// (head, block of tokens) the score tile Q_h K_h^T and the product P V_h
// through the f32 GEMM tile kernels, a vectorised exp in between; chunks
// merge by the running max / sum exactly as the generated loops did.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_CPU_NAIVEATTEND_H
#define DSRT_CPU_NAIVEATTEND_H

#include "cpu/Isa.h"
#include "cpu/MemRef.h"

#include <cstdint>
#include <string>

namespace dsrt::cpu {

/// Tokens per block (the GEMM tile's panel width, kPanel).
constexpr int kAttendTokens = 32;

/// The per-ISA pieces between the two products. Raw pointers only (see
/// Kernels.h: the AVX files must not define inline STL code).
struct AttendKernels {
  Isa isa;
  /// s: `rows` rows of kAttendTokens raw scores (Q K^T), row r of token t at
  /// s[r * kAttendTokens + t]. Row r is attended by token t iff r < lim[t]
  /// (lim a small integer held as float). On entry m[t] is the running max;
  /// on exit m[t] is max(m[t], scale * s over the attended rows), corr[t] =
  /// exp(old m - new m), psum[t] = the sum of p over the rows, and s holds
  /// p = exp(scale * s - new m), 0 where not attended.
  void (*softmaxTile)(float *s, int64_t rows, const float *lim, float scale,
                      float *m, float *corr, float *psum);
  /// x[i] = exp(x[i]), i < n (the vector paths: a polynomial within 2 ulp
  /// of expf on [-87, 88], 0 below, +Inf above, NaN kept).
  void (*expInPlace)(float *x, int64_t n);
};

/// The path for `isa` (the best one at or below it that is built).
const AttendKernels &attendKernelsFor(Isa isa);
const AttendKernels &scalarAttendKernels();
#if defined(__x86_64__)
const AttendKernels &avx2AttendKernels();
const AttendKernels &avx512AttendKernels();
#endif

/// One chunk of rows [firstRow, firstRow + rows) for the tokens
/// [firstToken, firstToken + tokens):
///   qn [T, H, dn], qr [T, H, dr]: the queries (any strides);
///   positions [T]: token t attends rows <= positions[t];
///   kv [>= rows, H * (dn + dv)]: row r - firstRow's [k_nope_h | v_h] per
///     head; rope [>= rows, dr]: its rope key (unit column strides);
///   runMax, runSum [T, H], out [T, H, dv]: the online softmax state, the
///     output not yet divided by the sums.
/// Returns "" or a one-line description of inconsistent shapes (then
/// nothing is written). Runs over the thread pool by (head, token block).
std::string naiveAttendChunk(Isa isa, const MemRef<float, 3> &qn,
                             const MemRef<float, 3> &qr,
                             const MemRef<int32_t, 1> &positions,
                             const MemRef<float, 2> &kv,
                             const MemRef<float, 2> &rope,
                             const MemRef<float, 2> &runMax,
                             const MemRef<float, 2> &runSum,
                             const MemRef<float, 3> &out, int64_t firstToken,
                             int64_t tokens, int64_t firstRow, int64_t rows,
                             float scale);

} // namespace dsrt::cpu

#endif // DSRT_CPU_NAIVEATTEND_H
