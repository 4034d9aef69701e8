// RUN: ds-opt --split-input-file %s | ds-opt --split-input-file | FileCheck %s

// Tests that the paged latent cache type round-trips (the fp8 row layout
// too); page_size is 64 by default and then left out of the printed form.

// CHECK-LABEL: func.func private @types
// CHECK-SAME: !ds.paged_latent_cache<num_layers = 61, width = 576, element_type = bf16>
// CHECK-SAME: !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = f32>
// CHECK-SAME: !ds.paged_latent_cache<num_layers = 61, width = 576, element_type = f8E4M3FN, rope_width = 64, scale_group = 128>
func.func private @types(!ds.paged_latent_cache<num_layers = 61, width = 576, element_type = bf16>,
                         !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = f32>,
                         !ds.paged_latent_cache<num_layers = 61, width = 576, element_type = f8E4M3FN, rope_width = 64, scale_group = 128>)

// -----

// Tests that ds.mla over a paged cache (a ragged batch) round-trips.

// CHECK-LABEL: func.func @paged_mla
// CHECK: ds.mla %{{[^ ,)]+}}, %{{[^ ,)]+}}, %{{[^ ,)]+}} q(%{{[^ ,)]+}}) kv(%{{[^ ,)]+}}, %{{[^ ,)]+}}, %{{[^ ,)]+}}) o(%{{[^ ,)]+}}) paged(%[[QS:[^ ,)]+]], %[[BT:[^ ,)]+]])
// CHECK-SAME: paged(tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x32xf32>, !ds.paged_latent_cache<num_layers = 3, width = 20, element_type = f32>
func.func @paged_mla(%x: tensor<?x32xf32>, %p: tensor<?xi32>, %c: !ds.paged_latent_cache<num_layers = 3, width = 20, element_type = f32>,
                     %qs: tensor<?xi32>, %bt: tensor<?x?xi32>, %q: tensor<24x32xf32>, %kva: tensor<20x32xf32>,
                     %kvan: tensor<16xf32>, %kvb: tensor<32x16xf32>, %o: tensor<32x16xf32>) -> tensor<?x32xf32> {
  %y, %c2 = ds.mla %x, %p, %c q(%q) kv(%kva, %kvan, %kvb) o(%o) paged(%qs, %bt)
      {config = #ds.mla_config<num_heads = 2, kv_lora_rank = 16, qk_nope_head_dim = 8, qk_rope_head_dim = 4,
       v_head_dim = 8, softmax_scale = 0.3125, rope_theta = 10000.0>, layer = 2 : i64}
      : tensor<?x32xf32>, tensor<?xi32>, !ds.paged_latent_cache<num_layers = 3, width = 20, element_type = f32>
        q(tensor<24x32xf32>) kv(tensor<20x32xf32>, tensor<16xf32>, tensor<32x16xf32>) o(tensor<32x16xf32>)
        paged(tensor<?xi32>, tensor<?x?xi32>)
        -> tensor<?x32xf32>, !ds.paged_latent_cache<num_layers = 3, width = 20, element_type = f32>
  return %y : tensor<?x32xf32>
}

// -----

// Tests that the paged kernel ops and ds.gather_rows round-trip.

// CHECK-LABEL: func.func @paged_kernels
// CHECK: %[[C1:.+]] = ds.paged_cache_write %{{[^ ,)]+}}, %{{[^ ,)]+}}, %{{[^ ,)]+}}, %[[POS:[^ ,)]+]], %[[QS:[^ ,)]+]], %[[BT:[^ ,)]+]] {layer = 1 : i64} : !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = bf16>, tensor<?x16xf32>, tensor<?x4xf32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>
// CHECK: ds.paged_latent_attention %{{[^ ,)]+}}, %{{[^ ,)]+}}, %[[C1]], %[[POS]], %[[QS]], %[[BT]] {layer = 1 : i64, scale = 3.125000e-01 : f64} : tensor<?x2x16xf32>, tensor<?x2x4xf32>, !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = bf16>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x2x16xf32>
// CHECK: ds.gather_rows %{{[^ ,)]+}}, %{{[^ ,)]+}} : tensor<?x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
func.func @paged_kernels(%c: !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = bf16>,
                         %lat: tensor<?x16xf32>, %kr: tensor<?x4xf32>, %pos: tensor<?xi32>, %qs: tensor<?xi32>,
                         %bt: tensor<?x?xi32>, %ql: tensor<?x2x16xf32>, %qr: tensor<?x2x4xf32>,
                         %x: tensor<?x32xf32>, %rows: tensor<?xi32>) -> (tensor<?x2x16xf32>, tensor<?x32xf32>) {
  %c1 = ds.paged_cache_write %c, %lat, %kr, %pos, %qs, %bt {layer = 1 : i64}
      : !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = bf16>, tensor<?x16xf32>, tensor<?x4xf32>,
        tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>
  %u = ds.paged_latent_attention %ql, %qr, %c1, %pos, %qs, %bt {layer = 1 : i64, scale = 0.3125 : f64}
      : tensor<?x2x16xf32>, tensor<?x2x4xf32>, !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = bf16>,
        tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x2x16xf32>
  %g = ds.gather_rows %x, %rows : tensor<?x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
  return %u, %g : tensor<?x2x16xf32>, tensor<?x32xf32>
}
