//===- Mtp.cpp - the C API: multi-token prediction ------------------------===//
//
// The CPU side of dsrt_mtp.h. The main model's positions advance as in
// dsrt_session_prefill; the MTP module has its own position and cache.
//
//===----------------------------------------------------------------------===//
#include "api/Error.h"
#include "api/Model.h"
#include "api/Validation.h"
#include "cpu/MemRef.h"
#include "dsrt/dsrt_mtp.h"

#include <vector>

using namespace dsrt;

namespace {

/// "" when `s` can run an MTP call, else the message.
std::string checkMtp(const dsrt_session *s) {
  if (!s)
    return "NULL session";
  if (s->model->manifest.mtpHiddenSize <= 0)
    return s->model->artifactPath +
           ": the artifact has no MTP module (compile a config with "
           "num_nextn_predict_layers >= 1)";
  if (s->cuda)
    return "multi-token prediction runs on the cpu device only for now";
  // @prefill_hidden writes latent rows where the step keeps per-head K/V.
  if (s->viaStep && s->model->manifest.perHeadStepCache())
    return s->model->artifactPath +
           ": multi-token prediction is not built for per-head K/V pages "
           "(compiled with --kv-layout=per-head)";
  return "";
}

std::vector<int32_t> positionsFrom(int64_t start, int64_t n) {
  std::vector<int32_t> p(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    p[size_t(i)] = int32_t(start + i);
  return p;
}

} // namespace

extern "C" int64_t dsrt_model_mtp_hidden_size(const dsrt_model *model) {
  return model ? model->manifest.mtpHiddenSize : 0;
}

extern "C" int64_t dsrt_session_draft_position(const dsrt_session *s) {
  return s ? s->mtpPosition : -1;
}

extern "C" dsrt_status dsrt_session_prefill_hidden(dsrt_session *s,
                                                   const int32_t *tokens,
                                                   int64_t n, float *logits,
                                                   float *hidden) {
  std::string problem = checkMtp(s);
  if (!problem.empty())
    return fail(s && s->cuda ? DSRT_ERROR_DEVICE : DSRT_ERROR_ARGUMENT,
                problem);
  const Manifest &m = s->model->manifest;
  problem = checkTokens(tokens, n, m.vocabSize);
  if (problem.empty())
    problem = checkContext(s->position, n, s->capacity);
  if (problem.empty() && (!logits || !hidden))
    problem = "no logits or hidden-state buffer given";
  if (!problem.empty())
    return fail(DSRT_ERROR_ARGUMENT, problem);
  return guarded("running the model", [&] {
    std::vector<int32_t> positions = positionsFrom(s->position, n);
    auto tok = makeMemRef<int32_t, 1>(const_cast<int32_t *>(tokens), &n);
    auto pos = makeMemRef<int32_t, 1>(positions.data(), &n);
    int64_t cacheShape[3] = {m.numLayers, s->cacheRows, m.cacheRowElements()};
    auto cache = makeMemRef<float, 3>(reinterpret_cast<float *>(s->cache.get()),
                                      cacheShape);
    int64_t logitsShape[2] = {n, m.vocabSize};
    auto out = makeMemRef<float, 2>(logits, logitsShape);
    int64_t hiddenShape[2] = {n, m.mtpHiddenSize};
    auto h = makeMemRef<float, 2>(hidden, hiddenShape);
    s->model->prefillHidden(s->model, &tok, &pos, &cache, &out, &h);
    s->position += n;
    return DSRT_OK;
  });
}

extern "C" dsrt_status dsrt_session_draft(dsrt_session *s, const float *hidden,
                                          const int32_t *nextTokens, int64_t n,
                                          float *logits, float *hiddenOut) {
  std::string problem = checkMtp(s);
  if (!problem.empty())
    return fail(s && s->cuda ? DSRT_ERROR_DEVICE : DSRT_ERROR_ARGUMENT,
                problem);
  const Manifest &m = s->model->manifest;
  problem = checkTokens(nextTokens, n, m.vocabSize, "next token id");
  if (problem.empty())
    problem = checkContext(s->mtpPosition, n, s->capacity);
  if (problem.empty() && (!logits || !hidden))
    problem = "no logits or hidden-state buffer given";
  if (!problem.empty())
    return fail(DSRT_ERROR_ARGUMENT, problem);
  int64_t perToken = m.mtpCacheLayers * m.cacheRowBytes();
  if (!s->mtpCache) {
    if (!s->mtpCache.allocate(size_t(s->capacity), size_t(perToken)))
      return fail(DSRT_ERROR_OUT_OF_MEMORY,
                  "cannot allocate the MTP cache (" +
                      std::to_string(s->capacity * perToken) + " bytes)");
  }
  return guarded("running the MTP module", [&] {
    std::vector<int32_t> positions = positionsFrom(s->mtpPosition, n);
    auto tok = makeMemRef<int32_t, 1>(const_cast<int32_t *>(nextTokens), &n);
    auto pos = makeMemRef<int32_t, 1>(positions.data(), &n);
    int64_t cacheShape[3] = {m.mtpCacheLayers, s->capacity,
                             m.cacheRowElements()};
    auto cache = makeMemRef<float, 3>(
        reinterpret_cast<float *>(s->mtpCache.get()), cacheShape);
    int64_t hiddenShape[2] = {n, m.mtpHiddenSize};
    auto h = makeMemRef<float, 2>(const_cast<float *>(hidden), hiddenShape);
    int64_t logitsShape[2] = {n, m.vocabSize};
    auto out = makeMemRef<float, 2>(logits, logitsShape);
    // The entry point always writes the output states; a caller not
    // chaining drafts need not keep them.
    std::vector<float> discard;
    if (!hiddenOut) {
      discard.resize(size_t(n * m.mtpHiddenSize));
      hiddenOut = discard.data();
    }
    auto hOut = makeMemRef<float, 2>(hiddenOut, hiddenShape);
    s->model->draft(s->model, &tok, &pos, &cache, &h, &out, &hOut);
    s->mtpPosition += n;
    return DSRT_OK;
  });
}
