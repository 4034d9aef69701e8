// RUN: ds-opt --convert-ds-to-loops %s | FileCheck %s

// Tests that a ragged step over a paged cache becomes the runtime ABI: the
// paged cache is memref<layers x ? x 64 x width> updated in place, the
// sequence description (query_start, context_lens, block tables, logits
// rows) arrives as dynamic i32 buffers before the logits buffer; that the
// paged cache write and attention kernels find a token's sequence by
// scanning query_start and its row at page block_tables[seq, pos / 64],
// slot pos % 64; and that only the gathered rows reach the logits GEMM.

// CHECK-LABEL: func.func @step
// CHECK-SAME: (%[[CTX:.+]]: !llvm.ptr, %[[TOK:.+]]: memref<?xi32>, %[[POS:.+]]: memref<?xi32>, %[[CACHE:.+]]: memref<2x?x64x20xbf16>, %[[QS:.+]]: memref<?xi32>, %[[CL:.+]]: memref<?xi32>, %[[BT:.+]]: memref<?x?xi32>, %[[ROWS:.+]]: memref<?xi32>, %[[OUT:.+]]: memref<?x64xf32>)
// CHECK-SAME: attributes {ds.entry_point, llvm.emit_c_interface}
// CHECK: call @[[WRITE:__ds_paged_cache_write_[0-9a-f]+]](%[[CACHE]], %{{.+}}, %{{.+}}, %[[POS]], %[[QS]], %[[BT]], %{{.+}})
// CHECK: %[[U:.+]] = memref.alloc(%{{.+}}) : memref<?x2x16xf32>
// CHECK: call @[[ATT:__ds_paged_latent_attention_[0-9a-f]+]](%{{.+}}, %{{.+}}, %[[CACHE]], %[[POS]], %[[QS]], %[[BT]], %[[U]], %{{.+}})
// CHECK: %[[NR:.+]] = memref.dim %[[ROWS]], %{{.+}} : memref<?xi32>
// CHECK: %[[G:.+]] = memref.alloc(%[[NR]]) : memref<?x32xf32>
// CHECK: call @[[GATHER:__ds_gather_rows_[0-9a-f]+]](%{{.+}}, %[[ROWS]], %[[G]])
// CHECK: call @dsrt_linear_f32(%[[CTX]], %{{.+}}, %{{.+}}, %{{.+}})
// CHECK: return

// The write: one token per iteration; its sequence by a scan of query_start,
// then the page from the block table and the slot in it.
// CHECK: func.func private @[[WRITE]](%[[WC:.+]]: memref<2x?x64x20xbf16>, %{{.+}}: memref<?x16xf32>, %{{.+}}: memref<?x4xf32>, %[[WP:.+]]: memref<?xi32>, %[[WQ:.+]]: memref<?xi32>, %[[WB:.+]]: memref<?x?xi32>, %[[WL:.+]]: index)
// CHECK: scf.parallel (%[[T:.+]]) =
// CHECK: %[[P:.+]] = arith.index_cast %{{.+}} : i32 to index
// CHECK: %[[SEQ:.+]] = scf.for %{{.+}} = %{{.+}} to %{{.+}} step %{{.+}} iter_args
// CHECK: memref.load %[[WQ]]
// CHECK: arith.cmpi sle
// CHECK: arith.select
// CHECK: %[[ENTRY:.+]] = arith.divui %[[P]], %[[C64:.+]] : index
// CHECK: %[[PG:.+]] = memref.load %[[WB]][%[[SEQ]], %[[ENTRY]]] : memref<?x?xi32>
// CHECK: %[[PAGE:.+]] = arith.index_cast %[[PG]] : i32 to index
// CHECK: %[[SLOT:.+]] = arith.remui %[[P]], %[[C64]] : index
// CHECK: arith.truncf %{{.+}} : f32 to bf16
// CHECK: memref.store %{{.+}}, %[[WC]][%[[WL]], %[[PAGE]], %[[SLOT]], %{{.+}}] : memref<2x?x64x20xbf16>

// Attention: each (token, head) scans its own sequence's rows 0..position,
// each row's page looked up once for its dot products and its value.
// CHECK: func.func private @[[ATT]](%{{.+}}: memref<?x2x16xf32>, %{{.+}}: memref<?x2x4xf32>, %[[AC:.+]]: memref<2x?x64x20xbf16>, %{{.+}}: memref<?xi32>, %{{.+}}: memref<?xi32>, %[[AB:.+]]: memref<?x?xi32>, %{{.+}}: memref<?x2x16xf32>, %[[AL:.+]]: index) attributes {ds.kernel = "paged_latent_attention", ds.scale = 3.125000e-01 : f64, passthrough = ["noinline"]}
// CHECK: scf.parallel
// CHECK: scf.for %[[S:.+]] = %{{.+}} to %{{.+}} step %{{.+}} iter_args
// CHECK: %[[AE:.+]] = arith.divui %[[S]], %{{.+}} : index
// CHECK: memref.load %[[AB]][%{{.+}}, %[[AE]]] : memref<?x?xi32>
// CHECK: %[[AS:.+]] = arith.remui %[[S]], %{{.+}} : index
// CHECK: memref.load %[[AC]][%[[AL]], %{{.+}}, %[[AS]], %{{.+}}] : memref<2x?x64x20xbf16>
// CHECK: math.exp

// CHECK: func.func private @[[GATHER]](%{{.+}}: memref<?x32xf32>, %{{.+}}: memref<?xi32>, %{{.+}}: memref<?x32xf32>) attributes {ds.kernel = "gather_rows", passthrough = ["noinline"]}
// CHECK-NOT: {{= ds\.}}
func.func @step(%tok: tensor<?xi32>, %pos: tensor<?xi32>,
                %c: !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = bf16>,
                %qs: tensor<?xi32>, %cl: tensor<?xi32>, %bt: tensor<?x?xi32>, %rows: tensor<?xi32>)
    -> (tensor<?x64xf32>, !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = bf16>) {
  %e = ds.weight "embed" : tensor<64x32xf32>
  %x = ds.embedding %e, %tok : tensor<64x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
  %wl = ds.weight "wl" : tensor<16x32xf32>
  %lat = ds.linear %x, %wl : tensor<?x32xf32>, tensor<16x32xf32> -> tensor<?x16xf32>
  %wk = ds.weight "wk" : tensor<4x32xf32>
  %kpe = ds.linear %x, %wk : tensor<?x32xf32>, tensor<4x32xf32> -> tensor<?x4xf32>
  %c1 = ds.paged_cache_write %c, %lat, %kpe, %pos, %qs, %bt {layer = 1 : i64}
      : !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = bf16>, tensor<?x16xf32>, tensor<?x4xf32>,
        tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>
  %zero = arith.constant 0 : index
  %n = tensor.dim %x, %zero : tensor<?x32xf32>
  %wq = ds.weight "wq" : tensor<32x32xf32>
  %q = ds.linear %x, %wq : tensor<?x32xf32>, tensor<32x32xf32> -> tensor<?x32xf32>
  %ql = tensor.expand_shape %q [[0], [1, 2]] output_shape [%n, 2, 16] : tensor<?x32xf32> into tensor<?x2x16xf32>
  %wr = ds.weight "wr" : tensor<8x32xf32>
  %r = ds.linear %x, %wr : tensor<?x32xf32>, tensor<8x32xf32> -> tensor<?x8xf32>
  %qr = tensor.expand_shape %r [[0], [1, 2]] output_shape [%n, 2, 4] : tensor<?x8xf32> into tensor<?x2x4xf32>
  %u = ds.paged_latent_attention %ql, %qr, %c1, %pos, %qs, %bt {layer = 1 : i64, scale = 0.3125 : f64}
      : tensor<?x2x16xf32>, tensor<?x2x4xf32>, !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = bf16>,
        tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x2x16xf32>
  %o = tensor.collapse_shape %u [[0], [1, 2]] : tensor<?x2x16xf32> into tensor<?x32xf32>
  %g = ds.gather_rows %o, %rows : tensor<?x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
  %h = ds.weight "head" : tensor<64x32xf32>
  %logits = ds.linear %g, %h : tensor<?x32xf32>, tensor<64x32xf32> -> tensor<?x64xf32>
  return %logits, %c1 : tensor<?x64xf32>, !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = bf16>
}
