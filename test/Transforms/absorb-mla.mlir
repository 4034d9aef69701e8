// RUN: ds-opt --split-input-file --ds-absorb-mla="form=absorbed" %s | FileCheck %s

// Tests that MLA with the q_lora path becomes attention over the latent
// cache: the latent and roped key are written first, W_UK is absorbed into
// the query and W_UV into the output (both per-head slices of kv_b_proj),
// and nothing builds a per-head key or value from the cache.

// CHECK-LABEL: func.func @q_lora
// CHECK-SAME: (%[[X:.+]]: tensor<?x32xf32>, %[[POS:.+]]: tensor<?xi32>, %[[C:.+]]: !ds.latent_cache
// CHECK: %[[CQ:.+]] = ds.linear %[[X]], %{{.+}} : tensor<?x32xf32>, tensor<24x32xf32> -> tensor<?x24xf32>
// CHECK: %[[CQN:.+]] = ds.rms_norm %[[CQ]], %{{.+}} {eps = 9.9999999999999995E-7 : f64}
// CHECK: %[[Q:.+]] = ds.linear %[[CQN]], %{{.+}} -> tensor<?x24xf32>
// CHECK: %[[Q3:.+]] = tensor.expand_shape %[[Q]] {{\[}}[0], [1, 2]] {{.*}} into tensor<?x2x12xf32>
// CHECK: %[[QN:.+]] = tensor.extract_slice %[[Q3]][0, 0, 0] {{.*}} to tensor<?x2x8xf32>
// CHECK: %[[QR:.+]] = tensor.extract_slice %[[Q3]][0, 0, 8] {{.*}} to tensor<?x2x4xf32>
// CHECK: %[[QPE:.+]] = ds.rope %[[QR]], %[[POS]]
// CHECK: %[[KV:.+]] = ds.linear %[[X]], %{{.+}} -> tensor<?x20xf32>
// CHECK: %[[LAT:.+]] = tensor.extract_slice %[[KV]][0, 0] {{.*}} to tensor<?x16xf32>
// CHECK: %[[LATN:.+]] = ds.rms_norm %[[LAT]], %{{.+}} {eps = 9.9999999999999995E-7 : f64}
// CHECK: %[[KR:.+]] = tensor.extract_slice %[[KV]][0, 16] {{.*}} to tensor<?x4xf32>
// CHECK: %[[KPE:.+]] = ds.rope %[[KR]], %[[POS]]
// CHECK: %[[C1:.+]] = ds.cache_write %[[C]], %[[LATN]], %[[KPE]], %[[POS]] {layer = 1 : i64}
// CHECK: %[[QL:.+]] = ds.head_matmul %[[QN]], %[[KVB:.+]] {group = 16 : i64, offset = 0 : i64, rows = 8 : i64} : tensor<?x2x8xf32>, tensor<32x16xf32> -> tensor<?x2x16xf32>
// CHECK: %[[U:.+]] = ds.latent_attention %[[QL]], %[[QPE]], %[[C1]], %[[POS]] {layer = 1 : i64, scale = 3.125000e-01 : f64} {{.*}} -> tensor<?x2x16xf32>
// CHECK: %[[OH:.+]] = ds.head_matmul %[[U]], %[[KVB]] {group = 16 : i64, offset = 8 : i64, rows = 8 : i64, transpose} : tensor<?x2x16xf32>, tensor<32x16xf32> -> tensor<?x2x8xf32>
// CHECK: %[[O:.+]] = tensor.collapse_shape %[[OH]] {{\[}}[0], [1, 2]] : tensor<?x2x8xf32> into tensor<?x16xf32>
// CHECK: %[[OUT:.+]] = ds.linear %[[O]], %{{.+}} : tensor<?x16xf32>, tensor<32x16xf32> -> tensor<?x32xf32>
// CHECK: return %[[OUT]], %[[C1]]
// CHECK-NOT: ds.mla
func.func @q_lora(%x: tensor<?x32xf32>, %pos: tensor<?xi32>,
                  %c: !ds.latent_cache<num_layers = 3, width = 20, element_type = f32>)
    -> (tensor<?x32xf32>, !ds.latent_cache<num_layers = 3, width = 20, element_type = f32>) {
  %qa = ds.weight "qa" : tensor<24x32xf32>
  %qan = ds.weight "qan" : tensor<24xf32>
  %qb = ds.weight "qb" : tensor<24x24xf32>
  %kva = ds.weight "kva" : tensor<20x32xf32>
  %kvan = ds.weight "kvan" : tensor<16xf32>
  %kvb = ds.weight "kvb" : tensor<32x16xf32>
  %o = ds.weight "o" : tensor<32x16xf32>
  %y, %c2 = ds.mla %x, %pos, %c q_lora(%qa, %qan, %qb) kv(%kva, %kvan, %kvb) o(%o)
      {config = #ds.mla_config<num_heads = 2, q_lora_rank = 24, kv_lora_rank = 16,
         qk_nope_head_dim = 8, qk_rope_head_dim = 4, v_head_dim = 8, softmax_scale = 0.3125,
         rope_theta = 10000.0>, layer = 1 : i64}
      : tensor<?x32xf32>, tensor<?xi32>, !ds.latent_cache<num_layers = 3, width = 20, element_type = f32>
        q_lora(tensor<24x32xf32>, tensor<24xf32>, tensor<24x24xf32>)
        kv(tensor<20x32xf32>, tensor<16xf32>, tensor<32x16xf32>) o(tensor<32x16xf32>)
      -> tensor<?x32xf32>, !ds.latent_cache<num_layers = 3, width = 20, element_type = f32>
  return %y, %c2 : tensor<?x32xf32>, !ds.latent_cache<num_layers = 3, width = 20, element_type = f32>
}

// -----

// Tests that the q_proj path (no q_lora_rank) projects queries directly and
// that v_head_dim != qk_nope_head_dim slices kv_b_proj per head correctly
// (group = nope + v = 14, W_UV at offset 8 of width 6).

// CHECK-LABEL: func.func @q_proj_decode
// CHECK: %[[Q:.+]] = ds.linear %{{.+}}, %{{.+}} : tensor<1x32xf32>, tensor<24x32xbf16> -> tensor<1x24xf32>
// CHECK-NOT: ds.rms_norm %[[Q]]
// CHECK: ds.head_matmul %{{.+}}, %[[KVB:.+]] {group = 14 : i64, offset = 0 : i64, rows = 8 : i64} : tensor<1x2x8xf32>, tensor<28x16xbf16> -> tensor<1x2x16xf32>
// CHECK: ds.latent_attention {{.*}} -> tensor<1x2x16xf32>
// CHECK: ds.head_matmul %{{.+}}, %[[KVB]] {group = 14 : i64, offset = 8 : i64, rows = 6 : i64, transpose} : tensor<1x2x16xf32>, tensor<28x16xbf16> -> tensor<1x2x6xf32>
func.func @q_proj_decode(%x: tensor<1x32xf32>, %pos: tensor<1xi32>,
                         %c: !ds.latent_cache<num_layers = 1, width = 20, element_type = bf16>)
    -> tensor<1x32xf32> {
  %q = ds.weight "q" : tensor<24x32xbf16>
  %kva = ds.weight "kva" : tensor<20x32xbf16>
  %kvan = ds.weight "kvan" : tensor<16xbf16>
  %kvb = ds.weight "kvb" : tensor<28x16xbf16>
  %o = ds.weight "o" : tensor<32x12xbf16>
  %y, %c2 = ds.mla %x, %pos, %c q(%q) kv(%kva, %kvan, %kvb) o(%o)
      {config = #ds.mla_config<num_heads = 2, kv_lora_rank = 16, qk_nope_head_dim = 8,
         qk_rope_head_dim = 4, v_head_dim = 6, softmax_scale = 0.25, rope_theta = 500.5>,
       layer = 0 : i64}
      : tensor<1x32xf32>, tensor<1xi32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = bf16>
        q(tensor<24x32xbf16>) kv(tensor<20x32xbf16>, tensor<16xbf16>, tensor<28x16xbf16>) o(tensor<32x12xbf16>)
      -> tensor<1x32xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = bf16>
  return %y : tensor<1x32xf32>
}
