// RUN: ds-opt --convert-ds-to-loops %s | FileCheck %s

// Tests that a ragged step over a per-head K/V cache becomes the runtime
// ABI with the cache as memref<layers x ? x 64 x heads * (key + value)>
// (2 x (12 + 8) = 40 here), updated in place; that the write stores, per
// (token, head), the head's k_nope, the shared rope key again, and the
// head's value at row [layer, block_tables[seq, pos / 64], pos % 64] (the
// keys of all heads first, then the values: head h's value at 2 x 12 + h x
// 8); and that attention reads each row's page through the block table and
// runs an online softmax over the cached keys and values.

// CHECK-LABEL: func.func @step
// CHECK-SAME: (%[[CTX:.+]]: !llvm.ptr, %[[TOK:.+]]: memref<?xi32>, %[[POS:.+]]: memref<?xi32>, %[[CACHE:.+]]: memref<2x?x64x40xbf16>, %[[QS:.+]]: memref<?xi32>, %[[CL:.+]]: memref<?xi32>, %[[BT:.+]]: memref<?x?xi32>, %[[ROWS:.+]]: memref<?xi32>, %[[OUT:.+]]: memref<?x64xf32>)
// CHECK: call @[[WRITE:__ds_paged_kv_write_[0-9a-f]+]](%[[CACHE]], %{{.+}}, %{{.+}}, %[[POS]], %[[QS]], %[[BT]], %{{.+}})
// CHECK: %[[O:.+]] = memref.alloc(%{{.+}}) : memref<?x2x8xf32>
// CHECK: call @[[ATT:__ds_paged_kv_attention_[0-9a-f]+]](%{{.+}}, %{{.+}}, %[[CACHE]], %[[POS]], %[[QS]], %[[BT]], %[[O]], %{{.+}})
// CHECK: return

// CHECK: func.func private @[[WRITE]](%[[WC:.+]]: memref<2x?x64x40xbf16>, %[[KV:.+]]: memref<?x2x16xf32>, %[[KPE:.+]]: memref<?x4xf32>, %[[WP:.+]]: memref<?xi32>, %[[WQ:.+]]: memref<?xi32>, %[[WB:.+]]: memref<?x?xi32>, %[[WL:.+]]: index) attributes {ds.kernel = "paged_kv_write"
// CHECK: scf.parallel (%[[T:.+]], %[[H:.+]]) =
// CHECK: %[[SEQ:.+]] = scf.for
// CHECK: %[[ENTRY:.+]] = arith.divui %{{.+}}, %[[C64:.+]] : index
// CHECK: %[[PG:.+]] = memref.load %[[WB]][%[[SEQ]], %[[ENTRY]]] : memref<?x?xi32>
// CHECK: %[[PAGE:.+]] = arith.index_cast %[[PG]] : i32 to index
// CHECK: %[[SLOT:.+]] = arith.remui %{{.+}}, %[[C64]] : index
// CHECK: %[[C12:.+]] = arith.constant 12 : index
// CHECK: %[[KAT:.+]] = arith.muli %[[H]], %[[C12]] : index
// CHECK: %[[C24:.+]] = arith.constant 24 : index
// CHECK: %[[C8:.+]] = arith.constant 8 : index
// CHECK: %[[HV:.+]] = arith.muli %[[H]], %[[C8]] : index
// CHECK: %[[VAT:.+]] = arith.addi %[[C24]], %[[HV]] : index
// CHECK: scf.for %[[J:.+]] =
// CHECK: %[[X:.+]] = memref.load %[[KV]][%[[T]], %[[H]], %[[J]]]
// CHECK: %[[COL:.+]] = arith.addi %[[KAT]], %[[J]] : index
// CHECK: arith.truncf %[[X]] : f32 to bf16
// CHECK: memref.store %{{.+}}, %[[WC]][%[[WL]], %[[PAGE]], %[[SLOT]], %[[COL]]] : memref<2x?x64x40xbf16>
// CHECK: %[[RAT:.+]] = arith.addi %[[KAT]], %{{.+}} : index
// CHECK: scf.for %[[R:.+]] =
// CHECK: memref.load %[[KPE]][%[[T]], %[[R]]]
// CHECK: %[[RCOL:.+]] = arith.addi %[[RAT]], %[[R]] : index
// CHECK: memref.store %{{.+}}, %[[WC]][%[[WL]], %[[PAGE]], %[[SLOT]], %[[RCOL]]] : memref<2x?x64x40xbf16>
// CHECK: scf.for %[[V:.+]] =
// CHECK: %[[VJ:.+]] = arith.addi %[[V]], %{{.+}} : index
// CHECK: memref.load %[[KV]][%[[T]], %[[H]], %[[VJ]]]
// CHECK: %[[VCOL:.+]] = arith.addi %[[VAT]], %[[V]] : index
// CHECK: memref.store %{{.+}}, %[[WC]][%[[WL]], %[[PAGE]], %[[SLOT]], %[[VCOL]]] : memref<2x?x64x40xbf16>

// CHECK: func.func private @[[ATT]](%{{.+}}: memref<?x2x8xf32>, %{{.+}}: memref<?x2x4xf32>, %[[AC:.+]]: memref<2x?x64x40xbf16>, %{{.+}}: memref<?xi32>, %{{.+}}: memref<?xi32>, %[[AB:.+]]: memref<?x?xi32>, %{{.+}}: memref<?x2x8xf32>, %[[AL:.+]]: index) attributes {ds.kernel = "paged_kv_attention", ds.scale = 3.125000e-01 : f64, passthrough = ["noinline"]}
// CHECK: scf.parallel
// CHECK: scf.for %[[S:.+]] = %{{.+}} to %{{.+}} step %{{.+}} iter_args
// CHECK: %[[AE:.+]] = arith.divui %[[S]], %{{.+}} : index
// CHECK: memref.load %[[AB]][%{{.+}}, %[[AE]]] : memref<?x?xi32>
// CHECK: %[[AS:.+]] = arith.remui %[[S]], %{{.+}} : index
// CHECK: memref.load %[[AC]][%[[AL]], %{{.+}}, %[[AS]], %{{.+}}] : memref<2x?x64x40xbf16>
// CHECK: math.exp
// CHECK-NOT: {{= ds\.}}
func.func @step(%tok: tensor<?xi32>, %pos: tensor<?xi32>,
                %c: !ds.paged_kv_cache<num_layers = 2, num_heads = 2, key_width = 12, value_width = 8, element_type = bf16>,
                %qs: tensor<?xi32>, %cl: tensor<?xi32>, %bt: tensor<?x?xi32>, %rows: tensor<?xi32>)
    -> (tensor<?x64xf32>, !ds.paged_kv_cache<num_layers = 2, num_heads = 2, key_width = 12, value_width = 8, element_type = bf16>) {
  %e = ds.weight "embed" : tensor<64x32xf32>
  %x = ds.embedding %e, %tok : tensor<64x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
  %zero = arith.constant 0 : index
  %n = tensor.dim %x, %zero : tensor<?x32xf32>
  %wkv = ds.weight "wkv" : tensor<32x32xf32>
  %kv = ds.linear %x, %wkv : tensor<?x32xf32>, tensor<32x32xf32> -> tensor<?x32xf32>
  %kv3 = tensor.expand_shape %kv [[0], [1, 2]] output_shape [%n, 2, 16] : tensor<?x32xf32> into tensor<?x2x16xf32>
  %wk = ds.weight "wk" : tensor<4x32xf32>
  %kpe = ds.linear %x, %wk : tensor<?x32xf32>, tensor<4x32xf32> -> tensor<?x4xf32>
  %c1 = ds.paged_kv_write %c, %kv3, %kpe, %pos, %qs, %bt {layer = 1 : i64}
      : !ds.paged_kv_cache<num_layers = 2, num_heads = 2, key_width = 12, value_width = 8, element_type = bf16>,
        tensor<?x2x16xf32>, tensor<?x4xf32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>
  %wq = ds.weight "wq" : tensor<16x32xf32>
  %q = ds.linear %x, %wq : tensor<?x32xf32>, tensor<16x32xf32> -> tensor<?x16xf32>
  %qn = tensor.expand_shape %q [[0], [1, 2]] output_shape [%n, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  %wr = ds.weight "wr" : tensor<8x32xf32>
  %r = ds.linear %x, %wr : tensor<?x32xf32>, tensor<8x32xf32> -> tensor<?x8xf32>
  %qr = tensor.expand_shape %r [[0], [1, 2]] output_shape [%n, 2, 4] : tensor<?x8xf32> into tensor<?x2x4xf32>
  %o = ds.paged_kv_attention %qn, %qr, %c1, %pos, %qs, %bt {layer = 1 : i64, scale = 0.3125 : f64}
      : tensor<?x2x8xf32>, tensor<?x2x4xf32>, !ds.paged_kv_cache<num_layers = 2, num_heads = 2, key_width = 12, value_width = 8, element_type = bf16>,
        tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x2x8xf32>
  %o2 = tensor.collapse_shape %o [[0], [1, 2]] : tensor<?x2x8xf32> into tensor<?x16xf32>
  %g = ds.gather_rows %o2, %rows : tensor<?x16xf32>, tensor<?xi32> -> tensor<?x16xf32>
  %h = ds.weight "head" : tensor<64x16xf32>
  %logits = ds.linear %g, %h : tensor<?x16xf32>, tensor<64x16xf32> -> tensor<?x64xf32>
  return %logits, %c1 : tensor<?x64xf32>, !ds.paged_kv_cache<num_layers = 2, num_heads = 2, key_width = 12, value_width = 8, element_type = bf16>
}
