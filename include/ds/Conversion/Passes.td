//===- Passes.td - ds conversions ------------------------------*- tablegen -*-===//
#ifndef DS_CONVERSION_PASSES_TD
#define DS_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def ConvertDSToLoopsPass : Pass<"convert-ds-to-loops", "::mlir::ModuleOp"> {
  let summary = "lower kernel-level ds ops to loops over buffers + runtime calls";
  let description = [{
    Every tensor of an entry point becomes a buffer (memref.alloc, freed at
    the end); each kernel op becomes scf.parallel / scf.for nests over those
    buffers (the same loop nests the GPU path maps to threads). GEMMs
    (ds.linear) and weight bindings (ds.weight, ds.stacked_weight,
    ds.dequantize) become calls into the runtime (`dsrt_linear_f32`,
    `dsrt_weight_f32_rN`). Entry points take a runtime context pointer first
    and write their logits into a caller-provided buffer (destination
    passing); the latent cache is updated in place.
  }];
  let options = [
    Option<"traceRouting", "trace-routing", "bool", /*default=*/"false",
           "report each MoE layer's expert choice to the runtime "
           "(dsrt_trace_routing), for parity tests">
  ];
  let dependentDialects = ["::mlir::scf::SCFDialect", "::mlir::memref::MemRefDialect",
                           "::mlir::arith::ArithDialect", "::mlir::math::MathDialect",
                           "::mlir::func::FuncDialect", "::mlir::LLVM::LLVMDialect"];
}

#endif // DS_CONVERSION_PASSES_TD
