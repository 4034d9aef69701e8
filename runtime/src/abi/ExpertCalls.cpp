//===- ExpertCalls.cpp - expert parallelism's exchanges -------------------===//
//
// What convert-ds-to-loops makes of expert parallelism's data-dependent
// exchanges (lib/Conversion/DSToLoops/ShardPatterns.cpp): this rank's share
// of the step's tokens (shard.all_slice), every rank's rows back
// (shard.all_gather along rows), and the two all-to-alls of ds.moe_dispatch
// and ds.moe_collect. A buffer whose size depends on other ranks is sized
// in two calls: the first exchanges counts and returns the rows, the
// generated code allocates, the second moves the rows.
//
// Token shares are ceil(T / W)-row blocks in rank order, the last ones
// shorter or empty. A model of one rank has no communicator: every call is
// then a local copy.
//
//===----------------------------------------------------------------------===//
#include "api/Error.h"
#include "api/Model.h"
#include "cpu/MemRef.h"
#include "dsrt/dsrt_comm.h"

#include <algorithm>
#include <cstring>
#include <vector>

#define DSRT_EXPORT extern "C" __attribute__((visibility("default")))

using namespace dsrt;

namespace {

template <typename T> bool dense(const MemRef<T, 2> &m) {
  return m.sizes[0] == 0 || (m.strides[1] == 1 && m.strides[0] == m.sizes[1]);
}

void check(dsrt_status st, const char *what) {
  if (st != DSRT_OK)
    fatalInternalError(std::string(what) + ": " + dsrt_last_error());
}

/// Rows [begin, end) of `total` that rank `rank` of `world` owns.
std::pair<int64_t, int64_t> share(int64_t total, int64_t rank, int64_t world) {
  int64_t block = (total + world - 1) / world;
  int64_t begin = std::min(total, rank * block);
  return {begin, std::min(total, begin + block)};
}

/// Rows of `send` (rank order, sendRows[p] for rank p) to every rank;
/// rows from every rank into `recv` (rank order, recvRows[p]).
void exchange(dsrt_model *model, const float *send,
              const std::vector<int64_t> &sendRows, float *recv,
              const std::vector<int64_t> &recvRows, int64_t width,
              const char *what) {
  if (model->comm) {
    check(dsrt_comm_all_to_all_v(model->comm.get(), send, sendRows.data(), recv,
                                 recvRows.data(),
                                 width * int64_t(sizeof(float))),
          what);
    return;
  }
  if (sendRows[0] > 0)
    std::memcpy(recv, send, size_t(sendRows[0] * width) * sizeof(float));
}

/// The dispatching rank's view: experts per rank and the rows it sends
/// each rank (its permuted rows are sorted by expert).
struct Routing {
  int64_t world, local;
  std::vector<int64_t> toRank; // rows for rank p's experts

  Routing(dsrt_model *model, const MemRef<int32_t, 1> &offsets,
          const char *what)
      : world(model->worldSize) {
    int64_t experts = offsets.sizes[0] - 1;
    if (experts < 1 || experts % world != 0 || offsets.strides[0] != 1)
      fatalInternalError(std::string(what) +
                         ": offsets do not delimit whole experts per rank");
    local = experts / world;
    const int32_t *off = offsets.data();
    for (int64_t p = 0; p < world; ++p)
      toRank.push_back(int64_t(off[(p + 1) * local]) - off[p * local]);
  }
};

/// counts[q][e]: rows source rank q sends to this rank's expert e.
std::vector<int64_t> fromRank(const MemRef<int32_t, 2> &counts) {
  std::vector<int64_t> rows(size_t(counts.sizes[0]), 0);
  for (int64_t q = 0; q < counts.sizes[0]; ++q)
    for (int64_t e = 0; e < counts.sizes[1]; ++e)
      rows[size_t(q)] += counts.data()[q * counts.strides[0] + e];
  return rows;
}

/// Row offsets of block (q, e) in source-major order (q, then e) and in
/// expert-major order (e, then q).
void blockOffsets(const MemRef<int32_t, 2> &counts,
                  std::vector<int64_t> &sourceMajor,
                  std::vector<int64_t> &expertMajor) {
  int64_t w = counts.sizes[0], l = counts.sizes[1];
  auto at = [&](int64_t q, int64_t e) {
    return int64_t(counts.data()[q * counts.strides[0] + e]);
  };
  sourceMajor.assign(size_t(w * l), 0);
  expertMajor.assign(size_t(w * l), 0);
  int64_t row = 0;
  for (int64_t q = 0; q < w; ++q)
    for (int64_t e = 0; e < l; ++e) {
      sourceMajor[size_t(q * l + e)] = row;
      row += at(q, e);
    }
  row = 0;
  for (int64_t e = 0; e < l; ++e)
    for (int64_t q = 0; q < w; ++q) {
      expertMajor[size_t(q * l + e)] = row;
      row += at(q, e);
    }
}

/// Moves each (source rank, local expert) block i of a dense [ranks,
/// local experts] `counts` from rows fromRow[i] of `from` to rows toRow[i]
/// of `to` (blockOffsets' two orders, one each way).
void moveBlocks(const MemRef<int32_t, 2> &counts, const float *from,
                const std::vector<int64_t> &fromRow, float *to,
                const std::vector<int64_t> &toRow, int64_t width) {
  for (size_t i = 0; i < fromRow.size(); ++i) {
    int64_t n = counts.data()[i];
    if (n == 0) // an empty buffer's data() may be null, even for 0 bytes
      continue;
    std::memcpy(to + toRow[i] * width, from + fromRow[i] * width,
                size_t(n * width) * sizeof(float));
  }
}

} // namespace

DSRT_EXPORT int64_t _mlir_ciface_dsrt_rows_share(void *ctx, int64_t total) {
  auto *model = static_cast<dsrt_model *>(ctx);
  auto [begin, end] = share(total, model->rank, model->worldSize);
  return end - begin;
}

DSRT_EXPORT void _mlir_ciface_dsrt_slice_rows_f32(void *ctx,
                                                  MemRef<float, 2> *in,
                                                  MemRef<float, 2> *out) {
  auto *model = static_cast<dsrt_model *>(ctx);
  auto [begin, end] = share(in->sizes[0], model->rank, model->worldSize);
  if (!dense(*in) || !dense(*out) || out->sizes[0] != end - begin ||
      out->sizes[1] != in->sizes[1])
    fatalInternalError("dsrt_slice_rows_f32: expects this rank's rows of a "
                       "dense [T, N] input");
  if (end > begin)
    std::memcpy(out->data(), in->data() + begin * in->sizes[1],
                size_t((end - begin) * in->sizes[1]) * sizeof(float));
}

DSRT_EXPORT int64_t _mlir_ciface_dsrt_gather_rows_counts(
    void *ctx, int64_t rows, MemRef<int64_t, 1> *counts) {
  auto *model = static_cast<dsrt_model *>(ctx);
  if (counts->sizes[0] != model->worldSize || counts->strides[0] != 1)
    fatalInternalError("dsrt_gather_rows_counts: expects one count per rank");
  if (model->comm)
    check(dsrt_comm_all_gather(model->comm.get(), &rows, sizeof(int64_t),
                               counts->data()),
          "all_gather (row counts)");
  else
    counts->data()[0] = rows;
  int64_t total = 0;
  for (int64_t p = 0; p < model->worldSize; ++p)
    total += counts->data()[p];
  return total;
}

DSRT_EXPORT void _mlir_ciface_dsrt_gather_rows_f32(void *ctx,
                                                   MemRef<float, 2> *in,
                                                   MemRef<int64_t, 1> *counts,
                                                   MemRef<float, 2> *out) {
  auto *model = static_cast<dsrt_model *>(ctx);
  int64_t w = model->worldSize, width = in->sizes[1];
  const int64_t *n = counts->data();
  int64_t most = *std::max_element(n, n + w), total = 0;
  for (int64_t p = 0; p < w; ++p)
    total += n[p];
  if (!dense(*in) || !dense(*out) || in->sizes[0] != n[model->rank] ||
      out->sizes[0] != total || out->sizes[1] != width)
    fatalInternalError("dsrt_gather_rows_f32: expects dense [rows, N] "
                       "pieces of the counts exchanged");
  // Equal-sized pieces (padded to the largest share) for one all-gather.
  size_t piece = size_t(most * width);
  std::vector<float> padded(piece, 0.0f), all(piece * size_t(w));
  if (in->sizes[0] > 0)
    std::memcpy(padded.data(), in->data(),
                size_t(in->sizes[0] * width) * sizeof(float));
  if (model->comm && piece > 0)
    check(dsrt_comm_all_gather(model->comm.get(), padded.data(),
                               int64_t(piece * sizeof(float)), all.data()),
          "all_gather (rows)");
  else
    all.swap(padded);
  float *dst = out->data();
  for (int64_t p = 0; p < w; ++p) {
    std::memcpy(dst, all.data() + size_t(p) * piece,
                size_t(n[p] * width) * sizeof(float));
    dst += n[p] * width;
  }
}

DSRT_EXPORT int64_t _mlir_ciface_dsrt_moe_dispatch_counts(
    void *ctx, MemRef<int32_t, 1> *offsets, MemRef<int32_t, 2> *counts) {
  auto *model = static_cast<dsrt_model *>(ctx);
  Routing r(model, *offsets, "dsrt_moe_dispatch_counts");
  if (counts->sizes[0] != r.world || counts->sizes[1] != r.local ||
      !dense(*counts))
    fatalInternalError("dsrt_moe_dispatch_counts: counts must be dense "
                       "[ranks, local experts]");
  // Rank p gets, for each of its experts, how many rows this rank routed
  // there: one row of `local` counts per peer.
  const int32_t *off = offsets->data();
  std::vector<int64_t> send(size_t(r.world * r.local)),
      recv(size_t(r.world * r.local));
  for (int64_t g = 0; g < r.world * r.local; ++g)
    send[size_t(g)] = int64_t(off[g + 1]) - off[g];
  if (model->comm) {
    std::vector<int64_t> one(size_t(r.world), 1);
    check(dsrt_comm_all_to_all_v(model->comm.get(), send.data(), one.data(),
                                 recv.data(), one.data(),
                                 r.local * int64_t(sizeof(int64_t))),
          "all_to_all (expert counts)");
  } else {
    recv = send;
  }
  int64_t total = 0;
  for (size_t i = 0; i < recv.size(); ++i) {
    counts->data()[i] = int32_t(recv[i]);
    total += recv[i];
  }
  return total;
}

DSRT_EXPORT void _mlir_ciface_dsrt_moe_dispatch_rows_f32(
    void *ctx, MemRef<float, 2> *permuted, MemRef<int32_t, 1> *offsets,
    MemRef<int32_t, 2> *counts, MemRef<float, 2> *received,
    MemRef<int32_t, 1> *receivedOffsets) {
  auto *model = static_cast<dsrt_model *>(ctx);
  Routing r(model, *offsets, "dsrt_moe_dispatch_rows_f32");
  int64_t width = permuted->sizes[1];
  std::vector<int64_t> inRows = fromRank(*counts);
  int64_t total = 0;
  for (int64_t v : inRows)
    total += v;
  if (!dense(*permuted) || !dense(*received) || !dense(*counts) ||
      received->sizes[1] != width || received->sizes[0] != total ||
      permuted->sizes[0] != offsets->data()[offsets->sizes[0] - 1] ||
      receivedOffsets->sizes[0] != r.local + 1)
    fatalInternalError("dsrt_moe_dispatch_rows_f32: buffers do not match "
                       "the exchanged counts");
  std::vector<float> bySource(size_t(total * width));
  exchange(model, permuted->data(), r.toRank, bySource.data(), inRows, width,
           "all_to_all (dispatch)");
  // Source-major as received; the grouped matmuls want expert-major.
  std::vector<int64_t> src, dst;
  blockOffsets(*counts, src, dst);
  moveBlocks(*counts, bySource.data(), src, received->data(), dst, width);
  int32_t *ro = receivedOffsets->data();
  ro[0] = 0;
  for (int64_t e = 0; e < r.local; ++e) {
    int64_t n = 0;
    for (int64_t q = 0; q < r.world; ++q)
      n += counts->data()[q * r.local + e];
    ro[e + 1] = int32_t(ro[e] + n);
  }
}

DSRT_EXPORT void _mlir_ciface_dsrt_moe_collect_rows_f32(
    void *ctx, MemRef<float, 2> *expertOut, MemRef<int32_t, 2> *counts,
    MemRef<int32_t, 1> *offsets, MemRef<float, 2> *out) {
  auto *model = static_cast<dsrt_model *>(ctx);
  Routing r(model, *offsets, "dsrt_moe_collect_rows_f32");
  int64_t width = expertOut->sizes[1];
  std::vector<int64_t> backRows = fromRank(*counts);
  int64_t total = 0;
  for (int64_t v : backRows)
    total += v;
  if (!dense(*expertOut) || !dense(*out) || !dense(*counts) ||
      expertOut->sizes[0] != total || out->sizes[1] != width ||
      out->sizes[0] != offsets->data()[offsets->sizes[0] - 1])
    fatalInternalError("dsrt_moe_collect_rows_f32: buffers do not match "
                       "the exchanged counts");
  // Back to source-major, so each source's rows are contiguous.
  std::vector<int64_t> src, dst;
  blockOffsets(*counts, src, dst);
  std::vector<float> bySource(size_t(total * width));
  moveBlocks(*counts, expertOut->data(), dst, bySource.data(), src, width);
  // What this rank sent to rank p comes back in the order it left: the
  // result is in `permuted` order.
  exchange(model, bySource.data(), backRows, out->data(), r.toRank, width,
           "all_to_all (combine)");
}
