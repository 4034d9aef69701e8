// RUN: ds-opt --convert-ds-to-loops="moe-row-loops=true" %s | FileCheck %s --check-prefix=ROWS
// RUN: ds-opt --convert-ds-to-loops %s | FileCheck %s --check-prefix=ELEM

// Tests that with moe-row-loops (the CPU pipeline) the MoE row moves and
// the combine are a parallel loop over rows whose slot index (and, for the
// combine, routing weight) is read once per row, outside an inner loop
// over the columns: that inner loop then holds only unit-stride loads and
// stores, which LLVM vectorises. The combine adds each slot's row into the
// token's zeroed output row, j ascending (the element form's order).
// Without the option (the GPU's form) both are one parallel iteration per
// element, the index read inside it.

// ROWS-LABEL: func.func private @__ds_moe_permute
// The counting sort's last loop writes the slot rows; then the moves.
// ROWS: memref.store %{{.+}}, %arg4[
// ROWS: scf.parallel (%[[S:.+]]) = (%{{.+}}) to (%{{.+}}) step (%{{.+}}) {
// ROWS: %[[T:.+]] = arith.divui %[[S]], %{{.+}} : index
// ROWS: %[[R32:.+]] = memref.load %arg4[%[[S]]] : memref<?xi32>
// ROWS: %[[R:.+]] = arith.index_cast %[[R32]] : i32 to index
// ROWS: scf.for %[[C:.+]] = %{{.+}} to %c32 step %{{.+}} {
// ROWS-NOT: memref.load %arg4
// ROWS: %[[V:.+]] = memref.load %arg0[%[[T]], %[[C]]] : memref<?x32xf32>
// ROWS-NEXT: memref.store %[[V]], %arg2[%[[R]], %[[C]]] : memref<?x32xf32>
// ROWS-NEXT: }
// ROWS-NEXT: scf.reduce

// ROWS-LABEL: func.func private @__ds_moe_combine
// ROWS: scf.parallel (%[[T:.+]]) = (%{{.+}}) to (%{{.+}}) step (%{{.+}}) {
// ROWS: scf.for %[[C0:.+]] = %{{.+}} to %c32 step %{{.+}} {
// ROWS: memref.store %{{.+}}, %arg3[%[[T]], %[[C0]]] : memref<?x32xf32>
// ROWS: scf.for %[[J:.+]] = %{{.+}} to %c2 step %{{.+}} {
// ROWS: %[[R32:.+]] = memref.load %arg1[%{{.+}}] : memref<?xi32>
// ROWS: %[[R:.+]] = arith.index_cast %[[R32]] : i32 to index
// ROWS: %[[W:.+]] = memref.load %arg2[%[[T]], %[[J]]] : memref<?x2xf32>
// ROWS: scf.for %[[C:.+]] = %{{.+}} to %c32 step %{{.+}} {
// ROWS-NEXT: %[[X:.+]] = memref.load %arg0[%[[R]], %[[C]]] : memref<?x32xf32>
// ROWS-NEXT: %[[P:.+]] = arith.mulf %[[W]], %[[X]] : f32
// ROWS-NEXT: %[[O:.+]] = memref.load %arg3[%[[T]], %[[C]]] : memref<?x32xf32>
// ROWS-NEXT: %[[A:.+]] = arith.addf %[[O]], %[[P]] fastmath<reassoc,contract> : f32
// ROWS-NEXT: memref.store %[[A]], %arg3[%[[T]], %[[C]]] : memref<?x32xf32>

// ELEM-LABEL: func.func private @__ds_moe_permute
// ELEM: scf.parallel (%[[S:.+]], %[[C:.+]]) = (%{{.+}}, %{{.+}}) to (%{{.+}}, %c32) step
// ELEM: memref.load %arg4[%[[S]]] : memref<?xi32>
// ELEM-LABEL: func.func private @__ds_moe_combine
// ELEM: scf.parallel (%[[T:.+]], %[[C:.+]]) = (%{{.+}}, %{{.+}}) to (%{{.+}}, %c32) step
// ELEM: scf.for
// ELEM: memref.load %arg1[
// ELEM: memref.store %{{.+}}, %arg3[%[[T]], %[[C]]]
func.func @prefill(%tok: tensor<?xi32>, %pos: tensor<?xi32>,
                   %c: !ds.latent_cache<num_layers = 2, width = 20, element_type = f32>,
                   %x: tensor<?x32xf32>, %logits: tensor<?x8xf32>)
    -> (tensor<?x32xf32>, !ds.latent_cache<num_layers = 2, width = 20, element_type = f32>) {
  %ids, %rw = ds.moe_route %logits {config = #ds.moe_config<num_experts = 8, top_k = 2, n_group = 4,
         topk_group = 2, scoring_func = sigmoid, topk_method = greedy, norm_topk_prob = true,
         routed_scaling_factor = 2.5, norm_rule = v3, intermediate_size = 12, n_shared_experts = 1>}
      : tensor<?x8xf32> -> tensor<?x2xi32>, tensor<?x2xf32>
  %xp, %off, %rows = ds.moe_permute %x, %ids {num_experts = 8 : i64}
      : tensor<?x32xf32>, tensor<?x2xi32> -> tensor<?x32xf32>, tensor<9xi32>, tensor<?xi32>
  %y = ds.moe_combine %xp, %rows, %rw : tensor<?x32xf32>, tensor<?xi32>, tensor<?x2xf32> -> tensor<?x32xf32>
  return %y, %c : tensor<?x32xf32>, !ds.latent_cache<num_layers = 2, width = 20, element_type = f32>
}
