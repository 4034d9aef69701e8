//===- Session.cpp - the C API: sessions, prefill and decode --------------===//
#include "api/Error.h"
#include "api/Model.h"
#include "api/Validation.h"
#include "cuda/Graph.h"
#include "cpu/MemRef.h"
#include "engine/StepExecutor.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

using namespace dsrt;

namespace {

constexpr int64_t kStepPageTokens = 64;

/// A CPU session runs every call through @ragged_step when the artifact has it:
/// a batch of one sequence whose block table maps page i to page i of the
/// session's own cache, so ds-run, dsrt_generate and the engine share one
/// compiled path. DSRT_STEP=0 runs @prefill/@decode instead (what the GPU
/// runs). @ragged_step picks the MLA form per sequence (naive for a long
/// prompt chunk, absorbed for decode), so --mla-form naive reaches it too.
bool usesStep(const dsrt_model *model) {
  // The cache dtypes the step takes are StepExecutor's.
  if (!dsrt::engine::StepExecutor::available(model))
    return false;
  const char *v = std::getenv("DSRT_STEP");
  return !(v && std::string(v) == "0");
}

/// The device side of a session: cache and token/position buffers for
/// `capacity` tokens; "" or the first failure.
std::string createDeviceSession(dsrt_session &s, size_t cacheBytes) {
  return cuda::openDeviceSession(*s.model->gpu, "the session", cacheBytes,
                                 size_t(s.capacity) * sizeof(int32_t), s.cuda);
}

} // namespace

extern "C" dsrt_status dsrt_session_create(dsrt_model *model, int64_t capacity,
                                           dsrt_session **out) {
  if (!out)
    return fail(DSRT_ERROR_ARGUMENT, "dsrt_session_create: out is NULL");
  *out = nullptr;
  if (!model)
    return fail(DSRT_ERROR_ARGUMENT, "dsrt_session_create: NULL model");
  if (capacity <= 0)
    return fail(DSRT_ERROR_ARGUMENT, "cache capacity must be positive, got " +
                                         std::to_string(capacity));
  // Positions reach the kernels as i32.
  if (capacity > INT32_MAX)
    return fail(DSRT_ERROR_ARGUMENT,
                "cache capacity " + std::to_string(capacity) +
                    " exceeds the largest position (2^31 - 1)");
  const Manifest &m = model->manifest;
  // The step's pages may hold other rows than @prefill/@decode's cache.
  int64_t perToken =
      m.numLayers * (usesStep(model) ? m.stepRowBytes() : m.cacheRowBytes());
  if (capacity > INT64_MAX / perToken)
    return fail(DSRT_ERROR_OUT_OF_MEMORY, "a cache of " +
                                              std::to_string(capacity) +
                                              " tokens does not fit in memory");
  return guarded("creating a session", [&] {
    auto s = std::make_unique<dsrt_session>();
    s->model = model;
    s->capacity = capacity;
    s->viaStep = usesStep(model);
    s->cacheRows = s->viaStep
                       ? (capacity + kStepPageTokens - 1) / kStepPageTokens *
                             kStepPageTokens
                       : capacity;
    if (model->gpu) {
      std::string error = createDeviceSession(*s, size_t(capacity * perToken));
      if (!error.empty())
        return fail(DSRT_ERROR_DEVICE, error);
      *out = s.release();
      return DSRT_OK;
    }
    if (!s->cache.allocate(size_t(s->cacheRows), size_t(perToken)))
      return fail(DSRT_ERROR_OUT_OF_MEMORY,
                  "cannot allocate " + std::to_string(s->cacheRows * perToken) +
                      " bytes for a cache of " + std::to_string(capacity) +
                      " tokens");
    *out = s.release();
    return DSRT_OK;
  });
}

extern "C" void dsrt_session_free(dsrt_session *s) { delete s; }

extern "C" int64_t dsrt_session_position(const dsrt_session *s) {
  return s ? s->position : -1;
}

// The cache is not cleared: the kernels never read past the position.
extern "C" void dsrt_session_reset(dsrt_session *s) {
  if (s)
    s->position = s->mtpPosition = 0;
}

extern "C" dsrt_status dsrt_session_seek(dsrt_session *s, int64_t position) {
  if (!s)
    return fail(DSRT_ERROR_ARGUMENT, "dsrt_session_seek: NULL session");
  if (position < 0 || position >= s->capacity)
    return fail(DSRT_ERROR_ARGUMENT,
                "position " + std::to_string(position) +
                    " is outside the cache [0, " +
                    std::to_string(s->capacity) + ")");
  s->position = position;
  return DSRT_OK;
}

namespace {

/// One call on the GPU: inputs uploaded, the entry point run on the
/// session's stream (Execution routes the generated code's mgpu* and GEMM
/// calls there), logits copied back. "" or what failed.
std::string callOnDevice(dsrt_session *s, const EntryPoint &entry,
                         const int32_t *tokens, const int32_t *positions,
                         int64_t n, float *logits, int32_t *greedy) {
  const Manifest &m = s->model->manifest;
  cuda::DeviceSession &d = *s->cuda;
  const cuda::Gpu &g = d.g;
  cuda::CUresult r = g.bind();
  if (r != cuda::CUDA_SUCCESS)
    return g.describe("cuCtxSetCurrent", r);
  size_t logitsBytes = size_t(n * m.vocabSize) * sizeof(float);
  std::string error;
  if (d.logits.size() < logitsBytes &&
      !(error = d.logits.allocate(g, logitsBytes)).empty())
    return error;
  if (!(error = d.arena.reset()).empty())
    return error;
  size_t idBytes = size_t(n) * sizeof(int32_t);
  r = g.drv.cuMemcpyHtoDAsync(d.tokens.ptr(), tokens, idBytes, d.stream);
  if (r == cuda::CUDA_SUCCESS)
    r = g.drv.cuMemcpyHtoDAsync(d.positions.ptr(), positions, idBytes,
                                d.stream);
  if (r != cuda::CUDA_SUCCESS)
    return g.describe("uploading the tokens", r);
  auto tok = makeMemRef<int32_t, 1>(d.tokens.as<int32_t>(), &n);
  auto pos = makeMemRef<int32_t, 1>(d.positions.as<int32_t>(), &n);
  int64_t cacheShape[3] = {m.numLayers, s->cacheRows, m.cacheRowElements()};
  auto cache = makeMemRef<float, 3>(d.cache.as<float>(), cacheShape);
  int64_t logitsShape[2] = {n, m.vocabSize};
  auto out = makeMemRef<float, 2>(d.logits.as<float>(), logitsShape);
  cuda::Execution ex;
  ex.session = &d;
  ex.contextTokens = s->position + n;
  cuda::Execution::current() = &ex;
  cuda::runStep(d, ex, reinterpret_cast<const void *>(entry.fn), n,
                [&] { entry.fn(s->model, &tok, &pos, &cache, &out); });
  if (greedy && !ex.failed()) {
    // The last row's argmax on the device: one id comes back, not the
    // vocabulary's logits.
    int64_t lastShape[2] = {1, m.vocabSize};
    auto last = makeMemRef<float, 2>(
        d.logits.as<float>() + (n - 1) * m.vocabSize, lastShape);
    std::string error;
    auto *id = static_cast<int32_t *>(d.arena.allocate(sizeof(int32_t), error));
    if (!id)
      ex.fail(error);
    else {
      int64_t one = 1;
      auto ids = makeMemRef<int32_t, 1>(id, &one);
      s->model->sampleGreedy(s->model, &last, &ids);
      r = g.drv.cuMemcpyDtoHAsync(greedy, reinterpret_cast<cuda::CUdeviceptr>(id),
                                  sizeof(int32_t), d.stream);
      if (r != cuda::CUDA_SUCCESS)
        ex.fail(g.describe("reading the sampled token", r));
    }
  }
  cuda::Execution::current() = nullptr;
  r = logits ? g.drv.cuMemcpyDtoHAsync(logits, d.logits.ptr(), logitsBytes,
                                       d.stream)
             : cuda::CUDA_SUCCESS;
  if (r == cuda::CUDA_SUCCESS)
    r = g.drv.cuStreamSynchronize(d.stream);
  if (!ex.error.empty())
    return ex.error;
  if (r != cuda::CUDA_SUCCESS)
    return g.describe("running the model", r);
  return "";
}

/// Tokens [0, n) at the session's position through @ragged_step: one sequence,
/// its pages in order; only the last `logitsRows` rows (all when negative)
/// are computed, into their rows of `logits`.
void callStep(dsrt_session *s, MemRef<int32_t, 1> &tok,
              MemRef<int32_t, 1> &pos, int64_t n, float *logits,
              int64_t logitsRows) {
  const Manifest &m = s->model->manifest;
  int64_t r = logitsRows < 0 ? n : std::min(logitsRows, n);
  int64_t pages = s->cacheRows / kStepPageTokens, one = 1, two = 2;
  std::vector<int32_t> queryStart{0, int32_t(n)};
  std::vector<int32_t> contextLens{int32_t(s->position + n)};
  std::vector<int32_t> rows(static_cast<size_t>(r));
  std::vector<int32_t> table(static_cast<size_t>(pages));
  for (int64_t i = 0; i < r; ++i)
    rows[size_t(i)] = int32_t(n - r + i);
  for (int64_t i = 0; i < pages; ++i)
    table[size_t(i)] = int32_t(i);
  auto qs = makeMemRef<int32_t, 1>(queryStart.data(), &two);
  auto ctx = makeMemRef<int32_t, 1>(contextLens.data(), &one);
  auto rw = makeMemRef<int32_t, 1>(rows.data(), &r);
  int64_t tableShape[2] = {1, pages};
  auto bt = makeMemRef<int32_t, 2>(table.data(), tableShape);
  int64_t cacheShape[4] = {m.numLayers, pages, kStepPageTokens,
                           m.stepRowElements()};
  auto cache = makeMemRef<float, 4>(reinterpret_cast<float *>(s->cache.get()),
                                    cacheShape);
  int64_t logitsShape[2] = {r, m.vocabSize};
  auto out = makeMemRef<float, 2>(
      logits ? logits + (n - r) * m.vocabSize : nullptr, logitsShape);
  s->model->step(s->model, &tok, &pos, &cache, &qs, &ctx, &bt, &rw, &out);
}

/// What a DSRT_DEBUG_CACHE dump holds, as JSON: layers, rows per layer,
/// row bytes, the cache dtype and the row's named parts (the step's
/// per-head rows are one part).
std::string cacheDumpLayout(const dsrt_session *s, size_t bytes) {
  const Manifest &m = s->model->manifest;
  bool perHead = s->viaStep && m.perHeadStepCache();
  int64_t row = s->viaStep ? m.stepRowBytes() : m.cacheRowBytes();
  nlohmann::json parts = nlohmann::json::array();
  if (perHead)
    parts.push_back({{"name", "per-head K and V"}, {"begin", 0}, {"end", row}});
  else
    for (const Manifest::CacheRowPart &p : m.cacheRowParts())
      parts.push_back({{"name", p.name}, {"begin", p.begin}, {"end", p.end}});
  nlohmann::json j = {{"layers", m.numLayers},
                      {"rows", int64_t(bytes) / (m.numLayers * row)},
                      {"row_bytes", row},
                      {"cache_dtype", m.cacheDtype},
                      {"layout", perHead ? "per-head" : "latent"},
                      {"parts", parts}};
  return j.dump() + "\n";
}

/// DSRT_DEBUG_CACHE=path: the session's whole latent cache (every layer's
/// rows, device or host, as the kernels left it) is written to `path`
/// after each call, so a device's cache can be compared byte for byte with
/// the CPU's on the same tokens (bench/gpu/run.py does, when a parity case
/// fails), and its layout to `path`.json (cacheDumpLayout).
void dumpCacheForDebugging(const dsrt_session *s) {
  // Read once: this runs after every prefill and decode call.
  static const char *const path = std::getenv("DSRT_DEBUG_CACHE");
  if (!path || !*path)
    return;
  const Manifest &m = s->model->manifest;
  std::vector<char> bytes;
  if (s->cuda) {
    const cuda::Gpu &g = *s->model->gpu;
    bytes.resize(s->cuda->cache.size());
    cuda::CUresult r = g.drv.cuMemcpyDtoHAsync(
        bytes.data(), s->cuda->cache.ptr(), bytes.size(), s->cuda->stream);
    if (r == cuda::CUDA_SUCCESS)
      r = g.drv.cuStreamSynchronize(s->cuda->stream);
    if (r != cuda::CUDA_SUCCESS) {
      std::fprintf(stderr, "DSRT_DEBUG_CACHE: %s\n",
                   g.describe("reading the cache", r).c_str());
      return;
    }
  } else {
    int64_t row = s->viaStep ? m.stepRowBytes() : m.cacheRowBytes();
    const char *p = reinterpret_cast<const char *>(s->cache.get());
    bytes.assign(p, p + m.numLayers * s->cacheRows * row);
  }
  auto write = [](const std::string &to, const char *data, size_t n) {
    FILE *f = std::fopen(to.c_str(), "wb");
    bool ok = f && std::fwrite(data, 1, n, f) == n;
    if (f)
      ok = std::fclose(f) == 0 && ok;
    if (!ok)
      std::fprintf(stderr, "DSRT_DEBUG_CACHE: cannot write %s\n", to.c_str());
  };
  write(path, bytes.data(), bytes.size());
  std::string layout = cacheDumpLayout(s, bytes.size());
  write(std::string(path) + ".json", layout.data(), layout.size());
}

/// One call of `entry` on tokens [0, n) at the session's position. With
/// `greedy`, the last row's argmax (the generated sampler) goes there, and
/// `logits` may be NULL on the GPU.
std::string call(dsrt_session *s, const EntryPoint &entry,
                 const int32_t *tokens, int64_t n, float *logits,
                 int32_t *greedy = nullptr, int64_t logitsRows = -1) {
  const Manifest &m = s->model->manifest;
  std::vector<int32_t> positions(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    positions[size_t(i)] = int32_t(s->position + i);
  if (s->cuda) {
    std::string error =
        callOnDevice(s, entry, tokens, positions.data(), n, logits, greedy);
    if (error.empty())
      s->position += n;
    dumpCacheForDebugging(s);
    return error;
  }
  auto tok = makeMemRef<int32_t, 1>(const_cast<int32_t *>(tokens), &n);
  auto pos = makeMemRef<int32_t, 1>(positions.data(), &n);
  if (s->viaStep) {
    // A partitioned step gathers every rank's vocabulary piece of the rows
    // it computes: ranks asking for different rows would gather garbage.
    int64_t rows = logitsRows < 0 ? n : std::min(logitsRows, n);
    if (std::string e = sameOnEveryRank(*s->model, rows, "logits rows");
        !e.empty())
      return e;
    callStep(s, tok, pos, n, logits, logitsRows);
  } else {
  int64_t cacheShape[3] = {m.numLayers, s->cacheRows, m.cacheRowElements()};
  // The descriptor layout does not depend on the element type: a bf16
  // cache travels as a float descriptor and only the kernels read it.
  auto cache = makeMemRef<float, 3>(reinterpret_cast<float *>(s->cache.get()),
                                    cacheShape);
  int64_t logitsShape[2] = {n, m.vocabSize};
  auto out = makeMemRef<float, 2>(logits, logitsShape);
  setLogitsRows(logitsRows);
  entry.fn(s->model, &tok, &pos, &cache, &out);
  setLogitsRows(-1);
  }
  if (greedy) {
    int64_t lastShape[2] = {1, m.vocabSize};
    auto last = makeMemRef<float, 2>(logits + (n - 1) * m.vocabSize, lastShape);
    int64_t one = 1;
    auto ids = makeMemRef<int32_t, 1>(greedy, &one);
    s->model->sampleGreedy(s->model, &last, &ids);
  }
  s->position += n;
  dumpCacheForDebugging(s);
  return "";
}

/// Tokens per prefill call: the artifact's bound, and on the GPU at most
/// $DSRT_CUDA_PREFILL_TOKENS (default 512), since one call's activations
/// live in the device arena together. 0 and `error` for a bad setting.
int64_t prefillChunk(const dsrt_session *s, int64_t n, std::string &error) {
  int64_t chunk = s->model->prefill.maxTokens > 0
                      ? std::min(s->model->prefill.maxTokens, n)
                      : n;
  if (!s->cuda)
    return chunk;
  int64_t limit = 512;
  if (const char *v = std::getenv("DSRT_CUDA_PREFILL_TOKENS"); v && *v) {
    char *end = nullptr;
    long long parsed = std::strtoll(v, &end, 10);
    if (*end || parsed <= 0) {
      error = std::string("DSRT_CUDA_PREFILL_TOKENS must be a positive "
                          "number of tokens, got '") +
              v + "'";
      return 0;
    }
    limit = parsed;
  }
  return std::max<int64_t>(1, std::min(chunk, limit));
}

/// Validates, then runs `n` tokens through the decode entry (one token) or
/// the prefill entry (in chunks when the artifact bounds its size).
dsrt_status run(dsrt_session *s, const int32_t *tokens, int64_t n,
                float *logits) {
  if (!s)
    return fail(DSRT_ERROR_ARGUMENT, "NULL session");
  const Manifest &m = s->model->manifest;
  std::string problem = checkTokens(tokens, n, m.vocabSize);
  if (problem.empty())
    problem = checkContext(s->position, n, s->capacity);
  if (problem.empty() && !logits)
    problem = "no logits buffer given";
  if (!problem.empty())
    return fail(DSRT_ERROR_ARGUMENT, problem);
  return guarded("running the model", [&] {
    if (n == 1) {
      std::string error = call(s, s->model->decode, tokens, 1, logits);
      return error.empty() ? DSRT_OK : fail(DSRT_ERROR_DEVICE, error);
    }
    std::string error;
    int64_t chunk = prefillChunk(s, n, error);
    if (!chunk)
      return fail(DSRT_ERROR_ARGUMENT, error);
    for (int64_t done = 0; done < n; done += chunk) {
      int64_t len = std::min(chunk, n - done);
      std::string error = call(s, s->model->prefill, tokens + done, len,
                               logits + done * m.vocabSize);
      if (!error.empty())
        return fail(DSRT_ERROR_DEVICE, error);
    }
    return DSRT_OK;
  });
}

} // namespace

namespace {
/// Runs tokens [0, n) like dsrt_session_prefill, computing only the logits
/// row after the last token: the greedy choice goes to *next (the generated
/// sampler; on the GPU no logits are copied back) or the row to lastRow.
dsrt_status runLast(dsrt_session *s, const int32_t *tokens, int64_t n,
                    int32_t *next, float *lastRow) {
  const Manifest &m = s->model->manifest;
  std::string problem = checkTokens(tokens, n, m.vocabSize);
  if (problem.empty())
    problem = checkContext(s->position, n, s->capacity);
  if (!problem.empty())
    return fail(DSRT_ERROR_ARGUMENT, problem);
  return guarded("running the model", [&] {
    std::string problem;
    int64_t chunk = n == 1 ? 1 : prefillChunk(s, n, problem);
    if (!chunk)
      return fail(DSRT_ERROR_ARGUMENT, problem);
    // Host logits for one call (the CPU kernels write them there); only
    // the last call's last row is computed and read.
    size_t need = s->cuda && next ? 0 : size_t(std::min(chunk, n) * m.vocabSize);
    if (s->greedyLogitsSize < need) {
      s->greedyLogits.reset(new float[need]);
      s->greedyLogitsSize = need;
    }
    float *logits = need ? s->greedyLogits.get() : nullptr;
    for (int64_t done = 0; done < n; done += chunk) {
      int64_t len = std::min(chunk, n - done);
      const EntryPoint &entry = len == 1 ? s->model->decode : s->model->prefill;
      bool last = done + len == n;
      std::string error = call(s, entry, tokens + done, len, logits,
                               last && next ? next : nullptr, last ? 1 : 0);
      if (!error.empty())
        return fail(DSRT_ERROR_DEVICE, error);
      if (last && lastRow)
        std::copy(logits + (len - 1) * m.vocabSize, logits + len * m.vocabSize,
                  lastRow);
    }
    return DSRT_OK;
  });
}
} // namespace

/// For dsrt_generate (api/Generate.cpp).
dsrt_status dsrt::runGreedy(dsrt_session *s, const int32_t *tokens, int64_t n,
                            int32_t *next) {
  return runLast(s, tokens, n, next, nullptr);
}

dsrt_status dsrt::runLastRow(dsrt_session *s, const int32_t *tokens,
                             int64_t n, float *lastRow) {
  return runLast(s, tokens, n, nullptr, lastRow);
}

extern "C" dsrt_status dsrt_session_prefill(dsrt_session *s,
                                            const int32_t *tokens, int64_t n,
                                            float *logits) {
  return run(s, tokens, n, logits);
}

extern "C" dsrt_status dsrt_session_decode(dsrt_session *s, int32_t token,
                                           float *logits) {
  return run(s, &token, 1, logits);
}
