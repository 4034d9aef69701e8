// Tests that the fp8 cache layout (e4m3 latent, f32 scale per 128, bf16
// rope) round-trips with its parameters, the kernel ops over it too, and
// that the other element types print without them.

// CHECK-LABEL: func.func @fp8_cache
// CHECK-SAME: !ds.latent_cache<num_layers = 61, width = 576, element_type = f8E4M3FN, rope_width = 64, scale_group = 128>
// CHECK-SAME: !ds.latent_cache<num_layers = 1, width = 20, element_type = bf16>,
// CHECK: ds.cache_write {{.*}} : !ds.latent_cache<num_layers = 61, width = 576, element_type = f8E4M3FN, rope_width = 64, scale_group = 128>, tensor<?x512xf32>, tensor<?x64xf32>, tensor<?xi32>
// CHECK: ds.latent_attention {{.*}} : tensor<?x2x512xf32>, tensor<?x2x64xf32>, !ds.latent_cache<num_layers = 61, width = 576, element_type = f8E4M3FN, rope_width = 64, scale_group = 128>, tensor<?xi32> -> tensor<?x2x512xf32>
func.func @fp8_cache(%c: !ds.latent_cache<num_layers = 61, width = 576, element_type = f8E4M3FN, rope_width = 64, scale_group = 128>,
                     %c16: !ds.latent_cache<num_layers = 1, width = 20, element_type = bf16>,
                     %lat: tensor<?x512xf32>, %kr: tensor<?x64xf32>, %pos: tensor<?xi32>,
                     %ql: tensor<?x2x512xf32>, %qr: tensor<?x2x64xf32>) -> tensor<?x2x512xf32> {
  %c1 = ds.cache_write %c, %lat, %kr, %pos {layer = 60 : i64}
      : !ds.latent_cache<num_layers = 61, width = 576, element_type = f8E4M3FN, rope_width = 64, scale_group = 128>, tensor<?x512xf32>, tensor<?x64xf32>, tensor<?xi32>
  %u = ds.latent_attention %ql, %qr, %c1, %pos {layer = 60 : i64, scale = 0.1 : f64}
      : tensor<?x2x512xf32>, tensor<?x2x64xf32>, !ds.latent_cache<num_layers = 61, width = 576, element_type = f8E4M3FN, rope_width = 64, scale_group = 128>, tensor<?xi32> -> tensor<?x2x512xf32>
  return %u : tensor<?x2x512xf32>
}
