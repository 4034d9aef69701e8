// RUN: ds-opt --convert-ds-to-loops="head-matmul-rows=true" %s | FileCheck %s --check-prefix=ROWS
// RUN: ds-opt --convert-ds-to-loops %s | FileCheck %s --check-prefix=COLS

// With head-matmul-rows (the CPU pipeline's form before head-matmul-calls
// replaced it; still a pass option) the untransposed head matmul
// (q_nope through W_UK) is a nest over (token, head) whose output row is
// zeroed, then accumulates one contiguous weight row per k; the transposed
// one (through W_UV) keeps its dot product per output. Without the option
// (the GPU) both are one dot product per (token, head, column).

// ROWS: func.func private @__ds_head_matmul_rows_{{.+}}(%[[X:.+]]: memref<?x2x8xf32>, %[[W:.+]]: memref<32x16xf32>, %[[O:.+]]: memref<?x2x16xf32>)
// ROWS-SAME: ds.kernel = "head_matmul_rows"
// ROWS: scf.parallel (%[[T:.+]], %[[H:.+]]) = (%{{.+}}, %{{.+}}) to (%{{.+}}, %{{.+}})
// ROWS: %[[BASE:.+]] = arith.muli %[[H]], %{{.+}} : index
// ROWS: scf.for %[[N0:.+]] =
// ROWS: memref.store %{{.+}}, %[[O]][%[[T]], %[[H]], %[[N0]]]
// ROWS: scf.for %[[K:.+]] =
// ROWS: %[[XV:.+]] = memref.load %[[X]][%[[T]], %[[H]], %[[K]]]
// ROWS: %[[ROW:.+]] = arith.addi %{{.+}}, %[[K]] : index
// ROWS: scf.for %[[N:.+]] =
// ROWS: %[[WV:.+]] = memref.load %[[W]][%[[ROW]], %[[N]]]
// ROWS: %[[P:.+]] = arith.mulf %[[XV]], %[[WV]] : f32
// ROWS: %[[ACC:.+]] = memref.load %[[O]][%[[T]], %[[H]], %[[N]]]
// ROWS: %[[S:.+]] = arith.addf %[[ACC]], %[[P]] fastmath<reassoc,contract> : f32
// ROWS: memref.store %[[S]], %[[O]][%[[T]], %[[H]], %[[N]]]
// ROWS: func.func private @__ds_head_matmul_{{[0-9a-f]+}}(%{{.+}}: memref<?x2x16xf32>, %{{.+}}: memref<32x16xf32>, %{{.+}}: memref<?x2x8xf32>)
// ROWS-SAME: ds.kernel = "head_matmul"
// ROWS: scf.parallel (%{{.+}}, %{{.+}}, %{{.+}}) =

// COLS-NOT: head_matmul_rows
// COLS: func.func private @__ds_head_matmul_{{[0-9a-f]+}}(%{{.+}}: memref<?x2x8xf32>, %{{.+}}: memref<32x16xf32>, %{{.+}}: memref<?x2x16xf32>)
// COLS: scf.parallel (%{{.+}}, %{{.+}}, %{{.+}}) =
// COLS: func.func private @__ds_head_matmul_{{[0-9a-f]+}}(%{{.+}}: memref<?x2x16xf32>, %{{.+}}: memref<32x16xf32>, %{{.+}}: memref<?x2x8xf32>)
// COLS: scf.parallel (%{{.+}}, %{{.+}}, %{{.+}}) =
func.func @decode(%tok: tensor<?xi32>, %pos: tensor<?xi32>,
                  %c: !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>)
    -> (tensor<?x16xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>) {
  %qt = ds.weight "q" : tensor<64x16xf32>
  %q = ds.embedding %qt, %tok : tensor<64x16xf32>, tensor<?xi32> -> tensor<?x16xf32>
  %zero = arith.constant 0 : index
  %n = tensor.dim %q, %zero : tensor<?x16xf32>
  %qn = tensor.expand_shape %q [[0], [1, 2]] output_shape [%n, 2, 8] : tensor<?x16xf32> into tensor<?x2x8xf32>
  %kvb = ds.weight "kvb" : tensor<32x16xf32>
  %ql = ds.head_matmul %qn, %kvb {group = 16 : i64, offset = 0 : i64, rows = 8 : i64}
      : tensor<?x2x8xf32>, tensor<32x16xf32> -> tensor<?x2x16xf32>
  %o = ds.head_matmul %ql, %kvb {group = 16 : i64, offset = 8 : i64, rows = 8 : i64, transpose}
      : tensor<?x2x16xf32>, tensor<32x16xf32> -> tensor<?x2x8xf32>
  %r = tensor.collapse_shape %o [[0], [1, 2]] : tensor<?x2x8xf32> into tensor<?x16xf32>
  return %r, %c : tensor<?x16xf32>, !ds.latent_cache<num_layers = 1, width = 20, element_type = f32>
}
