// Tests that the released DeepSeek-V2-Lite config imports: 27 layers (1 dense
// + 26 MoE), q_proj instead of the q_lora path, softmax/greedy routing with
// no bias, 2 shared experts, bf16 weights, and that the output round-trips.

// RUN: ds-compile %configs/deepseek-v2-lite.json --emit=ds --dtype bf16 -o %t.mlir
// RUN: FileCheck %s --input-file %t.mlir
// RUN: grep -c " = ds.mla " %t.mlir | FileCheck %s --check-prefix=MLA
// RUN: grep -c " = ds.moe " %t.mlir | FileCheck %s --check-prefix=MOE
// RUN: grep -c " = ds.mlp " %t.mlir | FileCheck %s --check-prefix=MLP
// RUN: ds-opt %t.mlir -o %t.1.mlir
// RUN: ds-opt %t.1.mlir -o %t.2.mlir
// RUN: diff %t.1.mlir %t.2.mlir

// prefill, decode and step x 27 layers.
// MLA: 81
// MOE: 78
// MLP: 3

// CHECK: ds.model_type = "deepseek_v2"
// CHECK-LABEL: func.func @prefill
// CHECK-SAME: !ds.latent_cache<num_layers = 27, width = 576, element_type = bf16>
// CHECK-NOT: q_a_proj
// CHECK: ds.weight "model.layers.0.self_attn.q_proj.weight" : tensor<3072x2048xbf16>
// CHECK: ds.mla {{.*}} q({{.*}}) kv({{.*}}) o({{.*}}) {config = #ds.mla_config<num_heads = 16, kv_lora_rank = 512, qk_nope_head_dim = 128, qk_rope_head_dim = 64, v_head_dim = 128, softmax_scale = {{.*}}, rope_theta = 10000.0, rope_scaling = #ds.yarn<factor = 40.0, original_max_position_embeddings = 4096, beta_fast = 32.0, beta_slow = 1.0, mscale = 0.707, mscale_all_dim = 0.707>>, layer = 0 : i64}
// CHECK: ds.mlp {{.*}} tensor<10944x2048xbf16>
// CHECK: ds.stacked_weight "model.layers.1.mlp.experts.*.down_proj.weight" : tensor<64x2048x1408xbf16>
// CHECK: ds.weight "model.layers.1.mlp.shared_experts.gate_proj.weight" : tensor<2816x2048xbf16>
// CHECK-NOT: bias(
// CHECK: ds.moe {{.*}} {config = #ds.moe_config<num_experts = 64, top_k = 6, n_group = 1, topk_group = 1, scoring_func = softmax, topk_method = greedy, norm_topk_prob = false, routed_scaling_factor = 1.0, norm_rule = v2, intermediate_size = 1408, n_shared_experts = 2>}
// CHECK-NOT: model.layers.27.
// CHECK-LABEL: func.func @decode
