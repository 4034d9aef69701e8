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
           "(dsrt_trace_routing), for parity tests">,
    Option<"attentionChunk", "attention-chunk", "int64_t", /*default=*/"256",
           "context rows whose per-head K/V the naive attention form builds "
           "at a time (chunks merged by log-sum-exp, so its memory does "
           "not grow with the context)">,
    Option<"gemmEpilogue", "gemm-epilogue", "bool", /*default=*/"true",
           "lower ds.linear_silu_mul to the runtime's fused GEMM + SiLU-mul "
           "(dsrt_linear_silu_mul_f32); off: a GEMM into a [T, 2F] buffer, "
           "then a SiLU-mul kernel">
  ];
  let dependentDialects = ["::mlir::scf::SCFDialect", "::mlir::memref::MemRefDialect",
                           "::mlir::arith::ArithDialect", "::mlir::math::MathDialect",
                           "::mlir::func::FuncDialect", "::mlir::LLVM::LLVMDialect"];
}

def DSPlanActivationsPass : Pass<"ds-plan-activations", "::mlir::ModuleOp"> {
  let summary = "one scratch buffer per entry point, activations as views";
  let description = [{
    After convert-ds-to-loops. Each entry point's activation buffers become
    views into one buffer from the runtime (`dsrt_scratch(ctx, bytes)`: per
    thread on the CPU, the session's arena on the GPU, grown once), so a
    decode step allocates nothing. Buffer sizes are a*T + b bytes for the
    call's token count T; buffers with disjoint lifetimes (definition to
    last use, views included) share a slot as large as the largest of them
    (for every T); slots are 64-byte aligned. The plan's total is recorded
    as `ds.activation_bytes = [a, b]` on the entry point (ds-compile reports
    it and writes it to the manifest). An entry point whose sizes are not
    affine in T keeps its allocations (`ds.activation_bytes = "unplanned"`).
  }];
  let dependentDialects = ["::mlir::memref::MemRefDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::func::FuncDialect"];
}

def DSParallelizeKernelsPass : Pass<"ds-parallelize-kernels", "::mlir::ModuleOp"> {
  let summary = "the heavy CPU kernels split over the runtime's thread pool";
  let description = [{
    CPU path, before the LLVM lowering. A `latent_attention` or
    `head_matmul` kernel whose body is one scf.parallel gets a range
    variant (`K__range`: linear iterations [begin, end)) and a C-ABI task
    (`K__task(packed, begin, end)`); the kernel itself packs its arguments
    (memref descriptors, indices) on the stack and calls
    `dsrt_parallel_for(task, packed, iterations, grain)`, which splits the
    iterations over the runtime's threads. Attention splits per (token,
    head) with grain 1 (each reads the whole context); per-head matmuls
    with grain 64.
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect", "::mlir::scf::SCFDialect",
                           "::mlir::arith::ArithDialect", "::mlir::func::FuncDialect"];
}

def DSTestPermuteParallelLoopsPass
    : Pass<"ds-test-permute-parallel-loops", "::mlir::ModuleOp"> {
  let summary = "test only: run scf.parallel iterations in another order";
  let description = [{
    The CPU runs a kernel's parallel iterations in order; the GPU runs them
    at once. A kernel whose result depends on that order (an iteration
    reading what another writes) is a race on the GPU that the CPU parity
    suite cannot see. This pass renumbers every scf.parallel's iterations
    (each dimension independently) so they run in `reverse` order or
    `rotate`d by half the trip count; the parity suite run on artifacts
    compiled with `ds-compile --test-parallel-order=...` then fails on
    such a kernel. A walk, not a pattern: each loop is renumbered exactly
    once (a pattern would match its own output again).
  }];
  let options = [
    Option<"order", "order", "std::string", "\"reverse\"",
           "reverse | rotate">,
  ];
  let dependentDialects = ["::mlir::arith::ArithDialect"];
}

def DSMapKernelsToGPUPass : Pass<"ds-map-kernels-to-gpu", "::mlir::ModuleOp"> {
  let summary = "run the loop nests of convert-ds-to-loops as GPU launches";
  let description = [{
    The CUDA path's mapping step, after convert-ds-to-loops. In every kernel
    function (`ds.kernel`) each top-level `scf.parallel` becomes a
    `gpu.launch`: its iteration space is linearised over blocks of
    `block-size` threads (one iteration per thread, a bounds check in the
    last block, no launch for an empty space). Other top-level code that
    touches memory (the sequential counting sort of the MoE permutation, a
    bound read from the positions) runs as a one-thread launch; scalar
    results the host needs come back through a device buffer and
    `gpu.memcpy`. `ds.latent_attention` kernels are replaced by a split-KV
    kernel (see SplitKVAttention.cpp) when `split-kv` is on.

    Buffers are device memory: `memref.alloc`/`dealloc` outside launches
    become `gpu.alloc`/`gpu.dealloc` (the runtime serves them from a
    per-session arena, so a decode step makes no driver allocation).
    Runtime calls (GEMMs, weight bindings) stay host calls; the CUDA
    runtime gives them device pointers.
  }];
  let options = [
    Option<"blockSize", "block-size", "int64_t", /*default=*/"256",
           "threads per block of the generic mapping">,
    Option<"splitKV", "split-kv", "bool", /*default=*/"true",
           "lower decode attention with the split-KV kernel">
  ];
  let dependentDialects = ["::mlir::gpu::GPUDialect", "::mlir::scf::SCFDialect",
                           "::mlir::memref::MemRefDialect",
                           "::mlir::arith::ArithDialect",
                           "::mlir::math::MathDialect",
                           "::mlir::vector::VectorDialect"];
}

#endif // DS_CONVERSION_PASSES_TD
