// RUN: ds-opt --ds-approximate-exp %s | FileCheck %s
// RUN: ds-opt --ds-approximate-exp --convert-scf-to-cf --finalize-memref-to-llvm --convert-math-to-llvm --convert-arith-to-llvm --convert-func-to-llvm --convert-cf-to-llvm --reconcile-unrealized-casts %s | FileCheck %s --check-prefix=LLVM

// The SiLU-mul kernel as convert-ds-to-loops writes it: its exp becomes
// the inline polynomial (explicit FMAs, the exponent set by integer ops),
// so no libm call is left for the loop vectoriser to stop at.
// CHECK-LABEL: func.func @__ds_silu_mul
// CHECK-NOT: math.exp
// CHECK: arith.negf
// CHECK: math.fma
// CHECK: arith.shli
// CHECK: arith.bitcast
// CHECK-NOT: math.exp
// CHECK: arith.divf
// CHECK: return
// LLVM-LABEL: llvm.func @__ds_silu_mul
// LLVM-NOT: llvm.intr.exp
// LLVM: llvm.intr.fma
// LLVM-NOT: llvm.intr.exp
// LLVM: llvm.return
func.func @__ds_silu_mul(%g: memref<?x?xf32>, %u: memref<?x?xf32>,
                         %out: memref<?x?xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %one = arith.constant 1.0 : f32
  %n = memref.dim %out, %c0 : memref<?x?xf32>
  %f = memref.dim %out, %c1 : memref<?x?xf32>
  scf.parallel (%i, %j) = (%c0, %c0) to (%n, %f) step (%c1, %c1) {
    %gv = memref.load %g[%i, %j] : memref<?x?xf32>
    %ng = arith.negf %gv : f32
    %e = math.exp %ng : f32
    %d = arith.addf %one, %e : f32
    %s = arith.divf %gv, %d : f32
    %uv = memref.load %u[%i, %j] : memref<?x?xf32>
    %r = arith.mulf %s, %uv : f32
    memref.store %r, %out[%i, %j] : memref<?x?xf32>
    scf.reduce
  }
  return
}

// Only f32 has the polynomial: an f64 exp is left to libm.
// CHECK-LABEL: func.func @exp_f64
// CHECK: math.exp %{{.*}} : f64
func.func @exp_f64(%x: f64) -> f64 {
  %e = math.exp %x : f64
  return %e : f64
}
