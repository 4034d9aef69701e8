//===- Artifact.h - the ds artifact: manifest + native code -----*- C++ -*-===//
//
// One versioned file per compiled model (the runtime's reader is
// runtime/src/artifact/; both follow this layout, little endian):
//
//   0   "DSARTIFA"            magic
//   8   u32 format_version    kArtifactFormatVersion
//   12  u32 flags             0
//   16  u64 manifest_size
//   24  u64 object_size
//   32  u64 checksum          FNV-1a 64 over manifest then object bytes
//   40  manifest (JSON), then the object (ELF shared object)
//
//===----------------------------------------------------------------------===//
#ifndef DS_TARGET_ARTIFACT_H
#define DS_TARGET_ARTIFACT_H

#include "ds/Import/ImportModel.h"

#include "mlir/IR/BuiltinOps.h"

#include <map>
#include <string>
#include <vector>

namespace llvm {
class Module;
} // namespace llvm

namespace mlir::ds {

constexpr uint32_t kArtifactFormatVersion = 1;

struct ManifestInputs {
  std::string target = "cpu";
  std::string gpuArch; // cuda: the chip the device code was built for
  std::string dtype = "f32";
  /// The CPU the host code was compiled for: the build machine's name
  /// (cpu target), or a portable level such as "x86-64-v3" (cuda target,
  /// built on one machine, run on the GPU's), which the runtime checks.
  std::string hostCpu;
  std::vector<RequiredWeight> weights; // from the model-level IR
  std::vector<std::string> entryPoints; // prefill, decode, ...
  /// Multi-token prediction: @draft's hidden width and cache layers (from
  /// the model-level IR); 0 without an MTP module.
  int64_t mtpHiddenSize = 0, mtpCacheLayers = 0;
  /// FP8 latent cache: latent values per f32 scale; 0 for other dtypes.
  int64_t cacheScaleGroup = 0;
  /// @ragged_step keeps per-head K/V pages (!ds.paged_kv_cache): the
  /// elements of one token's row of one layer; 0 for the latent layout.
  int64_t stepCacheWidth = 0;
  /// @draft also returns the module's output hidden states (chained drafts).
  bool mtpDraftReturnsHidden = false;
  /// Peak activation bytes per entry point, as {per token, fixed}.
  std::map<std::string, std::pair<int64_t, int64_t>> activationBytes;
};

/// The manifest of `lowered` (entry points, weight bindings from its
/// `ds.bindings`, model facts from its `ds.*` attributes).
std::string buildManifest(ModuleOp lowered, const ManifestInputs &inputs,
                          const std::string &cacheDtype, int64_t numLayers,
                          int64_t cacheWidth, int64_t kvLoraRank,
                          int64_t ropeDim);

/// The CPU the host code of a `target` artifact is compiled for: the
/// build machine's own (cpu; per-machine, like a cubin per architecture)
/// or kPortableHostCpu (cuda: its host code only drives the GPU, and the
/// artifact is built where there is no GPU).
constexpr const char *kPortableHostCpu = "x86-64-v3";
std::string hostCpuFor(const std::string &target);

/// Translates an LLVM-dialect module to native code for `hostCpu` (the
/// build machine's features when it is the host's own name), optimises it
/// (O2) and links a shared object with ld.lld.
/// `hostIR`, when given, receives the translated module's text before
/// optimisation (ds-compile --dump-ir-dir writes it as NN-host.ll).
bool emitSharedObject(ModuleOp llvmModule, const std::string &hostCpu,
                      std::string &object, std::string &error,
                      std::string *hostIR = nullptr);

/// Gives every launch site of generated GPU host code (each call of
/// mgpuModuleGetFunction) a global that keeps the function after its first
/// launch (lib/Target/KernelFunctionCache.cpp); returns the sites.
unsigned cacheKernelFunctions(llvm::Module &module);

/// Writes the artifact atomically (temporary file + rename).
bool writeArtifact(const std::string &path, const std::string &manifest,
                   const std::string &object, std::string &error);

} // namespace mlir::ds

#endif // DS_TARGET_ARTIFACT_H
