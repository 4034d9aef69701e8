// RUN: ds-opt --ds-absorb-mla %s | FileCheck %s --check-prefixes=CHECK,AUTO
// RUN: ds-opt --ds-absorb-mla="form=naive" %s | FileCheck %s --check-prefixes=CHECK,NAIVE
// RUN: ds-opt --ds-absorb-mla="naive-min-tokens=5" %s | FileCheck %s --check-prefixes=CHECK,FIVE
// RUN: ds-opt --ds-absorb-mla="form=absorbed" %s | FileCheck %s --check-prefixes=CHECK,NEVER
// RUN: ds-opt --ds-absorb-mla="naive-min-tokens=2147483648" %s | FileCheck %s --check-prefixes=CHECK,NEVER
// RUN: ds-opt --ds-absorb-mla="explain=true" %s 2>&1 >/dev/null | FileCheck %s --check-prefix=REMARK
// RUN: ds-opt --ds-absorb-mla="explain=true form=absorbed" %s 2>&1 >/dev/null | FileCheck %s --check-prefix=REMARK-NEVER
// RUN: ds-opt --ds-absorb-mla="explain=true naive-min-tokens=0" %s 2>&1 >/dev/null | FileCheck %s --check-prefix=REMARK-ZERO

// Tests that ds.mla over a paged cache (a ragged batch, @ragged_step) becomes
// the absorbed form with the paged kernels (new rows written through the
// block tables, attention reading them back the same way), with the form
// chosen per sequence at run time: sequences with naive_min_tokens new
// tokens or more are skipped by the absorbed kernels (both head products,
// told query_start by skip(), and the attention) and computed by
// ds.paged_naive_attention, which keeps the absorbed rows of the others.
// The threshold comes from the cost model (17 for this config: the
// expansion of a context row costs 2*16*(8+8) = 512 FLOPs, a (token, row)
// pair 2*(2*16+4) = 72 absorbed vs 2*(8+4+8) = 40 naive, 512 / 32 = 16, so
// naive from 17 new tokens), from form=naive (0: every sequence) or from
// naive-min-tokens; form=absorbed or a threshold no i32 count reaches
// leaves the absorbed form alone. --explain says which and why.

// CHECK-LABEL: func.func @step_layer
// CHECK-SAME: (%[[X:.+]]: tensor<?x32xf32>, %[[POS:.+]]: tensor<?xi32>, %[[C:.+]]: !ds.paged_latent_cache<num_layers = 3, width = 20, element_type = f32>, %[[QS:.+]]: tensor<?xi32>, %[[BT:.+]]: tensor<?x?xi32>)
// CHECK: %[[Q3:.+]] = tensor.expand_shape
// CHECK: %[[QN:.+]] = tensor.extract_slice %[[Q3]][0, 0, 0]
// CHECK: %[[QPE:.+]] = ds.rope %{{.+}}, %[[POS]]
// CHECK: %[[LATN:.+]] = ds.rms_norm
// CHECK: %[[KPE:.+]] = ds.rope %{{.+}}, %[[POS]]
// CHECK: %[[C1:.+]] = ds.paged_cache_write %[[C]], %[[LATN]], %[[KPE]], %[[POS]], %[[QS]], %[[BT]] {layer = 1 : i64}
// AUTO: %[[QL:.+]] = ds.head_matmul %[[QN]], %[[KVB:.+]] skip(%[[QS]] : tensor<?xi32>) {group = 16 : i64, naive_min_tokens = 17 : i64, offset = 0 : i64, rows = 8 : i64}
// NAIVE: %[[QL:.+]] = ds.head_matmul %[[QN]], %[[KVB:.+]] skip(%[[QS]] : tensor<?xi32>) {group = 16 : i64, naive_min_tokens = 0 : i64, offset = 0 : i64, rows = 8 : i64}
// FIVE: %[[QL:.+]] = ds.head_matmul %[[QN]], %[[KVB:.+]] skip(%[[QS]] : tensor<?xi32>) {group = 16 : i64, naive_min_tokens = 5 : i64, offset = 0 : i64, rows = 8 : i64}
// NEVER: %[[QL:.+]] = ds.head_matmul %[[QN]], %[[KVB:.+]] {group = 16 : i64, offset = 0 : i64, rows = 8 : i64}
// AUTO: %[[U:.+]] = ds.paged_latent_attention %[[QL]], %[[QPE]], %[[C1]], %[[POS]], %[[QS]], %[[BT]] {layer = 1 : i64, naive_min_tokens = 17 : i64, scale = 3.125000e-01 : f64}
// NAIVE: %[[U:.+]] = ds.paged_latent_attention %[[QL]], %[[QPE]], %[[C1]], %[[POS]], %[[QS]], %[[BT]] {layer = 1 : i64, naive_min_tokens = 0 : i64, scale = 3.125000e-01 : f64}
// FIVE: %[[U:.+]] = ds.paged_latent_attention %[[QL]], %[[QPE]], %[[C1]], %[[POS]], %[[QS]], %[[BT]] {layer = 1 : i64, naive_min_tokens = 5 : i64, scale = 3.125000e-01 : f64}
// NEVER: %[[U:.+]] = ds.paged_latent_attention %[[QL]], %[[QPE]], %[[C1]], %[[POS]], %[[QS]], %[[BT]] {layer = 1 : i64, scale = 3.125000e-01 : f64}
// AUTO: %[[OA:.+]] = ds.head_matmul %[[U]], %[[KVB]] skip(%[[QS]] : tensor<?xi32>) {group = 16 : i64, naive_min_tokens = 17 : i64, offset = 8 : i64, rows = 8 : i64, transpose}
// NAIVE: %[[OA:.+]] = ds.head_matmul %[[U]], %[[KVB]] skip(%[[QS]] : tensor<?xi32>) {group = 16 : i64, naive_min_tokens = 0 : i64, offset = 8 : i64, rows = 8 : i64, transpose}
// FIVE: %[[OA:.+]] = ds.head_matmul %[[U]], %[[KVB]] skip(%[[QS]] : tensor<?xi32>) {group = 16 : i64, naive_min_tokens = 5 : i64, offset = 8 : i64, rows = 8 : i64, transpose}
// NEVER: %[[OA:.+]] = ds.head_matmul %[[U]], %[[KVB]] {group = 16 : i64, offset = 8 : i64, rows = 8 : i64, transpose}
// AUTO: %[[ON:.+]] = ds.paged_naive_attention %[[QN]], %[[QPE]], %[[C1]], %[[POS]], %[[QS]], %[[BT]], %[[KVB]], %[[OA]] {layer = 1 : i64, naive_min_tokens = 17 : i64, scale = 3.125000e-01 : f64}
// NAIVE: %[[ON:.+]] = ds.paged_naive_attention %[[QN]], %[[QPE]], %[[C1]], %[[POS]], %[[QS]], %[[BT]], %[[KVB]], %[[OA]] {layer = 1 : i64, naive_min_tokens = 0 : i64, scale = 3.125000e-01 : f64}
// FIVE: %[[ON:.+]] = ds.paged_naive_attention %[[QN]], %[[QPE]], %[[C1]], %[[POS]], %[[QS]], %[[BT]], %[[KVB]], %[[OA]] {layer = 1 : i64, naive_min_tokens = 5 : i64, scale = 3.125000e-01 : f64}
// AUTO: tensor.collapse_shape %[[ON]]
// NAIVE: tensor.collapse_shape %[[ON]]
// FIVE: tensor.collapse_shape %[[ON]]
// NEVER-NOT: ds.paged_naive_attention
// NEVER: tensor.collapse_shape %[[OA]]
// CHECK: return %{{.+}}, %[[C1]]
// CHECK-NOT: ds.naive_attention
// CHECK-NOT: ds.mla

// REMARK: remark: ds-absorb-mla: @step_layer (a ragged batch over the paged cache) chooses the form per sequence at run time: naive for sequences with >= 17 new tokens, absorbed below (cost model). Per layer, absorbed costs 512 FLOP per new token (W_UK/W_UV projections) + 72 per (token, context row); naive costs 512 per context row (its latent expanded through kv_b_proj) + 40 per (token, context row); naive wins when new tokens * 32 > 512, i.e. from 17 new tokens
// REMARK-NEVER: remark: ds-absorb-mla: @step_layer (a ragged batch over the paged cache) chooses the form per sequence at run time: absorbed for every sequence (forced by form=absorbed).
// REMARK-ZERO: remark: ds-absorb-mla: @step_layer (a ragged batch over the paged cache) chooses the form per sequence at run time: naive for every sequence (forced by naive-min-tokens).
func.func @step_layer(%x: tensor<?x32xf32>, %pos: tensor<?xi32>,
                      %c: !ds.paged_latent_cache<num_layers = 3, width = 20, element_type = f32>,
                      %qs: tensor<?xi32>, %bt: tensor<?x?xi32>)
    -> (tensor<?x32xf32>, !ds.paged_latent_cache<num_layers = 3, width = 20, element_type = f32>) {
  %q = ds.weight "q" : tensor<24x32xf32>
  %kva = ds.weight "kva" : tensor<20x32xf32>
  %kvan = ds.weight "kvan" : tensor<16xf32>
  %kvb = ds.weight "kvb" : tensor<32x16xf32>
  %o = ds.weight "o" : tensor<32x16xf32>
  %y, %c2 = ds.mla %x, %pos, %c q(%q) kv(%kva, %kvan, %kvb) o(%o) paged(%qs, %bt)
      {config = #ds.mla_config<num_heads = 2, kv_lora_rank = 16, qk_nope_head_dim = 8,
         qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.3125, rope_theta = 10000.0>,
       layer = 1 : i64}
      : tensor<?x32xf32>, tensor<?xi32>, !ds.paged_latent_cache<num_layers = 3, width = 20, element_type = f32>
        q(tensor<24x32xf32>) kv(tensor<20x32xf32>, tensor<16xf32>, tensor<32x16xf32>) o(tensor<32x16xf32>)
        paged(tensor<?xi32>, tensor<?x?xi32>)
      -> tensor<?x32xf32>, !ds.paged_latent_cache<num_layers = 3, width = 20, element_type = f32>
  return %y, %c2 : tensor<?x32xf32>, !ds.paged_latent_cache<num_layers = 3, width = 20, element_type = f32>
}
