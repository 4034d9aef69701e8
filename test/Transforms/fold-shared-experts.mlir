// RUN: ds-opt --ds-fold-shared-experts --split-input-file %s | FileCheck %s

// combine(routed experts) + shared MLP of the same input, the shared MLP
// one expert wide: the shared projections become expert 8 of each stack,
// the routing sends every token there too (shared_experts = 1: ids and
// weights get a column, offsets an entry, a static row count one row per
// token), and the combine does the addition.

// CHECK-LABEL: func.func @moe
// CHECK: %[[IDS:.+]], %[[W:.+]], %[[XP:.+]], %[[OFF:.+]], %[[ROWS:.+]] = ds.moe_route_permute %arg0, %arg1 bias(%arg2) {config = #ds.moe_config<{{.*}}>, shared_experts = 1 : i64} : tensor<4x8xf32>, tensor<4x32xf32> bias(tensor<8xf32>) -> tensor<4x3xi32>, tensor<4x3xf32>, rows(tensor<12x32xf32>), tensor<10xi32>, tensor<12xi32>
// CHECK: %[[WG:.+]] = ds.concat_weights %arg3, %arg6 : tensor<8x12x32xf32>, tensor<12x32xf32> -> tensor<9x12x32xf32>
// CHECK: %[[WU:.+]] = ds.concat_weights %arg4, %arg7 : tensor<8x12x32xf32>, tensor<12x32xf32> -> tensor<9x12x32xf32>
// CHECK: %[[WD:.+]] = ds.concat_weights %arg5, %arg8 : tensor<8x32x12xf32>, tensor<32x12xf32> -> tensor<9x32x12xf32>
// CHECK: %[[G:.+]] = ds.grouped_matmul %[[XP]], %[[WG]], %[[OFF]] : tensor<12x32xf32>, tensor<9x12x32xf32>, tensor<10xi32> -> tensor<12x12xf32>
// CHECK: %[[D:.+]] = ds.grouped_matmul %{{.+}}, %[[WD]], %[[OFF]]
// CHECK: %[[Y:.+]] = ds.moe_combine %[[D]], %[[ROWS]], %[[W]] : tensor<12x32xf32>, tensor<12xi32>, tensor<4x3xf32> -> tensor<4x32xf32>
// CHECK-NOT: ds.linear
// CHECK-NOT: arith.addf
// CHECK: return %[[Y]]
func.func @moe(%logits: tensor<4x8xf32>, %x: tensor<4x32xf32>, %b: tensor<8xf32>,
               %wg: tensor<8x12x32xf32>, %wu: tensor<8x12x32xf32>, %wd: tensor<8x32x12xf32>,
               %sg: tensor<12x32xf32>, %su: tensor<12x32xf32>, %sd: tensor<32x12xf32>) -> tensor<4x32xf32> {
  %ids, %rw, %xp, %off, %rows = ds.moe_route_permute %logits, %x bias(%b) {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4,
         topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true,
         routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>}
      : tensor<4x8xf32>, tensor<4x32xf32> bias(tensor<8xf32>) -> tensor<4x2xi32>, tensor<4x2xf32>, rows(tensor<8x32xf32>), tensor<9xi32>, tensor<8xi32>
  %g = ds.grouped_matmul %xp, %wg, %off : tensor<8x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> -> tensor<8x12xf32>
  %u = ds.grouped_matmul %xp, %wu, %off : tensor<8x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> -> tensor<8x12xf32>
  %h = ds.silu_mul %g, %u : tensor<8x12xf32>
  %d = ds.grouped_matmul %h, %wd, %off : tensor<8x12xf32>, tensor<8x32x12xf32>, tensor<9xi32> -> tensor<8x32xf32>
  %r = ds.moe_combine %d, %rows, %rw : tensor<8x32xf32>, tensor<8xi32>, tensor<4x2xf32> -> tensor<4x32xf32>
  %sgx = ds.linear %x, %sg : tensor<4x32xf32>, tensor<12x32xf32> -> tensor<4x12xf32>
  %sux = ds.linear %x, %su : tensor<4x32xf32>, tensor<12x32xf32> -> tensor<4x12xf32>
  %sh = ds.silu_mul %sgx, %sux : tensor<4x12xf32>
  %s = ds.linear %sh, %sd : tensor<4x12xf32>, tensor<32x12xf32> -> tensor<4x32xf32>
  %y = arith.addf %r, %s : tensor<4x32xf32>
  return %y : tensor<4x32xf32>
}

// -----

// Two shared experts in one [2F, D] projection (V2, V2-Lite) do not fit an
// expert's stack: left as they are.
// CHECK-LABEL: func.func @wide_shared
// CHECK: ds.moe_route_permute
// CHECK-NOT: >, shared_experts
// CHECK: arith.addf
func.func @wide_shared(%logits: tensor<?x8xf32>, %x: tensor<?x32xf32>,
               %wg: tensor<8x12x32xf32>, %wu: tensor<8x12x32xf32>, %wd: tensor<8x32x12xf32>,
               %sg: tensor<24x32xf32>, %su: tensor<24x32xf32>, %sd: tensor<32x24xf32>) -> tensor<?x32xf32> {
  %ids, %rw, %xp, %off, %rows = ds.moe_route_permute %logits, %x {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 1,
         topk_group = 1, scoring_func = softmax, topk_method = greedy, norm_topk_prob = false,
         routed_scaling_factor = 1.0, norm_rule = v2, intermediate_size = 12, n_shared_experts = 2>}
      : tensor<?x8xf32>, tensor<?x32xf32> -> tensor<?x2xi32>, tensor<?x2xf32>, rows(tensor<?x32xf32>), tensor<9xi32>, tensor<?xi32>
  %g = ds.grouped_matmul %xp, %wg, %off : tensor<?x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> -> tensor<?x12xf32>
  %u = ds.grouped_matmul %xp, %wu, %off : tensor<?x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> -> tensor<?x12xf32>
  %h = ds.silu_mul %g, %u : tensor<?x12xf32>
  %d = ds.grouped_matmul %h, %wd, %off : tensor<?x12xf32>, tensor<8x32x12xf32>, tensor<9xi32> -> tensor<?x32xf32>
  %r = ds.moe_combine %d, %rows, %rw : tensor<?x32xf32>, tensor<?xi32>, tensor<?x2xf32> -> tensor<?x32xf32>
  %sgx = ds.linear %x, %sg : tensor<?x32xf32>, tensor<24x32xf32> -> tensor<?x24xf32>
  %sux = ds.linear %x, %su : tensor<?x32xf32>, tensor<24x32xf32> -> tensor<?x24xf32>
  %sh = ds.silu_mul %sgx, %sux : tensor<?x24xf32>
  %s = ds.linear %sh, %sd : tensor<?x24xf32>, tensor<32x24xf32> -> tensor<?x32xf32>
  %y = arith.addf %r, %s : tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}
