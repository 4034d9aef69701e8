//===- Pipelines.h - the ds pass pipeline, stage by stage -------*- C++ -*-===//
//
// The only place where pass order is written. The pipeline is a list of
// named stages; ds-compile runs them in order, can stop after any of them
// (--emit=<stage>) and can dump the IR after each (--dump-ir-dir).
//
//===----------------------------------------------------------------------===//
#ifndef DS_PIPELINES_PIPELINES_H
#define DS_PIPELINES_PIPELINES_H

#include "mlir/Pass/PassManager.h"

#include <functional>
#include <string>
#include <vector>

namespace mlir::ds {

struct PipelineOptions {
  std::string target = "cpu"; // cpu | cuda
  bool traceRouting = false;   // see convert-ds-to-loops
  std::string mlaForm = "auto"; // see ds-absorb-mla
  bool explain = false;         // remarks with the compiler's choices
  int64_t attentionChunk = 256; // see convert-ds-to-loops
  std::string testParallelOrder; // cpu, tests: see ds-test-permute-parallel-loops
  // CUDA only.
  std::string gpuArch = "sm_90";         // ptxas chip (sm_80, sm_90, ...)
  std::string cudaPath = "/usr/local/cuda"; // ptxas, fatbinary, libdevice
  int64_t gpuBlockSize = 256;            // see ds-map-kernels-to-gpu
};

struct Stage {
  std::string name;        // the --emit value that stops here
  std::string description; // one line, for --help and docs
  std::function<void(OpPassManager &)> build;
};

/// The stages after import ("ds"), in order: absorbed, dispatched, kernels,
/// loops, then llvm (cpu) or gpu, nvvm, llvm (cuda). On cuda the llvm stage
/// ends by serialising each gpu.module to a fatbin (cubin + PTX) with the
/// toolkit's ptxas.
std::vector<Stage> getPipelineStages(const PipelineOptions &options);

/// Every stage name of `target`, "ds" first, for messages; on cuda "ptx"
/// (the device code as PTX text, printed by the driver) follows nvvm.
std::vector<std::string> getStageNames(const std::string &target = "cpu");

/// Adds the pass that turns the nvvm stage's gpu.modules into PTX
/// (format "isa") or a fatbin, for --emit=ptx and the artifact.
void addGpuBinaryPass(OpPassManager &pm, const PipelineOptions &options,
                      const std::string &format);

/// Registers `ds-cpu-pipeline` and `ds-cuda-pipeline` (all stages) with
/// ds-opt.
void registerPipelines();

} // namespace mlir::ds

#endif // DS_PIPELINES_PIPELINES_H
