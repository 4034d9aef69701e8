//===- FakeKernels.cpp - stand-in for a compiled artifact's object --------===//
//
// Exports the two entry points with the generated code's ABI and calls back
// into libdsrt the way generated code does (weights by index, linear), so a
// test can predict every logit:
//   col 0: the token's position
//   col 1: sum of the tokens cached at earlier positions (layer 1's cache)
//   col 2: entry point (1 prefill, 2 decode) + 10 * DS_FAKE_VARIANT
//   col 3: tokens in this call
//   col 4: binding 1 [2, 4, 4], element [1, 0, 0] (first value of member 1)
//   col 5..: embed[token] . embed[col] through dsrt_linear_f32
// and stores the token at cache[layer, position, 0] for every layer. The
// routing trace gets one record per call: layer = entry point, experts =
// the tokens as [n, 1].
//
//===----------------------------------------------------------------------===//
#include "cpu/MemRef.h"

using dsrt::MemRef;

extern "C" {
void _mlir_ciface_dsrt_weight_f32_r2(MemRef<float, 2> *, void *, int64_t);
void _mlir_ciface_dsrt_weight_f32_r3(MemRef<float, 3> *, void *, int64_t);
void _mlir_ciface_dsrt_linear_f32(void *, MemRef<float, 2> *,
                                  MemRef<float, 2> *, MemRef<float, 2> *);
void _mlir_ciface_dsrt_trace_routing(void *, int64_t, MemRef<int32_t, 2> *);
}

namespace {

void run(int entry, void *ctx, MemRef<int32_t, 1> *tokens,
         MemRef<int32_t, 1> *positions, MemRef<float, 3> *cache,
         MemRef<float, 2> *logits) {
  MemRef<float, 2> embed;
  _mlir_ciface_dsrt_weight_f32_r2(&embed, ctx, 0);
  MemRef<float, 3> stacked;
  _mlir_ciface_dsrt_weight_f32_r3(&stacked, ctx, 1);
  int64_t n = tokens->sizes[0], vocab = logits->sizes[1];
  MemRef<int32_t, 2> ids;
  ids.allocated = tokens->allocated;
  ids.aligned = tokens->aligned;
  ids.offset = tokens->offset;
  ids.sizes[0] = n;
  ids.sizes[1] = 1;
  ids.strides[0] = tokens->strides[0];
  ids.strides[1] = 1;
  _mlir_ciface_dsrt_trace_routing(ctx, entry, &ids);
  for (int64_t t = 0; t < n; ++t) {
    int32_t tok = tokens->data()[t * tokens->strides[0]];
    int32_t pos = positions->data()[t * positions->strides[0]];
    float *row = logits->data() + t * logits->strides[0];
    float prefix = 0;
    for (int32_t p = 0; p < pos; ++p)
      prefix += cache->data()[1 * cache->strides[0] + p * cache->strides[1]];
    row[0] = float(pos);
    row[1] = prefix;
    row[2] = float(entry + 10 * DS_FAKE_VARIANT);
    row[3] = float(n);
    row[4] = stacked.data()[1 * stacked.strides[0]];
    // x = embed[tok] (a 1-row view into the binding), w = embed[5:], y =
    // row[5:]: the strides come from the views, as in generated code.
    MemRef<float, 2> x = embed;
    x.offset = embed.offset + tok * embed.strides[0];
    x.sizes[0] = 1;
    MemRef<float, 2> w = embed;
    w.offset = embed.offset + 5 * embed.strides[0];
    w.sizes[0] = vocab - 5;
    MemRef<float, 2> y;
    y.allocated = y.aligned = logits->aligned;
    y.offset = logits->offset + t * logits->strides[0] + 5;
    y.sizes[0] = 1;
    y.sizes[1] = vocab - 5;
    y.strides[0] = logits->strides[0];
    y.strides[1] = 1;
    _mlir_ciface_dsrt_linear_f32(ctx, &x, &w, &y);
    for (int64_t l = 0; l < cache->sizes[0]; ++l)
      cache->data()[l * cache->strides[0] + pos * cache->strides[1]] =
          float(tok);
  }
}

} // namespace

extern "C" __attribute__((visibility("default"))) void
_mlir_ciface_prefill(void *ctx, MemRef<int32_t, 1> *tokens,
                     MemRef<int32_t, 1> *positions, MemRef<float, 3> *cache,
                     MemRef<float, 2> *logits) {
  run(1, ctx, tokens, positions, cache, logits);
}

extern "C" __attribute__((visibility("default"))) void
_mlir_ciface_decode(void *ctx, MemRef<int32_t, 1> *tokens,
                    MemRef<int32_t, 1> *positions, MemRef<float, 3> *cache,
                    MemRef<float, 2> *logits) {
  run(2, ctx, tokens, positions, cache, logits);
}
