// RUN: ds-opt --split-input-file --verify-diagnostics %s

// Tests that the per-head K/V cache refuses fp8 (no codec for this layout).

// expected-error@+1 {{paged per-head K/V cache: fp8 elements are not supported (the fp8 codec is the latent layout's)}}
func.func private @f(%c: !ds.paged_kv_cache<num_layers = 1, num_heads = 2, key_width = 12, value_width = 8, element_type = f8E4M3FN>)

// -----

// Tests that its element type is a float the kernels store.

// expected-error@+1 {{paged per-head K/V cache element type must be f32, bf16 or f16, got 'i8'}}
func.func private @f(%c: !ds.paged_kv_cache<num_layers = 1, num_heads = 2, key_width = 12, value_width = 8, element_type = i8>)

// -----

// Tests that its sizes must be positive.

// expected-error@+1 {{paged per-head K/V cache num_heads (0) must be positive}}
func.func private @f(%c: !ds.paged_kv_cache<num_layers = 1, num_heads = 0, key_width = 12, value_width = 8, element_type = f32>)

// -----

// Tests that a page size other than 64 is rejected.

// expected-error@+1 {{paged per-head K/V cache page_size (16) must be 64}}
func.func private @f(%c: !ds.paged_kv_cache<num_layers = 1, num_heads = 2, key_width = 12, value_width = 8, element_type = f32, page_size = 16>)

// -----

// Tests that ds.mla rejects a per-head cache whose heads do not match its config.

func.func @f(%x: tensor<?x32xf32>, %p: tensor<?xi32>, %c: !ds.paged_kv_cache<num_layers = 3, num_heads = 4, key_width = 12, value_width = 8, element_type = f32>, %qs: tensor<?xi32>, %bt: tensor<?x?xi32>, %q: tensor<24x32xf32>, %kva: tensor<20x32xf32>, %kvan: tensor<16xf32>, %kvb: tensor<32x16xf32>, %o: tensor<32x16xf32>) {
  // expected-error@+1 {{per-head K/V cache (num_heads 4, key_width 12, value_width 8) must hold 2 heads of key 8 + 4 and value 8}}
  %y, %c2 = ds.mla %x, %p, %c q(%q) kv(%kva, %kvan, %kvb) o(%o) paged(%qs, %bt) {config = #ds.mla_config<num_heads = 2, kv_lora_rank = 16, qk_nope_head_dim = 8, qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.3125, rope_theta = 10000.0>, layer = 0 : i64} : tensor<?x32xf32>, tensor<?xi32>, !ds.paged_kv_cache<num_layers = 3, num_heads = 4, key_width = 12, value_width = 8, element_type = f32> q(tensor<24x32xf32>) kv(tensor<20x32xf32>, tensor<16xf32>, tensor<32x16xf32>) o(tensor<32x16xf32>) paged(tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x32xf32>, !ds.paged_kv_cache<num_layers = 3, num_heads = 4, key_width = 12, value_width = 8, element_type = f32>
  return
}

// -----

// Tests that ds.mla over a per-head cache needs the batch's sequences.

func.func @f(%x: tensor<?x32xf32>, %p: tensor<?xi32>, %c: !ds.paged_kv_cache<num_layers = 3, num_heads = 2, key_width = 12, value_width = 8, element_type = f32>, %q: tensor<24x32xf32>, %kva: tensor<20x32xf32>, %kvan: tensor<16xf32>, %kvb: tensor<32x16xf32>, %o: tensor<32x16xf32>) {
  // expected-error@+1 {{a paged latent cache needs paged(query_start, block_tables)}}
  %y, %c2 = ds.mla %x, %p, %c q(%q) kv(%kva, %kvan, %kvb) o(%o) {config = #ds.mla_config<num_heads = 2, kv_lora_rank = 16, qk_nope_head_dim = 8, qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.3125, rope_theta = 10000.0>, layer = 0 : i64} : tensor<?x32xf32>, tensor<?xi32>, !ds.paged_kv_cache<num_layers = 3, num_heads = 2, key_width = 12, value_width = 8, element_type = f32> q(tensor<24x32xf32>) kv(tensor<20x32xf32>, tensor<16xf32>, tensor<32x16xf32>) o(tensor<32x16xf32>) -> tensor<?x32xf32>, !ds.paged_kv_cache<num_layers = 3, num_heads = 2, key_width = 12, value_width = 8, element_type = f32>
  return
}

// -----

// Tests that the write's per-head rows must fit the cache's key and value widths.

func.func @f(%c: !ds.paged_kv_cache<num_layers = 1, num_heads = 2, key_width = 12, value_width = 8, element_type = f32>, %kv: tensor<?x2x18xf32>, %r: tensor<?x4xf32>, %p: tensor<?xi32>, %qs: tensor<?xi32>, %bt: tensor<?x?xi32>) {
  // expected-error@+1 {{per-head K/V cache (num_heads 2, key_width 12, value_width 8) must hold 2 heads of key 10 + 4 and value 8}}
  %c1 = ds.paged_kv_write %c, %kv, %r, %p, %qs, %bt {layer = 0 : i64} : !ds.paged_kv_cache<num_layers = 1, num_heads = 2, key_width = 12, value_width = 8, element_type = f32>, tensor<?x2x18xf32>, tensor<?x4xf32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>
  return
}

// -----

// Tests that the write's layer must exist in the cache.

func.func @f(%c: !ds.paged_kv_cache<num_layers = 1, num_heads = 2, key_width = 12, value_width = 8, element_type = f32>, %kv: tensor<?x2x16xf32>, %r: tensor<?x4xf32>, %p: tensor<?xi32>, %qs: tensor<?xi32>, %bt: tensor<?x?xi32>) {
  // expected-error@+1 {{layer (1) must be < the cache's num_layers (1)}}
  %c1 = ds.paged_kv_write %c, %kv, %r, %p, %qs, %bt {layer = 1 : i64} : !ds.paged_kv_cache<num_layers = 1, num_heads = 2, key_width = 12, value_width = 8, element_type = f32>, tensor<?x2x16xf32>, tensor<?x4xf32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>
  return
}

// -----

// Tests that attention's result is [tokens, heads, value_width].

func.func @f(%qn: tensor<?x2x8xf32>, %qr: tensor<?x2x4xf32>, %c: !ds.paged_kv_cache<num_layers = 1, num_heads = 2, key_width = 12, value_width = 8, element_type = f32>, %p: tensor<?xi32>, %qs: tensor<?xi32>, %bt: tensor<?x?xi32>) {
  // expected-error@+1 {{result must have shape [?, 2, 8], got [?, 2, 6]}}
  %o = ds.paged_kv_attention %qn, %qr, %c, %p, %qs, %bt {layer = 0 : i64, scale = 0.3 : f64} : tensor<?x2x8xf32>, tensor<?x2x4xf32>, !ds.paged_kv_cache<num_layers = 1, num_heads = 2, key_width = 12, value_width = 8, element_type = f32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x2x6xf32>
  return
}

// -----

// Tests that attention's query widths must be the cache's key width.

func.func @f(%qn: tensor<?x2x6xf32>, %qr: tensor<?x2x4xf32>, %c: !ds.paged_kv_cache<num_layers = 1, num_heads = 2, key_width = 12, value_width = 8, element_type = f32>, %p: tensor<?xi32>, %qs: tensor<?xi32>, %bt: tensor<?x?xi32>) {
  // expected-error@+1 {{must hold 2 heads of key 6 + 4 and value 8}}
  %o = ds.paged_kv_attention %qn, %qr, %c, %p, %qs, %bt {layer = 0 : i64, scale = 0.3 : f64} : tensor<?x2x6xf32>, tensor<?x2x4xf32>, !ds.paged_kv_cache<num_layers = 1, num_heads = 2, key_width = 12, value_width = 8, element_type = f32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x2x8xf32>
  return
}
