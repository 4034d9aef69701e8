// RUN: ds-opt --split-input-file --ds-map-kernels-to-gpu %s | FileCheck %s
// RUN: ds-opt --split-input-file --ds-map-kernels-to-gpu="split-kv=false" %s | FileCheck %s --check-prefix=GENERIC

// Tests that @ragged_step's attention over the paged cache (bf16 pages of
// 64 rows x 24 columns: 16 latent + 8 rope; 2 heads) becomes the paged
// split-KV pair: blocks over tiles of one sequence's (token, head) query
// rows (fold 4: two tokens of 2 heads share every cache row read), found
// by a scan of query_start; each sequence's split count from its last
// token's position; rows addressed through the block table (page =
// block_tables[seq, r / 64], slot r % 64) and read with 16-byte loads
// inside the page; a causal mask per query row; warp shuffles, a shared
// memory merge, and the log-sum-exp combine.

// CHECK-LABEL: func.func private @__ds_paged_latent_attention_bf16
// CHECK-SAME: attributes {ds.fold = 4 : i64, {{.*}}ds.split_kv}
// CHECK: %[[T:.+]] = memref.dim %arg0, %c0{{[_0-9]*}}
// CHECK: %[[STARTS:.+]] = memref.dim %arg4, %c0{{[_0-9]*}}
// CHECK: %[[S:.+]] = arith.select %{{.+}}, %{{.+}}, %c0{{[_0-9]*}} : index
// CHECK: %[[ROWS:.+]] = arith.muli %[[T]], %c2{{[_0-9]*}} : index
// CHECK: %[[FOLDED:.+]] = arith.ceildivui %[[ROWS]], %c4{{[_0-9]*}} : index
// CHECK: %[[TILES:.+]] = arith.addi %[[FOLDED]], %[[S]] : index
// CHECK: call @dsrt_gpu_context_tokens
// CHECK: gpu.launch blocks(%[[BX:.+]], %[[BY:.+]], %{{.+}}) in ({{.*}} = %[[TILES]], {{.*}} = %[[SPLITS:[^,]+]], {{.*}}) threads(%[[TID:[^,]+]], {{.*}}) in ({{.*}} = %c128{{.*}}) workgroup(%{{.+}} : memref<16xf32, #gpu.address_space<workgroup>>, %{{.+}} : memref<16xf32, #gpu.address_space<workgroup>>, %[[SACC:.+]] : memref<256xf32, #gpu.address_space<workgroup>>)
// The block's (sequence, tile) from query_start.
// CHECK: %[[FOUND:.+]]:3 = scf.for {{.*}} iter_args
// CHECK: memref.load %arg4
// CHECK: arith.cmpi ult, %[[BX]]
// CHECK: arith.cmpi ult, %[[FOUND]]#1, %[[S]]
// The sequence's own split count: its last position + 1, in slices of 256.
// CHECK: %[[LASTPOS:.+]] = memref.load %arg3[%{{.+}}] : memref<?xi32>
// CHECK: %[[LAST:.+]] = arith.index_cast %[[LASTPOS]]
// CHECK: %[[CTX:.+]] = arith.addi %[[LAST]], %c1{{[_0-9]*}}
// CHECK: arith.ceildivui %[[CTX]], %c256{{[_0-9]*}}
// CHECK: %[[NSPLIT:.+]] = arith.minui %[[SPLITS]],
// CHECK: arith.cmpi ult, %[[BY]], %[[NSPLIT]]
// Each of the 4 query rows' causal end.
// CHECK-COUNT-4: %[[END:.+]] = arith.select %{{.+}}, %{{.+}}, %c0{{.*}} : index
// The query rows in registers, 16-byte loads.
// CHECK: vector.load %arg0[{{.*}}] {alignment = 16 : i64} : memref<?x2x16xf32>, vector<8xf32>
// CHECK: vector.load %arg1[{{.*}}] {alignment = 16 : i64} : memref<?x2x8xf32>, vector<8xf32>
// The warp's rows, every 4th; per row its page through the block table.
// CHECK: scf.for %[[R:.+]] = %{{.+}} to %{{.+}} step %c4{{.*}} iter_args({{.*}}) -> (f32, f32, vector<8xf32>, f32, f32, vector<8xf32>, f32, f32, vector<8xf32>, f32, f32, vector<8xf32>)
// CHECK: %[[ENTRY:.+]] = arith.divui %[[R]], %c64{{[_0-9]*}}
// CHECK: %[[PAGE32:.+]] = memref.load %arg5[%[[FOUND]]#1, %[[ENTRY]]] : memref<?x?xi32>
// CHECK: %[[PAGE:.+]] = arith.index_cast %[[PAGE32]] : i32 to index
// CHECK: %[[SLOT:.+]] = arith.remui %[[R]], %c64{{[_0-9]*}}
// CHECK: vector.load %arg2[%arg7, %[[PAGE]], %[[SLOT]], %{{.+}}] {alignment = 16 : i64} : memref<3x?x64x24xbf16>, vector<8xbf16>
// CHECK: arith.extf %{{.+}} : vector<8xbf16> to vector<8xf32>
// One dot product, warp reduction and causal mask per query row.
// CHECK-COUNT-4: gpu.shuffle  xor %{{.+}}, %c16_i32{{[_0-9]*}}
// CHECK-NOT: vector.load %arg2
// CHECK: vector.store %{{.+}}, %[[SACC]]
// CHECK: gpu.barrier
// CHECK: memref.store %{{.+}}, %arg6
// CHECK: gpu.terminator
// The combine: one block per (token, head), only for split sequences.
// CHECK: %[[TH:.+]] = arith.muli %[[T]], %c2{{[_0-9]*}} : index
// CHECK: gpu.launch blocks({{.*}}) in ({{.*}} = %[[TH]], {{.*}} = %c1{{.*}}, {{.*}}) threads({{.*}}) in ({{.*}} = %c128{{[_0-9]*}}
// CHECK: memref.store %{{.+}}, %arg6
// CHECK: gpu.dealloc async
// GENERIC-LABEL: func.func private @__ds_paged_latent_attention_bf16
// GENERIC-NOT: ds.split_kv
func.func private @__ds_paged_latent_attention_bf16(%ql: memref<?x2x16xf32>, %qr: memref<?x2x8xf32>, %cache: memref<3x?x64x24xbf16>, %pos: memref<?xi32>, %qs: memref<?xi32>, %bt: memref<?x?xi32>, %out: memref<?x2x16xf32>, %layer: index) attributes {ds.kernel = "paged_latent_attention", ds.scale = 0.25 : f64} {
  return
}

// -----

// Tests that the fold follows the register budget: DeepSeek-V3's rows (512
// + 64 bf16 columns, 3 vectors per lane) fold 2 query rows, f32 rows of
// 4 + 4 columns 4.

// CHECK-LABEL: func.func private @__ds_paged_latent_attention_v3
// CHECK-SAME: ds.fold = 2 : i64
// CHECK: workgroup(%{{.+}} : memref<8xf32, #gpu.address_space<workgroup>>, %{{.+}} : memref<8xf32, #gpu.address_space<workgroup>>, %{{.+}} : memref<4096xf32, #gpu.address_space<workgroup>>)
// CHECK: vector.load %arg2[%arg7, %{{.+}}, %{{.+}}, %{{.+}}] {alignment = 16 : i64} : memref<61x?x64x576xbf16>, vector<8xbf16>
func.func private @__ds_paged_latent_attention_v3(%ql: memref<?x128x512xf32>, %qr: memref<?x128x64xf32>, %cache: memref<61x?x64x576xbf16>, %pos: memref<?xi32>, %qs: memref<?xi32>, %bt: memref<?x?xi32>, %out: memref<?x128x512xf32>, %layer: index) attributes {ds.kernel = "paged_latent_attention", ds.scale = 0.25 : f64} {
  return
}

// CHECK-LABEL: func.func private @__ds_paged_latent_attention_f32
// CHECK-SAME: ds.fold = 4 : i64
// CHECK: vector.load %arg2[%arg7, %{{.+}}, %{{.+}}, %{{.+}}] {alignment = 16 : i64} : memref<2x?x64x8xf32>, vector<4xf32>
func.func private @__ds_paged_latent_attention_f32(%ql: memref<?x1x4xf32>, %qr: memref<?x1x4xf32>, %cache: memref<2x?x64x8xf32>, %pos: memref<?xi32>, %qs: memref<?xi32>, %bt: memref<?x?xi32>, %out: memref<?x1x4xf32>, %layer: index) attributes {ds.kernel = "paged_latent_attention", ds.scale = 0.25 : f64} {
  return
}

// -----

// Tests that widths without 16-byte vectors (latent 6) keep the generic
// mapping of the loop nest.

// CHECK-LABEL: func.func private @__ds_paged_latent_attention_odd
// CHECK-NOT: ds.split_kv
// CHECK: gpu.launch
func.func private @__ds_paged_latent_attention_odd(%ql: memref<?x2x6xf32>, %qr: memref<?x2x2xf32>, %cache: memref<3x?x64x8xf32>, %pos: memref<?xi32>, %qs: memref<?xi32>, %bt: memref<?x?xi32>, %out: memref<?x2x6xf32>, %layer: index) attributes {ds.kernel = "paged_latent_attention", ds.scale = 0.25 : f64} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %c6 = arith.constant 6 : index
  %t = memref.dim %ql, %c0 : memref<?x2x6xf32>
  scf.parallel (%i, %h, %c) = (%c0, %c0, %c0) to (%t, %c2, %c6) step (%c1, %c1, %c1) {
    %v = memref.load %ql[%i, %h, %c] : memref<?x2x6xf32>
    memref.store %v, %out[%i, %h, %c] : memref<?x2x6xf32>
    scf.reduce
  }
  return
}

// -----

// Tests that the paged cache write is one block per token: its sequence
// from query_start, its page through the block table once, then the
// columns by consecutive threads (latent, then rope), rounded to bf16.

// CHECK-LABEL: func.func private @__ds_paged_cache_write_bf16
// CHECK: %[[T:.+]] = memref.dim %arg1, %c0{{[_0-9]*}}
// CHECK: gpu.launch blocks(%[[BX:.+]], %{{.+}}, %{{.+}}) in ({{.*}} = %[[T]], {{.*}}) threads(%[[TID:[^,]+]], {{.*}}) in ({{.*}} = %c128{{[_0-9]*}}
// CHECK: %[[SEQ:.+]] = scf.for {{.*}} iter_args
// CHECK: memref.load %arg4
// CHECK: %[[POS32:.+]] = memref.load %arg3[%[[BX]]]
// CHECK: %[[POS:.+]] = arith.index_cast %[[POS32]]
// CHECK: %[[ENTRY:.+]] = arith.divui %[[POS]], %c64{{[_0-9]*}}
// CHECK: %[[PAGE32:.+]] = memref.load %arg5[%[[SEQ]], %[[ENTRY]]]
// CHECK: %[[PAGE:.+]] = arith.index_cast %[[PAGE32]]
// CHECK: %[[SLOT:.+]] = arith.remui %[[POS]], %c64{{[_0-9]*}}
// CHECK: scf.for %[[C:.+]] = %[[TID]] to %c24{{.*}} step %c128{{[_0-9]*}}
// CHECK: memref.load %arg1[%[[BX]], %[[C]]]
// CHECK: memref.load %arg2[%[[BX]], %{{.+}}]
// CHECK: %[[V:.+]] = arith.truncf %{{.+}} : f32 to bf16
// CHECK: memref.store %[[V]], %arg0[%arg6, %[[PAGE]], %[[SLOT]], %[[C]]] : memref<3x?x64x24xbf16>
func.func private @__ds_paged_cache_write_bf16(%cache: memref<3x?x64x24xbf16>, %latent: memref<?x16xf32>, %rope: memref<?x8xf32>, %pos: memref<?xi32>, %qs: memref<?xi32>, %bt: memref<?x?xi32>, %layer: index) attributes {ds.kernel = "paged_cache_write"} {
  return
}
