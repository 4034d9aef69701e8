// RUN: ds-opt --split-input-file --convert-ds-to-loops --verify-diagnostics %s

// Tests that model-level ops left in place are refused with the passes to run.

func.func @prefill(%tok: tensor<?xi32>, %pos: tensor<?xi32>,
                   %c: !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>)
    -> (tensor<?x32xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>) {
  %e = ds.weight "embed" : tensor<32x32xf32>
  %x = ds.embedding %e, %tok : tensor<32x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
  // expected-error@+1 {{'ds.mlp' must be rewritten by the ds passes}}
  %y = ds.mlp %x, %e, %e, %e : tensor<?x32xf32>, tensor<32x32xf32>, tensor<32x32xf32>, tensor<32x32xf32> -> tensor<?x32xf32>
  return %y, %c : tensor<?x32xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>
}

// -----

// Tests that an op on tensors no pattern lowers is a legalization failure
// that names it.

func.func @prefill(%tok: tensor<?xi32>, %pos: tensor<?xi32>,
                   %c: !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>)
    -> (tensor<?x32xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>) {
  %e = ds.weight "embed" : tensor<32x32xf32>
  %x = ds.embedding %e, %tok : tensor<32x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
  // expected-error@+1 {{failed to legalize operation 'arith.mulf'}}
  %y = arith.mulf %x, %x : tensor<?x32xf32>
  return %y, %c : tensor<?x32xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>
}

// -----

// Tests that dequantisation scales the runtime would not load (computed
// rather than named) are refused.

func.func @prefill(%tok: tensor<?xi32>, %pos: tensor<?xi32>,
                   %c: !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>)
    -> (tensor<?x64xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>) {
  %e = ds.weight "embed" : tensor<64x32xf32>
  %x = ds.embedding %e, %tok : tensor<64x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
  %hq = ds.weight "head" : tensor<64x32xf8E4M3FN>
  %s = ds.weight "head_scale_inv" : tensor<1x1xf32>
  %s2 = arith.addf %s, %s : tensor<1x1xf32>
  // expected-error@+1 {{ds.dequantize scales must be a ds.weight}}
  %h = ds.dequantize %hq, %s2 {block_size = 128 : i64} : tensor<64x32xf8E4M3FN>, tensor<1x1xf32> -> tensor<64x32xbf16>
  %l = ds.linear %x, %h : tensor<?x32xf32>, tensor<64x32xbf16> -> tensor<?x64xf32>
  return %l, %c : tensor<?x64xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>
}
