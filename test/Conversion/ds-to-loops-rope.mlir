// RUN: ds-opt --convert-ds-to-loops %s | FileCheck %s

// Tests that rope computes one angle (and one f64 cos and sin) per
// (token, pair) and rotates every head's pair with it in an inner loop,
// rather than recomputing the same sin and cos for each head.

// CHECK-LABEL: func.func @prefill
// CHECK: call @[[ROPE:__ds_rope_[0-9a-f]+]](
// CHECK: func.func private @[[ROPE]](%[[X:.+]]: memref<?x3x4xf32>, %[[P:.+]]: memref<?xi32>, %[[O:.+]]: memref<?x3x4xf32>) attributes {ds.kernel = "rope"
// CHECK: %[[F:.+]] = memref.get_global @__ds_rope_freqs_{{[0-9]+}} : memref<2xf64>
// CHECK: scf.parallel (%[[T:.+]], %[[I:.+]]) = (%{{.+}}, %{{.+}}) to (%{{.+}}, %{{.+}})
// CHECK: %[[A:.+]] = arith.mulf %{{.+}}, %{{.+}} : f64
// CHECK: math.cos %[[A]] : f64
// CHECK: math.sin %[[A]] : f64
// CHECK-NOT: math.cos
// CHECK: scf.for %[[H:.+]] = %{{.+}} to %{{.+}} step
// CHECK: memref.load %[[X]][%[[T]], %[[H]], %{{.+}}] : memref<?x3x4xf32>
// CHECK: memref.store %{{.+}}, %[[O]][%[[T]], %[[H]], %{{.+}}] : memref<?x3x4xf32>
// CHECK-NOT: math.sin
// CHECK: scf.reduce
func.func @prefill(%tok: tensor<?xi32>, %pos: tensor<?xi32>,
                   %c: !ds.latent_cache<num_layers = 2, width = 20, element_type = f32>)
    -> (tensor<?x12xf32>, !ds.latent_cache<num_layers = 2, width = 20, element_type = f32>) {
  %e = ds.weight "embed" : tensor<64x12xf32>
  %x = ds.embedding %e, %tok : tensor<64x12xf32>, tensor<?xi32> -> tensor<?x12xf32>
  %c0 = arith.constant 0 : index
  %n = tensor.dim %x, %c0 : tensor<?x12xf32>
  %q = tensor.expand_shape %x [[0], [1, 2]] output_shape [%n, 3, 4] : tensor<?x12xf32> into tensor<?x3x4xf32>
  %r = ds.rope %q, %pos {config = #ds.mla_config<num_heads = 3, kv_lora_rank = 16, qk_nope_head_dim = 8, qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.3125, rope_theta = 10000.0>} : tensor<?x3x4xf32>, tensor<?xi32>
  %y = tensor.collapse_shape %r [[0], [1, 2]] : tensor<?x3x4xf32> into tensor<?x12xf32>
  return %y, %c : tensor<?x12xf32>, !ds.latent_cache<num_layers = 2, width = 20, element_type = f32>
}
