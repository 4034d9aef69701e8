// RUN: ds-opt --split-input-file --ds-fuse-residual-norm %s | FileCheck %s

// Tests that a residual add read by an RMSNorm becomes one ds.add_rms_norm
// whose sum still feeds the later residual add.

// CHECK-LABEL: func.func @block
// CHECK-SAME: (%[[X:.+]]: tensor<?x32xf32>, %[[A:.+]]: tensor<?x32xf32>, %[[W:.+]]: tensor<32xf32>, %[[F:.+]]: tensor<?x32xf32>)
// CHECK: %[[H:.+]], %[[N:.+]] = ds.add_rms_norm %[[X]], %[[A]], %[[W]] {eps = 9.9999999999999995E-7 : f64} : tensor<?x32xf32>, tensor<32xf32>
// CHECK-NOT: arith.addf %[[X]]
// CHECK: %[[OUT:.+]] = arith.addf %[[H]], %[[F]]
// CHECK: return %[[N]], %[[OUT]]
func.func @block(%x: tensor<?x32xf32>, %a: tensor<?x32xf32>, %w: tensor<32xf32>, %f: tensor<?x32xf32>)
    -> (tensor<?x32xf32>, tensor<?x32xf32>) {
  %h = arith.addf %x, %a : tensor<?x32xf32>
  %n = ds.rms_norm %h, %w {eps = 1.0e-06 : f64} : tensor<?x32xf32>, tensor<32xf32> -> tensor<?x32xf32>
  %out = arith.addf %h, %f : tensor<?x32xf32>
  return %n, %out : tensor<?x32xf32>, tensor<?x32xf32>
}

// -----

// Tests that a norm whose input is not a residual add, or whose add is also
// used before the norm, is left alone.

// CHECK-LABEL: func.func @untouched
// CHECK-NOT: ds.add_rms_norm
// CHECK: ds.rms_norm
// CHECK: ds.rms_norm
func.func @untouched(%x: tensor<?x32xf32>, %a: tensor<?x32xf32>, %w: tensor<32xf32>)
    -> (tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x32xf32>) {
  %n0 = ds.rms_norm %x, %w {eps = 1.0e-06 : f64} : tensor<?x32xf32>, tensor<32xf32> -> tensor<?x32xf32>
  %h = arith.addf %x, %a : tensor<?x32xf32>
  %early = arith.addf %h, %h : tensor<?x32xf32>
  %n = ds.rms_norm %h, %w {eps = 1.0e-06 : f64} : tensor<?x32xf32>, tensor<32xf32> -> tensor<?x32xf32>
  return %n0, %n, %early : tensor<?x32xf32>, tensor<?x32xf32>, tensor<?x32xf32>
}
