// RUN: ds-opt %s --split-input-file --verify-diagnostics

// Tests that top_k above the expert count is rejected.

// expected-error@+1 {{top_k (9) must be <= num_experts (8)}}
func.func private @f() attributes {c = #ds.moe_config<num_experts = 8, top_k = 9, n_group = 4, topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true, routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>}

// -----

// Tests that a non-positive top_k is rejected.

// expected-error@+1 {{moe top_k (0) must be positive}}
func.func private @f() attributes {c = #ds.moe_config<num_experts = 8, top_k = 0, n_group = 4, topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true, routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>}

// -----

// Tests that a non-positive expert count is rejected.

// expected-error@+1 {{moe num_experts (0) must be positive}}
func.func private @f() attributes {c = #ds.moe_config<num_experts = 0, top_k = 1, n_group = 4, topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true, routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>}

// -----

// Tests that topk_group above n_group is rejected.

// expected-error@+1 {{topk_group (5) must be <= n_group (4)}}
func.func private @f() attributes {c = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4, topk_group = 5, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true, routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>}

// -----

// Tests that experts not divisible by groups are rejected.

// expected-error@+1 {{num_experts (8) must be divisible by n_group (3)}}
func.func private @f() attributes {c = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 3, topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true, routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>}

// -----

// Tests that grouped routing that cannot fill top_k is rejected.

// expected-error@+1 {{grouped routing cannot fill top_k (5): topk_group (2) x experts per group (2) = 4}}
func.func private @f() attributes {c = #ds.moe_config<num_experts = 8, top_k = 5, n_group = 4, topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true, routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>}

// -----

// Tests that noaux_tc with one expert per group is rejected.

// expected-error@+1 {{experts per group (1) must be >= 2}}
func.func private @f() attributes {c = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 8, topk_group = 4, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true, routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>}

// -----

// Tests that a non-positive group count is rejected.

// expected-error@+1 {{moe n_group (0) and topk_group (2) must be positive}}
func.func private @f() attributes {c = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 0, topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true, routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>}

// -----

// Tests that a non-positive routed scaling factor is rejected.

// expected-error@+1 {{moe routed_scaling_factor (0) must be positive}}
func.func private @f() attributes {c = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4, topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true, routed_scaling_factor = 0.0, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>}

// -----

// Tests that a non-positive intermediate size is rejected.

// expected-error@+1 {{moe intermediate_size (0) must be positive}}
func.func private @f() attributes {c = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4, topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true, routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 0, n_shared_experts = 1>}

// -----

// Tests that a negative shared expert count is rejected.

// expected-error@+1 {{moe n_shared_experts (-1) must be >= 0}}
func.func private @f() attributes {c = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4, topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true, routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = -1>}

// -----

// Tests that an unknown scoring function is rejected.

// expected-error@+2 {{expected ::mlir::ds::ScoringFunc to be one of: softmax, sigmoid}}
// expected-error@+1 {{failed to parse DS_MoEConfigAttr parameter 'scoring_func'}}
func.func private @f() attributes {c = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4, topk_group = 2, scoring_func = relu, topk_method = noaux_tc, norm_topk_prob = true, routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>}

// -----

// Tests that mscale different from mscale_all_dim is rejected.

// expected-error@+1 {{yarn mscale (0.5) must equal mscale_all_dim (0.707)}}
func.func private @f() attributes {c = #ds.yarn<factor = 4.0, original_max_position_embeddings = 16, beta_fast = 32.0, beta_slow = 1.0, mscale = 0.5, mscale_all_dim = 0.707>}

// -----

// Tests that a non-positive yarn factor is rejected.

// expected-error@+1 {{yarn factor (0) must be positive}}
func.func private @f() attributes {c = #ds.yarn<factor = 0.0, original_max_position_embeddings = 16, beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 1.0>}

// -----

// Tests that a non-positive original length is rejected.

// expected-error@+1 {{yarn original_max_position_embeddings (0) must be positive}}
func.func private @f() attributes {c = #ds.yarn<factor = 4.0, original_max_position_embeddings = 0, beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 1.0>}

// -----

// Tests that non-positive beta values are rejected.

// expected-error@+1 {{yarn beta_fast (32) and beta_slow (0) must be positive}}
func.func private @f() attributes {c = #ds.yarn<factor = 4.0, original_max_position_embeddings = 16, beta_fast = 32.0, beta_slow = 0.0, mscale = 1.0, mscale_all_dim = 1.0>}

// -----

// Tests that an odd rope dimension is rejected.

// expected-error@+1 {{mla qk_rope_head_dim (5) must be even: RoPE rotates pairs}}
func.func private @f() attributes {c = #ds.mla_config<num_heads = 2, q_lora_rank = 24, kv_lora_rank = 16, qk_nope_head_dim = 8, qk_rope_head_dim = 5, v_head_dim = 8, softmax_scale = 0.3125, rope_theta = 10000.0>}

// -----

// Tests that a non-positive head count is rejected.

// expected-error@+1 {{mla num_heads (0) must be positive}}
func.func private @f() attributes {c = #ds.mla_config<num_heads = 0, q_lora_rank = 24, kv_lora_rank = 16, qk_nope_head_dim = 8, qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.3125, rope_theta = 10000.0>}

// -----

// Tests that a non-positive q_lora_rank is rejected.

// expected-error@+1 {{mla q_lora_rank (0) must be positive}}
func.func private @f() attributes {c = #ds.mla_config<num_heads = 2, q_lora_rank = 0, kv_lora_rank = 16, qk_nope_head_dim = 8, qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.3125, rope_theta = 10000.0>}

// -----

// Tests that a non-positive softmax scale is rejected.

// expected-error@+1 {{mla softmax_scale (-1) must be positive}}
func.func private @f() attributes {c = #ds.mla_config<num_heads = 2, q_lora_rank = 24, kv_lora_rank = 16, qk_nope_head_dim = 8, qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = -1.0, rope_theta = 10000.0>}

// -----

// Tests that a non-positive rope theta is rejected.

// expected-error@+1 {{mla rope_theta (0) must be positive}}
func.func private @f() attributes {c = #ds.mla_config<num_heads = 2, q_lora_rank = 24, kv_lora_rank = 16, qk_nope_head_dim = 8, qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.3125, rope_theta = 0.0>}

// -----

// Tests that a non-positive latent rank is rejected.

// expected-error@+1 {{mla kv_lora_rank (0) must be positive}}
func.func private @f() attributes {c = #ds.mla_config<num_heads = 2, q_lora_rank = 24, kv_lora_rank = 0, qk_nope_head_dim = 8, qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.3125, rope_theta = 10000.0>}

// -----

// Tests that a latent cache without layers is rejected.

// expected-error@+1 {{latent cache num_layers (0) must be positive}}
func.func private @f(%c: !ds.latent_cache<num_layers = 0, width = 20, element_type = f32>)

// -----

// Tests that a latent cache without width is rejected.

// expected-error@+1 {{latent cache width (0) must be positive}}
func.func private @f(%c: !ds.latent_cache<num_layers = 1, width = 0, element_type = f32>)

// -----

// Tests that a latent cache of integers is rejected.

// expected-error@+1 {{latent cache element type must be f32, bf16, f16 or f8E4M3FN, got 'i32'}}
func.func private @f(%c: !ds.latent_cache<num_layers = 1, width = 20, element_type = i32>)

// -----

// Tests that an fp8 cache whose latent is not whole scale groups is rejected.

// expected-error@+1 {{fp8 latent cache: the latent width (width - rope_width = 500) must be a multiple of scale_group (128)}}
func.func private @f(%c: !ds.latent_cache<num_layers = 1, width = 564, element_type = f8E4M3FN, rope_width = 64, scale_group = 128>)

// -----

// Tests that fp8 rows whose f32 scales would not be 4-byte aligned are
// rejected: an odd rope width (row bytes 512 + 16 + 2 x 63), then a scale
// group of 6 (the scales would start at byte 6).

// expected-error@+1 {{fp8 latent cache: scale_group (128) must be a multiple of 4 and rope_width (63) even}}
func.func private @f(%c: !ds.latent_cache<num_layers = 1, width = 575, element_type = f8E4M3FN, rope_width = 63, scale_group = 128>)

// -----

// expected-error@+1 {{fp8 latent cache: scale_group (6) must be a multiple of 4 and rope_width (8) even}}
func.func private @f(%c: !ds.latent_cache<num_layers = 1, width = 14, element_type = f8E4M3FN, rope_width = 8, scale_group = 6>)

// -----

// Tests that an fp8 cache without a rope width (the bf16 part) is rejected.

// expected-error@+1 {{fp8 latent cache rope_width (0) must be in (0, width = 576)}}
func.func private @f(%c: !ds.latent_cache<num_layers = 1, width = 576, element_type = f8E4M3FN, scale_group = 128>)

// -----

// Tests that an fp8 cache without a scale group is rejected.

// expected-error@+1 {{fp8 latent cache scale_group (0) must be positive}}
func.func private @f(%c: !ds.latent_cache<num_layers = 1, width = 576, element_type = f8E4M3FN, rope_width = 64>)

// -----

// Tests that the fp8 layout parameters on another element type are rejected.

// expected-error@+1 {{latent cache rope_width and scale_group are for the f8E4M3FN layout only, got element type 'bf16'}}
func.func private @f(%c: !ds.latent_cache<num_layers = 1, width = 576, element_type = bf16, rope_width = 64, scale_group = 128>)

// -----

// Tests that other fp8 formats are rejected (the layout is e4m3 fn).

// expected-error@+1 {{latent cache element type must be f32, bf16, f16 or f8E4M3FN, got 'f8E5M2'}}
func.func private @f(%c: !ds.latent_cache<num_layers = 1, width = 576, element_type = f8E5M2, rope_width = 64, scale_group = 128>)

// -----

// Tests that an empty weight name is rejected.

func.func @f() {
  // expected-error@+1 {{weight name must not be empty}}
  %w = ds.weight "" : tensor<4xf32>
  return
}

// -----

// Tests that a dynamic weight shape is rejected.

func.func @f() {
  // expected-error@+1 {{weight 'w' must have a static shape}}
  %w = ds.weight "w" : tensor<?xf32>
  return
}

// -----

// Tests that an integer weight is rejected.

func.func @f() {
  // expected-error@+1 {{must be ranked tensor of 32-bit float or 16-bit float or bfloat16 type or f8E4M3FN type values}}
  %w = ds.weight "w" : tensor<4xi8>
  return
}

// -----

// Tests that a stacked weight pattern without '*' is rejected.

func.func @f() {
  // expected-error@+1 {{pattern 'experts.0.w' must contain exactly one '*' (the member index)}}
  %w = ds.stacked_weight "experts.0.w" : tensor<2x4x4xf32>
  return
}

// -----

// Tests that a stacked weight of rank 1 is rejected.

func.func @f() {
  // expected-error@+1 {{stacked weight 'e.*.w' must have a static shape of rank >= 2}}
  %w = ds.stacked_weight "e.*.w" : tensor<4xf32>
  return
}

// -----

// Tests that a scale of the wrong block count is rejected.

func.func @f(%q: tensor<200x300xf8E4M3FN>, %s: tensor<2x2xf32>) {
  // expected-error@+1 {{scale_inv must have shape [2, 3], got [2, 2]}}
  %w = ds.dequantize %q, %s {block_size = 128 : i64} : tensor<200x300xf8E4M3FN>, tensor<2x2xf32> -> tensor<200x300xf32>
  return
}

// -----

// Tests that a dequantised shape different from the weight is rejected.

func.func @f(%q: tensor<200x300xf8E4M3FN>, %s: tensor<2x3xf32>) {
  // expected-error@+1 {{result shape [300, 200] must equal the weight shape [200, 300]}}
  %w = ds.dequantize %q, %s {block_size = 128 : i64} : tensor<200x300xf8E4M3FN>, tensor<2x3xf32> -> tensor<300x200xf32>
  return
}

// -----

// Tests that an embedding result of the wrong width is rejected.

func.func @f(%t: tensor<64x32xf32>, %ids: tensor<?xi32>) {
  // expected-error@+1 {{result must have shape [?, 32], got [?, 16]}}
  %x = ds.embedding %t, %ids : tensor<64x32xf32>, tensor<?xi32> -> tensor<?x16xf32>
  return
}

// -----

// Tests that an embedding table of rank 1 is rejected.

func.func @f(%t: tensor<64xf32>, %ids: tensor<?xi32>) {
  // expected-error@+1 {{table must be [vocab, hidden], got [64]}}
  %x = ds.embedding %t, %ids : tensor<64xf32>, tensor<?xi32> -> tensor<?x16xf32>
  return
}

// -----

// Tests that an rms_norm weight of the wrong size is rejected.

func.func @f(%x: tensor<?x32xf32>, %w: tensor<16xf32>) {
  // expected-error@+1 {{weight must have shape [32], got [16]}}
  %y = ds.rms_norm %x, %w {eps = 1.0e-06 : f64} : tensor<?x32xf32>, tensor<16xf32> -> tensor<?x32xf32>
  return
}

// -----

// Tests that a non-positive eps is rejected.

func.func @f(%x: tensor<?x32xf32>, %w: tensor<32xf32>) {
  // expected-error@+1 {{eps (0) must be positive}}
  %y = ds.rms_norm %x, %w {eps = 0.0 : f64} : tensor<?x32xf32>, tensor<32xf32> -> tensor<?x32xf32>
  return
}

// -----

// Tests that a linear weight whose in-features differ from the input is rejected.

func.func @f(%x: tensor<?x32xf32>, %w: tensor<24x16xf32>) {
  // expected-error@+1 {{weight in-features (16) must equal the input features (32)}}
  %y = ds.linear %x, %w : tensor<?x32xf32>, tensor<24x16xf32> -> tensor<?x24xf32>
  return
}

// -----

// Tests that a linear result of the wrong width is rejected.

func.func @f(%x: tensor<?x32xf32>, %w: tensor<24x32xf32>) {
  // expected-error@+1 {{result must have shape [?, 24], got [?, 32]}}
  %y = ds.linear %x, %w : tensor<?x32xf32>, tensor<24x32xf32> -> tensor<?x32xf32>
  return
}

// -----

// Tests that a linear result with another token count is rejected.

func.func @f(%x: tensor<3x32xf32>, %w: tensor<24x32xf32>) {
  // expected-error@+1 {{result has 4 tokens but the input has 3}}
  %y = ds.linear %x, %w : tensor<3x32xf32>, tensor<24x32xf32> -> tensor<4x24xf32>
  return
}

// -----

// Tests that an activation with dynamic features is rejected.

func.func @f(%x: tensor<?x?xf32>, %w: tensor<24x32xf32>) {
  // expected-error@+1 {{input must be [tokens, features] with static features, got [?, ?]}}
  %y = ds.linear %x, %w : tensor<?x?xf32>, tensor<24x32xf32> -> tensor<?x24xf32>
  return
}

// -----

// Tests that an MLP down projection of the wrong shape is rejected.

func.func @f(%x: tensor<?x32xf32>, %g: tensor<48x32xf32>, %u: tensor<48x32xf32>, %d: tensor<48x32xf32>) {
  // expected-error@+1 {{down must have shape [32, 48], got [48, 32]}}
  %y = ds.mlp %x, %g, %u, %d : tensor<?x32xf32>, tensor<48x32xf32>, tensor<48x32xf32>, tensor<48x32xf32> -> tensor<?x32xf32>
  return
}

// -----

// Tests that an MLP up projection of the wrong shape is rejected.

func.func @f(%x: tensor<?x32xf32>, %g: tensor<48x32xf32>, %u: tensor<40x32xf32>, %d: tensor<32x48xf32>) {
  // expected-error@+1 {{up must have shape [48, 32], got [40, 32]}}
  %y = ds.mlp %x, %g, %u, %d : tensor<?x32xf32>, tensor<48x32xf32>, tensor<40x32xf32>, tensor<32x48xf32> -> tensor<?x32xf32>
  return
}

// -----

// Tests that an MLP gate of the wrong shape is rejected.

func.func @f(%x: tensor<?x32xf32>, %g: tensor<48x16xf32>, %u: tensor<48x32xf32>, %d: tensor<32x48xf32>) {
  // expected-error@+1 {{gate must be [intermediate, 32], got [48, 16]}}
  %y = ds.mlp %x, %g, %u, %d : tensor<?x32xf32>, tensor<48x16xf32>, tensor<48x32xf32>, tensor<32x48xf32> -> tensor<?x32xf32>
  return
}

// -----

// Tests that an LM head of the wrong width is rejected.

func.func @f(%x: tensor<?x32xf32>, %n: tensor<32xf32>, %h: tensor<64x16xf32>) {
  // expected-error@+1 {{head must be [vocab, 32], got [64, 16]}}
  %y = ds.lm_head %x, %n, %h {eps = 1.0e-06 : f64} : tensor<?x32xf32>, tensor<32xf32>, tensor<64x16xf32> -> tensor<?x64xf32>
  return
}

// -----

// Tests that a cache width other than kv_lora_rank + rope dim is rejected.

func.func @f(%x: tensor<?x32xf32>, %p: tensor<?xi32>, %c: !ds.latent_cache<num_layers = 3, width = 24, element_type = f32>, %qa: tensor<24x32xf32>, %qan: tensor<24xf32>, %qb: tensor<24x24xf32>, %q: tensor<24x32xf32>, %kva: tensor<20x32xf32>, %kvan: tensor<16xf32>, %kvb: tensor<32x16xf32>, %o: tensor<32x16xf32>) {
  // expected-error@+1 {{latent cache width (24) must equal kv_lora_rank + qk_rope_head_dim (16 + 4 = 20)}}
  %y, %c2 = ds.mla %x, %p, %c q_lora(%qa, %qan, %qb) kv(%kva, %kvan, %kvb) o(%o) {config = #ds.mla_config<num_heads = 2, q_lora_rank = 24, kv_lora_rank = 16, qk_nope_head_dim = 8, qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.3125, rope_theta = 10000.0>, layer = 0 : i64} : tensor<?x32xf32>, tensor<?xi32>, !ds.latent_cache<num_layers = 3, width = 24, element_type = f32> q_lora(tensor<24x32xf32>, tensor<24xf32>, tensor<24x24xf32>) kv(tensor<20x32xf32>, tensor<16xf32>, tensor<32x16xf32>) o(tensor<32x16xf32>) -> tensor<?x32xf32>, !ds.latent_cache<num_layers = 3, width = 24, element_type = f32>
  return
}

// -----

// Tests that a layer past the cache's layers is rejected.

func.func @f(%x: tensor<?x32xf32>, %p: tensor<?xi32>, %c: !ds.latent_cache<num_layers = 3, width = 20, element_type = f32>, %qa: tensor<24x32xf32>, %qan: tensor<24xf32>, %qb: tensor<24x24xf32>, %q: tensor<24x32xf32>, %kva: tensor<20x32xf32>, %kvan: tensor<16xf32>, %kvb: tensor<32x16xf32>, %o: tensor<32x16xf32>) {
  // expected-error@+1 {{layer (3) must be < the cache's num_layers (3)}}
  %y, %c2 = ds.mla %x, %p, %c q_lora(%qa, %qan, %qb) kv(%kva, %kvan, %kvb) o(%o) {config = #ds.mla_config<num_heads = 2, q_lora_rank = 24, kv_lora_rank = 16, qk_nope_head_dim = 8, qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.3125, rope_theta = 10000.0>, layer = 3 : i64} : tensor<?x32xf32>, tensor<?xi32>, !ds.latent_cache<num_layers = 3, width = 20, element_type = f32> q_lora(tensor<24x32xf32>, tensor<24xf32>, tensor<24x24xf32>) kv(tensor<20x32xf32>, tensor<16xf32>, tensor<32x16xf32>) o(tensor<32x16xf32>) -> tensor<?x32xf32>, !ds.latent_cache<num_layers = 3, width = 20, element_type = f32>
  return
}

// -----

// Tests that q_proj with a q_lora_rank is rejected.

func.func @f(%x: tensor<?x32xf32>, %p: tensor<?xi32>, %c: !ds.latent_cache<num_layers = 3, width = 20, element_type = f32>, %qa: tensor<24x32xf32>, %qan: tensor<24xf32>, %qb: tensor<24x24xf32>, %q: tensor<24x32xf32>, %kva: tensor<20x32xf32>, %kvan: tensor<16xf32>, %kvb: tensor<32x16xf32>, %o: tensor<32x16xf32>) {
  // expected-error@+1 {{q_lora_rank (24) is set: queries need q_a_proj, q_a_norm, q_b_proj and no q_proj}}
  %y, %c2 = ds.mla %x, %p, %c q(%q) kv(%kva, %kvan, %kvb) o(%o) {config = #ds.mla_config<num_heads = 2, q_lora_rank = 24, kv_lora_rank = 16, qk_nope_head_dim = 8, qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.3125, rope_theta = 10000.0>, layer = 0 : i64} : tensor<?x32xf32>, tensor<?xi32>, !ds.latent_cache<num_layers = 3, width = 20, element_type = f32> q(tensor<24x32xf32>) kv(tensor<20x32xf32>, tensor<16xf32>, tensor<32x16xf32>) o(tensor<32x16xf32>) -> tensor<?x32xf32>, !ds.latent_cache<num_layers = 3, width = 20, element_type = f32>
  return
}

// -----

// Tests that q_lora weights without a q_lora_rank are rejected.

func.func @f(%x: tensor<?x32xf32>, %p: tensor<?xi32>, %c: !ds.latent_cache<num_layers = 3, width = 20, element_type = f32>, %qa: tensor<24x32xf32>, %qan: tensor<24xf32>, %qb: tensor<24x24xf32>, %q: tensor<24x32xf32>, %kva: tensor<20x32xf32>, %kvan: tensor<16xf32>, %kvb: tensor<32x16xf32>, %o: tensor<32x16xf32>) {
  // expected-error@+1 {{q_lora_rank is absent: queries need q_proj and no q_a_proj/q_a_norm/q_b_proj}}
  %y, %c2 = ds.mla %x, %p, %c q_lora(%qa, %qan, %qb) kv(%kva, %kvan, %kvb) o(%o) {config = #ds.mla_config<num_heads = 2, kv_lora_rank = 16, qk_nope_head_dim = 8, qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.3125, rope_theta = 10000.0>, layer = 0 : i64} : tensor<?x32xf32>, tensor<?xi32>, !ds.latent_cache<num_layers = 3, width = 20, element_type = f32> q_lora(tensor<24x32xf32>, tensor<24xf32>, tensor<24x24xf32>) kv(tensor<20x32xf32>, tensor<16xf32>, tensor<32x16xf32>) o(tensor<32x16xf32>) -> tensor<?x32xf32>, !ds.latent_cache<num_layers = 3, width = 20, element_type = f32>
  return
}

// -----

// Tests that a kv_b_proj that contradicts heads x (nope + v) is rejected.

func.func @f(%x: tensor<?x32xf32>, %p: tensor<?xi32>, %c: !ds.latent_cache<num_layers = 3, width = 20, element_type = f32>, %qa: tensor<24x32xf32>, %qan: tensor<24xf32>, %qb: tensor<24x24xf32>, %q: tensor<24x32xf32>, %kva: tensor<20x32xf32>, %kvan: tensor<16xf32>, %kvb: tensor<28x16xf32>, %o: tensor<32x16xf32>) {
  // expected-error@+1 {{kv_b_proj must have shape [32, 16], got [28, 16]}}
  %y, %c2 = ds.mla %x, %p, %c q_lora(%qa, %qan, %qb) kv(%kva, %kvan, %kvb) o(%o) {config = #ds.mla_config<num_heads = 2, q_lora_rank = 24, kv_lora_rank = 16, qk_nope_head_dim = 8, qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.3125, rope_theta = 10000.0>, layer = 0 : i64} : tensor<?x32xf32>, tensor<?xi32>, !ds.latent_cache<num_layers = 3, width = 20, element_type = f32> q_lora(tensor<24x32xf32>, tensor<24xf32>, tensor<24x24xf32>) kv(tensor<20x32xf32>, tensor<16xf32>, tensor<28x16xf32>) o(tensor<32x16xf32>) -> tensor<?x32xf32>, !ds.latent_cache<num_layers = 3, width = 20, element_type = f32>
  return
}

// -----

// Tests that an o_proj that contradicts heads x v is rejected.

func.func @f(%x: tensor<?x32xf32>, %p: tensor<?xi32>, %c: !ds.latent_cache<num_layers = 3, width = 20, element_type = f32>, %qa: tensor<24x32xf32>, %qan: tensor<24xf32>, %qb: tensor<24x24xf32>, %q: tensor<24x32xf32>, %kva: tensor<20x32xf32>, %kvan: tensor<16xf32>, %kvb: tensor<32x16xf32>, %o: tensor<32x12xf32>) {
  // expected-error@+1 {{o_proj must have shape [32, 16], got [32, 12]}}
  %y, %c2 = ds.mla %x, %p, %c q_lora(%qa, %qan, %qb) kv(%kva, %kvan, %kvb) o(%o) {config = #ds.mla_config<num_heads = 2, q_lora_rank = 24, kv_lora_rank = 16, qk_nope_head_dim = 8, qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.3125, rope_theta = 10000.0>, layer = 0 : i64} : tensor<?x32xf32>, tensor<?xi32>, !ds.latent_cache<num_layers = 3, width = 20, element_type = f32> q_lora(tensor<24x32xf32>, tensor<24xf32>, tensor<24x24xf32>) kv(tensor<20x32xf32>, tensor<16xf32>, tensor<32x16xf32>) o(tensor<32x12xf32>) -> tensor<?x32xf32>, !ds.latent_cache<num_layers = 3, width = 20, element_type = f32>
  return
}

// -----

// Tests that positions that do not match the tokens are rejected.

func.func @f(%x: tensor<1x32xf32>, %p: tensor<2xi32>, %c: !ds.latent_cache<num_layers = 3, width = 20, element_type = f32>, %qa: tensor<24x32xf32>, %qan: tensor<24xf32>, %qb: tensor<24x24xf32>, %q: tensor<24x32xf32>, %kva: tensor<20x32xf32>, %kvan: tensor<16xf32>, %kvb: tensor<32x16xf32>, %o: tensor<32x16xf32>) {
  // expected-error@+1 {{positions (2) must have one entry per token (1)}}
  %y, %c2 = ds.mla %x, %p, %c q_lora(%qa, %qan, %qb) kv(%kva, %kvan, %kvb) o(%o) {config = #ds.mla_config<num_heads = 2, q_lora_rank = 24, kv_lora_rank = 16, qk_nope_head_dim = 8, qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.3125, rope_theta = 10000.0>, layer = 0 : i64} : tensor<1x32xf32>, tensor<2xi32>, !ds.latent_cache<num_layers = 3, width = 20, element_type = f32> q_lora(tensor<24x32xf32>, tensor<24xf32>, tensor<24x24xf32>) kv(tensor<20x32xf32>, tensor<16xf32>, tensor<32x16xf32>) o(tensor<32x16xf32>) -> tensor<?x32xf32>, !ds.latent_cache<num_layers = 3, width = 20, element_type = f32>
  return
}

// -----

// Tests that noaux_tc without its router bias is rejected.

func.func @f(%x: tensor<?x32xf32>, %r: tensor<8x32xf32>, %b: tensor<8xf32>, %g: tensor<8x12x32xf32>, %u: tensor<8x12x32xf32>, %d: tensor<8x32x12xf32>, %sg: tensor<12x32xf32>, %su: tensor<12x32xf32>, %sd: tensor<32x12xf32>) {
  // expected-error@+1 {{topk_method noaux_tc needs the router bias (e_score_correction_bias)}}
  %y = ds.moe %x router(%r) experts(%g, %u, %d) shared(%sg, %su, %sd) {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4, topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true, routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>} : tensor<?x32xf32> router(tensor<8x32xf32>) experts(tensor<8x12x32xf32>, tensor<8x12x32xf32>, tensor<8x32x12xf32>) shared(tensor<12x32xf32>, tensor<12x32xf32>, tensor<32x12xf32>) -> tensor<?x32xf32>
  return
}

// -----

// Tests that a router bias with greedy routing is rejected.

func.func @f(%x: tensor<?x32xf32>, %r: tensor<8x32xf32>, %b: tensor<8xf32>, %g: tensor<8x12x32xf32>, %u: tensor<8x12x32xf32>, %d: tensor<8x32x12xf32>, %sg: tensor<12x32xf32>, %su: tensor<12x32xf32>, %sd: tensor<32x12xf32>) {
  // expected-error@+1 {{topk_method greedy takes no router bias}}
  %y = ds.moe %x router(%r) bias(%b) experts(%g, %u, %d) shared(%sg, %su, %sd) {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4, topk_group = 2, scoring_func = sigmoid, topk_method = greedy, norm_topk_prob = true, routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>} : tensor<?x32xf32> router(tensor<8x32xf32>) bias(tensor<8xf32>) experts(tensor<8x12x32xf32>, tensor<8x12x32xf32>, tensor<8x32x12xf32>) shared(tensor<12x32xf32>, tensor<12x32xf32>, tensor<32x12xf32>) -> tensor<?x32xf32>
  return
}

// -----

// Tests that a router of the wrong shape is rejected.

func.func @f(%x: tensor<?x32xf32>, %r: tensor<6x32xf32>, %b: tensor<8xf32>, %g: tensor<8x12x32xf32>, %u: tensor<8x12x32xf32>, %d: tensor<8x32x12xf32>, %sg: tensor<12x32xf32>, %su: tensor<12x32xf32>, %sd: tensor<32x12xf32>) {
  // expected-error@+1 {{router must have shape [8, 32], got [6, 32]}}
  %y = ds.moe %x router(%r) bias(%b) experts(%g, %u, %d) shared(%sg, %su, %sd) {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4, topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true, routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>} : tensor<?x32xf32> router(tensor<6x32xf32>) bias(tensor<8xf32>) experts(tensor<8x12x32xf32>, tensor<8x12x32xf32>, tensor<8x32x12xf32>) shared(tensor<12x32xf32>, tensor<12x32xf32>, tensor<32x12xf32>) -> tensor<?x32xf32>
  return
}

// -----

// Tests that expert weights that contradict the config are rejected.

func.func @f(%x: tensor<?x32xf32>, %r: tensor<8x32xf32>, %b: tensor<8xf32>, %g: tensor<8x16x32xf32>, %u: tensor<8x12x32xf32>, %d: tensor<8x32x12xf32>, %sg: tensor<12x32xf32>, %su: tensor<12x32xf32>, %sd: tensor<32x12xf32>) {
  // expected-error@+1 {{experts_gate must have shape [8, 12, 32], got [8, 16, 32]}}
  %y = ds.moe %x router(%r) bias(%b) experts(%g, %u, %d) shared(%sg, %su, %sd) {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4, topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true, routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>} : tensor<?x32xf32> router(tensor<8x32xf32>) bias(tensor<8xf32>) experts(tensor<8x16x32xf32>, tensor<8x12x32xf32>, tensor<8x32x12xf32>) shared(tensor<12x32xf32>, tensor<12x32xf32>, tensor<32x12xf32>) -> tensor<?x32xf32>
  return
}

// -----

// Tests that missing shared experts are rejected.

func.func @f(%x: tensor<?x32xf32>, %r: tensor<8x32xf32>, %b: tensor<8xf32>, %g: tensor<8x12x32xf32>, %u: tensor<8x12x32xf32>, %d: tensor<8x32x12xf32>, %sg: tensor<12x32xf32>, %su: tensor<12x32xf32>, %sd: tensor<32x12xf32>) {
  // expected-error@+1 {{n_shared_experts (1) needs shared expert weights}}
  %y = ds.moe %x router(%r) bias(%b) experts(%g, %u, %d) {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4, topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true, routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>} : tensor<?x32xf32> router(tensor<8x32xf32>) bias(tensor<8xf32>) experts(tensor<8x12x32xf32>, tensor<8x12x32xf32>, tensor<8x32x12xf32>) -> tensor<?x32xf32>
  return
}

// -----

// Tests that shared experts with n_shared_experts 0 are rejected.

func.func @f(%x: tensor<?x32xf32>, %r: tensor<8x32xf32>, %b: tensor<8xf32>, %g: tensor<8x12x32xf32>, %u: tensor<8x12x32xf32>, %d: tensor<8x32x12xf32>, %sg: tensor<12x32xf32>, %su: tensor<12x32xf32>, %sd: tensor<32x12xf32>) {
  // expected-error@+1 {{n_shared_experts is 0 but shared expert weights are given}}
  %y = ds.moe %x router(%r) bias(%b) experts(%g, %u, %d) shared(%sg, %su, %sd) {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4, topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true, routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 0>} : tensor<?x32xf32> router(tensor<8x32xf32>) bias(tensor<8xf32>) experts(tensor<8x12x32xf32>, tensor<8x12x32xf32>, tensor<8x32x12xf32>) shared(tensor<12x32xf32>, tensor<12x32xf32>, tensor<32x12xf32>) -> tensor<?x32xf32>
  return
}

// -----

// Tests that shared experts of the wrong width are rejected.

func.func @f(%x: tensor<?x32xf32>, %r: tensor<8x32xf32>, %b: tensor<8xf32>, %g: tensor<8x12x32xf32>, %u: tensor<8x12x32xf32>, %d: tensor<8x32x12xf32>, %sg: tensor<12x32xf32>, %su: tensor<12x32xf32>, %sd: tensor<32x12xf32>) {
  // expected-error@+1 {{shared_gate must have shape [24, 32], got [12, 32]}}
  %y = ds.moe %x router(%r) bias(%b) experts(%g, %u, %d) shared(%sg, %su, %sd) {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4, topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true, routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 2>} : tensor<?x32xf32> router(tensor<8x32xf32>) bias(tensor<8xf32>) experts(tensor<8x12x32xf32>, tensor<8x12x32xf32>, tensor<8x32x12xf32>) shared(tensor<12x32xf32>, tensor<12x32xf32>, tensor<32x12xf32>) -> tensor<?x32xf32>
  return
}

// -----

// Tests that a cache write whose latent + rope key do not fill the row is rejected.

func.func @f(%c: !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>, %l: tensor<?x12xf32>, %r: tensor<?x4xf32>, %p: tensor<?xi32>) {
  // expected-error@+1 {{latent (12) + rope key (4) must fill the cache width (20)}}
  %c1 = ds.cache_write %c, %l, %r, %p {layer = 0 : i64} : !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>, tensor<?x12xf32>, tensor<?x4xf32>, tensor<?xi32>
  return
}

// -----

// Tests that a cache write into an fp8 cache whose rope_width is not the rope key's is rejected.

func.func @f(%c: !ds.latent_cache<num_layers = 1, width = 264, element_type = f8E4M3FN, rope_width = 8, scale_group = 128>, %l: tensor<?x260xf32>, %r: tensor<?x4xf32>, %p: tensor<?xi32>) {
  // expected-error@+1 {{fp8 latent cache rope_width (8) must equal the rope width (4)}}
  %c1 = ds.cache_write %c, %l, %r, %p {layer = 0 : i64} : !ds.latent_cache<num_layers = 1, width = 264, element_type = f8E4M3FN, rope_width = 8, scale_group = 128>, tensor<?x260xf32>, tensor<?x4xf32>, tensor<?xi32>
  return
}

// -----

// Tests that latent attention over an fp8 cache whose rope_width is not the rope query's is rejected.

func.func @f(%ql: tensor<?x2x260xf32>, %qr: tensor<?x2x4xf32>, %c: !ds.latent_cache<num_layers = 1, width = 264, element_type = f8E4M3FN, rope_width = 8, scale_group = 128>, %p: tensor<?xi32>) {
  // expected-error@+1 {{fp8 latent cache rope_width (8) must equal the rope width (4)}}
  %u = ds.latent_attention %ql, %qr, %c, %p {layer = 0 : i64, scale = 1.0 : f64} : tensor<?x2x260xf32>, tensor<?x2x4xf32>, !ds.latent_cache<num_layers = 1, width = 264, element_type = f8E4M3FN, rope_width = 8, scale_group = 128>, tensor<?xi32> -> tensor<?x2x260xf32>
  return
}

// -----

// Tests that latent attention with query widths that do not match the cache is rejected.

func.func @f(%ql: tensor<?x2x16xf32>, %qr: tensor<?x2x8xf32>, %c: !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>, %p: tensor<?xi32>) {
  // expected-error@+1 {{query widths (16 + 8) must equal the cache width (20)}}
  %u = ds.latent_attention %ql, %qr, %c, %p {layer = 0 : i64, scale = 1.0 : f64} : tensor<?x2x16xf32>, tensor<?x2x8xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>, tensor<?xi32> -> tensor<?x2x16xf32>
  return
}

// -----

// Tests that a head matmul whose slice leaves the head's rows is rejected.

func.func @f(%x: tensor<?x2x8xf32>, %w: tensor<32x16xf32>) {
  // expected-error@+1 {{weight rows (32) must be heads (2) x group (16) with offset + rows <= group}}
  %y = ds.head_matmul %x, %w {group = 16 : i64, offset = 10 : i64, rows = 8 : i64} : tensor<?x2x8xf32>, tensor<32x16xf32> -> tensor<?x2x16xf32>
  return
}

// -----

// Tests that a head matmul told the ragged step's query_start but not which
// sequences to skip is rejected.

func.func @f(%x: tensor<?x2x8xf32>, %w: tensor<32x16xf32>, %qs: tensor<?xi32>) {
  // expected-error@+1 {{skip(query_start) and naive_min_tokens go together: got query_start only}}
  %y = ds.head_matmul %x, %w skip(%qs : tensor<?xi32>) {group = 16 : i64, offset = 0 : i64, rows = 8 : i64} : tensor<?x2x8xf32>, tensor<32x16xf32> -> tensor<?x2x16xf32>
  return
}

// -----

// Tests that a head matmul given a skip threshold without the query_start
// to apply it to is rejected.

func.func @f(%x: tensor<?x2x8xf32>, %w: tensor<32x16xf32>) {
  // expected-error@+1 {{skip(query_start) and naive_min_tokens go together: got naive_min_tokens only}}
  %y = ds.head_matmul %x, %w {group = 16 : i64, naive_min_tokens = 4 : i64, offset = 0 : i64, rows = 8 : i64} : tensor<?x2x8xf32>, tensor<32x16xf32> -> tensor<?x2x16xf32>
  return
}

// -----

// Tests that routing without the bias noaux_tc needs is rejected.

func.func @f(%l: tensor<?x8xf32>) {
  // expected-error@+1 {{a router bias is needed exactly for noaux_tc}}
  %i, %w = ds.moe_route %l {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4, topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true, routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>} : tensor<?x8xf32> -> tensor<?x2xi32>, tensor<?x2xf32>
  return
}

// -----

// Tests that the fused gate|up GEMM needs an even (packed) weight.

func.func @f(%x: tensor<?x32xf32>) {
  %w = ds.weight "gu" : tensor<25x32xf32>
  // expected-error@+1 {{weight must be a packed [2F, in] gate|up, got [25, 32]}}
  %h = ds.linear_silu_mul %x, %w : tensor<?x32xf32>, tensor<25x32xf32> -> tensor<?x12xf32>
  return
}

// -----

// Tests that the fused gate|up GEMM's result is half the packed width.

func.func @f(%x: tensor<?x32xf32>) {
  %w = ds.weight "gu" : tensor<24x32xf32>
  // expected-error@+1 {{result must have shape [?, 12], got [?, 24]}}
  %h = ds.linear_silu_mul %x, %w : tensor<?x32xf32>, tensor<24x32xf32> -> tensor<?x24xf32>
  return
}

// -----

// Tests that the fused routing + permutation checks the offsets' size.

func.func @f(%l: tensor<?x8xf32>, %x: tensor<?x32xf32>, %b: tensor<8xf32>) {
  // expected-error@+1 {{offsets must have shape [9], got [8]}}
  %i, %w, %xp, %off, %rows = ds.moe_route_permute %l, %x bias(%b) {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4, topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true, routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>} : tensor<?x8xf32>, tensor<?x32xf32> bias(tensor<8xf32>) -> tensor<?x2xi32>, tensor<?x2xf32>, rows(tensor<?x32xf32>), tensor<8xi32>, tensor<?xi32>
  return
}

// -----

// Tests that the fused routing + permutation keeps the rows' width.

func.func @f(%l: tensor<?x8xf32>, %x: tensor<?x32xf32>, %b: tensor<8xf32>) {
  // expected-error@+1 {{permuted must have shape [?, 32], got [?, 16]}}
  %i, %w, %xp, %off, %rows = ds.moe_route_permute %l, %x bias(%b) {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4, topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true, routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>} : tensor<?x8xf32>, tensor<?x32xf32> bias(tensor<8xf32>) -> tensor<?x2xi32>, tensor<?x2xf32>, rows(tensor<?x16xf32>), tensor<9xi32>, tensor<?xi32>
  return
}

// -----

// Tests that the fused routing + permutation needs the noaux_tc bias.

func.func @f(%l: tensor<?x8xf32>, %x: tensor<?x32xf32>) {
  // expected-error@+1 {{a router bias is needed exactly for noaux_tc}}
  %i, %w, %xp, %off, %rows = ds.moe_route_permute %l, %x {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4, topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true, routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>} : tensor<?x8xf32>, tensor<?x32xf32> -> tensor<?x2xi32>, tensor<?x2xf32>, rows(tensor<?x32xf32>), tensor<9xi32>, tensor<?xi32>
  return
}

// -----

// Tests that routing with folded shared experts has their columns.

func.func @f(%l: tensor<?x8xf32>, %x: tensor<?x32xf32>, %b: tensor<8xf32>) {
  // expected-error@+1 {{expert_ids must have shape [?, 3], got [?, 2]}}
  %i, %w, %xp, %off, %rows = ds.moe_route_permute %l, %x bias(%b) {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4, topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true, routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>, shared_experts = 1 : i64} : tensor<?x8xf32>, tensor<?x32xf32> bias(tensor<8xf32>) -> tensor<?x2xi32>, tensor<?x2xf32>, rows(tensor<?x32xf32>), tensor<10xi32>, tensor<?xi32>
  return
}

// -----

// Tests that a slice appended to a stack has the stack's inner shape.

func.func @f() {
  %s = ds.stacked_weight "e.*.w" : tensor<8x12x32xf32>
  %g = ds.weight "shared" : tensor<12x16xf32>
  // expected-error@+1 {{weights [8, 12, 32] and [12, 16] differ beyond their first dimension}}
  %c = ds.concat_weights %s, %g : tensor<8x12x32xf32>, tensor<12x16xf32> -> tensor<9x12x32xf32>
  return
}

// -----

// Tests that grouped matmul offsets must have experts + 1 entries.

func.func @f(%x: tensor<?x32xf32>, %w: tensor<8x12x32xf32>, %o: tensor<8xi32>) {
  // expected-error@+1 {{offsets must have shape [9], got [8]}}
  %y = ds.grouped_matmul %x, %w, %o : tensor<?x32xf32>, tensor<8x12x32xf32>, tensor<8xi32> -> tensor<?x12xf32>
  return
}

// -----

// Tests that a gathered grouped product has a whole number of slots per
// token and a row per slot.

func.func @f(%x: tensor<4x32xf32>, %w: tensor<8x12x32xf32>, %o: tensor<9xi32>, %r: tensor<10xi32>) {
  // expected-error@+1 {{gather(row_of_slot) has 10 slots, not a whole number per input row (4)}}
  %y = ds.grouped_matmul %x, %w, %o gather(%r) : tensor<4x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> gather(tensor<10xi32>) -> tensor<10x12xf32>
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>, %w: tensor<8x12x32xf32>, %o: tensor<9xi32>, %r: tensor<8xi32>) {
  // expected-error@+1 {{result has 4 rows but gather(row_of_slot) has 8 slots}}
  %y = ds.grouped_matmul_silu_mul %x, %w, %w, %o gather(%r) : tensor<?x32xf32>, tensor<8x12x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> gather(tensor<8xi32>) -> tensor<4x12xf32>
  return
}

// -----

// Tests that an ungathered grouped product keeps its input's rows.

func.func @f(%x: tensor<4x32xf32>, %w: tensor<8x12x32xf32>, %o: tensor<9xi32>) {
  // expected-error@+1 {{result has 8 tokens but the input has 4}}
  %y = ds.grouped_matmul %x, %w, %o : tensor<4x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> -> tensor<8x12xf32>
  return
}

// -----

// Tests that the fused gate|up grouped product needs gate and up of one shape.

func.func @f(%x: tensor<?x32xf32>, %g: tensor<8x12x32xf32>, %u: tensor<8x16x32xf32>, %o: tensor<9xi32>) {
  // expected-error@+1 {{gate and up must be [experts, out, in] of one shape, got [8, 12, 32] and [8, 16, 32]}}
  %y = ds.grouped_matmul_silu_mul %x, %g, %u, %o : tensor<?x32xf32>, tensor<8x12x32xf32>, tensor<8x16x32xf32>, tensor<9xi32> -> tensor<?x12xf32>
  return
}

// -----

// Tests that the fused gate|up grouped product's offsets, input and result
// follow the weights.

func.func @f(%x: tensor<?x32xf32>, %g: tensor<8x12x32xf32>, %o: tensor<8xi32>) {
  // expected-error@+1 {{offsets must have shape [9], got [8]}}
  %y = ds.grouped_matmul_silu_mul %x, %g, %g, %o : tensor<?x32xf32>, tensor<8x12x32xf32>, tensor<8x12x32xf32>, tensor<8xi32> -> tensor<?x12xf32>
  return
}

// -----

func.func @f(%x: tensor<?x16xf32>, %g: tensor<8x12x32xf32>, %o: tensor<9xi32>) {
  // expected-error@+1 {{input must have shape [?, 32], got [?, 16]}}
  %y = ds.grouped_matmul_silu_mul %x, %g, %g, %o : tensor<?x16xf32>, tensor<8x12x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> -> tensor<?x12xf32>
  return
}

// -----

func.func @f(%x: tensor<?x32xf32>, %g: tensor<8x12x32xf32>, %o: tensor<9xi32>) {
  // expected-error@+1 {{result must have shape [?, 12], got [?, 24]}}
  %y = ds.grouped_matmul_silu_mul %x, %g, %g, %o : tensor<?x32xf32>, tensor<8x12x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> -> tensor<?x24xf32>
  return
}

// -----

// Tests that rope over a last dimension other than the rope dim is rejected.

func.func @f(%x: tensor<?x2x6xf32>, %p: tensor<?xi32>) {
  // expected-error@+1 {{input must be [tokens, (heads,) 4], got [?, 2, 6]}}
  %y = ds.rope %x, %p {config = #ds.mla_config<num_heads = 2, kv_lora_rank = 16, qk_nope_head_dim = 8, qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.3125, rope_theta = 10000.0>} : tensor<?x2x6xf32>, tensor<?xi32>
  return
}

// -----

// Tests that naive attention with a kv_b_proj that does not match heads x (nope + v) is rejected.

func.func @f(%qn: tensor<?x2x8xf32>, %qr: tensor<?x2x4xf32>, %c: !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>, %p: tensor<?xi32>, %w: tensor<28x16xf32>) {
  // expected-error@+1 {{kv_b_proj must have shape [32, 16], got [28, 16]}}
  %o = ds.naive_attention %qn, %qr, %c, %p, %w {layer = 0 : i64, scale = 1.0 : f64} : tensor<?x2x8xf32>, tensor<?x2x4xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>, tensor<?xi32>, tensor<28x16xf32> -> tensor<?x2x8xf32>
  return
}

// -----

// Tests that stacking weights whose trailing dimensions differ is rejected.

func.func @f(%a: tensor<48x32xf32>, %b: tensor<48x16xf32>) {
  // expected-error@+1 {{weights [48, 32] and [48, 16] differ beyond their first dimension}}
  %w = ds.concat_weights %a, %b : tensor<48x32xf32>, tensor<48x16xf32> -> tensor<96x32xf32>
  return
}

// -----

// Tests that a packed gate|up input of odd width is rejected.

func.func @f(%x: tensor<?x95xf32>) {
  // expected-error@+1 {{input width (95) must be even}}
  %h = ds.silu_mul_packed %x : tensor<?x95xf32> -> tensor<?x47xf32>
  return
}

// -----

// Tests that ds.mtp_project rejects an eh_proj that is not [D, 2D].

func.func @f(%e: tensor<?x32xf32>, %h: tensor<?x32xf32>, %p: tensor<?xi32>, %n: tensor<32xf32>, %w: tensor<32x32xf32>) -> tensor<?x32xf32> {
  // expected-error@+1 {{'ds.mtp_project' op eh_proj must have shape [32, 64], got [32, 32]}}
  %x = ds.mtp_project %e, %h, %p, %n, %n, %w {eps = 1.0e-06 : f64} : tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>, tensor<32xf32>, tensor<32xf32>, tensor<32x32xf32> -> tensor<?x32xf32>
  return %x : tensor<?x32xf32>
}

// -----

// Tests that ds.mtp_project rejects hidden states of another width.

func.func @f(%e: tensor<?x32xf32>, %h: tensor<?x16xf32>, %p: tensor<?xi32>, %n: tensor<32xf32>, %w: tensor<32x64xf32>) -> tensor<?x32xf32> {
  // expected-error@+1 {{'ds.mtp_project' op hidden must have shape [?, 32], got [?, 16]}}
  %x = ds.mtp_project %e, %h, %p, %n, %n, %w {eps = 1.0e-06 : f64} : tensor<?x32xf32>, tensor<?x16xf32>, tensor<?xi32>, tensor<32xf32>, tensor<32xf32>, tensor<32x64xf32> -> tensor<?x32xf32>
  return %x : tensor<?x32xf32>
}

// -----

// Tests that ds.mtp_project rejects a token count that disagrees.

func.func @f(%e: tensor<4x32xf32>, %h: tensor<3x32xf32>, %p: tensor<4xi32>, %n: tensor<32xf32>, %w: tensor<32x64xf32>) -> tensor<4x32xf32> {
  // expected-error@+1 {{'ds.mtp_project' op hidden must have shape [4, 32], got [3, 32]}}
  %x = ds.mtp_project %e, %h, %p, %n, %n, %w {eps = 1.0e-06 : f64} : tensor<4x32xf32>, tensor<3x32xf32>, tensor<4xi32>, tensor<32xf32>, tensor<32xf32>, tensor<32x64xf32> -> tensor<4x32xf32>
  return %x : tensor<4x32xf32>
}

// -----

// Tests that ds.mtp_project rejects a norm weight of the wrong size and a
// non-positive epsilon.

func.func @f(%e: tensor<?x32xf32>, %h: tensor<?x32xf32>, %p: tensor<?xi32>, %n: tensor<32xf32>, %m: tensor<16xf32>, %w: tensor<32x64xf32>) -> tensor<?x32xf32> {
  // expected-error@+1 {{'ds.mtp_project' op hnorm must have shape [32], got [16]}}
  %x = ds.mtp_project %e, %h, %p, %n, %m, %w {eps = 1.0e-06 : f64} : tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>, tensor<32xf32>, tensor<16xf32>, tensor<32x64xf32> -> tensor<?x32xf32>
  return %x : tensor<?x32xf32>
}

// -----

// Tests that ds.mtp_concat's result must be [T, 2D].

func.func @f(%e: tensor<?x32xf32>, %h: tensor<?x32xf32>, %p: tensor<?xi32>) -> tensor<?x32xf32> {
  // expected-error@+1 {{'ds.mtp_concat' op result must have shape [?, 64], got [?, 32]}}
  %x = ds.mtp_concat %e, %h, %p : tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
  return %x : tensor<?x32xf32>
}

// -----

// Tests that ds.moe_dispatch needs whole experts per rank.

func.func @f(%xp: tensor<?x32xf32>, %off: tensor<8xi32>) {
  // expected-error@+1 {{'ds.moe_dispatch' op offsets must delimit a positive multiple of ranks (2) experts, got [8]}}
  %r, %roff, %n = ds.moe_dispatch %xp, %off {ranks = 2 : i64} : tensor<?x32xf32>, tensor<8xi32> -> tensor<?x32xf32>, tensor<5xi32>, tensor<2x4xi32>
  return
}

// -----

// Tests that ds.moe_dispatch's counts are [ranks, local experts].

func.func @f(%xp: tensor<?x32xf32>, %off: tensor<9xi32>) {
  // expected-error@+1 {{'ds.moe_dispatch' op counts must have shape [2, 4], got [4, 2]}}
  %r, %roff, %n = ds.moe_dispatch %xp, %off {ranks = 2 : i64} : tensor<?x32xf32>, tensor<9xi32> -> tensor<?x32xf32>, tensor<5xi32>, tensor<4x2xi32>
  return
}

// -----

// Tests that ds.moe_collect returns rows of the experts' output width.

func.func @f(%y: tensor<?x32xf32>, %n: tensor<2x4xi32>, %off: tensor<9xi32>) {
  // expected-error@+1 {{'ds.moe_collect' op result must have shape [?, 32], got [?, 16]}}
  %b = ds.moe_collect %y, %n, %off {ranks = 2 : i64} : tensor<?x32xf32>, tensor<2x4xi32>, tensor<9xi32> -> tensor<?x16xf32>
  return
}
