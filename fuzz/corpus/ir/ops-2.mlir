

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

