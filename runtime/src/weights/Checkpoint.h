//===- Checkpoint.h - safetensors files and checkpoints ---------*- C++ -*-===//
//
// A checkpoint is one or more memory-mapped safetensors files, optionally
// listed by model.safetensors.index.json. Every header is bounds-checked:
// an error names the file and the tensor, never reads outside the file.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_WEIGHTS_CHECKPOINT_H
#define DSRT_WEIGHTS_CHECKPOINT_H

#include "weights/DType.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace dsrt {

/// A tensor inside a mapped file. `data` may be unaligned (safetensors
/// does not align); read it with memcpy.
struct TensorView {
  std::string name;
  std::string file;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t *data = nullptr;
  size_t nbytes = 0;

  int64_t numElements() const;
};

/// One mmapped .safetensors file.
class SafetensorsFile {
public:
  /// safetensors' own cap on the JSON header, so a corrupt length cannot
  /// make the parser walk (and copy) gigabytes of tensor data.
  static constexpr uint64_t kMaxHeaderBytes = 100000000;

  static std::unique_ptr<SafetensorsFile> open(const std::string &path,
                                               std::string &error);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile &) = delete;
  SafetensorsFile &operator=(const SafetensorsFile &) = delete;

  /// In header order.
  const std::vector<TensorView> &tensors() const { return views; }
  const std::string &path() const { return filePath; }
  /// The mapping's first byte and length (2 MiB aligned where the file
  /// spans a huge page).
  const void *mappedData() const { return mapping; }
  size_t mappedBytes() const { return mappedSize; }
  /// Whether the mapping was advised MADV_HUGEPAGE.
  bool hugePagesAdvised() const { return hugeAdvised; }

private:
  SafetensorsFile() = default;
  std::string filePath;
  void *mapping = nullptr;
  size_t mappedSize = 0;
  bool hugeAdvised = false;
  std::vector<TensorView> views;
};

class Checkpoint {
public:
  /// `dir` holds model.safetensors.index.json (shards) or *.safetensors.
  static std::unique_ptr<Checkpoint> open(const std::string &dir,
                                          std::string &error);
  const TensorView *find(const std::string &name) const;
  /// Sorted.
  std::vector<std::string> names() const;
  const std::string &directory() const { return dir; }
  const std::vector<std::unique_ptr<SafetensorsFile>> &mappedFiles() const {
    return files;
  }
  /// Converts tensor `name` to f32 into `out` (numElements floats). FP8
  /// tensors are dequantised with `<name>_scale_inv` (128x128 blocks).
  bool readF32(const std::string &name, float *out, std::string &error) const;
  /// Piece `piece` of `parts` equal pieces of tensor `name` along `dim`,
  /// converted to f32 into `out` (numElements / parts floats): only the
  /// piece is read from the mapping.
  bool readF32Slice(const std::string &name, int64_t dim, int64_t piece,
                    int64_t parts, float *out, std::string &error) const;

private:
  std::string dir;
  std::vector<std::unique_ptr<SafetensorsFile>> files;
  std::map<std::string, const TensorView *> byName;
};

/// Side of the square blocks FP8 weights are scaled by.
constexpr int64_t kFP8BlockSize = 128;

/// The shape of the weight_scale_inv of an FP8 weight of 2-D `shape`.
std::vector<int64_t> fp8ScaleShape(const std::vector<int64_t> &shape);

struct WeightRequirement {
  std::string name;
  std::vector<int64_t> shape;
};

/// Every problem, one line each: missing tensor, wrong shape, unsupported
/// dtype, FP8 weight without a well-formed weight_scale_inv.
std::vector<std::string>
validateCheckpoint(const Checkpoint &ckpt,
                   const std::vector<WeightRequirement> &required);

/// The first NaN/Inf of each of `names` (after conversion to f32), with its
/// flat and multi-dimensional index. Tensors the checkpoint lacks are left
/// to validateCheckpoint.
std::vector<std::string> scanNonFinite(const Checkpoint &ckpt,
                                       const std::vector<std::string> &names);

std::string shapeToString(const std::vector<int64_t> &shape);

} // namespace dsrt

#endif // DSRT_WEIGHTS_CHECKPOINT_H
