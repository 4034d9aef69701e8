// RUN: ds-opt %s --ds-shard-model="ep=2 dp-attention=true" | FileCheck %s

// Tests ds-shard-model with data-parallel attention: the MoE input is
// annotated as split along its tokens (each rank's own sequences), the
// routed experts by expert, and the shared expert and the dense MLP stay
// whole (no annotation: replicated).
// CHECK: shard.grid @ranks(shape = 2)
// CHECK-LABEL: func.func @moe
// CHECK-NOT: shard.shard {{.*}} tensor<48x32xf32>
// CHECK: %[[H:.+]] = ds.mlp
// CHECK: %[[TOKENS:.+]] = shard.sharding @ranks split_axes = {{\[\[}}0]]
// CHECK: %[[MINE:.+]] = shard.shard %[[H]] to %[[TOKENS]] annotate_for_users : tensor<?x32xf32>
// CHECK-NOT: shard.shard {{.*}} tensor<12x32xf32>
// CHECK: shard.shard %{{.+}} annotate_for_users : tensor<8x12x32xf32>
// CHECK-NOT: shard.shard {{.*}} tensor<32x12xf32>
// CHECK: ds.moe %[[MINE]]
module {
  func.func @moe(%x: tensor<?x32xf32>) -> tensor<?x32xf32> {
    %g = ds.weight "g" : tensor<48x32xf32>
    %u = ds.weight "u" : tensor<48x32xf32>
    %d = ds.weight "d" : tensor<32x48xf32>
    %h = ds.mlp %x, %g, %u, %d : tensor<?x32xf32>, tensor<48x32xf32>, tensor<48x32xf32>, tensor<32x48xf32> -> tensor<?x32xf32>
    %r = ds.weight "r" : tensor<8x32xf32>
    %b = ds.weight "b" : tensor<8xf32>
    %eg = ds.stacked_weight "e.*.g" : tensor<8x12x32xf32>
    %eu = ds.stacked_weight "e.*.u" : tensor<8x12x32xf32>
    %ed = ds.stacked_weight "e.*.d" : tensor<8x32x12xf32>
    %sg = ds.weight "sg" : tensor<12x32xf32>
    %su = ds.weight "su" : tensor<12x32xf32>
    %sd = ds.weight "sd" : tensor<32x12xf32>
    %y = ds.moe %h router(%r) bias(%b) experts(%eg, %eu, %ed) shared(%sg, %su, %sd) {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4, topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true, routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>} : tensor<?x32xf32> router(tensor<8x32xf32>) bias(tensor<8xf32>) experts(tensor<8x12x32xf32>, tensor<8x12x32xf32>, tensor<8x32x12xf32>) shared(tensor<12x32xf32>, tensor<12x32xf32>, tensor<32x12xf32>) -> tensor<?x32xf32>
    return %y : tensor<?x32xf32>
  }
}
