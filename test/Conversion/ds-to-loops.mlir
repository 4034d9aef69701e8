// RUN: ds-opt --split-input-file --convert-ds-to-loops %s | FileCheck %s

// Tests that an entry point becomes the runtime ABI (context pointer, dynamic
// token buffers, the cache in place, logits written to a caller buffer), that
// weights become runtime bindings (numbered once per name, recorded in
// ds.bindings) and GEMMs runtime calls, and that kernels become loop nests.

// Bindings only GEMMs read are marked gemm_only (the runtime reads them
// in the checkpoint's format); the embedding table and the norm are read by
// kernels. The head's GEMM alone produces the logits: marked `logits` (the
// runtime computes only the rows a caller reads).
// CHECK: module attributes {ds.bindings = [{dequantize = false, gemm_only = false, index = 0 : i64, members = ["embed"], shape = array<i64: 64, 32>}, {dequantize = false, gemm_only = false, index = 1 : i64, members = ["norm"], shape = array<i64: 32>}, {dequantize = true, gemm_only = true, index = 2 : i64, logits, members = ["head"], shape = array<i64: 64, 32>}]}
// CHECK-DAG: func.func private @dsrt_weight_f32_r2(!llvm.ptr, i64) -> memref<?x?xf32> attributes {llvm.emit_c_interface}
// CHECK-DAG: func.func private @dsrt_linear_f32(!llvm.ptr, memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>) attributes {llvm.emit_c_interface}
// CHECK-LABEL: func.func @prefill
// CHECK-SAME: (%[[CTX:.+]]: !llvm.ptr, %[[TOK:.+]]: memref<?xi32>, %[[POS:.+]]: memref<?xi32>, %[[CACHE:.+]]: memref<2x?x20xf32>, %[[OUT:.+]]: memref<?x64xf32>)
// CHECK-SAME: attributes {ds.entry_point, llvm.emit_c_interface}
// CHECK: %[[H:.+]] = memref.alloc(%{{.+}}) : memref<?x32xf32>
// CHECK: %[[E:.+]] = call @dsrt_weight_f32_r2(%[[CTX]], %{{.+}}) : (!llvm.ptr, i64) -> memref<?x?xf32>
// CHECK: %[[ES:.+]] = memref.cast %[[E]] : memref<?x?xf32> to memref<64x32xf32>
// CHECK: call @[[EMB:__ds_embedding_[0-9a-f]+]](%[[ES]], %[[TOK]], %[[H]])
// CHECK: call @[[NORM:__ds_rms_norm_[0-9a-f]+]](%[[H]],
// The head's GEMM writes the caller's logits buffer itself: no buffer of
// its own, no copy.
// CHECK: %[[OUTC:.+]] = memref.cast %[[OUT]] : memref<?x64xf32> to memref<?x?xf32>
// CHECK: call @dsrt_linear_f32(%[[CTX]], %{{.+}}, %{{.+}}, %[[OUTC]])
// CHECK-NOT: memref.store %{{.+}}, %[[OUT]]
// CHECK: memref.dealloc %[[H]]
// CHECK: return
// Kernels are private functions, kept out of line, shared by identical uses.
// CHECK: func.func private @[[EMB]](%{{.+}}: memref<64x32xf32>, %{{.+}}: memref<?xi32>, %{{.+}}: memref<?x32xf32>) attributes {ds.kernel = "embedding", passthrough = ["noinline"]}
// CHECK: scf.parallel
// CHECK: memref.load
// CHECK: func.func private @[[NORM]](
// CHECK: math.rsqrt
// CHECK-NOT: {{= ds\.}}
func.func @prefill(%tok: tensor<?xi32>, %pos: tensor<?xi32>,
                   %c: !ds.latent_cache<num_layers = 2, width = 20, element_type = f32>)
    -> (tensor<?x64xf32>, !ds.latent_cache<num_layers = 2, width = 20, element_type = f32>) {
  %e = ds.weight "embed" : tensor<64x32xbf16>
  %x = ds.embedding %e, %tok : tensor<64x32xbf16>, tensor<?xi32> -> tensor<?x32xf32>
  %n = ds.weight "norm" : tensor<32xf32>
  %xn = ds.rms_norm %x, %n {eps = 1.0e-06 : f64} : tensor<?x32xf32>, tensor<32xf32> -> tensor<?x32xf32>
  %hq = ds.weight "head" : tensor<64x32xf8E4M3FN>
  %hs = ds.weight "head_scale_inv" : tensor<1x1xf32>
  %h = ds.dequantize %hq, %hs {block_size = 128 : i64} : tensor<64x32xf8E4M3FN>, tensor<1x1xf32> -> tensor<64x32xbf16>
  %logits = ds.linear %xn, %h : tensor<?x32xf32>, tensor<64x32xbf16> -> tensor<?x64xf32>
  return %logits, %c : tensor<?x64xf32>, !ds.latent_cache<num_layers = 2, width = 20, element_type = f32>
}

