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
#include "mlir/Pass/PassOptions.h"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace mlir::ds {

/// What an artifact runs on. Parsed once from the user's string
/// (parseTarget); everything after compares the enum.
enum class Target { CPU, CUDA };

/// "cpu" | "cuda"; nullopt for anything else.
std::optional<Target> parseTarget(llvm::StringRef name);
/// The name the manifest and the options use.
llvm::StringRef targetName(Target target);

struct PipelineOptions {
  Target target = Target::CPU;
  bool traceRouting = false;   // see convert-ds-to-loops
  std::string mlaForm = "auto"; // see ds-absorb-mla
  bool explain = false;         // remarks with the compiler's choices
  int64_t attentionChunk = 256; // see convert-ds-to-loops
  int64_t naiveMinTokens = -1;  // see ds-absorb-mla naive-min-tokens
  std::string testParallelOrder; // cpu, tests: see ds-test-permute-parallel-loops
  int64_t tp = 1, ep = 1;        // see ds-shard-model (1, 1: one rank)
  bool dpAttention = false;      // see ds-shard-model
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
/// toolkit's ptxas. Built from three parts, as upstream's GPU-to-NVVM
/// pipeline is: the common stages (both targets, up to loops), the device
/// stages (cuda: gpu, nvvm) and the host lowering (buildHostLowering).
std::vector<Stage> getPipelineStages(const PipelineOptions &options);

/// The host code to the LLVM dialect, the same passes for both targets
/// (cuda adds the gpu-to-llvm lowering of launches and device buffers).
void buildHostLowering(OpPassManager &pm, Target target);

/// Every stage name of `target`, "ds" first, for messages; on cuda "ptx"
/// (the device code as PTX text, printed by the driver) follows nvvm.
/// With `parallel`, the stages of a --tp/--ep compile (sharded, partitioned).
std::vector<std::string> getStageNames(Target target = Target::CPU,
                                       bool parallel = false);

/// The options of `ds-cpu-pipeline` / `ds-cuda-pipeline` in ds-opt, e.g.
///   ds-opt --ds-cuda-pipeline='gpu-arch=sm_80 cuda-path=/opt/cuda' x.mlir
struct PipelineCLOptions : public PassPipelineOptions<PipelineCLOptions> {
  Option<std::string> mlaForm{*this, "mla-form",
                              llvm::cl::desc("auto | absorbed | naive"),
                              llvm::cl::init("auto")};
  Option<bool> traceRouting{*this, "trace-routing",
                            llvm::cl::desc("report each MoE layer's experts"),
                            llvm::cl::init(false)};
  Option<int64_t> attentionChunk{
      *this, "attention-chunk",
      llvm::cl::desc("context rows per K/V chunk of the naive MLA form"),
      llvm::cl::init(256)};
  Option<int64_t> naiveMinTokens{
      *this, "mla-naive-min-tokens",
      llvm::cl::desc("ragged step: naive MLA form for sequences with at "
                     "least this many new tokens (-1: cost model)"),
      llvm::cl::init(-1)};
  Option<std::string> gpuArch{*this, "gpu-arch",
                              llvm::cl::desc("cuda: ptxas chip (sm_80, sm_90)"),
                              llvm::cl::init("sm_90")};
  Option<std::string> cudaPath{
      *this, "cuda-path",
      llvm::cl::desc("cuda: toolkit with ptxas, fatbinary and libdevice"),
      llvm::cl::init("/usr/local/cuda")};
  Option<int64_t> tp{*this, "tp", llvm::cl::desc("tensor-parallel ranks"),
                     llvm::cl::init(1)};
  Option<int64_t> ep{*this, "ep", llvm::cl::desc("expert-parallel ranks"),
                     llvm::cl::init(1)};
  Option<bool> dpAttention{
      *this, "dp-attention",
      llvm::cl::desc("data-parallel attention with --ep (ds-shard-model)"),
      llvm::cl::init(false)};
  Option<int64_t> gpuBlockSize{
      *this, "block-size",
      llvm::cl::desc("cuda: threads per block of the generic mapping"),
      llvm::cl::init(256)};

  PipelineOptions toOptions(Target target) const;
};

/// Adds the pass that turns the nvvm stage's gpu.modules into PTX
/// (format "isa") or a fatbin, for --emit=ptx and the artifact.
void addGpuBinaryPass(OpPassManager &pm, const PipelineOptions &options,
                      const std::string &format);

/// Registers `ds-cpu-pipeline` and `ds-cuda-pipeline` (all stages, with
/// PipelineCLOptions) with ds-opt.
void registerPipelines();

} // namespace mlir::ds

#endif // DS_PIPELINES_PIPELINES_H
