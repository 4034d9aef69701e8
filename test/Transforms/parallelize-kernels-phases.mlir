// RUN: ds-opt --ds-parallelize-kernels %s | FileCheck %s

// The MoE glue is a kernel of phases: routing (a nest over tokens), the
// counting sort (sequential loops that store), the row moves (a nest over
// (token, slot) pairs x columns). Each nest goes to the pool by itself, in
// its place, with a grain of 16 outer iterations (16 x the inner trip
// count for a 2-D nest); the sequential phase stays on the caller, between
// the two calls, and so does a nest of one store per token (not worth a
// wake). A nest bounded by a value the body stored (not recomputable in a
// range variant) stays where it is.

// CHECK-LABEL: func.func private @route_permute(
// CHECK-SAME: ds.parallel
// CHECK: %[[G0:.+]] = llvm.mlir.constant(16 : i64) : i64
// CHECK: call @dsrt_parallel_for(%{{.+}}, %{{.+}}, %{{.+}}, %[[G0]])
// CHECK: scf.parallel
// CHECK: scf.for
// CHECK: memref.store
// CHECK: %[[C16:.+]] = arith.constant 16 : index
// CHECK: %[[IN:.+]] = arith.muli %[[C16]], %{{.+}} : index
// CHECK: %[[G1:.+]] = arith.index_cast %[[IN]] : index to i64
// CHECK: call @dsrt_parallel_for(%{{.+}}, %{{.+}}, %{{.+}}, %[[G1]])
// CHECK-NOT: scf.parallel
// CHECK: return
// CHECK-LABEL: func.func private @route_permute__p0__range(
// CHECK: scf.for
// CHECK: scf.for
// CHECK: arith.addf
// CHECK: memref.store
// CHECK-NOT: scf.for
// CHECK: return
// CHECK-LABEL: func.func private @route_permute__p0__task(
// CHECK: call @route_permute__p0__range
// CHECK-LABEL: func.func private @route_permute__p1__range(
// CHECK: arith.remui
// CHECK: arith.divui
// CHECK-LABEL: func.func private @route_permute__p1__task(
// CHECK-LABEL: func.func private @combine(
// CHECK: call @dsrt_parallel_for
// CHECK-NOT: scf.parallel
// CHECK-LABEL: func.func private @stored_bound(
// CHECK-NOT: dsrt_parallel_for
// CHECK: scf.parallel
// CHECK-NOT: dsrt_parallel_for
// CHECK: return
func.func private @route_permute(%logits: memref<?x4xf32>, %ids: memref<?xi32>, %x: memref<?x64xf32>, %xp: memref<?x64xf32>, %count: memref<4xi32>) attributes {ds.kernel = "moe_route_permute"} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %t = memref.dim %logits, %c0 : memref<?x4xf32>
  scf.parallel (%i) = (%c0) to (%t) step (%c1) {
    %c4 = arith.constant 4 : index
    %zero = arith.constant 0.0 : f32
    %s = scf.for %e = %c0 to %c4 step %c1 iter_args(%a = %zero) -> f32 {
      %v = memref.load %logits[%i, %e] : memref<?x4xf32>
      %n = arith.addf %a, %v : f32
      scf.yield %n : f32
    }
    %id = arith.fptosi %s : f32 to i32
    memref.store %id, %ids[%i] : memref<?xi32>
    scf.reduce
  }
  scf.parallel (%i, %j) = (%c0, %c0) to (%t, %c1) step (%c1, %c1) {
    %k = arith.constant 4 : i32
    memref.store %k, %ids[%i] : memref<?xi32>
    scf.reduce
  }
  scf.for %i = %c0 to %t step %c1 {
    %id = memref.load %ids[%i] : memref<?xi32>
    %e = arith.index_cast %id : i32 to index
    %n = memref.load %count[%e] : memref<4xi32>
    memref.store %n, %count[%e] : memref<4xi32>
  }
  scf.parallel (%p, %d) = (%c0, %c0) to (%t, %c64) step (%c1, %c1) {
    %v = memref.load %x[%p, %d] : memref<?x64xf32>
    memref.store %v, %xp[%p, %d] : memref<?x64xf32>
    scf.reduce
  }
  return
}
func.func private @combine(%y: memref<?x64xf32>, %out: memref<?x64xf32>) attributes {ds.kernel = "moe_combine"} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c64 = arith.constant 64 : index
  %t = memref.dim %y, %c0 : memref<?x64xf32>
  scf.parallel (%i, %c) = (%c0, %c0) to (%t, %c64) step (%c1, %c1) {
    %v = memref.load %y[%i, %c] : memref<?x64xf32>
    memref.store %v, %out[%i, %c] : memref<?x64xf32>
    scf.reduce
  }
  return
}
func.func private @stored_bound(%n: memref<i32>, %out: memref<?xf32>) attributes {ds.kernel = "moe_permute"} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %f = arith.constant 1.0 : f32
  %v = memref.load %n[] : memref<i32>
  %e = arith.index_cast %v : i32 to index
  scf.parallel (%i) = (%c0) to (%e) step (%c1) {
    memref.store %f, %out[%i] : memref<?xf32>
    scf.reduce
  }
  return
}
