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

// -----

// Tests that MLA with the q_lora path and YaRN round-trips with its config.

// CHECK-LABEL: func.func @mla_q_lora
// CHECK: ds.mla %{{[^ ,)]+}}, %{{[^ ,)]+}}, %{{[^ ,)]+}} q_lora(%{{[^ ,)]+}}, %{{[^ ,)]+}}, %{{[^ ,)]+}}) kv(%{{[^ ,)]+}}, %{{[^ ,)]+}}, %{{[^ ,)]+}}) o(%{{[^ ,)]+}})
// CHECK-SAME: config = #ds.mla_config<num_heads = 2, q_lora_rank = 24, kv_lora_rank = 16, qk_nope_head_dim = 8, qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.3125, rope_theta = 10000.0, rope_scaling = #ds.yarn<factor = 4.0, original_max_position_embeddings = 16, beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 1.0>>
// CHECK-SAME: layer = 1 : i64
// CHECK-SAME: -> tensor<?x32xf32>, !ds.latent_cache<num_layers = 3, width = 20, element_type = f32>
func.func @mla_q_lora(%x: tensor<?x32xf32>, %pos: tensor<?xi32>,
                      %c: !ds.latent_cache<num_layers = 3, width = 20, element_type = f32>)
    -> (tensor<?x32xf32>, !ds.latent_cache<num_layers = 3, width = 20, element_type = f32>) {
  %qa = ds.weight "model.layers.1.self_attn.q_a_proj.weight" : tensor<24x32xf32>
  %qan = ds.weight "model.layers.1.self_attn.q_a_layernorm.weight" : tensor<24xf32>
  %qb = ds.weight "model.layers.1.self_attn.q_b_proj.weight" : tensor<24x24xf32>
  %kva = ds.weight "model.layers.1.self_attn.kv_a_proj_with_mqa.weight" : tensor<20x32xf32>
  %kvan = ds.weight "model.layers.1.self_attn.kv_a_layernorm.weight" : tensor<16xf32>
  %kvb = ds.weight "model.layers.1.self_attn.kv_b_proj.weight" : tensor<32x16xf32>
  %o = ds.weight "model.layers.1.self_attn.o_proj.weight" : tensor<32x16xf32>
  %y, %c2 = ds.mla %x, %pos, %c q_lora(%qa, %qan, %qb) kv(%kva, %kvan, %kvb) o(%o)
      {config = #ds.mla_config<num_heads = 2, q_lora_rank = 24, kv_lora_rank = 16,
         qk_nope_head_dim = 8, qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.3125,
         rope_theta = 10000.0, rope_scaling = #ds.yarn<factor = 4.0,
         original_max_position_embeddings = 16, beta_fast = 32.0, beta_slow = 1.0,
         mscale = 1.0, mscale_all_dim = 1.0>>, layer = 1 : i64}
      : tensor<?x32xf32>, tensor<?xi32>, !ds.latent_cache<num_layers = 3, width = 20, element_type = f32>
        q_lora(tensor<24x32xf32>, tensor<24xf32>, tensor<24x24xf32>)
        kv(tensor<20x32xf32>, tensor<16xf32>, tensor<32x16xf32>) o(tensor<32x16xf32>)
      -> tensor<?x32xf32>, !ds.latent_cache<num_layers = 3, width = 20, element_type = f32>
  return %y, %c2 : tensor<?x32xf32>, !ds.latent_cache<num_layers = 3, width = 20, element_type = f32>
}

// -----

// Tests that MLA with a direct q_proj (no q_lora_rank, no YaRN) round-trips.

// CHECK-LABEL: func.func @mla_q_proj
// CHECK: ds.mla %{{[^ ,)]+}}, %{{[^ ,)]+}}, %{{[^ ,)]+}} q(%{{[^ ,)]+}}) kv(
// CHECK-SAME: #ds.mla_config<num_heads = 2, kv_lora_rank = 16, qk_nope_head_dim = 8, qk_rope_head_dim = 4, v_head_dim = 6, softmax_scale = 0.25, rope_theta = 500.5>
func.func @mla_q_proj(%x: tensor<1x32xf32>, %pos: tensor<1xi32>,
                      %c: !ds.latent_cache<num_layers = 1, width = 20, element_type = bf16>)
    -> tensor<1x32xf32> {
  %q = ds.weight "model.layers.0.self_attn.q_proj.weight" : tensor<24x32xbf16>
  %kva = ds.weight "model.layers.0.self_attn.kv_a_proj_with_mqa.weight" : tensor<20x32xbf16>
  %kvan = ds.weight "model.layers.0.self_attn.kv_a_layernorm.weight" : tensor<16xbf16>
  %kvb = ds.weight "model.layers.0.self_attn.kv_b_proj.weight" : tensor<28x16xbf16>
  %o = ds.weight "model.layers.0.self_attn.o_proj.weight" : tensor<32x12xbf16>
  %y, %c2 = ds.mla %x, %pos, %c q(%q) kv(%kva, %kvan, %kvb) o(%o)
      {config = #ds.mla_config<num_heads = 2, kv_lora_rank = 16, qk_nope_head_dim = 8,
         qk_rope_head_dim = 4, v_head_dim = 6, softmax_scale = 0.25, rope_theta = 500.5>,
       layer = 0 : i64}
      : tensor<1x32xf32>, tensor<1xi32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = bf16>
        q(tensor<24x32xbf16>) kv(tensor<20x32xbf16>, tensor<16xbf16>, tensor<28x16xbf16>) o(tensor<32x12xbf16>)
      -> tensor<1x32xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = bf16>
  return %y : tensor<1x32xf32>
}

// -----

// Tests that MoE with a router bias and shared experts round-trips, stacked
// expert weights included.

// CHECK-LABEL: func.func @moe_v3
// CHECK: ds.stacked_weight "model.layers.1.mlp.experts.*.gate_proj.weight" : tensor<8x12x32xf32>
// CHECK: ds.moe %{{[^ ,)]+}} router(%{{[^ ,)]+}}) bias(%{{[^ ,)]+}}) experts(%{{[^ ,)]+}}, %{{[^ ,)]+}}, %{{[^ ,)]+}}) shared(%{{[^ ,)]+}}, %{{[^ ,)]+}}, %{{[^ ,)]+}})
// CHECK-SAME: #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4, topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true, routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>
func.func @moe_v3(%x: tensor<?x32xf32>) -> tensor<?x32xf32> {
  %r = ds.weight "model.layers.1.mlp.gate.weight" : tensor<8x32xf32>
  %b = ds.weight "model.layers.1.mlp.gate.e_score_correction_bias" : tensor<8xf32>
  %g = ds.stacked_weight "model.layers.1.mlp.experts.*.gate_proj.weight" : tensor<8x12x32xf32>
  %u = ds.stacked_weight "model.layers.1.mlp.experts.*.up_proj.weight" : tensor<8x12x32xf32>
  %d = ds.stacked_weight "model.layers.1.mlp.experts.*.down_proj.weight" : tensor<8x32x12xf32>
  %sg = ds.weight "model.layers.1.mlp.shared_experts.gate_proj.weight" : tensor<12x32xf32>
  %su = ds.weight "model.layers.1.mlp.shared_experts.up_proj.weight" : tensor<12x32xf32>
  %sd = ds.weight "model.layers.1.mlp.shared_experts.down_proj.weight" : tensor<32x12xf32>
  %y = ds.moe %x router(%r) bias(%b) experts(%g, %u, %d) shared(%sg, %su, %sd)
      {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4, topk_group = 2,
         scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true,
         routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12,
         n_shared_experts = 1>}
      : tensor<?x32xf32> router(tensor<8x32xf32>) bias(tensor<8xf32>)
        experts(tensor<8x12x32xf32>, tensor<8x12x32xf32>, tensor<8x32x12xf32>)
        shared(tensor<12x32xf32>, tensor<12x32xf32>, tensor<32x12xf32>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

// Tests that MoE without bias or shared experts (V2 greedy) round-trips.

// CHECK-LABEL: func.func @moe_v2
// CHECK: ds.moe %{{[^ ,)]+}} router(%{{[^ ,)]+}}) experts(
// CHECK-SAME: scoring_func = softmax, topk_method = greedy, norm_topk_prob = false, routed_scaling_factor = 16.0, norm_rule = v2
// CHECK-NOT: shared(
func.func @moe_v2(%x: tensor<?x32xf32>, %r: tensor<6x32xbf16>, %g: tensor<6x12x32xbf16>,
                  %u: tensor<6x12x32xbf16>, %d: tensor<6x32x12xbf16>) -> tensor<?x32xf32> {
  %y = ds.moe %x router(%r) experts(%g, %u, %d)
      {config = #ds.moe_config<num_experts = 6, top_k = 2, n_group = 1, topk_group = 1,
         scoring_func = softmax, topk_method = greedy, norm_topk_prob = false,
         routed_scaling_factor = 16.0, norm_rule = v2, intermediate_size = 12,
         n_shared_experts = 0>}
      : tensor<?x32xf32> router(tensor<6x32xbf16>)
        experts(tensor<6x12x32xbf16>, tensor<6x12x32xbf16>, tensor<6x32x12xbf16>) -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

// Tests that the kernel-level ops (what ds-absorb-mla and ds-dispatch-experts
// produce) round-trip.

// CHECK-LABEL: func.func @kernels
// CHECK: ds.rope %{{[^ ,)]+}}, %{{[^ ,)]+}} {config = #ds.mla_config<{{.*}}>} : tensor<?x2x4xf32>, tensor<?xi32>
// CHECK: ds.cache_write %{{[^ ,)]+}}, %{{[^ ,)]+}}, %{{[^ ,)]+}}, %{{[^ ,)]+}} {layer = 0 : i64} : !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>, tensor<?x16xf32>, tensor<?x4xf32>, tensor<?xi32>
// CHECK: ds.head_matmul {{.*}} {group = 16 : i64, offset = 0 : i64, rows = 8 : i64} : tensor<?x2x8xf32>, tensor<32x16xf32> -> tensor<?x2x16xf32>
// CHECK: ds.latent_attention {{.*}} {layer = 0 : i64, scale = 3.125000e-01 : f64} : tensor<?x2x16xf32>, tensor<?x2x4xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>, tensor<?xi32> -> tensor<?x2x16xf32>
// CHECK: ds.head_matmul {{.*}} transpose}
// CHECK: ds.head_matmul %{{[^ ,)]+}}, %{{[^ ,)]+}} skip(%{{[^ ,)]+}} : tensor<?xi32>) {group = 16 : i64, naive_min_tokens = 17 : i64, offset = 8 : i64, rows = 8 : i64, transpose} : tensor<?x2x16xf32>, tensor<32x16xf32> -> tensor<?x2x8xf32>
// CHECK: ds.moe_route %{{[^ ,)]+}} bias(%{{[^ ,)]+}}) {config = #ds.moe_config<{{.*}}>} : tensor<?x8xf32> bias(tensor<8xf32>) -> tensor<?x2xi32>, tensor<?x2xf32>
// CHECK: ds.moe_permute {{.*}} {num_experts = 8 : i64} : tensor<?x32xf32>, tensor<?x2xi32> -> tensor<?x32xf32>, tensor<9xi32>, tensor<?xi32>
// CHECK: ds.grouped_matmul {{.*}} : tensor<?x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> -> tensor<?x12xf32>
// CHECK: ds.silu_mul {{.*}} : tensor<?x12xf32>
// CHECK: ds.add_rms_norm {{.*}} {eps = 9.9999999999999995E-7 : f64} : tensor<?x32xf32>, tensor<32xf32>
// CHECK: ds.concat_weights {{.*}} : tensor<8x12x32xf32>, tensor<8x12x32xf32> -> tensor<16x12x32xf32>
// CHECK: ds.silu_mul_packed {{.*}} : tensor<?x24xf32> -> tensor<?x12xf32>
// CHECK: ds.moe_combine {{.*}} : tensor<?x12xf32>, tensor<?xi32>, tensor<?x2xf32> -> tensor<?x12xf32>
// CHECK: ds.linear_silu_mul %{{[^ ,)]+}}, %{{[^ ,)]+}} : tensor<?x32xf32>, tensor<24x32xf32> -> tensor<?x12xf32>
// CHECK: ds.moe_route_permute %{{[^ ,)]+}}, %{{[^ ,)]+}} bias(%{{[^ ,)]+}}) {config = #ds.moe_config<{{.*}}>} : tensor<?x8xf32>, tensor<?x32xf32> bias(tensor<8xf32>) -> tensor<?x2xi32>, tensor<?x2xf32>, rows(tensor<?x32xf32>), tensor<9xi32>, tensor<?xi32>
// CHECK: %{{.+}}, %{{.+}}, %[[GOFF:.+]], %[[GROWS:.+]] = ds.moe_route_permute %{{[^ ,)]+}}, %{{[^ ,)]+}} bias(%{{[^ ,)]+}}) {config = #ds.moe_config<{{.*}}>} : tensor<?x8xf32>, tensor<?x32xf32> bias(tensor<8xf32>) -> tensor<?x2xi32>, tensor<?x2xf32>, tensor<9xi32>, tensor<?xi32>
// CHECK: ds.grouped_matmul %{{[^ ,)]+}}, %{{[^ ,)]+}}, %[[GOFF]] gather(%[[GROWS]]) : tensor<?x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> gather(tensor<?xi32>) -> tensor<?x12xf32>
// CHECK: ds.grouped_matmul_silu_mul %{{[^ ,)]+}}, %{{[^ ,)]+}}, %{{[^ ,)]+}}, %[[GOFF]] gather(%[[GROWS]]) : tensor<?x32xf32>, tensor<8x12x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> gather(tensor<?xi32>) -> tensor<?x12xf32>
func.func @kernels(%q: tensor<?x2x4xf32>, %pos: tensor<?xi32>, %lat: tensor<?x16xf32>, %kr: tensor<?x4xf32>,
                   %c: !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>, %qn: tensor<?x2x8xf32>,
                   %kvb: tensor<32x16xf32>, %logits: tensor<?x8xf32>, %b: tensor<8xf32>, %x: tensor<?x32xf32>,
                   %w: tensor<8x12x32xf32>) -> (tensor<?x2x8xf32>, tensor<?x12xf32>) {
  %r = ds.rope %q, %pos {config = #ds.mla_config<num_heads = 2, kv_lora_rank = 16, qk_nope_head_dim = 8,
         qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.3125, rope_theta = 10000.0>}
      : tensor<?x2x4xf32>, tensor<?xi32>
  %c1 = ds.cache_write %c, %lat, %kr, %pos {layer = 0 : i64}
      : !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>, tensor<?x16xf32>, tensor<?x4xf32>, tensor<?xi32>
  %ql = ds.head_matmul %qn, %kvb {group = 16 : i64, offset = 0 : i64, rows = 8 : i64}
      : tensor<?x2x8xf32>, tensor<32x16xf32> -> tensor<?x2x16xf32>
  %u = ds.latent_attention %ql, %r, %c1, %pos {layer = 0 : i64, scale = 0.3125 : f64}
      : tensor<?x2x16xf32>, tensor<?x2x4xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>, tensor<?xi32> -> tensor<?x2x16xf32>
  %o = ds.head_matmul %u, %kvb {group = 16 : i64, offset = 8 : i64, rows = 8 : i64, transpose}
      : tensor<?x2x16xf32>, tensor<32x16xf32> -> tensor<?x2x8xf32>
  %os = ds.head_matmul %u, %kvb skip(%pos : tensor<?xi32>)
      {group = 16 : i64, naive_min_tokens = 17 : i64, offset = 8 : i64, rows = 8 : i64, transpose}
      : tensor<?x2x16xf32>, tensor<32x16xf32> -> tensor<?x2x8xf32>
  %ids, %rw = ds.moe_route %logits bias(%b) {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4,
         topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true,
         routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>}
      : tensor<?x8xf32> bias(tensor<8xf32>) -> tensor<?x2xi32>, tensor<?x2xf32>
  %xp, %off, %rows = ds.moe_permute %x, %ids {num_experts = 8 : i64}
      : tensor<?x32xf32>, tensor<?x2xi32> -> tensor<?x32xf32>, tensor<9xi32>, tensor<?xi32>
  %g = ds.grouped_matmul %xp, %w, %off : tensor<?x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> -> tensor<?x12xf32>
  %h = ds.silu_mul %g, %g : tensor<?x12xf32>
  %c0i = arith.constant 0 : index
  %c0d = tensor.dim %g, %c0i : tensor<?x12xf32>
  %nw = ds.weight "norm" : tensor<32xf32>
  %sum, %normed = ds.add_rms_norm %x, %x, %nw {eps = 1.0e-06 : f64} : tensor<?x32xf32>, tensor<32xf32>
  %cw = ds.concat_weights %w, %w : tensor<8x12x32xf32>, tensor<8x12x32xf32> -> tensor<16x12x32xf32>
  %gu = tensor.empty(%c0d) : tensor<?x24xf32>
  %hp = ds.silu_mul_packed %gu : tensor<?x24xf32> -> tensor<?x12xf32>
  %y = ds.moe_combine %h, %rows, %rw : tensor<?x12xf32>, tensor<?xi32>, tensor<?x2xf32> -> tensor<?x12xf32>
  %gu24 = ds.weight "gate_up" : tensor<24x32xf32>
  %lsm = ds.linear_silu_mul %x, %gu24 : tensor<?x32xf32>, tensor<24x32xf32> -> tensor<?x12xf32>
  %fi, %fw, %fxp, %foff, %frows = ds.moe_route_permute %logits, %x bias(%b) {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4,
         topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true,
         routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>}
      : tensor<?x8xf32>, tensor<?x32xf32> bias(tensor<8xf32>) -> tensor<?x2xi32>, tensor<?x2xf32>, rows(tensor<?x32xf32>), tensor<9xi32>, tensor<?xi32>
  %gi, %gw, %goff, %grows = ds.moe_route_permute %logits, %x bias(%b) {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4,
         topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true,
         routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>}
      : tensor<?x8xf32>, tensor<?x32xf32> bias(tensor<8xf32>) -> tensor<?x2xi32>, tensor<?x2xf32>, tensor<9xi32>, tensor<?xi32>
  %gg = ds.grouped_matmul %x, %w, %goff gather(%grows) : tensor<?x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> gather(tensor<?xi32>) -> tensor<?x12xf32>
  %gs = ds.grouped_matmul_silu_mul %x, %w, %w, %goff gather(%grows) : tensor<?x32xf32>, tensor<8x12x32xf32>, tensor<8x12x32xf32>, tensor<9xi32> gather(tensor<?xi32>) -> tensor<?x12xf32>
  return %o, %y : tensor<?x2x8xf32>, tensor<?x12xf32>
}

// -----

// Tests that the multi-token-prediction ops round-trip.

// CHECK-LABEL: func.func @mtp
func.func @mtp(%e: tensor<?x32xf32>, %h: tensor<?x32xf32>, %p: tensor<?xi32>) -> (tensor<?x32xf32>, tensor<?x64xf32>) {
  %en = ds.weight "model.layers.3.enorm.weight" : tensor<32xf32>
  %hn = ds.weight "model.layers.3.hnorm.weight" : tensor<32xf32>
  %eh = ds.weight "model.layers.3.eh_proj.weight" : tensor<32x64xbf16>
  // CHECK: ds.mtp_project %{{[^ ,]+}}, %{{[^ ,]+}}, %{{[^ ,]+}}, %{{[^ ,]+}}, %{{[^ ,]+}}, %{{[^ ,]+}} {eps = 9.9999999999999995E-7 : f64} : tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>, tensor<32xf32>, tensor<32xf32>, tensor<32x64xbf16> -> tensor<?x32xf32>
  %x = ds.mtp_project %e, %h, %p, %en, %hn, %eh {eps = 1.0e-06 : f64} : tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>, tensor<32xf32>, tensor<32xf32>, tensor<32x64xbf16> -> tensor<?x32xf32>
  // CHECK: ds.mtp_concat %{{[^ ,]+}}, %{{[^ ,]+}}, %{{[^ ,]+}} : tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32> -> tensor<?x64xf32>
  %c = ds.mtp_concat %e, %h, %p : tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32> -> tensor<?x64xf32>
  return %x, %c : tensor<?x32xf32>, tensor<?x64xf32>
}

// -----

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

// -----

// Tests that expert parallelism's exchanges round-trip: 8 experts over 2
// ranks, 4 local.
// CHECK-LABEL: func.func @expert_parallel
// CHECK: %[[R:.+]], %[[ROFF:.+]], %[[N:.+]] = ds.moe_dispatch %{{[^ ,]+}}, %[[OFF:[^ ,]+]] {ranks = 2 : i64} : tensor<?x32xf32>, tensor<9xi32> -> tensor<?x32xf32>, tensor<5xi32>, tensor<2x4xi32>
// CHECK: ds.moe_collect %[[R]], %[[N]], %[[OFF]] {ranks = 2 : i64} : tensor<?x32xf32>, tensor<2x4xi32>, tensor<9xi32> -> tensor<?x32xf32>
func.func @expert_parallel(%xp: tensor<?x32xf32>, %off: tensor<9xi32>) -> tensor<?x32xf32> {
  %r, %roff, %n = ds.moe_dispatch %xp, %off {ranks = 2 : i64}
      : tensor<?x32xf32>, tensor<9xi32> -> tensor<?x32xf32>, tensor<5xi32>, tensor<2x4xi32>
  %y = ds.moe_collect %r, %n, %off {ranks = 2 : i64}
      : tensor<?x32xf32>, tensor<2x4xi32>, tensor<9xi32> -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}
