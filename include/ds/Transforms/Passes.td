//===- Passes.td - ds transformations --------------------------*- tablegen -*-===//
#ifndef DS_TRANSFORMS_PASSES_TD
#define DS_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

// Every rewrite below is a set of patterns (include/ds/Transforms/Patterns.h,
// populate<Name>Patterns) that the pass applies with the greedy driver,
// folding and constant hoisting off (patternsOnlyConfig) so a stage's IR is
// what its patterns build. The passes at the end (ds-plan-activations,
// ds-parallelize-kernels) run after convert-ds-to-loops and walk instead:
// their descriptions say why.

//===----------------------------------------------------------------------===//
// Tensor and expert parallelism (docs/SCALING.md)
//===----------------------------------------------------------------------===//

def DSShardModelPass : Pass<"ds-shard-model", "::mlir::ModuleOp"> {
  let summary = "annotate a model-level module with its parallel layout (shard dialect)";
  let description = [{
    Adds `shard.grid @ranks(shape = W)` (W = max(tp, ep)) and annotates every
    weight operand the layout splits with `shard.shard ... annotate_for_users`
    to a `shard.sharding @ranks split_axes = ...`; everything else stays
    replicated. Rules, with `tp` ranks:
      - ds.mla: heads split: q_b_proj (or q_proj) and kv_b_proj by output
        rows (`[[0]]`: whole heads, rows are head-major), o_proj by input
        columns (`[[], [0]]`); q_a/kv_a projections, norms and the latent
        cache stay whole (MLA's latent is shared by every head);
      - ds.mlp and a ds.moe's shared experts: gate and up by rows, down by
        columns;
      - a ds.moe's routed experts, with ep == 1: each expert's intermediate
        dim (gate/up `[[], [0]]`, down `[[], [], [0]]`), so routed and shared
        partial sums share one all-reduce;
      - ds.lm_head: the vocabulary rows of the head (`[[0]]`);
      - ds.embedding: the vocabulary rows of the table (`[[0]]`).
    tp and ep must each be 1 or W (both layouts over the same ranks).
    With `dp-attention` (ep = W, tp = 1) each ds.moe's input is annotated
    as split along its tokens (`[[0]]`: every rank holds its own
    sequences), and the shared experts stay whole.
  }];
  let options = [
    Option<"tp", "tp", "int64_t", /*default=*/"1", "tensor-parallel ranks">,
    Option<"ep", "ep", "int64_t", /*default=*/"1", "expert-parallel ranks">,
    Option<"dpAttention", "dp-attention", "bool", /*default=*/"false",
           "data-parallel attention: each rank runs its own sequences "
           "(attention, dense layers, shared experts whole per rank); "
           "only the routed experts are split (needs ep > 1, tp = 1)">
  ];
  let dependentDialects = ["::mlir::ds::DSDialect", "::mlir::shard::ShardDialect"];
}

def DSPartitionModelPass : Pass<"ds-partition-model", "::mlir::ModuleOp"> {
  let summary = "per-rank (SPMD) IR from ds-shard-model's annotations";
  let description = [{
    Consumes the `shard.shard` annotations of ds-shard-model: each split
    weight becomes this rank's piece (`ds.weight ... {split = array<i64:
    dim, parts>}` of the piece's type; the runtime binds piece `rank` from
    the mmapped checkpoint), each model-level op is rebuilt on its pieces
    (ds.mla with num_heads / tp heads, ds.mlp and ds.moe with
    intermediate_size / tp) and the collectives its split implies follow it:
    `shard.all_reduce` of the partial sums (attention after o_proj, MLPs,
    MoE, the vocabulary-split embedding) and `shard.all_gather` of the
    vocabulary-split logits.

    Expert parallelism (`ep`): each rank holds whole routed experts
    [rank * E/W, (rank + 1) * E/W) (the expert stack split along dim 0, the
    runtime binds that rank's expert tensors only), and the ds.moe becomes
    its dispatch form with two all-to-alls (lib/Transforms/ExpertParallel.cpp):
    each rank takes its share of the step's tokens (`shard.all_slice`;
    none under data-parallel attention, whose tokens already are the
    rank's own), routes them, sends the permuted rows to the ranks owning
    their experts (`ds.moe_dispatch`), runs its grouped matmuls on what it
    received, returns the results (`ds.moe_collect`), combines its tokens
    and gathers every rank's (`shard.all_gather`); the split shared experts
    are all-reduced beside it. convert-ds-to-loops lowers those to calls of
    the runtime's communicator (dsrt_comm), not MLIR's MPI path.

    Why not upstream `shard-partition`: it partitions ops through their
    ShardingInterface, whose splits are affine maps of loop iterators over
    tensor operands. ds's model-level ops have none: a head split of ds.mla
    is a split of an attribute (num_heads) and of interleaved per-head row
    blocks of three weights at once, its cache is not a tensor, and weights
    are ds.weight ops bound by the runtime, not function arguments. So this
    pass applies ds's own rules to the same annotations and emits the same
    upstream collectives; an annotation it has no rule for is an error that
    names the op and operand.
  }];
  let dependentDialects = ["::mlir::ds::DSDialect", "::mlir::shard::ShardDialect"];
}

def DSAbsorbMLAPass : Pass<"ds-absorb-mla", "::mlir::func::FuncOp"> {
  let summary = "rewrite ds.mla into attention over the latent cache";
  let description = [{
    SEMANTICS.md's absorbed form: W_UK is applied to the query
    (q_latent = q_nope W_UK_h, a per-head matmul against kv_b_proj) and W_UV
    to the attention output (o_h = u_h W_UV_h^T), so attention itself runs
    over the cache rows: one shared 576-wide key and a 512-wide value for
    V2/V3, no per-head K/V. The new token's latent and roped key are written
    to the cache first (ds.cache_write), then ds.latent_attention reads it.

    With `form=auto` a cost model picks per entry point between that and the
    naive form (ds.naive_attention: per-head K/V decompressed inside the
    kernel, then standard attention). FLOPs for T new tokens attending over
    S = context + T positions, per head:
      absorbed: T*(dn + dv)*dc + T*S*(2*dc + dr)
      naive:    S*(dn + dv)*dc + T*S*(dn + dr + dv)
    The naive form wins when (S - T)*(dn + dv)*dc < T*S*(2*dc - dn - dv):
    always for a prompt with nothing cached (S = T), never for decode
    (T = 1), and for a chunk continuing a long context once T exceeds about
    (dn + dv)*dc / (2*dc - dn - dv) (171 for V3). The prefill entry point
    has a dynamic token count: the model assumes `prefill-tokens` after
    `context-tokens` cached positions; decode assumes one token after
    `context-tokens`. A function of dynamic token count that is called with
    a few tokens says so with `ds.tokens_per_call` (the importer puts 1 on
    @draft, the MTP drafter), which the model assumes instead of
    `prefill-tokens`. `explain` reports each choice as a remark.

    A ragged step (ds.mla with `paged(...)`) mixes decode tokens and
    prefill chunks, so the form is chosen per sequence at run time. Per
    head, expanding a context row through kv_b_proj costs (dn + dv)*dc, as
    much as the absorbed projections of one new token; each (token, row)
    pair costs 2*dc + dr absorbed and dn + dr + dv naive. A sequence with
    T new tokens takes the naive form once T*(2*dc - dn - dv) exceeds
    (dn + dv)*dc (from 171 tokens for V2/V3), whatever its context:
    ds.paged_latent_attention gets `naive_min_tokens` and skips those
    sequences, ds.paged_naive_attention computes them. `naive-min-tokens`
    overrides the threshold (tests force either form with it).

    Patterns: populateAbsorbMLAPatterns (lib/Transforms/AbsorbMLA.cpp), applied
    greedily.
  }];
  let options = [
    Option<"form", "form", "std::string", /*default=*/"\"auto\"",
           "auto (cost model) | absorbed | naive">,
    Option<"prefillTokens", "prefill-tokens", "int64_t", /*default=*/"512",
           "prefill chunk length the cost model assumes">,
    Option<"contextTokens", "context-tokens", "int64_t", /*default=*/"1024",
           "context length a decode step is assumed to attend over">,
    Option<"explain", "explain", "bool", /*default=*/"false",
           "emit a remark with the choice and both costs">,
    Option<"naiveMinTokens", "naive-min-tokens", "int64_t", /*default=*/"-1",
           "ragged step: naive form for sequences with at least this many "
           "new tokens (-1: from form and the cost model; 0: every "
           "sequence; 2^31 or more: never)">
  ];
  let dependentDialects = ["::mlir::ds::DSDialect", "::mlir::tensor::TensorDialect",
                           "::mlir::arith::ArithDialect"];
}

def DSDispatchExpertsPass : Pass<"ds-dispatch-experts", "::mlir::func::FuncOp"> {
  let summary = "rewrite ds.moe into route -> permute -> grouped matmul -> combine";
  let description = [{
    Router logits (ds.linear) feed ds.moe_route (scores, bias, groups, top-k,
    normalisation); ds.moe_permute groups the (token, slot) pairs by expert;
    ds.grouped_matmul runs gate/up and down only over the rows each selected
    expert received; ds.moe_combine sums them with the routing weights; the
    shared experts are one dense MLP added to the result.

    Patterns: populateDispatchExpertsPatterns (lib/Transforms/DispatchExperts.cpp), applied
    greedily.
  }];
  let dependentDialects = ["::mlir::ds::DSDialect", "::mlir::arith::ArithDialect"];
}

def DSDecomposeDensePass : Pass<"ds-decompose-dense", "::mlir::func::FuncOp"> {
  let summary = "split ds.mlp, ds.lm_head and ds.mtp_project into kernel-level ops";
  let description = [{
    ds.mlp becomes two ds.linear, ds.silu_mul and ds.linear; ds.lm_head
    becomes ds.rms_norm and ds.linear; ds.mtp_project becomes two
    ds.rms_norm, ds.mtp_concat and ds.linear (the eh_proj GEMM).

    Patterns: populateDecomposeDensePatterns (lib/Transforms/DecomposeDense.cpp), applied
    greedily.
  }];
  let dependentDialects = ["::mlir::ds::DSDialect"];
}

def DSFuseResidualNormPass : Pass<"ds-fuse-residual-norm", "::mlir::func::FuncOp"> {
  let summary = "fuse a residual add with the RMSNorm that reads it";
  let description = [{
    `h = x + y; n = ds.rms_norm(h)` becomes `h, n = ds.add_rms_norm(x, y)`:
    the pattern between every attention and FFN block and before the LM
    head. `h` stays available to its other users (the next residual add).

    Patterns: populateFuseResidualNormPatterns (lib/Transforms/FuseResidualNorm.cpp), applied
    greedily.
  }];
  let dependentDialects = ["::mlir::ds::DSDialect"];
}

def DSFuseGateUpPass : Pass<"ds-fuse-gate-up", "::mlir::func::FuncOp"> {
  let summary = "run the gate and up projections of a SwiGLU MLP as one matmul";
  let description = [{
    `silu_mul(linear(x, gate), linear(x, up))` becomes
    `silu_mul_packed(linear(x, concat_weights(gate, up)))`: one GEMM over
    the stacked weight instead of two reading `x` twice (dense layers and
    shared experts).

    Patterns: populateFuseGateUpPatterns (lib/Transforms/FuseGateUp.cpp), applied
    greedily.
  }];
  let dependentDialects = ["::mlir::ds::DSDialect"];
}

def DSFuseRoutePermutePass : Pass<"ds-fuse-route-permute", "::mlir::func::FuncOp"> {
  let summary = "routing top-k and the token permutation as one kernel";
  let description = [{
    ds.moe_route followed by the ds.moe_permute of its expert ids becomes
    ds.moe_route_permute: one kernel computes scores, groups, top-k and
    weights, counts the rows per expert and gathers them. The ids stay
    available (routing traces, the combine reads the weights). Applies when
    the permutation is the only reader of the ids and every reader of the
    weights comes after it.

    Patterns: populateFuseRoutePermutePatterns (lib/Transforms/FuseRoutePermute.cpp), applied
    greedily.
  }];
  let dependentDialects = ["::mlir::ds::DSDialect"];
}

def DSGatherExpertRowsPass : Pass<"ds-gather-expert-rows", "::mlir::func::FuncOp"> {
  let summary = "the experts' products gather the tokens' rows themselves";
  let description = [{
    A ds.grouped_matmul or ds.grouped_matmul_silu_mul of the rows a
    ds.moe_route_permute permuted reads the routing's input instead,
    through its row_of_slot (`gather(row_of_slot)`); once no op reads the
    permuted rows, the routing stops writing them. A prefill then never
    writes the top_k (+ shared) copies of every token's hidden state: the
    CPU runtime gathers each expert's rows while it packs them, from the
    hidden state, which stays in cache. The GPU keeps the permuted rows
    (its grouped GEMMs are cuBLAS calls over contiguous rows); expert
    parallelism's ds.moe_permute feeds an exchange and is not touched.

    Patterns: populateGatherExpertRowsPatterns
    (lib/Transforms/GatherExpertRows.cpp), applied greedily.
  }];
  let dependentDialects = ["::mlir::ds::DSDialect"];
}

def DSFuseSiluEpiloguePass : Pass<"ds-fuse-silu-epilogue", "::mlir::func::FuncOp"> {
  let summary = "the SiLU-mul of a packed gate|up projection as its GEMM's epilogue";
  let description = [{
    After ds-fuse-gate-up: `ds.silu_mul_packed(ds.linear(x, [gate; up]))`
    becomes `ds.linear_silu_mul(x, [gate; up])`. On the CPU the runtime's
    GEMM computes the gate and up columns of a block and writes only
    silu(gate) * up; the GPU path (cuBLAS has no such epilogue) lowers it
    back to the GEMM and a SiLU-mul kernel.

    The routed experts likewise: `ds.silu_mul(ds.grouped_matmul(x, Wg, off),
    ds.grouped_matmul(x, Wu, off))` becomes `ds.grouped_matmul_silu_mul(x,
    Wg, Wu, off)` (one packing of each expert's rows for both products on
    the CPU; two grouped GEMMs and the kernel on the GPU).

    Patterns: populateFuseSiluEpiloguePatterns (lib/Transforms/FuseSiluEpilogue.cpp), applied
    greedily.
  }];
  let dependentDialects = ["::mlir::ds::DSDialect"];
}

def DSFoldSharedExpertsPass : Pass<"ds-fold-shared-experts", "::mlir::func::FuncOp"> {
  let summary = "shared experts run inside the grouped matmuls as always-selected experts";
  let description = [{
    After ds-fuse-route-permute. `combine(routed experts) + shared MLP(x)`
    where the shared MLP has an expert's shape (one shared expert: V3, R1)
    becomes: the shared gate, up and down projections appended to the
    routed stacks as expert number num_experts (ds.concat_weights), the
    routing given `shared_experts = 1` (every token also goes to that
    expert with weight 1, not scaled by routed_scaling_factor, as
    SEMANTICS.md has it), and the combine summing it with the routed
    experts. Shared MLPs wider than one expert (V2, V2-Lite: two shared
    experts in one [2F, D] projection) are left as they are.

    Patterns: populateFoldSharedExpertsPatterns (lib/Transforms/FoldSharedExperts.cpp), applied
    greedily.
  }];
  let dependentDialects = ["::mlir::ds::DSDialect"];
}

//===----------------------------------------------------------------------===//
// After convert-ds-to-loops: buffers and loop nests
//===----------------------------------------------------------------------===//

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

    A walk, not patterns: the plan is a whole-function decision (lifetimes
    of every buffer, slots shared between them), which no local rewrite
    can make. lib/Transforms/PlanActivations.cpp.
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
    with grain 64. Row-wise kernels (rope, SiLU-mul, residual adds, slices,
    row gathers, cache writes, argmax) split by their outermost dimension
    (tokens) only, the inner dimensions staying loops for the vectoriser,
    with a grain of about 4096 elements' worth of rows (an f64 math call,
    rope's sin/cos through libm, counting as 64 elements, an f32 one as 4):
    a prefill's rows go to both cores, a decode step's one token stays on
    the caller.

    A walk, not patterns: each kernel is rewritten once by adding two
    functions to the module (range variant, task) beside it; a pattern
    rooted at the kernel would insert siblings of the op the driver is
    visiting and would compose with nothing. It runs on the CPU path only.
    lib/Transforms/ParallelizeKernels.cpp.
  }];
  let dependentDialects = ["::mlir::LLVM::LLVMDialect", "::mlir::scf::SCFDialect",
                           "::mlir::arith::ArithDialect", "::mlir::func::FuncDialect"];
}

def DSApproximateExpPass : Pass<"ds-approximate-exp", "::mlir::ModuleOp"> {
  let summary = "f32 math.exp as an inline polynomial, so loops using it vectorise (CPU)";
  let description = [{
    CPU path, before the LLVM lowering. math.exp lowers to llvm.exp, which
    the backend turns into a scalar libm `expf` call per element: the loop
    around it (SiLU-mul, sigmoid routing, softmax) cannot be vectorised.
    This pass rewrites every f32 math.exp with MLIR's polynomial
    approximation (populateMathPolynomialApproximationPatterns restricted to
    math.exp: range reduction by ln 2, the polynomial as explicit math.fma,
    the exponent built with integer ops; the argument is clamped to
    [-87.8, 88.8], so exp(0) = 1 exactly, exp(-inf) and arguments below
    about -87.7 give 0 (no subnormals), +inf gives +inf, and a NaN stays
    NaN through the polynomial). Its FMAs are explicit, so a vector lane and a
    scalar remainder give the same bits. The GPU path keeps its own exp
    (libdevice). Patterns: populateApproximateExpPatterns
    (lib/Transforms/ApproximateExp.cpp), applied greedily.
  }];
  let dependentDialects = ["::mlir::math::MathDialect",
                           "::mlir::arith::ArithDialect"];
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

#endif // DS_TRANSFORMS_PASSES_TD
