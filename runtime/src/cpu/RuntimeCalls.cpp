//===- RuntimeCalls.cpp - functions generated code calls ------------------===//
//
// The names and signatures are fixed by convert-ds-to-loops
// (lib/Conversion/DSToLoops): weight bindings by index and GEMMs. The
// context pointer is the dsrt_model the entry point was called with.
//
//===----------------------------------------------------------------------===//
#include "api/Model.h"
#include "cpu/MemRef.h"

#include <cblas.h>

using namespace dsrt;

namespace {

template <int N>
void bindWeight(MemRef<float, N> *result, void *ctx, int64_t index) {
  auto *model = static_cast<dsrt_model *>(ctx);
  const BoundWeight &w = model->weights[size_t(index)];
  *result = makeMemRef<float, N>(const_cast<float *>(w.data.data()),
                                 w.shape.data());
}

/// y[rows, n] = x[rows, k] * w[n, k]^T for row-major views.
void gemmNT(const float *x, int64_t ldx, const float *w, int64_t ldw, float *y,
            int64_t ldy, int64_t rows, int64_t n, int64_t k) {
  if (rows == 0 || n == 0)
    return;
  // Decode is one row: a matrix-vector product, which this OpenBLAS
  // (0.3.21) does not route to its faster gemv kernels by itself.
  if (rows == 1) {
    cblas_sgemv(CblasRowMajor, CblasNoTrans, int(n), int(k), 1.0f, w, int(ldw),
                x, 1, 0.0f, y, 1);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(rows), int(n),
              int(k), 1.0f, x, int(ldx), w, int(ldw), 0.0f, y, int(ldy));
}

} // namespace

extern "C" {

__attribute__((visibility("default"))) void
_mlir_ciface_dsrt_weight_f32_r1(MemRef<float, 1> *r, void *ctx, int64_t i) {
  bindWeight<1>(r, ctx, i);
}
__attribute__((visibility("default"))) void
_mlir_ciface_dsrt_weight_f32_r2(MemRef<float, 2> *r, void *ctx, int64_t i) {
  bindWeight<2>(r, ctx, i);
}
__attribute__((visibility("default"))) void
_mlir_ciface_dsrt_weight_f32_r3(MemRef<float, 3> *r, void *ctx, int64_t i) {
  bindWeight<3>(r, ctx, i);
}

__attribute__((visibility("default"))) void
_mlir_ciface_dsrt_linear_f32(void *, MemRef<float, 2> *x,
                             MemRef<float, 2> *w, MemRef<float, 2> *y) {
  gemmNT(x->data(), x->strides[0], w->data(), w->strides[0], y->data(),
         y->strides[0], x->sizes[0], w->sizes[0], x->sizes[1]);
}

__attribute__((visibility("default"))) void
_mlir_ciface_dsrt_grouped_linear_f32(void *, MemRef<float, 2> *x,
                                     MemRef<float, 3> *w,
                                     MemRef<int32_t, 1> *offsets,
                                     MemRef<float, 2> *y) {
  const int32_t *off = offsets->data();
  int64_t experts = w->sizes[0], n = w->sizes[1], k = w->sizes[2];
  for (int64_t e = 0; e < experts; ++e) {
    int64_t begin = off[e * offsets->strides[0]];
    int64_t end = off[(e + 1) * offsets->strides[0]];
    gemmNT(x->data() + begin * x->strides[0], x->strides[0],
           w->data() + e * w->strides[0], w->strides[1],
           y->data() + begin * y->strides[0], y->strides[0], end - begin, n, k);
  }
}

__attribute__((visibility("default"))) void
_mlir_ciface_dsrt_trace_routing(void *ctx, int64_t ordinal,
                                MemRef<int32_t, 2> *ids) {
  auto *model = static_cast<dsrt_model *>(ctx);
  std::string rec = "{\"layer\": " + std::to_string(ordinal) +
                    ", \"experts\": [";
  for (int64_t t = 0; t < ids->sizes[0]; ++t) {
    rec += t ? ", [" : "[";
    for (int64_t j = 0; j < ids->sizes[1]; ++j)
      rec += (j ? ", " : "") +
             std::to_string(ids->data()[t * ids->strides[0] + j * ids->strides[1]]);
    rec += "]";
  }
  rec += "]}";
  if (!model->routingTrace.empty())
    model->routingTrace += ", ";
  model->routingTrace += rec;
}

} // extern "C"
