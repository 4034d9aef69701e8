// RUN: ds-opt --convert-ds-to-loops %s | FileCheck %s

// Tests that an FP8 latent cache (e4m3 latent in groups of 128 with an f32
// scale each, bf16 rope) becomes a byte buffer of its rows (2 x 128 + 2 x 4
// + 8 x 2 = 280 bytes), that the cache write quantises each group by its
// amax / 448 into e4m3 bytes (the scale one aligned 4-byte store), and that latent attention decodes the bytes
// (a table of the 256 e4m3 values) times the group's scale, and the rope
// from its two bytes.

// CHECK: memref.global "private" constant @__ds_e4m3_values : memref<256xf32>
// CHECK-LABEL: func.func @prefill
// CHECK-SAME: %[[CACHE:[^ :]+]]: memref<2x?x280xi8>
// CHECK: call @[[WRITE:__ds_cache_write_[0-9a-f]+]](%[[CACHE]],
// CHECK: call @[[ATTN:__ds_latent_attention_[0-9a-f]+]]({{.*}}%[[CACHE]],
// CHECK: func.func private @[[WRITE]](%{{.+}}: memref<2x?x280xi8>,
// CHECK: scf.for %[[G:.+]] = %{{.+}} to %c2 step
// CHECK: math.absf
// CHECK: arith.maximumf
// CHECK: %[[SCALE:.+]] = arith.divf %{{.+}}, %cst{{.*}} : f32
// CHECK: %[[SV:.+]] = vector.broadcast %[[SCALE]] : f32 to vector<1xf32>
// CHECK: %[[SB:.+]] = vector.bitcast %[[SV]] : vector<1xf32> to vector<4xi8>
// CHECK: vector.store %[[SB]], %{{.+}} {alignment = 4 : i64} : memref<2x?x280xi8>, vector<4xi8>
// CHECK: arith.divf %{{.+}}, %[[SCALE]] : f32
// CHECK: arith.minui
// CHECK: arith.select
// CHECK: arith.trunci %{{.+}} : i32 to i8
// CHECK: memref.store %{{.+}} : memref<2x?x280xi8>
// The rope's bf16 by integer rounding (CacheCodec.h: no byte may come
// from a float-typed register on the GPU), then its two bytes.
// CHECK: %[[RB:.+]] = arith.bitcast %{{.+}} : f32 to i32
// CHECK: %[[RH:.+]] = arith.shrui %[[RB]], %c16_i32 : i32
// CHECK: arith.cmpf uno
// CHECK: %[[R16:.+]] = arith.select %{{.+}}, %{{.+}}, %{{.+}} : i32
// CHECK: arith.trunci %[[R16]] : i32 to i8
// CHECK-NOT: arith.truncf %{{.+}} : f32 to bf16
// CHECK: func.func private @[[ATTN]](%{{.+}}: memref<?x2x256xf32>, %{{.+}}: memref<?x2x8xf32>, %{{.+}}: memref<2x?x280xi8>,
// CHECK: arith.bitcast %{{.+}} : i32 to f32
// CHECK: %[[CODE:.+]] = memref.load %{{.+}} : memref<2x?x280xi8>
// CHECK: %[[IDX:.+]] = arith.index_castui %[[CODE]] : i8 to index
// CHECK: %[[TABLE:.+]] = memref.get_global @__ds_e4m3_values
// CHECK: memref.load %[[TABLE]][%[[IDX]]]
// CHECK: arith.shli %{{.+}}, %c16_i32 : i32
func.func @prefill(%tok: tensor<?xi32>, %pos: tensor<?xi32>,
                   %c: !ds.latent_cache<num_layers = 2, width = 264, element_type = f8E4M3FN, rope_width = 8, scale_group = 128>)
    -> (tensor<?x512xf32>, !ds.latent_cache<num_layers = 2, width = 264, element_type = f8E4M3FN, rope_width = 8, scale_group = 128>) {
  %t = ds.weight "latent" : tensor<64x256xf32>
  %lat = ds.embedding %t, %tok : tensor<64x256xf32>, tensor<?xi32> -> tensor<?x256xf32>
  %r = ds.weight "rope" : tensor<64x8xf32>
  %kr = ds.embedding %r, %tok : tensor<64x8xf32>, tensor<?xi32> -> tensor<?x8xf32>
  %c1 = ds.cache_write %c, %lat, %kr, %pos {layer = 1 : i64}
      : !ds.latent_cache<num_layers = 2, width = 264, element_type = f8E4M3FN, rope_width = 8, scale_group = 128>, tensor<?x256xf32>, tensor<?x8xf32>, tensor<?xi32>
  %qt = ds.weight "q" : tensor<64x512xf32>
  %q = ds.embedding %qt, %tok : tensor<64x512xf32>, tensor<?xi32> -> tensor<?x512xf32>
  %rt = ds.weight "qr" : tensor<64x16xf32>
  %qr2 = ds.embedding %rt, %tok : tensor<64x16xf32>, tensor<?xi32> -> tensor<?x16xf32>
  %zero = arith.constant 0 : index
  %n = tensor.dim %q, %zero : tensor<?x512xf32>
  %ql = tensor.expand_shape %q [[0], [1, 2]] output_shape [%n, 2, 256] : tensor<?x512xf32> into tensor<?x2x256xf32>
  %qr = tensor.expand_shape %qr2 [[0], [1, 2]] output_shape [%n, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  %u = ds.latent_attention %ql, %qr, %c1, %pos {layer = 1 : i64, scale = 0.25 : f64}
      : tensor<?x2x256xf32>, tensor<?x2x8xf32>, !ds.latent_cache<num_layers = 2, width = 264, element_type = f8E4M3FN, rope_width = 8, scale_group = 128>, tensor<?xi32> -> tensor<?x2x256xf32>
  %o = tensor.collapse_shape %u [[0], [1, 2]] : tensor<?x2x256xf32> into tensor<?x512xf32>
  return %o, %c1 : tensor<?x512xf32>, !ds.latent_cache<num_layers = 2, width = 264, element_type = f8E4M3FN, rope_width = 8, scale_group = 128>
}
