//===- Shard.cpp - partitioned models: the job and each rank's pieces -----===//
//
// ds-compile --tp/--ep writes one artifact for every rank of a job: its
// manifest says the job's size and, per binding, how each checkpoint tensor
// is cut ("split": [dim, parts]); each rank binds piece number `rank`. The
// piece is read where it lies in the mmapped checkpoint when the GEMMs can
// read it there (rows: an offset; columns: an offset and the full row as
// leading dimension), else converted to f32 from the mapping, piece only.
//
//===----------------------------------------------------------------------===//
#include "api/Error.h"
#include "api/Model.h"
#include "dsrt/dsrt_comm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

using namespace dsrt;

void dsrt::CommCloser::operator()(dsrt_comm *comm) const {
  dsrt_comm_finalize(comm);
}

dsrt_status dsrt::startCommunicator(dsrt_model &model) {
  int64_t world = model.manifest.worldSize;
  if (world <= 1)
    return DSRT_OK;
  dsrt_comm *comm = nullptr;
  if (dsrt_status st = dsrt_comm_init(nullptr, &comm))
    return st;
  model.comm.reset(comm);
  if (dsrt_comm_size(comm) != world)
    return fail(DSRT_ERROR_ARGUMENT,
                model.artifactPath + ": partitioned for " +
                    std::to_string(world) + " ranks, but the job has " +
                    std::to_string(dsrt_comm_size(comm)) +
                    " (run it with mpiexec -n " + std::to_string(world) + ")");
  if (model.gpu)
    return fail(DSRT_ERROR_ARGUMENT,
                model.artifactPath +
                    ": partitioned models run on the CPU only for now");
  model.rank = dsrt_comm_rank(comm);
  model.worldSize = world;
  // A cut member list (experts over ranks): this rank's members only.
  for (Binding &b : model.manifest.bindings) {
    if (b.splitParts <= 1 || b.splitDim != -1)
      continue;
    size_t per = b.members.size() / size_t(b.splitParts);
    std::vector<std::string> mine(
        b.members.begin() + std::ptrdiff_t(per * size_t(model.rank)),
        b.members.begin() + std::ptrdiff_t(per * size_t(model.rank + 1)));
    b.members = std::move(mine);
    b.splitParts = 1;
  }
  return DSRT_OK;
}

namespace {

/// The in-place form of a member-cut binding, when the GEMMs can read it
/// (see bindInPlace in Model.cpp: the same formats and conditions).
bool splitInPlace(const dsrt_model &model, const Binding &b,
                  const Checkpoint &ckpt, BoundWeight &w) {
  if (const char *env = std::getenv("DSRT_WEIGHTS_F32"); env && *env == '1')
    return false;
  const TensorView *first = ckpt.find(b.members.front());
  if (!first || first->shape.size() != 2 || b.splitDim > 1)
    return false;
  int64_t rowsFull = first->shape[0], colsFull = first->shape[1];
  int64_t parts = b.splitParts, piece = model.rank;
  bool byCols = b.splitDim == 1;
  int64_t rows = byCols ? rowsFull : rowsFull / parts;
  int64_t cols = byCols ? colsFull / parts : colsFull;
  cpu::WeightFormat format;
  if (!inPlaceFormat(first->dtype, format))
    return false;
  // Generated code reads only dense f32 buffers of one member; a column
  // piece has the full row as its stride, which only the GEMMs follow.
  if (!b.gemmOnly &&
      (format != cpu::WeightFormat::F32 || byCols || b.members.size() != 1))
    return false;
  if ((format == cpu::WeightFormat::FP8) != b.dequantize)
    return false;
  if (format == cpu::WeightFormat::FP8 && (byCols ? cols : rows) % 128 != 0)
    return false;
  cpu::WeightMatrix m;
  m.format = format;
  m.cols = cols;
  m.ld = colsFull;
  m.partRows = rows;
  m.rows = rows * int64_t(b.members.size());
  size_t es = m.elementSize();
  int64_t blockRows = (rows + 127) / 128, blockCols = (cols + 127) / 128;
  int64_t fullBlockCols = (colsFull + 127) / 128;
  std::vector<float> scales;
  for (const std::string &name : b.members) {
    const TensorView *t = ckpt.find(name);
    if (!t || t->dtype != first->dtype || t->shape != first->shape)
      return false;
    if (reinterpret_cast<uintptr_t>(t->data) % es != 0)
      return false;
    size_t offset =
        byCols ? size_t(piece * cols) : size_t(piece * rows * colsFull);
    m.parts.push_back(t->data + offset * es);
    if (format != cpu::WeightFormat::FP8)
      continue;
    // This piece's whole 128x128 blocks of the member's scales.
    std::vector<float> all(size_t((rowsFull + 127) / 128 * fullBlockCols));
    std::string error;
    if (!ckpt.readF32(name + "_scale_inv", all.data(), error))
      return false;
    int64_t r0 = byCols ? 0 : piece * rows / 128;
    int64_t c0 = byCols ? piece * cols / 128 : 0;
    for (int64_t r = 0; r < blockRows; ++r)
      for (int64_t c = 0; c < blockCols; ++c)
        scales.push_back(all[size_t((r0 + r) * fullBlockCols + c0 + c)]);
  }
  int64_t bound = 1;
  for (int64_t d : b.shape)
    bound *= d;
  if (bound != m.rows * m.cols)
    return false;
  w.fp8Scales = std::move(scales);
  size_t blocks = size_t(blockRows * blockCols);
  for (size_t i = 0; i < m.parts.size() && format == cpu::WeightFormat::FP8;
       ++i)
    m.scales.push_back(w.fp8Scales.data() + i * blocks);
  w.inPlace = m.parts.front();
  w.matrix = std::move(m);
  return true;
}

} // namespace

dsrt_status dsrt::bindSplit(dsrt_model &model, size_t index,
                            const Checkpoint &ckpt, BoundWeight &w) {
  const Binding &b = model.manifest.bindings[index];
  if (b.splitDim < 0 || model.worldSize != b.splitParts)
    return fail(DSRT_ERROR_FORMAT,
                model.artifactPath + ": binding " + std::to_string(index) +
                    " is cut into " + std::to_string(b.splitParts) +
                    " pieces, the job has " + std::to_string(model.worldSize) +
                    " ranks");
  if (!model.gpu && splitInPlace(model, b, ckpt, w)) {
    model.weightsBytes +=
        int64_t(w.fp8Scales.size() * sizeof(float) +
                size_t(w.matrix.rows * w.matrix.cols) * w.matrix.elementSize());
    return DSRT_OK;
  }
  size_t count = 1;
  for (int64_t d : b.shape)
    count *= size_t(d);
  size_t per = count / b.members.size();
  w.data.resize(count);
  std::string error;
  for (size_t i = 0; i < b.members.size(); ++i) {
    const TensorView *t = ckpt.find(b.members[i]);
    if (!t || size_t(t->numElements()) != per * size_t(b.splitParts))
      return fail(DSRT_ERROR_WEIGHTS,
                  model.weightsDir + ": tensor '" + b.members[i] +
                      "' does not hold " + std::to_string(b.splitParts) +
                      " pieces of binding " + std::to_string(index));
    if (!ckpt.readF32Slice(b.members[i], b.splitDim, model.rank, b.splitParts,
                           w.data.data() + i * per, error))
      return fail(DSRT_ERROR_WEIGHTS, error);
  }
  model.weightsBytes += int64_t(count * sizeof(float));
  return DSRT_OK;
}

dsrt_status dsrt::shareToken(dsrt_model &model, int32_t &token) {
  if (!model.comm)
    return DSRT_OK;
  return dsrt_comm_broadcast(model.comm.get(), &token, sizeof(token), 0);
}

std::string dsrt::sameOnEveryRank(dsrt_model &model, int64_t value,
                                  const char *what) {
  if (!model.comm)
    return "";
  std::vector<int64_t> all(size_t(model.worldSize));
  if (dsrt_comm_all_gather(model.comm.get(), &value, sizeof(value),
                           all.data()) != DSRT_OK)
    return dsrt_last_error();
  if (std::all_of(all.begin(), all.end(),
                  [&](int64_t v) { return v == all[0]; }))
    return "";
  std::string list;
  for (size_t r = 0; r < all.size(); ++r)
    list += (r ? ", " : "") + std::to_string(all[r]);
  return std::string(what) + " differ between the ranks (" + list +
         "): every rank of a partitioned model must make the same calls";
}

extern "C" int dsrt_model_rank(const dsrt_model *model) {
  return model ? int(model->rank) : 0;
}

extern "C" int dsrt_model_world_size(const dsrt_model *model) {
  return model ? int(model->worldSize) : 1;
}
