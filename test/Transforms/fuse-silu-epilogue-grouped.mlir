// RUN: ds-opt --ds-fuse-silu-epilogue --split-input-file %s | FileCheck %s
// RUN: ds-opt --ds-fuse-silu-epilogue %s --split-input-file | ds-opt --convert-ds-to-loops --split-input-file | FileCheck %s --check-prefix=CPU
// RUN: ds-opt --ds-fuse-silu-epilogue %s --split-input-file | ds-opt --convert-ds-to-loops --split-input-file | FileCheck %s --check-prefix=BIND
// RUN: ds-opt --ds-fuse-silu-epilogue %s --split-input-file | ds-opt --convert-ds-to-loops="gemm-epilogue=false" --split-input-file | FileCheck %s --check-prefix=GPU

// The routed experts' gate and up grouped products and their SiLU-mul
// become one op; on the CPU one runtime call packs each expert's rows once
// for both products and writes only the product (its gate and up weights
// bound as GEMM-only, read in place); the GPU keeps the two grouped GEMMs
// and the SiLU-mul kernel.

// CHECK-LABEL: func.func @prefill
// CHECK: %[[WG:.+]] = ds.weight "experts.gate"
// CHECK: %[[WU:.+]] = ds.weight "experts.up"
// CHECK: %{{.+}}, %{{.+}}, %[[XP:.+]], %[[OFF:.+]], %{{.+}} = ds.moe_route_permute
// CHECK: %[[H:.+]] = ds.grouped_matmul_silu_mul %[[XP]], %[[WG]], %[[WU]], %[[OFF]] : tensor<?x32xf32>, tensor<8x12x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> -> tensor<?x12xf32>
// CHECK-NOT: ds.silu_mul
// CHECK: ds.grouped_matmul %[[H]], %{{.+}}, %[[OFF]]
// CPU-LABEL: func.func @prefill
// CPU: call @dsrt_grouped_linear_silu_mul_f32(
// CPU-NOT: call @dsrt_grouped_linear_silu_mul_f32(
// CPU-NOT: __ds_silu_mul
// CPU: call @dsrt_grouped_linear_f32(
// CPU-NOT: call @dsrt_grouped_linear_f32(
// BIND: ds.bindings = [{{.*}}{dequantize = false, gemm_only = true, index = 2 : i64, members = ["experts.gate"]{{.*}}}, {dequantize = false, gemm_only = true, index = 3 : i64, members = ["experts.up"]
// GPU-LABEL: func.func @prefill
// GPU-NOT: dsrt_grouped_linear_silu_mul_f32
// GPU: call @dsrt_grouped_linear_f32(
// GPU: call @dsrt_grouped_linear_f32(
// GPU: call @__ds_silu_mul_
// GPU: call @dsrt_grouped_linear_f32(
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
  %g = ds.grouped_matmul %xp, %wg, %off : tensor<?x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> -> tensor<?x12xf32>
  %u = ds.grouped_matmul %xp, %wu, %off : tensor<?x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> -> tensor<?x12xf32>
  %h = ds.silu_mul %g, %u : tensor<?x12xf32>
  %d = ds.grouped_matmul %h, %wd, %off : tensor<?x12xf32>, tensor<8x32x12xf32>, tensor<9xi32> -> tensor<?x32xf32>
  %y = ds.moe_combine %d, %rows, %rw : tensor<?x32xf32>, tensor<?xi32>, tensor<?x2xf32> -> tensor<?x32xf32>
  %hd = ds.weight "head" : tensor<64x32xf32>
  %l = ds.linear %y, %hd : tensor<?x32xf32>, tensor<64x32xf32> -> tensor<?x64xf32>
  return %l, %c : tensor<?x64xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>
}

// -----

// A gate product that feeds something else too, or gate and up over
// different offsets, stays as it is.
// CHECK-LABEL: func.func @not_fused
// CHECK-NOT: ds.grouped_matmul_silu_mul
// CHECK: ds.silu_mul
// CHECK-NOT: ds.grouped_matmul_silu_mul
// CHECK: ds.silu_mul
func.func @not_fused(%xp: tensor<?x32xf32>, %wg: tensor<8x12x32xf32>, %wu: tensor<8x12x32xf32>,
                     %off: tensor<9xi32>, %off2: tensor<9xi32>) -> (tensor<?x12xf32>, tensor<?x12xf32>, tensor<?x12xf32>) {
  %g = ds.grouped_matmul %xp, %wg, %off : tensor<?x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> -> tensor<?x12xf32>
  %u = ds.grouped_matmul %xp, %wu, %off : tensor<?x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> -> tensor<?x12xf32>
  %h = ds.silu_mul %g, %u : tensor<?x12xf32>
  %g2 = ds.grouped_matmul %xp, %wg, %off : tensor<?x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> -> tensor<?x12xf32>
  %u2 = ds.grouped_matmul %xp, %wu, %off2 : tensor<?x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> -> tensor<?x12xf32>
  %h2 = ds.silu_mul %g2, %u2 : tensor<?x12xf32>
  return %h, %h2, %g : tensor<?x12xf32>, tensor<?x12xf32>, tensor<?x12xf32>
}
