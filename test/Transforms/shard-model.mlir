// RUN: ds-opt %s --ds-shard-model="tp=2" --split-input-file --verify-diagnostics | FileCheck %s
// RUN: ds-opt %s --ds-shard-model="tp=2 ep=2" --split-input-file --verify-diagnostics | FileCheck %s --check-prefix=EP

// Tests the tensor-parallel rules on a V3-style decode step (one dense
// layer, one MoE layer): each split weight operand is annotated for its
// user; norms, the q/kv down-projections, the router and the cache stay
// whole. With ep = 2 the routed experts are split by expert instead.

// CHECK: shard.grid @ranks(shape = 2)
// CHECK-LABEL: func.func @decode
// Embedding: vocabulary rows.
// CHECK: %[[ROWS:.+]] = shard.sharding @ranks split_axes = {{\[\[}}0]]
// CHECK: %[[TABLE:.+]] = shard.shard %{{.+}} to %[[ROWS]] annotate_for_users : tensor<64x32xf32>
// CHECK: ds.embedding %[[TABLE]]
// Attention: q_b_proj and kv_b_proj by output rows (whole heads), o_proj by
// input columns; q_a / kv_a stay whole.
// CHECK: %[[QB:.+]] = shard.shard %{{.+}} to %{{.+}} annotate_for_users : tensor<24x24xf32>
// CHECK: %[[KVB:.+]] = shard.shard %{{.+}} to %{{.+}} annotate_for_users : tensor<32x16xf32>
// CHECK: %[[COLS:.+]] = shard.sharding @ranks split_axes = {{\[\[}}], [0]]
// CHECK: %[[O:.+]] = shard.shard %{{.+}} to %[[COLS]] annotate_for_users : tensor<32x16xf32>
// CHECK: ds.mla {{.+}} q_lora(%{{[^,]+}}, %{{[^,]+}}, %[[QB]]) kv(%{{[^,]+}}, %{{[^,]+}}, %[[KVB]]) o(%[[O]])
// Dense MLP: gate and up by rows, down by columns.
// CHECK: %[[G:.+]] = shard.shard %{{.+}} annotate_for_users : tensor<48x32xf32>
// CHECK: %[[U:.+]] = shard.shard %{{.+}} annotate_for_users : tensor<48x32xf32>
// CHECK: %[[D:.+]] = shard.shard %{{.+}} annotate_for_users : tensor<32x48xf32>
// CHECK: ds.mlp %{{[^,]+}}, %[[G]], %[[U]], %[[D]]
// MoE: shared experts like the MLP, routed experts by their intermediate dim.
// CHECK: ds.mla
// CHECK: %[[SG:.+]] = shard.shard %{{.+}} annotate_for_users : tensor<12x32xf32>
// CHECK: %[[SU:.+]] = shard.shard %{{.+}} annotate_for_users : tensor<12x32xf32>
// CHECK: %[[SD:.+]] = shard.shard %{{.+}} annotate_for_users : tensor<32x12xf32>
// CHECK: %[[EF:.+]] = shard.sharding @ranks split_axes = {{\[\[}}], [0]]
// CHECK: %[[EG:.+]] = shard.shard %{{.+}} to %[[EF]] annotate_for_users : tensor<8x12x32xf32>
// CHECK: %[[EU:.+]] = shard.shard %{{.+}} annotate_for_users : tensor<8x12x32xf32>
// CHECK: %[[EDF:.+]] = shard.sharding @ranks split_axes = {{\[\[}}], [], [0]]
// CHECK: %[[ED:.+]] = shard.shard %{{.+}} to %[[EDF]] annotate_for_users : tensor<8x32x12xf32>
// CHECK: ds.moe %{{.+}} router(%{{[^)]+}}) bias(%{{[^)]+}}) experts(%[[EG]], %[[EU]], %[[ED]]) shared(%[[SG]], %[[SU]], %[[SD]])
// lm_head: vocabulary rows.
// CHECK: %[[HEAD:.+]] = shard.shard %{{.+}} annotate_for_users : tensor<64x32xf32>
// CHECK: ds.lm_head %{{[^,]+}}, %{{[^,]+}}, %[[HEAD]]

// EP-LABEL: func.func @decode
// EP: ds.mlp
// EP: shard.shard {{.+}} : tensor<32x12xf32>
// EP-NEXT: %[[BY_EXPERT:.+]] = shard.sharding @ranks split_axes = {{\[\[}}0]]
// EP-NEXT: %[[EG:.+]] = shard.shard %{{.+}} to %[[BY_EXPERT]] annotate_for_users : tensor<8x12x32xf32>
// EP: ds.moe %{{.+}} experts(%[[EG]],

module attributes {ds.bos_token_id = 0 : i64, ds.eos_token_id = 1 : i64, ds.max_position_embeddings = 64 : i64, ds.model_type = "deepseek_v3", ds.vocab_size = 64 : i64} {
  func.func @decode(%arg0: tensor<1xi32> {ds.name = "tokens"}, %arg1: tensor<1xi32> {ds.name = "positions"}, %arg2: !ds.latent_cache<num_layers = 2, width = 20, element_type = f32> {ds.name = "cache"}) -> (tensor<1x64xf32>, !ds.latent_cache<num_layers = 2, width = 20, element_type = f32>) {
    %0 = ds.weight "model.embed_tokens.weight" : tensor<64x32xf32>
    %1 = ds.embedding %0, %arg0 : tensor<64x32xf32>, tensor<1xi32> -> tensor<1x32xf32>
    %2 = ds.weight "model.layers.0.input_layernorm.weight" : tensor<32xf32>
    %3 = ds.rms_norm %1, %2 {eps = 9.9999999999999995E-7 : f64} : tensor<1x32xf32>, tensor<32xf32> -> tensor<1x32xf32>
    %4 = ds.weight "model.layers.0.self_attn.q_a_proj.weight" : tensor<24x32xf32>
    %5 = ds.weight "model.layers.0.self_attn.q_a_layernorm.weight" : tensor<24xf32>
    %6 = ds.weight "model.layers.0.self_attn.q_b_proj.weight" : tensor<24x24xf32>
    %7 = ds.weight "model.layers.0.self_attn.kv_a_proj_with_mqa.weight" : tensor<20x32xf32>
    %8 = ds.weight "model.layers.0.self_attn.kv_a_layernorm.weight" : tensor<16xf32>
    %9 = ds.weight "model.layers.0.self_attn.kv_b_proj.weight" : tensor<32x16xf32>
    %10 = ds.weight "model.layers.0.self_attn.o_proj.weight" : tensor<32x16xf32>
    %result, %cache_out = ds.mla %3, %arg1, %arg2 q_lora(%4, %5, %6) kv(%7, %8, %9) o(%10) {config = #ds.mla_config<num_heads = 2, q_lora_rank = 24, kv_lora_rank = 16, qk_nope_head_dim = 8, qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.37426067039004857, rope_theta = 10000.0, rope_scaling = #ds.yarn<factor = 4.0, original_max_position_embeddings = 16, beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 1.0>>, layer = 0 : i64} : tensor<1x32xf32>, tensor<1xi32>, !ds.latent_cache<num_layers = 2, width = 20, element_type = f32> q_lora(tensor<24x32xf32>, tensor<24xf32>, tensor<24x24xf32>) kv(tensor<20x32xf32>, tensor<16xf32>, tensor<32x16xf32>) o(tensor<32x16xf32>) -> tensor<1x32xf32>, !ds.latent_cache<num_layers = 2, width = 20, element_type = f32>
    %11 = arith.addf %1, %result : tensor<1x32xf32>
    %12 = ds.weight "model.layers.0.post_attention_layernorm.weight" : tensor<32xf32>
    %13 = ds.rms_norm %11, %12 {eps = 9.9999999999999995E-7 : f64} : tensor<1x32xf32>, tensor<32xf32> -> tensor<1x32xf32>
    %14 = ds.weight "model.layers.0.mlp.gate_proj.weight" : tensor<48x32xf32>
    %15 = ds.weight "model.layers.0.mlp.up_proj.weight" : tensor<48x32xf32>
    %16 = ds.weight "model.layers.0.mlp.down_proj.weight" : tensor<32x48xf32>
    %17 = ds.mlp %13, %14, %15, %16 : tensor<1x32xf32>, tensor<48x32xf32>, tensor<48x32xf32>, tensor<32x48xf32> -> tensor<1x32xf32>
    %18 = arith.addf %11, %17 : tensor<1x32xf32>
    %19 = ds.weight "model.layers.1.input_layernorm.weight" : tensor<32xf32>
    %20 = ds.rms_norm %18, %19 {eps = 9.9999999999999995E-7 : f64} : tensor<1x32xf32>, tensor<32xf32> -> tensor<1x32xf32>
    %21 = ds.weight "model.layers.1.self_attn.q_a_proj.weight" : tensor<24x32xf32>
    %22 = ds.weight "model.layers.1.self_attn.q_a_layernorm.weight" : tensor<24xf32>
    %23 = ds.weight "model.layers.1.self_attn.q_b_proj.weight" : tensor<24x24xf32>
    %24 = ds.weight "model.layers.1.self_attn.kv_a_proj_with_mqa.weight" : tensor<20x32xf32>
    %25 = ds.weight "model.layers.1.self_attn.kv_a_layernorm.weight" : tensor<16xf32>
    %26 = ds.weight "model.layers.1.self_attn.kv_b_proj.weight" : tensor<32x16xf32>
    %27 = ds.weight "model.layers.1.self_attn.o_proj.weight" : tensor<32x16xf32>
    %result_0, %cache_out_1 = ds.mla %20, %arg1, %cache_out q_lora(%21, %22, %23) kv(%24, %25, %26) o(%27) {config = #ds.mla_config<num_heads = 2, q_lora_rank = 24, kv_lora_rank = 16, qk_nope_head_dim = 8, qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.37426067039004857, rope_theta = 10000.0, rope_scaling = #ds.yarn<factor = 4.0, original_max_position_embeddings = 16, beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 1.0>>, layer = 1 : i64} : tensor<1x32xf32>, tensor<1xi32>, !ds.latent_cache<num_layers = 2, width = 20, element_type = f32> q_lora(tensor<24x32xf32>, tensor<24xf32>, tensor<24x24xf32>) kv(tensor<20x32xf32>, tensor<16xf32>, tensor<32x16xf32>) o(tensor<32x16xf32>) -> tensor<1x32xf32>, !ds.latent_cache<num_layers = 2, width = 20, element_type = f32>
    %28 = arith.addf %18, %result_0 : tensor<1x32xf32>
    %29 = ds.weight "model.layers.1.post_attention_layernorm.weight" : tensor<32xf32>
    %30 = ds.rms_norm %28, %29 {eps = 9.9999999999999995E-7 : f64} : tensor<1x32xf32>, tensor<32xf32> -> tensor<1x32xf32>
    %31 = ds.weight "model.layers.1.mlp.gate.weight" : tensor<8x32xf32>
    %32 = ds.weight "model.layers.1.mlp.gate.e_score_correction_bias" : tensor<8xf32>
    %33 = ds.stacked_weight "model.layers.1.mlp.experts.*.gate_proj.weight" : tensor<8x12x32xf32>
    %34 = ds.stacked_weight "model.layers.1.mlp.experts.*.up_proj.weight" : tensor<8x12x32xf32>
    %35 = ds.stacked_weight "model.layers.1.mlp.experts.*.down_proj.weight" : tensor<8x32x12xf32>
    %36 = ds.weight "model.layers.1.mlp.shared_experts.gate_proj.weight" : tensor<12x32xf32>
    %37 = ds.weight "model.layers.1.mlp.shared_experts.up_proj.weight" : tensor<12x32xf32>
    %38 = ds.weight "model.layers.1.mlp.shared_experts.down_proj.weight" : tensor<32x12xf32>
    %39 = ds.moe %30 router(%31) bias(%32) experts(%33, %34, %35) shared(%36, %37, %38) {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4, topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true, routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>} : tensor<1x32xf32> router(tensor<8x32xf32>) bias(tensor<8xf32>) experts(tensor<8x12x32xf32>, tensor<8x12x32xf32>, tensor<8x32x12xf32>) shared(tensor<12x32xf32>, tensor<12x32xf32>, tensor<32x12xf32>) -> tensor<1x32xf32>
    %40 = arith.addf %28, %39 : tensor<1x32xf32>
    %41 = ds.weight "model.norm.weight" : tensor<32xf32>
    %42 = ds.weight "lm_head.weight" : tensor<64x32xf32>
    %43 = ds.lm_head %40, %41, %42 {eps = 9.9999999999999995E-7 : f64} : tensor<1x32xf32>, tensor<32xf32>, tensor<64x32xf32> -> tensor<1x64xf32>
    return %43, %cache_out_1 : tensor<1x64xf32>, !ds.latent_cache<num_layers = 2, width = 20, element_type = f32>
  }
}


// -----

// Tests that a head count the ranks do not divide is an error naming it.
module {
  func.func @f(%x: tensor<?x32xf32>, %pos: tensor<?xi32>, %c: !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>) -> tensor<?x32xf32> {
    %qa = ds.weight "qa" : tensor<24x32xf32>
    %qan = ds.weight "qan" : tensor<24xf32>
    %qb = ds.weight "qb" : tensor<36x24xf32>
    %kva = ds.weight "kva" : tensor<20x32xf32>
    %kvan = ds.weight "kvan" : tensor<16xf32>
    %kvb = ds.weight "kvb" : tensor<48x16xf32>
    %o = ds.weight "o" : tensor<32x24xf32>
    // expected-error @below {{ds-shard-model: num_heads (3) is not a multiple of tp (2)}}
    %r, %c1 = ds.mla %x, %pos, %c q_lora(%qa, %qan, %qb) kv(%kva, %kvan, %kvb) o(%o) {config = #ds.mla_config<num_heads = 3, q_lora_rank = 24, kv_lora_rank = 16, qk_nope_head_dim = 8, qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.3, rope_theta = 10000.0>, layer = 0 : i64} : tensor<?x32xf32>, tensor<?xi32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32> q_lora(tensor<24x32xf32>, tensor<24xf32>, tensor<36x24xf32>) kv(tensor<20x32xf32>, tensor<16xf32>, tensor<48x16xf32>) o(tensor<32x24xf32>) -> tensor<?x32xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>
    return %r : tensor<?x32xf32>
  }
}
