// RUN: ds-opt --convert-ds-to-loops --verify-diagnostics %s

// Tests that an extra entry-point input that is neither an f32 activation
// nor an i32 vector or table (a ragged step's sequence description) is
// refused with the entry point named.

// expected-error@+1 {{entry point extra inputs/results must be [tokens, features] f32 tensors (or i32 vectors and tables as inputs)}}
func.func @bad(%tok: tensor<?xi32>, %pos: tensor<?xi32>,
               %c: !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>,
               %h: tensor<?x?x?xi32>)
    -> (tensor<?x64xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>) {
  %t = ds.weight "embed" : tensor<64x32xf32>
  %x = ds.embedding %t, %tok : tensor<64x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
  %hd = ds.weight "head" : tensor<64x32xf32>
  %l = ds.linear %x, %hd : tensor<?x32xf32>, tensor<64x32xf32> -> tensor<?x64xf32>
  return %l, %c : tensor<?x64xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>
}
