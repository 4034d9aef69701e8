// Tests that --kv-layout=per-head gives @ragged_step a per-head K/V cache
// (V2-Lite: 16 heads, key 128 + 64, value 128; every layer's ds.mla over it)
// while @prefill and @decode keep the latent cache, and that the option is
// refused where @ragged_step does not exist or its cache cannot be fp8.

// RUN: ds-compile %configs/deepseek-v2-lite.json --emit=ds --kv-layout=per-head --dtype bf16 -o - | FileCheck %s
// RUN: not ds-compile %configs/deepseek-v2-lite.json --emit=ds --kv-layout=per-head --kv-dtype fp8 -o - 2>&1 | FileCheck %s --check-prefix=FP8
// RUN: not ds-compile %configs/deepseek-v2-lite.json --emit=ds --kv-layout=per-head --tp 2 -o - 2>&1 | FileCheck %s --check-prefix=TP
// RUN: not ds-compile %configs/deepseek-v2-lite.json --emit=ds --kv-layout=heads -o - 2>&1 | FileCheck %s --check-prefix=BAD
// RUN: not ds-compile %s --emit=ds --kv-layout=per-head -o - 2>&1 | FileCheck %s --check-prefix=MLIR

// CHECK-LABEL: func.func @prefill
// CHECK-SAME: !ds.latent_cache<num_layers = 27, width = 576, element_type = bf16>
// CHECK-LABEL: func.func @ragged_step
// CHECK-SAME: %[[C:[^ :]+]]: !ds.paged_kv_cache<num_layers = 27, num_heads = 16, key_width = 192, value_width = 128, element_type = bf16> {ds.name = "cache"}
// CHECK-SAME: -> (tensor<?x102400xf32>, !ds.paged_kv_cache<num_layers = 27, num_heads = 16, key_width = 192, value_width = 128, element_type = bf16>)
// CHECK: %{{.+}}, %[[C0:.+]] = ds.mla %{{.+}}, %{{.+}}, %[[C]] {{.*}} paged({{.*}}) {{.*}}layer = 0 : i64}
// CHECK: ds.mla %{{.+}}, %{{.+}}, %[[C0]] {{.*}}layer = 1 : i64}

// FP8: error: --kv-layout=per-head: fp8 caches are not supported (the fp8 codec is the latent layout's); use --kv-dtype f32 or bf16
// TP: error: --kv-layout=per-head: not with --tp/--ep (partitioned artifacts have no @ragged_step)
// BAD: error: --kv-layout: expected latent or per-head, got 'heads'
// MLIR: error: --kv-layout=per-head: applies when importing a checkpoint (a .mlir input spells its cache types itself)
