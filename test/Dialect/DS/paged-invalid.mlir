// RUN: ds-opt --split-input-file --verify-diagnostics %s

// Tests that a page size other than FlashMLA's 64 is rejected.

// expected-error@+1 {{paged latent cache page_size (32) must be 64}}
func.func private @f(%c: !ds.paged_latent_cache<num_layers = 1, width = 20, element_type = f32, page_size = 32>)

// -----

// Tests that the paged cache shares the contiguous cache's checks.

// expected-error@+1 {{latent cache element type must be f32, bf16, f16 or f8E4M3FN, got 'i8'}}
func.func private @f(%c: !ds.paged_latent_cache<num_layers = 1, width = 20, element_type = i8>)

// -----

// Tests that ds.mla over a paged cache needs the batch's sequences.

func.func @f(%x: tensor<?x32xf32>, %p: tensor<?xi32>, %c: !ds.paged_latent_cache<num_layers = 3, width = 20, element_type = f32>, %q: tensor<24x32xf32>, %kva: tensor<20x32xf32>, %kvan: tensor<16xf32>, %kvb: tensor<32x16xf32>, %o: tensor<32x16xf32>) {
  // expected-error@+1 {{a paged latent cache needs paged(query_start, block_tables)}}
  %y, %c2 = ds.mla %x, %p, %c q(%q) kv(%kva, %kvan, %kvb) o(%o) {config = #ds.mla_config<num_heads = 2, kv_lora_rank = 16, qk_nope_head_dim = 8, qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.3125, rope_theta = 10000.0>, layer = 0 : i64} : tensor<?x32xf32>, tensor<?xi32>, !ds.paged_latent_cache<num_layers = 3, width = 20, element_type = f32> q(tensor<24x32xf32>) kv(tensor<20x32xf32>, tensor<16xf32>, tensor<32x16xf32>) o(tensor<32x16xf32>) -> tensor<?x32xf32>, !ds.paged_latent_cache<num_layers = 3, width = 20, element_type = f32>
  return
}

// -----

// Tests that block tables over a contiguous cache are rejected.

func.func @f(%x: tensor<?x32xf32>, %p: tensor<?xi32>, %c: !ds.latent_cache<num_layers = 3, width = 20, element_type = f32>, %qs: tensor<?xi32>, %bt: tensor<?x?xi32>, %q: tensor<24x32xf32>, %kva: tensor<20x32xf32>, %kvan: tensor<16xf32>, %kvb: tensor<32x16xf32>, %o: tensor<32x16xf32>) {
  // expected-error@+1 {{paged(query_start, block_tables) needs a !ds.paged_latent_cache}}
  %y, %c2 = ds.mla %x, %p, %c q(%q) kv(%kva, %kvan, %kvb) o(%o) paged(%qs, %bt) {config = #ds.mla_config<num_heads = 2, kv_lora_rank = 16, qk_nope_head_dim = 8, qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.3125, rope_theta = 10000.0>, layer = 0 : i64} : tensor<?x32xf32>, tensor<?xi32>, !ds.latent_cache<num_layers = 3, width = 20, element_type = f32> q(tensor<24x32xf32>) kv(tensor<20x32xf32>, tensor<16xf32>, tensor<32x16xf32>) o(tensor<32x16xf32>) paged(tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x32xf32>, !ds.latent_cache<num_layers = 3, width = 20, element_type = f32>
  return
}

// -----

// Tests that a paged cache whose width is not kv_lora_rank + rope dim is rejected.

func.func @f(%x: tensor<?x32xf32>, %p: tensor<?xi32>, %c: !ds.paged_latent_cache<num_layers = 3, width = 24, element_type = f32>, %qs: tensor<?xi32>, %bt: tensor<?x?xi32>, %q: tensor<24x32xf32>, %kva: tensor<20x32xf32>, %kvan: tensor<16xf32>, %kvb: tensor<32x16xf32>, %o: tensor<32x16xf32>) {
  // expected-error@+1 {{latent cache width (24) must equal kv_lora_rank + qk_rope_head_dim (16 + 4 = 20)}}
  %y, %c2 = ds.mla %x, %p, %c q(%q) kv(%kva, %kvan, %kvb) o(%o) paged(%qs, %bt) {config = #ds.mla_config<num_heads = 2, kv_lora_rank = 16, qk_nope_head_dim = 8, qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.3125, rope_theta = 10000.0>, layer = 0 : i64} : tensor<?x32xf32>, tensor<?xi32>, !ds.paged_latent_cache<num_layers = 3, width = 24, element_type = f32> q(tensor<24x32xf32>) kv(tensor<20x32xf32>, tensor<16xf32>, tensor<32x16xf32>) o(tensor<32x16xf32>) paged(tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x32xf32>, !ds.paged_latent_cache<num_layers = 3, width = 24, element_type = f32>
  return
}

// -----

// Tests that block tables with a row count other than the sequences' are rejected.

func.func @f(%c: !ds.paged_latent_cache<num_layers = 1, width = 20, element_type = f32>, %l: tensor<?x16xf32>, %r: tensor<?x4xf32>, %p: tensor<?xi32>, %qs: tensor<3xi32>, %bt: tensor<3x?xi32>) {
  // expected-error@+1 {{block_tables rows (3) must be one per sequence (query_start has 3 entries)}}
  %c1 = ds.paged_cache_write %c, %l, %r, %p, %qs, %bt {layer = 0 : i64} : !ds.paged_latent_cache<num_layers = 1, width = 20, element_type = f32>, tensor<?x16xf32>, tensor<?x4xf32>, tensor<?xi32>, tensor<3xi32>, tensor<3x?xi32>
  return
}

// -----

// Tests that query offsets without a single sequence are rejected.

func.func @f(%c: !ds.paged_latent_cache<num_layers = 1, width = 20, element_type = f32>, %l: tensor<?x16xf32>, %r: tensor<?x4xf32>, %p: tensor<?xi32>, %qs: tensor<1xi32>, %bt: tensor<?x?xi32>) {
  // expected-error@+1 {{query_start must hold at least 2 entries (one sequence), got 1}}
  %c1 = ds.paged_cache_write %c, %l, %r, %p, %qs, %bt {layer = 0 : i64} : !ds.paged_latent_cache<num_layers = 1, width = 20, element_type = f32>, tensor<?x16xf32>, tensor<?x4xf32>, tensor<?xi32>, tensor<1xi32>, tensor<?x?xi32>
  return
}

// -----

// Tests that new rows narrower than the paged cache are rejected.

func.func @f(%c: !ds.paged_latent_cache<num_layers = 1, width = 20, element_type = f32>, %l: tensor<?x12xf32>, %r: tensor<?x4xf32>, %p: tensor<?xi32>, %qs: tensor<?xi32>, %bt: tensor<?x?xi32>) {
  // expected-error@+1 {{latent + rope key widths (12 + 4) must fill the cache width (20)}}
  %c1 = ds.paged_cache_write %c, %l, %r, %p, %qs, %bt {layer = 0 : i64} : !ds.paged_latent_cache<num_layers = 1, width = 20, element_type = f32>, tensor<?x12xf32>, tensor<?x4xf32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>
  return
}

// -----

// Tests that paged attention on a layer past the cache's is rejected.

func.func @f(%ql: tensor<?x2x16xf32>, %qr: tensor<?x2x4xf32>, %c: !ds.paged_latent_cache<num_layers = 1, width = 20, element_type = f32>, %p: tensor<?xi32>, %qs: tensor<?xi32>, %bt: tensor<?x?xi32>) {
  // expected-error@+1 {{layer (1) must be < the cache's num_layers (1)}}
  %u = ds.paged_latent_attention %ql, %qr, %c, %p, %qs, %bt {layer = 1 : i64, scale = 1.0 : f64} : tensor<?x2x16xf32>, tensor<?x2x4xf32>, !ds.paged_latent_cache<num_layers = 1, width = 20, element_type = f32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x2x16xf32>
  return
}

// -----

// Tests that paged attention with the wrong result width is rejected.

func.func @f(%ql: tensor<?x2x16xf32>, %qr: tensor<?x2x4xf32>, %c: !ds.paged_latent_cache<num_layers = 1, width = 20, element_type = f32>, %p: tensor<?xi32>, %qs: tensor<?xi32>, %bt: tensor<?x?xi32>) {
  // expected-error@+1 {{result must have shape [?, 2, 16], got [?, 2, 8]}}
  %u = ds.paged_latent_attention %ql, %qr, %c, %p, %qs, %bt {layer = 0 : i64, scale = 1.0 : f64} : tensor<?x2x16xf32>, tensor<?x2x4xf32>, !ds.paged_latent_cache<num_layers = 1, width = 20, element_type = f32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x2x8xf32>
  return
}

// -----

// Tests that gathered rows must keep the input's width.

func.func @f(%x: tensor<?x32xf32>, %rows: tensor<4xi32>) {
  // expected-error@+1 {{result must have shape [4, 32], got [4, 16]}}
  %g = ds.gather_rows %x, %rows : tensor<?x32xf32>, tensor<4xi32> -> tensor<4x16xf32>
  return
}

// -----

// Tests that a paged fp8 cache spells its row layout like !ds.latent_cache.

// expected-error@+1 {{fp8 latent cache rope_width (0) must be in (0, width = 192)}}
func.func private @f(%c: !ds.paged_latent_cache<num_layers = 1, width = 192, element_type = f8E4M3FN>)

// -----

// expected-error@+1 {{fp8 latent cache: the latent width (width - rope_width = 128) must be a multiple of scale_group (96)}}
func.func private @f(%c: !ds.paged_latent_cache<num_layers = 1, width = 192, element_type = f8E4M3FN, rope_width = 64, scale_group = 96>)

// -----

// Tests that a paged fp8 cache's rope width must be the op's.

func.func @f(%c: !ds.paged_latent_cache<num_layers = 1, width = 264, element_type = f8E4M3FN, rope_width = 8, scale_group = 128>,
             %lat: tensor<?x260xf32>, %kpe: tensor<?x4xf32>, %pos: tensor<?xi32>, %qs: tensor<?xi32>, %bt: tensor<?x?xi32>) {
  // expected-error@+1 {{fp8 latent cache rope_width (8) must equal the rope width (4)}}
  %c1 = ds.paged_cache_write %c, %lat, %kpe, %pos, %qs, %bt {layer = 0 : i64}
      : !ds.paged_latent_cache<num_layers = 1, width = 264, element_type = f8E4M3FN, rope_width = 8, scale_group = 128>,
        tensor<?x260xf32>, tensor<?x4xf32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>
  return
}
