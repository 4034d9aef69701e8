//===- RuntimeCalls.cpp - functions generated code calls ------------------===//
//
// The names and signatures are fixed by convert-ds-to-loops
// (lib/Conversion/DSToLoops/GemmAndWeightCalls.cpp) through MLIR's C interface:
// memrefs travel as pointers to descriptors, and a memref *result* comes
// back through a pointer passed first. The context pointer is the
// dsrt_model the entry point was called with.
//
// These symbols must stay visible: the artifact's object is dlopen()ed
// RTLD_LOCAL and resolves them from libdsrt in the global scope.
//
//===----------------------------------------------------------------------===//
#include "api/Error.h"
#include "api/Model.h"
#include "cpu/Gemm.h"
#include "cpu/HeadMatmul.h"
#include "cpu/MemRef.h"
#include "cpu/Scratch.h"
#include "cpu/ThreadPool.h"

#include <algorithm>
#include "cuda/Gemm.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#define DSRT_EXPORT extern "C" __attribute__((visibility("default")))

using namespace dsrt;

namespace {

template <int N>
void bindWeight(MemRef<float, N> *result, void *ctx, int64_t index) {
  auto *model = static_cast<dsrt_model *>(ctx);
  // A bad index or rank is a mismatch between the code and its own
  // manifest: the generated code would index past the buffer.
  if (index < 0 || size_t(index) >= model->weights.size())
    fatalInternalError("the kernels ask for weight binding " +
                       std::to_string(index) + ", the manifest has " +
                       std::to_string(model->weights.size()));
  const BoundWeight &w = model->weights[size_t(index)];
  if (w.shape.size() != size_t(N))
    fatalInternalError("the kernels ask for weight binding " +
                       std::to_string(index) + " as rank " + std::to_string(N) +
                       ", the manifest says rank " +
                       std::to_string(w.shape.size()));
  // On the GPU the kernels get the device copy (never a host pointer). On
  // the CPU an in-place binding travels as its address in the mapping:
  // generated code reads it only when it is f32 (GEMM-only bindings of
  // other formats are read by the GEMM calls below, which recognise the
  // address: inPlaceByAddress).
  float *data = model->gpu ? w.device.as<float>()
                : w.inPlace ? static_cast<float *>(const_cast<void *>(w.inPlace))
                            : const_cast<float *>(w.data.data());
  *result = makeMemRef<float, N>(data, w.shape.data());
}

bool onGpu(void *ctx) { return static_cast<dsrt_model *>(ctx)->gpu; }

/// The bf16 binding whose storage starts at `address`, or nullptr (GPU).
const BoundWeight *bf16Binding(void *ctx, const void *address) {
  auto &map = static_cast<dsrt_model *>(ctx)->bf16ByAddress;
  if (map.empty())
    return nullptr;
  auto it = map.find(address);
  return it == map.end() ? nullptr : it->second;
}

/// The CPU binding read in place at `address`, or nullptr. The generated
/// code passes the whole binding (never a view of it): a view would be a
/// mismatch between the code and its manifest.
const BoundWeight *inPlaceBinding(void *ctx, const char *what,
                                  const void *address, int64_t offset,
                                  const int64_t *sizes, size_t rank) {
  auto &map = static_cast<dsrt_model *>(ctx)->inPlaceByAddress;
  auto it = map.find(address);
  if (it == map.end())
    return nullptr;
  const BoundWeight *b = it->second;
  bool whole = offset == 0 && b->shape.size() == rank;
  for (size_t i = 0; whole && i < rank; ++i)
    whole = sizes[i] == b->shape[i];
  if (!whole)
    fatalInternalError(std::string(what) + ": a view of a weight binding");
  return b;
}

/// A failed GPU call cannot abort the process over a device error (out of
/// memory, a lost device): the call in flight records it and the runtime
/// reports it when the entry point returns.
void checkGpu(const std::string &error) {
  if (error.empty())
    return;
  if (cuda::Execution *e = cuda::Execution::current())
    e->fail(error);
  else
    fatalInternalError(error);
}

void check(const std::string &error) {
  if (!error.empty())
    fatalInternalError(error);
}

} // namespace

DSRT_EXPORT void _mlir_ciface_dsrt_weight_f32_r1(MemRef<float, 1> *r, void *ctx,
                                                 int64_t i) {
  bindWeight<1>(r, ctx, i);
}
DSRT_EXPORT void _mlir_ciface_dsrt_weight_f32_r2(MemRef<float, 2> *r, void *ctx,
                                                 int64_t i) {
  bindWeight<2>(r, ctx, i);
}
DSRT_EXPORT void _mlir_ciface_dsrt_weight_f32_r3(MemRef<float, 3> *r, void *ctx,
                                                 int64_t i) {
  bindWeight<3>(r, ctx, i);
}

namespace {
thread_local int64_t logitsRows = -1;

/// The last `rows` rows of a [T, ...] view.
MemRef<float, 2> lastRows(const MemRef<float, 2> &m, int64_t rows) {
  MemRef<float, 2> out = m;
  out.offset += (m.sizes[0] - rows) * m.strides[0];
  out.sizes[0] = rows;
  return out;
}
} // namespace

void dsrt::setLogitsRows(int64_t rows) { logitsRows = rows; }

DSRT_EXPORT void _mlir_ciface_dsrt_linear_f32(void *ctx, MemRef<float, 2> *x,
                                              MemRef<float, 2> *w,
                                              MemRef<float, 2> *y) {
  const BoundWeight *bf = bf16Binding(ctx, w->aligned);
  if (onGpu(ctx))
    return checkGpu(cuda::linear(*x, *w, *y, bf != nullptr));
  // The logits GEMM of a call that reads only its last rows (a greedy
  // prefill): the other rows are never computed.
  MemRef<float, 2> xs, ys;
  if (logitsRows >= 0 && logitsRows < x->sizes[0] &&
      w->aligned == static_cast<dsrt_model *>(ctx)->logitsWeight) {
    xs = lastRows(*x, logitsRows);
    ys = lastRows(*y, logitsRows);
    x = &xs;
    y = &ys;
  }
  if (const BoundWeight *b = inPlaceBinding(ctx, "dsrt_linear_f32", w->aligned,
                                             w->offset, w->sizes, 2))
    return check(cpu::linear(*x, b->matrix, *y));
  check(cpu::linear(*x, *w, *y));
}

DSRT_EXPORT void _mlir_ciface_dsrt_linear_silu_mul_f32(void *ctx,
                                                       MemRef<float, 2> *x,
                                                       MemRef<float, 2> *w,
                                                       MemRef<float, 2> *y) {
  // The GPU pipeline lowers the fused op to a GEMM and a kernel instead.
  if (onGpu(ctx))
    return checkGpu("dsrt_linear_silu_mul_f32 called on the GPU path");
  if (const BoundWeight *b = inPlaceBinding(ctx, "dsrt_linear_silu_mul_f32",
                                             w->aligned, w->offset, w->sizes,
                                             2))
    return check(cpu::linearSiluMul(*x, b->matrix, *y));
  check(cpu::linearSiluMul(*x, *w, *y));
}

DSRT_EXPORT void _mlir_ciface_dsrt_grouped_linear_f32(
    void *ctx, MemRef<float, 2> *x, MemRef<float, 3> *w,
    MemRef<int32_t, 1> *offsets, MemRef<float, 2> *y) {
  const BoundWeight *bf = bf16Binding(ctx, w->aligned);
  if (onGpu(ctx))
    return checkGpu(cuda::groupedLinear(*w, *x, *offsets, *y, bf != nullptr));
  if (const BoundWeight *b =
          inPlaceBinding(ctx, "dsrt_grouped_linear_f32", w->aligned,
                         w->offset, w->sizes, 3))
    return check(
        cpu::groupedLinear(*x, b->matrix, b->shape[0], *offsets, *y));
  check(cpu::groupedLinear(*x, *w, *offsets, *y));
}

/// ds.grouped_matmul's gather form on the CPU path (ds-gather-expert-rows):
/// x is the tokens' rows, read through row_of_slot while packing. The GPU
/// pipeline keeps the permuted rows.
DSRT_EXPORT void _mlir_ciface_dsrt_grouped_linear_gather_f32(
    void *ctx, MemRef<float, 2> *x, MemRef<float, 3> *w,
    MemRef<int32_t, 1> *offsets, MemRef<int32_t, 1> *rowOfSlot,
    MemRef<float, 2> *y) {
  if (onGpu(ctx))
    return checkGpu("dsrt_grouped_linear_gather_f32 called on the GPU path");
  if (const BoundWeight *b =
          inPlaceBinding(ctx, "dsrt_grouped_linear_gather_f32", w->aligned,
                         w->offset, w->sizes, 3))
    return check(cpu::groupedLinear(*x, b->matrix, b->shape[0], *offsets, *y,
                                    rowOfSlot));
  check(cpu::groupedLinear(*x, *w, *offsets, *y, rowOfSlot));
}

namespace {
/// What both ds.head_matmul calls share: CPU only (the GPU pipeline keeps
/// ds.head_matmul a generated kernel), and kv_b_proj read in place when it
/// is bound so. `run` gets the weight, as a WeightMatrix or as the f32
/// memref, and returns the kernel's error.
template <typename Run>
void headMatmulCall(void *ctx, const char *name, MemRef<float, 2> *w,
                    Run &&run) {
  if (onGpu(ctx))
    return checkGpu(std::string(name) + " called on the GPU path");
  if (const BoundWeight *b =
          inPlaceBinding(ctx, name, w->aligned, w->offset, w->sizes, 2))
    return check(run(b->matrix));
  check(run(*w));
}
} // namespace
namespace {
/// Both forms of ds.grouped_matmul_silu_mul's call (rowOfSlot: the
/// gather form's, else null).
void groupedSiluMulCall(void *ctx, const char *what, MemRef<float, 2> *x,
                        MemRef<float, 3> *gate, MemRef<float, 3> *up,
                        MemRef<int32_t, 1> *offsets,
                        MemRef<int32_t, 1> *rowOfSlot, MemRef<float, 2> *y) {
  if (onGpu(ctx))
    return checkGpu(std::string(what) + " called on the GPU path");
  const BoundWeight *g = inPlaceBinding(ctx, what, gate->aligned, gate->offset,
                                        gate->sizes, 3);
  const BoundWeight *u =
      inPlaceBinding(ctx, what, up->aligned, up->offset, up->sizes, 3);
  if (g && u)
    return check(cpu::groupedLinearSiluMul(
        *x, g->matrix, u->matrix, g->shape[0], *offsets, *y, rowOfSlot));
  if (g || u)
    return check("grouped_linear_silu_mul: only one of gate and up is read "
                 "in place");
  check(cpu::groupedLinearSiluMul(*x, *gate, *up, *offsets, *y, rowOfSlot));
}
} // namespace

/// ds.grouped_matmul_silu_mul on the CPU path: the routed experts' gate and
/// up products and their SiLU-mul in one call (the GPU pipeline lowers the
/// op to two grouped GEMMs and a kernel instead).
DSRT_EXPORT void _mlir_ciface_dsrt_grouped_linear_silu_mul_f32(
    void *ctx, MemRef<float, 2> *x, MemRef<float, 3> *gate,
    MemRef<float, 3> *up, MemRef<int32_t, 1> *offsets, MemRef<float, 2> *y) {
  groupedSiluMulCall(ctx, "dsrt_grouped_linear_silu_mul_f32", x, gate, up,
                     offsets, nullptr, y);
}

/// Its gather form (ds-gather-expert-rows): x is the tokens' rows.
DSRT_EXPORT void _mlir_ciface_dsrt_grouped_linear_silu_mul_gather_f32(
    void *ctx, MemRef<float, 2> *x, MemRef<float, 3> *gate,
    MemRef<float, 3> *up, MemRef<int32_t, 1> *offsets,
    MemRef<int32_t, 1> *rowOfSlot, MemRef<float, 2> *y) {
  groupedSiluMulCall(ctx, "dsrt_grouped_linear_silu_mul_gather_f32", x, gate,
                     up, offsets, rowOfSlot, y);
}

/// ds.head_matmul on the CPU path (convert-ds-to-loops head-matmul-calls):
/// the absorbed MLA's products with blocks of kv_b_proj, which is then read
/// in place like any GEMM weight. Its rows count into the engine's
/// step_head_matmul_rows.
DSRT_EXPORT void _mlir_ciface_dsrt_head_matmul_f32(
    void *ctx, MemRef<float, 3> *x, MemRef<float, 2> *w, MemRef<float, 3> *out,
    int64_t group, int64_t offset, int64_t transpose) {
  headMatmulCall(ctx, "dsrt_head_matmul_f32", w, [&](const auto &weight) {
    static_cast<dsrt_model *>(ctx)->headMatmulRows.fetch_add(
        x->sizes[0], std::memory_order_relaxed);
    return cpu::headMatmul(*x, weight, *out, group, offset, transpose != 0);
  });
}

/// ds.head_matmul skip(query_start): the head products of a ragged step's
/// absorbed sequences only; the rows of the naive ones are zeroed. The rows
/// computed are counted (the engine's step_head_matmul_rows).
DSRT_EXPORT void _mlir_ciface_dsrt_head_matmul_skip_f32(
    void *ctx, MemRef<float, 3> *x, MemRef<float, 2> *w, MemRef<float, 3> *out,
    MemRef<int32_t, 1> *queryStart, int64_t group, int64_t offset,
    int64_t transpose, int64_t naiveMinTokens) {
  headMatmulCall(ctx, "dsrt_head_matmul_skip_f32", w, [&](const auto &weight) {
    int64_t rows = 0;
    std::string error =
        cpu::headMatmulSkip(*x, weight, *out, *queryStart, group, offset,
                            transpose != 0, naiveMinTokens, &rows);
    static_cast<dsrt_model *>(ctx)->headMatmulRows.fetch_add(
        rows, std::memory_order_relaxed);
    return error;
  });
}

/// The naive MLA form's expansion through kv_b_proj (convert-ds-to-loops
/// head-matmul-calls): a GEMM in f32 arithmetic (cpu::linearExact).
DSRT_EXPORT void _mlir_ciface_dsrt_linear_exact_f32(void *ctx,
                                                    MemRef<float, 2> *x,
                                                    MemRef<float, 2> *w,
                                                    MemRef<float, 2> *y) {
  if (onGpu(ctx))
    return checkGpu("dsrt_linear_exact_f32 called on the GPU path");
  if (const BoundWeight *b = inPlaceBinding(ctx, "dsrt_linear_exact_f32",
                                            w->aligned, w->offset, w->sizes, 2))
    return check(cpu::linearExact(*x, b->matrix, *y));
  check(cpu::linearExact(*x, *w, *y));
}

/// ds.embedding on the CPU path (convert-ds-to-loops runtime-embedding):
/// the table's rows are converted as they are gathered, so a bf16 or FP8
/// table is read in place instead of from an f32 copy.
DSRT_EXPORT void _mlir_ciface_dsrt_embedding_f32(void *ctx,
                                                 MemRef<float, 2> *table,
                                                 MemRef<int32_t, 1> *ids,
                                                 MemRef<float, 2> *out) {
  if (onGpu(ctx))
    return checkGpu("dsrt_embedding_f32 called on the GPU path");
  if (const BoundWeight *b =
          inPlaceBinding(ctx, "dsrt_embedding_f32", table->aligned,
                         table->offset, table->sizes, 2))
    return check(cpu::embedding(b->matrix, *ids, *out));
  check(cpu::embedding(*table, *ids, *out));
}

/// A sequence of a ragged step took the naive MLA form in layer `layer`
/// (its kernel calls this before computing it): the engine's
/// step_naive_segments, and a line on stderr with DSRT_DEBUG=1.
DSRT_EXPORT void _mlir_ciface_dsrt_trace_naive_segment(void *ctx, int64_t layer,
                                                       int64_t tokens) {
  auto *model = static_cast<dsrt_model *>(ctx);
  if (layer != 0)
    return;
  model->naiveSegments.fetch_add(1, std::memory_order_relaxed);
  model->naiveTokens.fetch_add(tokens, std::memory_order_relaxed);
  static const bool debug = [] {
    const char *v = std::getenv("DSRT_DEBUG");
    return v && *v && std::string(v) != "0";
  }();
  if (debug)
    std::fprintf(stderr, "dsrt: ragged step: a sequence of %lld new tokens "
                         "takes the naive MLA form\n",
                 static_cast<long long>(tokens));
}

/// Artifacts compiled with --trace-routing report each MoE layer's expert
/// choices ([tokens, k] ids) here.
DSRT_EXPORT void _mlir_ciface_dsrt_trace_routing(void *ctx, int64_t ordinal,
                                                 MemRef<int32_t, 2> *ids) {
  auto *model = static_cast<dsrt_model *>(ctx);
  // On the GPU the ids are device memory: read them into a host copy.
  std::vector<int32_t> hostIds;
  MemRef<int32_t, 2> hostView;
  if (model->gpu) {
    cuda::Execution *e = cuda::Execution::current();
    if (!e || !e->session || e->failed())
      return;
    int64_t shape[2] = {ids->sizes[0], ids->sizes[1]};
    hostIds.resize(size_t(shape[0] * shape[1]));
    for (int64_t t = 0; t < shape[0]; ++t) {
      cuda::CUresult r = model->gpu->drv.cuMemcpyDtoHAsync(
          hostIds.data() + t * shape[1],
          reinterpret_cast<cuda::CUdeviceptr>(ids->data() +
                                              t * ids->strides[0]),
          size_t(shape[1]) * sizeof(int32_t), e->session->stream);
      if (r == cuda::CUDA_SUCCESS)
        r = model->gpu->drv.cuStreamSynchronize(e->session->stream);
      if (r != cuda::CUDA_SUCCESS)
        return e->fail(model->gpu->describe("reading routing ids", r));
    }
    hostView = makeMemRef<int32_t, 2>(hostIds.data(), shape);
    ids = &hostView;
  }
  std::string rec =
      "{\"layer\": " + std::to_string(ordinal) + ", \"experts\": [";
  for (int64_t t = 0; t < ids->sizes[0]; ++t) {
    rec += t ? ", [" : "[";
    for (int64_t j = 0; j < ids->sizes[1]; ++j)
      rec += (j ? ", " : "") +
             std::to_string(
                 ids->data()[t * ids->strides[0] + j * ids->strides[1]]);
    rec += "]";
  }
  rec += "]}";
  std::lock_guard<std::mutex> lock(model->traceMutex);
  if (!model->routingTrace.empty())
    model->routingTrace += ", ";
  model->routingTrace += rec;
}

/// The scratch buffer of ds-plan-activations: every activation of an entry
/// point is a view into it. On the GPU, memory of the session's arena; on
/// the CPU a per-thread buffer that only grows (a session is used by one
/// thread at a time, and calls on one thread never overlap).
DSRT_EXPORT void _mlir_ciface_dsrt_scratch(MemRef<uint8_t, 1> *result,
                                           void *ctx, int64_t bytes) {
  if (bytes < 0)
    fatalInternalError("dsrt_scratch: negative size " + std::to_string(bytes));
  uint8_t *data = nullptr;
  if (onGpu(ctx)) {
    cuda::Execution *e = cuda::Execution::current();
    std::string error;
    if (e && e->session && !e->failed())
      data = static_cast<uint8_t *>(
          e->session->arena.allocate(size_t(bytes), error));
    // Null when the call has failed: the generated code goes on, but
    // every GEMM, copy and launch of the call is skipped from then on
    // (cuda/Device.h, Execution), so nothing dereferences it.
    if (!data && !(e && e->failed()))
      checkGpu(error.empty() ? "dsrt_scratch outside a model call" : error);
  } else {
    data = cpu::scratch(size_t(bytes));
    if (!data)
      fatalInternalError("dsrt_scratch: out of memory for " +
                         std::to_string(bytes) + " bytes of activations");
  }
  *result = makeMemRef<uint8_t, 1>(data, &bytes);
}

/// ds-parallelize-kernels: task(packed, begin, end) over [0, n), split over
/// the pool in ranges of at least `grain` iterations. Not coarsened to one
/// range per thread: the pool hands each thread its slice in shrinking
/// runs (a few calls), and grain-sized chunks let a thread that is done
/// take the rest of a slower one's (a causal or ragged attention's later
/// rows cost more; a worker may be scheduled late).
DSRT_EXPORT void dsrt_parallel_for(void (*task)(void *, int64_t, int64_t),
                                   void *packed, int64_t n, int64_t grain) {
  if (!task || n <= 0)
    return;
  grain = std::max<int64_t>(grain, 1);
  cpu::parallelFor(n, grain,
                   [&](int64_t begin, int64_t end) { task(packed, begin, end); });
}
