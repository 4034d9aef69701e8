//===- Gemm.cpp - the GEMMs generated CUDA host code delegates to cuBLAS --===//
//
// Same contract as cpu/Gemm.h (y = x w^T, grouped by expert offsets), on
// device pointers, on the session's stream. Row-major [T, K] x [N, K]^T is
// the column-major product W^T(op T) * X(op N) = Y^T, so no copy is made.
//
//===----------------------------------------------------------------------===//
#include "cuda/Gemm.h"
#include "cuda/Convert.h"
#include "cuda/Device.h"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <vector>

using namespace dsrt;
using namespace dsrt::cuda;

namespace {

bool rowMajor(const MemRef<float, 2> &m) {
  return m.sizes[1] <= 1 || m.strides[1] == 1;
}

int ld(const MemRef<float, 2> &m) {
  int64_t l = m.sizes[0] <= 1 ? std::max<int64_t>(m.sizes[1], 1) : m.strides[0];
  return l > INT_MAX ? -1 : int(l);
}

/// One product of `rows` rows of x (from row `first`) with w (n x k).
std::string gemm(DeviceSession &s, const float *x, int ldx, const float *w,
                 int ldw, float *y, int ldy, int64_t rows, int64_t n,
                 int64_t k) {
  if (rows == 0 || n == 0)
    return "";
  if (rows > INT_MAX || n > INT_MAX || k > INT_MAX || ldx < 0 || ldw < 0 ||
      ldy < 0)
    return "GEMM too large for cuBLAS's 32-bit sizes";
  const float one = 1.0f, zero = 0.0f;
  int st = s.cublasApi->sgemm(s.blas, CUBLAS_OP_T, CUBLAS_OP_N, int(n),
                              int(rows), int(k), &one, w, ldw, x, ldx, &zero,
                              y, ldy);
  return st == 0 ? "" : "cublasSgemm failed with status " + std::to_string(st);
}

/// The bf16 form of x's rows [first, first + rows) in the session's
/// staging buffer, packed [rows, k]; nullptr with `error` set on failure.
const uint16_t *bf16Rows(DeviceSession &s, const MemRef<float, 2> &x,
                         int64_t first, int64_t rows, std::string &error) {
  int64_t k = x.sizes[1];
  auto *dst = static_cast<uint16_t *>(
      s.stagingFor(size_t(std::max<int64_t>(rows * k, 1)) * 2, error));
  if (!dst)
    return nullptr;
  const float *src = x.data() + first * x.strides[0];
  if (rows <= 1 || x.strides[0] == k) {
    error = convertToBf16(s.g, s.stream, reinterpret_cast<CUdeviceptr>(dst),
                          reinterpret_cast<CUdeviceptr>(src),
                          size_t(rows * k));
  } else {
    for (int64_t r = 0; r < rows && error.empty(); ++r)
      error = convertToBf16(
          s.g, s.stream, reinterpret_cast<CUdeviceptr>(dst + r * k),
          reinterpret_cast<CUdeviceptr>(src + r * x.strides[0]), size_t(k));
  }
  return error.empty() ? dst : nullptr;
}

/// y rows = xb (packed bf16 [rows, k]) * w (bf16 [n, k], row stride ldw)^T.
std::string gemmBf16(DeviceSession &s, const uint16_t *xb, const uint16_t *w,
                     int ldw, float *y, int ldy, int64_t rows, int64_t n,
                     int64_t k) {
  if (rows == 0 || n == 0)
    return "";
  if (rows > INT_MAX || n > INT_MAX || k > INT_MAX || ldw < 0 || ldy < 0)
    return "GEMM too large for cuBLAS's 32-bit sizes";
  const float one = 1.0f, zero = 0.0f;
  int st = s.cublasApi->gemmEx(s.blas, CUBLAS_OP_T, CUBLAS_OP_N, int(n),
                               int(rows), int(k), &one, w, CUDA_R_16BF, ldw,
                               xb, CUDA_R_16BF, int(k), &zero, y, CUDA_R_32F,
                               ldy, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  return st == 0 ? ""
                 : "cublasGemmEx failed with status " + std::to_string(st);
}

/// All experts' products in one cublasGemmGroupedBatchedEx: experts with
/// the same number of rows form one group (decode: one group of top-k
/// single-row problems); empty experts are left out. `x` (element type f32
/// or packed bf16 by `bf16`) and the per-expert weights `w + e * wStride`
/// are device pointers. `unsupported` is set, with nothing queued, when
/// cuBLAS refuses the type combination.
std::string groupedCall(DeviceSession &s, const std::vector<int32_t> &off,
                        const void *w, int64_t wStride, int ldw,
                        const void *x, int ldx, const MemRef<float, 2> &y,
                        int64_t n, int64_t k, bool bf16, bool &unsupported) {
  int ldy = ld(y);
  if (ldw < 0 || ldx < 0 || ldy < 0)
    return "GEMM too large for cuBLAS's 32-bit sizes";
  size_t elt = bf16 ? 2 : 4;
  std::vector<int64_t> order;
  for (size_t e = 0; e + 1 < off.size(); ++e)
    if (off[e + 1] > off[e])
      order.push_back(int64_t(e));
  if (order.empty() || n == 0)
    return "";
  auto rows = [&](int64_t e) { return off[size_t(e + 1)] - off[size_t(e)]; };
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return std::make_pair(rows(a), a) < std::make_pair(rows(b), b);
  });
  GroupedArgs &g = s.grouped;
  g.clear();
  size_t p = order.size();
  g.pointers.resize(3 * p);
  for (size_t i = 0; i < p; ++i) {
    int64_t e = order[i], begin = off[size_t(e)];
    if (i == 0 || rows(e) != rows(order[i - 1])) {
      g.m.push_back(int(n));
      g.n.push_back(int(rows(e)));
      g.groupSize.push_back(0);
    }
    ++g.groupSize.back();
    g.pointers[i] = static_cast<const char *>(w) + size_t(e * wStride) * elt;
    g.pointers[p + i] = static_cast<const char *>(x) + size_t(begin * ldx) * elt;
    g.pointers[2 * p + i] = y.data() + begin * y.strides[0];
  }
  size_t groups = g.groupSize.size();
  g.transA.assign(groups, CUBLAS_OP_T);
  g.transB.assign(groups, CUBLAS_OP_N);
  g.k.assign(groups, int(k));
  g.lda.assign(groups, ldw);
  g.ldb.assign(groups, ldx);
  g.ldc.assign(groups, ldy);
  g.alpha.assign(groups, 1.0f);
  g.beta.assign(groups, 0.0f);
  // cuBLAS reads the pointer arrays from device memory.
  std::string error;
  size_t bytes = g.pointers.size() * sizeof(void *);
  void *dev = s.arena.allocate(bytes, error);
  if (!dev)
    return error;
  CUresult r = s.g.drv.cuMemcpyHtoDAsync(reinterpret_cast<CUdeviceptr>(dev),
                                         g.pointers.data(), bytes, s.stream);
  if (r != CUDA_SUCCESS) {
    s.arena.release(dev);
    return s.g.describe("copying the grouped GEMM's pointers", r);
  }
  auto *ptrs = static_cast<void *const *>(dev);
  int type = bf16 ? CUDA_R_16BF : CUDA_R_32F;
  int st = s.cublasApi->gemmGroupedBatchedEx(
      s.blas, g.transA.data(), g.transB.data(), g.m.data(), g.n.data(),
      g.k.data(), g.alpha.data(), ptrs, type, g.lda.data(), ptrs + p, type,
      g.ldb.data(), g.beta.data(), ptrs + 2 * p, CUDA_R_32F, g.ldc.data(),
      int(groups), g.groupSize.data(), CUBLAS_COMPUTE_32F);
  // Later users of this memory run after the GEMM on the same stream.
  s.arena.release(dev);
  if (st == CUBLAS_STATUS_NOT_SUPPORTED && bf16) {
    unsupported = true;
    return "";
  }
  return st == 0 ? ""
                 : "cublasGemmGroupedBatchedEx failed with status " +
                       std::to_string(st);
}

/// A grouped GEMM with no more rows than experts (a decode step: top-k
/// rows per token) as one product per row: a kernel finds each row's
/// expert in the device offsets and writes the pointer arrays, and one
/// cublasGemmBatchedEx multiplies. The host never reads the offsets, so
/// the step does not wait on the stream (a grouped call needs per-group
/// sizes in host memory). With rows <= experts it reads at most as many
/// expert matrices as there are rows, like the grouped call in the worst
/// case. `unsupported` is set when cuBLAS refuses the type combination.
std::string perRowCall(DeviceSession &s, const MemRef<int32_t, 1> &offsets,
                       int64_t experts, const void *w, int64_t wStrideBytes,
                       int ldw, const void *x, int64_t xRowBytes, int ldx,
                       const MemRef<float, 2> &y, int64_t n, int64_t k,
                       bool bf16, bool &unsupported) {
  int64_t rows = y.sizes[0];
  int ldy = ld(y);
  if (ldw < 0 || ldx < 0 || ldy < 0)
    return "GEMM too large for cuBLAS's 32-bit sizes";
  if (rows == 0 || n == 0)
    return "";
  std::string error;
  size_t bytes = size_t(3 * rows) * sizeof(void *);
  void *dev = s.rowPointersFor(bytes, error);
  if (!dev)
    return error;
  ExpertRows a{reinterpret_cast<CUdeviceptr>(dev),
               reinterpret_cast<CUdeviceptr>(offsets.data()),
               uint64_t(experts),
               uint64_t(rows),
               reinterpret_cast<CUdeviceptr>(w),
               uint64_t(wStrideBytes),
               reinterpret_cast<CUdeviceptr>(x),
               uint64_t(xRowBytes),
               reinterpret_cast<CUdeviceptr>(y.data()),
               uint64_t(y.strides[0] * int64_t(sizeof(float)))};
  error = expertRowPointers(s.g, s.stream, a);
  if (!error.empty())
    return error;
  auto *ptrs = static_cast<void *const *>(dev);
  int type = bf16 ? CUDA_R_16BF : CUDA_R_32F;
  const float one = 1.0f, zero = 0.0f;
  int st = s.cublasApi->gemmBatchedEx(
      s.blas, CUBLAS_OP_T, CUBLAS_OP_N, int(n), 1, int(k), &one, ptrs, type,
      ldw, ptrs + rows, type, ldx, &zero, ptrs + 2 * rows, CUDA_R_32F, ldy,
      int(rows), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  if (st == CUBLAS_STATUS_NOT_SUPPORTED) {
    unsupported = true;
    return "";
  }
  return st == 0 ? ""
                 : "cublasGemmBatchedEx failed with status " +
                       std::to_string(st);
}

/// Whether grouped GEMMs may use cublasGemmGroupedBatchedEx or the per-row
/// batched call: DSRT_CUDA_GROUPED_GEMM=0 (bring-up) keeps them expert by
/// expert after a host read of the offsets, so a first GPU run can tell
/// the grouped calls from the rest. Read per call
/// (a getenv per grouped GEMM is noise next to its offsets read).
bool groupedCallAllowed(std::string &error) {
  const char *v = std::getenv("DSRT_CUDA_GROUPED_GEMM");
  if (!v || !*v || std::string(v) == "1")
    return true;
  if (std::string(v) != "0")
    error = std::string("DSRT_CUDA_GROUPED_GEMM must be 0 or 1, got '") + v +
            "'";
  return false;
}

/// The session of the call in flight; nullptr with `error` empty when the
/// call already failed (the GEMM is skipped: its buffers may not exist).
DeviceSession *session(std::string &error) {
  Execution *e = Execution::current();
  if (!e || !e->session) {
    error = "GEMM called outside a model call";
    return nullptr;
  }
  return e->failed() ? nullptr : e->session;
}

} // namespace

static std::string linearImpl(const MemRef<float, 2> &x,
                              const MemRef<float, 2> &w,
                              const MemRef<float, 2> &y, bool bf16Weights) {
  std::string error;
  DeviceSession *s = session(error);
  if (!s)
    return error;
  if (x.sizes[1] != w.sizes[1] || y.sizes[0] != x.sizes[0] ||
      y.sizes[1] != w.sizes[0])
    return "dsrt_linear_f32: shapes do not match";
  if (!rowMajor(x) || !rowMajor(w) || !rowMajor(y))
    return "dsrt_linear_f32: a non-contiguous row on the GPU path";
  Execution::current()->forgetOffsets(); // y may be memory they were read from
  if (bf16Weights) {
    // The descriptor is the binding's own: element strides, bf16 storage.
    const uint16_t *xb = bf16Rows(*s, x, 0, x.sizes[0], error);
    if (!xb)
      return error;
    return gemmBf16(*s, xb, reinterpret_cast<const uint16_t *>(w.data()),
                    ld(w), y.data(), ld(y), x.sizes[0], w.sizes[0],
                    x.sizes[1]);
  }
  return gemm(*s, x.data(), ld(x), w.data(), ld(w), y.data(), ld(y),
              x.sizes[0], w.sizes[0], x.sizes[1]);
}

static std::string groupedLinearImpl(const MemRef<float, 3> &w3,
                                     const MemRef<float, 2> &x,
                                     const MemRef<int32_t, 1> &offsets,
                                     const MemRef<float, 2> &y,
                                     bool bf16Weights) {
  std::string error;
  DeviceSession *s = session(error);
  if (!s)
    return error;
  int64_t experts = w3.sizes[0], n = w3.sizes[1], k = w3.sizes[2];
  if (offsets.sizes[0] != experts + 1 || x.sizes[1] != k ||
      y.sizes[1] != n || y.sizes[0] != x.sizes[0])
    return "dsrt_grouped_linear_f32: shapes do not match";
  if (!rowMajor(x) || !rowMajor(y) || (k > 1 && w3.strides[2] != 1))
    return "dsrt_grouped_linear_f32: a non-contiguous row on the GPU path";
  if (x.sizes[0] > INT_MAX || n > INT_MAX || k > INT_MAX)
    return "GEMM too large for cuBLAS's 32-bit sizes";
  int ldwf = w3.strides[1] > INT_MAX
                 ? -1
                 : int(std::max<int64_t>(w3.strides[1], k));
  bool allowed = groupedCallAllowed(error);
  if (!error.empty())
    return error;
  const uint16_t *xb = nullptr;
  if (allowed && x.sizes[0] <= experts && !s->perRowUnsupported) {
    Execution::current()->forgetOffsets(); // y may be memory they were in
    if (bf16Weights && !(xb = bf16Rows(*s, x, 0, x.sizes[0], error)))
      return error;
    bool unsupported = false;
    std::string err =
        xb ? perRowCall(*s, offsets, experts, w3.data(),
                        int64_t(w3.strides[0]) * 2, int(k), xb, k * 2, int(k),
                        y, n, k, true, unsupported)
           : perRowCall(*s, offsets, experts, w3.data(),
                        int64_t(w3.strides[0]) * 4, ldwf, x.data(),
                        int64_t(x.strides[0]) * 4, ld(x), y, n, k, false,
                        unsupported);
    if (!unsupported)
      return err;
    // Nothing was multiplied: the offsets are read below instead, and
    // later calls of the session go there directly.
    s->perRowUnsupported = true;
  }
  // The group boundaries were computed on the device (by the permutation
  // kernel); the host needs them to size each product. A read waits for
  // the stream: the gate, up and down GEMMs of a layer share one.
  Execution &ex = *Execution::current();
  std::vector<int32_t> &off = ex.offsetsHost;
  if (ex.offsetsAt != offsets.data() || off.size() != size_t(experts + 1)) {
    if (ex.refuseHostWait("reading the expert offsets"))
      return ex.error;
    off.assign(size_t(experts + 1), 0);
    const Gpu &g = s->g;
    CUresult r = g.drv.cuMemcpyDtoHAsync(
        off.data(), reinterpret_cast<CUdeviceptr>(offsets.data()),
        off.size() * sizeof(int32_t), s->stream);
    if (r == CUDA_SUCCESS)
      r = g.drv.cuStreamSynchronize(s->stream);
    if (r != CUDA_SUCCESS)
      return g.describe("reading the expert offsets", r);
    ex.offsetsAt = offsets.data();
  }
  // y is written below: if it were the offsets' memory, the copy is stale.
  const char *yb = reinterpret_cast<const char *>(y.data());
  const char *ob = reinterpret_cast<const char *>(offsets.data());
  if (ob >= yb && ob < yb + size_t(y.sizes[0] * y.strides[0]) * sizeof(float))
    ex.forgetOffsets();
  for (int64_t e = 0; e < experts; ++e) {
    int64_t begin = off[size_t(e)], end = off[size_t(e + 1)];
    if (begin < 0 || end < begin || end > x.sizes[0])
      return "dsrt_grouped_linear_f32: expert offsets out of order";
  }
  if (bf16Weights && !xb && !(xb = bf16Rows(*s, x, 0, x.sizes[0], error)))
    return error;
  const float *wf = bf16Weights ? nullptr : w3.data();
  if (allowed && s->cublasApi->gemmGroupedBatchedEx &&
      !(xb && s->groupedBf16Unsupported)) {
    bool unsupported = false;
    std::string err =
        xb ? groupedCall(*s, off, w3.data(), int64_t(w3.strides[0]), int(k),
                         xb, int(k), y, n, k, true, unsupported)
           : groupedCall(*s, off, wf, int64_t(w3.strides[0]), ldwf, x.data(),
                         ld(x), y, n, k, false, unsupported);
    if (!unsupported)
      return err;
    // This cuBLAS has the entry point but not bf16 inputs with an f32
    // output: nothing was queued; the per-expert GEMMs below do it, and
    // later calls of the session go there directly.
    s->groupedBf16Unsupported = true;
  }
  for (int64_t e = 0; e < experts; ++e) {
    int64_t begin = off[size_t(e)], end = off[size_t(e + 1)];
    if (xb) {
      const uint16_t *we =
          reinterpret_cast<const uint16_t *>(w3.data()) + e * w3.strides[0];
      std::string err =
          gemmBf16(*s, xb + begin * k, we, int(k),
                   y.data() + begin * y.strides[0], ld(y), end - begin, n, k);
      if (!err.empty())
        return err;
      continue;
    }
    const float *we = wf + e * w3.strides[0];
    std::string err =
        gemm(*s, x.data() + begin * x.strides[0], ld(x), we, ldwf,
             y.data() + begin * y.strides[0], ld(y), end - begin, n, k);
    if (!err.empty())
      return err;
  }
  return "";
}

std::string dsrt::cuda::linear(const MemRef<float, 2> &x,
                               const MemRef<float, 2> &w,
                               const MemRef<float, 2> &y, bool bf16Weights) {
  std::string error = linearImpl(x, w, y, bf16Weights);
  if (error.empty())
    syncForBringUp(bf16Weights ? "cublasGemmEx (dsrt_linear_f32)"
                               : "cublasSgemm (dsrt_linear_f32)");
  return error;
}

std::string dsrt::cuda::groupedLinear(const MemRef<float, 3> &w,
                                      const MemRef<float, 2> &x,
                                      const MemRef<int32_t, 1> &offsets,
                                      const MemRef<float, 2> &y,
                                      bool bf16Weights) {
  std::string error = groupedLinearImpl(w, x, offsets, y, bf16Weights);
  if (error.empty())
    syncForBringUp("cuBLAS (dsrt_grouped_linear_f32)");
  return error;
}
