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
};

struct Stage {
  std::string name;        // the --emit value that stops here
  std::string description; // one line, for --help and docs
  std::function<void(OpPassManager &)> build;
};

/// The stages after import ("ds"), in order:
/// absorbed, dispatched, kernels, loops, llvm.
std::vector<Stage> getPipelineStages(const PipelineOptions &options);

/// Every stage name, "ds" first, for messages.
std::vector<std::string> getStageNames();

/// Registers `ds-cpu-pipeline` (all stages) with ds-opt.
void registerPipelines();

} // namespace mlir::ds

#endif // DS_PIPELINES_PIPELINES_H
