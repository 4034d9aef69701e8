// RUN: ds-opt --ds-fuse-gate-up --ds-fuse-silu-epilogue %s | FileCheck %s
// RUN: ds-opt --ds-fuse-silu-epilogue %s | FileCheck %s --check-prefix=ALONE
// RUN: ds-opt --ds-fuse-gate-up --ds-fuse-silu-epilogue %s | ds-opt --convert-ds-to-loops | FileCheck %s --check-prefix=CPU
// RUN: ds-opt --ds-fuse-gate-up --ds-fuse-silu-epilogue %s | ds-opt --convert-ds-to-loops="gemm-epilogue=false" | FileCheck %s --check-prefix=GPU

// The packed gate|up GEMM of ds-fuse-gate-up and its SiLU-mul become one op;
// on the CPU one runtime call computes both and writes only the product.

// CHECK-LABEL: func.func @prefill
// CHECK: %[[W:.+]] = ds.concat_weights
// CHECK: %[[H:.+]] = ds.linear_silu_mul %{{.+}}, %[[W]] : tensor<?x32xf32>, tensor<96x32xf32> -> tensor<?x48xf32>
// CHECK-NOT: ds.silu_mul_packed
// CHECK: ds.linear %[[H]]
// Without the packed GEMM (no ds-fuse-gate-up) there is nothing to fuse.
// ALONE-NOT: ds.linear_silu_mul
// CPU: call @dsrt_linear_silu_mul_f32(
// CPU-NOT: silu_mul_packed
// GPU-NOT: dsrt_linear_silu_mul_f32
// GPU: call @dsrt_linear_f32(
// GPU: call @__ds_silu_mul_packed_
func.func @prefill(%tok: tensor<?xi32>, %pos: tensor<?xi32>,
                   %c: !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>)
    -> (tensor<?x64xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>) {
  %e = ds.weight "embed" : tensor<64x32xf32>
  %x = ds.embedding %e, %tok : tensor<64x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
  %g = ds.weight "gate" : tensor<48x32xf32>
  %u = ds.weight "up" : tensor<48x32xf32>
  %d = ds.weight "down" : tensor<32x48xf32>
  %gx = ds.linear %x, %g : tensor<?x32xf32>, tensor<48x32xf32> -> tensor<?x48xf32>
  %ux = ds.linear %x, %u : tensor<?x32xf32>, tensor<48x32xf32> -> tensor<?x48xf32>
  %h = ds.silu_mul %gx, %ux : tensor<?x48xf32>
  %y = ds.linear %h, %d : tensor<?x48xf32>, tensor<32x48xf32> -> tensor<?x32xf32>
  %hd = ds.weight "head" : tensor<64x32xf32>
  %l = ds.linear %y, %hd : tensor<?x32xf32>, tensor<64x32xf32> -> tensor<?x64xf32>
  return %l, %c : tensor<?x64xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>
}
