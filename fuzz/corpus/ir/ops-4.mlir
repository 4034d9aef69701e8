

// Tests that MoE without bias or shared experts (V2 greedy) round-trips.

// CHECK-LABEL: func.func @moe_v2
// CHECK: ds.moe %{{[^ ,)]+}} router(%{{[^ ,)]+}}) experts(
// CHECK-SAME: scoring_func = softmax, topk_method = greedy, norm_topk_prob = false, routed_scaling_factor = 16.0, norm_rule = v2
// CHECK-NOT: shared(
func.func @moe_v2(%x: tensor<?x32xf32>, %r: tensor<6x32xbf16>, %g: tensor<6x12x32xbf16>,
                  %u: tensor<6x12x32xbf16>, %d: tensor<6x32x12xbf16>) -> tensor<?x32xf32> {
  %y = ds.moe %x router(%r) experts(%g, %u, %d)
      {config = #ds.moe_config<num_experts = 6, top_k = 2, n_group = 1, topk_group = 1,
         scoring_func = softmax, topk_method = greedy, norm_topk_prob = false,
         routed_scaling_factor = 16.0, norm_rule = v2, intermediate_size = 12,
         n_shared_experts = 0>}
      : tensor<?x32xf32> router(tensor<6x32xbf16>)
        experts(tensor<6x12x32xbf16>, tensor<6x12x32xbf16>, tensor<6x32x12xbf16>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

