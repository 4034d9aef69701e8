//===- Pipelines.cpp - the ds pass pipeline, stage by stage ---------------===//
#include "ds/Pipelines/Pipelines.h"
#include "ds/Conversion/Passes.h"
#include "ds/Transforms/Passes.h"

#include "mlir/Conversion/ArithToLLVM/ArithToLLVM.h"
#include "mlir/Conversion/ControlFlowToLLVM/ControlFlowToLLVM.h"
#include "mlir/Conversion/FuncToLLVM/ConvertFuncToLLVMPass.h"
#include "mlir/Conversion/IndexToLLVM/IndexToLLVM.h"
#include "mlir/Conversion/MathToLLVM/MathToLLVM.h"
#include "mlir/Conversion/MemRefToLLVM/MemRefToLLVM.h"
#include "mlir/Conversion/ReconcileUnrealizedCasts/ReconcileUnrealizedCasts.h"
#include "mlir/Conversion/SCFToControlFlow/SCFToControlFlow.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::ds;

std::vector<Stage> mlir::ds::getPipelineStages(const PipelineOptions &opts) {
  return {
      {"absorbed", "MLA rewritten: attention over the latent cache (absorbed) "
                   "or with per-head K/V inside the kernel (naive), by cost",
       [opts](OpPassManager &pm) {
         DSAbsorbMLAPassOptions absorb;
         absorb.form = opts.mlaForm;
         absorb.explain = opts.explain;
         pm.addNestedPass<func::FuncOp>(createDSAbsorbMLAPass(absorb));
       }},
      {"dispatched", "MoE as route -> permute -> grouped matmul -> combine",
       [](OpPassManager &pm) {
         pm.addNestedPass<func::FuncOp>(createDSDispatchExpertsPass());
       }},
      {"kernels", "kernel-level ds ops only (dense blocks decomposed, "
                  "residual adds fused with the next RMSNorm, gate|up packed)",
       [](OpPassManager &pm) {
         pm.addNestedPass<func::FuncOp>(createDSDecomposeDensePass());
         pm.addNestedPass<func::FuncOp>(createDSFuseResidualNormPass());
         pm.addNestedPass<func::FuncOp>(createDSFuseGateUpPass());
         pm.addPass(createCSEPass());
       }},
      {"loops", "loop nests over buffers, GEMMs and weights as runtime calls",
       [opts](OpPassManager &pm) {
         ConvertDSToLoopsPassOptions loops;
         loops.traceRouting = opts.traceRouting;
         pm.addPass(createConvertDSToLoopsPass(loops));
         pm.addPass(createCanonicalizerPass());
         pm.addPass(createCSEPass());
       }},
      {"llvm", "the LLVM dialect, ready for translation",
       [](OpPassManager &pm) {
         pm.addPass(createSCFToControlFlowPass());
         pm.addPass(memref::createExpandStridedMetadataPass());
         pm.addPass(createFinalizeMemRefToLLVMConversionPass());
         pm.addPass(createConvertMathToLLVMPass());
         pm.addPass(createArithToLLVMConversionPass());
         pm.addPass(createConvertIndexToLLVMPass());
         pm.addPass(createConvertFuncToLLVMPass());
         pm.addPass(createConvertControlFlowToLLVMPass());
         pm.addPass(createReconcileUnrealizedCastsPass());
       }},
  };
}

std::vector<std::string> mlir::ds::getStageNames() {
  std::vector<std::string> names{"ds"};
  for (const Stage &s : getPipelineStages({}))
    names.push_back(s.name);
  return names;
}

void mlir::ds::registerPipelines() {
  PassPipelineRegistration<>(
      "ds-cpu-pipeline", "every ds stage from the model level to LLVM (CPU)",
      [](OpPassManager &pm) {
        for (const Stage &s : getPipelineStages({}))
          s.build(pm);
      });
}
