

// Tests that MoE with a router bias and shared experts round-trips, stacked
// expert weights included.

// CHECK-LABEL: func.func @moe_v3
// CHECK: ds.stacked_weight "model.layers.1.mlp.experts.*.gate_proj.weight" : tensor<8x12x32xf32>
// CHECK: ds.moe %{{[^ ,)]+}} router(%{{[^ ,)]+}}) bias(%{{[^ ,)]+}}) experts(%{{[^ ,)]+}}, %{{[^ ,)]+}}, %{{[^ ,)]+}}) shared(%{{[^ ,)]+}}, %{{[^ ,)]+}}, %{{[^ ,)]+}})
// CHECK-SAME: #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4, topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true, routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>
func.func @moe_v3(%x: tensor<?x32xf32>) -> tensor<?x32xf32> {
  %r = ds.weight "model.layers.1.mlp.gate.weight" : tensor<8x32xf32>
  %b = ds.weight "model.layers.1.mlp.gate.e_score_correction_bias" : tensor<8xf32>
  %g = ds.stacked_weight "model.layers.1.mlp.experts.*.gate_proj.weight" : tensor<8x12x32xf32>
  %u = ds.stacked_weight "model.layers.1.mlp.experts.*.up_proj.weight" : tensor<8x12x32xf32>
  %d = ds.stacked_weight "model.layers.1.mlp.experts.*.down_proj.weight" : tensor<8x32x12xf32>
  %sg = ds.weight "model.layers.1.mlp.shared_experts.gate_proj.weight" : tensor<12x32xf32>
  %su = ds.weight "model.layers.1.mlp.shared_experts.up_proj.weight" : tensor<12x32xf32>
  %sd = ds.weight "model.layers.1.mlp.shared_experts.down_proj.weight" : tensor<32x12xf32>
  %y = ds.moe %x router(%r) bias(%b) experts(%g, %u, %d) shared(%sg, %su, %sd)
      {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4, topk_group = 2,
         scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true,
         routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12,
         n_shared_experts = 1>}
      : tensor<?x32xf32> router(tensor<8x32xf32>) bias(tensor<8xf32>)
        experts(tensor<8x12x32xf32>, tensor<8x12x32xf32>, tensor<8x32x12xf32>)
        shared(tensor<12x32xf32>, tensor<12x32xf32>, tensor<32x12xf32>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

