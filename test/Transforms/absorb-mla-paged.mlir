// RUN: ds-opt --ds-absorb-mla %s | FileCheck %s
// RUN: ds-opt --ds-absorb-mla="form=naive" %s | FileCheck %s
// RUN: ds-opt --ds-absorb-mla="explain=true" %s 2>&1 >/dev/null | FileCheck %s --check-prefix=REMARK

// Tests that ds.mla over a paged cache (a ragged batch, @step) becomes the
// absorbed form with the paged kernels: the new rows are written through the
// block tables, attention reads them back the same way, and the form stays
// absorbed for every sequence whatever the cost model or the forced form
// says (the only form built over pages so far; exact for decode tokens and
// prefill chunks alike). --explain says so.

// CHECK-LABEL: func.func @step_layer
// CHECK-SAME: (%[[X:.+]]: tensor<?x32xf32>, %[[POS:.+]]: tensor<?xi32>, %[[C:.+]]: !ds.paged_latent_cache<num_layers = 3, width = 20, element_type = f32>, %[[QS:.+]]: tensor<?xi32>, %[[BT:.+]]: tensor<?x?xi32>)
// CHECK: %[[QPE:.+]] = ds.rope %{{.+}}, %[[POS]]
// CHECK: %[[LATN:.+]] = ds.rms_norm
// CHECK: %[[KPE:.+]] = ds.rope %{{.+}}, %[[POS]]
// CHECK: %[[C1:.+]] = ds.paged_cache_write %[[C]], %[[LATN]], %[[KPE]], %[[POS]], %[[QS]], %[[BT]] {layer = 1 : i64}
// CHECK: %[[QL:.+]] = ds.head_matmul %{{.+}}, %[[KVB:.+]] {group = 16 : i64, offset = 0 : i64, rows = 8 : i64}
// CHECK: %[[U:.+]] = ds.paged_latent_attention %[[QL]], %[[QPE]], %[[C1]], %[[POS]], %[[QS]], %[[BT]] {layer = 1 : i64, scale = 3.125000e-01 : f64}
// CHECK: ds.head_matmul %[[U]], %[[KVB]] {group = 16 : i64, offset = 8 : i64, rows = 8 : i64, transpose}
// CHECK: return %{{.+}}, %[[C1]]
// CHECK-NOT: ds.naive_attention
// CHECK-NOT: ds.mla

// REMARK: remark: ds-absorb-mla: @step_layer (a ragged batch over the paged cache) uses the absorbed form for every sequence
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
