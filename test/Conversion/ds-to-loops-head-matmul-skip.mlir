// RUN: ds-opt --convert-ds-to-loops %s | FileCheck %s

// Tests that without head-matmul-calls (the loop form, the GPU's) a head
// matmul with skip(query_start) computes every row in its head_matmul
// kernel and then a head_matmul_skip kernel zeroes the rows of the tokens
// whose sequence (found by scanning query_start) has at least
// naive_min_tokens new tokens, so the result means what the op says.

// CHECK-LABEL: func.func @step
// CHECK: call @[[HM:__ds_head_matmul_[0-9a-f]+]](%{{.+}}, %{{.+}}, %[[OUT:[^ ,)]+]])
// CHECK: call @[[SKIP:__ds_head_matmul_skip_[0-9a-f]+]](%[[OUT]], %{{.+}})
// CHECK: func.func private @[[HM]]({{.+}}) attributes {ds.kernel = "head_matmul"
// CHECK: func.func private @[[SKIP]](%[[O:[^:]+]]: memref<?x2x16xf32>, %[[QS:[^:]+]]: memref<?xi32>) attributes {ds.kernel = "head_matmul_skip"
// CHECK: scf.parallel (%[[T:.+]]) =
// CHECK: %[[SEQ:.+]] = scf.for {{.+}} iter_args
// CHECK: arith.cmpi sle
// CHECK: %[[N:.+]] = arith.subi
// CHECK: %[[NAIVE:.+]] = arith.cmpi sge, %[[N]], %{{c17[_0-9]*}} : index
// CHECK: scf.if %[[NAIVE]] {
// CHECK: memref.store %{{.+}}, %[[O]][%[[T]], %{{.+}}, %{{.+}}] : memref<?x2x16xf32>
func.func @step(%tok: tensor<?xi32>, %pos: tensor<?xi32>,
                %c: !ds.paged_latent_cache<num_layers = 1, width = 20, element_type = f32>,
                %qs: tensor<?xi32>, %cl: tensor<?xi32>, %bt: tensor<?x?xi32>, %rows: tensor<?xi32>)
    -> (tensor<?x32xf32>, !ds.paged_latent_cache<num_layers = 1, width = 20, element_type = f32>) {
  %qt = ds.weight "q" : tensor<64x16xf32>
  %q = ds.embedding %qt, %tok : tensor<64x16xf32>, tensor<?xi32> -> tensor<?x16xf32>
  %zero = arith.constant 0 : index
  %n = tensor.dim %q, %zero : tensor<?x16xf32>
  %qn = tensor.expand_shape %q [[0], [1, 2]] output_shape [%n, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  %kvb = ds.weight "kvb" : tensor<32x16xf32>
  %ql = ds.head_matmul %qn, %kvb skip(%qs : tensor<?xi32>) {group = 16 : i64, naive_min_tokens = 17 : i64, offset = 0 : i64, rows = 8 : i64}
      : tensor<?x2x8xf32>, tensor<32x16xf32> -> tensor<?x2x16xf32>
  %r = tensor.collapse_shape %ql [[0], [1, 2]] : tensor<?x2x16xf32> into tensor<?x32xf32>
  return %r, %c : tensor<?x32xf32>, !ds.paged_latent_cache<num_layers = 1, width = 20, element_type = f32>
}
