//===- StepExecutor.cpp - one @ragged_step call per engine step
//-------------------===//
#include "engine/StepExecutor.h"

#include "api/Error.h"
#include "api/Model.h"
#include "cpu/MemRef.h"

using namespace dsrt;
using namespace dsrt::engine;

StepExecutor::StepExecutor(dsrt_model *model, int64_t maxContext,
                           int64_t numPages)
    : model(model), maxCtx(maxContext), numPages(numPages) {
  dsrt_model_info_get(model, &info);
}

bool StepExecutor::available(const dsrt_model *model) {
  // The step is compiled for the CPU; a GPU model keeps the sessions.
  // Every cache dtype: bf16 and fp8 match the float64 reference as closely
  // as f32 once the reference stores the few values f32 rounds across a
  // rounding boundary the way f32 did (test/tools/ds_testing/cache_ties.py;
  // the 1.6e-3 bf16 drift once seen here was one such value, not a kernel
  // error). A per-head K/V cache exists only here.
  return model && model->step && !model->gpu;
}

std::string StepExecutor::allocate() {
  size_t pageBytes =
      size_t(kPageTokens) * size_t(info.kv_cache_bytes_per_token);
  if (numPages <= 0 || size_t(numPages) > SIZE_MAX / pageBytes)
    return "page pool of " + std::to_string(numPages) +
           " pages is out of range";
  // Zero: pages are touched only as sequences fill them, and a never
  // written row is zero, never a NaN pattern a kernel could trip over.
  if (!pool.allocate(size_t(numPages), pageBytes))
    return "cannot allocate " + std::to_string(numPages * int64_t(pageBytes)) +
           " bytes for a pool of " + std::to_string(numPages) + " pages";
  return "";
}

std::string StepExecutor::check(const StepBatch &b) const {
  std::string problem = checkBatch(b, info.vocab_size, maxCtx);
  // The kernels index the pool with the block tables unguarded: every page
  // a sequence's context touches must be in the pool.
  for (int64_t s = 0; problem.empty() && s < b.numSeqs(); ++s)
    for (int64_t p = 0; p < b.contextLens[size_t(s)]; p += kPageTokens) {
      int32_t page = b.page(s, p);
      if (page < 0 || page >= numPages) {
        problem = "step batch: sequence " +
                  std::to_string(b.seqIds[size_t(s)]) + " has page " +
                  std::to_string(page) + " for position " + std::to_string(p) +
                  ", outside the pool of " + std::to_string(numPages);
        break;
      }
    }
  if (problem.empty() && !pool)
    problem = "step executor: the page pool is not allocated";
  return problem;
}

dsrt_status StepExecutor::run(const StepBatch &b, float *logits) {
  std::string problem = check(b);
  if (!problem.empty())
    return fail(DSRT_ERROR_ARGUMENT, problem);
  return guarded("running a step", [&] {
    int64_t T = b.numTokens(), S = b.numSeqs(),
            R = int64_t(b.logitsRows.size());
    int64_t S1 = S + 1;
    // Entries past a sequence's pages are never read; 0 keeps them in range.
    tables.assign(b.blockTables.begin(), b.blockTables.end());
    for (int32_t &t : tables)
      t = t < 0 ? 0 : t;
    auto mk = [](const std::vector<int32_t> &v, int64_t *n) {
      return makeMemRef<int32_t, 1>(const_cast<int32_t *>(v.data()), n);
    };
    auto tok = mk(b.tokens, &T), pos = mk(b.positions, &T);
    auto qs = mk(b.queryStart, &S1), ctx = mk(b.contextLens, &S);
    auto rows = mk(b.logitsRows, &R);
    int64_t tableShape[2] = {S, b.maxPagesPerSeq};
    auto bt = makeMemRef<int32_t, 2>(tables.data(), tableShape);
    // Rows of cacheRowElements() elements (bytes for fp8), as sessions'.
    int64_t cacheShape[4] = {info.num_layers, numPages, kPageTokens,
                             model->manifest.stepRowElements()};
    // As for sessions: a bf16 or fp8 pool travels as a float descriptor,
    // only the kernels read its elements.
    auto cache =
        makeMemRef<float, 4>(reinterpret_cast<float *>(pool.get()), cacheShape);
    int64_t logitsShape[2] = {R, info.vocab_size};
    auto out = makeMemRef<float, 2>(logits, logitsShape);
    int64_t naiveBefore = model->naiveSegments.load(),
            naiveTokensBefore = model->naiveTokens.load(),
            headRowsBefore = model->headMatmulRows.load();
    model->step(model, &tok, &pos, &cache, &qs, &ctx, &bt, &rows, &out);
    ++calls;
    segments += S;
    tokens += T;
    naiveSegments += model->naiveSegments.load() - naiveBefore;
    naiveTokens += model->naiveTokens.load() - naiveTokensBefore;
    headMatmulRows += model->headMatmulRows.load() - headRowsBefore;
    return DSRT_OK;
  });
}
