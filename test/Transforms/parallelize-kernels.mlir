// RUN: ds-opt --ds-parallelize-kernels %s | FileCheck %s

// A heavy kernel (attention) whose body is one parallel nest: the nest
// moves into a range variant over linear iterations, a C-ABI task unpacks
// the arguments, and the kernel hands the iterations to the runtime's
// pool. Norms split by rows (4 per thread at least), and so does the head
// matmul by weight rows (4 heads per thread at least: decode's 8-128 heads
// go to both cores, one small dispatch). Row-wise kernels (residual adds,
// rope, the SiLU-mul...) split by their outer dimension only, the inner
// ones staying loops, with a grain of 4096 elements' worth of rows; kernels
// of other kinds are left alone.

// CHECK-LABEL: func.func private @attn(
// CHECK-SAME: ds.parallel
// CHECK: %[[P:.+]] = llvm.alloca %{{.+}} x !llvm.struct<(struct<(ptr, ptr, i64, array<2 x i64>, array<2 x i64>)>, struct<(ptr, ptr, i64, array<2 x i64>, array<2 x i64>)>, i64)>
// CHECK: llvm.store
// CHECK: %[[F:.+]] = constant @attn__task
// CHECK: call @dsrt_parallel_for(%{{.+}}, %[[P]], %{{.+}}, %{{.+}})
// CHECK-NOT: scf.parallel
// CHECK: return
// CHECK-LABEL: func.func private @attn__range(
// CHECK-SAME: %{{.+}}: index, %[[B:.+]]: index, %[[E:.+]]: index)
// CHECK: scf.for %{{.+}} = %[[B]] to %[[E]] step
// CHECK: arith.remui
// CHECK: arith.divui
// CHECK-LABEL: func.func private @attn__task(%{{.+}}: !llvm.ptr, %{{.+}}: i64, %{{.+}}: i64)
// CHECK: llvm.load
// CHECK: call @attn__range
// CHECK-LABEL: func.func private @norm(
// CHECK: %[[G:.+]] = llvm.mlir.constant(4 : i64) : i64
// CHECK: call @dsrt_parallel_for(%{{.+}}, %{{.+}}, %{{.+}}, %[[G]])
// CHECK-LABEL: func.func private @qabs(
// CHECK-SAME: ds.parallel
// CHECK: %[[HG:.+]] = llvm.mlir.constant(4 : i64) : i64
// CHECK: call @dsrt_parallel_for(%{{.+}}, %{{.+}}, %{{.+}}, %[[HG]])
// CHECK-NOT: scf.parallel
// CHECK-LABEL: func.func private @plus(
// CHECK-SAME: ds.parallel
// CHECK: %[[AG:.+]] = llvm.mlir.constant(1024 : i64) : i64
// CHECK: call @dsrt_parallel_for(%{{.+}}, %{{.+}}, %{{.+}}, %[[AG]])
// CHECK-NOT: scf.parallel
// CHECK: return
// CHECK-LABEL: func.func private @plus__range(
// CHECK-SAME: %[[PB:[^:]+]]: index, %[[PE:[^:]+]]: index)
// CHECK: scf.for %[[T:.+]] = %[[PB]] to %[[PE]] step
// CHECK-NOT: arith.remui
// CHECK: scf.for %[[C:.+]] = %{{.+}} to %{{.+}} step
// CHECK: memref.load %{{.+}}[%[[T]], %[[C]]]
// CHECK-LABEL: func.func private @rot(
// CHECK: %[[RG:.+]] = llvm.mlir.constant(4 : i64) : i64
// CHECK: call @dsrt_parallel_for(%{{.+}}, %{{.+}}, %{{.+}}, %[[RG]])
// CHECK-LABEL: func.func private @rot__range(
// CHECK: math.sin
// CHECK-LABEL: func.func private @other(
// CHECK-NOT: dsrt_parallel_for
// CHECK: scf.parallel
// (The full CPU pipeline, which lowers these to LLVM, runs in every
// parity test: test/Integration/CPU/parity.test.)
func.func private @attn(%q: memref<?x4xf32>, %o: memref<?x4xf32>, %layer: index) attributes {ds.kernel = "latent_attention"} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %t = memref.dim %q, %c0 : memref<?x4xf32>
  scf.parallel (%i, %h) = (%c0, %c0) to (%t, %c4) step (%c1, %c1) {
    %v = memref.load %q[%i, %h] : memref<?x4xf32>
    memref.store %v, %o[%i, %h] : memref<?x4xf32>
    scf.reduce
  }
  return
}
func.func private @norm(%x: memref<?x4xf32>) attributes {ds.kernel = "rms_norm"} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %t = memref.dim %x, %c0 : memref<?x4xf32>
  scf.parallel (%i) = (%c0) to (%t) step (%c1) {
    scf.reduce
  }
  return
}
func.func private @qabs(%x: memref<1x8x4xf32>, %o: memref<1x8x4xf32>) attributes {ds.kernel = "head_matmul_rows"} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  scf.parallel (%t, %h) = (%c0, %c0) to (%c1, %c8) step (%c1, %c1) {
    %v = memref.load %x[%t, %h, %c0] : memref<1x8x4xf32>
    memref.store %v, %o[%t, %h, %c0] : memref<1x8x4xf32>
    scf.reduce
  }
  return
}
func.func private @plus(%x: memref<?x4xf32>, %y: memref<?x4xf32>) attributes {ds.kernel = "add"} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %t = memref.dim %x, %c0 : memref<?x4xf32>
  scf.parallel (%i, %j) = (%c0, %c0) to (%t, %c4) step (%c1, %c1) {
    %a = memref.load %x[%i, %j] : memref<?x4xf32>
    %b = memref.load %y[%i, %j] : memref<?x4xf32>
    %s = arith.addf %a, %b : f32
    memref.store %s, %y[%i, %j] : memref<?x4xf32>
    scf.reduce
  }
  return
}
// 16 pairs, each an f64 sine (a libm call: 64 elements' worth) and a loop
// over 8 heads: 16 x 72 = 1152 elements a token, grain 4.
func.func private @rot(%x: memref<?x8x32xf32>, %p: memref<?xf64>) attributes {ds.kernel = "rope"} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c8 = arith.constant 8 : index
  %c16 = arith.constant 16 : index
  %t = memref.dim %x, %c0 : memref<?x8x32xf32>
  scf.parallel (%i, %j) = (%c0, %c0) to (%t, %c16) step (%c1, %c1) {
    %a = memref.load %p[%i] : memref<?xf64>
    %d = math.sin %a : f64
    %s = arith.truncf %d : f64 to f32
    scf.for %h = %c0 to %c8 step %c1 {
      memref.store %s, %x[%i, %h, %j] : memref<?x8x32xf32>
    }
    scf.reduce
  }
  return
}
func.func private @other(%x: memref<?x4xf32>) attributes {ds.kernel = "softmax"} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %t = memref.dim %x, %c0 : memref<?x4xf32>
  scf.parallel (%i) = (%c0) to (%t) step (%c1) {
    scf.reduce
  }
  return
}
