//===- CommCalls.cpp - collectives generated code calls -------------------===//
//
// What convert-ds-to-loops makes of the shard collectives of a partitioned
// model (lib/Conversion/DSToLoops/ShardPatterns.cpp): calls on the model's
// communicator (api/Shard.cpp). A model of one rank has none, and each
// call is then the identity. A failed collective cannot be returned through
// generated code: the communicator ends the job with one line (timeout,
// MPI error); any other failure here is a mismatch between the code and
// its runtime.
//
//===----------------------------------------------------------------------===//
#include "api/Error.h"
#include "api/Model.h"
#include "cpu/MemRef.h"
#include "dsrt/dsrt_comm.h"

#include <cstring>
#include <vector>

#define DSRT_EXPORT extern "C" __attribute__((visibility("default")))

using namespace dsrt;

namespace {

bool dense(const MemRef<float, 2> &m) {
  return m.strides[1] == 1 && m.strides[0] == m.sizes[1];
}

void check(dsrt_status st, const char *what) {
  if (st != DSRT_OK)
    fatalInternalError(std::string(what) + ": " + dsrt_last_error());
}

} // namespace

DSRT_EXPORT void _mlir_ciface_dsrt_all_reduce_sum_f32(void *ctx,
                                                      MemRef<float, 2> *in,
                                                      MemRef<float, 2> *out) {
  auto *model = static_cast<dsrt_model *>(ctx);
  if (!dense(*in) || !dense(*out) || in->sizes[0] != out->sizes[0] ||
      in->sizes[1] != out->sizes[1])
    fatalInternalError("dsrt_all_reduce_sum_f32: operands are not dense "
                       "buffers of one shape");
  int64_t n = in->sizes[0] * in->sizes[1];
  if (in->data() != out->data())
    std::memmove(out->data(), in->data(), size_t(n) * sizeof(float));
  if (model->comm && n > 0)
    check(dsrt_comm_all_reduce_sum_f32(model->comm.get(), out->data(), n),
          "all_reduce");
}

DSRT_EXPORT void _mlir_ciface_dsrt_all_gather_cols_f32(void *ctx,
                                                       MemRef<float, 2> *in,
                                                       MemRef<float, 2> *out) {
  auto *model = static_cast<dsrt_model *>(ctx);
  int64_t world = model->worldSize;
  int64_t rows = in->sizes[0], cols = in->sizes[1];
  if (!dense(*in) || !dense(*out) || out->sizes[0] != rows ||
      out->sizes[1] != cols * world)
    fatalInternalError("dsrt_all_gather_cols_f32: expects [T, N] pieces of "
                       "a dense [T, N x ranks] result");
  if (rows == 0)
    return;
  size_t piece = size_t(rows * cols);
  // Rank r's [T, N] piece lands at block r, then moves to columns
  // [r N, (r + 1) N) of the result.
  std::vector<float> blocks(piece * size_t(world));
  if (model->comm)
    check(dsrt_comm_all_gather(model->comm.get(), in->data(),
                               int64_t(piece * sizeof(float)), blocks.data()),
          "all_gather");
  else
    std::memcpy(blocks.data(), in->data(), piece * sizeof(float));
  for (int64_t r = 0; r < world; ++r)
    for (int64_t t = 0; t < rows; ++t)
      std::memcpy(out->data() + t * cols * world + r * cols,
                  blocks.data() + size_t(r) * piece + size_t(t * cols),
                  size_t(cols) * sizeof(float));
}

DSRT_EXPORT int64_t _mlir_ciface_dsrt_comm_rank_index(void *ctx) {
  return static_cast<dsrt_model *>(ctx)->rank;
}
