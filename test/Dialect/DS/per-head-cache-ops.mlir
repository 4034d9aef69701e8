// RUN: ds-opt --split-input-file %s | ds-opt --split-input-file | FileCheck %s

// Tests that the per-head K/V cache type round-trips (page_size 64 left out).

// CHECK-LABEL: func.func private @types
// CHECK-SAME: !ds.paged_kv_cache<num_layers = 61, num_heads = 128, key_width = 192, value_width = 128, element_type = bf16>
// CHECK-SAME: !ds.paged_kv_cache<num_layers = 2, num_heads = 2, key_width = 12, value_width = 8, element_type = f32>
func.func private @types(!ds.paged_kv_cache<num_layers = 61, num_heads = 128, key_width = 192, value_width = 128, element_type = bf16>,
                         !ds.paged_kv_cache<num_layers = 2, num_heads = 2, key_width = 12, value_width = 8, element_type = f32, page_size = 64>)

// -----

// Tests that ds.mla over a per-head cache and the per-head kernels round-trip.

// CHECK-LABEL: func.func @per_head
// CHECK: ds.mla %{{.+}} paged(%{{[^ ,)]+}}, %{{[^ ,)]+}})
// CHECK-SAME: -> tensor<?x32xf32>, !ds.paged_kv_cache<num_layers = 3, num_heads = 2, key_width = 12, value_width = 8, element_type = f32>
// CHECK: ds.paged_kv_write %{{.+}} {layer = 1 : i64} : !ds.paged_kv_cache<num_layers = 3, num_heads = 2, key_width = 12, value_width = 8, element_type = f32>, tensor<?x2x16xf32>, tensor<?x4xf32>
// CHECK: ds.paged_kv_attention %{{.+}} {layer = 1 : i64, scale = 3.125000e-01 : f64} : tensor<?x2x8xf32>, tensor<?x2x4xf32>, !ds.paged_kv_cache<num_layers = 3, num_heads = 2, key_width = 12, value_width = 8, element_type = f32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x2x8xf32>
func.func @per_head(%x: tensor<?x32xf32>, %p: tensor<?xi32>, %c: !ds.paged_kv_cache<num_layers = 3, num_heads = 2, key_width = 12, value_width = 8, element_type = f32>,
                    %qs: tensor<?xi32>, %bt: tensor<?x?xi32>, %q: tensor<24x32xf32>, %kva: tensor<20x32xf32>,
                    %kvan: tensor<16xf32>, %kvb: tensor<32x16xf32>, %o: tensor<32x16xf32>,
                    %kv: tensor<?x2x16xf32>, %kpe: tensor<?x4xf32>, %qn: tensor<?x2x8xf32>, %qr: tensor<?x2x4xf32>) -> tensor<?x2x8xf32> {
  %y, %c2 = ds.mla %x, %p, %c q(%q) kv(%kva, %kvan, %kvb) o(%o) paged(%qs, %bt)
      {config = #ds.mla_config<num_heads = 2, kv_lora_rank = 16, qk_nope_head_dim = 8, qk_rope_head_dim = 4,
       v_head_dim = 8, softmax_scale = 0.3125, rope_theta = 10000.0>, layer = 2 : i64}
      : tensor<?x32xf32>, tensor<?xi32>, !ds.paged_kv_cache<num_layers = 3, num_heads = 2, key_width = 12, value_width = 8, element_type = f32>
        q(tensor<24x32xf32>) kv(tensor<20x32xf32>, tensor<16xf32>, tensor<32x16xf32>) o(tensor<32x16xf32>)
        paged(tensor<?xi32>, tensor<?x?xi32>)
        -> tensor<?x32xf32>, !ds.paged_kv_cache<num_layers = 3, num_heads = 2, key_width = 12, value_width = 8, element_type = f32>
  %c3 = ds.paged_kv_write %c2, %kv, %kpe, %p, %qs, %bt {layer = 1 : i64}
      : !ds.paged_kv_cache<num_layers = 3, num_heads = 2, key_width = 12, value_width = 8, element_type = f32>,
        tensor<?x2x16xf32>, tensor<?x4xf32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>
  %a = ds.paged_kv_attention %qn, %qr, %c3, %p, %qs, %bt {layer = 1 : i64, scale = 0.3125 : f64}
      : tensor<?x2x8xf32>, tensor<?x2x4xf32>, !ds.paged_kv_cache<num_layers = 3, num_heads = 2, key_width = 12, value_width = 8, element_type = f32>,
        tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x2x8xf32>
  return %a : tensor<?x2x8xf32>
}
