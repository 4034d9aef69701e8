// Tests that the released DeepSeek-V3 config imports without weights: 61
// layers (3 dense + 58 MoE), 256 experts top-8 in 8 groups, FP8 weights
// dequantised per 128x128 block, the MTP layer 61 left out of the main
// entry points and imported as @draft (num_nextn_predict_layers = 1) with
// @prefill_hidden beside it, and that the output verifies and round-trips
// through ds-opt.

// RUN: ds-compile %configs/deepseek-v3.json --emit=ds -o %t.mlir
// RUN: FileCheck %s --input-file %t.mlir
// RUN: grep -c " = ds.mla " %t.mlir | FileCheck %s --check-prefix=MLA
// RUN: grep -c " = ds.moe " %t.mlir | FileCheck %s --check-prefix=MOE
// RUN: grep -c " = ds.mlp " %t.mlir | FileCheck %s --check-prefix=MLP
// RUN: ds-opt %t.mlir -o %t.1.mlir
// RUN: ds-opt %t.1.mlir -o %t.2.mlir
// RUN: diff %t.1.mlir %t.2.mlir

// Four main entry points (prefill, decode, step, prefill_hidden) x 61
// layers, and the MTP module's layer.
// MLA: 245
// MOE: 233
// MLP: 12

// CHECK: module attributes {{{.*}}ds.eos_token_id = 1 : i64{{.*}}ds.model_type = "deepseek_v3"{{.*}}ds.vocab_size = 129280 : i64
// CHECK-LABEL: func.func @prefill
// CHECK-SAME: tensor<?xi32> {ds.name = "tokens"}, %{{.+}}: tensor<?xi32> {ds.name = "positions"}, %{{.+}}: !ds.latent_cache<num_layers = 61, width = 576, element_type = f32> {ds.name = "cache"}
// CHECK-SAME: -> (tensor<?x129280xf32>, !ds.latent_cache<num_layers = 61, width = 576, element_type = f32>)
// CHECK: ds.weight "model.embed_tokens.weight" : tensor<129280x7168xbf16>
// CHECK: %[[QA:.+]] = ds.weight "model.layers.0.self_attn.q_a_proj.weight" : tensor<1536x7168xf8E4M3FN>
// CHECK: %[[QAS:.+]] = ds.weight "model.layers.0.self_attn.q_a_proj.weight_scale_inv" : tensor<12x56xf32>
// CHECK: ds.dequantize %[[QA]], %[[QAS]] {block_size = 128 : i64} : tensor<1536x7168xf8E4M3FN>, tensor<12x56xf32> -> tensor<1536x7168xbf16>
// CHECK: ds.mla {{.*}} q_lora({{.*}}) kv({{.*}}) o({{.*}}) {config = #ds.mla_config<num_heads = 128, q_lora_rank = 1536, kv_lora_rank = 512, qk_nope_head_dim = 128, qk_rope_head_dim = 64, v_head_dim = 128, softmax_scale = {{.*}}, rope_theta = 10000.0, rope_scaling = #ds.yarn<factor = 40.0, original_max_position_embeddings = 4096, beta_fast = 32.0, beta_slow = 1.0, mscale = 1.0, mscale_all_dim = 1.0>>, layer = 0 : i64}
// CHECK: ds.mlp
// CHECK: ds.mla {{.*}}layer = 2 : i64
// CHECK: "model.layers.2.mlp.down_proj.weight"
// CHECK: ds.mlp
// CHECK-NOT: ds.moe
// CHECK: ds.weight "model.layers.3.mlp.gate.weight" : tensor<256x7168xbf16>
// CHECK: ds.weight "model.layers.3.mlp.gate.e_score_correction_bias" : tensor<256xf32>
// CHECK: ds.stacked_weight "model.layers.3.mlp.experts.*.gate_proj.weight" : tensor<256x2048x7168xf8E4M3FN>
// CHECK: ds.stacked_weight "model.layers.3.mlp.experts.*.gate_proj.weight_scale_inv" : tensor<256x16x56xf32>
// CHECK: ds.moe {{.*}} router({{.*}}) bias({{.*}}) experts({{.*}}) shared({{.*}}) {config = #ds.moe_config<num_experts = 256, top_k = 8, n_group = 8, topk_group = 4, scoring_func = sigmoid, topk_method = noaux_tc, norm_topk_prob = true, routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 2048, n_shared_experts = 1>}
// CHECK: ds.mla {{.*}}layer = 60 : i64
// CHECK-NOT: model.layers.61.
// CHECK: ds.lm_head {{.*}} -> tensor<?x129280xf32>
// CHECK-LABEL: func.func @decode
// CHECK-SAME: tensor<1xi32> {ds.name = "tokens"}
// CHECK-SAME: -> (tensor<1x129280xf32>,
// CHECK-LABEL: func.func @prefill_hidden
// CHECK-SAME: -> (tensor<?x129280xf32>, !ds.latent_cache<num_layers = 61, width = 576, element_type = f32>, tensor<?x7168xf32>)
// CHECK-NOT: model.layers.61.
// CHECK: %[[NORM:.+]] = ds.weight "model.norm.weight"
// CHECK: %[[HID:.+]] = ds.rms_norm %{{.+}}, %[[NORM]] {{.*}} -> tensor<?x7168xf32>
// CHECK: %[[LOGITS:.+]] = ds.linear %[[HID]], {{.*}} -> tensor<?x129280xf32>
// CHECK: return %[[LOGITS]], %{{.+}}, %[[HID]]
// CHECK-LABEL: func.func @draft
// CHECK-SAME: tensor<?xi32> {ds.name = "next_tokens"}, %{{.+}}: tensor<?xi32> {ds.name = "positions"}, %{{.+}}: !ds.latent_cache<num_layers = 1, width = 576, element_type = f32> {ds.name = "mtp_cache"}, %[[H:.+]]: tensor<?x7168xf32> {ds.name = "hidden"}
// CHECK-SAME: -> (tensor<?x129280xf32>, !ds.latent_cache<num_layers = 1, width = 576, element_type = f32>, tensor<?x7168xf32>)
// CHECK-SAME: attributes {ds.tokens_per_call = 1 : i64}
// CHECK: %[[E:.+]] = ds.embedding
// CHECK: ds.weight "model.layers.61.enorm.weight" : tensor<7168xbf16>
// CHECK: ds.weight "model.layers.61.hnorm.weight" : tensor<7168xbf16>
// CHECK: ds.weight "model.layers.61.eh_proj.weight" : tensor<7168x14336xf8E4M3FN>
// CHECK: %[[X:.+]] = ds.mtp_project %[[E]], %[[H]], {{.*}} -> tensor<?x7168xf32>
// CHECK: ds.rms_norm %[[X]]
// CHECK: ds.mla {{.*}}layer = 0 : i64}
// CHECK: ds.moe
// CHECK: %[[OUT:.+]] = arith.addf
// CHECK: ds.weight "model.layers.61.shared_head.norm.weight"
// CHECK: ds.weight "lm_head.weight"
// CHECK: %[[DL:.+]] = ds.lm_head %[[OUT]], {{.*}} -> tensor<?x129280xf32>
// CHECK: return %[[DL]], %{{.+}}, %[[OUT]]
