//===- NaiveAttentionCalls.cpp - the naive MLA form through the GEMM ------===//
//
// ds.naive_attention on the CPU (convert-ds-to-loops head-matmul-calls):
// the contiguous cache's form of pagedNaiveAttention's loop. Host code over
// kernels that each own one scf.parallel (ds-parallelize-kernels gives them
// the thread pool):
//   for each chunk of context rows:
//     gather:  the chunk's latents and rope keys, decoded to f32
//     GEMM:    [k_nope_h | v_h] of every head = latents x kv_b_proj^T, one
//              runtime GEMM (dsrt_linear_exact_f32), which reads kv_b_proj
//              in its stored format and never rounds the latents: this
//              form agrees with the absorbed one (dsrt_head_matmul_f32)
//     attend:  the runtime's dsrt_naive_attend_f32 over all tokens (one
//              sequence): vector GEMM tiles and exp (NaiveAttendCall.cpp)
//   finish:    divide by the softmax sums.
// Generated code never dereferences kv_b_proj, so the runtime needs no f32
// copy of it (the loop-nest form, KernelEmitter::naiveAttention, stays the
// GPU's: its kernels read a device copy).
//
//===----------------------------------------------------------------------===//
#include "KernelEmitter.h"

#include "mlir/Dialect/Arith/IR/Arith.h"

#include <limits>
#include <string>

using namespace mlir;
using namespace mlir::ds;
using namespace mlir::ds::loops;

KernelEmitter::NaiveScratch
KernelEmitter::naiveScratch(Value tokens, Value qNope, Value qRope, Value kvb,
                            Value out, int64_t chunk, bool chunkBuffers) {
  auto qt = cast<MemRefType>(qNope.getType());
  int64_t heads = qt.getDimSize(1), dn = qt.getDimSize(2),
          dr = cast<MemRefType>(qRope.getType()).getDimSize(2),
          dv = cast<MemRefType>(out.getType()).getDimSize(2),
          dc = cast<MemRefType>(kvb.getType()).getDimSize(1);
  Type f32 = b.getF32Type();
  auto perToken = MemRefType::get({ShapedType::kDynamic, heads}, f32);
  NaiveScratch s;
  if (chunkBuffers) {
    s.lat = memref::AllocOp::create(b, loc, MemRefType::get({chunk, dc}, f32));
    s.rope = memref::AllocOp::create(b, loc, MemRefType::get({chunk, dr}, f32));
    s.kv = memref::AllocOp::create(
        b, loc, MemRefType::get({chunk, heads * (dn + dv)}, f32));
  }
  s.runMax = memref::AllocOp::create(b, loc, perToken, tokens);
  s.runSum = memref::AllocOp::create(b, loc, perToken, tokens);
  return s;
}

void KernelEmitter::naiveAttentionCalls(Value ctx, Value qNope, Value qRope,
                                        Value cacheMem, Value positions,
                                        Value kvb, Value out, Value layer,
                                        double scale, int64_t chunk,
                                        const NaiveScratch &scratch) {
  auto qt = cast<MemRefType>(qNope.getType());
  int64_t heads = qt.getDimSize(1),
          dv = cast<MemRefType>(out.getType()).getDimSize(2);
  Value tokens = dim(qNope, 0), hv = cIdx(heads), chunkV = cIdx(chunk);
  // Kernels over differently stored rows never share a function.
  std::string key = std::to_string(scale) + "/" + std::to_string(chunk) + "/" +
                    std::to_string(cache.group);

  // Rows 0..max(positions) are attended by some token.
  Value rows = rowsAttended(positions, cIdx(0), tokens);
  // One chunk's decoded rows and their per-head keys and values: memory
  // does not grow with the context.
  Value lat = scratch.lat, rope = scratch.rope, kv = scratch.kv,
        runMax = scratch.runMax, runSum = scratch.runSum;
  Value negInf = cF32(-std::numeric_limits<float>::infinity());
  par({tokens, hv}, [&](ValueRange iv) {
    store(negInf, runMax, iv);
    store(cF32(0.0), runSum, iv);
    loop(cIdx(0), cIdx(dv), {}, [&](Value j, ValueRange) -> SmallVector<Value> {
      store(cF32(0.0), out, {iv[0], iv[1], j});
      return {};
    });
  });

  loop(
      cIdx(0), rows, {},
      [&](Value c0, ValueRange) -> SmallVector<Value> {
        Value m = arith::MinUIOp::create(
            b, loc, chunkV, arith::SubIOp::create(b, loc, rows, c0));
        // Rows past the context repeat its last row: the GEMM runs over a
        // whole chunk and the attention never reads them.
        outline(
            "naive_gather", key, {cacheMem, layer, c0, m, lat, rope},
            [&](ValueRange a) {
              CacheRows rowsOf{a[0], a[1]};
              par({cIdx(chunk)}, [&](ValueRange iv) {
                Value lastRow = arith::SubIOp::create(b, loc, a[3], cIdx(1));
                Value r = arith::MinUIOp::create(b, loc, iv[0], lastRow);
                SmallVector<Value> row = cacheRow(
                    rowsOf, cIdx(0), arith::AddIOp::create(b, loc, a[2], r));
                copyCacheRow(a[0], row, a[4], a[5], iv[0]);
              });
            });
        // [k_nope_h | v_h] of every head for the chunk's rows.
        linearExact(ctx, lat, kvb, kv);
        naiveAttendCall(ctx,
                        {qNope, qRope, positions, kv, rope, runMax, runSum,
                         out, cIdx(0), tokens, c0, m},
                        scale);
        return {};
      },
      chunkV);

  par({tokens, hv, cIdx(dv)}, [&](ValueRange iv) {
    Value inv =
        arith::DivFOp::create(b, loc, cF32(1.0), load(runSum, {iv[0], iv[1]}));
    store(arith::MulFOp::create(b, loc, load(out, iv), inv), out, iv);
  });
}
