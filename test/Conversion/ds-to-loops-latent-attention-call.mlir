// RUN: ds-opt --split-input-file --convert-ds-to-loops="latent-attention-calls=1" %s | FileCheck %s
// RUN: ds-opt --split-input-file --convert-ds-to-loops %s | FileCheck %s --check-prefix=NEST

// Tests latent-attention-calls: ds.latent_attention over the contiguous f32
// cache becomes one call of the runtime's blocked kernel
// (dsrt_latent_attention_f32) with the entry's context, the queries, the
// cache, the positions, the output, the layer and the scale; no loop nest
// and no exp is generated for it. Without the option the online-softmax
// nest is generated.
// CHECK-LABEL: func.func private @{{__ds_latent_attention_call_[0-9a-f]+}}
// CHECK-SAME: %[[CTX:[^:]+]]: !llvm.ptr, %[[QL:[^:]+]]: memref<?x4x256xf32>, %[[QR:[^:]+]]: memref<?x4x8xf32>, %[[CACHE:[^:]+]]: memref<2x?x264xf32>, %[[POS:[^:]+]]: memref<?xi32>, %[[OUT:[^:]+]]: memref<?x4x256xf32>, %[[LAYER:[^:]+]]: index
// CHECK-NOT: scf.parallel
// CHECK-NOT: math.exp
// CHECK: %[[L:.+]] = arith.index_cast %[[LAYER]] : index to i64
// CHECK: call @dsrt_latent_attention_f32(%[[CTX]], %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %[[L]], %{{.+}}) : (!llvm.ptr, memref<?x?x?xf32, strided<[?, ?, ?], offset: ?>>, memref<?x?x?xf32, strided<[?, ?, ?], offset: ?>>, memref<?x?x?xf32, strided<[?, ?, ?], offset: ?>>, memref<?xi32, strided<[?], offset: ?>>, memref<?x?x?xf32, strided<[?, ?, ?], offset: ?>>, i64, f32) -> ()
// CHECK-NEXT: return
// NEST-LABEL: func.func private @{{__ds_latent_attention_[0-9a-f]+}}(
// NEST: scf.parallel
// NEST: math.exp
// NEST-NOT: dsrt_latent_attention_f32
func.func @prefill(%tok: tensor<?xi32>, %pos: tensor<?xi32>,
                   %c: !ds.latent_cache<num_layers = 2, width = 264, element_type = f32>)
    -> (tensor<?x1024xf32>, !ds.latent_cache<num_layers = 2, width = 264, element_type = f32>) {
  %t = ds.weight "latent" : tensor<64x256xf32>
  %lat = ds.embedding %t, %tok : tensor<64x256xf32>, tensor<?xi32> -> tensor<?x256xf32>
  %r = ds.weight "rope" : tensor<64x8xf32>
  %kr = ds.embedding %r, %tok : tensor<64x8xf32>, tensor<?xi32> -> tensor<?x8xf32>
  %c1 = ds.cache_write %c, %lat, %kr, %pos {layer = 1 : i64}
      : !ds.latent_cache<num_layers = 2, width = 264, element_type = f32>, tensor<?x256xf32>, tensor<?x8xf32>, tensor<?xi32>
  %qt = ds.weight "q" : tensor<64x1024xf32>
  %q = ds.embedding %qt, %tok : tensor<64x1024xf32>, tensor<?xi32> -> tensor<?x1024xf32>
  %rt = ds.weight "qr" : tensor<64x32xf32>
  %qr2 = ds.embedding %rt, %tok : tensor<64x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
  %zero = arith.constant 0 : index
  %n = tensor.dim %q, %zero : tensor<?x1024xf32>
  %ql = tensor.expand_shape %q [[0], [1, 2]] output_shape [%n, 4, 256] : tensor<?x1024xf32> into tensor<?x4x256xf32>
  %qr = tensor.expand_shape %qr2 [[0], [1, 2]] output_shape [%n, 4, 8] : tensor<?x32xf32> into tensor<?x4x8xf32>
  %u = ds.latent_attention %ql, %qr, %c1, %pos {layer = 1 : i64, scale = 0.25 : f64}
      : tensor<?x4x256xf32>, tensor<?x4x8xf32>, !ds.latent_cache<num_layers = 2, width = 264, element_type = f32>, tensor<?xi32> -> tensor<?x4x256xf32>
  %o = tensor.collapse_shape %u [[0], [1, 2]] : tensor<?x4x256xf32> into tensor<?x1024xf32>
  return %o, %c1 : tensor<?x1024xf32>, !ds.latent_cache<num_layers = 2, width = 264, element_type = f32>
}

// -----

// A bf16 cache: the runtime's bf16 entry (it widens each block's rows once
// for every head), the cache passed as its bf16 memref.
// CHECK-LABEL: func.func private @{{__ds_latent_attention_call_[0-9a-f]+}}
// CHECK-SAME: memref<2x?x264xbf16>
// CHECK-NOT: scf.parallel
// CHECK: call @dsrt_latent_attention_bf16(%{{.+}}) : (!llvm.ptr, memref<?x?x?xf32, strided<[?, ?, ?], offset: ?>>, memref<?x?x?xf32, strided<[?, ?, ?], offset: ?>>, memref<?x?x?xbf16, strided<[?, ?, ?], offset: ?>>, memref<?xi32, strided<[?], offset: ?>>, memref<?x?x?xf32, strided<[?, ?, ?], offset: ?>>, i64, f32) -> ()
// CHECK-NEXT: return
func.func @prefill(%tok: tensor<?xi32>, %pos: tensor<?xi32>,
                   %c: !ds.latent_cache<num_layers = 2, width = 264, element_type = bf16>)
    -> (tensor<?x1024xf32>, !ds.latent_cache<num_layers = 2, width = 264, element_type = bf16>) {
  %t = ds.weight "latent" : tensor<64x256xf32>
  %lat = ds.embedding %t, %tok : tensor<64x256xf32>, tensor<?xi32> -> tensor<?x256xf32>
  %r = ds.weight "rope" : tensor<64x8xf32>
  %kr = ds.embedding %r, %tok : tensor<64x8xf32>, tensor<?xi32> -> tensor<?x8xf32>
  %c1 = ds.cache_write %c, %lat, %kr, %pos {layer = 1 : i64}
      : !ds.latent_cache<num_layers = 2, width = 264, element_type = bf16>, tensor<?x256xf32>, tensor<?x8xf32>, tensor<?xi32>
  %qt = ds.weight "q" : tensor<64x1024xf32>
  %q = ds.embedding %qt, %tok : tensor<64x1024xf32>, tensor<?xi32> -> tensor<?x1024xf32>
  %rt = ds.weight "qr" : tensor<64x32xf32>
  %qr2 = ds.embedding %rt, %tok : tensor<64x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
  %zero = arith.constant 0 : index
  %n = tensor.dim %q, %zero : tensor<?x1024xf32>
  %ql = tensor.expand_shape %q [[0], [1, 2]] output_shape [%n, 4, 256] : tensor<?x1024xf32> into tensor<?x4x256xf32>
  %qr = tensor.expand_shape %qr2 [[0], [1, 2]] output_shape [%n, 4, 8] : tensor<?x32xf32> into tensor<?x4x8xf32>
  %u = ds.latent_attention %ql, %qr, %c1, %pos {layer = 1 : i64, scale = 0.25 : f64}
      : tensor<?x4x256xf32>, tensor<?x4x8xf32>, !ds.latent_cache<num_layers = 2, width = 264, element_type = bf16>, tensor<?xi32> -> tensor<?x4x256xf32>
  %o = tensor.collapse_shape %u [[0], [1, 2]] : tensor<?x4x256xf32> into tensor<?x1024xf32>
  return %o, %c1 : tensor<?x1024xf32>, !ds.latent_cache<num_layers = 2, width = 264, element_type = bf16>
}

// -----

// The paged cache of a ragged step (f32): one call of
// dsrt_paged_latent_attention_f32 with the query starts and block tables,
// then the layer, the page size and naive_min_tokens as i64.
// CHECK-LABEL: func.func private @{{__ds_paged_latent_attention_call_[0-9a-f]+}}
// CHECK-SAME: %[[PCTX:[^:]+]]: !llvm.ptr, %{{[^:]+}}: memref<?x2x16xf32>, %{{[^:]+}}: memref<?x2x4xf32>, %{{[^:]+}}: memref<2x?x64x20xf32>, %{{[^:]+}}: memref<?xi32>, %{{[^:]+}}: memref<?xi32>, %{{[^:]+}}: memref<?x?xi32>, %{{[^:]+}}: memref<?x2x16xf32>, %[[PLAYER:[^:]+]]: index
// CHECK-NOT: scf.parallel
// CHECK: %[[PL:.+]] = arith.index_cast %[[PLAYER]] : index to i64
// CHECK: %[[PAGE:.+]] = arith.index_cast %c64 : index to i64
// CHECK: %[[MIN:.+]] = arith.index_cast %c17 : index to i64
// CHECK: call @dsrt_paged_latent_attention_f32(%[[PCTX]], %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}, %[[PL]], %[[PAGE]], %[[MIN]], %{{.+}}) : (!llvm.ptr, memref<?x?x?xf32, strided<[?, ?, ?], offset: ?>>, memref<?x?x?xf32, strided<[?, ?, ?], offset: ?>>, memref<?x?x?x?xf32, strided<[?, ?, ?, ?], offset: ?>>, memref<?xi32, strided<[?], offset: ?>>, memref<?xi32, strided<[?], offset: ?>>, memref<?x?xi32, strided<[?, ?], offset: ?>>, memref<?x?x?xf32, strided<[?, ?, ?], offset: ?>>, i64, i64, i64, f32) -> ()
// CHECK-NEXT: return
func.func @step(%tok: tensor<?xi32>, %pos: tensor<?xi32>,
                %c: !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = f32>,
                %qs: tensor<?xi32>, %bt: tensor<?x?xi32>)
    -> (tensor<?x32xf32>, !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = f32>) {
  %e = ds.weight "embed" : tensor<64x32xf32>
  %x = ds.embedding %e, %tok : tensor<64x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
  %wl = ds.weight "wl" : tensor<16x32xf32>
  %lat = ds.linear %x, %wl : tensor<?x32xf32>, tensor<16x32xf32> -> tensor<?x16xf32>
  %wk = ds.weight "wk" : tensor<4x32xf32>
  %kpe = ds.linear %x, %wk : tensor<?x32xf32>, tensor<4x32xf32> -> tensor<?x4xf32>
  %c1 = ds.paged_cache_write %c, %lat, %kpe, %pos, %qs, %bt {layer = 1 : i64}
      : !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = f32>, tensor<?x16xf32>, tensor<?x4xf32>,
        tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>
  %zero = arith.constant 0 : index
  %n = tensor.dim %x, %zero : tensor<?x32xf32>
  %wq = ds.weight "wq" : tensor<32x32xf32>
  %q = ds.linear %x, %wq : tensor<?x32xf32>, tensor<32x32xf32> -> tensor<?x32xf32>
  %ql = tensor.expand_shape %q [[0], [1, 2]] output_shape [%n, 2, 16] : tensor<?x32xf32> into tensor<?x2x16xf32>
  %wr = ds.weight "wr" : tensor<8x32xf32>
  %r = ds.linear %x, %wr : tensor<?x32xf32>, tensor<8x32xf32> -> tensor<?x8xf32>
  %qr = tensor.expand_shape %r [[0], [1, 2]] output_shape [%n, 2, 4] : tensor<?x8xf32> into tensor<?x2x4xf32>
  %u = ds.paged_latent_attention %ql, %qr, %c1, %pos, %qs, %bt {layer = 1 : i64, scale = 0.3125 : f64, naive_min_tokens = 17 : i64}
      : tensor<?x2x16xf32>, tensor<?x2x4xf32>, !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = f32>,
        tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x2x16xf32>
  %o = tensor.collapse_shape %u [[0], [1, 2]] : tensor<?x2x16xf32> into tensor<?x32xf32>
  return %o, %c1 : tensor<?x32xf32>, !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = f32>
}

// -----

// The paged FP8 cache (FlashMLA's layout: 256 e4m3 bytes, 2 f32 scales, 8
// bf16 rope values = 280 bytes a row): dsrt_paged_latent_attention_fp8 with
// the cache's bytes and the scale group after naive_min_tokens.
// CHECK-LABEL: func.func private @{{__ds_paged_latent_attention_call_[0-9a-f]+}}
// CHECK-SAME: memref<2x?x64x280xi8>
// CHECK-NOT: scf.parallel
// CHECK-NOT: dsrt_cache_decode_fp8
// CHECK: %[[G:.+]] = arith.index_cast %c128 : index to i64
// CHECK: call @dsrt_paged_latent_attention_fp8(%{{.+}}, %[[G]], %{{.+}}) : (!llvm.ptr, memref<?x?x?xf32, strided<[?, ?, ?], offset: ?>>, memref<?x?x?xf32, strided<[?, ?, ?], offset: ?>>, memref<?x?x?x?xi8, strided<[?, ?, ?, ?], offset: ?>>, memref<?xi32, strided<[?], offset: ?>>, memref<?xi32, strided<[?], offset: ?>>, memref<?x?xi32, strided<[?, ?], offset: ?>>, memref<?x?x?xf32, strided<[?, ?, ?], offset: ?>>, i64, i64, i64, i64, f32) -> ()
// CHECK-NEXT: return
// NEST-LABEL: func.func private @{{__ds_paged_latent_attention_[0-9a-f]+}}(
// NEST: scf.parallel
// NEST-NOT: dsrt_paged_latent_attention_fp8
func.func @step(%tok: tensor<?xi32>, %pos: tensor<?xi32>,
                %c: !ds.paged_latent_cache<num_layers = 2, width = 264, element_type = f8E4M3FN, rope_width = 8, scale_group = 128>,
                %qs: tensor<?xi32>, %bt: tensor<?x?xi32>)
    -> (tensor<?x1024xf32>, !ds.paged_latent_cache<num_layers = 2, width = 264, element_type = f8E4M3FN, rope_width = 8, scale_group = 128>) {
  %t = ds.weight "latent" : tensor<64x256xf32>
  %lat = ds.embedding %t, %tok : tensor<64x256xf32>, tensor<?xi32> -> tensor<?x256xf32>
  %r = ds.weight "rope" : tensor<64x8xf32>
  %kr = ds.embedding %r, %tok : tensor<64x8xf32>, tensor<?xi32> -> tensor<?x8xf32>
  %c1 = ds.paged_cache_write %c, %lat, %kr, %pos, %qs, %bt {layer = 1 : i64}
      : !ds.paged_latent_cache<num_layers = 2, width = 264, element_type = f8E4M3FN, rope_width = 8, scale_group = 128>,
        tensor<?x256xf32>, tensor<?x8xf32>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>
  %qt = ds.weight "q" : tensor<64x1024xf32>
  %q = ds.embedding %qt, %tok : tensor<64x1024xf32>, tensor<?xi32> -> tensor<?x1024xf32>
  %rt = ds.weight "qr" : tensor<64x32xf32>
  %qr2 = ds.embedding %rt, %tok : tensor<64x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
  %zero = arith.constant 0 : index
  %n = tensor.dim %q, %zero : tensor<?x1024xf32>
  %ql = tensor.expand_shape %q [[0], [1, 2]] output_shape [%n, 4, 256] : tensor<?x1024xf32> into tensor<?x4x256xf32>
  %qr = tensor.expand_shape %qr2 [[0], [1, 2]] output_shape [%n, 4, 8] : tensor<?x32xf32> into tensor<?x4x8xf32>
  %u = ds.paged_latent_attention %ql, %qr, %c1, %pos, %qs, %bt {layer = 1 : i64, scale = 0.25 : f64}
      : tensor<?x4x256xf32>, tensor<?x4x8xf32>, !ds.paged_latent_cache<num_layers = 2, width = 264, element_type = f8E4M3FN, rope_width = 8, scale_group = 128>,
        tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x4x256xf32>
  %o = tensor.collapse_shape %u [[0], [1, 2]] : tensor<?x4x256xf32> into tensor<?x1024xf32>
  return %o, %c1 : tensor<?x1024xf32>, !ds.paged_latent_cache<num_layers = 2, width = 264, element_type = f8E4M3FN, rope_width = 8, scale_group = 128>
}
