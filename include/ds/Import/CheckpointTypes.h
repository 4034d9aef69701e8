//===- CheckpointTypes.h - a checkpoint seen from the compiler --*- C++ -*-===//
//
// Bridges the runtime's safetensors reader (dsrt, no MLIR) and the importer:
// which element type each tensor has, and whether the checkpoint provides
// everything the imported model names.
//
//===----------------------------------------------------------------------===//
#ifndef DS_IMPORT_CHECKPOINTTYPES_H
#define DS_IMPORT_CHECKPOINTTYPES_H

#include "ds/Import/ImportModel.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dsrt {
class Checkpoint;
}

namespace mlir::ds {

class CheckpointTypes {
public:
  /// Opens the safetensors of `dir`; nullptr without an error when the
  /// directory holds no weights at all (config-only import).
  static std::unique_ptr<CheckpointTypes>
  openIfPresent(const std::string &dir, MLIRContext *ctx, std::string &error);
  ~CheckpointTypes();

  /// The MLIR element type of tensor `name`; nullopt when absent or of a
  /// dtype the compiler does not take (validate() reports those).
  std::optional<Type> typeOf(llvm::StringRef name) const;

  /// Every problem (missing, misshapen, unsupported dtype), one line each.
  std::vector<std::string> validate(const std::vector<RequiredWeight> &) const;

private:
  CheckpointTypes() = default;
  std::unique_ptr<dsrt::Checkpoint> checkpoint;
  MLIRContext *ctx = nullptr;
};

} // namespace mlir::ds

#endif // DS_IMPORT_CHECKPOINTTYPES_H
