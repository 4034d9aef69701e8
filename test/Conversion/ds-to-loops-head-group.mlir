// RUN: ds-opt --split-input-file --convert-ds-to-loops="cache-decode-calls=1 attention-head-group=0" %s | FileCheck %s
// RUN: ds-opt --split-input-file --convert-ds-to-loops %s | FileCheck %s --check-prefix=ONE
// RUN: not ds-opt --split-input-file --convert-ds-to-loops="attention-head-group=-1" %s 2>&1 | FileCheck %s --check-prefix=BAD

// Tests the absorbed attention kernel with a group of heads per parallel
// iteration (attention-head-group; 0 picks the largest divisor of the head
// count up to min(8, heads / 2): 2 of these 4 heads): the nest runs over
// (token, group), each FP8 cache row is decoded once per group (one
// dsrt_cache_decode_fp8 call and one rope decode, outside the loop over the
// group's heads) and every head then runs latentAttention's per-row step
// from the decoded f32 with its running max and sum on the stack; of the
// step's two exps (the old sum's factor and the row's weight) one has
// argument 0, so one exp of -|score - max| and two selects give both.
// CHECK-LABEL: func.func private @{{__ds_latent_attention_[0-9a-f]+}}
// CHECK-SAME: %[[QL:[^:]+]]: memref<?x4x256xf32>, %{{[^:]+}}: memref<?x4x8xf32>, %[[CACHE:[^:]+]]: memref<2x?x280xi8>, %{{[^:]+}}: memref<?xi32>, %[[OUT:[^:]+]]: memref<?x4x256xf32>,
// CHECK: %[[C2:.+]] = arith.constant 2 : index
// CHECK: scf.parallel (%[[T:.+]], %[[G:.+]]) = ({{.+}}) to (%{{.+}}, %[[C2]])
// CHECK: memref.alloca_scope
// CHECK: %[[MAX:.+]] = memref.alloca() {alignment = 64 : i64} : memref<2xf32>
// CHECK: %[[SUM:.+]] = memref.alloca() {alignment = 64 : i64} : memref<2xf32>
// CHECK: %[[ROW:.+]] = memref.alloca() {alignment = 64 : i64} : memref<256xf32>
// CHECK: %[[ROPE:.+]] = memref.alloca() {alignment = 64 : i64} : memref<8xf32>
// CHECK: %[[H0:.+]] = arith.muli %[[G]], %{{.+}} : index
// CHECK: %[[H1:.+]] = arith.minui
// CHECK: scf.for %{{.+}} = %[[H0]] to %[[H1]]
// CHECK: memref.store %{{.+}}, %[[MAX]]
// CHECK: scf.for %[[S:.+]] = %{{.+}} to %{{.+}} step
// CHECK: memref.extract_aligned_pointer_as_index %[[CACHE]]
// CHECK: call @dsrt_cache_decode_fp8(
// CHECK: memref.store %{{.+}}, %[[ROPE]]
// CHECK-NOT: dsrt_cache_decode_fp8
// CHECK: scf.for %[[H:.+]] = %[[H0]] to %[[H1]]
// CHECK: memref.load %[[QL]][%[[T]], %[[H]], %{{.+}}]
// CHECK: memref.load %[[ROW]]
// CHECK: memref.load %[[ROPE]]
// CHECK: memref.load %[[MAX]]
// CHECK: %[[D:.+]] = arith.subf %[[SCORE:.+]], %[[RM:.+]] : f32
// CHECK: %[[A:.+]] = math.absf %[[D]]
// CHECK: %[[N:.+]] = arith.negf %[[A]]
// CHECK: %[[E:.+]] = math.exp %[[N]]
// CHECK-NOT: math.exp
// CHECK: %[[GREW:.+]] = arith.cmpf ogt, %[[D]]
// CHECK: arith.select %[[GREW]], %[[E]], %{{.+}} : f32
// CHECK: arith.select %[[GREW]], %{{.+}}, %[[E]] : f32
// CHECK: memref.load %[[ROW]]
// CHECK: memref.store %{{.+}}, %[[OUT]][%[[T]], %[[H]], %{{.+}}]
// CHECK: memref.store %{{.+}}, %[[MAX]]
// CHECK: memref.store %{{.+}}, %[[SUM]]
// CHECK: memref.load %[[SUM]]
// CHECK: arith.divf
// CHECK: scf.reduce
// The default (the GPU's form): one (token, head) per iteration.
// ONE-LABEL: func.func private @{{__ds_latent_attention_[0-9a-f]+}}
// ONE: %[[C4:.+]] = arith.constant 4 : index
// ONE: scf.parallel (%{{.+}}, %{{.+}}) = ({{.+}}) to (%{{.+}}, %[[C4]])
// ONE-NOT: memref.alloca
// ONE: memref.get_global @__ds_e4m3_values
// BAD: convert-ds-to-loops: attention-head-group must be 0 (automatic) or positive, got -1
func.func @prefill(%tok: tensor<?xi32>, %pos: tensor<?xi32>,
                   %c: !ds.latent_cache<num_layers = 2, width = 264, element_type = f8E4M3FN, rope_width = 8, scale_group = 128>)
    -> (tensor<?x1024xf32>, !ds.latent_cache<num_layers = 2, width = 264, element_type = f8E4M3FN, rope_width = 8, scale_group = 128>) {
  %t = ds.weight "latent" : tensor<64x256xf32>
  %lat = ds.embedding %t, %tok : tensor<64x256xf32>, tensor<?xi32> -> tensor<?x256xf32>
  %r = ds.weight "rope" : tensor<64x8xf32>
  %kr = ds.embedding %r, %tok : tensor<64x8xf32>, tensor<?xi32> -> tensor<?x8xf32>
  %c1 = ds.cache_write %c, %lat, %kr, %pos {layer = 1 : i64}
      : !ds.latent_cache<num_layers = 2, width = 264, element_type = f8E4M3FN, rope_width = 8, scale_group = 128>, tensor<?x256xf32>, tensor<?x8xf32>, tensor<?xi32>
  %qt = ds.weight "q" : tensor<64x1024xf32>
  %q = ds.embedding %qt, %tok : tensor<64x1024xf32>, tensor<?xi32> -> tensor<?x1024xf32>
  %rt = ds.weight "qr" : tensor<64x32xf32>
  %qr2 = ds.embedding %rt, %tok : tensor<64x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
  %zero = arith.constant 0 : index
  %n = tensor.dim %q, %zero : tensor<?x1024xf32>
  %ql = tensor.expand_shape %q [[0], [1, 2]] output_shape [%n, 4, 256] : tensor<?x1024xf32> into tensor<?x4x256xf32>
  %qr = tensor.expand_shape %qr2 [[0], [1, 2]] output_shape [%n, 4, 8] : tensor<?x32xf32> into tensor<?x4x8xf32>
  %u = ds.latent_attention %ql, %qr, %c1, %pos {layer = 1 : i64, scale = 0.25 : f64}
      : tensor<?x4x256xf32>, tensor<?x4x8xf32>, !ds.latent_cache<num_layers = 2, width = 264, element_type = f8E4M3FN, rope_width = 8, scale_group = 128>, tensor<?xi32> -> tensor<?x4x256xf32>
  %o = tensor.collapse_shape %u [[0], [1, 2]] : tensor<?x4x256xf32> into tensor<?x1024xf32>
  return %o, %c1 : tensor<?x1024xf32>, !ds.latent_cache<num_layers = 2, width = 264, element_type = f8E4M3FN, rope_width = 8, scale_group = 128>
}

// -----

// A bf16 cache's row is widened once per group into the same f32 scratch
// (the heads' dot products then read f32, as for an fp8 row).
// CHECK-LABEL: func.func private @{{__ds_latent_attention_[0-9a-f]+}}
// CHECK-SAME: %[[BCACHE:[^:]+]]: memref<2x?x264xbf16>
// CHECK: %[[BROW:.+]] = memref.alloca() {alignment = 64 : i64} : memref<256xf32>
// CHECK: %[[BROPE:.+]] = memref.alloca() {alignment = 64 : i64} : memref<8xf32>
// CHECK: scf.for
// CHECK: %[[V:.+]] = memref.load %[[BCACHE]]
// CHECK: %[[W:.+]] = arith.extf %[[V]] : bf16 to f32
// CHECK: memref.store %[[W]], %[[BROW]]
// CHECK: memref.store %{{.+}}, %[[BROPE]]
// CHECK: scf.for
// CHECK-NOT: memref.load %[[BCACHE]]
// CHECK: memref.load %[[BROW]]
// CHECK: math.exp
// CHECK-NOT: memref.load %[[BCACHE]]
// CHECK: scf.reduce
func.func @prefill_bf16(%tok: tensor<?xi32>, %pos: tensor<?xi32>,
                   %c: !ds.latent_cache<num_layers = 2, width = 264, element_type = bf16>)
    -> (tensor<?x1024xf32>, !ds.latent_cache<num_layers = 2, width = 264, element_type = bf16>) {
  %t = ds.weight "latent" : tensor<64x256xf32>
  %lat = ds.embedding %t, %tok : tensor<64x256xf32>, tensor<?xi32> -> tensor<?x256xf32>
  %r = ds.weight "rope" : tensor<64x8xf32>
  %kr = ds.embedding %r, %tok : tensor<64x8xf32>, tensor<?xi32> -> tensor<?x8xf32>
  %c1 = ds.cache_write %c, %lat, %kr, %pos {layer = 1 : i64}
      : !ds.latent_cache<num_layers = 2, width = 264, element_type = bf16>, tensor<?x256xf32>, tensor<?x8xf32>, tensor<?xi32>
  %qt = ds.weight "q" : tensor<64x1024xf32>
  %q = ds.embedding %qt, %tok : tensor<64x1024xf32>, tensor<?xi32> -> tensor<?x1024xf32>
  %rt = ds.weight "qr" : tensor<64x32xf32>
  %qr2 = ds.embedding %rt, %tok : tensor<64x32xf32>, tensor<?xi32> -> tensor<?x32xf32>
  %zero = arith.constant 0 : index
  %n = tensor.dim %q, %zero : tensor<?x1024xf32>
  %ql = tensor.expand_shape %q [[0], [1, 2]] output_shape [%n, 4, 256] : tensor<?x1024xf32> into tensor<?x4x256xf32>
  %qr = tensor.expand_shape %qr2 [[0], [1, 2]] output_shape [%n, 4, 8] : tensor<?x32xf32> into tensor<?x4x8xf32>
  %u = ds.latent_attention %ql, %qr, %c1, %pos {layer = 1 : i64, scale = 0.25 : f64}
      : tensor<?x4x256xf32>, tensor<?x4x8xf32>, !ds.latent_cache<num_layers = 2, width = 264, element_type = bf16>, tensor<?xi32> -> tensor<?x4x256xf32>
  %o = tensor.collapse_shape %u [[0], [1, 2]] : tensor<?x4x256xf32> into tensor<?x1024xf32>
  return %o, %c1 : tensor<?x1024xf32>, !ds.latent_cache<num_layers = 2, width = 264, element_type = bf16>
}
