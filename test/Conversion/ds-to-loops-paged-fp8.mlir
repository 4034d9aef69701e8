// RUN: ds-opt --convert-ds-to-loops %s | FileCheck %s
// RUN: ds-opt --convert-ds-to-loops=cache-decode-calls=1 %s | FileCheck %s --check-prefix=DECODE

// Tests that a paged FP8 latent cache (rows in !ds.latent_cache's FP8
// layout: 2 x 128 e4m3 + 2 f32 scales + 8 bf16 rope = 280 bytes) becomes
// memref<layers x ? x 64 x 280 x i8>, that the paged cache write finds a
// token's page through its block table and quantises each group of 128 by
// amax / 448 into e4m3 bytes, and that paged attention decodes each byte
// through the e4m3 value table times its group's scale.

// CHECK: memref.global "private" constant @__ds_e4m3_values : memref<256xf32>
// CHECK-LABEL: func.func @step
// CHECK-SAME: %[[CACHE:[^ :]+]]: memref<2x?x64x280xi8>
// CHECK: call @[[WRITE:__ds_paged_cache_write_[0-9a-f]+]](%[[CACHE]],
// CHECK: call @[[ATTN:__ds_paged_latent_attention_[0-9a-f]+]]({{.*}}%[[CACHE]],
// CHECK: func.func private @[[WRITE]](%[[WC:.+]]: memref<2x?x64x280xi8>, %{{.+}}: memref<?x256xf32>, %{{.+}}: memref<?x8xf32>, %{{.+}}: memref<?xi32>, %{{.+}}: memref<?xi32>, %[[WB:.+]]: memref<?x?xi32>, %[[WL:.+]]: index)
// CHECK: %[[PG:.+]] = memref.load %[[WB]][%{{.+}}, %{{.+}}] : memref<?x?xi32>
// CHECK: %[[PAGE:.+]] = arith.index_cast %[[PG]] : i32 to index
// CHECK: %[[SLOT:.+]] = arith.remui
// CHECK: math.absf
// CHECK: arith.maximumf
// CHECK: %[[SCALE:.+]] = arith.divf %{{.+}}, %cst{{.*}} : f32
// CHECK: vector.broadcast %[[SCALE]] : f32 to vector<1xf32>
// CHECK: vector.store %{{.+}}, %[[WC]][%[[WL]], %[[PAGE]], %[[SLOT]], %{{.+}}] {alignment = 4 : i64} : memref<2x?x64x280xi8>, vector<4xi8>
// CHECK: arith.divf %{{.+}}, %[[SCALE]] : f32
// CHECK: arith.trunci %{{.+}} : i32 to i8
// CHECK: memref.store %{{.+}}, %[[WC]][%[[WL]], %[[PAGE]], %[[SLOT]], %{{.+}}] : memref<2x?x64x280xi8>
// CHECK: arith.cmpf uno
// CHECK: func.func private @[[ATTN]](%{{[^:]+}}: memref<?x2x256xf32>, %{{[^:]+}}: memref<?x2x8xf32>, %[[AC:[^:]+]]: memref<2x?x64x280xi8>,
// CHECK: memref.load %[[AC]][%{{.+}}, %{{.+}}, %{{.+}}, %{{.+}}] : memref<2x?x64x280xi8>
// CHECK: %[[IDX:.+]] = arith.index_castui %{{.+}} : i8 to index
// CHECK: %[[TABLE:.+]] = memref.get_global @__ds_e4m3_values
// CHECK: memref.load %[[TABLE]][%[[IDX]]]
// With cache-decode-calls (the CPU pipeline), attention decodes each row
// once into 256 f32 on the stack through the runtime: the row's codes at
// its first byte, its scales at byte 256; its dot products and its value
// then read f32, the rope its two bytes per value as before.
// DECODE: func.func private @dsrt_cache_decode_fp8(!llvm.ptr, !llvm.ptr, i64, i64, !llvm.ptr)
// DECODE: func.func private @{{__ds_paged_latent_attention_[0-9a-f]+}}(%{{[^:]+}}: memref<?x2x256xf32>, %{{[^:]+}}: memref<?x2x8xf32>, %[[AC:[^:]+]]: memref<2x?x64x280xi8>,
// DECODE: scf.parallel
// DECODE: memref.alloca_scope
// DECODE: %[[SCRATCH:.+]] = memref.alloca() {alignment = 64 : i64} : memref<256xf32>
// DECODE: scf.for
// DECODE: %[[BASE:.+]], %[[OFF:.+]], %{{.+}}:4, %[[STRIDES:.+]]:4 = memref.extract_strided_metadata %[[AC]]
// DECODE: %[[CODES:.+]] = llvm.inttoptr %{{.+}} : i64 to !llvm.ptr
// DECODE: arith.constant 256 : index
// DECODE: %[[SCALES:.+]] = llvm.inttoptr %{{.+}} : i64 to !llvm.ptr
// DECODE: memref.extract_aligned_pointer_as_index %[[SCRATCH]]
// DECODE: %[[DST:.+]] = llvm.inttoptr %{{.+}} : i64 to !llvm.ptr
// DECODE: call @dsrt_cache_decode_fp8(%[[CODES]], %[[SCALES]], %{{.+}}, %{{.+}}, %[[DST]])
// DECODE-NOT: __ds_e4m3_values
// DECODE: memref.load %[[SCRATCH]]
// DECODE: arith.shli %{{.+}}, %c16_i32 : i32
// DECODE: math.exp
// DECODE: memref.load %[[SCRATCH]]
func.func @step(%tok: tensor<?xi32>, %pos: tensor<?xi32>, %c: !ds.paged_latent_cache<num_layers = 2, width = 264, element_type = f8E4M3FN, rope_width = 8, scale_group = 128>,
                %qs: tensor<?xi32>, %cl: tensor<?xi32>, %bt: tensor<?x?xi32>, %rows: tensor<?xi32>)
    -> (tensor<?x64xf32>, !ds.paged_latent_cache<num_layers = 2, width = 264, element_type = f8E4M3FN, rope_width = 8, scale_group = 128>) {
  %e = ds.weight "embed" : tensor<64x32xf32>
  %x = ds.embedding %e, %tok : tensor<64x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
  %wl = ds.weight "wl" : tensor<256x32xf32>
  %lat = ds.linear %x, %wl : tensor<?x32xf32>, tensor<256x32xf32> -> tensor<?x256xf32>
  %wk = ds.weight "wk" : tensor<8x32xf32>
  %kpe = ds.linear %x, %wk : tensor<?x32xf32>, tensor<8x32xf32> -> tensor<?x8xf32>
  %c1 = ds.paged_cache_write %c, %lat, %kpe, %pos, %qs, %bt {layer = 1 : i64}
      : !ds.paged_latent_cache<num_layers = 2, width = 264, element_type = f8E4M3FN, rope_width = 8, scale_group = 128>, tensor<?x256xf32>, tensor<?x8xf32>,
        tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>
  %zero = arith.constant 0 : index
  %n = tensor.dim %x, %zero : tensor<?x32xf32>
  %wq = ds.weight "wq" : tensor<512x32xf32>
  %q = ds.linear %x, %wq : tensor<?x32xf32>, tensor<512x32xf32> -> tensor<?x512xf32>
  %ql = tensor.expand_shape %q [[0], [1, 2]] output_shape [%n, 2, 256] : tensor<?x512xf32> into tensor<?x2x256xf32>
  %wr = ds.weight "wr" : tensor<16x32xf32>
  %r = ds.linear %x, %wr : tensor<?x32xf32>, tensor<16x32xf32> -> tensor<?x16xf32>
  %qr = tensor.expand_shape %r [[0], [1, 2]] output_shape [%n, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  %u = ds.paged_latent_attention %ql, %qr, %c1, %pos, %qs, %bt {layer = 1 : i64, scale = 0.3125 : f64}
      : tensor<?x2x256xf32>, tensor<?x2x8xf32>, !ds.paged_latent_cache<num_layers = 2, width = 264, element_type = f8E4M3FN, rope_width = 8, scale_group = 128>,
        tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x2x256xf32>
  %o = tensor.collapse_shape %u [[0], [1, 2]] : tensor<?x2x256xf32> into tensor<?x512xf32>
  %g = ds.gather_rows %o, %rows : tensor<?x512xf32>, tensor<?xi32> -> tensor<?x512xf32>
  %h = ds.weight "head" : tensor<64x512xf32>
  %logits = ds.linear %g, %h : tensor<?x512xf32>, tensor<64x512xf32> -> tensor<?x64xf32>
  return %logits, %c1 : tensor<?x64xf32>, !ds.paged_latent_cache<num_layers = 2, width = 264, element_type = f8E4M3FN, rope_width = 8, scale_group = 128>
}
