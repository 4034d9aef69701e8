// RUN: ds-opt --split-input-file --verify-diagnostics %s

// Tests that a negative threshold on the absorbed kernel is rejected.

func.func @f(%ql: tensor<?x2x16xf32>, %qr: tensor<?x2x4xf32>, %c: !ds.paged_latent_cache<num_layers = 1, width = 20, element_type = f32>, %p: tensor<?xi32>, %qs: tensor<?xi32>, %bt: tensor<?x?xi32>) {
  // expected-error@+1 {{attribute 'naive_min_tokens' failed to satisfy constraint}}
  %u = ds.paged_latent_attention %ql, %qr, %c, %p, %qs, %bt {layer = 0 : i64, scale = 1.0 : f64, naive_min_tokens = -1 : i64} : tensor<?x2x16xf32>, tensor<?x2x4xf32>, !ds.paged_latent_cache<num_layers = 1, width = 20, element_type = f32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x2x16xf32>
  return
}

// -----

// Tests that the naive kernel needs its threshold.

func.func @f(%qn: tensor<?x2x8xf32>, %qr: tensor<?x2x4xf32>, %c: !ds.paged_latent_cache<num_layers = 1, width = 20, element_type = f32>, %p: tensor<?xi32>, %qs: tensor<?xi32>, %bt: tensor<?x?xi32>, %w: tensor<32x16xf32>, %i: tensor<?x2x8xf32>) {
  // expected-error@+1 {{requires attribute 'naive_min_tokens'}}
  %o = ds.paged_naive_attention %qn, %qr, %c, %p, %qs, %bt, %w, %i {layer = 0 : i64, scale = 1.0 : f64} : tensor<?x2x8xf32>, tensor<?x2x4xf32>, !ds.paged_latent_cache<num_layers = 1, width = 20, element_type = f32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>, tensor<32x16xf32> -> tensor<?x2x8xf32>
  return
}

// -----

// Tests that a negative threshold on the naive kernel is rejected.

func.func @f(%qn: tensor<?x2x8xf32>, %qr: tensor<?x2x4xf32>, %c: !ds.paged_latent_cache<num_layers = 1, width = 20, element_type = f32>, %p: tensor<?xi32>, %qs: tensor<?xi32>, %bt: tensor<?x?xi32>, %w: tensor<32x16xf32>, %i: tensor<?x2x8xf32>) {
  // expected-error@+1 {{attribute 'naive_min_tokens' failed to satisfy constraint}}
  %o = ds.paged_naive_attention %qn, %qr, %c, %p, %qs, %bt, %w, %i {layer = 0 : i64, scale = 1.0 : f64, naive_min_tokens = -3 : i64} : tensor<?x2x8xf32>, tensor<?x2x4xf32>, !ds.paged_latent_cache<num_layers = 1, width = 20, element_type = f32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>, tensor<32x16xf32> -> tensor<?x2x8xf32>
  return
}

// -----

// Tests that kv_b_proj must hold [nope | v] rows for every head over the
// cache's latent width (16 = 20 - 4).

func.func @f(%qn: tensor<?x2x8xf32>, %qr: tensor<?x2x4xf32>, %c: !ds.paged_latent_cache<num_layers = 1, width = 20, element_type = f32>, %p: tensor<?xi32>, %qs: tensor<?xi32>, %bt: tensor<?x?xi32>, %w: tensor<32x12xf32>, %i: tensor<?x2x8xf32>) {
  // expected-error@+1 {{kv_b_proj must have shape [32, 16], got [32, 12]}}
  %o = ds.paged_naive_attention %qn, %qr, %c, %p, %qs, %bt, %w, %i {layer = 0 : i64, scale = 1.0 : f64, naive_min_tokens = 4 : i64} : tensor<?x2x8xf32>, tensor<?x2x4xf32>, !ds.paged_latent_cache<num_layers = 1, width = 20, element_type = f32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>, tensor<32x12xf32> -> tensor<?x2x8xf32>
  return
}

// -----

// Tests that the queries and the result agree on the heads.

func.func @f(%qn: tensor<?x2x8xf32>, %qr: tensor<?x3x4xf32>, %c: !ds.paged_latent_cache<num_layers = 1, width = 20, element_type = f32>, %p: tensor<?xi32>, %qs: tensor<?xi32>, %bt: tensor<?x?xi32>, %w: tensor<32x16xf32>, %i: tensor<?x2x8xf32>) {
  // expected-error@+1 {{q_rope and result heads (3, 2) must equal q_nope's (2)}}
  %o = ds.paged_naive_attention %qn, %qr, %c, %p, %qs, %bt, %w, %i {layer = 0 : i64, scale = 1.0 : f64, naive_min_tokens = 4 : i64} : tensor<?x2x8xf32>, tensor<?x3x4xf32>, !ds.paged_latent_cache<num_layers = 1, width = 20, element_type = f32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>, tensor<32x16xf32> -> tensor<?x2x8xf32>
  return
}

// -----

// Tests that the layer must exist in the cache.

func.func @f(%qn: tensor<?x2x8xf32>, %qr: tensor<?x2x4xf32>, %c: !ds.paged_latent_cache<num_layers = 1, width = 20, element_type = f32>, %p: tensor<?xi32>, %qs: tensor<?xi32>, %bt: tensor<?x?xi32>, %w: tensor<32x16xf32>, %i: tensor<?x2x8xf32>) {
  // expected-error@+1 {{layer (2) must be < the cache's num_layers (1)}}
  %o = ds.paged_naive_attention %qn, %qr, %c, %p, %qs, %bt, %w, %i {layer = 2 : i64, scale = 1.0 : f64, naive_min_tokens = 4 : i64} : tensor<?x2x8xf32>, tensor<?x2x4xf32>, !ds.paged_latent_cache<num_layers = 1, width = 20, element_type = f32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>, tensor<32x16xf32> -> tensor<?x2x8xf32>
  return
}
