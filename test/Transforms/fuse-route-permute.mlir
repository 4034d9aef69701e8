// RUN: ds-opt --ds-fuse-route-permute --split-input-file %s | FileCheck %s

// Routing followed by the permutation of its experts becomes one op; the
// weights keep flowing to the combine.

// CHECK-LABEL: func.func @moe
// CHECK-NOT: ds.moe_route %
// CHECK-NOT: ds.moe_permute
// CHECK: %[[IDS:.+]], %[[W:.+]], %[[XP:.+]], %[[OFF:.+]], %[[ROWS:.+]] = ds.moe_route_permute %arg0, %arg1 bias(%arg2) {config = #ds.moe_config<{{.*}}>}
// CHECK: ds.grouped_matmul %[[XP]], %arg3, %[[OFF]]
// CHECK: ds.moe_combine %{{.+}}, %[[ROWS]], %[[W]]
func.func @moe(%logits: tensor<?x8xf32>, %x: tensor<?x32xf32>, %b: tensor<8xf32>,
               %w: tensor<8x32x32xf32>) -> tensor<?x32xf32> {
  %ids, %rw = ds.moe_route %logits bias(%b) {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4,
         topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true,
         routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>}
      : tensor<?x8xf32> bias(tensor<8xf32>) -> tensor<?x2xi32>, tensor<?x2xf32>
  %xp, %off, %rows = ds.moe_permute %x, %ids {num_experts = 8 : i64}
      : tensor<?x32xf32>, tensor<?x2xi32> -> tensor<?x32xf32>, tensor<9xi32>, tensor<?xi32>
  %g = ds.grouped_matmul %xp, %w, %off : tensor<?x32xf32>, tensor<8x32x32xf32>, tensor<9xi32> -> tensor<?x32xf32>
  %y = ds.moe_combine %g, %rows, %rw : tensor<?x32xf32>, tensor<?xi32>, tensor<?x2xf32> -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

// Ids read by something else as well: left alone.
// CHECK-LABEL: func.func @ids_escape
// CHECK: ds.moe_route %
// CHECK: ds.moe_permute
// CHECK-NOT: ds.moe_route_permute
func.func @ids_escape(%logits: tensor<?x8xf32>, %x: tensor<?x32xf32>, %b: tensor<8xf32>)
    -> (tensor<?x32xf32>, tensor<?x2xi32>) {
  %ids, %rw = ds.moe_route %logits bias(%b) {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4,
         topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true,
         routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>}
      : tensor<?x8xf32> bias(tensor<8xf32>) -> tensor<?x2xi32>, tensor<?x2xf32>
  %xp, %off, %rows = ds.moe_permute %x, %ids {num_experts = 8 : i64}
      : tensor<?x32xf32>, tensor<?x2xi32> -> tensor<?x32xf32>, tensor<9xi32>, tensor<?xi32>
  return %xp, %ids : tensor<?x32xf32>, tensor<?x2xi32>
}
