// RUN: ds-opt %s --ds-partition-model | FileCheck %s

// Tests the per-rank IR of @ragged_step (a ragged batch over the paged latent
// cache) under tp=2 + ep=2 (input: `ds-compile --tp 2 --ep 2 --emit=sharded`
// of a two-layer V3-style checkpoint, @ragged_step only). The paged ds.mla
// splits by heads like the contiguous one: q_b/kv_b by rows per head, o_proj
// by columns then an all-reduce; the paged cache and the batch's
// query_start/block tables stay whole on every rank (MLA's latent is shared
// by all heads). Experts split whole per rank, each rank dispatching its share
// of the tokens to their owners (all-to-all); the vocabulary splits for the
// embedding (offset + sum) and for the logits rows the step returns
// (gathered by columns).

// CHECK-LABEL: func.func @ragged_step
// CHECK-SAME: %[[CACHE:[^:]+]]: !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = f32> {ds.name = "cache"}
// CHECK-SAME: %[[QS:[^:]+]]: tensor<?xi32> {ds.name = "query_start"}
// CHECK-SAME: %[[BT:[^:]+]]: tensor<?x?xi32> {ds.name = "block_tables"}
// CHECK-SAME: %[[ROWS:[^:]+]]: tensor<?xi32> {ds.name = "logits_rows"}
// CHECK: %[[TABLE:.+]] = ds.weight "model.embed_tokens.weight" {split = array<i64: 0, 2>} : tensor<32x32xf32>
// CHECK: %[[RANK:.+]] = shard.process_linear_index on @ranks : index
// CHECK: %[[OFF:.+]] = arith.muli %[[RANK]], %{{.+}} : index
// CHECK: %[[E:.+]] = ds.embedding %[[TABLE]], %{{.+}} offset(%[[OFF]]) : tensor<32x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
// CHECK: shard.all_reduce %[[E]] on @ranks grid_axes = [0] : tensor<?x32xf32> -> tensor<?x32xf32>
// CHECK: ds.weight "model.layers.0.self_attn.q_b_proj.weight" {split = array<i64: 0, 2>} : tensor<12x24xf32>
// CHECK: ds.weight "model.layers.0.self_attn.kv_a_proj_with_mqa.weight" : tensor<20x32xf32>
// CHECK: ds.weight "model.layers.0.self_attn.kv_b_proj.weight" {split = array<i64: 0, 2>} : tensor<16x16xf32>
// CHECK: ds.weight "model.layers.0.self_attn.o_proj.weight" {split = array<i64: 1, 2>} : tensor<32x8xf32>
// CHECK: %[[ATT:.+]], %[[C0:.+]] = ds.mla {{.+}}, %[[CACHE]] {{.+}} paged(%[[QS]], %[[BT]]) {config = #ds.mla_config<num_heads = 1,
// CHECK-SAME: !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = f32>
// CHECK: shard.all_reduce %[[ATT]] on @ranks
// CHECK: %[[MLP:.+]] = ds.mlp
// CHECK: shard.all_reduce %[[MLP]] on @ranks
// CHECK: %[[ATT1:.+]], %[[C1:.+]] = ds.mla {{.+}}, %[[C0]] {{.+}} paged(%[[QS]], %[[BT]]) {config = #ds.mla_config<num_heads = 1,
// CHECK: shard.all_reduce %[[ATT1]] on @ranks
// CHECK: ds.stacked_weight "model.layers.1.mlp.experts.*.gate_proj.weight" {split = array<i64: 0, 2>} : tensor<4x12x32xf32>
// CHECK: ds.stacked_weight "model.layers.1.mlp.experts.*.down_proj.weight" {split = array<i64: 0, 2>} : tensor<4x32x12xf32>
// CHECK: %[[SHARE:.+]] = shard.all_slice %{{.+}} on @ranks grid_axes = [0] slice_axis = 0
// CHECK: ds.moe_route
// CHECK: %[[PERM:.+]], %[[OFF:.+]], %{{.+}} = ds.moe_permute %[[SHARE]]
// CHECK: %[[RECV:.+]], %[[ROFF:.+]], %[[COUNTS:.+]] = ds.moe_dispatch %[[PERM]], %[[OFF]] {ranks = 2 : i64}
// CHECK: ds.grouped_matmul %[[RECV]], %{{.+}}, %[[ROFF]]
// CHECK: %[[BACK:.+]] = ds.moe_collect %{{.+}}, %[[COUNTS]], %[[OFF]] {ranks = 2 : i64}
// CHECK: %[[MOE:.+]] = ds.moe_combine %[[BACK]]
// CHECK: shard.all_gather %[[MOE]] on @ranks grid_axes = [0] gather_axis = 0
// CHECK: %[[LAST:.+]] = ds.gather_rows %{{.+}}, %[[ROWS]] : tensor<?x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
// CHECK: ds.weight "lm_head.weight" {split = array<i64: 0, 2>} : tensor<32x32xf32>
// CHECK: %[[L:.+]] = ds.lm_head %[[LAST]], {{.+}} -> tensor<?x32xf32>
// CHECK: %[[ALL:.+]] = shard.all_gather %[[L]] on @ranks grid_axes = [0] gather_axis = 1 : tensor<?x32xf32> -> tensor<?x64xf32>
// CHECK: return %[[ALL]], %[[C1]]
// CHECK-NOT: shard.shard

module attributes {ds.bos_token_id = 0 : i64, ds.eos_token_id = 1 : i64, ds.max_position_embeddings = 64 : i64, ds.model_type = "deepseek_v3", ds.vocab_size = 64 : i64} {
  shard.grid @ranks(shape = 2)
  func.func @ragged_step(%arg0: tensor<?xi32> {ds.name = "tokens"}, %arg1: tensor<?xi32> {ds.name = "positions"}, %arg2: !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = f32> {ds.name = "cache"}, %arg3: tensor<?xi32> {ds.name = "query_start"}, %arg4: tensor<?xi32> {ds.name = "context_lens"}, %arg5: tensor<?x?xi32> {ds.name = "block_tables"}, %arg6: tensor<?xi32> {ds.name = "logits_rows"}) -> (tensor<?x64xf32>, !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = f32>) {
    %0 = ds.weight "model.embed_tokens.weight" : tensor<64x32xf32>
    %sharding = shard.sharding @ranks split_axes = [[0]] : !shard.sharding
    %sharding_annotated = shard.shard %0 to %sharding annotate_for_users : tensor<64x32xf32>
    %1 = ds.embedding %sharding_annotated, %arg0 : tensor<64x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
    %2 = ds.weight "model.layers.0.input_layernorm.weight" : tensor<32xf32>
    %3 = ds.rms_norm %1, %2 {eps = 9.9999999999999995E-7 : f64} : tensor<?x32xf32>, tensor<32xf32> -> tensor<?x32xf32>
    %4 = ds.weight "model.layers.0.self_attn.q_a_proj.weight" : tensor<24x32xf32>
    %5 = ds.weight "model.layers.0.self_attn.q_a_layernorm.weight" : tensor<24xf32>
    %6 = ds.weight "model.layers.0.self_attn.q_b_proj.weight" : tensor<24x24xf32>
    %7 = ds.weight "model.layers.0.self_attn.kv_a_proj_with_mqa.weight" : tensor<20x32xf32>
    %8 = ds.weight "model.layers.0.self_attn.kv_a_layernorm.weight" : tensor<16xf32>
    %9 = ds.weight "model.layers.0.self_attn.kv_b_proj.weight" : tensor<32x16xf32>
    %10 = ds.weight "model.layers.0.self_attn.o_proj.weight" : tensor<32x16xf32>
    %sharding_0 = shard.sharding @ranks split_axes = [[0]] : !shard.sharding
    %sharding_annotated_1 = shard.shard %6 to %sharding_0 annotate_for_users : tensor<24x24xf32>
    %sharding_2 = shard.sharding @ranks split_axes = [[0]] : !shard.sharding
    %sharding_annotated_3 = shard.shard %9 to %sharding_2 annotate_for_users : tensor<32x16xf32>
    %sharding_4 = shard.sharding @ranks split_axes = [[], [0]] : !shard.sharding
    %sharding_annotated_5 = shard.shard %10 to %sharding_4 annotate_for_users : tensor<32x16xf32>
    %result, %cache_out = ds.mla %3, %arg1, %arg2 q_lora(%4, %5, %sharding_annotated_1) kv(%7, %8, %sharding_annotated_3) o(%sharding_annotated_5) paged(%arg3, %arg5) {config = #ds.mla_config<num_heads = 2, q_lora_rank = 24, kv_lora_rank = 16, qk_nope_head_dim = 8, qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.37426067039004857, rope_theta = 10000.0, rope_scaling = #ds.yarn<factor = 4.0, original_max_position_embeddings = 16, beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 1.0>>, layer = 0 : i64} : tensor<?x32xf32>, tensor<?xi32>, !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = f32> q_lora(tensor<24x32xf32>, tensor<24xf32>, tensor<24x24xf32>) kv(tensor<20x32xf32>, tensor<16xf32>, tensor<32x16xf32>) o(tensor<32x16xf32>) paged(tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x32xf32>, !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = f32>
    %11 = arith.addf %1, %result : tensor<?x32xf32>
    %12 = ds.weight "model.layers.0.post_attention_layernorm.weight" : tensor<32xf32>
    %13 = ds.rms_norm %11, %12 {eps = 9.9999999999999995E-7 : f64} : tensor<?x32xf32>, tensor<32xf32> -> tensor<?x32xf32>
    %14 = ds.weight "model.layers.0.mlp.gate_proj.weight" : tensor<48x32xf32>
    %15 = ds.weight "model.layers.0.mlp.up_proj.weight" : tensor<48x32xf32>
    %16 = ds.weight "model.layers.0.mlp.down_proj.weight" : tensor<32x48xf32>
    %sharding_6 = shard.sharding @ranks split_axes = [[0]] : !shard.sharding
    %sharding_annotated_7 = shard.shard %14 to %sharding_6 annotate_for_users : tensor<48x32xf32>
    %sharding_8 = shard.sharding @ranks split_axes = [[0]] : !shard.sharding
    %sharding_annotated_9 = shard.shard %15 to %sharding_8 annotate_for_users : tensor<48x32xf32>
    %sharding_10 = shard.sharding @ranks split_axes = [[], [0]] : !shard.sharding
    %sharding_annotated_11 = shard.shard %16 to %sharding_10 annotate_for_users : tensor<32x48xf32>
    %17 = ds.mlp %13, %sharding_annotated_7, %sharding_annotated_9, %sharding_annotated_11 : tensor<?x32xf32>, tensor<48x32xf32>, tensor<48x32xf32>, tensor<32x48xf32> -> tensor<?x32xf32>
    %18 = arith.addf %11, %17 : tensor<?x32xf32>
    %19 = ds.weight "model.layers.1.input_layernorm.weight" : tensor<32xf32>
    %20 = ds.rms_norm %18, %19 {eps = 9.9999999999999995E-7 : f64} : tensor<?x32xf32>, tensor<32xf32> -> tensor<?x32xf32>
    %21 = ds.weight "model.layers.1.self_attn.q_a_proj.weight" : tensor<24x32xf32>
    %22 = ds.weight "model.layers.1.self_attn.q_a_layernorm.weight" : tensor<24xf32>
    %23 = ds.weight "model.layers.1.self_attn.q_b_proj.weight" : tensor<24x24xf32>
    %24 = ds.weight "model.layers.1.self_attn.kv_a_proj_with_mqa.weight" : tensor<20x32xf32>
    %25 = ds.weight "model.layers.1.self_attn.kv_a_layernorm.weight" : tensor<16xf32>
    %26 = ds.weight "model.layers.1.self_attn.kv_b_proj.weight" : tensor<32x16xf32>
    %27 = ds.weight "model.layers.1.self_attn.o_proj.weight" : tensor<32x16xf32>
    %sharding_12 = shard.sharding @ranks split_axes = [[0]] : !shard.sharding
    %sharding_annotated_13 = shard.shard %23 to %sharding_12 annotate_for_users : tensor<24x24xf32>
    %sharding_14 = shard.sharding @ranks split_axes = [[0]] : !shard.sharding
    %sharding_annotated_15 = shard.shard %26 to %sharding_14 annotate_for_users : tensor<32x16xf32>
    %sharding_16 = shard.sharding @ranks split_axes = [[], [0]] : !shard.sharding
    %sharding_annotated_17 = shard.shard %27 to %sharding_16 annotate_for_users : tensor<32x16xf32>
    %result_18, %cache_out_19 = ds.mla %20, %arg1, %cache_out q_lora(%21, %22, %sharding_annotated_13) kv(%24, %25, %sharding_annotated_15) o(%sharding_annotated_17) paged(%arg3, %arg5) {config = #ds.mla_config<num_heads = 2, q_lora_rank = 24, kv_lora_rank = 16, qk_nope_head_dim = 8, qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.37426067039004857, rope_theta = 10000.0, rope_scaling = #ds.yarn<factor = 4.0, original_max_position_embeddings = 16, beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 1.0>>, layer = 1 : i64} : tensor<?x32xf32>, tensor<?xi32>, !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = f32> q_lora(tensor<24x32xf32>, tensor<24xf32>, tensor<24x24xf32>) kv(tensor<20x32xf32>, tensor<16xf32>, tensor<32x16xf32>) o(tensor<32x16xf32>) paged(tensor<?xi32>, tensor<?x?xi32>) -> tensor<?x32xf32>, !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = f32>
    %28 = arith.addf %18, %result_18 : tensor<?x32xf32>
    %29 = ds.weight "model.layers.1.post_attention_layernorm.weight" : tensor<32xf32>
    %30 = ds.rms_norm %28, %29 {eps = 9.9999999999999995E-7 : f64} : tensor<?x32xf32>, tensor<32xf32> -> tensor<?x32xf32>
    %31 = ds.weight "model.layers.1.mlp.gate.weight" : tensor<8x32xf32>
    %32 = ds.weight "model.layers.1.mlp.gate.e_score_correction_bias" : tensor<8xf32>
    %33 = ds.stacked_weight "model.layers.1.mlp.experts.*.gate_proj.weight" : tensor<8x12x32xf32>
    %34 = ds.stacked_weight "model.layers.1.mlp.experts.*.up_proj.weight" : tensor<8x12x32xf32>
    %35 = ds.stacked_weight "model.layers.1.mlp.experts.*.down_proj.weight" : tensor<8x32x12xf32>
    %36 = ds.weight "model.layers.1.mlp.shared_experts.gate_proj.weight" : tensor<12x32xf32>
    %37 = ds.weight "model.layers.1.mlp.shared_experts.up_proj.weight" : tensor<12x32xf32>
    %38 = ds.weight "model.layers.1.mlp.shared_experts.down_proj.weight" : tensor<32x12xf32>
    %sharding_20 = shard.sharding @ranks split_axes = [[0]] : !shard.sharding
    %sharding_annotated_21 = shard.shard %36 to %sharding_20 annotate_for_users : tensor<12x32xf32>
    %sharding_22 = shard.sharding @ranks split_axes = [[0]] : !shard.sharding
    %sharding_annotated_23 = shard.shard %37 to %sharding_22 annotate_for_users : tensor<12x32xf32>
    %sharding_24 = shard.sharding @ranks split_axes = [[], [0]] : !shard.sharding
    %sharding_annotated_25 = shard.shard %38 to %sharding_24 annotate_for_users : tensor<32x12xf32>
    %sharding_26 = shard.sharding @ranks split_axes = [[0]] : !shard.sharding
    %sharding_annotated_27 = shard.shard %33 to %sharding_26 annotate_for_users : tensor<8x12x32xf32>
    %sharding_28 = shard.sharding @ranks split_axes = [[0]] : !shard.sharding
    %sharding_annotated_29 = shard.shard %34 to %sharding_28 annotate_for_users : tensor<8x12x32xf32>
    %sharding_30 = shard.sharding @ranks split_axes = [[0]] : !shard.sharding
    %sharding_annotated_31 = shard.shard %35 to %sharding_30 annotate_for_users : tensor<8x32x12xf32>
    %39 = ds.moe %30 router(%31) bias(%32) experts(%sharding_annotated_27, %sharding_annotated_29, %sharding_annotated_31) shared(%sharding_annotated_21, %sharding_annotated_23, %sharding_annotated_25) {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4, topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true, routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>} : tensor<?x32xf32> router(tensor<8x32xf32>) bias(tensor<8xf32>) experts(tensor<8x12x32xf32>, tensor<8x12x32xf32>, tensor<8x32x12xf32>) shared(tensor<12x32xf32>, tensor<12x32xf32>, tensor<32x12xf32>) -> tensor<?x32xf32>
    %40 = arith.addf %28, %39 : tensor<?x32xf32>
    %41 = ds.gather_rows %40, %arg6 : tensor<?x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
    %42 = ds.weight "model.norm.weight" : tensor<32xf32>
    %43 = ds.weight "lm_head.weight" : tensor<64x32xf32>
    %sharding_32 = shard.sharding @ranks split_axes = [[0]] : !shard.sharding
    %sharding_annotated_33 = shard.shard %43 to %sharding_32 annotate_for_users : tensor<64x32xf32>
    %44 = ds.lm_head %41, %42, %sharding_annotated_33 {eps = 9.9999999999999995E-7 : f64} : tensor<?x32xf32>, tensor<32xf32>, tensor<64x32xf32> -> tensor<?x64xf32>
    return %44, %cache_out_19 : tensor<?x64xf32>, !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = f32>
  }
}

