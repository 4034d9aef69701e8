// RUN: ds-opt %s | ds-opt | FileCheck %s

// Tests that the per-segment form choice of a ragged step round-trips: the
// absorbed kernel's naive_min_tokens (the sequences it leaves) and the
// naive kernel over pages with its threshold and the absorbed rows it keeps.

// CHECK-LABEL: func.func @per_segment
// CHECK: %[[U:.+]] = ds.paged_latent_attention %{{[^ ,)]+}}, %{{[^ ,)]+}}, %[[C:[^ ,)]+]], %[[POS:[^ ,)]+]], %[[QS:[^ ,)]+]], %[[BT:[^ ,)]+]] {layer = 1 : i64, naive_min_tokens = 16 : i64, scale = 3.125000e-01 : f64}
// CHECK: ds.paged_naive_attention %{{[^ ,)]+}}, %{{[^ ,)]+}}, %[[C]], %[[POS]], %[[QS]], %[[BT]], %{{[^ ,)]+}}, %[[INIT:[^ ,)]+]] {layer = 1 : i64, naive_min_tokens = 16 : i64, scale = 3.125000e-01 : f64} : tensor<?x2x8xf32>, tensor<?x2x4xf32>, !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = bf16>, tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>, tensor<32x16xf32> -> tensor<?x2x8xf32>
func.func @per_segment(%c: !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = bf16>,
                       %pos: tensor<?xi32>, %qs: tensor<?xi32>, %bt: tensor<?x?xi32>,
                       %ql: tensor<?x2x16xf32>, %qn: tensor<?x2x8xf32>, %qr: tensor<?x2x4xf32>,
                       %kvb: tensor<32x16xf32>, %init: tensor<?x2x8xf32>)
    -> (tensor<?x2x16xf32>, tensor<?x2x8xf32>) {
  %u = ds.paged_latent_attention %ql, %qr, %c, %pos, %qs, %bt
      {layer = 1 : i64, scale = 0.3125 : f64, naive_min_tokens = 16 : i64}
      : tensor<?x2x16xf32>, tensor<?x2x4xf32>, !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = bf16>,
        tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32> -> tensor<?x2x16xf32>
  %o = ds.paged_naive_attention %qn, %qr, %c, %pos, %qs, %bt, %kvb, %init
      {layer = 1 : i64, scale = 0.3125 : f64, naive_min_tokens = 16 : i64}
      : tensor<?x2x8xf32>, tensor<?x2x4xf32>, !ds.paged_latent_cache<num_layers = 2, width = 20, element_type = bf16>,
        tensor<?xi32>, tensor<?xi32>, tensor<?x?xi32>, tensor<32x16xf32> -> tensor<?x2x8xf32>
  return %u, %o : tensor<?x2x16xf32>, tensor<?x2x8xf32>
}
