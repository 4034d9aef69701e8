// RUN: ds-opt --split-input-file %s | ds-opt --split-input-file | FileCheck %s

// Tests that weight references, dequantisation and the dense blocks round-trip.

// CHECK-LABEL: func.func @dense_blocks
func.func @dense_blocks(%ids: tensor<?xi32>) -> tensor<?x64xf32> {
  // CHECK: %[[TABLE:.+]] = ds.weight "model.embed_tokens.weight" : tensor<64x32xbf16>
  %table = ds.weight "model.embed_tokens.weight" : tensor<64x32xbf16>
  // CHECK: %[[X:.+]] = ds.embedding %[[TABLE]], %{{[^ ,)]+}} : tensor<64x32xbf16>, tensor<?xi32> -> tensor<?x32xf32>
  %x = ds.embedding %table, %ids : tensor<64x32xbf16>, tensor<?xi32> -> tensor<?x32xf32>
  %nw = ds.weight "model.layers.0.input_layernorm.weight" : tensor<32xf32>
  // CHECK: ds.rms_norm %[[X]], %{{[^ ,)]+}} {eps = 9.9999999999999995E-7 : f64} : tensor<?x32xf32>, tensor<32xf32> -> tensor<?x32xf32>
  %n = ds.rms_norm %x, %nw {eps = 1.0e-06 : f64} : tensor<?x32xf32>, tensor<32xf32> -> tensor<?x32xf32>
  %q = ds.weight "model.layers.0.self_attn.q_a_proj.weight" : tensor<24x32xf8E4M3FN>
  %s = ds.weight "model.layers.0.self_attn.q_a_proj.weight_scale_inv" : tensor<1x1xf32>
  // CHECK: ds.dequantize %{{[^ ,)]+}}, %{{[^ ,)]+}} {block_size = 128 : i64} : tensor<24x32xf8E4M3FN>, tensor<1x1xf32> -> tensor<24x32xf32>
  %w = ds.dequantize %q, %s {block_size = 128 : i64} : tensor<24x32xf8E4M3FN>, tensor<1x1xf32> -> tensor<24x32xf32>
  // CHECK: ds.linear
  %l = ds.linear %n, %w : tensor<?x32xf32>, tensor<24x32xf32> -> tensor<?x24xf32>
  %g = ds.weight "model.layers.0.mlp.gate_proj.weight" : tensor<48x32xf32>
  %u = ds.weight "model.layers.0.mlp.up_proj.weight" : tensor<48x32xf32>
  %d = ds.weight "model.layers.0.mlp.down_proj.weight" : tensor<32x48xf32>
  // CHECK: ds.mlp %{{[^ ,)]+}}, %{{[^ ,)]+}}, %{{[^ ,)]+}}, %{{[^ ,)]+}} : tensor<?x32xf32>, tensor<48x32xf32>, tensor<48x32xf32>, tensor<32x48xf32> -> tensor<?x32xf32>
  %m = ds.mlp %n, %g, %u, %d : tensor<?x32xf32>, tensor<48x32xf32>, tensor<48x32xf32>, tensor<32x48xf32> -> tensor<?x32xf32>
  %fn = ds.weight "model.norm.weight" : tensor<32xf32>
  %hd = ds.weight "lm_head.weight" : tensor<64x32xf32>
  // CHECK: ds.lm_head %{{[^ ,)]+}}, %{{[^ ,)]+}}, %{{[^ ,)]+}} {eps = 9.9999999999999995E-7 : f64} : tensor<?x32xf32>, tensor<32xf32>, tensor<64x32xf32> -> tensor<?x64xf32>
  %logits = ds.lm_head %m, %fn, %hd {eps = 1.0e-06 : f64} : tensor<?x32xf32>, tensor<32xf32>, tensor<64x32xf32> -> tensor<?x64xf32>
  return %logits : tensor<?x64xf32>
}

