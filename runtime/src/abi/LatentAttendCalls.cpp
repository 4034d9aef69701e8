//===- LatentAttendCalls.cpp - decode's absorbed attention ----------------===//
//
// Called by the code convert-ds-to-loops emits for ds.latent_attention and
// ds.paged_latent_attention on the CPU path (latent-attention-calls; the
// signatures are fixed in lib/Conversion/DSToLoops/AttentionPatterns.cpp),
// one entry per cache element type: f32, bf16 (uint16_t here) and the FP8
// layout (its bytes, with the scale group before the scale). The kernels
// are cpu::latentAttendDecode and cpu::pagedLatentAttendDecode.
//
//===----------------------------------------------------------------------===//
#include "api/Error.h"
#include "api/Model.h"
#include "cpu/Isa.h"
#include "cpu/LatentAttend.h"
#include "cpu/MemRef.h"

#define DSRT_EXPORT extern "C" __attribute__((visibility("default")))

using namespace dsrt;

/// An entry's run: never on the GPU path (its pipeline keeps the attention
/// a generated kernel), and a kernel's error is fatal (the generated code
/// checked the shapes it passes).
template <typename Run>
static void onCpu(void *ctx, const char *entry, Run run) {
  if (static_cast<dsrt_model *>(ctx)->gpu)
    fatalInternalError(std::string(entry) + " called on the GPU path");
  if (std::string e = run(); !e.empty())
    fatalInternalError(e);
}

DSRT_EXPORT void _mlir_ciface_dsrt_latent_attention_f32(
    void *ctx, MemRef<float, 3> *qLatent, MemRef<float, 3> *qRope,
    MemRef<float, 3> *cache, MemRef<int32_t, 1> *positions,
    MemRef<float, 3> *out, int64_t layer, float scale) {
  onCpu(ctx, "dsrt_latent_attention_f32", [&] {
    return cpu::latentAttendDecode(cpu::activeIsa(), *qLatent, *qRope, *cache,
                                   *positions, *out, layer, scale);
  });
}

DSRT_EXPORT void _mlir_ciface_dsrt_paged_latent_attention_f32(
    void *ctx, MemRef<float, 3> *qLatent, MemRef<float, 3> *qRope,
    MemRef<float, 4> *cache, MemRef<int32_t, 1> *positions,
    MemRef<int32_t, 1> *queryStart, MemRef<int32_t, 2> *blockTables,
    MemRef<float, 3> *out, int64_t layer, int64_t pageSize,
    int64_t naiveMinTokens, float scale) {
  onCpu(ctx, "dsrt_paged_latent_attention_f32", [&] {
    return cpu::pagedLatentAttendDecode(
        cpu::activeIsa(), *qLatent, *qRope, *cache, *positions, *queryStart,
        *blockTables, *out, layer, pageSize, naiveMinTokens, scale);
  });
}

DSRT_EXPORT void _mlir_ciface_dsrt_latent_attention_bf16(
    void *ctx, MemRef<float, 3> *qLatent, MemRef<float, 3> *qRope,
    MemRef<uint16_t, 3> *cache, MemRef<int32_t, 1> *positions,
    MemRef<float, 3> *out, int64_t layer, float scale) {
  onCpu(ctx, "dsrt_latent_attention_bf16", [&] {
    return cpu::latentAttendDecode(cpu::activeIsa(), *qLatent, *qRope, *cache,
                                   *positions, *out, layer, scale);
  });
}

DSRT_EXPORT void _mlir_ciface_dsrt_latent_attention_fp8(
    void *ctx, MemRef<float, 3> *qLatent, MemRef<float, 3> *qRope,
    MemRef<uint8_t, 3> *cache, MemRef<int32_t, 1> *positions,
    MemRef<float, 3> *out, int64_t layer, int64_t group, float scale) {
  onCpu(ctx, "dsrt_latent_attention_fp8", [&] {
    return cpu::latentAttendDecodeFp8(cpu::activeIsa(), *qLatent, *qRope,
                                      *cache, group, *positions, *out, layer,
                                      scale);
  });
}

DSRT_EXPORT void _mlir_ciface_dsrt_paged_latent_attention_bf16(
    void *ctx, MemRef<float, 3> *qLatent, MemRef<float, 3> *qRope,
    MemRef<uint16_t, 4> *cache, MemRef<int32_t, 1> *positions,
    MemRef<int32_t, 1> *queryStart, MemRef<int32_t, 2> *blockTables,
    MemRef<float, 3> *out, int64_t layer, int64_t pageSize,
    int64_t naiveMinTokens, float scale) {
  onCpu(ctx, "dsrt_paged_latent_attention_bf16", [&] {
    return cpu::pagedLatentAttendDecode(
        cpu::activeIsa(), *qLatent, *qRope, *cache, *positions, *queryStart,
        *blockTables, *out, layer, pageSize, naiveMinTokens, scale);
  });
}

DSRT_EXPORT void _mlir_ciface_dsrt_paged_latent_attention_fp8(
    void *ctx, MemRef<float, 3> *qLatent, MemRef<float, 3> *qRope,
    MemRef<uint8_t, 4> *cache, MemRef<int32_t, 1> *positions,
    MemRef<int32_t, 1> *queryStart, MemRef<int32_t, 2> *blockTables,
    MemRef<float, 3> *out, int64_t layer, int64_t pageSize,
    int64_t naiveMinTokens, int64_t group, float scale) {
  onCpu(ctx, "dsrt_paged_latent_attention_fp8", [&] {
    return cpu::pagedLatentAttendDecodeFp8(
        cpu::activeIsa(), *qLatent, *qRope, *cache, group, *positions,
        *queryStart, *blockTables, *out, layer, pageSize, naiveMinTokens,
        scale);
  });
}
