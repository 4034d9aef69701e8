// RUN: ds-opt --split-input-file --ds-map-kernels-to-gpu %s | FileCheck %s
// RUN: ds-opt --split-input-file --ds-map-kernels-to-gpu="split-kv=false" %s | FileCheck %s --check-prefix=GENERIC

// Decode attention over a bf16 latent cache (16 latent + 8 rope columns):
// a partial kernel over (token x head, split) blocks of 128 threads with
// shared memory for the warps' merge, 16-byte vector loads of cache rows
// (8 x bf16) and of the query (f32), fp32 accumulation, warp shuffles for
// the dot products, and a log-sum-exp combine kernel when there are splits.

// CHECK-LABEL: func.func private @__ds_latent_attention_bf16
// CHECK-SAME: attributes {{{.*}}ds.split_kv
// CHECK: %[[T:.+]] = memref.dim %arg0, %c0
// CHECK: %[[CAP:.+]] = memref.dim %arg2, %c1
// CHECK: %[[TH:.+]] = arith.muli %[[T]], %c2
// CHECK: %[[SCRATCH:.+]], %{{.+}} = gpu.alloc async
// CHECK: gpu.launch blocks({{.*}}) in ({{.*}} = %[[TH]], {{.*}} = %[[SPLITS:[^,]+]], {{.*}}) threads({{.*}}) in ({{.*}} = %c128{{.*}}, {{.*}}) workgroup(%[[SM:.+]] : memref<4xf32, #gpu.address_space<workgroup>>, %{{.+}} : memref<4xf32, #gpu.address_space<workgroup>>, %[[SACC:.+]] : memref<64xf32, #gpu.address_space<workgroup>>)
// CHECK: vector.load %arg0[{{.*}}] {alignment = 16 : i64} : memref<?x2x16xf32>, vector<8xf32>
// CHECK: vector.load %arg1[{{.*}}] {alignment = 16 : i64} : memref<?x2x8xf32>, vector<8xf32>
// CHECK: scf.for %{{.+}} = %{{.+}} to %{{.+}} step %c4
// CHECK: vector.load %arg2[%arg5, {{.*}}] {alignment = 16 : i64} : memref<3x?x24xbf16>, vector<8xbf16>
// CHECK: arith.extf %{{.+}} : vector<8xbf16> to vector<8xf32>
// CHECK: vector.reduction <add>
// CHECK: gpu.shuffle  xor %{{.+}}, %c16_i32, %c32_i32 : f32
// CHECK: gpu.shuffle  xor %{{.+}}, %c1_i32, %c32_i32{{.*}} : f32
// CHECK: math.exp
// CHECK: vector.store %{{.+}}, %[[SACC]]
// CHECK: gpu.barrier
// CHECK: memref.store %{{.+}}, %[[SCRATCH]]
// CHECK: memref.store %{{.+}}, %arg4
// CHECK: gpu.terminator
// The combine launch: one block per (token, head).
// CHECK: gpu.launch blocks({{.*}}) in ({{.*}} = %[[TH]], {{.*}} = %c1{{.*}}, {{.*}}) threads({{.*}}) in ({{.*}} = %c128
// CHECK: memref.load %[[SCRATCH]]
// CHECK: memref.store %{{.+}}, %arg4
// CHECK: gpu.dealloc async
// GENERIC-LABEL: func.func private @__ds_latent_attention_bf16
// GENERIC-NOT: ds.split_kv
// GENERIC-NOT: vector.load
func.func private @__ds_latent_attention_bf16(%ql: memref<?x2x16xf32>, %qr: memref<?x2x8xf32>, %cache: memref<3x?x24xbf16>, %pos: memref<?xi32>, %out: memref<?x2x16xf32>, %layer: index) attributes {ds.kernel = "latent_attention", ds.scale = 0.25 : f64} {
  return
}

// -----

// Widths that do not allow 16-byte rows (latent 6) keep the generic mapping.
// CHECK-LABEL: func.func private @__ds_latent_attention_odd
// CHECK-NOT: ds.split_kv
// CHECK-NOT: vector.load
// CHECK: gpu.launch
func.func private @__ds_latent_attention_odd(%ql: memref<?x2x6xf32>, %qr: memref<?x2x2xf32>, %cache: memref<3x?x8xf32>, %pos: memref<?xi32>, %out: memref<?x2x6xf32>, %layer: index) attributes {ds.kernel = "latent_attention", ds.scale = 0.25 : f64} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c6 = arith.constant 6 : index
  %t = memref.dim %ql, %c0 : memref<?x2x6xf32>
  scf.parallel (%i, %h, %c) = (%c0, %c0, %c0) to (%t, %c2, %c6) step (%c1, %c1, %c1) {
    %v = memref.load %ql[%i, %h, %c] : memref<?x2x6xf32>
    memref.store %v, %out[%i, %h, %c] : memref<?x2x6xf32>
    scf.reduce
  }
  return
}

// -----

// Decode attention over an FP8 latent cache (256 latent values in two
// groups of 128, 8 rope values): rows of 280 bytes (256 e4m3 + 2 f32
// scales + 8 bf16). Each lane loads 8 latent bytes, decodes them in
// registers and scales them by its group's f32 (assembled from the row's
// scale bytes), or 16 bytes of bf16 rope widened to f32.
// CHECK-LABEL: func.func private @__ds_latent_attention_fp8
// CHECK-SAME: attributes {{{.*}}ds.split_kv
// CHECK: gpu.launch
// CHECK: scf.for %{{.+}} = %{{.+}} to %{{.+}} step %c4
// CHECK: %[[RAW:.+]] = vector.load %arg2[%arg5, {{.*}}] {alignment = 8 : i64} : memref<3x?x280xi8>, vector<8xi8>
// CHECK: %[[GRP:.+]] = arith.divui %{{.+}}, %c128
// CHECK: memref.load %arg2[%arg5, {{.*}}] : memref<3x?x280xi8>
// CHECK: arith.bitcast %{{.+}} : i32 to f32
// CHECK: arith.extui %[[RAW]] : vector<8xi8> to vector<8xi32>
// CHECK: arith.select %{{.+}} : vector<8xi1>, vector<8xf32>
// CHECK: arith.mulf
// CHECK: } else {
// CHECK: vector.load %arg2[%arg5, {{.*}}] {alignment = 8 : i64} : memref<3x?x280xi8>, vector<16xi8>
// CHECK: vector.bitcast %{{.+}} : vector<16xi8> to vector<8xi16>
// CHECK: arith.shli
// CHECK: vector.reduction <add>
func.func private @__ds_latent_attention_fp8(%ql: memref<?x2x256xf32>, %qr: memref<?x2x8xf32>, %cache: memref<3x?x280xi8>, %pos: memref<?xi32>, %out: memref<?x2x256xf32>, %layer: index) attributes {ds.kernel = "latent_attention", ds.scale = 0.25 : f64, ds.cache_scale_group = 128 : i64} {
  return
}

// -----

// An i8 cache row whose bytes are not the FP8 layout of the queries' widths
// keeps the generic mapping.
// CHECK-LABEL: func.func private @__ds_latent_attention_fp8_bad
// CHECK-NOT: ds.split_kv
func.func private @__ds_latent_attention_fp8_bad(%ql: memref<?x2x256xf32>, %qr: memref<?x2x8xf32>, %cache: memref<3x?x264xi8>, %pos: memref<?xi32>, %out: memref<?x2x256xf32>, %layer: index) attributes {ds.kernel = "latent_attention", ds.scale = 0.25 : f64, ds.cache_scale_group = 128 : i64} {
  return
}
