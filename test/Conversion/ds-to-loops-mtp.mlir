// RUN: ds-opt --split-input-file --convert-ds-to-loops %s | FileCheck %s

// Tests that an MTP draft entry point keeps the runtime ABI with the hidden
// states as one more argument after the cache (before the logits), and that
// ds.mtp_concat becomes a loop nest writing [e | h] with e zeroed where the
// position is 0.

// CHECK-LABEL: func.func @draft
// CHECK-SAME: (%[[CTX:.+]]: !llvm.ptr, %[[TOK:.+]]: memref<?xi32>, %[[POS:.+]]: memref<?xi32>, %[[CACHE:.+]]: memref<1x?x20xf32>, %[[H:.+]]: memref<?x32xf32>, %[[OUT:.+]]: memref<?x32xf32>)
// CHECK-SAME: attributes {ds.entry_point, llvm.emit_c_interface}
// CHECK: %[[E:.+]] = memref.alloc(%{{.+}}) : memref<?x32xf32>
// CHECK: %[[CAT:.+]] = memref.alloc(%{{.+}}) : memref<?x64xf32>
// CHECK: call @[[KERNEL:__ds_mtp_concat_[0-9a-f]+]](%[[E]], %[[H]], %[[POS]], %[[CAT]])
// CHECK: call @dsrt_linear_f32(%[[CTX]], %{{.+}}, %{{.+}}, %{{.+}}) : (!llvm.ptr, memref<?x?xf32>
// CHECK: func.func private @[[KERNEL]](%[[KE:.+]]: memref<?x32xf32>, %[[KH:.+]]: memref<?x32xf32>, %[[KP:.+]]: memref<?xi32>, %[[KO:.+]]: memref<?x64xf32>) attributes {ds.kernel = "mtp_concat"
// CHECK: scf.parallel (%[[T:.+]], %[[J:.+]]) =
// CHECK: %[[P:.+]] = memref.load %[[KP]][%[[T]]]
// CHECK: %[[FIRST:.+]] = arith.cmpi eq, %[[P]], %{{.+}} : i32
// CHECK: %[[EV:.+]] = memref.load %[[KE]][%[[T]], %[[J]]]
// CHECK: %[[SEL:.+]] = arith.select %[[FIRST]], %{{.+}}, %[[EV]] : f32
// CHECK: memref.store %[[SEL]], %[[KO]][%[[T]], %[[J]]]
// CHECK: %[[COL:.+]] = arith.addi %[[J]], %{{.+}} : index
// CHECK: %[[HV:.+]] = memref.load %[[KH]][%[[T]], %[[J]]]
// CHECK: memref.store %[[HV]], %[[KO]][%[[T]], %[[COL]]]
func.func @draft(%tok: tensor<?xi32>, %pos: tensor<?xi32>,
                 %c: !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>,
                 %h: tensor<?x32xf32>)
    -> (tensor<?x32xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>) {
  %t = ds.weight "embed" : tensor<64x32xf32>
  %e = ds.embedding %t, %tok : tensor<64x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
  %cat = ds.mtp_concat %e, %h, %pos : tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32> -> tensor<?x64xf32>
  %w = ds.weight "eh_proj" : tensor<32x64xf32>
  %x = ds.linear %cat, %w : tensor<?x64xf32>, tensor<32x64xf32> -> tensor<?x32xf32>
  return %x, %c : tensor<?x32xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>
}

// -----

// Tests that an entry point returning the hidden states writes them to one
// more caller buffer after the logits (which the head's GEMM writes into
// the first caller buffer itself).

// CHECK-LABEL: func.func @prefill_hidden
// CHECK-SAME: (%{{.+}}: !llvm.ptr, %[[TOK:.+]]: memref<?xi32>, %{{.+}}: memref<?xi32>, %{{.+}}: memref<2x?x20xf32>, %[[OUT:.+]]: memref<?x64xf32>, %[[HOUT:.+]]: memref<?x32xf32>)
// CHECK: %[[OUTC:.+]] = memref.cast %[[OUT]] : memref<?x64xf32> to memref<?x?xf32>
// CHECK: call @dsrt_linear_f32(%{{.+}}, %{{.+}}, %{{.+}}, %[[OUTC]])
// CHECK: memref.store %{{.+}}, %[[HOUT]]
func.func @prefill_hidden(%tok: tensor<?xi32>, %pos: tensor<?xi32>,
                          %c: !ds.latent_cache<num_layers = 2, width = 20, element_type = f32>)
    -> (tensor<?x64xf32>, !ds.latent_cache<num_layers = 2, width = 20, element_type = f32>, tensor<?x32xf32>) {
  %t = ds.weight "embed" : tensor<64x32xf32>
  %x = ds.embedding %t, %tok : tensor<64x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
  %hd = ds.weight "head" : tensor<64x32xf32>
  %l = ds.linear %x, %hd : tensor<?x32xf32>, tensor<64x32xf32> -> tensor<?x64xf32>
  return %l, %c, %x : tensor<?x64xf32>, !ds.latent_cache<num_layers = 2, width = 20, element_type = f32>, tensor<?x32xf32>
}
