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
  static std::unique_ptr<SafetensorsFile> open(const std::string &path,
                                               std::string &error);
  ~SafetensorsFile();
  const std::vector<TensorView> &tensors() const { return views; }
  const std::string &path() const { return filePath; }

private:
  SafetensorsFile() = default;
  std::string filePath;
  void *mapping = nullptr;
  size_t mappedSize = 0;
  std::vector<TensorView> views;
};

class Checkpoint {
public:
  /// `dir` holds model.safetensors.index.json (shards) or *.safetensors.
  static std::unique_ptr<Checkpoint> open(const std::string &dir,
                                          std::string &error);
  const TensorView *find(const std::string &name) const;
  std::vector<std::string> names() const;
  /// Converts tensor `name` to f32 into `out` (numElements floats). FP8
  /// tensors are dequantised with `<name>_scale_inv` (128x128 blocks).
  bool readF32(const std::string &name, float *out, std::string &error) const;

private:
  std::vector<std::unique_ptr<SafetensorsFile>> files;
  std::map<std::string, const TensorView *> byName;
};

struct WeightRequirement {
  std::string name;
  std::vector<int64_t> shape;
};

/// Every problem, one line each: missing tensor, wrong shape, unsupported
/// dtype, FP8 weight without a matching weight_scale_inv.
std::vector<std::string>
validateCheckpoint(const Checkpoint &ckpt,
                   const std::vector<WeightRequirement> &required);

/// NaN/Inf among the values of `names` (after conversion to f32).
std::vector<std::string> scanNonFinite(const Checkpoint &ckpt,
                                       const std::vector<std::string> &names);

std::string shapeToString(const std::vector<int64_t> &shape);

} // namespace dsrt

#endif // DSRT_WEIGHTS_CHECKPOINT_H
