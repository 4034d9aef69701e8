

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

