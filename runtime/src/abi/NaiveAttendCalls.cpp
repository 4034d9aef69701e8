//===- NaiveAttendCalls.cpp - the naive MLA form's attend step ------------===//
//
// Called by the code convert-ds-to-loops emits for ds.naive_attention and
// ds.paged_naive_attention on the CPU path (head-matmul-calls): one call per
// chunk of cache rows (lib/Conversion/DSToLoops/NaiveAttendCall.cpp fixes
// the signature). The kernel is cpu::naiveAttendChunk.
//
//===----------------------------------------------------------------------===//
#include "api/Error.h"
#include "api/Model.h"
#include "cpu/Isa.h"
#include "cpu/MemRef.h"
#include "cpu/NaiveAttend.h"

#define DSRT_EXPORT extern "C" __attribute__((visibility("default")))

using namespace dsrt;

DSRT_EXPORT void _mlir_ciface_dsrt_naive_attend_f32(
    void *ctx, MemRef<float, 3> *qNope, MemRef<float, 3> *qRope,
    MemRef<int32_t, 1> *positions, MemRef<float, 2> *kv,
    MemRef<float, 2> *rope, MemRef<float, 2> *runMax, MemRef<float, 2> *runSum,
    MemRef<float, 3> *out, int64_t firstToken, int64_t tokens,
    int64_t firstRow, int64_t rows, float scale) {
  // The GPU pipeline keeps the attend step a generated kernel.
  if (static_cast<dsrt_model *>(ctx)->gpu)
    fatalInternalError("dsrt_naive_attend_f32 called on the GPU path");
  std::string e = cpu::naiveAttendChunk(
      cpu::activeIsa(), *qNope, *qRope, *positions, *kv, *rope, *runMax,
      *runSum, *out, firstToken, tokens, firstRow, rows, scale);
  if (!e.empty())
    fatalInternalError(e);
}
