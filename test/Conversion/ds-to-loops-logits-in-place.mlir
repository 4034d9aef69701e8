// RUN: ds-opt --split-input-file --convert-ds-to-loops %s | FileCheck %s

// Tests that an entry point whose logits are one GEMM's result has the GEMM
// write the caller's logits buffer itself: no [T, vocab] buffer of its own
// and no copy at the return (a call asking for the last row only then
// touches no page of the others).

// CHECK-LABEL: func.func @decode
// CHECK-SAME: %[[LOGITS:[^:]+]]: memref<?x64xf32>) attributes
// CHECK: %[[DST:.+]] = memref.cast %[[LOGITS]] : memref<?x64xf32> to memref<?x?xf32>
// CHECK: call @dsrt_linear_f32(%{{.+}}, %{{.+}}, %{{.+}}, %[[DST]])
// CHECK-NOT: memref.alloc(%{{.+}}) : memref<?x64xf32>
// CHECK-NOT: memref.store %{{.+}}, %[[LOGITS]]
// CHECK: return
func.func @decode(%tok: tensor<?xi32>, %pos: tensor<?xi32>,
                  %c: !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>)
    -> (tensor<?x64xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>) {
  %e = ds.weight "embed" : tensor<64x16xf32>
  %x = ds.embedding %e, %tok : tensor<64x16xf32>, tensor<?xi32> -> tensor<?x16xf32>
  %h = ds.weight "head" : tensor<64x16xf32>
  %logits = ds.linear %x, %h : tensor<?x16xf32>, tensor<64x16xf32> -> tensor<?x64xf32>
  return %logits, %c : tensor<?x64xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>
}

// -----

// Tests that logits the GEMM does not produce directly (here some of its
// rows are gathered) keep their own buffer, copied into the caller's at the
// return.

// CHECK-LABEL: func.func @decode
// CHECK-SAME: %[[LOGITS:[^:]+]]: memref<?x64xf32>) attributes
// CHECK: %[[OWN:.+]] = memref.alloc(%{{.+}}) : memref<?x64xf32>
// CHECK: %[[OWNC:.+]] = memref.cast %[[OWN]] : memref<?x64xf32> to memref<?x?xf32>
// CHECK: call @dsrt_linear_f32(%{{.+}}, %{{.+}}, %{{.+}}, %[[OWNC]])
// CHECK: %[[G:.+]] = memref.alloc(%{{.+}}) : memref<?x64xf32>
// CHECK: call @__ds_gather_rows_{{[0-9a-f]+}}(%[[OWN]], %{{.+}}, %[[G]])
// CHECK: memref.store %{{.+}}, %[[LOGITS]]
// CHECK: return
func.func @decode(%tok: tensor<?xi32>, %pos: tensor<?xi32>,
                  %c: !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>)
    -> (tensor<?x64xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>) {
  %e = ds.weight "embed" : tensor<64x16xf32>
  %x = ds.embedding %e, %tok : tensor<64x16xf32>, tensor<?xi32> -> tensor<?x16xf32>
  %h = ds.weight "head" : tensor<64x16xf32>
  %l = ds.linear %x, %h : tensor<?x16xf32>, tensor<64x16xf32> -> tensor<?x64xf32>
  %logits = ds.gather_rows %l, %pos : tensor<?x64xf32>, tensor<?xi32> -> tensor<?x64xf32>
  return %logits, %c : tensor<?x64xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>
}
