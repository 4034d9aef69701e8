//===- DSKernelOps.td - ds kernel-level operations -------------*- tablegen -*-===//
//
// What ds-absorb-mla and ds-dispatch-experts rewrite the model-level ops
// into: each op is one kernel with tensor semantics. The conversions lower
// them to loops (CPU) or thread mappings (GPU) from this one description;
// nothing here knows it is running DeepSeek.
//
//===----------------------------------------------------------------------===//
#ifndef DS_KERNEL_OPS_TD
#define DS_KERNEL_OPS_TD

include "ds/DSBase.td"
include "ds/DSAttrs.td"
include "ds/DSTypes.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def DS_RopeOp : DS_Op<"rope", [Pure, AllTypesMatch<["input", "result"]>]> {
  let summary = "rotary embedding of interleaved pairs, with YaRN frequencies";
  let description = [{
    Rotates pairs (x[2i], x[2i+1]) of the last dimension of `input`
    ([tokens, heads, rope_dim] or [tokens, rope_dim]) by `position * f_i`,
    with f_i from `rope_theta` and the YaRN correction of `config`.

    ```mlir
    %r = ds.rope %x, %pos {config = #ds.mla_config<...>} : tensor<?x2x4xf32>, tensor<?xi32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$input, 1DTensorOf<[I32]>:$positions,
                       DS_MLAConfigAttr:$config);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = "$input `,` $positions attr-dict `:` type($input) `,` type($positions)";
  let hasVerifier = 1;
}

def DS_CacheWriteOp : DS_Op<"cache_write", [Pure,
    AllTypesMatch<["cache", "result"]>]> {
  let summary = "store latents and rope keys of new tokens into the cache";
  let description = [{
    Row `positions[t]` of layer `layer` receives `concat(latent[t], rope_key[t])`.

    ```mlir
    %c1 = ds.cache_write %c0, %lat, %kpe, %pos {layer = 0 : i64}
        : !ds.latent_cache<...>, tensor<?x16xf32>, tensor<?x4xf32>, tensor<?xi32>
    ```
  }];
  let arguments = (ins DS_LatentCacheType:$cache, RankedTensorOf<[F32]>:$latent,
                       RankedTensorOf<[F32]>:$rope_key, 1DTensorOf<[I32]>:$positions,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$layer);
  let results = (outs DS_LatentCacheType:$result);
  let assemblyFormat = [{
    $cache `,` $latent `,` $rope_key `,` $positions attr-dict `:` qualified(type($cache))
    `,` type($latent) `,` type($rope_key) `,` type($positions)
  }];
  let hasVerifier = 1;
}

def DS_LatentAttentionOp : DS_Op<"latent_attention", [Pure]> {
  let summary = "multi-query attention over the latent cache (absorbed MLA)";
  let description = [{
    For token t and head h, with c/k_pe the cache rows of `layer`:
    `score(s) = scale * (q_latent[t,h] . c(s) + q_rope[t,h] . k_pe(s))` for
    s <= positions[t]; `result[t,h] = softmax_s(score) . c(s)`, a vector of
    kv_lora_rank values. The key is the whole 576-wide cache row and the
    value its first kv_lora_rank values: no per-head K/V is ever built.

    ```mlir
    %u = ds.latent_attention %ql, %qr, %cache, %pos {layer = 0 : i64, scale = 0.3 : f64}
        : tensor<?x2x16xf32>, tensor<?x2x4xf32>, !ds.latent_cache<...>, tensor<?xi32> -> tensor<?x2x16xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$q_latent, RankedTensorOf<[F32]>:$q_rope,
                       DS_LatentCacheType:$cache, 1DTensorOf<[I32]>:$positions,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$layer, F64Attr:$scale);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = [{
    $q_latent `,` $q_rope `,` $cache `,` $positions attr-dict `:` type($q_latent) `,`
    type($q_rope) `,` qualified(type($cache)) `,` type($positions) `->` type($result)
  }];
  let hasVerifier = 1;
}

def DS_NaiveAttentionOp : DS_Op<"naive_attention", [Pure]> {
  let summary = "MLA attention with per-head keys and values built in the kernel";
  let description = [{
    SEMANTICS.md's naive form: for the cache rows 0..max(positions) of
    `layer`, the kernel decompresses k_nope_h = c W_UK_h^T and v_h = c W_UV_h^T
    (W_UK_h / W_UV_h are head h's rows of `kv_b_proj`, [nope | v] per head)
    into transient buffers, then token t and head h attend over rows
    s <= positions[t] with score = scale * (q_nope . k_nope_h(s) + q_rope . k_pe(s)).
    The result is o_h [tokens, heads, v_head_dim]. Cheaper than the absorbed
    form when many tokens share the decompression (long prefill chunks);
    the per-head K/V never outlive the kernel.

    ```mlir
    %o = ds.naive_attention %qn, %qr, %cache, %pos, %kvb {layer = 0 : i64, scale = 0.3 : f64}
        : tensor<?x2x8xf32>, tensor<?x2x4xf32>, !ds.latent_cache<...>, tensor<?xi32>,
          tensor<32x16xf32> -> tensor<?x2x8xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$q_nope, RankedTensorOf<[F32]>:$q_rope,
                       DS_LatentCacheType:$cache, 1DTensorOf<[I32]>:$positions,
                       DS_WeightTensor:$kv_b_proj,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$layer, F64Attr:$scale);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = [{
    $q_nope `,` $q_rope `,` $cache `,` $positions `,` $kv_b_proj attr-dict `:`
    type($q_nope) `,` type($q_rope) `,` qualified(type($cache)) `,` type($positions)
    `,` type($kv_b_proj) `->` type($result)
  }];
  let hasVerifier = 1;
}

def DS_PagedCacheWriteOp : DS_Op<"paged_cache_write", [Pure,
    AllTypesMatch<["cache", "result"]>]> {
  let summary = "store new tokens' latents and rope keys into their pages";
  let description = [{
    ds.cache_write for a ragged batch over a paged cache: token t belongs to
    the sequence s with query_start[s] <= t < query_start[s + 1], and its
    row (s, positions[t]) of layer `layer` is slot positions[t] % page_size
    of page block_tables[s, positions[t] / page_size].

    ```mlir
    %c1 = ds.paged_cache_write %c0, %lat, %kpe, %pos, %qs, %bt {layer = 0 : i64}
        : !ds.paged_latent_cache<...>, tensor<?x16xf32>, tensor<?x4xf32>,
          tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>
    ```
  }];
  let arguments = (ins DS_PagedLatentCacheType:$cache,
                       RankedTensorOf<[F32]>:$latent,
                       RankedTensorOf<[F32]>:$rope_key, 1DTensorOf<[I32]>:$positions,
                       1DTensorOf<[I32]>:$query_start, 2DTensorOf<[I32]>:$block_tables,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$layer);
  let results = (outs DS_PagedLatentCacheType:$result);
  let assemblyFormat = [{
    $cache `,` $latent `,` $rope_key `,` $positions `,` $query_start `,`
    $block_tables attr-dict `:` qualified(type($cache)) `,` type($latent) `,`
    type($rope_key) `,` type($positions) `,` type($query_start) `,`
    type($block_tables)
  }];
  let hasVerifier = 1;
}

def DS_PagedLatentAttentionOp : DS_Op<"paged_latent_attention", [Pure]> {
  let summary = "absorbed MLA attention of a ragged batch over a paged cache";
  let description = [{
    ds.latent_attention where token t (of sequence s, query_start[s] <= t <
    query_start[s + 1]) attends over rows 0..positions[t] of its own
    sequence, read through block_tables[s, row / page_size]. Tokens of one
    sequence are causal among themselves because each sees only rows up to
    its position: a prefill chunk, one decode token and several tokens to
    verify all run in the same call.

    With `naive_min_tokens = N` the sequences with N or more new tokens
    (query_start[s + 1] - query_start[s] >= N) are left to a
    ds.paged_naive_attention: their rows of the result are unspecified
    (the CPU runtime does not write them), since only the ds.head_matmul
    that skips the same rows reads this result.

    ```mlir
    %u = ds.paged_latent_attention %ql, %qr, %cache, %pos, %qs, %bt
        {layer = 0 : i64, scale = 0.3 : f64}
        : tensor<?x2x16xf32>, tensor<?x2x4xf32>, !ds.paged_latent_cache<...>,
          tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x2x16xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$q_latent, RankedTensorOf<[F32]>:$q_rope,
                       DS_PagedLatentCacheType:$cache, 1DTensorOf<[I32]>:$positions,
                       1DTensorOf<[I32]>:$query_start, 2DTensorOf<[I32]>:$block_tables,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$layer, F64Attr:$scale,
                       OptionalAttr<ConfinedAttr<I64Attr, [IntNonNegative]>>:$naive_min_tokens);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = [{
    $q_latent `,` $q_rope `,` $cache `,` $positions `,` $query_start `,`
    $block_tables attr-dict `:` type($q_latent) `,` type($q_rope) `,`
    qualified(type($cache)) `,` type($positions) `,` type($query_start) `,`
    type($block_tables) `->` type($result)
  }];
  let hasVerifier = 1;
}

def DS_PagedNaiveAttentionOp : DS_Op<"paged_naive_attention", [Pure,
    AllTypesMatch<["init", "result"]>]> {
  let summary = "naive MLA attention for the long segments of a ragged batch";
  let description = [{
    The per-segment form choice of a ragged step (ds-absorb-mla): sequence s
    (tokens [query_start[s], query_start[s + 1])) with at least
    `naive_min_tokens` new tokens takes SEMANTICS.md's naive form over its
    pages; the other rows of the result are those of `init` (what the
    absorbed kernels computed for the short segments). For a naive segment
    the kernel walks the context rows 0..max(positions) in chunks of whole
    pages, decompresses each chunk's latents into per-head
    k_nope_h = c W_UK_h^T and v_h = c W_UV_h^T (head h's rows of
    `kv_b_proj`, [nope | v] per head), and token t, head h attends over rows
    s <= positions[t] with score = scale * (q_nope . k_nope_h(s) +
    q_rope . k_pe(s)); the chunks' partial softmaxes merge by log-sum-exp.
    The result is o_h [tokens, heads, v_head_dim], like ds.naive_attention.
    `naive_min_tokens = 0` takes the naive form for every segment.

    ```mlir
    %o = ds.paged_naive_attention %qn, %qr, %cache, %pos, %qs, %bt, %kvb, %init
        {layer = 0 : i64, naive_min_tokens = 16 : i64, scale = 0.3 : f64}
        : tensor<?x2x8xf32>, tensor<?x2x4xf32>, !ds.paged_latent_cache<...>,
          tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>, tensor<32x16xf32>
          -> tensor<?x2x8xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$q_nope, RankedTensorOf<[F32]>:$q_rope,
                       DS_PagedLatentCacheType:$cache, 1DTensorOf<[I32]>:$positions,
                       1DTensorOf<[I32]>:$query_start, 2DTensorOf<[I32]>:$block_tables,
                       DS_WeightTensor:$kv_b_proj, RankedTensorOf<[F32]>:$init,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$layer, F64Attr:$scale,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$naive_min_tokens);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = [{
    $q_nope `,` $q_rope `,` $cache `,` $positions `,` $query_start `,`
    $block_tables `,` $kv_b_proj `,` $init attr-dict `:` type($q_nope) `,`
    type($q_rope) `,` qualified(type($cache)) `,` type($positions) `,`
    type($query_start) `,` type($block_tables) `,` type($kv_b_proj) `->`
    type($result)
  }];
  let hasVerifier = 1;
}

def DS_GatherRowsOp : DS_Op<"gather_rows", [Pure]> {
  let summary = "the rows of a [tokens, features] tensor at given indices";
  let description = [{
    `result[i] = input[rows[i]]`: a ragged step computes logits only for
    the tokens whose next token is sampled (each sequence's last), so the
    LM head reads these rows alone.

    ```mlir
    %y = ds.gather_rows %x, %rows : tensor<?x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$input, 1DTensorOf<[I32]>:$rows);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = [{
    $input `,` $rows attr-dict `:` type($input) `,` type($rows) `->` type($result)
  }];
  let hasVerifier = 1;
}

def DS_HeadMatmulOp : DS_Op<"head_matmul", [Pure]> {
  let summary = "one small matmul per head against a per-head slice of a weight";
  let description = [{
    `input` is [tokens, heads, K]. `weight` is [heads * group, C] (the
    kv_b_proj layout): head h owns rows [h*group + offset, h*group + offset + rows).
    Without `transpose`: result[t,h,c] = sum_k input[t,h,k] * W_h[k, c]
    (K == rows, result width C). With `transpose`: result[t,h,r] =
    sum_c input[t,h,c] * W_h[r, c] (K == C, result width rows).

    With `skip(query_start)` and `naive_min_tokens = N` (a ragged step, the
    tokens of sequence s being [query_start[s], query_start[s + 1])), the
    rows of the sequences with N or more new tokens, which
    ds.paged_naive_attention computes instead, are not computed: their
    values are unspecified (the CPU runtime does not write them, the loop
    form zeroes them), since the ops that read them skip the same rows or,
    for ds.paged_naive_attention's `init`, replace them. The other rows are
    as without.

    ```mlir
    %ql = ds.head_matmul %qn, %kvb {group = 16 : i64, offset = 0 : i64, rows = 8 : i64}
        : tensor<?x2x8xf32>, tensor<32x16xf32> -> tensor<?x2x16xf32>
    %qs = ds.head_matmul %qn, %kvb skip(%qstart : tensor<?xi32>)
        {group = 16 : i64, naive_min_tokens = 17 : i64, offset = 0 : i64, rows = 8 : i64}
        : tensor<?x2x8xf32>, tensor<32x16xf32> -> tensor<?x2x16xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$input, DS_WeightTensor:$weight,
                       Optional<1DTensorOf<[I32]>>:$query_start,
                       ConfinedAttr<I64Attr, [IntPositive]>:$group,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$offset,
                       ConfinedAttr<I64Attr, [IntPositive]>:$rows,
                       UnitAttr:$transpose,
                       OptionalAttr<ConfinedAttr<I64Attr, [IntNonNegative]>>:$naive_min_tokens);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = [{
    $input `,` $weight (`skip` `(` $query_start^ `:` type($query_start) `)`)?
    attr-dict `:` type($input) `,` type($weight) `->` type($result)
  }];
  let hasVerifier = 1;
}

def DS_AddRMSNormOp : DS_Op<"add_rms_norm", [Pure,
    AllTypesMatch<["lhs", "rhs", "sum", "result"]>]> {
  let summary = "residual add fused with the RMSNorm that reads it";
  let description = [{
    `sum = lhs + rhs; result = RMSNorm(sum; weight, eps)` in one pass over
    the row: the residual stream is read once instead of twice.

    ```mlir
    %h, %n = ds.add_rms_norm %x, %a, %w {eps = 1.0e-06 : f64} : tensor<?x32xf32>, tensor<32xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$lhs, RankedTensorOf<[F32]>:$rhs,
                       DS_WeightTensor:$weight, F64Attr:$eps);
  let results = (outs RankedTensorOf<[F32]>:$sum, RankedTensorOf<[F32]>:$result);
  let assemblyFormat = [{
    $lhs `,` $rhs `,` $weight attr-dict `:` type($lhs) `,` type($weight)
  }];
}

def DS_SiluMulOp : DS_Op<"silu_mul", [Pure, AllTypesMatch<["gate", "up", "result"]>]> {
  let summary = "silu(gate) * up, elementwise";
  let description = [{
    ```mlir
    %h = ds.silu_mul %g, %u : tensor<?x48xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$gate, RankedTensorOf<[F32]>:$up);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = "$gate `,` $up attr-dict `:` type($result)";
}

def DS_SiluMulPackedOp : DS_Op<"silu_mul_packed", [Pure]> {
  let summary = "silu(x[:, :F]) * x[:, F:] for a packed gate|up projection";
  let description = [{
    ```mlir
    %h = ds.silu_mul_packed %gu : tensor<?x96xf32> -> tensor<?x48xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$input);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = "$input attr-dict `:` type($input) `->` type($result)";
  let hasVerifier = 1;
}

def DS_LinearSiluMulOp : DS_Op<"linear_silu_mul", [Pure]> {
  let summary = "a packed gate|up projection with the SiLU-mul as its epilogue";
  let description = [{
    `y = silu(x W[:F]^T) * (x W[F:]^T)` for a packed [2F, D] weight
    (ds-fuse-silu-epilogue): the GEMM produces the gate and up values of a
    column block and combines them before writing, so the [T, 2F]
    intermediate never reaches memory.

    ```mlir
    %h = ds.linear_silu_mul %x, %w : tensor<?x32xf32>, tensor<96x32xf32> -> tensor<?x48xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$input, DS_WeightTensor:$weight);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = [{
    $input `,` $weight attr-dict `:` type($input) `,` type($weight) `->` type($result)
  }];
  let hasVerifier = 1;
}

def DS_MoERouteOp : DS_Op<"moe_route", [Pure]> {
  let summary = "expert selection and routing weights from router logits";
  let description = [{
    From router logits [tokens, experts]: scores (softmax or sigmoid), the
    selection score (plus `bias` for noaux_tc), group limiting, top-k, then
    weights taken from the scores and normalised/scaled by the V2 or V3 rule
    (SEMANTICS.md). Results: expert ids [tokens, top_k] and weights.

    ```mlir
    %ids, %w = ds.moe_route %logits bias(%b) {config = #ds.moe_config<...>}
        : tensor<?x8xf32> bias(tensor<8xf32>) -> tensor<?x2xi32>, tensor<?x2xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$logits,
                       Optional<RankedTensorOf<[F32, BF16, F16]>>:$bias,
                       DS_MoEConfigAttr:$config);
  let results = (outs RankedTensorOf<[I32]>:$expert_ids, RankedTensorOf<[F32]>:$weights);
  let assemblyFormat = [{
    $logits (`bias` `(` $bias^ `)`)? attr-dict `:` type($logits)
    (`bias` `(` type($bias)^ `)`)? `->` type($expert_ids) `,` type($weights)
  }];
  let hasVerifier = 1;
}

def DS_MoEPermuteOp : DS_Op<"moe_permute", [Pure]> {
  let summary = "gather token rows grouped by expert";
  let description = [{
    Orders the tokens x top_k (token, slot) pairs by expert, stably.
    `permuted` holds the input row of each pair in that order; `offsets`
    [experts + 1] delimits each expert's rows; `row_of_slot` [tokens * top_k]
    gives, for pair t*top_k + j, its row in `permuted` (used by combine).

    ```mlir
    %xp, %off, %rows = ds.moe_permute %x, %ids {num_experts = 8 : i64}
        : tensor<?x32xf32>, tensor<?x2xi32> -> tensor<?x32xf32>, tensor<9xi32>, tensor<?xi32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$input, RankedTensorOf<[I32]>:$expert_ids,
                       ConfinedAttr<I64Attr, [IntPositive]>:$num_experts);
  let results = (outs RankedTensorOf<[F32]>:$permuted, 1DTensorOf<[I32]>:$offsets,
                      1DTensorOf<[I32]>:$row_of_slot);
  let assemblyFormat = [{
    $input `,` $expert_ids attr-dict `:` type($input) `,` type($expert_ids) `->`
    type($permuted) `,` type($offsets) `,` type($row_of_slot)
  }];
  let hasVerifier = 1;
}

def DS_MoERoutePermuteOp : DS_Op<"moe_route_permute", [Pure]> {
  let summary = "routing top-k and the permutation in one kernel";
  let description = [{
    ds.moe_route followed by ds.moe_permute of `input` by the chosen
    experts (ds-fuse-route-permute): one kernel reads the router logits and
    writes the expert ids, routing weights, permuted rows, offsets and
    row_of_slot, so the ids never travel between two kernels.

    With `shared_experts = S` (ds-fold-shared-experts) every token also goes
    to experts num_experts .. num_experts + S - 1 with weight 1: the shared
    experts run inside the grouped matmuls. Ids and weights then have
    top_k + S columns and offsets num_experts + S + 1 entries.

    Without `permuted` (ds-gather-expert-rows: every grouped product of the
    rows reads them through `row_of_slot` instead) no row is moved: the
    kernel only routes and counts.

    ```mlir
    %ids, %w, %xp, %off, %rows = ds.moe_route_permute %logits, %x bias(%b)
        {config = #ds.moe_config<...>}
        : tensor<?x8xf32>, tensor<?x32xf32> bias(tensor<8xf32>)
        -> tensor<?x2xi32>, tensor<?x2xf32>, rows(tensor<?x32xf32>), tensor<9xi32>, tensor<?xi32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$logits, RankedTensorOf<[F32]>:$input,
                       Optional<RankedTensorOf<[F32, BF16, F16]>>:$bias,
                       DS_MoEConfigAttr:$config,
                       DefaultValuedAttr<I64Attr, "0">:$shared_experts);
  let results = (outs RankedTensorOf<[I32]>:$expert_ids, RankedTensorOf<[F32]>:$weights,
                      Optional<RankedTensorOf<[F32]>>:$permuted,
                      1DTensorOf<[I32]>:$offsets, 1DTensorOf<[I32]>:$row_of_slot);
  let assemblyFormat = [{
    $logits `,` $input (`bias` `(` $bias^ `)`)? attr-dict `:` type($logits) `,`
    type($input) (`bias` `(` type($bias)^ `)`)? `->` type($expert_ids) `,`
    type($weights) `,` (`rows` `(` type($permuted)^ `)` `,`)? type($offsets) `,`
    type($row_of_slot)
  }];
  let hasVerifier = 1;
}

def DS_GroupedMatmulOp : DS_Op<"grouped_matmul", [Pure]> {
  let summary = "per-expert y = x W_e^T over the rows each expert received";
  let description = [{
    Rows [offsets[e], offsets[e+1]) of `input` are multiplied by
    `weights[e]^T` ([experts, N, K], HF layout). Experts with no rows cost
    nothing: only selected experts are touched.

    Expert parallelism: when `offsets` delimit W times as many experts as
    `weights` holds, the weights are this rank's experts
    [rank * L, (rank + 1) * L) (L = weights' experts, rank = the process's
    index in the job) and every row of another rank's expert is zero, so a
    ds.moe_combine of it is this rank's partial sum.

    With `gather(row_of_slot)` (ds-gather-expert-rows) `input` holds the
    tokens' rows, not the permuted ones: row r of the product is token
    s / k's row for the slot s with row_of_slot[s] = r (k = slots per
    token = |row_of_slot| / tokens), as ds.moe_permute would have placed
    it, so the permuted copy is never written. The result has
    |row_of_slot| rows.

    ```mlir
    %y = ds.grouped_matmul %xp, %w, %off : tensor<?x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> -> tensor<?x12xf32>
    %z = ds.grouped_matmul %x, %w, %off gather(%rows) : tensor<?x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> gather(tensor<?xi32>) -> tensor<?x12xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$input, DS_WeightTensor:$weights,
                       1DTensorOf<[I32]>:$offsets,
                       Optional<1DTensorOf<[I32]>>:$row_of_slot);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = [{
    $input `,` $weights `,` $offsets (`gather` `(` $row_of_slot^ `)`)? attr-dict
    `:` type($input) `,` type($weights) `,` type($offsets)
    (`gather` `(` type($row_of_slot)^ `)`)? `->` type($result)
  }];
  let hasVerifier = 1;
}

def DS_GroupedMatmulSiluMulOp : DS_Op<"grouped_matmul_silu_mul", [Pure]> {
  let summary = "the routed experts' gate and up products with their SiLU-mul";
  let description = [{
    `silu(ds.grouped_matmul(x, gate, offsets)) * ds.grouped_matmul(x, up,
    offsets)` (ds-fuse-silu-epilogue): on the CPU one runtime call packs each
    expert's rows once for both products and writes only the product, so the
    two [T, F] intermediates never reach memory. Weights as
    ds.grouped_matmul's (expert parallelism included), gate and up of one
    shape. `gather(row_of_slot)` as ds.grouped_matmul's.

    ```mlir
    %h = ds.grouped_matmul_silu_mul %xp, %wg, %wu, %off : tensor<?x32xf32>, tensor<8x12x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> -> tensor<?x12xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$input, DS_WeightTensor:$gate,
                       DS_WeightTensor:$up, 1DTensorOf<[I32]>:$offsets,
                       Optional<1DTensorOf<[I32]>>:$row_of_slot);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = [{
    $input `,` $gate `,` $up `,` $offsets (`gather` `(` $row_of_slot^ `)`)?
    attr-dict `:` type($input) `,` type($gate) `,` type($up) `,`
    type($offsets) (`gather` `(` type($row_of_slot)^ `)`)? `->` type($result)
  }];
  let hasVerifier = 1;
}

def DS_MoECombineOp : DS_Op<"moe_combine", [Pure]> {
  let summary = "weighted sum of each token's expert outputs";
  let description = [{
    result[t] = sum_j weights[t, j] * expert_out[row_of_slot[t * top_k + j]].

    ```mlir
    %y = ds.moe_combine %yp, %rows, %w : tensor<?x32xf32>, tensor<?xi32>, tensor<?x2xf32> -> tensor<?x32xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$expert_out, 1DTensorOf<[I32]>:$row_of_slot,
                       RankedTensorOf<[F32]>:$weights);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = [{
    $expert_out `,` $row_of_slot `,` $weights attr-dict `:` type($expert_out) `,`
    type($row_of_slot) `,` type($weights) `->` type($result)
  }];
  let hasVerifier = 1;
}

def DS_MTPConcatOp : DS_Op<"mtp_concat", [Pure]> {
  let summary = "[e | h] rows for an MTP module, e zeroed at position 0";
  let description = [{
    `result[t] = concat(positions[t] == 0 ? 0 : embedding[t], hidden[t])`:
    the concatenation `ds.mtp_project` feeds to its `eh_proj` GEMM (both
    halves already normalised).

    ```mlir
    %eh = ds.mtp_concat %e, %h, %pos : tensor<?x32xf32>, tensor<?x32xf32>,
          tensor<?xi32> -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$embedding,
                       RankedTensorOf<[F32]>:$hidden, DS_TokenTensor:$positions);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = [{
    $embedding `,` $hidden `,` $positions attr-dict `:` type($embedding) `,`
    type($hidden) `,` type($positions) `->` type($result)
  }];
  let hasVerifier = 1;
}

def DS_MoEDispatchOp : DS_Op<"moe_dispatch", [Pure]> {
  let summary = "expert parallelism: permuted rows to the ranks owning their experts";
  let description = [{
    The first all-to-all of expert parallelism over `ranks` ranks, rank p
    owning experts [p L, (p + 1) L) (L = num_experts / ranks). `permuted`
    and `offsets` [num_experts + 1] are this rank's ds.moe_permute output:
    rows sorted by expert, so the rows bound for rank p are the contiguous
    range [offsets[p L], offsets[(p + 1) L]). Every rank sends those ranges,
    and receives, from every source rank, the rows it routed to this rank's
    experts. `received` holds them grouped by local expert (expert-major,
    source ranks in order within an expert), `received_offsets` [L + 1]
    delimits them for the grouped matmuls, and `counts` [ranks, L] holds how
    many rows each source sent to each local expert: ds.moe_collect sends
    the results back with it.

    How many rows arrive depends on the routing of every rank: `received`
    has a data-dependent row count, which upstream `shard.all_to_all`
    (equal static pieces split from one tensor axis) cannot express; hence
    this op. It lowers to the communicator's counts exchange and
    all-to-all-v (dsrt_comm_all_to_all_v).

    ```mlir
    %r, %roff, %n = ds.moe_dispatch %xp, %off {ranks = 2 : i64}
        : tensor<?x32xf32>, tensor<9xi32> -> tensor<?x32xf32>, tensor<5xi32>, tensor<2x4xi32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$permuted, 1DTensorOf<[I32]>:$offsets,
                       ConfinedAttr<I64Attr, [IntPositive]>:$ranks);
  let results = (outs RankedTensorOf<[F32]>:$received, 1DTensorOf<[I32]>:$received_offsets,
                      RankedTensorOf<[I32]>:$counts);
  let assemblyFormat = [{
    $permuted `,` $offsets attr-dict `:` type($permuted) `,` type($offsets) `->`
    type($received) `,` type($received_offsets) `,` type($counts)
  }];
  let hasVerifier = 1;
}

def DS_MoECollectOp : DS_Op<"moe_collect", [Pure]> {
  let summary = "expert parallelism: expert outputs back to the ranks that dispatched them";
  let description = [{
    The second all-to-all of expert parallelism, the inverse of
    ds.moe_dispatch: `expert_out` has one row per row ds.moe_dispatch
    received, in the same (expert-major) order; `counts` [ranks, L] is the
    dispatch's, and `offsets` [num_experts + 1] the permutation's of this
    rank. Each row returns to the rank that sent it, and the result holds
    this rank's rows in the order of its `permuted` input (offsets[num_experts]
    rows), ready for ds.moe_combine. Data-dependent counts: see
    ds.moe_dispatch for why this is not `shard.all_to_all`.

    ```mlir
    %y = ds.moe_collect %out, %n, %off {ranks = 2 : i64}
        : tensor<?x32xf32>, tensor<2x4xi32>, tensor<9xi32> -> tensor<?x32xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$expert_out, RankedTensorOf<[I32]>:$counts,
                       1DTensorOf<[I32]>:$offsets,
                       ConfinedAttr<I64Attr, [IntPositive]>:$ranks);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = [{
    $expert_out `,` $counts `,` $offsets attr-dict `:` type($expert_out) `,`
    type($counts) `,` type($offsets) `->` type($result)
  }];
  let hasVerifier = 1;
}

#endif // DS_KERNEL_OPS_TD
