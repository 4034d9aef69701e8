// RUN: ds-opt --convert-ds-to-loops="runtime-embedding=true" %s | FileCheck %s

// Tests that with runtime-embedding (the CPU pipeline) the embedding is a
// runtime call, not a loop nest, and that a table read only by that call
// and by GEMMs is marked gemm_only (the runtime then reads it in place in
// the checkpoint's format), while the norm, read by a kernel, is not.

// CHECK: module attributes {ds.bindings = [{dequantize = false, gemm_only = true, index = 0 : i64, members = ["embed"], shape = array<i64: 64, 32>}, {dequantize = false, gemm_only = false, index = 1 : i64, members = ["norm"], shape = array<i64: 32>}, {dequantize = false, gemm_only = true, index = 2 : i64, logits, members = ["head"], shape = array<i64: 64, 32>}]}
// CHECK-DAG: func.func private @dsrt_embedding_f32(!llvm.ptr, memref<?x?xf32>, memref<?xi32>, memref<?x?xf32>) attributes {llvm.emit_c_interface}
// CHECK-LABEL: func.func @prefill
// CHECK-SAME: (%[[CTX:[a-z0-9_]+]]: !llvm.ptr, %[[TOK:[a-z0-9_]+]]: memref<?xi32>,
// CHECK: %[[H:.+]] = memref.alloc(%{{.+}}) : memref<?x32xf32>
// CHECK: %[[E:.+]] = call @dsrt_weight_f32_r2(%[[CTX]], %{{.+}}) : (!llvm.ptr, i64) -> memref<?x?xf32>
// CHECK: %[[ES:.+]] = memref.cast %[[E]] : memref<?x?xf32> to memref<64x32xf32>
// CHECK: %[[ED:.+]] = memref.cast %[[ES]] : memref<64x32xf32> to memref<?x?xf32>
// CHECK: %[[TD:.+]] = memref.cast %[[TOK]] : memref<?xi32> to memref<?xi32>
// CHECK: %[[HD:.+]] = memref.cast %[[H]] : memref<?x32xf32> to memref<?x?xf32>
// CHECK: call @dsrt_embedding_f32(%[[CTX]], %[[ED]], %[[TD]], %[[HD]])
// CHECK-NOT: ds.kernel = "embedding"
func.func @prefill(%tok: tensor<?xi32>, %pos: tensor<?xi32>,
                   %c: !ds.latent_cache<num_layers = 2, width = 20, element_type = f32>)
    -> (tensor<?x64xf32>, !ds.latent_cache<num_layers = 2, width = 20, element_type = f32>) {
  %e = ds.weight "embed" : tensor<64x32xbf16>
  %x = ds.embedding %e, %tok : tensor<64x32xbf16>, tensor<?xi32> -> tensor<?x32xf32>
  %n = ds.weight "norm" : tensor<32xf32>
  %xn = ds.rms_norm %x, %n {eps = 1.0e-06 : f64} : tensor<?x32xf32>, tensor<32xf32> -> tensor<?x32xf32>
  %h = ds.weight "head" : tensor<64x32xbf16>
  %logits = ds.linear %xn, %h : tensor<?x32xf32>, tensor<64x32xbf16> -> tensor<?x64xf32>
  return %logits, %c : tensor<?x64xf32>, !ds.latent_cache<num_layers = 2, width = 20, element_type = f32>
}
