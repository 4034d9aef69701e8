// RUN: ds-opt --split-input-file --ds-plan-activations %s | FileCheck %s

// Three activations of an entry point: %a [T, 16] f32 (64 bytes per token),
// %b [T, 8] f32 (32 per token, 64 aligned) born after %a's last use, and %c
// [4] i32 (16 bytes, 64 aligned) alive across both. %b reuses %a's slot;
// %c gets its own: 64 bytes per token + 64. One scratch buffer from the
// runtime, views at fixed offsets, no allocation or deallocation left.

// CHECK-LABEL: func.func @decode
// CHECK-SAME: ds.activation_bytes = array<i64: 64, 64>
// CHECK: %[[T:.+]] = memref.dim %arg1, %c0
// CHECK: %[[PT:.+]] = arith.muli %[[T]], %c64
// CHECK: %[[TOTAL:.+]] = arith.addi %[[PT]], %c64
// CHECK: %[[BYTES:.+]] = arith.index_cast %[[TOTAL]] : index to i64
// CHECK: %[[S:.+]] = call @dsrt_scratch(%arg0, %[[BYTES]]) : (!llvm.ptr, i64) -> memref<?xi8>
// %a at offset 0*T + 0, %c at 64*T + 0, %b back at 0*T + 0.
// CHECK: arith.muli %[[T]], %c0
// CHECK: %[[A:.+]] = memref.view %[[S]][%{{.+}}][%{{.+}}] : memref<?xi8> to memref<?x16xf32>
// CHECK: arith.muli %[[T]], %c64
// CHECK: memref.view %[[S]][%{{.+}}][] : memref<?xi8> to memref<4xi32>
// CHECK: call @use16(%[[A]])
// CHECK: arith.muli %[[T]], %c0
// CHECK: memref.view %[[S]][%{{.+}}][%{{.+}}] : memref<?xi8> to memref<?x8xf32>
// CHECK-NOT: memref.alloc
// CHECK-NOT: memref.dealloc
// CHECK: return
func.func private @use16(memref<?x16xf32>)
func.func private @use8(memref<?x8xf32>, memref<4xi32>)
func.func @decode(%ctx: !llvm.ptr, %tok: memref<?xi32>, %pos: memref<?xi32>,
                  %cache: memref<1x?x8xf32>, %out: memref<?x4xf32>) attributes {ds.entry_point} {
  %c0 = arith.constant 0 : index
  %t = memref.dim %tok, %c0 : memref<?xi32>
  %a = memref.alloc(%t) : memref<?x16xf32>
  %c = memref.alloc() : memref<4xi32>
  call @use16(%a) : (memref<?x16xf32>) -> ()
  %ta = memref.dim %a, %c0 : memref<?x16xf32>
  %b = memref.alloc(%ta) : memref<?x8xf32>
  call @use8(%b, %c) : (memref<?x8xf32>, memref<4xi32>) -> ()
  memref.dealloc %a : memref<?x16xf32>
  memref.dealloc %b : memref<?x8xf32>
  memref.dealloc %c : memref<4xi32>
  return
}

// -----

// A size the plan cannot express in the token count keeps its allocation.
// CHECK-LABEL: func.func @prefill
// CHECK-SAME: ds.activation_bytes = "unplanned"
// CHECK: memref.alloc(%{{.+}}) : memref<?xf32>
// CHECK-NOT: dsrt_scratch
func.func @prefill(%ctx: !llvm.ptr, %tok: memref<?xi32>, %pos: memref<?xi32>,
                   %cache: memref<1x?x8xf32>, %out: memref<?x4xf32>) attributes {ds.entry_point} {
  %c0 = arith.constant 0 : index
  %first = memref.load %pos[%c0] : memref<?xi32>
  %n = arith.index_cast %first : i32 to index
  %a = memref.alloc(%n) : memref<?xf32>
  memref.dealloc %a : memref<?xf32>
  return
}

// -----

// A large buffer born late (the logits of a decode step) when two slots are
// free: %a (64 bytes) and %b (1024) overlap, so they take two slots; %d
// (2048) comes after both. Growing %b's slot costs 1024 more, growing %a's
// (the first free one) 1984: the plan takes the cheaper, 64 + 2048 bytes.
// CHECK-LABEL: {{^}}module
// CHECK-LABEL: func.func @late_logits
// CHECK-SAME: ds.activation_bytes = array<i64: 0, 2112>
func.func private @use_a(memref<16xf32>)
func.func private @use_ab(memref<16xf32>, memref<256xf32>)
func.func private @use_d(memref<512xf32>)
func.func @late_logits(%ctx: !llvm.ptr, %tok: memref<?xi32>, %pos: memref<?xi32>,
                       %cache: memref<1x?x8xf32>, %out: memref<?x4xf32>) attributes {ds.entry_point} {
  %a = memref.alloc() : memref<16xf32>
  call @use_a(%a) : (memref<16xf32>) -> ()
  %b = memref.alloc() : memref<256xf32>
  call @use_ab(%a, %b) : (memref<16xf32>, memref<256xf32>) -> ()
  %d = memref.alloc() : memref<512xf32>
  call @use_d(%d) : (memref<512xf32>) -> ()
  memref.dealloc %a : memref<16xf32>
  memref.dealloc %b : memref<256xf32>
  memref.dealloc %d : memref<512xf32>
  return
}
