//===- ArtifactFile.cpp - reading a ds artifact ---------------------------===//
#include "artifact/ArtifactFile.h"
#include "support/JsonParser.h"
#include "support/OneLine.h"

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>

using namespace dsrt;

uint64_t dsrt::fnv1a64(uint64_t h, const char *data, size_t size) {
  for (size_t i = 0; i < size; ++i) {
    h ^= static_cast<unsigned char>(data[i]);
    h *= 1099511628211ULL;
  }
  return h;
}

namespace {

bool getInt(const json::Value &o, const char *key, int64_t &out,
            std::string &error, bool nullable = false) {
  const json::Value *v = o.get(key);
  if (nullable && v && v->isNull()) {
    out = -1;
    return true;
  }
  if (!v || v->kind != json::Value::Number || !v->isInteger) {
    error = std::string("manifest field '") + key + "' must be an integer";
    return false;
  }
  out = v->integer;
  return true;
}

bool getString(const json::Value &o, const char *key, std::string &out,
               std::string &error) {
  const json::Value *v = o.get(key);
  if (!v || v->kind != json::Value::String) {
    error = std::string("manifest field '") + key + "' must be a string";
    return false;
  }
  out = v->string;
  return true;
}

bool getShape(const json::Value &o, std::vector<int64_t> &out,
              std::string &error) {
  const json::Value *v = o.get("shape");
  if (!v || v->kind != json::Value::Array) {
    error = "manifest field 'shape' must be an array";
    return false;
  }
  for (const json::Value &d : v->items) {
    if (d.kind != json::Value::Number || !d.isInteger || d.integer < 0) {
      error = "manifest shape entries must be non-negative integers";
      return false;
    }
    out.push_back(d.integer);
  }
  return true;
}

} // namespace

namespace {

/// format_version, target, dtype, gpu_arch.
bool parseHeader(const json::Value &root, Manifest &m, std::string &error) {
  int64_t version;
  if (!getInt(root, "format_version", version, error) ||
      !getString(root, "target", m.target, error) ||
      !getString(root, "dtype", m.dtype, error))
    return false;
  if (m.target != "cpu" && m.target != "cuda") {
    error = "manifest target '" + m.target + "' is unknown (cpu or cuda)";
    return false;
  }
  if (const json::Value *arch = root.get("gpu_arch");
      arch && arch->kind == json::Value::String)
    m.gpuArch = arch->string;
  if (const json::Value *cpu = root.get("host_cpu");
      cpu && cpu->kind == json::Value::String)
    m.hostCpu = cpu->string;
  if (m.target == "cuda" && m.gpuArch.rfind("sm_", 0) != 0) {
    error = "manifest of a cuda artifact lacks 'gpu_arch' (sm_NN)";
    return false;
  }
  if (version != kArtifactFormatVersion) {
    error = "manifest format_version " + std::to_string(version) +
            ", this runtime reads " + std::to_string(kArtifactFormatVersion);
    return false;
  }
  return true;
}

/// "model": the sizes the runtime allocates with, checked for consistency.
bool parseModel(const json::Value &root, Manifest &m, std::string &error) {
  const json::Value *model = root.get("model");
  if (!model || model->kind != json::Value::Object) {
    error = "manifest field 'model' must be an object";
    return false;
  }
  if (!getString(*model, "model_type", m.modelType, error) ||
      !getString(*model, "cache_dtype", m.cacheDtype, error) ||
      !getInt(*model, "vocab_size", m.vocabSize, error) ||
      !getInt(*model, "num_layers", m.numLayers, error) ||
      !getInt(*model, "kv_lora_rank", m.kvLoraRank, error) ||
      !getInt(*model, "qk_rope_head_dim", m.ropeDim, error) ||
      !getInt(*model, "cache_width", m.cacheWidth, error) ||
      !getInt(*model, "max_position_embeddings", m.maxPositions, error) ||
      !getInt(*model, "bos_token_id", m.bosTokenId, error, true) ||
      !getInt(*model, "eos_token_id", m.eosTokenId, error, true))
    return false;
  // Each size fits in 31 bits (token ids and positions are i32), so the
  // sums and products below cannot overflow.
  for (int64_t v : {m.vocabSize, m.numLayers, m.kvLoraRank, m.ropeDim,
                    m.cacheWidth, m.maxPositions})
    if (v < 0 || v > INT32_MAX) {
      error = "manifest model sizes are inconsistent (out of range)";
      return false;
    }
  if (m.vocabSize <= 0 || m.numLayers <= 0 || m.cacheWidth <= 0 ||
      m.maxPositions <= 0 || m.cacheWidth != m.kvLoraRank + m.ropeDim ||
      m.numLayers * m.cacheWidth > (int64_t(1) << 40)) {
    error = "manifest model sizes are inconsistent";
    return false;
  }
  if (m.cacheDtype != "f32" && m.cacheDtype != "bf16" &&
      m.cacheDtype != "fp8") {
    error = "manifest cache_dtype '" + m.cacheDtype + "' is not supported";
    return false;
  }
  if (m.cacheDtype == "fp8") {
    if (!getInt(*model, "cache_scale_group", m.cacheScaleGroup, error))
      return false;
    if (m.cacheScaleGroup <= 0 || m.cacheScaleGroup > INT32_MAX ||
        m.kvLoraRank % m.cacheScaleGroup) {
      error = "manifest cache_scale_group (" +
              std::to_string(m.cacheScaleGroup) +
              ") must be positive and divide kv_lora_rank (" +
              std::to_string(m.kvLoraRank) + ")";
      return false;
    }
  }
  return true;
}

/// "entry_points": prefill and decode required, the greedy sampler optional.
bool parseEntryPoints(const json::Value &root, Manifest &m,
                      std::string &error) {
  const json::Value *entries = root.get("entry_points");
  if (!entries || entries->kind != json::Value::Object) {
    error = "manifest field 'entry_points' must be an object";
    return false;
  }
  for (const char *name : {"prefill", "decode"}) {
    const json::Value *e = entries->get(name);
    std::string symbol;
    if (!e || e->kind != json::Value::Object ||
        !getString(*e, "symbol", symbol, error)) {
      error = std::string("manifest entry point '") + name + "' is missing";
      return false;
    }
    // Absent or null: the entry point takes any number of tokens.
    int64_t maxTokens = -1;
    if (e->get("max_tokens") &&
        (!getInt(*e, "max_tokens", maxTokens, error, true) || maxTokens == 0 ||
         maxTokens < -1)) {
      error = std::string("manifest entry point '") + name +
              "': max_tokens must be a positive integer or null";
      return false;
    }
    m.entrySymbols[name] = symbol;
    m.entryMaxTokens[name] = maxTokens;
  }
  // Optional: the generated greedy sampler.
  if (const json::Value *g = entries->get("sample_greedy");
      g && g->kind == json::Value::Object) {
    std::string symbol;
    if (!getString(*g, "symbol", symbol, error))
      return false;
    m.entrySymbols["sample_greedy"] = symbol;
  }
  // Optional: the ragged step over a paged cache (the serving engine's).
  if (const json::Value *st = entries->get("ragged_step");
      st && st->kind == json::Value::Object) {
    std::string symbol;
    if (!getString(*st, "symbol", symbol, error))
      return false;
    m.entrySymbols["step"] = symbol;
  }
  return true;
}

/// "step_cache" (optional, ds-compile --kv-layout=per-head): @ragged_step's
/// pages hold per-head K/V rows of `width` elements instead of latent rows.
bool parseStepCache(const json::Value &root, Manifest &m, std::string &error) {
  const json::Value *sc = root.get("step_cache");
  if (!sc)
    return true;
  std::string layout;
  if (sc->kind != json::Value::Object ||
      !getString(*sc, "layout", layout, error) ||
      !getInt(*sc, "width", m.stepCacheWidth, error))
    return false;
  if (layout != "per_head") {
    error = "manifest step_cache.layout '" + layout + "' is not supported";
    return false;
  }
  if (m.stepCacheWidth <= 0 || m.stepCacheWidth > INT32_MAX ||
      m.numLayers * m.stepCacheWidth > (int64_t(1) << 40) ||
      m.cacheDtype == "fp8" || !m.entrySymbols.count("step")) {
    error = "manifest step_cache is inconsistent (width " +
            std::to_string(m.stepCacheWidth) +
            "; it needs @ragged_step and an f32/bf16 cache)";
    return false;
  }
  return true;
}

/// "mtp" (optional): the multi-token-prediction drafter's sizes, and then
/// @prefill_hidden and @draft are required entry points.
bool parseMtp(const json::Value &root, Manifest &m, std::string &error) {
  const json::Value *mtp = root.get("mtp");
  if (!mtp || mtp->kind != json::Value::Object)
    return true;
  if (!getInt(*mtp, "hidden_size", m.mtpHiddenSize, error) ||
      !getInt(*mtp, "cache_layers", m.mtpCacheLayers, error))
    return false;
  if (m.mtpHiddenSize <= 0 || m.mtpHiddenSize > INT32_MAX ||
      m.mtpCacheLayers <= 0 || m.mtpCacheLayers > 1024) {
    error = "manifest mtp sizes are out of range";
    return false;
  }
  // Chained drafts feed @draft its own output states: an artifact whose
  // @draft does not return them has another calling convention.
  const json::Value *chained = mtp->get("draft_returns_hidden");
  if (!chained || chained->kind != json::Value::Bool || !chained->boolean) {
    error = "manifest mtp.draft_returns_hidden is not true: the artifact's "
            "@draft predates chained drafting; recompile it with this "
            "ds-compile";
    return false;
  }
  // parseEntryPoints has checked that entry_points is an object.
  const json::Value *entries = root.get("entry_points");
  for (const char *name : {"prefill_hidden", "draft"}) {
    const json::Value *e = entries->get(name);
    std::string symbol;
    if (!e || e->kind != json::Value::Object ||
        !getString(*e, "symbol", symbol, error)) {
      error = std::string("manifest entry point '") + name + "' is missing";
      return false;
    }
    m.entrySymbols[name] = symbol;
  }
  return true;
}

/// One "bindings" entry: a buffer the runtime fills from its members.
bool parseBinding(const json::Value &b, Manifest &m, std::string &error) {
  Binding bd;
  int64_t index;
  if (b.kind != json::Value::Object || !getInt(b, "index", index, error) ||
      !getShape(b, bd.shape, error))
    return false;
  if (index != int64_t(m.bindings.size())) {
    error = "manifest bindings are not numbered in order";
    return false;
  }
  const json::Value *members = b.get("members");
  if (!members || members->kind != json::Value::Array ||
      members->items.empty()) {
    error = "manifest binding " + std::to_string(index) + " has no members";
    return false;
  }
  for (const json::Value &mem : members->items) {
    if (mem.kind != json::Value::String) {
      error = "manifest binding members must be strings";
      return false;
    }
    bd.members.push_back(mem.string);
  }
  // Members fill the buffer one after the other: a stack of experts
  // ([N, ...], one per member) or packed projections ([2F, D]).
  // Bounded so no later size computation overflows (2^48 floats is far
  // past any memory).
  // "split": [dim, parts] (ds-partition-model).
  if (const json::Value *sp = b.get("split")) {
    if (sp->kind != json::Value::Array || sp->items.size() != 2 ||
        sp->items[0].kind != json::Value::Number ||
        sp->items[1].kind != json::Value::Number) {
      error = "manifest binding " + std::to_string(index) +
              ": split must be [dim, parts]";
      return false;
    }
    bd.splitDim = int64_t(sp->items[0].number);
    bd.splitParts = int64_t(sp->items[1].number);
    if (bd.splitParts < 1 || bd.splitParts > 65536 || bd.splitDim < -1 ||
        bd.splitDim > 7 ||
        (bd.splitDim == -1 &&
         int64_t(bd.members.size()) % bd.splitParts != 0)) {
      error = "manifest binding " + std::to_string(index) +
              ": split [" + std::to_string(bd.splitDim) + ", " +
              std::to_string(bd.splitParts) + "] is out of range";
      return false;
    }
  }
  // This rank's members (a cut member list binds 1/parts of them).
  int64_t boundMembers = int64_t(bd.members.size()) /
                         (bd.splitDim == -1 ? bd.splitParts : 1);
  int64_t elements = 1;
  for (int64_t d : bd.shape)
    if (__builtin_mul_overflow(elements, d, &elements) ||
        elements > (int64_t(1) << 48)) {
      error = "manifest binding " + std::to_string(index) +
              ": shape is too large";
      return false;
    }
  if (bd.shape.empty() || elements % boundMembers != 0 ||
      bd.shape[0] % boundMembers != 0) {
    error = "manifest binding " + std::to_string(index) +
            ": leading dimension must split evenly among its " +
            std::to_string(boundMembers) + " members";
    return false;
  }
  const json::Value *dq = b.get("dequantize");
  bd.dequantize = dq && dq->kind == json::Value::Bool && dq->boolean;
  const json::Value *go = b.get("gemm_only");
  bd.gemmOnly = go && go->kind == json::Value::Bool && go->boolean;
  const json::Value *lg = b.get("logits");
  bd.logits = lg && lg->kind == json::Value::Bool && lg->boolean;
  m.bindings.push_back(std::move(bd));
  return true;
}

} // namespace

namespace {

bool parseManifestUnescaped(const std::string &text, Manifest &m,
                            std::string &error) {
  json::Value root;
  std::string jerr;
  if (!json::parse(text, root, jerr)) {
    error = "manifest is not valid JSON: " + jerr;
    return false;
  }
  if (root.kind != json::Value::Object) {
    error = "manifest is not a JSON object";
    return false;
  }
  if (!parseHeader(root, m, error) || !parseModel(root, m, error) ||
      !parseEntryPoints(root, m, error) || !parseMtp(root, m, error) ||
      !parseStepCache(root, m, error))
    return false;
  if (const json::Value *par = root.get("parallel");
      par && par->kind == json::Value::Object) {
    if (!getInt(*par, "world_size", m.worldSize, error))
      return false;
    if (m.worldSize < 1 || m.worldSize > 65536) {
      error = "manifest parallel world_size (" + std::to_string(m.worldSize) +
              ") is out of range";
      return false;
    }
  }
  const json::Value *bindings = root.get("bindings");
  const json::Value *weights = root.get("weights");
  if (!bindings || bindings->kind != json::Value::Array || !weights ||
      weights->kind != json::Value::Array) {
    error = "manifest fields 'bindings' and 'weights' must be arrays";
    return false;
  }
  for (const json::Value &b : bindings->items)
    if (!parseBinding(b, m, error))
      return false;
  for (const json::Value &w : weights->items) {
    RequiredTensor t;
    if (w.kind != json::Value::Object || !getString(w, "name", t.name, error) ||
        !getShape(w, t.shape, error) || !getString(w, "dtype", t.dtype, error))
      return false;
    m.weights.push_back(std::move(t));
  }
  return true;
}

} // namespace

bool dsrt::parseManifest(const std::string &text, Manifest &m,
                         std::string &error) {
  if (parseManifestUnescaped(text, m, error))
    return true;
  error = oneLine(error); // names quoted from the manifest stay on one line
  return false;
}

bool dsrt::readArtifact(const std::string &path, ArtifactFile &out,
                        std::string &error) {
  auto fail = [&](const std::string &msg) {
    error = oneLine(path + ": " + msg);
    return false;
  };
  FILE *f = fopen(path.c_str(), "rb");
  if (!f)
    return fail(std::string("cannot open: ") + std::strerror(errno));
  std::string bytes;
  char buf[1 << 16];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
    bytes.append(buf, n);
  int readErrno = ferror(f) ? errno : 0; // EISDIR for a directory
  fclose(f);
  if (readErrno)
    return fail(std::string("cannot read: ") + std::strerror(readErrno));
  if (bytes.size() < kArtifactHeaderSize ||
      bytes.compare(0, 8, "DSARTIFA") != 0)
    return fail("not a ds artifact (bad magic)");
  auto u32 = [&](size_t at) {
    uint32_t v;
    std::memcpy(&v, bytes.data() + at, 4);
    return v;
  };
  auto u64 = [&](size_t at) {
    uint64_t v;
    std::memcpy(&v, bytes.data() + at, 8);
    return v;
  };
  uint32_t version = u32(8);
  if (version != kArtifactFormatVersion)
    return fail("artifact format version " + std::to_string(version) +
                ", this runtime reads " +
                std::to_string(kArtifactFormatVersion));
  // Version 1 defines no flags: a set bit means a writer this reader does
  // not understand.
  if (uint32_t flags = u32(12))
    return fail("artifact flags " + std::to_string(flags) +
                " are unknown to this runtime (format version 1 has none)");
  uint64_t msize = u64(16), osize = u64(24), checksum = u64(32);
  uint64_t total;
  bool overflow = __builtin_add_overflow(msize, osize, &total) ||
                  __builtin_add_overflow(total, kArtifactHeaderSize, &total);
  if (overflow || total != bytes.size())
    return fail(
        "truncated or padded: header announces " +
        (overflow ? std::string("more than 2^64") : std::to_string(total)) +
        " bytes, file has " + std::to_string(bytes.size()));
  uint64_t h = fnv1a64(kFnvOffsetBasis, bytes.data() + kArtifactHeaderSize,
                       msize + osize);
  if (h != checksum)
    return fail("corrupted (checksum mismatch)");
  std::string perr;
  if (!parseManifest(bytes.substr(kArtifactHeaderSize, msize), out.manifest,
                     perr))
    return fail(perr);
  out.object = bytes.substr(kArtifactHeaderSize + msize);
  return true;
}

std::string dsrt::hostCpuProblem(const std::string &hostCpu) {
  if (hostCpu.rfind("x86-64", 0) != 0)
    return "";
  bool ok = false;
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (hostCpu == "x86-64")
    ok = true;
  else if (hostCpu == "x86-64-v2")
    ok = __builtin_cpu_supports("x86-64-v2");
  else if (hostCpu == "x86-64-v3")
    ok = __builtin_cpu_supports("x86-64-v3");
  else if (hostCpu == "x86-64-v4")
    ok = __builtin_cpu_supports("x86-64-v4");
#endif
  return ok ? ""
            : "its host code needs an " + hostCpu +
                  " CPU, which this machine is not (rebuild it with a "
                  "ds-compile for this machine)";
}
