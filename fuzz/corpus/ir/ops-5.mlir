

// Tests that the kernel-level ops (what ds-absorb-mla and ds-dispatch-experts
// produce) round-trip.

// CHECK-LABEL: func.func @kernels
// CHECK: ds.rope %{{[^ ,)]+}}, %{{[^ ,)]+}} {config = #ds.mla_config<{{.*}}>} : tensor<?x2x4xf32>, tensor<?xi32>
// CHECK: ds.cache_write %{{[^ ,)]+}}, %{{[^ ,)]+}}, %{{[^ ,)]+}}, %{{[^ ,)]+}} {layer = 0 : i64} : !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>, tensor<?x16xf32>, tensor<?x4xf32>, tensor<?xi32>
// CHECK: ds.head_matmul {{.*}} {group = 16 : i64, offset = 0 : i64, rows = 8 : i64} : tensor<?x2x8xf32>, tensor<32x16xf32> -> tensor<?x2x16xf32>
// CHECK: ds.latent_attention {{.*}} {layer = 0 : i64, scale = 3.125000e-01 : f64} : tensor<?x2x16xf32>, tensor<?x2x4xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>, tensor<?xi32> -> tensor<?x2x16xf32>
// CHECK: ds.head_matmul {{.*}} transpose}
// CHECK: ds.moe_route %{{[^ ,)]+}} bias(%{{[^ ,)]+}}) {config = #ds.moe_config<{{.*}}>} : tensor<?x8xf32> bias(tensor<8xf32>) -> tensor<?x2xi32>, tensor<?x2xf32>
// CHECK: ds.moe_permute {{.*}} {num_experts = 8 : i64} : tensor<?x32xf32>, tensor<?x2xi32> -> tensor<?x32xf32>, tensor<9xi32>, tensor<?xi32>
// CHECK: ds.grouped_matmul {{.*}} : tensor<?x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> -> tensor<?x12xf32>
// CHECK: ds.silu_mul {{.*}} : tensor<?x12xf32>
// CHECK: ds.moe_combine {{.*}} : tensor<?x12xf32>, tensor<?xi32>, tensor<?x2xf32> -> tensor<?x12xf32>
func.func @kernels(%q: tensor<?x2x4xf32>, %pos: tensor<?xi32>, %lat: tensor<?x16xf32>, %kr: tensor<?x4xf32>,
                   %c: !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>, %qn: tensor<?x2x8xf32>,
                   %kvb: tensor<32x16xf32>, %logits: tensor<?x8xf32>, %b: tensor<8xf32>, %x: tensor<?x32xf32>,
                   %w: tensor<8x12x32xf32>) -> (tensor<?x2x8xf32>, tensor<?x12xf32>) {
  %r = ds.rope %q, %pos {config = #ds.mla_config<num_heads = 2, kv_lora_rank = 16, qk_nope_head_dim = 8,
         qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.3125, rope_theta = 10000.0>}
      : tensor<?x2x4xf32>, tensor<?xi32>
  %c1 = ds.cache_write %c, %lat, %kr, %pos {layer = 0 : i64}
      : !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>, tensor<?x16xf32>, tensor<?x4xf32>, tensor<?xi32>
  %ql = ds.head_matmul %qn, %kvb {group = 16 : i64, offset = 0 : i64, rows = 8 : i64}
      : tensor<?x2x8xf32>, tensor<32x16xf32> -> tensor<?x2x16xf32>
  %u = ds.latent_attention %ql, %r, %c1, %pos {layer = 0 : i64, scale = 0.3125 : f64}
      : tensor<?x2x16xf32>, tensor<?x2x4xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>, tensor<?xi32> -> tensor<?x2x16xf32>
  %o = ds.head_matmul %u, %kvb {group = 16 : i64, offset = 8 : i64, rows = 8 : i64, transpose}
      : tensor<?x2x16xf32>, tensor<32x16xf32> -> tensor<?x2x8xf32>
  %ids, %rw = ds.moe_route %logits bias(%b) {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4,
         topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true,
         routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>}
      : tensor<?x8xf32> bias(tensor<8xf32>) -> tensor<?x2xi32>, tensor<?x2xf32>
  %xp, %off, %rows = ds.moe_permute %x, %ids {num_experts = 8 : i64}
      : tensor<?x32xf32>, tensor<?x2xi32> -> tensor<?x32xf32>, tensor<9xi32>, tensor<?xi32>
  %g = ds.grouped_matmul %xp, %w, %off : tensor<?x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> -> tensor<?x12xf32>
  %h = ds.silu_mul %g, %g : tensor<?x12xf32>
  %y = ds.moe_combine %h, %rows, %rw : tensor<?x12xf32>, tensor<?xi32>, tensor<?x2xf32> -> tensor<?x12xf32>
  return %o, %y : tensor<?x2x8xf32>, tensor<?x12xf32>
}
