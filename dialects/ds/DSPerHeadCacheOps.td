//===- DSPerHeadCacheOps.td - ops over the per-head K/V cache --*- tablegen -*-===//
//
// The kernels of ds-compile --kv-layout=per-head: what ds-absorb-mla turns a
// ds.mla over a `!ds.paged_kv_cache` into. They exist to measure the latent
// cache against the layout a multi-head attention deployment keeps (same
// model, same step, per-head K and V for every token); the latent path never
// uses them.
//
//===----------------------------------------------------------------------===//
#ifndef DS_PER_HEAD_CACHE_OPS_TD
#define DS_PER_HEAD_CACHE_OPS_TD

include "ds/DSBase.td"
include "ds/DSTypes.td"
include "mlir/Interfaces/SideEffectInterfaces.td"

def DS_PagedKVWriteOp : DS_Op<"paged_kv_write", [Pure,
    AllTypesMatch<["cache", "result"]>]> {
  let summary = "store new tokens' per-head keys and values into their pages";
  let description = [{
    `kv` [tokens, heads, nope + v] is kv_b_proj applied to the new tokens'
    latents (the [nope | v] rows of each head), `rope_key` [tokens, rope]
    their roped shared key. Token t (of sequence s, query_start[s] <= t <
    query_start[s + 1]) stores, in row positions[t] of layer `layer` (slot
    positions[t] % page_size of page block_tables[s, positions[t] /
    page_size]), head h's key (kv[t, h, :nope], rope_key[t]) and value
    kv[t, h, nope:] for every head: the rope key once per head, as an MHA
    cache holds it.

    ```mlir
    %c1 = ds.paged_kv_write %c0, %kv, %kpe, %pos, %qs, %bt {layer = 0 : i64}
        : !ds.paged_kv_cache<...>, tensor<?x2x16xf32>, tensor<?x4xf32>,
          tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>
    ```
  }];
  let arguments = (ins DS_PagedKVCacheType:$cache, RankedTensorOf<[F32]>:$kv,
                       RankedTensorOf<[F32]>:$rope_key, 1DTensorOf<[I32]>:$positions,
                       1DTensorOf<[I32]>:$query_start, 2DTensorOf<[I32]>:$block_tables,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$layer);
  let results = (outs DS_PagedKVCacheType:$result);
  let assemblyFormat = [{
    $cache `,` $kv `,` $rope_key `,` $positions `,` $query_start `,`
    $block_tables attr-dict `:` qualified(type($cache)) `,` type($kv) `,`
    type($rope_key) `,` type($positions) `,` type($query_start) `,`
    type($block_tables)
  }];
  let hasVerifier = 1;
}

def DS_PagedKVAttentionOp : DS_Op<"paged_kv_attention", [Pure]> {
  let summary = "per-head softmax attention of a ragged batch over cached K/V";
  let description = [{
    Standard multi-head attention (MLA's naive form, nothing absorbed):
    token t of sequence s and head h attend over rows 0..positions[t] of
    their sequence, read through block_tables[s, row / page_size], with
    `score = scale * (q_nope[t,h] . K_h[:nope] + q_rope[t,h] . K_h[nope:])`
    and `result[t,h] = softmax(score) . V_h` ([tokens, heads, value_width]).
    Causal within a sequence because each token sees rows up to its own
    position, so prefill chunks, decode tokens and verify steps share a call.

    ```mlir
    %o = ds.paged_kv_attention %qn, %qr, %cache, %pos, %qs, %bt
        {layer = 0 : i64, scale = 0.3 : f64}
        : tensor<?x2x8xf32>, tensor<?x2x4xf32>, !ds.paged_kv_cache<...>,
          tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x2x8xf32>
    ```
  }];
  let arguments = (ins RankedTensorOf<[F32]>:$q_nope, RankedTensorOf<[F32]>:$q_rope,
                       DS_PagedKVCacheType:$cache, 1DTensorOf<[I32]>:$positions,
                       1DTensorOf<[I32]>:$query_start, 2DTensorOf<[I32]>:$block_tables,
                       ConfinedAttr<I64Attr, [IntNonNegative]>:$layer, F64Attr:$scale);
  let results = (outs RankedTensorOf<[F32]>:$result);
  let assemblyFormat = [{
    $q_nope `,` $q_rope `,` $cache `,` $positions `,` $query_start `,`
    $block_tables attr-dict `:` type($q_nope) `,` type($q_rope) `,`
    qualified(type($cache)) `,` type($positions) `,` type($query_start) `,`
    type($block_tables) `->` type($result)
  }];
  let hasVerifier = 1;
}

#endif // DS_PER_HEAD_CACHE_OPS_TD
