//===- DSOps.td - ds model-level operations --------------------*- tablegen -*-===//
#ifndef DS_OPS_TD
#define DS_OPS_TD

include "ds/DSBase.td"
include "ds/DSAttrs.td"
include "ds/DSTypes.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "ds/DSKernelOps.td"
include "ds/DSPerHeadCacheOps.td"


//===----------------------------------------------------------------------===//
// Weights
//===----------------------------------------------------------------------===//

def DS_WeightOp : DS_Op<"weight", [Pure]> {
  let summary = "a named tensor of the checkpoint";
  let description = [{
    Refers to one tensor of the checkpoint by its Hugging Face name. The data
    never enters the IR: the artifact's manifest lists every name, shape and
    dtype, and the runtime binds them from the safetensors files.

    ```mlir
    %w = ds.weight "model.layers.0.self_attn.o_proj.weight" : tensor<7168x16384xbf16>
    ```

    `split = array<i64: dim, parts>` (ds-partition-model): the checkpoint
    tensor is cut into `parts` equal pieces along `dim` and this rank binds
    piece number `rank`; the result type is one piece. The runtime reads the
    piece where it lies in the mmapped checkpoint.

    ```mlir
    %o = ds.weight "model.layers.0.self_attn.o_proj.weight" {split = array<i64: 1, 8>}
        : tensor<7168x2048xbf16>
    ```
  }];
  let arguments = (ins StrAttr:$name, OptionalAttr<DenseI64ArrayAttr>:$split);
  let results = (outs DS_WeightTensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
  let hasVerifier = 1;
  let builders = [
    OpBuilder<(ins "Type":$result, "StringAttr":$name), [{
      build($_builder, $_state, result, name, DenseI64ArrayAttr());
    }]>
  ];
  let extraClassDeclaration = [{
    /// The checkpoint tensor's shape: the result's, times `parts` at `dim`.
    SmallVector<int64_t> getFullShape();
  }];
}

def DS_StackedWeightOp : DS_Op<"stacked_weight", [Pure]> {
  let summary = "one tensor per expert, seen as a stack";
  let description = [{
    The experts of a MoE layer each have their own checkpoint tensor; this op
    names them all with one pattern whose `*` stands for the expert index
    0..N-1, N being the leading dimension of the result.

    ```mlir
    %g = ds.stacked_weight "model.layers.3.mlp.experts.*.gate_proj.weight"
         : tensor<256x2048x7168xbf16>
    ```

    `split` as for ds.weight, on the stack's shape: along dim 0 this rank
    holds experts [rank * N, (rank + 1) * N) (expert parallelism), along a
    later dim a piece of every expert.
  }];
  let arguments = (ins StrAttr:$pattern, OptionalAttr<DenseI64ArrayAttr>:$split);
  let results = (outs DS_WeightTensor:$result);
  let assemblyFormat = "$pattern attr-dict `:` type($result)";
  let hasVerifier = 1;
  let builders = [
    OpBuilder<(ins "Type":$result, "StringAttr":$pattern), [{
      build($_builder, $_state, result, pattern, DenseI64ArrayAttr());
    }]>
  ];
  let extraClassDeclaration = [{
    /// The checkpoint name of member `index` (of the whole stack).
    std::string getMemberName(int64_t index);
    /// The whole stack's shape: the result's, times `parts` at `dim`.
    SmallVector<int64_t> getFullShape();
  }];
}

def DS_DequantizeOp : DS_Op<"dequantize", [Pure]> {
  let summary = "block-scaled FP8 weight to a float weight";
  let description = [{
    `result[.., i, j] = weight[.., i, j] * scale_inv[.., i / block_size, j / block_size]`,
    the FP8 (e4m3) layout of DeepSeek V3/R1 checkpoints. Works on a single
    weight [O, I] with scales [ceil(O/B), ceil(I/B)] or on a stack [N, O, I]
    with scales [N, ceil(O/B), ceil(I/B)].

    ```mlir
    %w = ds.dequantize %q, %s {block_size = 128 : i64}
         : tensor<1536x7168xf8E4M3FN>, tensor<12x56xf32> -> tensor<1536x7168xbf16>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F8E4M3FN]>:$weight,
                       RankedTensorOf<[F32]>:$scale_inv,
                       ConfinedAttr<I64Attr, [IntPositive]>:$block_size);
  let results = (outs RankedTensorOf<[F32, BF16, F16]>:$result);
  let assemblyFormat = [{
    $weight `,` $scale_inv attr-dict `:` type($weight) `,` type($scale_inv)
    `->` type($result)
  }];
  let hasVerifier = 1;
}

def DS_ConcatWeightsOp : DS_Op<"concat_weights", [Pure]> {
  let summary = "two weights stacked along their first dimension";
  let description = [{
    Lets two projections of the same input run as one matmul (gate and up
    of a SwiGLU MLP). The runtime binds the members one after the other.
    A `second` one rank lower is appended as one more slice: a shared
    expert's [F, D] after a stack of routed experts [E, F, D] gives
    [E + 1, F, D].

    ```mlir
    %gu = ds.concat_weights %g, %u : tensor<48x32xbf16>, tensor<48x32xbf16> -> tensor<96x32xbf16>
    ```
  }];
  let arguments = (ins DS_WeightTensor:$first, DS_WeightTensor:$second);
  let results = (outs DS_WeightTensor:$result);
  let assemblyFormat = [{
    $first `,` $second attr-dict `:` type($first) `,` type($second) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Dense building blocks
//===----------------------------------------------------------------------===//

def DS_EmbeddingOp : DS_Op<"embedding", [Pure]> {
  let summary = "token embedding lookup";
  let description = [{
    Row `ids[t]` of `table` [vocab, hidden] for every token t. Ids outside
    [0, vocab) are rejected by the runtime before the op runs.

    With `offset(%o)` the table holds rows [o, o + rows) of the vocabulary
    (a rank's piece, ds-partition-model): row `ids[t] - o` where it lies in
    the table, zeros where it does not.

    ```mlir
    %h = ds.embedding %table, %ids : tensor<64x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
    %p = ds.embedding %piece, %ids offset(%o) : tensor<32x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
    ```
  }];
  let arguments = (ins DS_WeightTensor:$table, DS_TokenTensor:$ids,
                       Optional<Index>:$row_offset);
  let results = (outs DS_Activation:$result);
  let assemblyFormat = [{
    $table `,` $ids (`offset` `(` $row_offset^ `)`)? attr-dict `:` type($table) `,` type($ids) `->` type($result)
  }];
  let builders = [
    OpBuilder<(ins "Type":$result, "Value":$table, "Value":$ids), [{
      build($_builder, $_state, result, table, ids, Value());
    }]>
  ];
  let hasVerifier = 1;
}

def DS_RMSNormOp : DS_Op<"rms_norm", [Pure]> {
  let summary = "RMSNorm over the last dimension, in f32";
  let description = [{
    `x / sqrt(mean(x^2) + eps) * weight`.

    ```mlir
    %y = ds.rms_norm %x, %w {eps = 1.0e-06 : f64} : tensor<?x32xf32>, tensor<32xf32> -> tensor<?x32xf32>
    ```
  }];
  let arguments = (ins DS_Activation:$input, DS_WeightTensor:$weight,
                       F64Attr:$eps);
  let results = (outs DS_Activation:$result);
  let assemblyFormat = [{
    $input `,` $weight attr-dict `:` type($input) `,` type($weight) `->` type($result)
  }];
  let hasVerifier = 1;
}

def DS_LinearOp : DS_Op<"linear", [Pure]> {
  let summary = "y = x W^T with a Hugging Face [out, in] weight";
  let description = [{
    ```mlir
    %y = ds.linear %x, %w : tensor<?x32xf32>, tensor<24x32xbf16> -> tensor<?x24xf32>
    ```
  }];
  let arguments = (ins DS_Activation:$input, DS_WeightTensor:$weight);
  let results = (outs DS_Activation:$result);
  let assemblyFormat = [{
    $input `,` $weight attr-dict `:` type($input) `,` type($weight) `->` type($result)
  }];
  let hasVerifier = 1;
}

def DS_MLPOp : DS_Op<"mlp", [Pure]> {
  let summary = "dense SwiGLU MLP: down(silu(gate(x)) * up(x))";
  let description = [{
    Weights in HF layout: gate and up [F, D], down [D, F].

    ```mlir
    %y = ds.mlp %x, %g, %u, %d : tensor<?x32xf32>, tensor<48x32xf32>,
         tensor<48x32xf32>, tensor<32x48xf32> -> tensor<?x32xf32>
    ```
  }];
  let arguments = (ins DS_Activation:$input, DS_WeightTensor:$gate,
                       DS_WeightTensor:$up, DS_WeightTensor:$down);
  let results = (outs DS_Activation:$result);
  let assemblyFormat = [{
    $input `,` $gate `,` $up `,` $down attr-dict `:` type($input) `,`
    type($gate) `,` type($up) `,` type($down) `->` type($result)
  }];
  let hasVerifier = 1;
}

def DS_LMHeadOp : DS_Op<"lm_head", [Pure]> {
  let summary = "final RMSNorm followed by the vocabulary projection";
  let description = [{
    `logits = RMSNorm(x; norm, eps) lm_head^T`, one row of logits per token.

    ```mlir
    %logits = ds.lm_head %x, %norm, %head {eps = 1.0e-06 : f64}
        : tensor<?x32xf32>, tensor<32xf32>, tensor<64x32xf32> -> tensor<?x64xf32>
    ```
  }];
  let arguments = (ins DS_Activation:$input, DS_WeightTensor:$norm,
                       DS_WeightTensor:$head,
                       F64Attr:$eps);
  let results = (outs DS_Activation:$result);
  let assemblyFormat = [{
    $input `,` $norm `,` $head attr-dict `:` type($input) `,` type($norm) `,`
    type($head) `->` type($result)
  }];
  let hasVerifier = 1;
}

def DS_MTPProjectOp : DS_Op<"mtp_project", [Pure]> {
  let summary = "the input projection of a multi-token-prediction module";
  let description = [{
    SEMANTICS.md, multi-token prediction: for each token t,
    `x[t] = eh_proj( concat( enorm(e[t]), hnorm(h[t]) ) )` where `e` is the
    embedding of the next token (zero where `positions[t] == 0`) and `h` the
    main model's hidden state after its final norm. The embedding comes FIRST
    in the concatenation: the released V3/R1 weights follow that order. Both
    norms are RMSNorms with epsilon `eps`; `eh_proj` is [D, 2D].

    ```mlir
    %x = ds.mtp_project %e, %h, %pos, %en, %hn, %eh {eps = 1.0e-06 : f64}
        : tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>, tensor<32xf32>,
          tensor<32xf32>, tensor<32x64xf32> -> tensor<?x32xf32>
    ```
  }];
  let arguments = (ins DS_Activation:$embedding, DS_Activation:$hidden,
                       DS_TokenTensor:$positions, DS_WeightTensor:$enorm,
                       DS_WeightTensor:$hnorm, DS_WeightTensor:$eh_proj,
                       F64Attr:$eps);
  let results = (outs DS_Activation:$result);
  let assemblyFormat = [{
    $embedding `,` $hidden `,` $positions `,` $enorm `,` $hnorm `,` $eh_proj
    attr-dict `:` type($embedding) `,` type($hidden) `,` type($positions) `,`
    type($enorm) `,` type($hnorm) `,` type($eh_proj) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Multi-head Latent Attention
//===----------------------------------------------------------------------===//

def DS_MLAOp : DS_Op<"mla", [Pure, AttrSizedOperandSegments]> {
  let summary = "a whole Multi-head Latent Attention block";
  let description = [{
    Computes SEMANTICS.md's MLA for tokens at `positions` (one sequence): the
    input is already normalised; the result is the attention output after
    `o_proj`. The latent `c` and the roped key of each new token are written
    into layer `layer` of the cache at its position, and every token attends
    causally over cache entries 0..position. Prefill is a chunk of tokens at
    consecutive positions; decode is one token.

    Queries come either from `q_a_proj`, `q_a_layernorm`, `q_b_proj` (when
    `q_lora_rank` is set) or from `q_proj` (when it is absent).

    With a `!ds.paged_latent_cache` the tokens belong to several sequences
    (a ragged batch): `paged(%query_start, %block_tables)` says that
    sequence s owns tokens [query_start[s], query_start[s + 1]) and keeps
    its rows in pages block_tables[s, pos / page_size]. Each token attends
    causally over its own sequence's rows 0..position.

    ```mlir
    %o, %c1 = ds.mla %x, %pos, %c0
        q_a(%qa, %qan, %qb) kv(%kva, %kvan, %kvb) o(%o_w)
        {config = #ds.mla_config<...>, layer = 0 : i64}
        : tensor<?x32xf32>, tensor<?xi32>, !ds.latent_cache<...>, ...
    ```
  }];
  let arguments = (ins
    DS_Activation:$input, DS_TokenTensor:$positions,
    DS_AnyMLACache:$cache,
    Optional<DS_WeightTensor>:$q_a_proj,
    Optional<DS_WeightTensor>:$q_a_norm,
    Optional<DS_WeightTensor>:$q_b_proj,
    Optional<DS_WeightTensor>:$q_proj,
    DS_WeightTensor:$kv_a_proj,
    DS_WeightTensor:$kv_a_norm,
    DS_WeightTensor:$kv_b_proj,
    DS_WeightTensor:$o_proj,
    Optional<1DTensorOf<[I32]>>:$query_start,
    Optional<2DTensorOf<[I32]>>:$block_tables,
    DS_MLAConfigAttr:$config,
    ConfinedAttr<I64Attr, [IntNonNegative]>:$layer);
  let results = (outs DS_Activation:$result, DS_AnyMLACache:$cache_out);
  let assemblyFormat = [{
    $input `,` $positions `,` $cache
    (`q_lora` `(` $q_a_proj^ `,` $q_a_norm `,` $q_b_proj `)`)?
    (`q` `(` $q_proj^ `)`)?
    `kv` `(` $kv_a_proj `,` $kv_a_norm `,` $kv_b_proj `)`
    `o` `(` $o_proj `)`
    (`paged` `(` $query_start^ `,` $block_tables `)`)?
    attr-dict `:` type($input) `,` type($positions) `,` qualified(type($cache))
    (`q_lora` `(` type($q_a_proj)^ `,` type($q_a_norm) `,` type($q_b_proj) `)`)?
    (`q` `(` type($q_proj)^ `)`)?
    `kv` `(` type($kv_a_proj) `,` type($kv_a_norm) `,` type($kv_b_proj) `)`
    `o` `(` type($o_proj) `)`
    (`paged` `(` type($query_start)^ `,` type($block_tables) `)`)?
    `->` type($result) `,` qualified(type($cache_out))
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Mixture of Experts
//===----------------------------------------------------------------------===//

def DS_MoEOp : DS_Op<"moe", [Pure, AttrSizedOperandSegments]> {
  let summary = "a whole Mixture-of-Experts FFN block";
  let description = [{
    Routes each token to `top_k` of the routed experts with the configured
    scoring, top-k method, groups and normalisation (SEMANTICS.md), sums the
    weighted expert MLPs and adds the shared experts (one MLP of width
    n_shared_experts * intermediate_size) when present. `bias` is the
    `e_score_correction_bias` of `noaux_tc` routing: it selects, never weighs.

    ```mlir
    %y = ds.moe %x router(%gate_w) bias(%b) experts(%g, %u, %d)
         shared(%sg, %su, %sd) {config = #ds.moe_config<...>} : ...
    ```
  }];
  let arguments = (ins
    DS_Activation:$input,
    DS_WeightTensor:$router,
    Optional<RankedTensorOf<[F32, BF16, F16]>>:$bias,
    DS_WeightTensor:$experts_gate,
    DS_WeightTensor:$experts_up,
    DS_WeightTensor:$experts_down,
    Optional<DS_WeightTensor>:$shared_gate,
    Optional<DS_WeightTensor>:$shared_up,
    Optional<DS_WeightTensor>:$shared_down,
    DS_MoEConfigAttr:$config);
  let results = (outs DS_Activation:$result);
  let assemblyFormat = [{
    $input `router` `(` $router `)` (`bias` `(` $bias^ `)`)?
    `experts` `(` $experts_gate `,` $experts_up `,` $experts_down `)`
    (`shared` `(` $shared_gate^ `,` $shared_up `,` $shared_down `)`)?
    attr-dict `:` type($input) `router` `(` type($router) `)`
    (`bias` `(` type($bias)^ `)`)?
    `experts` `(` type($experts_gate) `,` type($experts_up) `,` type($experts_down) `)`
    (`shared` `(` type($shared_gate)^ `,` type($shared_up) `,` type($shared_down) `)`)?
    `->` type($result)
  }];
  let hasVerifier = 1;
}

#endif // DS_OPS_TD
