//===- Passes.td - ds conversions ------------------------------*- tablegen -*-===//
#ifndef DS_CONVERSION_PASSES_TD
#define DS_CONVERSION_PASSES_TD

include "mlir/Pass/PassBase.td"

def ConvertDSToLoopsPass : Pass<"convert-ds-to-loops", "::mlir::ModuleOp"> {
  let summary = "lower kernel-level ds ops to loops over buffers + runtime calls";
  let description = [{
    A dialect conversion (lib/Conversion/DSToLoops/). Target: every ds
    kernel op illegal, and any other op still holding a tensor or a latent
    cache; scalar glue (index arithmetic) stays. The type converter maps
    tensors to memrefs (floats as f32, the kernels' precision) and
    `!ds.latent_cache` to `memref<layers x ? x width x elem>`. Patterns, one
    per op, by family: ElementwisePatterns.cpp (embedding, adds, SiLU-mul,
    RMSNorm, slices, reshapes), AttentionPatterns.cpp (rope, cache write,
    per-head matmul, latent and naive attention), MoEPatterns.cpp (routing,
    permutation, combine), GemmPatterns.cpp (GEMMs and weight bindings);
    DSToLoops.cpp holds the target, the entry-point and return patterns. The
    loop nests themselves are built by KernelEmitter (KernelEmitter.cpp for
    the helpers, then ElementwiseKernels.cpp, RMSNormKernel.cpp,
    AttentionKernels.cpp, MoEKernels.cpp, ArgmaxKernel.cpp,
    GemmAndWeightCalls.cpp). An op no pattern lowers is a legalization
    failure naming it; model-level ops (ds.mla, ds.moe, ds.mlp, ds.lm_head)
    are refused first with the passes that remove them.

    Each kernel result gets its own buffer (memref.alloc, freed at the
    return) and each kernel op becomes scf.parallel / scf.for nests over
    those buffers (the same loop nests the GPU path maps to threads); the
    cache is updated in place. Buffers are assigned by the patterns, not by
    One-Shot Bufferize: the cache is not a tensor, no ds op writes into an
    operand tensor, so every result needs a fresh buffer either way, and
    ds-plan-activations packs them into one scratch buffer afterwards (the
    README's "Memory" section has the measurement). GEMMs (ds.linear,
    ds.linear_silu_mul, ds.grouped_matmul) and weight bindings (ds.weight,
    ds.stacked_weight, ds.dequantize, ds.concat_weights) become calls into
    the runtime (`dsrt_linear_f32`, `dsrt_weight_f32_rN`); a weight is bound
    where it is first used. Entry points take a runtime context pointer
    first and write their logits into a caller-provided buffer (destination
    passing). A `@sample_greedy` entry (argmax per row) is added beside
    `@decode`.
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
           "then a SiLU-mul kernel">,
    Option<"headMatmulRows", "head-matmul-rows", "bool", /*default=*/"false",
           "lower an untransposed ds.head_matmul (q_nope through W_UK) "
           "to a nest over (token, head) that accumulates whole weight "
           "rows (kind head_matmul_rows): contiguous, vectorisable reads "
           "for the CPU; off: one strided dot product per output (many "
           "independent iterations, for the GPU)">,
    Option<"headMatmulCalls", "head-matmul-calls", "bool", /*default=*/"false",
           "lower ds.head_matmul to a runtime call (dsrt_head_matmul_f32) "
           "and expand ds.naive_attention's context chunks through the "
           "runtime's GEMM (dsrt_linear_exact_f32) and attend over each "
           "chunk through the runtime (dsrt_naive_attend_f32: GEMM tiles "
           "and a vector exp per ISA): no generated code reads the "
           "weight (kv_b_proj), so the CPU runtime reads it in place in its "
           "stored format (bf16, FP8) instead of an f32 copy; off: loop "
           "nests over an f32 weight (the GPU's device copy). Takes "
           "precedence over head-matmul-rows">,
    Option<"cacheDecodeCalls", "cache-decode-calls", "bool", /*default=*/"false",
           "latent attention over an FP8 cache decodes each row it reads "
           "once into f32 scratch through the runtime "
           "(dsrt_cache_decode_fp8, vectorised per ISA), then runs its dot "
           "products over f32: for the CPU; off: a table lookup per value "
           "(what the GPU's own kernel replaces)">,
    Option<"latentAttentionCalls", "latent-attention-calls", "bool",
           /*default=*/"false",
           "lower ds.latent_attention and ds.paged_latent_attention to a "
           "runtime call (dsrt_latent_attention_f32 / _bf16 / _fp8 and the "
           "paged ones: the context rows split into fixed blocks over the "
           "thread pool, a bf16 or FP8 block decoded once for every head, "
           "every head's scores and weighted sums per block as register "
           "tiles, a vector exp): for the CPU; off: the generated "
           "online-softmax nest (the GPU keeps it)">,
    Option<"attentionHeadGroup", "attention-head-group", "int64_t",
           /*default=*/"1",
           "heads per iteration of the absorbed latent attention kernel: "
           "each cache row is read (and, with cache-decode-calls, decoded) "
           "once for all heads of a group instead of once per head; 1: one "
           "(token, head) per iteration (the GPU's form); 0: the largest "
           "divisor of the head count up to min(8, heads / 2), so a decode "
           "step still has two iterations for two threads (the CPU)">,
    Option<"moeRowLoops", "moe-row-loops", "bool", /*default=*/"false",
           "move (ds.moe_permute, ds.moe_route_permute) and combine "
           "(ds.moe_combine) MoE rows as a parallel loop over rows, each "
           "row's slot index and weight read once, columns an inner loop: "
           "LLVM vectorises the columns, which it cannot while those loads "
           "sit in the column loop (it cannot tell they do not alias the "
           "stores): for the CPU; off: one parallel iteration per element "
           "(the GPU's threads)">,
    Option<"runtimeEmbedding", "runtime-embedding", "bool", /*default=*/"false",
           "gather embedding rows through the runtime "
           "(dsrt_embedding_f32), which reads the table in place in its "
           "stored format (no f32 copy of a bf16 or FP8 table); off: a "
           "loop nest over an f32 table">
  ];
  let dependentDialects = ["::mlir::scf::SCFDialect", "::mlir::memref::MemRefDialect",
                           "::mlir::arith::ArithDialect", "::mlir::math::MathDialect",
                           "::mlir::func::FuncDialect", "::mlir::LLVM::LLVMDialect",
                           "::mlir::vector::VectorDialect"];
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
    kernel (see SplitKVAttention.cpp) when `split-kv` is on; MoE routing
    (`moe_route`, `moe_route_permute` kernels) runs one block per token with
    warp-shuffle top-k (RoutingKernel.cpp).

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

def DSTestCacheCodecPass : Pass<"ds-test-cache-codec", "::mlir::ModuleOp"> {
  let summary = "test only: expand calls to the FP8 cache codec";
  let description = [{
    Replaces calls to `@ds_test_encode_e4m3(f32) -> i8`,
    `@ds_test_decode_e4m3(i8) -> f32`,
    `@ds_test_decode_e4m3_v8(vector<8xi8>) -> vector<8xf32>` and
    `@ds_test_bf16_bits(f32) -> i32` (the rope's integer rounding) by the
    arithmetic of include/ds/Conversion/CacheCodec.h, so a test program
    run with mlir-runner checks the encoder (rounding, subnormals,
    saturation) and the scalar and vector decoders on every code against
    a reference, which the model-level parity tests reach only for the
    values random latents happen to take. A walk over the calls.
  }];
  let dependentDialects = ["::mlir::arith::ArithDialect"];
}

#endif // DS_CONVERSION_PASSES_TD
