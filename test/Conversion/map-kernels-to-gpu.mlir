// RUN: ds-opt --split-input-file --ds-map-kernels-to-gpu %s | FileCheck %s

// A parallel nest becomes one launch: the iteration space (2 x n) is
// linearised over blocks of 256 threads, each thread recovers its indices
// (last index fastest, so neighbouring threads touch neighbouring
// elements), the last block is guarded, and an empty space launches nothing.
// Sequential code runs on one thread; a scalar the host needs comes back
// through a device box and gpu.memcpy. Buffers are device allocations.

// CHECK: module attributes {gpu.container_module}
// CHECK-LABEL: func.func private @kernel(
// CHECK-SAME: %[[X:.+]]: memref<2x?xf32>, %[[Y:.+]]: memref<2x?xf32>, %[[P:.+]]: memref<?xi32>)
// CHECK: %[[N:.+]] = memref.dim %[[X]], %c1
// CHECK: %[[SPAN:.+]] = arith.subi %[[N]], %c0 : index
// CHECK: %[[TRIP:.+]] = arith.ceildivui %[[SPAN]], %c1 : index
// CHECK: %[[TOTAL:.+]] = arith.muli %{{.+}}, %[[TRIP]] : index
// CHECK: %[[ANY:.+]] = arith.cmpi ugt, %[[TOTAL]], %c0
// CHECK: scf.if %[[ANY]] {
// CHECK:   %[[GRID:.+]] = arith.ceildivui %[[TOTAL]], %c256
// CHECK:   gpu.launch blocks(%[[BX:.+]], %{{.+}}, %{{.+}}) in (%{{.+}} = %[[GRID]], %{{.+}} = %c1{{.*}}, %{{.+}} = %c1{{.*}}) threads(%[[TX:.+]], %{{.+}}, %{{.+}}) in (%{{.+}} = %c256{{.*}}, %{{.+}} = %c1{{.*}}, %{{.+}} = %c1{{.*}})
// CHECK:     %[[ID0:.+]] = arith.muli %[[BX]], %c256
// CHECK:     %[[ID:.+]] = arith.addi %[[ID0]], %[[TX]]
// CHECK:     %[[IN:.+]] = arith.cmpi ult, %[[ID]], %[[TOTAL]]
// CHECK:     scf.if %[[IN]] {
// CHECK:       arith.remui %[[ID]],
// CHECK:       arith.divui %[[ID]],
// CHECK:       memref.load %[[X]]
// CHECK:       memref.store %{{.+}}, %[[Y]]
// CHECK:     gpu.terminator
// The sequential bound: one thread, result boxed and copied back.
// CHECK: %[[T0:.+]] = gpu.wait async
// CHECK: %[[BOX:.+]], %[[T1:.+]] = gpu.alloc async [%[[T0]]] () : memref<1xindex>
// CHECK: gpu.wait [%[[T1]]]
// CHECK: gpu.launch blocks({{.*}}) in ({{.*}} = %c1{{.*}}, {{.*}} = %c1{{.*}}, {{.*}} = %c1{{.*}}) threads({{.*}}) in ({{.*}} = %c1{{.*}}, {{.*}} = %c1{{.*}}, {{.*}} = %c1{{.*}})
// CHECK:   scf.for
// CHECK:     memref.load %[[P]]
// CHECK:   memref.store %{{.+}}, %[[BOX]]
// CHECK: %[[HOST:.+]] = memref.alloca() : memref<1xindex>
// CHECK: gpu.memcpy async [%{{.+}}] %[[HOST]], %[[BOX]]
// CHECK: %[[ROWS:.+]] = memref.load %[[HOST]][%c0
// CHECK: gpu.dealloc async
// CHECK: %{{.+}}, %{{.+}} = gpu.alloc async [%{{.+}}] (%[[ROWS]]) : memref<?xf32>
// CHECK-NOT: memref.alloc(
// CHECK: return
func.func private @kernel(%x: memref<2x?xf32>, %y: memref<2x?xf32>, %p: memref<?xi32>) attributes {ds.kernel = "test"} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %n = memref.dim %x, %c1 : memref<2x?xf32>
  scf.parallel (%i, %j) = (%c0, %c0) to (%c2, %n) step (%c1, %c1) {
    %v = memref.load %x[%i, %j] : memref<2x?xf32>
    memref.store %v, %y[%i, %j] : memref<2x?xf32>
    scf.reduce
  }
  %len = memref.dim %p, %c0 : memref<?xi32>
  %rows = scf.for %t = %c0 to %len step %c1 iter_args(%acc = %c0) -> (index) {
    %q = memref.load %p[%t] : memref<?xi32>
    %qi = arith.index_cast %q : i32 to index
    %m = arith.maxui %acc, %qi : index
    scf.yield %m : index
  }
  %buf = memref.alloc(%rows) : memref<?xf32>
  memref.dealloc %buf : memref<?xf32>
  return
}

// -----

// Entry points: their loop nests (the copy into the logits) are launched
// too, and their buffers are device allocations; runtime calls stay calls.
// CHECK-LABEL: func.func @decode
// CHECK: gpu.alloc async
// CHECK: call @dsrt_linear_f32
// CHECK: gpu.launch
// CHECK: gpu.dealloc async
func.func private @dsrt_linear_f32(memref<?x4xf32>, memref<?x4xf32>)
func.func @decode(%out: memref<?x4xf32>) attributes {ds.entry_point} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %n = memref.dim %out, %c0 : memref<?x4xf32>
  %t = memref.alloc(%n) : memref<?x4xf32>
  func.call @dsrt_linear_f32(%out, %t) : (memref<?x4xf32>, memref<?x4xf32>) -> ()
  scf.parallel (%i, %j) = (%c0, %c0) to (%n, %c4) step (%c1, %c1) {
    %v = memref.load %t[%i, %j] : memref<?x4xf32>
    memref.store %v, %out[%i, %j] : memref<?x4xf32>
    scf.reduce
  }
  memref.dealloc %t : memref<?x4xf32>
  return
}

// -----

// A constant table read inside a launch is fetched inside the launch (the
// host get_global would hand the device a host pointer).
// CHECK-LABEL: func.func private @table
// CHECK: gpu.launch
// CHECK-NEXT: %[[G:.+]] = memref.get_global @freqs
// CHECK: memref.load %[[G]]
memref.global "private" constant @freqs : memref<2xf64> = dense<[1.0, 0.5]>
func.func private @table(%out: memref<2xf64>) attributes {ds.kernel = "t"} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c2 = arith.constant 2 : index
  %g = memref.get_global @freqs : memref<2xf64>
  scf.parallel (%i) = (%c0) to (%c2) step (%c1) {
    %v = memref.load %g[%i] : memref<2xf64>
    memref.store %v, %out[%i] : memref<2xf64>
    scf.reduce
  }
  return
}

// -----

// A loop without results around parallel nests (the naive attention's loop
// over context chunks) stays on the host: one launch per nest and step.
// CHECK-LABEL: func.func private @chunks
// CHECK: scf.for %{{.+}} = %c0 to %{{.+}} step %c4 {
// CHECK:   gpu.launch
// CHECK:   gpu.terminator
// CHECK: }
// CHECK: return
func.func private @chunks(%x: memref<?xf32>) attributes {ds.kernel = "t"} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c4 = arith.constant 4 : index
  %n = memref.dim %x, %c0 : memref<?xf32>
  scf.for %c = %c0 to %n step %c4 {
    scf.parallel (%i) = (%c0) to (%c4) step (%c1) {
      %j = arith.addi %c, %i : index
      %v = memref.load %x[%j] : memref<?xf32>
      %w = arith.addf %v, %v : f32
      memref.store %w, %x[%j] : memref<?xf32>
      scf.reduce
    }
  }
  return
}

// -----

// Tests that the latent-cache write (one parallel iteration per token, each
// writing its row column by column) becomes one launch per column loop over
// token x column, the column fastest: consecutive threads write consecutive
// cache elements. The token's cache position is loaded by every thread;
// the rope loop's bound, a constant inside the token loop, moves out.
// CHECK-LABEL: func.func private @cache_write
// CHECK-SAME: %[[CACHE:[a-z0-9]+]]: memref<3x?x20xbf16>, %[[LAT:[a-z0-9]+]]: memref<?x16xf32>, %[[ROPE:[a-z0-9]+]]: memref<?x4xf32>, %[[POS:[a-z0-9]+]]: memref<?xi32>
// CHECK: %[[SPAN:.+]] = arith.subi %c16, %c0
// CHECK: %[[COLS:.+]] = arith.ceildivui %[[SPAN]], %c1
// CHECK: gpu.launch
// CHECK:   %[[COL:.+]] = arith.remui %[[ID:.+]], %[[COLS]]
// CHECK:   %[[TOK:.+]] = arith.divui %[[ID]], %[[COLS]]
// CHECK:   %[[CM:.+]] = arith.muli %[[COL]], %c1
// CHECK:   %[[C:.+]] = arith.addi %c0, %[[CM]]
// CHECK:   %[[TM:.+]] = arith.muli %[[TOK]], %c1
// CHECK:   %[[T:.+]] = arith.addi %c0, %[[TM]]
// CHECK:   %[[P:.+]] = memref.load %[[POS]][%[[T]]]
// CHECK:   %[[ROW:.+]] = arith.index_cast %[[P]]
// CHECK:   %[[V:.+]] = memref.load %[[LAT]][%[[T]], %[[C]]]
// CHECK:   %[[H:.+]] = arith.truncf %[[V]]
// CHECK:   memref.store %[[H]], %[[CACHE]][%{{.+}}, %[[ROW]], %[[C]]]
// CHECK:   gpu.terminator
// CHECK: %[[RSPAN:.+]] = arith.subi %c4, %c0
// CHECK: %[[RCOLS:.+]] = arith.ceildivui %[[RSPAN]], %c1
// CHECK: gpu.launch
// CHECK:   arith.remui %{{.+}}, %[[RCOLS]]
// CHECK:   memref.load %[[POS]]
// CHECK:   memref.load %[[ROPE]]
// CHECK:   memref.store %{{.+}}, %[[CACHE]]
// CHECK:   gpu.terminator
// CHECK-NOT: gpu.launch
// CHECK: return
func.func private @cache_write(%cache: memref<3x?x20xbf16>, %lat: memref<?x16xf32>, %rope: memref<?x4xf32>, %pos: memref<?xi32>, %layer: index) attributes {ds.kernel = "cache_write"} {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %c16 = arith.constant 16 : index
  %n = memref.dim %lat, %c0 : memref<?x16xf32>
  scf.parallel (%t) = (%c0) to (%n) step (%c1) {
    %p = memref.load %pos[%t] : memref<?xi32>
    %row = arith.index_cast %p : i32 to index
    scf.for %c = %c0 to %c16 step %c1 {
      %v = memref.load %lat[%t, %c] : memref<?x16xf32>
      %h = arith.truncf %v : f32 to bf16
      memref.store %h, %cache[%layer, %row, %c] : memref<3x?x20xbf16>
    }
    %c4 = arith.constant 4 : index
    scf.for %c = %c0 to %c4 step %c1 {
      %col = arith.addi %c16, %c : index
      %v = memref.load %rope[%t, %c] : memref<?x4xf32>
      %h = arith.truncf %v : f32 to bf16
      memref.store %h, %cache[%layer, %row, %col] : memref<3x?x20xbf16>
    }
    scf.reduce
  }
  return
}
