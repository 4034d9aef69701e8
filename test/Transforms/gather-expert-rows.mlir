// RUN: ds-opt --ds-gather-expert-rows --split-input-file %s | FileCheck %s
// RUN: ds-opt --ds-gather-expert-rows %s --split-input-file | ds-opt --convert-ds-to-loops="moe-row-loops=true" --split-input-file | FileCheck %s --check-prefix=CPU
// RUN: ds-opt --ds-gather-expert-rows %s --split-input-file | ds-opt --convert-ds-to-loops --split-input-file | FileCheck %s --check-prefix=BIND

// Tests that the experts' fused gate/up product of a routing's permuted
// rows reads the routing's input through row_of_slot instead, and that the
// routing then writes no rows: its kernel routes and counts but moves
// nothing, and the runtime call is the gather form, with row_of_slot
// before the result; the gate and up weights stay bound GEMM-only (read
// in place). The down product reads the SiLU-mul's rows (already
// one per slot) and keeps its form.

// CHECK-LABEL: func.func @prefill
// CHECK: %[[X:.+]] = ds.embedding
// CHECK: %[[IDS:.+]], %[[RW:.+]], %[[OFF:.+]], %[[ROWS:.+]] = ds.moe_route_permute %{{.+}}, %[[X]] {{.*}} -> tensor<?x2xi32>, tensor<?x2xf32>, tensor<9xi32>, tensor<?xi32>
// CHECK: %[[H:.+]] = ds.grouped_matmul_silu_mul %[[X]], %{{.+}}, %{{.+}}, %[[OFF]] gather(%[[ROWS]]) : tensor<?x32xf32>, tensor<8x12x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> gather(tensor<?xi32>) -> tensor<?x12xf32>
// CHECK: %[[D:.+]] = ds.grouped_matmul %[[H]], %{{.+}}, %[[OFF]] : tensor<?x12xf32>
// CHECK: ds.moe_combine %[[D]], %[[ROWS]], %[[RW]]

// BIND: ds.bindings = [{{.*}}{dequantize = false, gemm_only = true, index = 2 : i64, members = ["experts.gate"]{{.*}}}, {dequantize = false, gemm_only = true, index = 3 : i64, members = ["experts.up"]
// CPU-LABEL: func.func @prefill
// CPU: call @__ds_moe_route_permute
// CPU: call @dsrt_grouped_linear_silu_mul_gather_f32(%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}) : (!llvm.ptr, memref<?x?xf32>, memref<?x?x?xf32>, memref<?x?x?xf32>, memref<?xi32>, memref<?xi32>, memref<?x?xf32>) -> ()
// CPU: call @dsrt_grouped_linear_f32(
// The routing kernel writes offsets and row_of_slot, and reads no x.
// CPU-LABEL: func.func private @__ds_moe_route_permute
// CPU-NOT: memref<?x32xf32>
// CPU: return
func.func @prefill(%tok: tensor<?xi32>, %pos: tensor<?xi32>,
                   %c: !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>)
    -> (tensor<?x64xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>) {
  %e = ds.weight "embed" : tensor<64x32xf32>
  %x = ds.embedding %e, %tok : tensor<64x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
  %r = ds.weight "router" : tensor<8x32xf32>
  %wg = ds.weight "experts.gate" : tensor<8x12x32xf32>
  %wu = ds.weight "experts.up" : tensor<8x12x32xf32>
  %wd = ds.weight "experts.down" : tensor<8x32x12xf32>
  %logits = ds.linear %x, %r : tensor<?x32xf32>, tensor<8x32xf32> -> tensor<?x8xf32>
  %ids, %rw, %xp, %off, %rows = ds.moe_route_permute %logits, %x {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 1,
         topk_group = 1, scoring_func = softmax, topk_method = greedy, norm_topk_prob = false,
         routed_scaling_factor = 1.0, norm_rule = v2, intermediate_size = 12, n_shared_experts = 0>}
      : tensor<?x8xf32>, tensor<?x32xf32> -> tensor<?x2xi32>, tensor<?x2xf32>, rows(tensor<?x32xf32>), tensor<9xi32>, tensor<?xi32>
  %h = ds.grouped_matmul_silu_mul %xp, %wg, %wu, %off : tensor<?x32xf32>, tensor<8x12x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> -> tensor<?x12xf32>
  %d = ds.grouped_matmul %h, %wd, %off : tensor<?x12xf32>, tensor<8x32x12xf32>, tensor<9xi32> -> tensor<?x32xf32>
  %y = ds.moe_combine %d, %rows, %rw : tensor<?x32xf32>, tensor<?xi32>, tensor<?x2xf32> -> tensor<?x32xf32>
  %hd = ds.weight "head" : tensor<64x32xf32>
  %l = ds.linear %y, %hd : tensor<?x32xf32>, tensor<64x32xf32> -> tensor<?x64xf32>
  return %l, %c : tensor<?x64xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>
}

// -----

// Tests that unfused grouped products gather too (the silu_mul between
// them stays), and that a routing whose permuted rows something else still
// reads keeps writing them: here the rows are also returned.

// CHECK-LABEL: func.func @rows_escape
// CHECK-SAME: (%[[LOGITS:[^:]+]]: tensor<?x8xf32>, %[[X:[^:]+]]: tensor<?x32xf32>
// CHECK: %{{.+}}, %{{.+}}, %[[XP:.+]], %[[OFF:.+]], %[[ROWS:.+]] = ds.moe_route_permute {{.*}} rows(tensor<?x32xf32>)
// CHECK: ds.grouped_matmul %[[X]], %{{.+}}, %[[OFF]] gather(%[[ROWS]])
// CHECK: ds.grouped_matmul %[[X]], %{{.+}}, %[[OFF]] gather(%[[ROWS]])
// CHECK: ds.silu_mul
// CHECK: return %{{.+}}, %[[XP]]

func.func @rows_escape(%logits: tensor<?x8xf32>, %x: tensor<?x32xf32>, %wg: tensor<8x12x32xf32>,
                       %wu: tensor<8x12x32xf32>) -> (tensor<?x12xf32>, tensor<?x32xf32>) {
  %ids, %rw, %xp, %off, %rows = ds.moe_route_permute %logits, %x {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 1,
         topk_group = 1, scoring_func = softmax, topk_method = greedy, norm_topk_prob = false,
         routed_scaling_factor = 1.0, norm_rule = v2, intermediate_size = 12, n_shared_experts = 0>}
      : tensor<?x8xf32>, tensor<?x32xf32> -> tensor<?x2xi32>, tensor<?x2xf32>, rows(tensor<?x32xf32>), tensor<9xi32>, tensor<?xi32>
  %g = ds.grouped_matmul %xp, %wg, %off : tensor<?x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> -> tensor<?x12xf32>
  %u = ds.grouped_matmul %xp, %wu, %off : tensor<?x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> -> tensor<?x12xf32>
  %h = ds.silu_mul %g, %u : tensor<?x12xf32>
  return %h, %xp : tensor<?x12xf32>, tensor<?x32xf32>
}

// -----

// Tests that expert parallelism's unfused ds.moe_permute, whose rows feed
// the exchange, is left alone.

// CHECK-LABEL: func.func @unfused
// CHECK: %[[XP:.+]], %[[OFF:.+]], %{{.+}} = ds.moe_permute
// CHECK: ds.grouped_matmul %[[XP]], %{{.+}}, %[[OFF]] :
// CHECK-NOT: gather
func.func @unfused(%x: tensor<?x32xf32>, %ids: tensor<?x2xi32>, %wg: tensor<8x12x32xf32>) -> tensor<?x12xf32> {
  %xp, %off, %rows = ds.moe_permute %x, %ids {num_experts = 8 : i64}
      : tensor<?x32xf32>, tensor<?x2xi32> -> tensor<?x32xf32>, tensor<9xi32>, tensor<?xi32>
  %g = ds.grouped_matmul %xp, %wg, %off : tensor<?x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> -> tensor<?x12xf32>
  return %g : tensor<?x12xf32>
}
