// RUN: ds-opt --ds-absorb-mla="form=naive" %s | FileCheck %s --check-prefix=NAIVE
// RUN: ds-opt --ds-absorb-mla="form=absorbed" %s | FileCheck %s --check-prefix=ABSORBED
// RUN: ds-opt --ds-absorb-mla="form=auto prefill-tokens=170 context-tokens=100000 explain=true" %s 2>&1 >/dev/null | FileCheck %s --check-prefix=REMARK170
// RUN: ds-opt --ds-absorb-mla="form=auto prefill-tokens=170 context-tokens=100000" %s | FileCheck %s --check-prefix=AUTO170
// RUN: ds-opt --ds-absorb-mla="form=auto prefill-tokens=172 context-tokens=100000 explain=true" %s 2>&1 >/dev/null | FileCheck %s --check-prefix=REMARK172
// RUN: ds-opt --ds-absorb-mla="form=auto prefill-tokens=172 context-tokens=100000" %s | FileCheck %s --check-prefix=AUTO172
// RUN: not ds-opt --ds-absorb-mla="form=fast" %s 2>&1 | FileCheck %s --check-prefix=BAD

// Tests the choice between the absorbed and the naive MLA forms. With V3's
// head dims (dc 512, nope 128, rope 64, v 128) and a long cached context,
// the cost model's crossover for a prefill chunk is about
// (nope + v) * dc / (2 dc - nope - v) = 170.7 tokens; a decode step stays
// absorbed; a prompt with nothing cached goes naive.

// NAIVE-LABEL: func.func @prefill
// NAIVE: ds.cache_write
// NAIVE: %[[O:.+]] = ds.naive_attention %{{[^ ,]+}}, %{{[^ ,]+}}, %{{[^ ,]+}}, %{{[^ ,]+}}, %{{[^ ,]+}} {layer = 0 : i64, scale = {{.*}}} : tensor<?x2x128xf32>, tensor<?x2x64xf32>, !ds.latent_cache<num_layers = 1, width = 576, element_type = f32>, tensor<?xi32>, tensor<512x512xf32> -> tensor<?x2x128xf32>
// NAIVE: tensor.collapse_shape %[[O]]
// NAIVE-NOT: ds.latent_attention
// NAIVE-LABEL: func.func @decode
// NAIVE: ds.naive_attention

// ABSORBED-NOT: ds.naive_attention
// ABSORBED: ds.latent_attention

// REMARK170: remark: ds-absorb-mla: @prefill uses the absorbed form (auto): 170 tokens per call
// REMARK170: remark: ds-absorb-mla: @decode uses the absorbed form (auto): 1 tokens per call after 100000 cached
// AUTO170-LABEL: func.func @prefill
// AUTO170: ds.latent_attention
// AUTO170-LABEL: func.func @decode
// AUTO170: ds.latent_attention

// REMARK172: remark: ds-absorb-mla: @prefill uses the naive form (auto): 172 tokens per call
// REMARK172: remark: ds-absorb-mla: @decode uses the absorbed form (auto)
// REMARK172: remark: ds-absorb-mla: @draft uses the absorbed form (auto): 1 tokens per call after 100000 cached
// AUTO172-LABEL: func.func @prefill
// AUTO172: ds.naive_attention
// AUTO172-LABEL: func.func @decode
// AUTO172: ds.latent_attention
// AUTO172-LABEL: func.func @draft
// AUTO172-NOT: ds.naive_attention
// AUTO172: ds.latent_attention

// @draft has @prefill's dynamic token count, but its ds.tokens_per_call
// hint (the MTP drafter runs one token a call) makes it decode-like.

// RUN: ds-opt --ds-absorb-mla="form=auto prefill-tokens=64 context-tokens=0 explain=true" %s 2>&1 >/dev/null | FileCheck %s --check-prefix=FRESH
// FRESH: remark: ds-absorb-mla: @prefill uses the naive form (auto): 64 tokens per call after 0 cached

// BAD: ds-absorb-mla: form must be auto, absorbed or naive, got 'fast'

func.func @prefill(%x: tensor<?x256xf32>, %pos: tensor<?xi32>,
                   %c: !ds.latent_cache<num_layers = 1, width = 576, element_type = f32>,
                   %q: tensor<384x256xf32>, %kva: tensor<576x256xf32>, %kvan: tensor<512xf32>,
                   %kvb: tensor<512x512xf32>, %o: tensor<256x256xf32>)
    -> (tensor<?x256xf32>, !ds.latent_cache<num_layers = 1, width = 576, element_type = f32>) {
  %y, %c2 = ds.mla %x, %pos, %c q(%q) kv(%kva, %kvan, %kvb) o(%o)
      {config = #ds.mla_config<num_heads = 2, kv_lora_rank = 512, qk_nope_head_dim = 128,
         qk_rope_head_dim = 64, v_head_dim = 128, softmax_scale = 0.07, rope_theta = 10000.0>,
       layer = 0 : i64}
      : tensor<?x256xf32>, tensor<?xi32>, !ds.latent_cache<num_layers = 1, width = 576, element_type = f32>
        q(tensor<384x256xf32>) kv(tensor<576x256xf32>, tensor<512xf32>, tensor<512x512xf32>) o(tensor<256x256xf32>)
      -> tensor<?x256xf32>, !ds.latent_cache<num_layers = 1, width = 576, element_type = f32>
  return %y, %c2 : tensor<?x256xf32>, !ds.latent_cache<num_layers = 1, width = 576, element_type = f32>
}

func.func @decode(%x: tensor<1x256xf32>, %pos: tensor<1xi32>,
                  %c: !ds.latent_cache<num_layers = 1, width = 576, element_type = f32>,
                  %q: tensor<384x256xf32>, %kva: tensor<576x256xf32>, %kvan: tensor<512xf32>,
                  %kvb: tensor<512x512xf32>, %o: tensor<256x256xf32>)
    -> (tensor<1x256xf32>, !ds.latent_cache<num_layers = 1, width = 576, element_type = f32>) {
  %y, %c2 = ds.mla %x, %pos, %c q(%q) kv(%kva, %kvan, %kvb) o(%o)
      {config = #ds.mla_config<num_heads = 2, kv_lora_rank = 512, qk_nope_head_dim = 128,
         qk_rope_head_dim = 64, v_head_dim = 128, softmax_scale = 0.07, rope_theta = 10000.0>,
       layer = 0 : i64}
      : tensor<1x256xf32>, tensor<1xi32>, !ds.latent_cache<num_layers = 1, width = 576, element_type = f32>
        q(tensor<384x256xf32>) kv(tensor<576x256xf32>, tensor<512xf32>, tensor<512x512xf32>) o(tensor<256x256xf32>)
      -> tensor<1x256xf32>, !ds.latent_cache<num_layers = 1, width = 576, element_type = f32>
  return %y, %c2 : tensor<1x256xf32>, !ds.latent_cache<num_layers = 1, width = 576, element_type = f32>
}

func.func @draft(%x: tensor<?x256xf32>, %pos: tensor<?xi32>,
                   %c: !ds.latent_cache<num_layers = 1, width = 576, element_type = f32>,
                   %q: tensor<384x256xf32>, %kva: tensor<576x256xf32>, %kvan: tensor<512xf32>,
                   %kvb: tensor<512x512xf32>, %o: tensor<256x256xf32>)
    -> (tensor<?x256xf32>, !ds.latent_cache<num_layers = 1, width = 576, element_type = f32>)
    attributes {ds.tokens_per_call = 1 : i64} {
  %y, %c2 = ds.mla %x, %pos, %c q(%q) kv(%kva, %kvan, %kvb) o(%o)
      {config = #ds.mla_config<num_heads = 2, kv_lora_rank = 512, qk_nope_head_dim = 128,
         qk_rope_head_dim = 64, v_head_dim = 128, softmax_scale = 0.07, rope_theta = 10000.0>,
       layer = 0 : i64}
      : tensor<?x256xf32>, tensor<?xi32>, !ds.latent_cache<num_layers = 1, width = 576, element_type = f32>
        q(tensor<384x256xf32>) kv(tensor<576x256xf32>, tensor<512xf32>, tensor<512x512xf32>) o(tensor<256x256xf32>)
      -> tensor<?x256xf32>, !ds.latent_cache<num_layers = 1, width = 576, element_type = f32>
  return %y, %c2 : tensor<?x256xf32>, !ds.latent_cache<num_layers = 1, width = 576, element_type = f32>
}
