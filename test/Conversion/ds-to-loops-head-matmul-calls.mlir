// RUN: ds-opt --split-input-file --convert-ds-to-loops="head-matmul-calls=true attention-chunk=3" %s | FileCheck %s

// Tests that with head-matmul-calls (the CPU pipeline) both per-head
// products with kv_b_proj (q_nope through W_UK, u through W_UV) are runtime
// calls (dsrt_head_matmul_f32: group, offset, transpose), no generated
// kernel reads the weight, and its binding is marked gemm_only: the
// runtime keeps it in its stored format (bf16, FP8) instead of an f32 copy.

// CHECK: ds.bindings = [{{.*}}{dequantize = false, gemm_only = true, index = 1 : i64, members = ["kvb"], shape = array<i64: 32, 16>}]
// CHECK: func.func private @dsrt_head_matmul_f32(!llvm.ptr, memref<?x?x?xf32>, memref<?x?xf32>, memref<?x?x?xf32>, i64, i64, i64) attributes {llvm.emit_c_interface}
// CHECK-LABEL: func.func @decode
// CHECK-SAME: (%[[CTX:[^:]+]]: !llvm.ptr
// CHECK: %[[KVB:.+]] = call @dsrt_weight_f32_r2(%[[CTX]], %{{.+}}) : (!llvm.ptr, i64) -> memref<?x?xf32>
// CHECK: %[[G1:.+]] = arith.constant 16 : i64
// CHECK: %[[OFF1:.+]] = arith.constant 0 : i64
// CHECK: %[[T1:.+]] = arith.constant 0 : i64
// CHECK: call @dsrt_head_matmul_f32(%[[CTX]], %{{.+}}, %{{.+}}, %{{.+}}, %[[G1]], %[[OFF1]], %[[T1]])
// CHECK: %[[OFF2:.+]] = arith.constant 8 : i64
// CHECK: %[[T2:.+]] = arith.constant 1 : i64
// CHECK: call @dsrt_head_matmul_f32(%[[CTX]], %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %[[OFF2]], %[[T2]])
// CHECK-NOT: ds.kernel = "head_matmul
func.func @decode(%tok: tensor<?xi32>, %pos: tensor<?xi32>,
                  %c: !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>)
    -> (tensor<?x16xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>) {
  %qt = ds.weight "q" : tensor<64x16xf32>
  %q = ds.embedding %qt, %tok : tensor<64x16xf32>, tensor<?xi32> -> tensor<?x16xf32>
  %zero = arith.constant 0 : index
  %n = tensor.dim %q, %zero : tensor<?x16xf32>
  %qn = tensor.expand_shape %q [[0], [1, 2]] output_shape [%n, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  %kvb = ds.weight "kvb" : tensor<32x16xf32>
  %ql = ds.head_matmul %qn, %kvb {group = 16 : i64, offset = 0 : i64, rows = 8 : i64}
      : tensor<?x2x8xf32>, tensor<32x16xf32> -> tensor<?x2x16xf32>
  %o = ds.head_matmul %ql, %kvb {group = 16 : i64, offset = 8 : i64, rows = 8 : i64, transpose}
      : tensor<?x2x16xf32>, tensor<32x16xf32> -> tensor<?x2x8xf32>
  %r = tensor.collapse_shape %o [[0], [1, 2]] : tensor<?x2x8xf32> into tensor<?x16xf32>
  return %r, %c : tensor<?x16xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>
}

// -----

// Tests that with head-matmul-calls the naive form is a host driver over
// the context in chunks of attention-chunk rows: a gather kernel decodes the
// chunk's latents [3, 16] and rope keys [3, 4], the runtime's exact GEMM
// (dsrt_linear_exact_f32, f32 activations whatever kv_b_proj's format)
// expands them into every head's [k_nope | v] [3, 2 x (8 + 8)], and the
// runtime's attend step (dsrt_naive_attend_f32: queries, positions, the
// chunk's keys/values and rope keys, the running max / sum [T, 2], out;
// first token, tokens, first row, rows; the scale) extends each (token,
// head)'s online softmax, no generated attend kernel; kv_b_proj, handed to
// the driver and on to the GEMM only, is gemm_only. The driver's buffers
// are the entry point's (ds-plan-activations places them): it allocates
// nothing.

// CHECK: ds.bindings = [{{.*}}{dequantize = false, gemm_only = true, index = 1 : i64, members = ["kvb"], shape = array<i64: 32, 16>}]
// CHECK: func.func private @dsrt_linear_exact_f32(!llvm.ptr, memref<?x?xf32>, memref<?x?xf32>, memref<?x?xf32>) attributes {llvm.emit_c_interface}
// CHECK-LABEL: func.func @prefill
// CHECK-SAME: (%[[CTX:[^:]+]]: !llvm.ptr
// CHECK: call @__ds_embedding_
// CHECK: %[[KVB:.+]] = call @dsrt_weight_f32_r2(%[[CTX]], %{{.+}})
// CHECK: %[[KVBC:.+]] = memref.cast %[[KVB]] : memref<?x?xf32> to memref<32x16xf32>
// CHECK: %[[SLAT:.+]] = memref.alloc() : memref<3x16xf32>
// CHECK: %[[SROPE:.+]] = memref.alloc() : memref<3x4xf32>
// CHECK: %[[SKV:.+]] = memref.alloc() : memref<3x32xf32>
// CHECK: %[[SMAX:.+]] = memref.alloc(%{{.+}}) : memref<?x2xf32>
// CHECK: %[[SSUM:.+]] = memref.alloc(%{{.+}}) : memref<?x2xf32>
// CHECK: call @[[DRIVER:__ds_naive_attention_calls_[0-9a-f]+]](%[[CTX]], %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %[[KVBC]], %{{.+}}, %{{.+}}, %[[SLAT]], %[[SROPE]], %[[SKV]], %[[SMAX]], %[[SSUM]])
// CHECK: func.func private @[[DRIVER]](%[[DCTX:[^:]+]]: !llvm.ptr, {{.+}}, %[[DW:[^:]+]]: memref<32x16xf32>, {{.+}}, %[[LAT:[^:]+]]: memref<3x16xf32>, %[[ROPE:[^:]+]]: memref<3x4xf32>, %[[KV:[^:]+]]: memref<3x32xf32>, {{.+}}) attributes {ds.kernel = "naive_attention_calls"
// CHECK-NOT: memref.alloc
// CHECK: scf.for %[[C0:.+]] = %{{.+}} to %{{.+}} step %{{c3[_0-9]*}} {
// CHECK: func.call @[[GATHER:__ds_naive_gather_[0-9a-f]+]](%{{.+}}, %{{.+}}, %[[C0]], %{{.+}}, %[[LAT]], %[[ROPE]])
// CHECK: %[[XL:.+]] = memref.cast %[[LAT]]
// CHECK: %[[WL:.+]] = memref.cast %[[DW]]
// CHECK: %[[YL:.+]] = memref.cast %[[KV]]
// CHECK: func.call @dsrt_linear_exact_f32(%[[DCTX]], %[[XL]], %[[WL]], %[[YL]])
// CHECK: %[[KVA:.+]] = memref.cast %[[KV]] : memref<3x32xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
// CHECK: %[[ROPEA:.+]] = memref.cast %[[ROPE]] : memref<3x4xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
// CHECK: %[[MAXA:.+]] = memref.cast %{{.+}} : memref<?x2xf32> to memref<?x?xf32, strided<[?, ?], offset: ?>>
// CHECK: %[[ROW0:.+]] = arith.index_cast %[[C0]] : index to i64
// CHECK: %[[SCALE:.+]] = arith.constant 3.000000e-01 : f32
// CHECK: func.call @dsrt_naive_attend_f32(%[[DCTX]], %{{.+}}, %{{.+}}, %{{.+}}, %[[KVA]], %[[ROPEA]], %[[MAXA]], %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %[[ROW0]], %{{.+}}, %[[SCALE]]) : (!llvm.ptr, memref<?x?x?xf32, strided<[?, ?, ?], offset: ?>>, memref<?x?x?xf32, strided<[?, ?, ?], offset: ?>>, memref<?xi32, strided<[?], offset: ?>>, {{.+}}, i64, i64, i64, i64, f32) -> ()
// CHECK: func.func private @[[GATHER]]({{.+}}) attributes {ds.kernel = "naive_gather"
// CHECK: scf.parallel
// CHECK-NOT: naive_attend"
// CHECK-NOT: math.exp
func.func @prefill(%tok: tensor<?xi32>, %pos: tensor<?xi32>,
                   %c: !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>)
    -> (tensor<?x16xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>) {
  %e = ds.weight "embed" : tensor<64x24xf32>
  %x = ds.embedding %e, %tok : tensor<64x24xf32>, tensor<?xi32> -> tensor<?x24xf32>
  %zero = arith.constant 0 : index
  %n = tensor.dim %x, %zero : tensor<?x24xf32>
  %q = tensor.extract_slice %x[0, 0] [%n, 16] [1, 1] : tensor<?x24xf32> to tensor<?x16xf32>
  %r = tensor.extract_slice %x[0, 16] [%n, 8] [1, 1] : tensor<?x24xf32> to tensor<?x8xf32>
  %qn = tensor.expand_shape %q [[0], [1, 2]] output_shape [%n, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  %qr = tensor.expand_shape %r [[0], [1, 2]] output_shape [%n, 2, 4] : tensor<?x8xf32> into tensor<?x2x4xf32>
  %kvb = ds.weight "kvb" : tensor<32x16xf32>
  %o = ds.naive_attention %qn, %qr, %c, %pos, %kvb {layer = 0 : i64, scale = 0.3 : f64}
      : tensor<?x2x8xf32>, tensor<?x2x4xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>,
        tensor<?xi32>, tensor<32x16xf32> -> tensor<?x2x8xf32>
  %out = tensor.collapse_shape %o [[0], [1, 2]] : tensor<?x2x8xf32> into tensor<?x16xf32>
  return %out, %c : tensor<?x16xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>
}

// -----

// Tests that two layers' naive attention share one set of chunk buffers
// (the latents, rope keys and per-head K/V: 32 MiB a 256-row chunk at
// DeepSeek-V3's widths), each with its own running max and sum.

// CHECK-LABEL: func.func @two_layers
// CHECK: %[[LAT:.+]] = memref.alloc() : memref<3x16xf32>
// CHECK: %[[ROPE:.+]] = memref.alloc() : memref<3x4xf32>
// CHECK: %[[KV:.+]] = memref.alloc() : memref<3x32xf32>
// CHECK: %[[MAX0:.+]] = memref.alloc(%{{.+}}) : memref<?x2xf32>
// CHECK: call @[[DRIVER:__ds_naive_attention_calls_[0-9a-f]+]]({{.+}}, %[[LAT]], %[[ROPE]], %[[KV]], %[[MAX0]], %{{.+}})
// CHECK-NOT: memref.alloc() : memref<3x32xf32>
// CHECK: %[[MAX1:.+]] = memref.alloc(%{{.+}}) : memref<?x2xf32>
// CHECK: call @[[DRIVER]]({{.+}}, %[[LAT]], %[[ROPE]], %[[KV]], %[[MAX1]], %{{.+}})
func.func @two_layers(%tok: tensor<?xi32>, %pos: tensor<?xi32>,
                      %c: !ds.latent_cache<num_layers = 2, width = 20, element_type = f32>)
    -> (tensor<?x16xf32>, !ds.latent_cache<num_layers = 2, width = 20, element_type = f32>) {
  %e = ds.weight "embed" : tensor<64x24xf32>
  %x = ds.embedding %e, %tok : tensor<64x24xf32>, tensor<?xi32> -> tensor<?x24xf32>
  %zero = arith.constant 0 : index
  %n = tensor.dim %x, %zero : tensor<?x24xf32>
  %q = tensor.extract_slice %x[0, 0] [%n, 16] [1, 1] : tensor<?x24xf32> to tensor<?x16xf32>
  %r = tensor.extract_slice %x[0, 16] [%n, 8] [1, 1] : tensor<?x24xf32> to tensor<?x8xf32>
  %qn = tensor.expand_shape %q [[0], [1, 2]] output_shape [%n, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  %qr = tensor.expand_shape %r [[0], [1, 2]] output_shape [%n, 2, 4] : tensor<?x8xf32> into tensor<?x2x4xf32>
  %kvb0 = ds.weight "kvb0" : tensor<32x16xf32>
  %kvb1 = ds.weight "kvb1" : tensor<32x16xf32>
  %o0 = ds.naive_attention %qn, %qr, %c, %pos, %kvb0 {layer = 0 : i64, scale = 0.3 : f64}
      : tensor<?x2x8xf32>, tensor<?x2x4xf32>, !ds.latent_cache<num_layers = 2, width = 20, element_type = f32>,
        tensor<?xi32>, tensor<32x16xf32> -> tensor<?x2x8xf32>
  %o1 = ds.naive_attention %o0, %qr, %c, %pos, %kvb1 {layer = 1 : i64, scale = 0.3 : f64}
      : tensor<?x2x8xf32>, tensor<?x2x4xf32>, !ds.latent_cache<num_layers = 2, width = 20, element_type = f32>,
        tensor<?xi32>, tensor<32x16xf32> -> tensor<?x2x8xf32>
  %out = tensor.collapse_shape %o1 [[0], [1, 2]] : tensor<?x2x8xf32> into tensor<?x16xf32>
  return %out, %c : tensor<?x16xf32>, !ds.latent_cache<num_layers = 2, width = 20, element_type = f32>
}

// -----

// Tests that a head matmul that skips the naive sequences' rows
// (skip(query_start), naive_min_tokens) is one call to
// dsrt_head_matmul_skip_f32 with query_start and the threshold, which
// computes only the absorbed sequences' rows; kv_b_proj stays gemm_only.

// CHECK: ds.bindings = [{{.*}}{dequantize = false, gemm_only = true, index = 1 : i64, members = ["kvb"], shape = array<i64: 32, 16>}]
// CHECK: func.func private @dsrt_head_matmul_skip_f32(!llvm.ptr, memref<?x?x?xf32>, memref<?x?xf32>, memref<?x?x?xf32>, memref<?xi32>, i64, i64, i64, i64) attributes {llvm.emit_c_interface}
// CHECK-LABEL: func.func @step
// CHECK-SAME: (%[[CTX:[^:]+]]: !llvm.ptr
// CHECK: %[[QS:.+]] = memref.cast %{{.+}} : memref<?xi32> to memref<?xi32>
// CHECK: %[[MIN:.+]] = arith.constant 17 : i64
// CHECK: call @dsrt_head_matmul_skip_f32(%[[CTX]], %{{.+}}, %{{.+}}, %{{.+}}, %[[QS]], %{{.+}}, %{{.+}}, %{{.+}}, %[[MIN]])
// CHECK: call @dsrt_head_matmul_skip_f32(%[[CTX]], %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}})
// CHECK-NOT: call @dsrt_head_matmul_f32
// CHECK-NOT: ds.kernel = "head_matmul
func.func @step(%tok: tensor<?xi32>, %pos: tensor<?xi32>,
                %c: !ds.paged_latent_cache<num_layers = 1, width = 20, element_type = f32>,
                %qs: tensor<?xi32>, %cl: tensor<?xi32>, %bt: tensor<?x?xi32>, %rows: tensor<?xi32>)
    -> (tensor<?x16xf32>, !ds.paged_latent_cache<num_layers = 1, width = 20, element_type = f32>) {
  %qt = ds.weight "q" : tensor<64x16xf32>
  %q = ds.embedding %qt, %tok : tensor<64x16xf32>, tensor<?xi32> -> tensor<?x16xf32>
  %zero = arith.constant 0 : index
  %n = tensor.dim %q, %zero : tensor<?x16xf32>
  %qn = tensor.expand_shape %q [[0], [1, 2]] output_shape [%n, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  %kvb = ds.weight "kvb" : tensor<32x16xf32>
  %ql = ds.head_matmul %qn, %kvb skip(%qs : tensor<?xi32>) {group = 16 : i64, naive_min_tokens = 17 : i64, offset = 0 : i64, rows = 8 : i64}
      : tensor<?x2x8xf32>, tensor<32x16xf32> -> tensor<?x2x16xf32>
  %o = ds.head_matmul %ql, %kvb skip(%qs : tensor<?xi32>) {group = 16 : i64, naive_min_tokens = 17 : i64, offset = 8 : i64, rows = 8 : i64, transpose}
      : tensor<?x2x16xf32>, tensor<32x16xf32> -> tensor<?x2x8xf32>
  %r = tensor.collapse_shape %o [[0], [1, 2]] : tensor<?x2x8xf32> into tensor<?x16xf32>
  return %r, %c : tensor<?x16xf32>, !ds.paged_latent_cache<num_layers = 1, width = 20, element_type = f32>
}
