// RUN: ds-opt --split-input-file --ds-map-kernels-to-gpu %s | FileCheck %s

// Tests that MoE routing becomes one block per token (V3: 256 experts, one
// per thread; 8 groups of 32, top-4 groups, top-8): sigmoid scores and
// bias-added keys in shared memory, a barrier, the group scores by warp
// butterflies merging top-2 pairs, the kept groups as a bit mask from
// butterfly argmaxes over (value, index) pairs, then top-k rounds (a
// butterfly, the warps' winners through shared memory, a barrier each),
// and the normalised, scaled weights written by threads j < top_k. The
// CPU's nest it replaces is gone; the counting sort after it keeps the
// generic mapping.

// CHECK-LABEL: func.func private @route_permute
// CHECK-SAME: ds.block_per_token
// CHECK: gpu.launch blocks({{.*}}) in ({{.*}} = %dim{{.*}}, {{.*}}) threads({{.*}}) in ({{.*}} = %c256{{.*}}) workgroup(%[[SC:.+]] : memref<256xf32, #gpu.address_space<workgroup>>, %[[SEL:.+]] : memref<256xf32, #gpu.address_space<workgroup>>, %[[TV:.+]] : memref<64xf32, #gpu.address_space<workgroup>>, %[[TI:.+]] : memref<64xi32, #gpu.address_space<workgroup>>, %[[GS:.+]] : memref<8xf32, #gpu.address_space<workgroup>>)
// Scores and keys.
// CHECK: math.exp
// CHECK: memref.store %{{.+}}, %[[SC]]
// CHECK: memref.load %arg12
// CHECK: arith.cmpf uno
// CHECK: memref.store %{{.+}}, %[[SEL]]
// CHECK: gpu.barrier
// Groups: warp w scores groups w, w + 8, ...; top-2 pairs merged.
// CHECK: scf.for %{{.+}} = %{{.+}} to %c8 step %c8
// CHECK: scf.for %{{.+}} = %{{.+}} to %c32{{[_0-9]*}} step %c32
// CHECK: gpu.shuffle xor %{{.+}}, %c16_i32, %c32_i32 : f32
// CHECK: arith.minimumf
// CHECK: arith.maximumf
// CHECK: memref.store %{{.+}}, %[[GS]]
// CHECK: gpu.barrier
// The kept groups: topk_group (4) rounds of a lane-per-group argmax.
// CHECK: scf.for %{{.+}} = %c0{{[_0-9]*}} to %c4 step %c1{{[_0-9]*}} iter_args
// CHECK: gpu.shuffle xor %{{.+}} : i32
// CHECK: arith.shli
// CHECK: arith.ori
// Top-k: 8 rounds over the kept experts.
// CHECK: scf.for %{{.+}} = %c0{{[_0-9]*}} to %c8{{[_0-9]*}} step %c1{{[_0-9]*}} iter_args
// CHECK: arith.shrui
// CHECK: arith.cmpi slt
// CHECK: gpu.shuffle xor
// CHECK: memref.store %{{.+}}, %[[TV]]
// CHECK: memref.store %{{.+}}, %[[TI]]
// CHECK: gpu.barrier
// CHECK: memref.store %cst{{.*}}, %[[SEL]]
// CHECK: memref.load %[[SC]]
// CHECK: arith.divf
// CHECK: memref.store %{{.+}}, %arg1[
// CHECK: memref.store %{{.+}}, %arg2[
// CHECK: gpu.terminator
// The counting sort: the generic one-thread launch.
// CHECK: gpu.launch blocks({{.*}}) in ({{.*}} = %c1{{.*}}) threads({{.*}}) in ({{.*}} = %c1
// CHECK: memref.store %{{.+}}, %arg9
// CHECK-NOT: scf.parallel
func.func private @route_permute(%logits: memref<?x256xf32>, %ids: memref<?x9xi32>, %w: memref<?x9xf32>,
    %scores: memref<?x256xf32>, %sel: memref<?x256xf32>, %gs: memref<?x8xf32>, %gk: memref<?x8xf32>,
    %x: memref<?x16xf32>, %xp: memref<?x16xf32>, %off: memref<258xi32>, %rows: memref<?xi32>,
    %cursor: memref<257xi32>, %bias: memref<256xf32>)
    attributes {ds.kernel = "moe_route_permute", ds.moe_bias,
                ds.moe_config = #ds.moe_config<num_experts = 256, top_k = 8, n_group = 8, topk_group = 4,
                  scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true,
                  routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 16, n_shared_experts = 1>} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c258 = arith.constant 258 : index
  %zero = arith.constant 0 : i32
  %one = arith.constant 1.0 : f32
  %t = memref.dim %logits, %c0 : memref<?x256xf32>
  // Stands for the CPU's routing nest (one iteration per token).
  scf.parallel (%i) = (%c0) to (%t) step (%c1) {
    memref.store %one, %scores[%i, %c0] : memref<?x256xf32>
  }
  scf.for %e = %c0 to %c258 step %c1 {
    memref.store %zero, %off[%e] : memref<258xi32>
  }
  return
}

// -----

// Tests that softmax scoring takes a block max and a block sum (each a
// butterfly and the warps' partials through shared memory), that greedy
// routing has no group stage, and that 64 experts get 64 threads.

// CHECK-LABEL: func.func private @route_softmax
// CHECK-SAME: ds.block_per_token
// CHECK: gpu.launch {{.*}} threads({{.*}}) in ({{.*}} = %c64{{.*}}) workgroup(%{{.+}} : memref<64xf32, {{.*}}>, %{{.+}} : memref<64xf32, {{.*}}>, %{{.+}} : memref<12xf32, {{.*}}>, %{{.+}} : memref<12xi32, {{.*}}>, %[[MX:.+]] : memref<2xf32, {{.*}}>, %[[SUM:.+]] : memref<2xf32, {{.*}}>)
// CHECK: arith.maximumf
// CHECK: gpu.shuffle xor
// CHECK: memref.store %{{.+}}, %[[MX]]
// CHECK: gpu.barrier
// CHECK: math.exp
// CHECK: gpu.shuffle xor
// CHECK: memref.store %{{.+}}, %[[SUM]]
// CHECK: gpu.barrier
// CHECK: arith.divf
// CHECK-NOT: arith.shrui
// CHECK: scf.for %{{.+}} = %c0{{[_0-9]*}} to %c6{{[_0-9]*}} step %c1{{[_0-9]*}} iter_args
// V2-Lite: not normalised, scaled by 1.0, so no division by the sum.
// CHECK-NOT: arith.divf
// CHECK: gpu.terminator
func.func private @route_softmax(%logits: memref<?x64xf32>, %ids: memref<?x6xi32>, %w: memref<?x6xf32>,
    %scores: memref<?x64xf32>, %sel: memref<?x64xf32>)
    attributes {ds.kernel = "moe_route",
                ds.moe_config = #ds.moe_config<num_experts = 64, top_k = 6, n_group = 1, topk_group = 1,
                  scoring_func = softmax, topk_method = greedy, norm_topk_prob = false,
                  routed_scaling_factor = 1.0, norm_rule = v2, intermediate_size = 16, n_shared_experts = 2>} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %t = memref.dim %logits, %c0 : memref<?x64xf32>
  scf.parallel (%i) = (%c0) to (%t) step (%c1) {
  }
  return
}
