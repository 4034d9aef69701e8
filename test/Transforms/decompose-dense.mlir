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

// -----

// Tests that ds.mtp_project becomes the two norms, the concatenation (which
// zeroes the embedding half at position 0) and the eh_proj GEMM, embedding
// first.

// CHECK-LABEL: func.func @mtp
// CHECK-SAME: (%[[E:.+]]: tensor<?x32xf32>, %[[H:.+]]: tensor<?x32xf32>, %[[P:.+]]: tensor<?xi32>)
// CHECK-DAG: %[[EN:.+]] = ds.weight "enorm"
// CHECK-DAG: %[[HN:.+]] = ds.weight "hnorm"
// CHECK-DAG: %[[W:.+]] = ds.weight "eh_proj"
// CHECK: %[[NE:.+]] = ds.rms_norm %[[E]], %[[EN]] {eps = 1.000000e-05 : f64}
// CHECK: %[[NH:.+]] = ds.rms_norm %[[H]], %[[HN]] {eps = 1.000000e-05 : f64}
// CHECK: %[[C:.+]] = ds.mtp_concat %[[NE]], %[[NH]], %[[P]] : {{.*}} -> tensor<?x64xf32>
// CHECK: %[[X:.+]] = ds.linear %[[C]], %[[W]] : tensor<?x64xf32>, tensor<32x64xf32> -> tensor<?x32xf32>
// CHECK: return %[[X]]
// CHECK-NOT: ds.mtp_project
func.func @mtp(%e: tensor<?x32xf32>, %h: tensor<?x32xf32>, %p: tensor<?xi32>) -> tensor<?x32xf32> {
  %en = ds.weight "enorm" : tensor<32xf32>
  %hn = ds.weight "hnorm" : tensor<32xf32>
  %w = ds.weight "eh_proj" : tensor<32x64xf32>
  %x = ds.mtp_project %e, %h, %p, %en, %hn, %w {eps = 1.0e-05 : f64} : tensor<?x32xf32>, tensor<?x32xf32>, tensor<?xi32>, tensor<32xf32>, tensor<32xf32>, tensor<32x64xf32> -> tensor<?x32xf32>
  return %x : tensor<?x32xf32>
}
