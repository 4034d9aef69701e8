// RUN: ds-opt --ds-absorb-mla %s | FileCheck %s
// RUN: ds-opt --ds-absorb-mla="form=absorbed" %s | FileCheck %s
// RUN: ds-opt --ds-absorb-mla="explain=true" %s 2>&1 >/dev/null | FileCheck %s --check-prefix=REMARK

// Tests that ds.mla over a per-head K/V cache (--kv-layout=per-head) becomes
// the naive form over its pages whatever form is asked for: the latent is
// expanded through kv_b_proj (one GEMM) into per-head [k_nope | v] rows that
// the write stores with the roped key; attention reads the cached K/V;
// nothing is absorbed (no ds.head_matmul). --explain says so.

// CHECK-LABEL: func.func @step_layer
// CHECK-SAME: (%[[X:.+]]: tensor<?x32xf32>, %[[POS:.+]]: tensor<?xi32>, %[[C:.+]]: !ds.paged_kv_cache<num_layers = 3, num_heads = 2, key_width = 12, value_width = 8, element_type = f32>, %[[QS:.+]]: tensor<?xi32>, %[[BT:.+]]: tensor<?x?xi32>)
// CHECK-DAG: %[[KVB:.+]] = ds.weight "kvb" : tensor<32x16xf32>
// CHECK: %[[QN:.+]] = tensor.extract_slice %{{.+}}[0, 0, 0] [%{{.+}}, 2, 8] [1, 1, 1]
// CHECK: %[[QPE:.+]] = ds.rope %{{.+}}, %[[POS]]
// CHECK: %[[LATN:.+]] = ds.rms_norm
// CHECK: %[[KPE:.+]] = ds.rope %{{.+}}, %[[POS]]
// CHECK: %[[KV:.+]] = ds.linear %[[LATN]], %[[KVB]] : tensor<?x16xf32>, tensor<32x16xf32> -> tensor<?x32xf32>
// CHECK: %[[KV3:.+]] = tensor.expand_shape %[[KV]] {{\[\[}}0], [1, 2]] output_shape [%{{.+}}, 2, 16]
// CHECK: %[[C1:.+]] = ds.paged_kv_write %[[C]], %[[KV3]], %[[KPE]], %[[POS]], %[[QS]], %[[BT]] {layer = 1 : i64}
// CHECK: %[[O:.+]] = ds.paged_kv_attention %[[QN]], %[[QPE]], %[[C1]], %[[POS]], %[[QS]], %[[BT]] {layer = 1 : i64, scale = 3.125000e-01 : f64}
// CHECK: tensor.collapse_shape %[[O]]
// CHECK: return %{{.+}}, %[[C1]]
// CHECK-NOT: ds.head_matmul
// CHECK-NOT: ds.mla

// REMARK: remark: ds-absorb-mla: @step_layer keeps per-head K/V pages (--kv-layout=per-head): the naive form
func.func @step_layer(%x: tensor<?x32xf32>, %pos: tensor<?xi32>,
                      %c: !ds.paged_kv_cache<num_layers = 3, num_heads = 2, key_width = 12, value_width = 8, element_type = f32>,
                      %qs: tensor<?xi32>, %bt: tensor<?x?xi32>)
    -> (tensor<?x32xf32>, !ds.paged_kv_cache<num_layers = 3, num_heads = 2, key_width = 12, value_width = 8, element_type = f32>) {
  %q = ds.weight "q" : tensor<24x32xf32>
  %kva = ds.weight "kva" : tensor<20x32xf32>
  %kvan = ds.weight "kvan" : tensor<16xf32>
  %kvb = ds.weight "kvb" : tensor<32x16xf32>
  %o = ds.weight "o" : tensor<32x16xf32>
  %y, %c2 = ds.mla %x, %pos, %c q(%q) kv(%kva, %kvan, %kvb) o(%o) paged(%qs, %bt)
      {config = #ds.mla_config<num_heads = 2, kv_lora_rank = 16, qk_nope_head_dim = 8,
         qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.3125, rope_theta = 10000.0>,
       layer = 1 : i64}
      : tensor<?x32xf32>, tensor<?xi32>, !ds.paged_kv_cache<num_layers = 3, num_heads = 2, key_width = 12, value_width = 8, element_type = f32>
        q(tensor<24x32xf32>) kv(tensor<20x32xf32>, tensor<16xf32>, tensor<32x16xf32>) o(tensor<32x16xf32>)
        paged(tensor<?xi32>, tensor<?x?xi32>)
      -> tensor<?x32xf32>, !ds.paged_kv_cache<num_layers = 3, num_heads = 2, key_width = 12, value_width = 8, element_type = f32>
  return %y, %c2 : tensor<?x32xf32>, !ds.paged_kv_cache<num_layers = 3, num_heads = 2, key_width = 12, value_width = 8, element_type = f32>
}
