// RUN: ds-opt %s --split-input-file --ds-test-permute-parallel-loops=order=reverse | FileCheck %s --check-prefix=REV
// RUN: ds-opt %s --split-input-file --ds-test-permute-parallel-loops=order=rotate | FileCheck %s --check-prefix=ROT
// RUN: not ds-opt %s --split-input-file --ds-test-permute-parallel-loops=order=sideways 2>&1 | FileCheck %s --check-prefix=BAD

// Tests that each induction variable is renumbered, reversed
// (lb + (n - 1 - k) * step) or rotated by half the trip count
// (lb + ((k + n/2) mod n) * step), and the body reads the renumbered one.

// REV-LABEL: func.func @copy
// REV: scf.parallel (%[[I:.+]]) = (%[[LB:.+]]) to (%[[UB:.+]]) step (%[[ST:.+]]) {
// REV: %[[SPAN:.+]] = arith.subi %[[UB]], %[[LB]]
// REV: %[[N:.+]] = arith.ceildivui %[[SPAN]], %[[ST]]
// REV: %[[OFF:.+]] = arith.subi %[[I]], %[[LB]]
// REV: %[[K:.+]] = arith.divui %[[OFF]], %[[ST]]
// REV: %[[LAST:.+]] = arith.subi %[[N]], %c1
// REV: %[[P:.+]] = arith.subi %[[LAST]], %[[K]]
// REV: %[[SCALED:.+]] = arith.muli %[[P]], %[[ST]]
// REV: %[[J:.+]] = arith.addi %[[LB]], %[[SCALED]]
// REV: memref.load %{{.+}}[%[[J]]]
// REV: memref.store %{{.+}}, %{{.+}}[%[[J]]]
// ROT-LABEL: func.func @copy
// ROT: %[[K:.+]] = arith.divui
// ROT: %[[HALF:.+]] = arith.divui %{{.+}}, %c2
// ROT: %[[SUM:.+]] = arith.addi %[[K]], %[[HALF]]
// ROT: arith.remui %[[SUM]]
// BAD: order must be reverse or rotate, got 'sideways'
func.func @copy(%a: memref<?xf32>, %b: memref<?xf32>, %lb: index, %ub: index, %st: index) {
  scf.parallel (%i) = (%lb) to (%ub) step (%st) {
    %v = memref.load %a[%i] : memref<?xf32>
    memref.store %v, %b[%i] : memref<?xf32>
    scf.reduce
  }
  return
}
