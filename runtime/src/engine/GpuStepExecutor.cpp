//===- GpuStepExecutor.cpp - the compiled ragged step on the GPU ----------===//
#include "engine/GpuStepExecutor.h"

#include "api/Error.h"
#include "api/Model.h"
#include "cpu/MemRef.h"
#include "cuda/Device.h"
#include "cuda/Graph.h"

#include <algorithm>
#include <cstring>

using namespace dsrt;
using namespace dsrt::engine;

GpuStepExecutor::GpuStepExecutor(dsrt_model *model, int64_t maxContext,
                                 int64_t numPages)
    : model(model), maxCtx(maxContext), numPages(numPages) {
  dsrt_model_info_get(model, &info);
}

GpuStepExecutor::~GpuStepExecutor() = default;

bool GpuStepExecutor::available(const dsrt_model *model) {
  // fp8 caches are not paged (the compiler gives them no @ragged_step).
  return model && model->step && model->gpu &&
         (model->manifest.cacheDtype == "f32" ||
          model->manifest.cacheDtype == "bf16");
}

std::string GpuStepExecutor::allocate() {
  size_t pageBytes =
      size_t(kPageTokens) * size_t(info.kv_cache_bytes_per_token);
  if (numPages <= 0 || size_t(numPages) > SIZE_MAX / pageBytes)
    return "page pool of " + std::to_string(numPages) +
           " pages is out of range";
  // The metadata buffer starts at a decode step of 64 sequences with 64
  // pages each and grows with the batch.
  return cuda::openDeviceSession(
      *model->gpu, "the page pool of " + std::to_string(numPages) + " pages",
      size_t(numPages) * pageBytes, size_t(64 * 72) * sizeof(int32_t), dev);
}

namespace {

/// Where each array of the step starts in the packed metadata (int32
/// elements; every array 16-byte aligned).
struct Layout {
  size_t tokens, positions, queryStart, contextLens, tables, rows, total;
  explicit Layout(const StepBatch &b) {
    size_t at = 0;
    auto next = [&](size_t n) {
      size_t here = at;
      at += (n + 3) / 4 * 4;
      return here;
    };
    size_t T = size_t(b.numTokens()), S = size_t(b.numSeqs());
    tokens = next(T);
    positions = next(T);
    queryStart = next(S + 1);
    contextLens = next(S);
    tables = next(S * size_t(b.maxPagesPerSeq));
    rows = next(b.logitsRows.size());
    total = std::max<size_t>(at, 4);
  }
};

} // namespace

dsrt_status GpuStepExecutor::run(const StepBatch &b, float *logits) {
  std::string problem = checkBatch(b, info.vocab_size, maxCtx);
  // The kernels index the pool with the block tables unguarded.
  for (int64_t s = 0; problem.empty() && s < b.numSeqs(); ++s)
    for (int64_t p = 0; p < b.contextLens[size_t(s)]; p += kPageTokens)
      if (int32_t page = b.page(s, p); page < 0 || page >= numPages) {
        problem = "step batch: sequence " +
                  std::to_string(b.seqIds[size_t(s)]) + " has page " +
                  std::to_string(page) + " for position " + std::to_string(p) +
                  ", outside the pool of " + std::to_string(numPages);
        break;
      }
  if (problem.empty() && !dev)
    problem = "step executor: the device page pool is not allocated";
  if (!problem.empty())
    return fail(DSRT_ERROR_ARGUMENT, problem);
  return guarded("running a step on the GPU", [&] {
    std::string error = runOnDevice(b, logits);
    if (!error.empty())
      return fail(DSRT_ERROR_DEVICE, error);
    ++calls;
    return DSRT_OK;
  });
}

std::string GpuStepExecutor::runOnDevice(const StepBatch &b, float *logits) {
  cuda::DeviceSession &d = *dev;
  const cuda::Gpu &g = d.g;
  int64_t T = b.numTokens(), S = b.numSeqs(), R = int64_t(b.logitsRows.size()),
          P = b.maxPagesPerSeq;
  uploads = 0;
  cuda::CUresult r = g.bind();
  if (r != cuda::CUDA_SUCCESS)
    return g.describe("cuCtxSetCurrent", r);

  Layout at(b);
  meta.assign(at.total, 0);
  std::copy(b.tokens.begin(), b.tokens.end(), meta.begin() + at.tokens);
  std::copy(b.positions.begin(), b.positions.end(),
            meta.begin() + at.positions);
  std::copy(b.queryStart.begin(), b.queryStart.end(),
            meta.begin() + at.queryStart);
  std::copy(b.contextLens.begin(), b.contextLens.end(),
            meta.begin() + at.contextLens);
  // Entries past a sequence's pages are never read; 0 keeps them in range.
  for (size_t i = 0; i < b.blockTables.size(); ++i)
    meta[at.tables + i] = std::max(b.blockTables[i], 0);
  std::copy(b.logitsRows.begin(), b.logitsRows.end(), meta.begin() + at.rows);

  // The previous step ended with the stream drained: buffers may be
  // replaced without waiting.
  std::string error;
  size_t metaBytes = at.total * sizeof(int32_t);
  if (d.tokens.size() < metaBytes &&
      !(error = d.tokens.allocate(g, std::max(metaBytes, 2 * d.tokens.size())))
           .empty())
    return "step metadata: " + error;
  size_t logitsBytes =
      size_t(std::max<int64_t>(R, 1)) * size_t(info.vocab_size) * sizeof(float);
  if (d.logits.size() < logitsBytes &&
      !(error = d.logits.allocate(g, logitsBytes)).empty())
    return "step logits: " + error;
  if (!(error = d.arena.reset()).empty())
    return error;
  r = g.drv.cuMemcpyHtoDAsync(d.tokens.ptr(), meta.data(), metaBytes, d.stream);
  if (r != cuda::CUDA_SUCCESS)
    return g.describe("uploading the step metadata", r);
  ++uploads;

  int32_t *m = d.tokens.as<int32_t>();
  int64_t S1 = S + 1;
  auto tok = makeMemRef<int32_t, 1>(m + at.tokens, &T);
  auto pos = makeMemRef<int32_t, 1>(m + at.positions, &T);
  auto qs = makeMemRef<int32_t, 1>(m + at.queryStart, &S1);
  auto ctx = makeMemRef<int32_t, 1>(m + at.contextLens, &S);
  auto rows = makeMemRef<int32_t, 1>(m + at.rows, &R);
  int64_t tableShape[2] = {S, P};
  auto bt = makeMemRef<int32_t, 2>(m + at.tables, tableShape);
  int64_t cacheShape[4] = {info.num_layers, numPages, kPageTokens,
                           info.cache_width};
  auto cache = makeMemRef<float, 4>(d.cache.as<float>(), cacheShape);
  int64_t logitsShape[2] = {R, info.vocab_size};
  auto out = makeMemRef<float, 2>(d.logits.as<float>(), logitsShape);

  cuda::Execution ex;
  ex.session = &d;
  // The split count of the attention kernels follows the longest context.
  ex.contextTokens =
      b.contextLens.empty()
          ? 0
          : *std::max_element(b.contextLens.begin(), b.contextLens.end());
  cuda::Execution::current() = &ex;
  cuda::runStep(d, ex, reinterpret_cast<const void *>(model->step), T, [&] {
    model->step(model, &tok, &pos, &cache, &qs, &ctx, &bt, &rows, &out);
  });
  cuda::Execution::current() = nullptr;
  size_t rowsBytes = size_t(R) * size_t(info.vocab_size) * sizeof(float);
  hostLogits.resize(size_t(R) * size_t(info.vocab_size));
  r = cuda::CUDA_SUCCESS;
  if (!ex.failed() && rowsBytes)
    r = g.drv.cuMemcpyDtoHAsync(hostLogits.data(), d.logits.ptr(), rowsBytes,
                                d.stream);
  // Drained even after a failure: the next step may reuse every buffer.
  cuda::CUresult drained = g.drv.cuStreamSynchronize(d.stream);
  if (ex.failed())
    return ex.error;
  if (r != cuda::CUDA_SUCCESS)
    return g.describe("reading the step's logits", r);
  if (drained != cuda::CUDA_SUCCESS)
    return g.describe("running the step", drained);
  if (rowsBytes)
    std::memcpy(logits, hostLogits.data(), rowsBytes);
  return "";
}
