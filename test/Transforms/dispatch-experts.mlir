// RUN: ds-opt --split-input-file --ds-dispatch-experts %s | FileCheck %s

// Tests that a V3-style MoE (noaux_tc with bias, shared expert) becomes
// router logits -> route (bias passed on) -> permute by expert -> grouped
// matmuls over the permuted rows only -> combine -> + shared MLP.

// CHECK-LABEL: func.func @v3
// CHECK-SAME: (%[[X:.+]]: tensor<?x32xf32>)
// CHECK: %[[L:.+]] = ds.linear %[[X]], %[[R:.+]] : tensor<?x32xf32>, tensor<8x32xf32> -> tensor<?x8xf32>
// CHECK: %[[IDS:.+]], %[[W:.+]] = ds.moe_route %[[L]] bias(%[[B:.+]]) {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4, topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, {{.*}}>} : tensor<?x8xf32> bias(tensor<8xf32>) -> tensor<?x2xi32>, tensor<?x2xf32>
// CHECK: %[[XP:.+]], %[[OFF:.+]], %[[ROWS:.+]] = ds.moe_permute %[[X]], %[[IDS]] {num_experts = 8 : i64} : tensor<?x32xf32>, tensor<?x2xi32> -> tensor<?x32xf32>, tensor<9xi32>, tensor<?xi32>
// CHECK: %[[G:.+]] = ds.grouped_matmul %[[XP]], %[[EG:.+]], %[[OFF]] : tensor<?x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> -> tensor<?x12xf32>
// CHECK: %[[U:.+]] = ds.grouped_matmul %[[XP]], %{{.+}}, %[[OFF]]
// CHECK: %[[H:.+]] = ds.silu_mul %[[G]], %[[U]] : tensor<?x12xf32>
// CHECK: %[[D:.+]] = ds.grouped_matmul %[[H]], %{{.+}}, %[[OFF]] : tensor<?x12xf32>, tensor<8x32x12xf32>, tensor<9xi32> -> tensor<?x32xf32>
// CHECK: %[[Y:.+]] = ds.moe_combine %[[D]], %[[ROWS]], %[[W]]
// CHECK: %[[S:.+]] = ds.mlp %[[X]]
// CHECK: %[[SUM:.+]] = arith.addf %[[Y]], %[[S]] : tensor<?x32xf32>
// CHECK: return %[[SUM]]
// CHECK-NOT: ds.moe %
func.func @v3(%x: tensor<?x32xf32>) -> tensor<?x32xf32> {
  %r = ds.weight "r" : tensor<8x32xf32>
  %b = ds.weight "b" : tensor<8xf32>
  %g = ds.stacked_weight "e.*.g" : tensor<8x12x32xf32>
  %u = ds.stacked_weight "e.*.u" : tensor<8x12x32xf32>
  %d = ds.stacked_weight "e.*.d" : tensor<8x32x12xf32>
  %sg = ds.weight "sg" : tensor<12x32xf32>
  %su = ds.weight "su" : tensor<12x32xf32>
  %sd = ds.weight "sd" : tensor<32x12xf32>
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

// -----

// Tests that a V2 greedy MoE without shared experts has no bias and no
// shared MLP, and keeps static token counts (decode: 1 token x 2 slots).

// CHECK-LABEL: func.func @v2_decode
// CHECK: ds.moe_route %{{[^ ]+}} {config
// CHECK-SAME: -> tensor<1x2xi32>, tensor<1x2xf32>
// CHECK: ds.moe_permute {{.*}} -> tensor<2x32xf32>, tensor<7xi32>, tensor<2xi32>
// CHECK: ds.moe_combine
// CHECK-NOT: ds.mlp
// CHECK-NOT: arith.addf
func.func @v2_decode(%x: tensor<1x32xf32>, %r: tensor<6x32xbf16>, %g: tensor<6x12x32xbf16>,
                     %u: tensor<6x12x32xbf16>, %d: tensor<6x32x12xbf16>) -> tensor<1x32xf32> {
  %y = ds.moe %x router(%r) experts(%g, %u, %d)
      {config = #ds.moe_config<num_experts = 6, top_k = 2, n_group = 1, topk_group = 1,
         scoring_func = softmax, topk_method = greedy, norm_topk_prob = false,
         routed_scaling_factor = 16.0, norm_rule = v2, intermediate_size = 12,
         n_shared_experts = 0>}
      : tensor<1x32xf32> router(tensor<6x32xbf16>)
        experts(tensor<6x12x32xbf16>, tensor<6x12x32xbf16>, tensor<6x32x12xbf16>) -> tensor<1x32xf32>
  return %y : tensor<1x32xf32>
}
