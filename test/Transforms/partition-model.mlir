// RUN: ds-opt %s --ds-partition-model --split-input-file --verify-diagnostics | FileCheck %s

// Tests the per-rank IR of ds-shard-model's tp=2 annotations (input:
// `ds-opt --ds-shard-model="tp=2"` of a V3-style decode step): each split
// weight becomes its piece with `split = [dim, parts]`, ops are rebuilt on
// the pieces, and the collective each rule implies follows the op.

// CHECK: shard.grid @ranks(shape = 2)
// CHECK-LABEL: func.func @decode
// Embedding: half the vocabulary from this rank's offset, then a sum.
// CHECK: %[[TABLE:.+]] = ds.weight "model.embed_tokens.weight" {split = array<i64: 0, 2>} : tensor<32x32xf32>
// CHECK: %[[RANK:.+]] = shard.process_linear_index on @ranks : index
// CHECK: %[[ROWS:.+]] = arith.constant 32 : index
// CHECK: %[[OFF:.+]] = arith.muli %[[RANK]], %[[ROWS]] : index
// CHECK: %[[E:.+]] = ds.embedding %[[TABLE]], %{{.+}} offset(%[[OFF]])
// CHECK: %[[X:.+]] = shard.all_reduce %[[E]] on @ranks grid_axes = [0] : tensor<1x32xf32> -> tensor<1x32xf32>
// Attention: one head of two per rank, partial o_proj sums reduced.
// CHECK: ds.weight "model.layers.0.self_attn.q_b_proj.weight" {split = array<i64: 0, 2>} : tensor<12x24xf32>
// CHECK: ds.weight "model.layers.0.self_attn.kv_a_proj_with_mqa.weight" : tensor<20x32xf32>
// CHECK: ds.weight "model.layers.0.self_attn.kv_b_proj.weight" {split = array<i64: 0, 2>} : tensor<16x16xf32>
// CHECK: ds.weight "model.layers.0.self_attn.o_proj.weight" {split = array<i64: 1, 2>} : tensor<32x8xf32>
// CHECK: %[[ATT:.+]], %{{.+}} = ds.mla {{.+}}num_heads = 1,
// CHECK: %[[ATTS:.+]] = shard.all_reduce %[[ATT]] on @ranks
// CHECK: arith.addf %[[X]], %[[ATTS]]
// Dense MLP: column then row split, reduced.
// CHECK: ds.weight "model.layers.0.mlp.gate_proj.weight" {split = array<i64: 0, 2>} : tensor<24x32xf32>
// CHECK: ds.weight "model.layers.0.mlp.down_proj.weight" {split = array<i64: 1, 2>} : tensor<32x24xf32>
// CHECK: %[[MLP:.+]] = ds.mlp
// CHECK: shard.all_reduce %[[MLP]] on @ranks
// MoE: routed experts and the shared expert split by their intermediate
// dim, the router whole: one reduction for both.
// CHECK: ds.weight "model.layers.1.mlp.gate.weight" : tensor<8x32xf32>
// CHECK: ds.stacked_weight "model.layers.1.mlp.experts.*.gate_proj.weight" {split = array<i64: 1, 2>} : tensor<8x6x32xf32>
// CHECK: ds.stacked_weight "model.layers.1.mlp.experts.*.down_proj.weight" {split = array<i64: 2, 2>} : tensor<8x32x6xf32>
// CHECK: ds.weight "model.layers.1.mlp.shared_experts.down_proj.weight" {split = array<i64: 1, 2>} : tensor<32x6xf32>
// CHECK: %[[MOE:.+]] = ds.moe {{.+}}intermediate_size = 6,
// CHECK: shard.all_reduce %[[MOE]] on @ranks
// lm_head: this rank's vocabulary rows, logits gathered by columns.
// CHECK: ds.weight "lm_head.weight" {split = array<i64: 0, 2>} : tensor<32x32xf32>
// CHECK: %[[L:.+]] = ds.lm_head {{.+}} -> tensor<1x32xf32>
// CHECK: %[[ALL:.+]] = shard.all_gather %[[L]] on @ranks grid_axes = [0] gather_axis = 1 : tensor<1x32xf32> -> tensor<1x64xf32>
// CHECK: return %[[ALL]]
// CHECK-NOT: shard.shard

module attributes {ds.bos_token_id = 0 : i64, ds.eos_token_id = 1 : i64, ds.max_position_embeddings = 64 : i64, ds.model_type = "deepseek_v3", ds.vocab_size = 64 : i64} {
  shard.grid @ranks(shape = 2)
  func.func @decode(%arg0: tensor<1xi32> {ds.name = "tokens"}, %arg1: tensor<1xi32> {ds.name = "positions"}, %arg2: !ds.latent_cache<num_layers = 2, width = 20, element_type = f32> {ds.name = "cache"}) -> (tensor<1x64xf32>, !ds.latent_cache<num_layers = 2, width = 20, element_type = f32>) {
    %0 = ds.weight "model.embed_tokens.weight" : tensor<64x32xf32>
    %sharding = shard.sharding @ranks split_axes = [[0]] : !shard.sharding
    %sharding_annotated = shard.shard %0 to %sharding annotate_for_users : tensor<64x32xf32>
    %1 = ds.embedding %sharding_annotated, %arg0 : tensor<64x32xf32>, tensor<1xi32> -> tensor<1x32xf32>
    %2 = ds.weight "model.layers.0.input_layernorm.weight" : tensor<32xf32>
    %3 = ds.rms_norm %1, %2 {eps = 9.9999999999999995E-7 : f64} : tensor<1x32xf32>, tensor<32xf32> -> tensor<1x32xf32>
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
    %result, %cache_out = ds.mla %3, %arg1, %arg2 q_lora(%4, %5, %sharding_annotated_1) kv(%7, %8, %sharding_annotated_3) o(%sharding_annotated_5) {config = #ds.mla_config<num_heads = 2, q_lora_rank = 24, kv_lora_rank = 16, qk_nope_head_dim = 8, qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.37426067039004857, rope_theta = 10000.0, rope_scaling = #ds.yarn<factor = 4.0, original_max_position_embeddings = 16, beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 1.0>>, layer = 0 : i64} : tensor<1x32xf32>, tensor<1xi32>, !ds.latent_cache<num_layers = 2, width = 20, element_type = f32> q_lora(tensor<24x32xf32>, tensor<24xf32>, tensor<24x24xf32>) kv(tensor<20x32xf32>, tensor<16xf32>, tensor<32x16xf32>) o(tensor<32x16xf32>) -> tensor<1x32xf32>, !ds.latent_cache<num_layers = 2, width = 20, element_type = f32>
    %11 = arith.addf %1, %result : tensor<1x32xf32>
    %12 = ds.weight "model.layers.0.post_attention_layernorm.weight" : tensor<32xf32>
    %13 = ds.rms_norm %11, %12 {eps = 9.9999999999999995E-7 : f64} : tensor<1x32xf32>, tensor<32xf32> -> tensor<1x32xf32>
    %14 = ds.weight "model.layers.0.mlp.gate_proj.weight" : tensor<48x32xf32>
    %15 = ds.weight "model.layers.0.mlp.up_proj.weight" : tensor<48x32xf32>
    %16 = ds.weight "model.layers.0.mlp.down_proj.weight" : tensor<32x48xf32>
    %sharding_6 = shard.sharding @ranks split_axes = [[0]] : !shard.sharding
    %sharding_annotated_7 = shard.shard %14 to %sharding_6 annotate_for_users : tensor<48x32xf32>
    %sharding_8 = shard.sharding @ranks split_axes = [[0]] : !shard.sharding
    %sharding_annotated_9 = shard.shard %15 to %sharding_8 annotate_for_users : tensor<48x32xf32>
    %sharding_10 = shard.sharding @ranks split_axes = [[], [0]] : !shard.sharding
    %sharding_annotated_11 = shard.shard %16 to %sharding_10 annotate_for_users : tensor<32x48xf32>
    %17 = ds.mlp %13, %sharding_annotated_7, %sharding_annotated_9, %sharding_annotated_11 : tensor<1x32xf32>, tensor<48x32xf32>, tensor<48x32xf32>, tensor<32x48xf32> -> tensor<1x32xf32>
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
    %sharding_12 = shard.sharding @ranks split_axes = [[0]] : !shard.sharding
    %sharding_annotated_13 = shard.shard %23 to %sharding_12 annotate_for_users : tensor<24x24xf32>
    %sharding_14 = shard.sharding @ranks split_axes = [[0]] : !shard.sharding
    %sharding_annotated_15 = shard.shard %26 to %sharding_14 annotate_for_users : tensor<32x16xf32>
    %sharding_16 = shard.sharding @ranks split_axes = [[], [0]] : !shard.sharding
    %sharding_annotated_17 = shard.shard %27 to %sharding_16 annotate_for_users : tensor<32x16xf32>
    %result_18, %cache_out_19 = ds.mla %20, %arg1, %cache_out q_lora(%21, %22, %sharding_annotated_13) kv(%24, %25, %sharding_annotated_15) o(%sharding_annotated_17) {config = #ds.mla_config<num_heads = 2, q_lora_rank = 24, kv_lora_rank = 16, qk_nope_head_dim = 8, qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.37426067039004857, rope_theta = 10000.0, rope_scaling = #ds.yarn<factor = 4.0, original_max_position_embeddings = 16, beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 1.0>>, layer = 1 : i64} : tensor<1x32xf32>, tensor<1xi32>, !ds.latent_cache<num_layers = 2, width = 20, element_type = f32> q_lora(tensor<24x32xf32>, tensor<24xf32>, tensor<24x24xf32>) kv(tensor<20x32xf32>, tensor<16xf32>, tensor<32x16xf32>) o(tensor<32x16xf32>) -> tensor<1x32xf32>, !ds.latent_cache<num_layers = 2, width = 20, element_type = f32>
    %28 = arith.addf %18, %result_18 : tensor<1x32xf32>
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
    %sharding_20 = shard.sharding @ranks split_axes = [[0]] : !shard.sharding
    %sharding_annotated_21 = shard.shard %36 to %sharding_20 annotate_for_users : tensor<12x32xf32>
    %sharding_22 = shard.sharding @ranks split_axes = [[0]] : !shard.sharding
    %sharding_annotated_23 = shard.shard %37 to %sharding_22 annotate_for_users : tensor<12x32xf32>
    %sharding_24 = shard.sharding @ranks split_axes = [[], [0]] : !shard.sharding
    %sharding_annotated_25 = shard.shard %38 to %sharding_24 annotate_for_users : tensor<32x12xf32>
    %sharding_26 = shard.sharding @ranks split_axes = [[], [0]] : !shard.sharding
    %sharding_annotated_27 = shard.shard %33 to %sharding_26 annotate_for_users : tensor<8x12x32xf32>
    %sharding_28 = shard.sharding @ranks split_axes = [[], [0]] : !shard.sharding
    %sharding_annotated_29 = shard.shard %34 to %sharding_28 annotate_for_users : tensor<8x12x32xf32>
    %sharding_30 = shard.sharding @ranks split_axes = [[], [], [0]] : !shard.sharding
    %sharding_annotated_31 = shard.shard %35 to %sharding_30 annotate_for_users : tensor<8x32x12xf32>
    %39 = ds.moe %30 router(%31) bias(%32) experts(%sharding_annotated_27, %sharding_annotated_29, %sharding_annotated_31) shared(%sharding_annotated_21, %sharding_annotated_23, %sharding_annotated_25) {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4, topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true, routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>} : tensor<1x32xf32> router(tensor<8x32xf32>) bias(tensor<8xf32>) experts(tensor<8x12x32xf32>, tensor<8x12x32xf32>, tensor<8x32x12xf32>) shared(tensor<12x32xf32>, tensor<12x32xf32>, tensor<32x12xf32>) -> tensor<1x32xf32>
    %40 = arith.addf %28, %39 : tensor<1x32xf32>
    %41 = ds.weight "model.norm.weight" : tensor<32xf32>
    %42 = ds.weight "lm_head.weight" : tensor<64x32xf32>
    %sharding_32 = shard.sharding @ranks split_axes = [[0]] : !shard.sharding
    %sharding_annotated_33 = shard.shard %42 to %sharding_32 annotate_for_users : tensor<64x32xf32>
    %43 = ds.lm_head %40, %41, %sharding_annotated_33 {eps = 9.9999999999999995E-7 : f64} : tensor<1x32xf32>, tensor<32xf32>, tensor<64x32xf32> -> tensor<1x64xf32>
    return %43, %cache_out_19 : tensor<1x64xf32>, !ds.latent_cache<num_layers = 2, width = 20, element_type = f32>
  }
}


// -----

// Tests that a split the rules do not know (o_proj by rows) is an error
// naming the operand.
module {
  shard.grid @ranks(shape = 2)
  func.func @f(%x: tensor<?x32xf32>) -> tensor<?x32xf32> {
    %g = ds.weight "g" : tensor<48x32xf32>
    %u = ds.weight "u" : tensor<48x32xf32>
    %d = ds.weight "d" : tensor<32x48xf32>
    %s = shard.sharding @ranks split_axes = [[0]] : !shard.sharding
    %da = shard.shard %d to %s annotate_for_users : tensor<32x48xf32>
    // expected-error @below {{ds-partition-model: no rule for operand #3 split along dim 0}}
    %y = ds.mlp %x, %g, %u, %da : tensor<?x32xf32>, tensor<48x32xf32>, tensor<48x32xf32>, tensor<32x48xf32> -> tensor<?x32xf32>
    return %y : tensor<?x32xf32>
  }
}

// -----

// Tests that a dim the ranks do not divide is an error naming the weight.
module {
  shard.grid @ranks(shape = 2)
  func.func @f(%x: tensor<?x32xf32>) -> tensor<?x63xf32> {
    %n = ds.weight "n" : tensor<32xf32>
    %h = ds.weight "h" : tensor<63x32xf32>
    %s = shard.sharding @ranks split_axes = [[0]] : !shard.sharding
    %ha = shard.shard %h to %s annotate_for_users : tensor<63x32xf32>
    // expected-error @below {{ds-partition-model: weight 'h': dim 0 (63) is not a multiple of 2 ranks}}
    %y = ds.lm_head %x, %n, %ha {eps = 1.0e-06 : f64} : tensor<?x32xf32>, tensor<32xf32>, tensor<63x32xf32> -> tensor<?x63xf32>
    return %y : tensor<?x63xf32>
  }
}

// -----

// Tests expert parallelism (ds-shard-model="ep=2"): each rank holds half of
// the expert stack (whole experts, split along dim 0) and the shared
// expert's columns/rows. The MoE becomes its all-to-all dispatch form: the
// rank's share of the tokens is routed over all 8 experts, its permuted
// rows dispatched to the experts' ranks, the grouped matmuls run on the
// rows received for the 4 local experts, the results collected back,
// combined and gathered; the split shared expert is all-reduced beside.
// CHECK-LABEL: func.func @ep
// CHECK-DAG: %[[EG:.+]] = ds.stacked_weight "e.*.g" {split = array<i64: 0, 2>} : tensor<4x12x32xf32>
// CHECK-DAG: %[[ED:.+]] = ds.stacked_weight "e.*.d" {split = array<i64: 0, 2>} : tensor<4x32x12xf32>
// CHECK-DAG: ds.weight "sd" {split = array<i64: 1, 2>} : tensor<32x6xf32>
// CHECK: %[[MINE:.+]] = shard.all_slice %{{.+}} on @ranks grid_axes = [0] slice_axis = 0 : tensor<?x32xf32> -> tensor<?x32xf32>
// CHECK: %[[LOGITS:.+]] = ds.linear %[[MINE]], %{{.+}} : tensor<?x32xf32>, tensor<8x32xf32> -> tensor<?x8xf32>
// CHECK: %[[IDS:.+]], %[[W:.+]] = ds.moe_route %[[LOGITS]]
// CHECK: %[[XP:.+]], %[[OFF:.+]], %[[ROWS:.+]] = ds.moe_permute %[[MINE]], %[[IDS]] {num_experts = 8 : i64}
// CHECK: %[[RECV:.+]], %[[ROFF:.+]], %[[COUNTS:.+]] = ds.moe_dispatch %[[XP]], %[[OFF]] {ranks = 2 : i64} : tensor<?x32xf32>, tensor<9xi32> -> tensor<?x32xf32>, tensor<5xi32>, tensor<2x4xi32>
// CHECK: ds.grouped_matmul %[[RECV]], %[[EG]], %[[ROFF]]
// CHECK: %[[DOWN:.+]] = ds.grouped_matmul %{{.+}}, %[[ED]], %[[ROFF]]
// CHECK: %[[BACK:.+]] = ds.moe_collect %[[DOWN]], %[[COUNTS]], %[[OFF]] {ranks = 2 : i64}
// CHECK: %[[COMB:.+]] = ds.moe_combine %[[BACK]], %[[ROWS]], %[[W]]
// CHECK: %[[ALL:.+]] = shard.all_gather %[[COMB]] on @ranks grid_axes = [0] gather_axis = 0
// CHECK: %[[SHARED:.+]] = ds.mlp
// CHECK: %[[SUM:.+]] = shard.all_reduce %[[SHARED]] on @ranks grid_axes = [0]
// CHECK: arith.addf %[[ALL]], %[[SUM]]
// CHECK-NOT: ds.moe %
module {
  shard.grid @ranks(shape = 2)
  func.func @ep(%x: tensor<?x32xf32>) -> tensor<?x32xf32> {
    %r = ds.weight "r" : tensor<8x32xf32>
    %b = ds.weight "b" : tensor<8xf32>
    %eg = ds.stacked_weight "e.*.g" : tensor<8x12x32xf32>
    %eu = ds.stacked_weight "e.*.u" : tensor<8x12x32xf32>
    %ed = ds.stacked_weight "e.*.d" : tensor<8x32x12xf32>
    %sg = ds.weight "sg" : tensor<12x32xf32>
    %su = ds.weight "su" : tensor<12x32xf32>
    %sd = ds.weight "sd" : tensor<32x12xf32>
    %s0 = shard.sharding @ranks split_axes = [[0]] : !shard.sharding
    %s1 = shard.sharding @ranks split_axes = [[], [0]] : !shard.sharding
    %ega = shard.shard %eg to %s0 annotate_for_users : tensor<8x12x32xf32>
    %eua = shard.shard %eu to %s0 annotate_for_users : tensor<8x12x32xf32>
    %eda = shard.shard %ed to %s0 annotate_for_users : tensor<8x32x12xf32>
    %sga = shard.shard %sg to %s0 annotate_for_users : tensor<12x32xf32>
    %sua = shard.shard %su to %s0 annotate_for_users : tensor<12x32xf32>
    %sda = shard.shard %sd to %s1 annotate_for_users : tensor<32x12xf32>
    %y = ds.moe %x router(%r) bias(%b) experts(%ega, %eua, %eda) shared(%sga, %sua, %sda) {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4, topk_group = 2, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true, routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>} : tensor<?x32xf32> router(tensor<8x32xf32>) bias(tensor<8xf32>) experts(tensor<8x12x32xf32>, tensor<8x12x32xf32>, tensor<8x32x12xf32>) shared(tensor<12x32xf32>, tensor<12x32xf32>, tensor<32x12xf32>) -> tensor<?x32xf32>
    return %y : tensor<?x32xf32>
  }
}

// -----

// Tests expert parallelism with data-parallel attention
// (ds-shard-model="ep=2 dp-attention=true"): the MoE input is annotated as
// split along its tokens (each rank's own sequences), so there is no token
// slice and no gather, and the shared expert is whole (no all-reduce). A
// static token count stays static.
// CHECK-LABEL: func.func @dp_attention
// CHECK-NOT: shard.all_slice
// CHECK: %[[XP:.+]], %[[OFF:.+]], %{{.+}} = ds.moe_permute %[[X:.+]], %{{.+}} {num_experts = 8 : i64} : tensor<3x32xf32>
// CHECK: ds.moe_dispatch %[[XP]], %[[OFF]] {ranks = 2 : i64}
// CHECK: ds.moe_collect
// CHECK: %[[COMB:.+]] = ds.moe_combine {{.*}} -> tensor<3x32xf32>
// CHECK: %[[SHARED:.+]] = ds.mlp %[[X]], {{.*}} -> tensor<3x32xf32>
// CHECK: arith.addf %[[COMB]], %[[SHARED]] : tensor<3x32xf32>
// CHECK-NOT: shard.all_gather
// CHECK-NOT: shard.all_reduce
module {
  shard.grid @ranks(shape = 2)
  func.func @dp_attention(%x: tensor<3x32xf32>) -> tensor<3x32xf32> {
    %r = ds.weight "r" : tensor<8x32xf32>
    %eg = ds.stacked_weight "e.*.g" : tensor<8x12x32xf32>
    %eu = ds.stacked_weight "e.*.u" : tensor<8x12x32xf32>
    %ed = ds.stacked_weight "e.*.d" : tensor<8x32x12xf32>
    %sg = ds.weight "sg" : tensor<12x32xf32>
    %su = ds.weight "su" : tensor<12x32xf32>
    %sd = ds.weight "sd" : tensor<32x12xf32>
    %s0 = shard.sharding @ranks split_axes = [[0]] : !shard.sharding
    %xa = shard.shard %x to %s0 annotate_for_users : tensor<3x32xf32>
    %ega = shard.shard %eg to %s0 annotate_for_users : tensor<8x12x32xf32>
    %eua = shard.shard %eu to %s0 annotate_for_users : tensor<8x12x32xf32>
    %eda = shard.shard %ed to %s0 annotate_for_users : tensor<8x32x12xf32>
    %y = ds.moe %xa router(%r) experts(%ega, %eua, %eda) shared(%sg, %su, %sd) {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 1, topk_group = 1, scoring_func = softmax, topk_method = greedy, norm_topk_prob = false, routed_scaling_factor = 1.0, norm_rule = v2, intermediate_size = 12, n_shared_experts = 1>} : tensor<3x32xf32> router(tensor<8x32xf32>) experts(tensor<8x12x32xf32>, tensor<8x12x32xf32>, tensor<8x32x12xf32>) shared(tensor<12x32xf32>, tensor<12x32xf32>, tensor<32x12xf32>) -> tensor<3x32xf32>
    return %y : tensor<3x32xf32>
  }
}

// -----

// Tests that a token split is refused where no rule takes it (a dense MLP's
// input): only a routed-expert-parallel MoE consumes its tokens per rank.
module {
  shard.grid @ranks(shape = 2)
  func.func @bad_token_split(%x: tensor<?x32xf32>) -> tensor<?x32xf32> {
    %g = ds.weight "g" : tensor<48x32xf32>
    %u = ds.weight "u" : tensor<48x32xf32>
    %d = ds.weight "d" : tensor<32x48xf32>
    %s0 = shard.sharding @ranks split_axes = [[0]] : !shard.sharding
    %xa = shard.shard %x to %s0 annotate_for_users : tensor<?x32xf32>
    // expected-error @below {{ds-partition-model: no rule for operand #0 split along dim 0 (see ds-shard-model)}}
    %h = ds.mlp %xa, %g, %u, %d : tensor<?x32xf32>, tensor<48x32xf32>, tensor<48x32xf32>, tensor<32x48xf32> -> tensor<?x32xf32>
    return %h : tensor<?x32xf32>
  }
}

// -----

// Tests expert parallelism on a static token count (a decode step of one
// token over 2 ranks): the tokens are cast to a dynamic count before the
// slice (upstream shard verifiers want static dims to divide evenly; the
// lowering gives the ranks ceil(T/W)-row shares) and back after the gather.
// CHECK-LABEL: func.func @ep_static
// CHECK: %[[DYN:.+]] = tensor.cast %{{.+}} : tensor<1x32xf32> to tensor<?x32xf32>
// CHECK: shard.all_slice %[[DYN]] on @ranks grid_axes = [0] slice_axis = 0
// CHECK: %[[ALL:.+]] = shard.all_gather %{{.+}} on @ranks grid_axes = [0] gather_axis = 0 : tensor<?x32xf32> -> tensor<?x32xf32>
// CHECK: %[[Y:.+]] = tensor.cast %[[ALL]] : tensor<?x32xf32> to tensor<1x32xf32>
// CHECK: return %[[Y]] : tensor<1x32xf32>
module {
  shard.grid @ranks(shape = 2)
  func.func @ep_static(%x: tensor<1x32xf32>) -> tensor<1x32xf32> {
    %r = ds.weight "r" : tensor<8x32xf32>
    %eg = ds.stacked_weight "e.*.g" : tensor<8x12x32xf32>
    %eu = ds.stacked_weight "e.*.u" : tensor<8x12x32xf32>
    %ed = ds.stacked_weight "e.*.d" : tensor<8x32x12xf32>
    %s0 = shard.sharding @ranks split_axes = [[0]] : !shard.sharding
    %ega = shard.shard %eg to %s0 annotate_for_users : tensor<8x12x32xf32>
    %eua = shard.shard %eu to %s0 annotate_for_users : tensor<8x12x32xf32>
    %eda = shard.shard %ed to %s0 annotate_for_users : tensor<8x32x12xf32>
    %y = ds.moe %x router(%r) experts(%ega, %eua, %eda) {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 1, topk_group = 1, scoring_func = softmax, topk_method = greedy, norm_topk_prob = false, routed_scaling_factor = 1.0, norm_rule = v2, intermediate_size = 12, n_shared_experts = 0>} : tensor<1x32xf32> router(tensor<8x32xf32>) experts(tensor<8x12x32xf32>, tensor<8x12x32xf32>, tensor<8x32x12xf32>) -> tensor<1x32xf32>
    return %y : tensor<1x32xf32>
  }
}
