//===- Driver.h - checkpoint | .mlir -> IR stages -> artifact ---*- C++ -*-===//
//
// What ds-compile and the Python package share: import (or parse), run the
// pipeline stage by stage, stop at a stage or write an artifact. Errors are
// returned as lines, never printed or exited on, so callers choose.
//
//===----------------------------------------------------------------------===//
#ifndef DS_DRIVER_DRIVER_H
#define DS_DRIVER_DRIVER_H

#include "ds/Driver/Plan.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/Timing.h"

#include <functional>
#include <string>
#include <vector>

namespace mlir::ds {

struct CompileOptions {
  std::string input;      // checkpoint dir | config.json | .mlir
  std::string output;     // artifact path (ignored when emit is set)
  std::string emit;       // stop after this stage ("" = artifact)
  std::string dtype = "f32";
  /// What @ragged_step's pages hold: "latent" (kv_lora_rank + rope per
  /// token per layer) or "per-head" (every head's K and V, the layout of
  /// a multi-head attention deployment, for comparisons).
  std::string kvLayout = "latent";
  std::string target = "cpu";
  std::string gpuArch = "sm_90";            // cuda: ptxas chip
  std::string cudaPath = "/usr/local/cuda"; // cuda: toolkit (ptxas, libdevice)
  bool checkWeights = true;
  bool traceRouting = false;
  std::string mlaForm = "auto"; // auto | absorbed | naive
  bool explain = false;   // remarks with the compiler's choices, to stderr
  int64_t attentionChunk = 256; // naive MLA: context rows per K/V chunk
  /// @ragged_step: naive MLA form for sequences with at least this many new
  /// tokens; -1: from --mla-form and the cost model.
  int64_t naiveMinTokens = -1;
  /// Test only (cpu): "", "reverse" or "rotate" (ds-test-permute-parallel-loops).
  std::string testParallelOrder;
  bool verbose = false;   // progress lines to stderr
  int64_t tp = 1, ep = 1; // tensor / expert parallel ranks (ds-shard-model)
  bool dpAttention = false; // with ep: attention data-parallel (ds-shard-model)
  /// --plan: per-rank figures of the layout (Plan.h) instead of an artifact.
  bool plan = false;
  PlanOptions planOptions;
};

struct CompileHooks {
  /// Called after import ("ds") and after each stage with the module.
  std::function<void(int index, llvm::StringRef stage, ModuleOp)> afterStage;
  /// Called with the host code as LLVM IR (translated, launch sites'
  /// function caches added, not yet optimised), numbered after the stages.
  std::function<void(int index, llvm::StringRef llvmIR)> hostIR;
  /// Called on each stage's pass manager before it runs (CL options, timing).
  std::function<LogicalResult(PassManager &, llvm::StringRef stage)>
      configurePassManager;
  /// When set, each stage and the native code generation are timed under it.
  TimingScope *timing = nullptr;
};

/// Runs the compile. On success returns true and, when `options.emit` is
/// set, the stage's IR in `emitted`; otherwise the artifact is written.
/// On failure `errors` holds one line per problem (diagnostics included).
bool compile(const CompileOptions &options, const CompileHooks &hooks,
             std::vector<std::string> &errors, std::string *emitted);

/// Registers everything a compile needs in `context`'s registry.
void prepareContext(MLIRContext &context);

std::string printModule(ModuleOp module);

} // namespace mlir::ds

#endif // DS_DRIVER_DRIVER_H
