// Tests that the import adds @ragged_step, the serving engine's ragged batch over a
// paged latent cache, beside @prefill and @decode (CPU target): its
// signature (tokens, positions, the paged cache, query_start, context_lens,
// block_tables, logits_rows -> logits of the selected rows, the cache), every
// layer's MLA reading the pages through the block tables, the MoE over the
// whole batch at once, and the LM head over the gathered rows only. The
// cuda target gets it too (the same IR; its paged kernels are mapped in
// ds-map-kernels-to-gpu), an fp8 cache does not (not paged yet).

// RUN: ds-compile %configs/deepseek-v2-lite.json --emit=ds --dtype bf16 -o %t.mlir
// RUN: FileCheck %s --input-file %t.mlir
// RUN: ds-compile %configs/deepseek-v2-lite.json --emit=ds --target cuda -o - | FileCheck %s --check-prefix=CUDA
// RUN: ds-compile %configs/deepseek-v2-lite.json --emit=ds --target cuda --kv-dtype fp8 -o - | FileCheck %s --check-prefix=FP8

// CHECK-LABEL: func.func @ragged_step
// CHECK-SAME: (%[[TOK:.+]]: tensor<?xi32> {ds.name = "tokens"}, %[[POS:.+]]: tensor<?xi32> {ds.name = "positions"}, %[[C:.+]]: !ds.paged_latent_cache<num_layers = 27, width = 576, element_type = bf16> {ds.name = "cache"}, %[[QS:.+]]: tensor<?xi32> {ds.name = "query_start"}, %{{.+}}: tensor<?xi32> {ds.name = "context_lens"}, %[[BT:.+]]: tensor<?x?xi32> {ds.name = "block_tables"}, %[[ROWS:.+]]: tensor<?xi32> {ds.name = "logits_rows"})
// CHECK-SAME: -> (tensor<?x102400xf32>, !ds.paged_latent_cache<num_layers = 27, width = 576, element_type = bf16>)
// CHECK: ds.embedding %{{.+}}, %[[TOK]]
// CHECK: %{{.+}}, %[[C0:.+]] = ds.mla %{{.+}}, %[[POS]], %[[C]] q({{.*}}) kv({{.*}}) o({{.*}}) paged(%[[QS]], %[[BT]]) {{.*}}layer = 0 : i64}
// CHECK: ds.mlp
// CHECK: %{{.+}}, %[[C1:.+]] = ds.mla %{{.+}}, %[[POS]], %[[C0]] {{.*}} paged(%[[QS]], %[[BT]]) {{.*}}layer = 1 : i64}
// CHECK: ds.moe %{{.+}} router({{.*}}) experts({{.*}}) shared({{.*}}) {{.*}} : tensor<?x2048xf32>
// CHECK: ds.mla {{.*}} paged(%[[QS]], %[[BT]]) {{.*}}layer = 26 : i64}
// CHECK: %[[G:.+]] = ds.gather_rows %{{.+}}, %[[ROWS]] : tensor<?x2048xf32>, tensor<?xi32> -> tensor<?x2048xf32>
// CHECK: %[[L:.+]] = ds.lm_head %[[G]], {{.*}} -> tensor<?x102400xf32>
// CHECK: return %[[L]], %{{.+}} : tensor<?x102400xf32>, !ds.paged_latent_cache

// CUDA: func.func @prefill
// CUDA: func.func @decode
// CUDA: func.func @ragged_step
// CUDA-SAME: !ds.paged_latent_cache<num_layers = 27, width = 576, element_type = f32>
// CUDA: ds.mla {{.*}} paged(
// FP8: func.func @decode
// FP8-NOT: func.func @ragged_step
