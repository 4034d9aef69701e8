//===- Model.h - what a loaded artifact and a session are -------*- C++ -*-===//
//
// The opaque structs behind the C API. The generated code receives the
// dsrt_model as its `ctx` pointer and hands it back to the runtime calls
// (abi/RuntimeCalls.cpp), which read the bound weights from it.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_API_MODEL_H
#define DSRT_API_MODEL_H

#include "artifact/ArtifactFile.h"
#include "artifact/NativeObject.h"
#include "cpu/MemRef.h"
#include "cpu/WeightMatrix.h"
#include "cpu/ZeroedPages.h"
#include "cuda/Device.h"
#include "dsrt/dsrt.h"
#include "weights/Checkpoint.h"

#include <atomic>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace dsrt {

/// One buffer the kernels ask for by index. On the CPU a GEMM-only binding
/// (and an f32 one of a single tensor) is read in place from the mapped
/// checkpoint (`inPlace`, `matrix`); others are f32, row-major, converted
/// once at load time. On the GPU `data` is emptied once uploaded and
/// `device` holds the copy.
struct BoundWeight {
  std::vector<int64_t> shape;
  std::vector<float> data;
  /// CPU, in place: what the kernels' descriptor points at (the first
  /// member's bytes in the mapping) and the matrix the GEMMs read.
  const void *inPlace = nullptr;
  cpu::WeightMatrix matrix;
  std::vector<float> fp8Scales; // the parts' scales, back to back
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

/// @draft: the MTP module over its own cache, from next tokens and hidden
/// states [n, hidden] to draft logits [n, vocab] and the module's output
/// states [n, hidden] (what a chained draft is fed).
using DraftFn = void (*)(void *ctx, MemRef<int32_t, 1> *nextTokens,
                         MemRef<int32_t, 1> *positions, MemRef<float, 3> *cache,
                         MemRef<float, 2> *hidden, MemRef<float, 2> *logits,
                         MemRef<float, 2> *hiddenOut);

/// @ragged_step: a ragged batch of T tokens of S sequences over the paged
/// latent cache [layers, pages, 64, width] (updated in place): query_start [S +
/// 1], context_lens [S], block_tables [S, max pages], logits_rows [R] -> logits
/// [R, vocab].
using StepFn = void (*)(void *ctx, MemRef<int32_t, 1> *tokens,
                        MemRef<int32_t, 1> *positions, MemRef<float, 4> *cache,
                        MemRef<int32_t, 1> *queryStart,
                        MemRef<int32_t, 1> *contextLens,
                        MemRef<int32_t, 2> *blockTables,
                        MemRef<int32_t, 1> *logitsRows,
                        MemRef<float, 2> *logits);

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
/// Like dsrt_session_prefill, but only the logits row after the last
/// token is computed (vocab floats into lastRow).
dsrt_status runLastRow(dsrt_session *s, const int32_t *tokens, int64_t n,
                       float *lastRow);
/// The logits rows the entry point running on this thread must compute:
/// the last `rows` of its tokens (0: none), or all (-1, the default). The
/// CPU's logits GEMM (dsrt_linear_f32 on the binding marked `logits`)
/// skips the others; their rows of the output are left unspecified.
void setLogitsRows(int64_t rows);
} // namespace dsrt

struct dsrt_comm;
namespace dsrt {
/// Ends a model's communicator (api/Shard.cpp).
struct CommCloser {
  void operator()(dsrt_comm *comm) const;
};
/// Partitioned models: starts the communicator of a manifest with
/// world_size > 1 (mpiexec's ranks), checks the job's size and narrows
/// bindings whose member lists are cut over ranks to this rank's members.
dsrt_status startCommunicator(dsrt_model &model);
/// Binds this rank's piece of a binding whose members are cut along a dim
/// (in place in the mapping where the GEMMs can read it, else an f32 copy
/// of the piece only).
dsrt_status bindSplit(dsrt_model &model, size_t index, const Checkpoint &ckpt,
                      BoundWeight &w);
/// The GEMM kernels' format of a checkpoint dtype read in place (f32, bf16,
/// FP8 e4m3); false for the others, which are converted (api/Model.cpp).
bool inPlaceFormat(DType dtype, cpu::WeightFormat &format);
/// Partitioned models: rank 0 samples, every rank feeds its token (a
/// broadcast), so ranks never diverge on a near-tie. No-op on one rank.
dsrt_status shareToken(dsrt_model &model, int32_t &token);
/// Partitioned models: "" when every rank passes the same `value` (an
/// all-gather), else one line naming `what` and the ranks' values, on every
/// rank alike. "" on one rank.
std::string sameOnEveryRank(dsrt_model &model, int64_t value,
                            const char *what);
} // namespace dsrt

struct dsrt_model {
  std::string artifactPath, weightsDir;
  /// Partitioned models (manifest world_size > 1): the job's communicator
  /// and this process's rank in it (api/Shard.cpp). Ends last: a peer may
  /// still wait on it while this model's other parts are freed.
  std::unique_ptr<dsrt_comm, dsrt::CommCloser> comm;
  int64_t rank = 0, worldSize = 1;
  dsrt::Manifest manifest;
  std::vector<dsrt::BoundWeight> weights;
  int64_t weightsBytes = 0;
  /// The bf16 bindings by the address the kernels receive, so the GEMM
  /// calls know the storage behind a descriptor.
  std::unordered_map<const void *, const dsrt::BoundWeight *> bf16ByAddress;
  /// CPU: the GEMM-only bindings read in place, by the address the kernels
  /// receive.
  std::unordered_map<const void *, const dsrt::BoundWeight *> inPlaceByAddress;
  /// CPU: the mapped checkpoint the in-place weights point into.
  std::unique_ptr<dsrt::Checkpoint> checkpoint;
  /// CPU: the address the kernels get for the logits GEMM's weight.
  const void *logitsWeight = nullptr;
  /// Before `object`: the artifact's destructors unload its GPU modules
  /// while the device weights are still held.
  const dsrt::cuda::Gpu *gpu = nullptr; // set when loaded with device cuda
  std::unique_ptr<dsrt::NativeObject> object;
  dsrt::EntryPoint prefill, decode;
  dsrt::SamplerFn sampleGreedy = nullptr; // absent in older artifacts
  dsrt::StepFn step = nullptr;             // absent in older artifacts
  /// Multi-token prediction (api/Mtp.cpp); null without an MTP module.
  dsrt::HiddenEntryFn prefillHidden = nullptr;
  dsrt::DraftFn draft = nullptr;

  /// Records of artifacts built with --trace-routing, comma separated.
  /// Sessions of one model may run on several threads.
  std::mutex traceMutex;
  std::string routingTrace;
  std::string routingTraceJson; // what dsrt_model_routing_trace returned
  std::mutex pagesMutex;
  std::string weightPagesNote; // what dsrt_model_weight_pages returned
  /// Sequences of a ragged step that took the naive MLA form, counted at
  /// layer 0 (dsrt_trace_naive_segment, one call per layer).
  std::atomic<int64_t> naiveSegments{0};
  /// Their new tokens (layer 0), and the rows the absorbed head products
  /// computed (dsrt_head_matmul_f32 / _skip_f32: all layers, both
  /// products).
  std::atomic<int64_t> naiveTokens{0}, headMatmulRows{0};

  /// Bytes of one element of the cache buffer (a byte for fp8, whose
  /// rows are manifest.cacheRowElements() bytes).
  size_t cacheElementSize() const {
    return manifest.cacheDtype == "bf16"  ? 2
           : manifest.cacheDtype == "fp8" ? 1
                                          : 4;
  }
};

struct dsrt_session {
  dsrt_model *model = nullptr;
  int64_t capacity = 0;
  int64_t position = 0;
  /// Rows per layer of `cache`: capacity, rounded up to whole 64-token
  /// pages when the model runs through @ragged_step (the buffer is then also
  /// the paged [layers, pages, 64, width] cache with block table 0, 1, 2, ...).
  int64_t cacheRows = 0;
  bool viaStep = false; // calls go through @ragged_step (see api/Session.cpp)
  /// [layers, capacity, cache_width] of cache_dtype, zero: pages are only
  /// touched as the context grows (huge ones where allowed: ZeroedPages.h).
  dsrt::cpu::ZeroedPages cache;
  /// Host logits of greedy calls (only grows: no page zeroing per call),
  /// [chunk, vocab] of which only the last row is written: left
  /// uninitialised (not a zero-filled vector) so the other rows' pages are
  /// never touched, never resident.
  std::unique_ptr<float[]> greedyLogits;
  size_t greedyLogitsSize = 0;
  /// The GPU side (stream, cuBLAS, device cache and buffers) when the model
  /// runs on cuda; `cache` is then unused.
  std::unique_ptr<dsrt::cuda::DeviceSession> cuda;
  /// The MTP module's own latent cache [mtp layers, capacity, width],
  /// allocated on the first draft call, and the positions it holds.
  dsrt::cpu::ZeroedPages mtpCache;
  int64_t mtpPosition = 0;
};

#endif // DSRT_API_MODEL_H
