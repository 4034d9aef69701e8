//===- Model.cpp - the C API: loading a model -----------------------------===//
#include "api/Model.h"
#include "api/Error.h"
#include "cpu/Isa.h"
#include "cpu/MatMul.h"
#include "cpu/TileChoice.h"
#include "support/HugePages.h"
#include "weights/Checkpoint.h"
#include "weights/MappedPages.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

using namespace dsrt;

bool dsrt::inPlaceFormat(DType dtype, cpu::WeightFormat &format) {
  switch (dtype) {
  case DType::F32:
    format = cpu::WeightFormat::F32;
    return true;
  case DType::BF16:
    format = cpu::WeightFormat::BF16;
    return true;
  case DType::F8_E4M3:
    format = cpu::WeightFormat::FP8;
    return true;
  default:
    return false;
  }
}

namespace {

int64_t elementCount(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

/// Looks up both entry points; a missing one is an error naming it.
dsrt_status resolveEntryPoints(dsrt_model &model) {
  for (auto [name, entry] : {std::pair{"prefill", &model.prefill},
                             std::pair{"decode", &model.decode}}) {
    const std::string &symbol = model.manifest.entrySymbols.at(name);
    entry->fn = reinterpret_cast<EntryFn>(model.object->symbol(symbol));
    if (!entry->fn)
      return fail(DSRT_ERROR_FORMAT, model.artifactPath + ": entry point '" +
                                         name + "' (symbol '" + symbol +
                                         "') is missing from its native code");
    auto it = model.manifest.entryMaxTokens.find(name);
    entry->maxTokens =
        it == model.manifest.entryMaxTokens.end() ? -1 : it->second;
  }
  if (model.manifest.mtpHiddenSize > 0) {
    const auto &syms = model.manifest.entrySymbols;
    model.prefillHidden = reinterpret_cast<HiddenEntryFn>(
        model.object->symbol(syms.at("prefill_hidden")));
    model.draft =
        reinterpret_cast<DraftFn>(model.object->symbol(syms.at("draft")));
    if (!model.prefillHidden || !model.draft)
      return fail(DSRT_ERROR_FORMAT,
                  model.artifactPath +
                      ": entry point 'prefill_hidden' or 'draft' is missing "
                      "from its native code");
  }
  auto step = model.manifest.entrySymbols.find("step");
  if (step != model.manifest.entrySymbols.end()) {
    model.step = reinterpret_cast<StepFn>(model.object->symbol(step->second));
    if (!model.step)
      return fail(DSRT_ERROR_FORMAT, model.artifactPath +
                                         ": entry point 'step' (symbol '" +
                                         step->second +
                                         "') is missing from its native code");
  }
  auto sampler = model.manifest.entrySymbols.find("sample_greedy");
  if (sampler != model.manifest.entrySymbols.end()) {
    model.sampleGreedy =
        reinterpret_cast<SamplerFn>(model.object->symbol(sampler->second));
    if (!model.sampleGreedy)
      return fail(DSRT_ERROR_FORMAT, model.artifactPath +
                                         ": entry point 'sample_greedy' "
                                         "(symbol '" +
                                         sampler->second +
                                         "') is missing from its native code");
  }
  return DSRT_OK;
}

/// A cubin for sm_XY runs on compute capability X.Y only; the fatbin's PTX
/// can be JIT-compiled for newer GPUs, never for older ones.
dsrt_status checkArch(const dsrt_model &model) {
  const std::string &arch = model.manifest.gpuArch; // "sm_90"
  int want = std::atoi(arch.c_str() + 3);
  int have = model.gpu->ccMajor * 10 + model.gpu->ccMinor;
  if (have < want)
    return fail(DSRT_ERROR_DEVICE,
                model.artifactPath + ": built for " + arch + ", but " +
                    model.gpu->name + " is sm_" + std::to_string(have) +
                    " (recompile with --gpu-arch sm_" + std::to_string(have) +
                    ")");
  return DSRT_OK;
}

/// GEMM-only bindings whose members are all stored bf16 stay bf16 (exact,
/// half the memory and bandwidth): the runtime's GEMMs read them.
bool keepBf16(const dsrt_model &, const Binding &b, const Checkpoint &ckpt) {
  if (!b.gemmOnly || b.dequantize)
    return false;
  if (const char *env = std::getenv("DSRT_WEIGHTS_F32"); env && *env == '1')
    return false;
  for (const std::string &m : b.members) {
    const TensorView *t = ckpt.find(m);
    if (!t || t->dtype != DType::BF16)
      return false;
  }
  return true;
}

/// Copies `bytes` of a binding to the device, once.
dsrt_status upload(const dsrt_model &model, size_t index, const void *host,
                   size_t bytes, BoundWeight &w) {
  const cuda::Gpu &g = *model.gpu;
  std::string err = w.device.allocate(g, bytes);
  if (!err.empty())
    return fail(DSRT_ERROR_OUT_OF_MEMORY,
                "weights do not fit on " + g.name + ": " + err);
  cuda::CUresult r =
      g.drv.cuMemcpyHtoDAsync(w.device.ptr(), host, bytes, nullptr);
  if (r == cuda::CUDA_SUCCESS)
    r = g.drv.cuStreamSynchronize(nullptr);
  if (r != cuda::CUDA_SUCCESS)
    return fail(DSRT_ERROR_DEVICE, "uploading binding " +
                                       std::to_string(index) + ": " +
                                       g.describe("cuMemcpyHtoD", r));
  return DSRT_OK;
}

/// The in-place form of binding `b` on the CPU, when it has one: all
/// members in one format the runtime's calls read (GEMMs and the embedding
/// gather: F32, BF16, or F8_E4M3 with its scales), each filling an equal
/// share of rows, aligned for their element type. f32 bindings of one
/// tensor are read in place even when generated code reads them (nothing
/// to convert); everything else is converted to an f32 copy (small: norms,
/// biases; the embedding and kv_b_proj of artifacts compiled before they
/// were read through runtime calls).
/// $DSRT_WEIGHTS_F32=1 converts everything (a test hook: the same values
/// through the f32 kernels).
bool bindInPlace(const Binding &b, const Checkpoint &ckpt, BoundWeight &w) {
  if (const char *env = std::getenv("DSRT_WEIGHTS_F32"); env && *env == '1')
    return false;
  if (b.shape.empty())
    return false;
  int64_t cols = b.shape.back();
  int64_t rows = elementCount(b.shape) / std::max<int64_t>(cols, 1);
  int64_t parts = int64_t(b.members.size());
  if (cols <= 0 || rows <= 0 || rows % parts != 0)
    return false;
  int64_t partRows = rows / parts;
  const TensorView *first = ckpt.find(b.members.front());
  if (!first)
    return false;
  cpu::WeightFormat format;
  if (!inPlaceFormat(first->dtype, format))
    return false;
  if (format == cpu::WeightFormat::F32 && !b.gemmOnly && parts != 1)
    return false;
  if (format != cpu::WeightFormat::F32 && !b.gemmOnly)
    return false;
  if ((format == cpu::WeightFormat::FP8) != b.dequantize)
    return false;
  cpu::WeightMatrix m;
  m.format = format;
  m.rows = rows;
  m.cols = cols;
  m.ld = cols;
  m.partRows = partRows;
  size_t blocks = size_t((partRows + 127) / 128 * ((cols + 127) / 128));
  std::vector<float> scales;
  for (const std::string &name : b.members) {
    const TensorView *t = ckpt.find(name);
    if (!t || t->dtype != first->dtype || t->numElements() != partRows * cols)
      return false;
    if (reinterpret_cast<uintptr_t>(t->data) % m.elementSize() != 0)
      return false; // safetensors does not align; such a tensor is copied
    if (format == cpu::WeightFormat::FP8) {
      // Scale blocks are the member's own 128x128 tiles.
      if (t->shape != std::vector<int64_t>{partRows, cols})
        return false;
      std::string error;
      size_t at = scales.size();
      scales.resize(at + blocks);
      if (!ckpt.readF32(name + "_scale_inv", scales.data() + at, error))
        return false;
    }
    m.parts.push_back(t->data);
  }
  w.fp8Scales = std::move(scales);
  for (size_t i = 0; i < m.parts.size() && format == cpu::WeightFormat::FP8;
       ++i)
    m.scales.push_back(w.fp8Scales.data() + i * blocks);
  w.inPlace = m.parts.front();
  w.matrix = std::move(m);
  return true;
}

/// Converts every binding's members to f32 once. Members fill the buffer
/// one after the other: a stack of experts ([N, F, D] from N tensors [F, D])
/// or packed projections ([2F, D] from two [F, D]); only the element count
/// of each slice matters to a row-major buffer.
/// Why member `i` of binding `index`, tensor `t`, is not one of its
/// equal parts.
std::string notOneMember(const TensorView &t, const Binding &b, size_t i,
                         size_t index) {
  return t.file + ": tensor '" + b.members[i] + "' of shape " +
         shapeToString(t.shape) + " does not fill 1/" +
         std::to_string(b.members.size()) + " of binding " +
         std::to_string(index) + " of shape " + shapeToString(b.shape);
}

dsrt_status bindWeights(dsrt_model &model, const Checkpoint &ckpt) {
  std::string error;
  for (size_t index = 0; index < model.manifest.bindings.size(); ++index) {
    const Binding &b = model.manifest.bindings[index];
    BoundWeight w;
    w.shape = b.shape;
    if (b.splitParts > 1) {
      if (dsrt_status st = bindSplit(model, index, ckpt, w))
        return st;
      model.weights.push_back(std::move(w));
      continue;
    }
    size_t count = size_t(elementCount(b.shape));
    size_t per = count / b.members.size();
    if (!model.gpu && bindInPlace(b, ckpt, w)) {
      model.weightsBytes +=
          int64_t(w.fp8Scales.size() * sizeof(float) +
                  size_t(w.matrix.rows * w.matrix.cols) * w.matrix.elementSize());
      model.weights.push_back(std::move(w));
      continue;
    }
    if (model.gpu && keepBf16(model, b, ckpt)) {
      // Copied bit for bit: sizes were validated against the manifest.
      w.bf16.resize(count);
      for (size_t i = 0; i < b.members.size(); ++i) {
        const TensorView *t = ckpt.find(b.members[i]);
        if (size_t(t->numElements()) != per || t->nbytes != per * 2)
          return fail(DSRT_ERROR_WEIGHTS, notOneMember(*t, b, i, index));
        std::memcpy(w.bf16.data() + i * per, t->data, per * 2);
      }
      w.bf16Storage = true;
      model.weightsBytes += int64_t(count * 2);
      if (model.gpu) {
        if (dsrt_status st = upload(model, index, w.bf16.data(), count * 2, w))
          return st;
        std::vector<uint16_t>().swap(w.bf16);
      }
      model.weights.push_back(std::move(w));
      continue;
    }
    w.data.resize(count);
    for (size_t i = 0; i < b.members.size(); ++i) {
      const TensorView *t = ckpt.find(b.members[i]);
      if (!t)
        return fail(DSRT_ERROR_WEIGHTS, model.weightsDir + ": tensor '" +
                                            b.members[i] + "' (binding " +
                                            std::to_string(index) +
                                            ") is missing from the checkpoint");
      if (size_t(t->numElements()) != per)
        return fail(DSRT_ERROR_WEIGHTS, notOneMember(*t, b, i, index));
      if (!ckpt.readF32(b.members[i], w.data.data() + i * per, error))
        return fail(DSRT_ERROR_WEIGHTS, error);
    }
    model.weightsBytes += int64_t(w.data.size() * sizeof(float));
    if (model.gpu) {
      // Uploaded once; the host copy goes right away, so peak host memory
      // is one binding, not the model.
      if (dsrt_status st = upload(model, index, w.data.data(),
                                  w.data.size() * sizeof(float), w))
        return st;
      std::vector<float>().swap(w.data);
    }
    model.weights.push_back(std::move(w));
  }
  return DSRT_OK;
}

dsrt_status load(const char *artifactPath, const char *weightsDir,
                 const char *device, dsrt_model **out) {
  std::string dev = device ? device : "cpu";
  if (dev != "cpu" && dev != "cuda")
    return fail(DSRT_ERROR_ARGUMENT,
                "device '" + dev + "' is unknown (expected cpu or cuda)");

  if (dev == "cpu") {
    if (std::string isaError = cpu::configureIsa(); !isaError.empty())
      return fail(DSRT_ERROR_ARGUMENT, isaError);
    if (const std::string &tileError = cpu::activeTileChoice().error;
        !tileError.empty())
      return fail(DSRT_ERROR_ARGUMENT, tileError);
    if (std::string e = cpu::configureBatchInvariance(); !e.empty())
      return fail(DSRT_ERROR_ARGUMENT, e);
  }
  auto model = std::make_unique<dsrt_model>();
  model->artifactPath = artifactPath;
  model->weightsDir = weightsDir;
  ArtifactFile artifact;
  std::string error;
  if (!readArtifact(artifactPath, artifact, error))
    return fail(DSRT_ERROR_FORMAT, error);
  model->manifest = std::move(artifact.manifest);
  if (model->manifest.target != dev)
    return fail(DSRT_ERROR_FORMAT,
                model->artifactPath + ": compiled for target '" +
                    model->manifest.target + "', cannot run on device '" +
                    dev + "' (recompile with ds-compile --target " + dev +
                    ")");
  // Before the object is loaded: its constructors are host code.
  if (std::string cpu = hostCpuProblem(model->manifest.hostCpu); !cpu.empty())
    return fail(DSRT_ERROR_FORMAT, model->artifactPath + ": " + cpu);
  if (dev == "cuda") {
    model->gpu = cuda::gpu(error);
    if (!model->gpu)
      return fail(DSRT_ERROR_DEVICE, error);
    if (dsrt_status st = checkArch(*model))
      return st;
    cuda::moduleLoadError().clear();
  }

  // The native code first: a broken artifact fails before gigabytes of
  // weights are converted.
  model->object = NativeObject::load(artifact.object, artifactPath, error);
  if (!model->object)
    return fail(DSRT_ERROR_FORMAT, error);
  // The object's constructors loaded its GPU modules.
  if (model->gpu && !cuda::moduleLoadError().empty())
    return fail(DSRT_ERROR_DEVICE,
                model->artifactPath + ": " + cuda::moduleLoadError());
  if (dsrt_status st = resolveEntryPoints(*model))
    return st;

  std::unique_ptr<Checkpoint> ckpt = Checkpoint::open(weightsDir, error);
  if (!ckpt)
    return fail(DSRT_ERROR_WEIGHTS, error);
  std::vector<WeightRequirement> required;
  for (const RequiredTensor &t : model->manifest.weights)
    required.push_back({t.name, t.shape});
  // Every problem at once, one per line, so a user fixes them in one go.
  std::vector<std::string> problems = validateCheckpoint(*ckpt, required);
  if (!problems.empty())
    return fail(DSRT_ERROR_WEIGHTS, joinLines(problems));
  if (dsrt_status st = startCommunicator(*model))
    return st;
  if (dsrt_status st = bindWeights(*model, *ckpt))
    return st;
  for (const BoundWeight &w : model->weights)
    if (w.bf16Storage)
      model->bf16ByAddress[model->gpu ? w.device.as<void>()
                                      : static_cast<const void *>(
                                            w.bf16.data())] = &w;
  // Only GEMM-only bindings: generated code may hand the GEMMs views of
  // the others (f32 in the mapping), which the f32 path takes as they are.
  for (size_t i = 0; i < model->weights.size(); ++i)
    if (model->weights[i].inPlace && model->manifest.bindings[i].gemmOnly)
      model->inPlaceByAddress[model->weights[i].inPlace] = &model->weights[i];
  for (size_t i = 0; i < model->weights.size() && !model->gpu; ++i)
    if (model->manifest.bindings[i].logits)
      model->logitsWeight = model->weights[i].inPlace
                                ? model->weights[i].inPlace
                                : model->weights[i].data.data();
  // On the GPU the checkpoint is unmapped here (the device holds copies);
  // on the CPU the in-place weights live in its mapping.
  if (!model->gpu && std::any_of(model->weights.begin(), model->weights.end(),
                                 [](const BoundWeight &w) { return w.inPlace; }))
    model->checkpoint = std::move(ckpt);
  *out = model.release();
  return DSRT_OK;
}

} // namespace

extern "C" dsrt_status dsrt_model_load(const char *artifactPath,
                                       const char *weightsDir,
                                       const char *device, dsrt_model **out) {
  if (!out)
    return fail(DSRT_ERROR_ARGUMENT, "dsrt_model_load: out is NULL");
  *out = nullptr;
  if (!artifactPath || !weightsDir)
    return fail(DSRT_ERROR_ARGUMENT,
                "dsrt_model_load: artifact path and weights directory are "
                "required");
  return guarded("loading the model",
                 [&] { return load(artifactPath, weightsDir, device, out); });
}

extern "C" void dsrt_model_free(dsrt_model *model) { delete model; }

extern "C" dsrt_status dsrt_model_info_get(const dsrt_model *model,
                                           dsrt_model_info *out) {
  if (!model || !out)
    return fail(DSRT_ERROR_ARGUMENT, "dsrt_model_info_get: NULL argument");
  const Manifest &m = model->manifest;
  out->vocab_size = m.vocabSize;
  out->num_layers = m.numLayers;
  out->cache_width = m.cacheWidth;
  // What the engine's page pool holds per token (the step's rows).
  out->kv_cache_bytes_per_token = m.numLayers * m.stepRowBytes();
  out->weights_bytes = model->weightsBytes;
  out->max_position_embeddings = m.maxPositions;
  out->bos_token_id = m.bosTokenId;
  out->eos_token_id = m.eosTokenId;
  return DSRT_OK;
}

extern "C" dsrt_status dsrt_model_check_weights(const dsrt_model *model) {
  if (!model)
    return fail(DSRT_ERROR_ARGUMENT, "dsrt_model_check_weights: NULL model");
  return guarded("checking the weights", [&] {
    // The checkpoint was unmapped after binding; scanning its files (not
    // the f32 copies) lets a message name the file and the stored tensor.
    std::string error;
    std::unique_ptr<Checkpoint> ckpt =
        Checkpoint::open(model->weightsDir, error);
    if (!ckpt)
      return fail(DSRT_ERROR_WEIGHTS, error);
    std::vector<std::string> names;
    for (const RequiredTensor &t : model->manifest.weights)
      names.push_back(t.name);
    std::vector<std::string> problems = scanNonFinite(*ckpt, names);
    if (!problems.empty())
      return fail(DSRT_ERROR_WEIGHTS, joinLines(problems));
    return DSRT_OK;
  });
}

extern "C" dsrt_status dsrt_model_weight_pages(const dsrt_model *model,
                                               dsrt_weight_pages *out) {
  if (!model || !out)
    return fail(DSRT_ERROR_ARGUMENT, "dsrt_model_weight_pages: NULL argument");
  auto *m = const_cast<dsrt_model *>(model);
  std::lock_guard<std::mutex> lock(m->pagesMutex);
  *out = dsrt_weight_pages{};
  std::vector<FilePages> files;
  if (m->checkpoint)
    files = mappedPages(*m->checkpoint);
  for (const FilePages &f : files) {
    out->mapped_bytes += f.mappedBytes;
    out->resident_bytes += f.residentBytes;
    out->huge_page_bytes += f.hugeBytes;
  }
  // DSRT_HUGE_PAGES=0 asked for small pages: nothing to advise.
  m->weightPagesNote = hugePagesAllowed() ? smallPagesNote(files) : "";
  out->note = m->weightPagesNote.c_str();
  return DSRT_OK;
}

extern "C" const char *dsrt_model_routing_trace(const dsrt_model *model) {
  if (!model)
    return "[]";
  auto *m = const_cast<dsrt_model *>(model);
  std::lock_guard<std::mutex> lock(m->traceMutex);
  m->routingTraceJson = "[" + m->routingTrace + "]";
  return m->routingTraceJson.c_str();
}
