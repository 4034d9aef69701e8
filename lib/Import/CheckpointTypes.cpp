//===- CheckpointTypes.cpp - a checkpoint seen from the compiler ----------===//
#include "ds/Import/CheckpointTypes.h"

#ifdef DS_HAVE_RUNTIME
#include "weights/Checkpoint.h"
#endif

#include "mlir/IR/BuiltinTypes.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"

using namespace mlir;
using namespace mlir::ds;

static bool hasWeights(const std::string &dir) {
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(dir, ec), end; it != end && !ec;
       it.increment(ec)) {
    llvm::StringRef name = llvm::sys::path::filename(it->path());
    if (name.ends_with(".safetensors") ||
        name == "model.safetensors.index.json")
      return true;
  }
  return false;
}

#ifdef DS_HAVE_RUNTIME
std::unique_ptr<CheckpointTypes>
CheckpointTypes::openIfPresent(const std::string &dir, MLIRContext *ctx,
                               std::string &error) {
  if (!hasWeights(dir))
    return nullptr;
  std::unique_ptr<CheckpointTypes> result(new CheckpointTypes());
  result->ctx = ctx;
  result->checkpoint = dsrt::Checkpoint::open(dir, error);
  if (!result->checkpoint)
    return nullptr;
  return result;
}

CheckpointTypes::~CheckpointTypes() = default;

std::optional<Type> CheckpointTypes::typeOf(llvm::StringRef name) const {
  const dsrt::TensorView *t = checkpoint->find(name.str());
  if (!t)
    return std::nullopt;
  switch (t->dtype) {
  case dsrt::DType::F32:
    return Float32Type::get(ctx);
  case dsrt::DType::F16:
    return Float16Type::get(ctx);
  case dsrt::DType::BF16:
    return BFloat16Type::get(ctx);
  case dsrt::DType::F8_E4M3:
    return Float8E4M3FNType::get(ctx);
  default:
    return std::nullopt;
  }
}

std::vector<std::string>
CheckpointTypes::validate(const std::vector<RequiredWeight> &required) const {
  std::vector<dsrt::WeightRequirement> reqs;
  reqs.reserve(required.size());
  for (const RequiredWeight &w : required)
    reqs.push_back({w.name, std::vector<int64_t>(w.shape.begin(), w.shape.end())});
  return dsrt::validateCheckpoint(*checkpoint, reqs);
}
#else
namespace dsrt {
class Checkpoint {};
} // namespace dsrt
// Built without the runtime: checkpoints cannot be read, only configs.
std::unique_ptr<CheckpointTypes>
CheckpointTypes::openIfPresent(const std::string &dir, MLIRContext *,
                               std::string &error) {
  if (hasWeights(dir))
    error = dir + ": reading safetensors needs the runtime (libdsrt)";
  return nullptr;
}
CheckpointTypes::~CheckpointTypes() = default;
std::optional<Type> CheckpointTypes::typeOf(llvm::StringRef) const {
  return std::nullopt;
}
std::vector<std::string>
CheckpointTypes::validate(const std::vector<RequiredWeight> &) const {
  return {};
}
#endif
