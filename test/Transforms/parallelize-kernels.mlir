// RUN: ds-opt --ds-parallelize-kernels %s | FileCheck %s

// A heavy kernel (attention) whose body is one parallel nest: the nest
// moves into a range variant over linear iterations, a C-ABI task unpacks
// the arguments, and the kernel hands the iterations to the runtime's
// pool. Norms split by rows (4 per thread at least), and so does the head
// matmul by weight rows (4 heads per thread at least: decode's 8-128 heads
// go to both cores, one small dispatch); other kernels (elementwise ones)
// are left alone.

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
func.func private @plus(%x: memref<?x4xf32>) attributes {ds.kernel = "add"} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %t = memref.dim %x, %c0 : memref<?x4xf32>
  scf.parallel (%i) = (%c0) to (%t) step (%c1) {
    scf.reduce
  }
  return
}
