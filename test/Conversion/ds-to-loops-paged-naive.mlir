// RUN: ds-opt --convert-ds-to-loops="attention-chunk=3" %s | FileCheck %s
// RUN: ds-opt --convert-ds-to-loops="attention-chunk=3 head-matmul-calls=true" %s | FileCheck %s --check-prefix=CALLS

// Tests that the per-sequence MLA form of a ragged step lowers to a run-time
// branch: the absorbed kernel gives the sequences with 16 or more new tokens
// no rows to attend (they are left to the naive driver), and the naive
// driver copies the absorbed rows, then for each sequence with 16 or more
// new tokens reports it (dsrt_trace_naive_segment), walks its context in
// chunks of whole pages (attention-chunk 3 rounds up to one 64-row page):
// gathers the chunk's rows through the block table (bf16 decoded to f32),
// expands them through kv_b_proj with one runtime GEMM, and extends each
// (token, head)'s online softmax over them; it divides by the sums last.

// CHECK-LABEL: func.func @step
// CHECK-SAME: (%[[CTX:.+]]: !llvm.ptr, %[[TOK:.+]]: memref<?xi32>, %[[POS:.+]]: memref<?xi32>, %[[CACHE:.+]]: memref<2x?x64x20xbf16>, %[[QS:.+]]: memref<?xi32>, %[[CL:.+]]: memref<?xi32>, %[[BT:.+]]: memref<?x?xi32>, %[[ROWS:.+]]: memref<?xi32>, %[[OUT:.+]]: memref<?x64xf32>)
// CHECK: call @[[ATT:__ds_paged_latent_attention_[0-9a-f]+]](%{{.+}}, %{{.+}}, %[[CACHE]], %[[POS]], %[[QS]], %[[BT]], %{{.+}}, %{{.+}})
// CHECK: call @{{__ds_head_matmul[_a-z]*_[0-9a-f]+}}(%{{.+}}, %[[KVB:.+]], %[[OA:.+]]) :
// CHECK: %[[ON:.+]] = memref.alloc(%{{.+}}) : memref<?x2x8xf32>
// CHECK: call @[[NAIVE:__ds_paged_naive_attention_[0-9a-f]+]](%[[CTX]], %{{.+}}, %{{.+}}, %[[CACHE]], %[[POS]], %[[QS]], %[[BT]], %[[KVB]], %[[OA]], %[[ON]], %{{.+}})
// CHECK: return

// The absorbed kernel: a token of a long sequence attends over no row and
// its row is zero (1 / sum only where the sum is positive).
// CHECK: func.func private @[[ATT]]({{.+}}) attributes {ds.kernel = "paged_latent_attention"
// CHECK: scf.parallel
// CHECK: %[[ALONG:.+]] = arith.cmpi sge, %{{.+}}, %{{c16[_0-9]*}} : index
// CHECK: arith.select %[[ALONG]], %{{.+}}, %{{.+}} : index
// CHECK: math.exp
// CHECK: arith.cmpf ogt
// CHECK: arith.select

// The naive driver: out = the absorbed rows, then the long sequences.
// CHECK: func.func private @[[NAIVE]](%[[NCTX:.+]]: !llvm.ptr, {{.+}}) attributes {ds.kernel = "paged_naive_attention"
// CHECK: scf.parallel
// CHECK: %[[LAT:.+]] = memref.alloc() : memref<64x16xf32>
// CHECK: %[[KV:.+]] = memref.alloc() : memref<64x32xf32>
// CHECK: scf.for %[[SEQ:.+]] = %{{.+}} to %{{.+}} step
// CHECK: %[[LONG:.+]] = arith.cmpi sge, %{{.+}}, %{{c16[_0-9]*}} : index
// CHECK: scf.if %[[LONG]] {
// CHECK: func.call @dsrt_trace_naive_segment(%[[NCTX]], %{{.+}}, %{{.+}}) : (!llvm.ptr, i64, i64) -> ()
// CHECK: scf.for %[[C0:.+]] = %{{.+}} to %{{.+}} step %{{c64[_0-9]*}} {
// CHECK: func.call @[[GATHER:__ds_paged_naive_gather_[0-9a-f]+]](%{{.+}}, %{{.+}}, %{{.+}}, %[[SEQ]], %[[C0]], %{{.+}}, %[[LAT]], %{{.+}})
// CHECK: func.call @dsrt_linear_f32(%[[NCTX]], %{{.+}}, %{{.+}}, %{{.+}})
// CHECK: func.call @[[ATTEND:__ds_paged_naive_attend_[0-9a-f]+]](%{{.+}}, %{{.+}}, %{{.+}}, %[[KV]], {{.+}}, %[[C0]], %{{.+}})
// CHECK: memref.dealloc %[[LAT]]

// The gather: each row through the sequence's block table, decoded to f32.
// CHECK: func.func private @[[GATHER]](%[[GC:[^ ,:]+]]: memref<2x?x64x20xbf16>, %[[GL:[^ ,:]+]]: index, %[[GB:[^ ,:]+]]: memref<?x?xi32>, %[[GS:[^ ,:]+]]: index, {{.+}}) attributes {ds.kernel = "paged_naive_gather"
// CHECK: scf.parallel
// CHECK: %[[GE:.+]] = arith.divui %{{.+}}, %{{.+}} : index
// CHECK: memref.load %[[GB]][%[[GS]], %[[GE]]] : memref<?x?xi32>
// CHECK: memref.load %[[GC]][%[[GL]], %{{.+}}, %{{.+}}, %{{.+}}] : memref<2x?x64x20xbf16>
// CHECK: arith.extf %{{.+}} : bf16 to f32

// The attention over one chunk: online softmax rows <= each token's position.
// CHECK: func.func private @[[ATTEND]]({{.+}}) attributes {ds.kernel = "paged_naive_attend"
// CHECK: scf.parallel
// CHECK: arith.minui
// CHECK: scf.for
// CHECK: math.exp
// CHECK-NOT: {{= ds\.}}

// With head-matmul-calls (the CPU pipeline) the chunk's expansion is the
// exact GEMM and its attend step the runtime's dsrt_naive_attend_f32 over
// the sequence's tokens [t0, t0 + n) and the chunk's rows [c0, c0 + m): no
// generated attend kernel (the generated loop is the GPU's, above). The
// driver's buffers are the step's (planned with its activations): it
// allocates nothing.
// CALLS-LABEL: func.func @step
// CALLS: %[[SKV:.+]] = memref.alloc() : memref<64x32xf32>
// CALLS: call @[[NAIVE:__ds_paged_naive_attention_[0-9a-f]+]]({{.+}}, %[[SKV]], %{{.+}}, %{{.+}})
// CALLS: func.func private @[[NAIVE]](%[[NCTX:[^:]+]]: !llvm.ptr, {{.+}}, %[[KV:[^:]+]]: memref<64x32xf32>, {{.+}}) attributes {ds.kernel = "paged_naive_attention"
// CALLS-NOT: memref.alloc
// CALLS: scf.if
// CALLS: scf.for %[[C0:.+]] = %{{.+}} to %{{.+}} step %{{c64[_0-9]*}} {
// CALLS: func.call @{{__ds_paged_naive_gather_[0-9a-f]+}}(
// CALLS: func.call @dsrt_linear_exact_f32(%[[NCTX]], %{{.+}}, %{{.+}}, %{{.+}})
// CALLS: %[[KVA:.+]] = memref.cast %[[KV]] : memref<64x32xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
// CALLS: %[[ROW0:.+]] = arith.index_cast %[[C0]] : index to i64
// CALLS: %[[SCALE:.+]] = arith.constant 3.125000e-01 : f32
// CALLS: func.call @dsrt_naive_attend_f32(%[[NCTX]], %{{.+}}, %{{.+}}, %{{.+}}, %[[KVA]], {{.+}}, %[[ROW0]], %{{.+}}, %[[SCALE]])
// CALLS-NOT: paged_naive_attend"
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
  %wq = ds.weight "wq" : tensor<16x32xf32>
  %q = ds.linear %x, %wq : tensor<?x32xf32>, tensor<16x32xf32> -> tensor<?x16xf32>
  %qn = tensor.expand_shape %q [[0], [1, 2]] output_shape [%n, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  %kvb = ds.weight "kvb" : tensor<32x16xf32>
  %ql = ds.head_matmul %qn, %kvb {group = 16 : i64, offset = 0 : i64, rows = 8 : i64}
      : tensor<?x2x8xf32>, tensor<32x16xf32> -> tensor<?x2x16xf32>
  %wr = ds.weight "wr" : tensor<8x32xf32>
  %r = ds.linear %x, %wr : tensor<?x32xf32>, tensor<8x32xf32> -> tensor<?x8xf32>
  %qr = tensor.expand_shape %r [[0], [1, 2]] output_shape [%n, 2, 4] : tensor<?x8xf32> into tensor<?x2x4xf32>
  %u = ds.paged_latent_attention %ql, %qr, %c1, %pos, %qs, %bt {layer = 1 : i64, scale = 0.3125 : f64, naive_min_tokens = 16 : i64}
      : tensor<?x2x16xf32>, tensor<?x2x4xf32>, !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = bf16>,
        tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x2x16xf32>
  %oa = ds.head_matmul %u, %kvb {group = 16 : i64, offset = 8 : i64, rows = 8 : i64, transpose}
      : tensor<?x2x16xf32>, tensor<32x16xf32> -> tensor<?x2x8xf32>
  %on = ds.paged_naive_attention %qn, %qr, %c1, %pos, %qs, %bt, %kvb, %oa
      {layer = 1 : i64, scale = 0.3125 : f64, naive_min_tokens = 16 : i64}
      : tensor<?x2x8xf32>, tensor<?x2x4xf32>, !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = bf16>,
        tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>, tensor<32x16xf32> -> tensor<?x2x8xf32>
  %o = tensor.collapse_shape %on [[0], [1, 2]] : tensor<?x2x8xf32> into tensor<?x16xf32>
  %g = ds.gather_rows %o, %rows : tensor<?x16xf32>, tensor<?xi32> -> tensor<?x16xf32>
  %h = ds.weight "head" : tensor<64x16xf32>
  %logits = ds.linear %g, %h : tensor<?x16xf32>, tensor<64x16xf32> -> tensor<?x64xf32>
  return %logits, %c1 : tensor<?x64xf32>, !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = bf16>
}
