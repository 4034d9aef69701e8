//===- LatentAttendCall.cpp - the absorbed attention as a runtime call ----===//
//
// Part of KernelEmitter (KernelEmitter.h). On the CPU path
// (latent-attention-calls) ds.latent_attention and
// ds.paged_latent_attention are the runtime's dsrt_latent_attention_* /
// dsrt_paged_latent_attention_* (_f32, _bf16, _fp8 by the cache's rows;
// runtime/src/cpu/LatentAttend.cpp): each token's context rows split into
// fixed blocks over the pool, a bf16 or FP8 block decoded to f32 once for
// every head, every head's scores and weighted sums per block as register
// tiles, a vector exp per block, the blocks merged by log-sum-exp. The
// generated nest (groupedLatentAttention) runs an online softmax a row at a
// time with an expf call per (row, head) and splits only by groups of
// heads; it stays the GPU's path (its split-KV kernel is rebuilt from it).
// attendCall also serves the naive form's attend step (NaiveAttendCall.cpp).
//
//===----------------------------------------------------------------------===//
#include "KernelEmitter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"

using namespace mlir;
using namespace mlir::ds;
using namespace mlir::ds::loops;

/// Any sizes, strides and offset: the queries are views of wider buffers.
static MemRefType anyLayout(Value v) {
  auto t = cast<MemRefType>(v.getType());
  int64_t rank = t.getRank();
  return MemRefType::get(
      SmallVector<int64_t>(rank, ShapedType::kDynamic), t.getElementType(),
      StridedLayoutAttr::get(t.getContext(), ShapedType::kDynamic,
                             SmallVector<int64_t>(rank, ShapedType::kDynamic)));
}

void KernelEmitter::attendCall(StringRef fn, Value ctx, ValueRange memrefs,
                               ValueRange indices, double scale) {
  SmallVector<Type> types{ctx.getType()};
  SmallVector<Value> args{ctx};
  for (Value v : memrefs) {
    MemRefType t = anyLayout(v);
    types.push_back(t);
    args.push_back(memref::CastOp::create(b, loc, t, v));
  }
  Type i64 = b.getI64Type();
  for (Value v : indices) {
    types.push_back(i64);
    args.push_back(arith::IndexCastOp::create(b, loc, i64, v));
  }
  types.push_back(b.getF32Type());
  args.push_back(cF32(scale));
  func::CallOp::create(b, loc, runtimeFunction(fn, types, {}), args);
}
