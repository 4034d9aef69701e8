// RUN: ds-opt --split-input-file --ds-map-kernels-to-gpu %s | FileCheck %s

// RMSNorm on the GPU: one block of 256 threads per row, strided loads, a
// warp-shuffle sum, the 8 warps' sums through shared memory, then the
// scaled row; with the residual add, the sum is written on the way.

// CHECK-LABEL: func.func private @norm
// CHECK-SAME: ds.block_per_row
// CHECK: %[[ROWS:.+]] = memref.dim %arg0, %c0
// CHECK: gpu.launch blocks({{.*}}) in ({{.*}} = %[[ROWS]], {{.*}}) threads({{.*}}) in ({{.*}} = %c256{{.*}}) workgroup(%[[PART:.+]] : memref<8xf32, #gpu.address_space<workgroup>>)
// CHECK: scf.for %{{.+}} = %{{.+}} to %c4096 step %c256
// CHECK: gpu.shuffle xor
// CHECK: memref.store %{{.+}}, %[[PART]]
// CHECK: gpu.barrier
// CHECK: math.rsqrt
// CHECK: scf.for %{{.+}} = %{{.+}} to %c4096 step %c256
// CHECK: memref.store %{{.+}}, %arg2
func.func private @norm(%x: memref<?x4096xf32>, %w: memref<4096xf32>, %out: memref<?x4096xf32>) attributes {ds.kernel = "rms_norm", ds.eps = 1.0e-06 : f64} {
  return
}

// -----

// CHECK-LABEL: func.func private @add_norm
// CHECK-SAME: ds.block_per_row
// CHECK: gpu.launch
// CHECK: arith.addf
// CHECK: memref.store %{{.+}}, %arg3
// CHECK: gpu.barrier
// CHECK: memref.load %arg3
// CHECK: memref.store %{{.+}}, %arg4
func.func private @add_norm(%x: memref<?x64xf32>, %y: memref<?x64xf32>, %w: memref<64xf32>, %sum: memref<?x64xf32>, %out: memref<?x64xf32>) attributes {ds.kernel = "add_rms_norm", ds.eps = 1.0e-06 : f64} {
  return
}

// -----

// The greedy sampler: one block per row, strided scans, (value, index)
// pairs through warp shuffles and shared memory, the first maximum winning.
// CHECK-LABEL: func.func private @argmax
// CHECK-SAME: ds.block_per_row
// CHECK: gpu.launch {{.*}} workgroup(%{{.+}} : memref<8xf32, #gpu.address_space<workgroup>>, %{{.+}} : memref<8xi32, #gpu.address_space<workgroup>>)
// CHECK: scf.for %{{.+}} = %{{.+}} to %c1000 step %c256
// CHECK: arith.cmpf ogt
// CHECK: gpu.shuffle xor %{{.+}} : f32
// CHECK: gpu.shuffle xor %{{.+}} : i32
// CHECK: gpu.barrier
// CHECK: memref.store %{{.+}}, %arg1
func.func private @argmax(%l: memref<?x1000xf32>, %ids: memref<?xi32>) attributes {ds.kernel = "argmax"} {
  return
}
