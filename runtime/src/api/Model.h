//===- Model.h - what a loaded artifact and a session are -------*- C++ -*-===//
//
// The opaque structs behind the C API. The generated code receives the
// dsrt_model as its `ctx` pointer and hands it back to the runtime calls
// (cpu/RuntimeCalls.cpp), which read the bound weights from it.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_API_MODEL_H
#define DSRT_API_MODEL_H

#include "artifact/ArtifactFile.h"
#include "artifact/NativeObject.h"
#include "cpu/MemRef.h"
#include "cuda/Device.h"
#include "dsrt/dsrt.h"

#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace dsrt {

/// One buffer the kernels ask for by index: f32, row-major, converted from
/// the checkpoint once at load time. On the GPU `data` is emptied once
/// uploaded and `device` holds the copy.
struct BoundWeight {
  std::vector<int64_t> shape;
  std::vector<float> data;
  /// Instead of `data` for a GEMM-only binding of a bf16 checkpoint (on the
  /// GPU emptied once uploaded to `device`).
  std::vector<uint16_t> bf16;
  bool bf16Storage = false;
  cuda::DeviceBuffer device;
};

/// The generated entry points (prefill, decode): memrefs by pointer, the
/// cache [layers, capacity, width] updated in place, logits [n, vocab].
using EntryFn = void (*)(void *ctx, MemRef<int32_t, 1> *tokens,
                         MemRef<int32_t, 1> *positions, MemRef<float, 3> *cache,
                         MemRef<float, 2> *logits);

/// @prefill_hidden: prefill that also writes the hidden states after the
/// final norm [n, hidden] (multi-token prediction).
using HiddenEntryFn = void (*)(void *ctx, MemRef<int32_t, 1> *tokens,
                               MemRef<int32_t, 1> *positions,
                               MemRef<float, 3> *cache,
                               MemRef<float, 2> *logits,
                               MemRef<float, 2> *hidden);

/// @draft: the MTP module over its own cache, from next tokens and the main
/// model's hidden states [n, hidden] to draft logits [n, vocab].
using DraftFn = void (*)(void *ctx, MemRef<int32_t, 1> *nextTokens,
                         MemRef<int32_t, 1> *positions, MemRef<float, 3> *cache,
                         MemRef<float, 2> *hidden, MemRef<float, 2> *logits);

/// The generated greedy sampler: ids[t] = argmax of logits row t.
using SamplerFn = void (*)(void *ctx, MemRef<float, 2> *logits,
                           MemRef<int32_t, 1> *ids);

struct EntryPoint {
  EntryFn fn = nullptr;
  int64_t maxTokens = -1; // -1: any number
};

} // namespace dsrt

struct dsrt_model;
struct dsrt_session;
namespace dsrt {
/// See api/Session.cpp.
dsrt_status runGreedy(dsrt_session *s, const int32_t *tokens, int64_t n,
                      int32_t *next);
} // namespace dsrt

struct dsrt_model {
  std::string artifactPath, weightsDir;
  dsrt::Manifest manifest;
  std::vector<dsrt::BoundWeight> weights;
  int64_t weightsBytes = 0;
  /// The bf16 bindings by the address the kernels receive, so the GEMM
  /// calls know the storage behind a descriptor.
  std::unordered_map<const void *, const dsrt::BoundWeight *> bf16ByAddress;
  /// Before `object`: the artifact's destructors unload its GPU modules
  /// while the device weights are still held.
  const dsrt::cuda::Gpu *gpu = nullptr; // set when loaded with device cuda
  std::unique_ptr<dsrt::NativeObject> object;
  dsrt::EntryPoint prefill, decode;
  dsrt::SamplerFn sampleGreedy = nullptr; // absent in older artifacts
  /// Multi-token prediction (api/Mtp.cpp); null without an MTP module.
  dsrt::HiddenEntryFn prefillHidden = nullptr;
  dsrt::DraftFn draft = nullptr;

  /// Records of artifacts built with --trace-routing, comma separated.
  /// Sessions of one model may run on several threads.
  std::mutex traceMutex;
  std::string routingTrace;
  std::string routingTraceJson; // what dsrt_model_routing_trace returned

  /// Bytes of one cache element.
  size_t cacheElementSize() const {
    return manifest.cacheDtype == "bf16" ? 2 : 4;
  }
};

struct dsrt_session {
  dsrt_model *model = nullptr;
  int64_t capacity = 0;
  int64_t position = 0;
  /// [layers, capacity, cache_width] of cache_dtype. calloc: pages are
  /// only touched as the context grows.
  std::unique_ptr<uint8_t, decltype(&std::free)> cache{nullptr, &std::free};
  /// The GPU side (stream, cuBLAS, device cache and buffers) when the model
  /// runs on cuda; `cache` is then unused.
  std::unique_ptr<dsrt::cuda::DeviceSession> cuda;
  /// The MTP module's own latent cache [mtp layers, capacity, width],
  /// allocated on the first draft call, and the positions it holds.
  std::unique_ptr<uint8_t, decltype(&std::free)> mtpCache{nullptr, &std::free};
  int64_t mtpPosition = 0;
};

#endif // DSRT_API_MODEL_H
