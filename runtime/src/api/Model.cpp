//===- Model.cpp - the C API: models and sessions -------------------------===//
#include "api/Model.h"
#include "cpu/MemRef.h"

#include <cstring>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

using namespace dsrt;

static thread_local std::string lastError;

void dsrt::setLastError(const std::string &message) { lastError = message; }

extern "C" const char *dsrt_last_error(void) { return lastError.c_str(); }

static dsrt_status fail(dsrt_status status, const std::string &message) {
  lastError = message;
  return status;
}

dsrt_model::~dsrt_model() {
  if (library)
    dlclose(library);
}

namespace {

/// dlopen()s the kernels from memory. Their calls into the runtime resolve
/// against the global scope, so libdsrt itself is promoted there first (a
/// Python extension may have loaded it RTLD_LOCAL).
void *openObject(const std::string &object, const std::string &artifact,
                 std::string &error) {
  Dl_info info;
  if (dladdr(reinterpret_cast<void *>(&dsrt_last_error), &info) &&
      info.dli_fname)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
  int fd = memfd_create("ds-kernels", MFD_CLOEXEC);
  std::string path;
  char tmpl[] = "/tmp/ds-kernels-XXXXXX";
  if (fd < 0) {
    fd = mkstemp(tmpl);
    if (fd < 0) {
      error = artifact + ": cannot stage the kernels: " + std::strerror(errno);
      return nullptr;
    }
    path = tmpl;
  } else {
    path = "/proc/self/fd/" + std::to_string(fd);
  }
  size_t done = 0;
  while (done < object.size()) {
    ssize_t n = write(fd, object.data() + done, object.size() - done);
    if (n <= 0) {
      close(fd);
      error = artifact + ": cannot stage the kernels: " + std::strerror(errno);
      return nullptr;
    }
    done += size_t(n);
  }
  void *handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (path.rfind("/tmp/", 0) == 0)
    unlink(path.c_str());
  close(fd);
  if (!handle)
    error = artifact + ": cannot load its native code: " + dlerror();
  return handle;
}

int64_t elementCount(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

size_t cacheElementSize(const dsrt_model *m) {
  return m->artifact.manifest.cacheDtype == "bf16" ? 2 : 4;
}

} // namespace

extern "C" dsrt_status dsrt_model_load(const char *artifactPath,
                                       const char *weightsDir,
                                       const char *device, dsrt_model **out) {
  *out = nullptr;
  std::string dev = device ? device : "cpu";
  if (dev == "cuda")
    return fail(DSRT_ERROR_DEVICE,
                "--device cuda: the CUDA backend is not available in this "
                "build");
  if (dev != "cpu")
    return fail(DSRT_ERROR_ARGUMENT,
                "device '" + dev + "' is unknown (expected cpu or cuda)");
  auto model = std::make_unique<dsrt_model>();
  model->artifactPath = artifactPath;
  std::string error;
  if (!readArtifact(artifactPath, model->artifact, error))
    return fail(DSRT_ERROR_FORMAT, error);
  const Manifest &m = model->artifact.manifest;
  if (m.target != "cpu")
    return fail(DSRT_ERROR_FORMAT,
                std::string(artifactPath) + ": compiled for target '" +
                    m.target + "', this runtime runs 'cpu'");

  model->checkpoint = Checkpoint::open(weightsDir, error);
  if (!model->checkpoint)
    return fail(DSRT_ERROR_WEIGHTS, error);
  std::vector<WeightRequirement> reqs;
  for (const RequiredTensor &t : m.weights)
    reqs.push_back({t.name, t.shape});
  std::vector<std::string> problems =
      validateCheckpoint(*model->checkpoint, reqs);
  if (!problems.empty()) {
    // Every problem, one per line, so a user fixes them all in one go.
    std::string msg;
    for (const std::string &p : problems)
      msg += (msg.empty() ? "" : "\n") + p;
    return fail(DSRT_ERROR_WEIGHTS, msg);
  }

  // Bind: every buffer the kernels ask for, converted to f32 once.
  for (const Binding &b : m.bindings) {
    BoundWeight w;
    w.shape = b.shape;
    w.data.resize(size_t(elementCount(b.shape)));
    size_t per = b.members.size() > 1 ? w.data.size() / b.members.size()
                                      : w.data.size();
    for (size_t i = 0; i < b.members.size(); ++i) {
      const TensorView *t = model->checkpoint->find(b.members[i]);
      if (!t || size_t(t->numElements()) != per)
        return fail(DSRT_ERROR_WEIGHTS,
                    std::string(weightsDir) + ": tensor '" + b.members[i] +
                        "' does not fit binding of shape " +
                        shapeToString(b.shape));
      if (!model->checkpoint->readF32(b.members[i], w.data.data() + i * per,
                                      error))
        return fail(DSRT_ERROR_WEIGHTS, error);
    }
    model->weightsBytes += int64_t(w.data.size() * sizeof(float));
    model->weights.push_back(std::move(w));
  }

  model->library = openObject(model->artifact.object, artifactPath, error);
  if (!model->library)
    return fail(DSRT_ERROR_FORMAT, error);
  model->prefill = reinterpret_cast<EntryFn>(
      dlsym(model->library, m.entrySymbols.at("prefill").c_str()));
  model->decode = reinterpret_cast<EntryFn>(
      dlsym(model->library, m.entrySymbols.at("decode").c_str()));
  if (!model->prefill || !model->decode)
    return fail(DSRT_ERROR_FORMAT, std::string(artifactPath) +
                                       ": entry points missing from its "
                                       "native code");
  // The mapped checkpoint is no longer needed once everything is bound.
  *out = model.release();
  return DSRT_OK;
}

extern "C" void dsrt_model_free(dsrt_model *model) { delete model; }

extern "C" dsrt_status dsrt_model_info_get(const dsrt_model *model,
                                           dsrt_model_info *out) {
  const Manifest &m = model->artifact.manifest;
  out->vocab_size = m.vocabSize;
  out->num_layers = m.numLayers;
  out->cache_width = m.cacheWidth;
  out->kv_cache_bytes_per_token =
      m.numLayers * m.cacheWidth * int64_t(cacheElementSize(model));
  out->weights_bytes = model->weightsBytes;
  out->max_position_embeddings = m.maxPositions;
  out->bos_token_id = m.bosTokenId;
  out->eos_token_id = m.eosTokenId;
  return DSRT_OK;
}

extern "C" dsrt_status dsrt_model_check_weights(const dsrt_model *model) {
  std::vector<std::string> names;
  for (const RequiredTensor &t : model->artifact.manifest.weights)
    names.push_back(t.name);
  std::vector<std::string> problems =
      scanNonFinite(*model->checkpoint, names);
  if (problems.empty())
    return DSRT_OK;
  std::string msg;
  for (const std::string &p : problems)
    msg += (msg.empty() ? "" : "\n") + p;
  return fail(DSRT_ERROR_WEIGHTS, msg);
}

extern "C" dsrt_status dsrt_session_create(dsrt_model *model, int64_t capacity,
                                           dsrt_session **out) {
  *out = nullptr;
  if (capacity <= 0)
    return fail(DSRT_ERROR_ARGUMENT, "cache capacity must be positive, got " +
                                         std::to_string(capacity));
  const Manifest &m = model->artifact.manifest;
  int64_t bytes = m.numLayers * capacity * m.cacheWidth *
                  int64_t(cacheElementSize(model));
  auto s = std::make_unique<dsrt_session>();
  s->model = model;
  s->capacity = capacity;
  s->cache.assign(size_t(bytes), 0);
  *out = s.release();
  return DSRT_OK;
}

extern "C" void dsrt_session_free(dsrt_session *s) { delete s; }
extern "C" int64_t dsrt_session_position(const dsrt_session *s) {
  return s->position;
}
extern "C" void dsrt_session_reset(dsrt_session *s) { s->position = 0; }

static dsrt_status run(dsrt_session *s, const int32_t *tokens, int64_t n,
                       float *logits, EntryFn fn) {
  const Manifest &m = s->model->artifact.manifest;
  if (n <= 0)
    return fail(DSRT_ERROR_ARGUMENT, "empty prompt: at least one token is "
                                     "needed");
  for (int64_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= m.vocabSize)
      return fail(DSRT_ERROR_ARGUMENT,
                  "token id " + std::to_string(tokens[i]) + " at index " +
                      std::to_string(i) + " is out of range [0, " +
                      std::to_string(m.vocabSize) + ")");
  if (s->position + n > s->capacity)
    return fail(DSRT_ERROR_ARGUMENT,
                "context of " + std::to_string(s->position + n) +
                    " tokens exceeds the cache capacity (" +
                    std::to_string(s->capacity) + ")");
  std::vector<int32_t> positions(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    positions[size_t(i)] = int32_t(s->position + i);
  auto tok = makeMemRef<int32_t, 1>(const_cast<int32_t *>(tokens), &n);
  auto pos = makeMemRef<int32_t, 1>(positions.data(), &n);
  int64_t cacheShape[3] = {m.numLayers, s->capacity, m.cacheWidth};
  // The element type only matters to the kernels; the descriptor layout
  // is the same for f32 and bf16 buffers.
  auto cache = makeMemRef<float, 3>(reinterpret_cast<float *>(s->cache.data()),
                                    cacheShape);
  int64_t logitsShape[2] = {n, m.vocabSize};
  auto out = makeMemRef<float, 2>(logits, logitsShape);
  fn(s->model, &tok, &pos, &cache, &out);
  s->position += n;
  return DSRT_OK;
}

extern "C" dsrt_status dsrt_session_prefill(dsrt_session *s,
                                            const int32_t *tokens, int64_t n,
                                            float *logits) {
  return run(s, tokens, n, logits,
             n == 1 ? s->model->decode : s->model->prefill);
}

extern "C" dsrt_status dsrt_session_decode(dsrt_session *s, int32_t token,
                                           float *logits) {
  return run(s, &token, 1, logits, s->model->decode);
}

extern "C" const char *dsrt_model_routing_trace(const dsrt_model *model) {
  model->routingTraceJson = "[" + model->routingTrace + "]";
  return model->routingTraceJson.c_str();
}
