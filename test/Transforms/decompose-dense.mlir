// RUN: ds-opt --split-input-file --ds-decompose-dense %s | FileCheck %s

// Tests that a dense MLP becomes gate and up projections, silu_mul and the
// down projection.

// CHECK-LABEL: func.func @mlp
// CHECK-SAME: (%[[X:.+]]: tensor<?x32xf32>, %[[G:.+]]: tensor<48x32xf32>, %[[U:.+]]: tensor<48x32xf32>, %[[D:.+]]: tensor<32x48xf32>)
// CHECK: %[[GX:.+]] = ds.linear %[[X]], %[[G]] : tensor<?x32xf32>, tensor<48x32xf32> -> tensor<?x48xf32>
// CHECK: %[[UX:.+]] = ds.linear %[[X]], %[[U]]
// CHECK: %[[H:.+]] = ds.silu_mul %[[GX]], %[[UX]] : tensor<?x48xf32>
// CHECK: %[[Y:.+]] = ds.linear %[[H]], %[[D]] : tensor<?x48xf32>, tensor<32x48xf32> -> tensor<?x32xf32>
// CHECK: return %[[Y]]
func.func @mlp(%x: tensor<?x32xf32>, %g: tensor<48x32xf32>, %u: tensor<48x32xf32>,
               %d: tensor<32x48xf32>) -> tensor<?x32xf32> {
  %y = ds.mlp %x, %g, %u, %d : tensor<?x32xf32>, tensor<48x32xf32>, tensor<48x32xf32>, tensor<32x48xf32> -> tensor<?x32xf32>
  return %y : tensor<?x32xf32>
}

// -----

// Tests that the LM head becomes the final RMSNorm (same eps) and the
// vocabulary projection.

// CHECK-LABEL: func.func @lm_head
// CHECK: %[[N:.+]] = ds.rms_norm %{{.+}}, %{{.+}} {eps = 1.000000e-05 : f64}
// CHECK: ds.linear %[[N]], %{{.+}} : tensor<?x32xf32>, tensor<64x32xf32> -> tensor<?x64xf32>
func.func @lm_head(%x: tensor<?x32xf32>, %n: tensor<32xf32>, %h: tensor<64x32xf32>) -> tensor<?x64xf32> {
  %y = ds.lm_head %x, %n, %h {eps = 1.0e-05 : f64} : tensor<?x32xf32>, tensor<32xf32>, tensor<64x32xf32> -> tensor<?x64xf32>
  return %y : tensor<?x64xf32>
}
