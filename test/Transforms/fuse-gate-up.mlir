// RUN: ds-opt --split-input-file --ds-fuse-gate-up %s | FileCheck %s

// Tests that the gate and up projections of one input become a single
// matmul over the stacked weight, followed by silu_mul_packed.

// CHECK-LABEL: func.func @mlp
// CHECK-SAME: (%[[X:.+]]: tensor<?x32xf32>, %[[G:.+]]: tensor<48x32xbf16>, %[[U:.+]]: tensor<48x32xbf16>, %[[D:.+]]: tensor<32x48xbf16>)
// CHECK: %[[W:.+]] = ds.concat_weights %[[G]], %[[U]] : tensor<48x32xbf16>, tensor<48x32xbf16> -> tensor<96x32xbf16>
// CHECK: %[[GU:.+]] = ds.linear %[[X]], %[[W]] : tensor<?x32xf32>, tensor<96x32xbf16> -> tensor<?x96xf32>
// CHECK: %[[H:.+]] = ds.silu_mul_packed %[[GU]] : tensor<?x96xf32> -> tensor<?x48xf32>
// CHECK: ds.linear %[[H]], %[[D]]
// CHECK-NOT: ds.silu_mul %
func.func @mlp(%x: tensor<?x32xf32>, %g: tensor<48x32xbf16>, %u: tensor<48x32xbf16>, %d: tensor<32x48xbf16>) -> tensor<?x32xf32> {
  %gx = ds.linear %x, %g : tensor<?x32xf32>, tensor<48x32xbf16> -> tensor<?x48xf32>
  %ux = ds.linear %x, %u : tensor<?x32xf32>, tensor<48x32xbf16> -> tensor<?x48xf32>
  %h = ds.silu_mul %gx, %ux : tensor<?x48xf32>
  %y = ds.linear %h, %d : tensor<?x48xf32>, tensor<32x48xbf16> -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

// Tests that projections of different inputs, or whose result is also used
// elsewhere, are left alone (the MoE experts' silu_mul has no linears).

// CHECK-LABEL: func.func @untouched
// CHECK-NOT: ds.concat_weights
// CHECK: ds.silu_mul
// CHECK: ds.silu_mul
func.func @untouched(%x: tensor<?x32xf32>, %y: tensor<?x32xf32>, %g: tensor<48x32xf32>, %u: tensor<48x32xf32>)
    -> (tensor<?x48xf32>, tensor<?x48xf32>, tensor<?x48xf32>) {
  %gx = ds.linear %x, %g : tensor<?x32xf32>, tensor<48x32xf32> -> tensor<?x48xf32>
  %uy = ds.linear %y, %u : tensor<?x32xf32>, tensor<48x32xf32> -> tensor<?x48xf32>
  %h = ds.silu_mul %gx, %uy : tensor<?x48xf32>
  %g2 = ds.linear %x, %g : tensor<?x32xf32>, tensor<48x32xf32> -> tensor<?x48xf32>
  %u2 = ds.linear %x, %u : tensor<?x32xf32>, tensor<48x32xf32> -> tensor<?x48xf32>
  %h2 = ds.silu_mul %g2, %u2 : tensor<?x48xf32>
  return %h, %h2, %g2 : tensor<?x48xf32>, tensor<?x48xf32>, tensor<?x48xf32>
}
