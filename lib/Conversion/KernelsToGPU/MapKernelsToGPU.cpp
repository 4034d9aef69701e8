//===- MapKernelsToGPU.cpp - ds-map-kernels-to-gpu -------------------------===//
//
// The CPU and CUDA paths share convert-ds-to-loops: every kernel is a
// private function of scf.parallel / scf.for nests over buffers. This pass
// adds the mapping: each parallel nest becomes one launch with one
// iteration per thread; the little sequential code left runs on one GPU
// thread, so no kernel ever reads device memory from the host. Buffers
// become device allocations.
//
//===----------------------------------------------------------------------===//
#include "ds/Conversion/Passes.h"
#include "RoutingKernel.h"
#include "PagedAttention.h"
#include "RowNormKernel.h"
#include "SplitKVAttention.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/Support/Debug.h"

#define DEBUG_TYPE "ds-map-kernels-to-gpu"

namespace mlir::ds {
#define GEN_PASS_DEF_DSMAPKERNELSTOGPUPASS
#include "ds/Conversion/Passes.h.inc"
} // namespace mlir::ds

using namespace mlir;
using namespace mlir::ds;

namespace {

/// True when `op` (or anything nested in it) reads or writes a buffer's
/// contents. Descriptor arithmetic (memref.dim, casts, views) does not.
bool touchesMemory(Operation *op) {
  bool touches = false;
  op->walk([&](Operation *inner) {
    if (isa<memref::LoadOp, memref::StoreOp, memref::CopyOp>(inner))
      touches = true;
  });
  return touches;
}

Value cIdx(OpBuilder &b, Location loc, int64_t v) {
  return arith::ConstantIndexOp::create(b, loc, v);
}

/// Buffer operations are built in their async form on a stream of their
/// own (`gpu.wait async` ... `gpu.wait`): only that form lowers to the
/// mgpu* calls. The runtime hands out one stream per session, so the
/// order of launches, GEMMs and copies is the program order.
Value waitAsync(OpBuilder &b, Location loc) {
  return gpu::WaitOp::create(b, loc, b.getType<gpu::AsyncTokenType>(),
                             ValueRange{})
      .getAsyncToken();
}
void waitFor(OpBuilder &b, Location loc, Value token) {
  gpu::WaitOp::create(b, loc, Type(), ValueRange{token});
}

Value deviceAlloc(OpBuilder &b, Location loc, MemRefType type,
                  ValueRange dynSizes) {
  auto a = gpu::AllocOp::create(b, loc, type,
                                b.getType<gpu::AsyncTokenType>(),
                                ValueRange{waitAsync(b, loc)}, dynSizes,
                                ValueRange{});
  waitFor(b, loc, a.getAsyncToken());
  return a.getMemref();
}

void deviceFree(OpBuilder &b, Location loc, Value m) {
  auto d = gpu::DeallocOp::create(b, loc, b.getType<gpu::AsyncTokenType>(),
                                  ValueRange{waitAsync(b, loc)}, m);
  waitFor(b, loc, d.getAsyncToken());
}

/// A launch of `grid` x `block` threads (x dimension only); the body is
/// built by `body` at the start of the launch region, before the
/// terminator.
void launch(OpBuilder &b, Location loc, Value grid, Value block,
            function_ref<void(OpBuilder &, gpu::LaunchOp)> body) {
  Value one = cIdx(b, loc, 1);
  auto l = gpu::LaunchOp::create(b, loc, grid, one, one, block, one, one);
  OpBuilder::InsertionGuard g(b);
  Block *entry = &l.getBody().front();
  b.setInsertionPointToStart(entry);
  body(b, l);
  b.setInsertionPointToEnd(entry);
  gpu::TerminatorOp::create(b, loc);
}

/// scf.parallel (i0..in) -> a launch over prod(trip counts) threads, each
/// recovering its indices from its linear id.
LogicalResult mapParallel(scf::ParallelOp par, int64_t blockSize) {
  if (par.getNumResults() != 0)
    return par.emitError() << "ds-map-kernels-to-gpu: a parallel loop with "
                              "reductions cannot be mapped";
  OpBuilder b(par);
  Location loc = par.getLoc();
  SmallVector<Value> trips;
  Value total = cIdx(b, loc, 1);
  for (auto [lb, ub, step] : llvm::zip(par.getLowerBound(),
                                       par.getUpperBound(), par.getStep())) {
    Value span = arith::SubIOp::create(b, loc, ub, lb);
    Value trip = arith::CeilDivUIOp::create(b, loc, span, step);
    trips.push_back(trip);
    total = arith::MulIOp::create(b, loc, total, trip);
  }
  Value bs = cIdx(b, loc, blockSize);
  Value zero = cIdx(b, loc, 0);
  // CUDA rejects an empty grid: a zero-token chunk launches nothing.
  Value any = arith::CmpIOp::create(b, loc, arith::CmpIPredicate::ugt, total,
                                    zero);
  auto guard = scf::IfOp::create(b, loc, any, /*withElse=*/false);
  b.setInsertionPointToStart(&guard.getThenRegion().front());
  Value grid = arith::CeilDivUIOp::create(b, loc, total, bs);
  launch(b, loc, grid, bs, [&](OpBuilder &kb, gpu::LaunchOp l) {
    Value id = arith::AddIOp::create(
        kb, loc, arith::MulIOp::create(kb, loc, l.getBlockIds().x, bs),
        l.getThreadIds().x);
    Value inside = arith::CmpIOp::create(kb, loc, arith::CmpIPredicate::ult,
                                         id, total);
    auto body = scf::IfOp::create(kb, loc, inside, /*withElse=*/false);
    kb.setInsertionPointToStart(&body.getThenRegion().front());
    // Row-major delinearisation: the last loop index varies fastest, so
    // neighbouring threads touch neighbouring elements (coalesced).
    IRMapping map;
    Value rest = id;
    for (int64_t d = int64_t(trips.size()) - 1; d >= 0; --d) {
      Value i = d == 0 ? rest
                       : arith::RemUIOp::create(kb, loc, rest, trips[d]);
      if (d > 0)
        rest = arith::DivUIOp::create(kb, loc, rest, trips[d]);
      Value iv = arith::AddIOp::create(
          kb, loc, par.getLowerBound()[d],
          arith::MulIOp::create(kb, loc, i, par.getStep()[d]));
      map.map(par.getInductionVars()[d], iv);
    }
    for (Operation &op : par.getBody()->without_terminator())
      kb.clone(op, map);
  });
  par.erase();
  return success();
}

/// The latent-cache write is one parallel iteration per token, each
/// writing its row column by column (scf.for over the latent, then over the
/// rope part): mapped as is, one thread writes a 576-wide row alone and
/// neighbouring threads write 2 KiB apart. Each inner loop becomes a
/// parallel dimension of its own nest instead (token x column, the column
/// fastest), so consecutive threads write consecutive elements. Legal for
/// this kernel: every (token, column) is its own cache element (SEMANTICS:
/// a step's positions are distinct) and the columns are independent.
/// Returns the new nests (the original is erased) or failure when the body
/// is not that shape (then the generic mapping runs).
FailureOr<SmallVector<scf::ParallelOp>> splitColumns(scf::ParallelOp par) {
  if (par.getNumLoops() != 1 || par.getNumResults() != 0)
    return failure();
  SmallVector<Operation *> prefix;
  SmallVector<scf::ForOp> columns;
  for (Operation &op : par.getBody()->without_terminator()) {
    if (auto loop = dyn_cast<scf::ForOp>(op)) {
      if (loop.getNumResults() != 0 ||
          !loop.getBody()->getOps<scf::ForOp>().empty())
        return failure();
      columns.push_back(loop);
      continue;
    }
    // Per-token values (its cache position) may come before the loops;
    // between them only pure code (constants, index arithmetic), which
    // cannot observe what a loop wrote.
    if (op.getNumRegions() != 0 || isa<memref::StoreOp>(op) ||
        (!columns.empty() && !isPure(&op)))
      return failure();
    prefix.push_back(&op);
  }
  if (columns.empty())
    return failure();
  // The columns' bounds become the nests' bounds, outside the token loop:
  // values from outside, or constants defined in the body (copied out).
  auto outside = [&](Value v) {
    Operation *def = v.getDefiningOp();
    return !par->isAncestor(def ? def : v.getParentBlock()->getParentOp()) ||
           (def && def->hasTrait<OpTrait::ConstantLike>());
  };
  for (scf::ForOp loop : columns)
    if (!outside(loop.getLowerBound()) || !outside(loop.getUpperBound()) ||
        !outside(loop.getStep()))
      return failure();
  SmallVector<scf::ParallelOp> nests;
  OpBuilder b(par);
  Location loc = par.getLoc();
  auto hoisted = [&](Value v) {
    Operation *def = v.getDefiningOp();
    return def && par->isAncestor(def) ? b.clone(*def)->getResult(0) : v;
  };
  for (scf::ForOp loop : columns) {
    auto nest = scf::ParallelOp::create(
        b, loc,
        ValueRange{par.getLowerBound()[0], hoisted(loop.getLowerBound())},
        ValueRange{par.getUpperBound()[0], hoisted(loop.getUpperBound())},
        ValueRange{par.getStep()[0], hoisted(loop.getStep())});
    OpBuilder nb = OpBuilder::atBlockBegin(nest.getBody());
    IRMapping map;
    map.map(par.getInductionVars()[0], nest.getInductionVars()[0]);
    for (Operation *op : prefix)
      nb.clone(*op, map);
    map.map(loop.getInductionVar(), nest.getInductionVars()[1]);
    for (Operation &op : loop.getBody()->without_terminator())
      nb.clone(op, map);
    nests.push_back(nest);
  }
  par.erase();
  return nests;
}

/// Sequential code on one thread. Scalar results the host needs (a loop
/// bound, an allocation size) travel back through a device buffer.
LogicalResult mapSequential(Operation *op) {
  OpBuilder b(op);
  Location loc = op->getLoc();
  Value one = cIdx(b, loc, 1);
  SmallVector<Value> boxes;
  for (Type t : op->getResultTypes()) {
    if (!t.isIntOrIndexOrFloat())
      return op->emitError() << "ds-map-kernels-to-gpu: sequential code "
                                "returning "
                             << t << " cannot run on the device";
    boxes.push_back(deviceAlloc(b, loc, MemRefType::get({1}, t), {}));
  }
  launch(b, loc, one, one, [&](OpBuilder &kb, gpu::LaunchOp) {
    Operation *clone = kb.clone(*op);
    Value zero = cIdx(kb, loc, 0);
    for (auto [r, box] : llvm::zip(clone->getResults(), boxes))
      memref::StoreOp::create(kb, loc, r, box, zero);
  });
  Value zero = cIdx(b, loc, 0);
  for (auto [r, box] : llvm::zip(op->getResults(), boxes)) {
    auto hostType = cast<MemRefType>(box.getType());
    Value host = memref::AllocaOp::create(b, loc, hostType);
    auto copy = gpu::MemcpyOp::create(b, loc, b.getType<gpu::AsyncTokenType>(),
                                      ValueRange{waitAsync(b, loc)}, host, box);
    waitFor(b, loc, copy.getAsyncToken());
    r.replaceAllUsesWith(memref::LoadOp::create(b, loc, host, zero));
    deviceFree(b, loc, box);
  }
  op->erase();
  return success();
}

/// Constant tables (memref.global: RoPE frequencies) are host memory when
/// read through a host get_global: the launch gets its own get_global, and
/// kernel outlining copies the global into the device module.
void sinkGlobals(func::FuncOp fn) {
  fn.walk([&](gpu::LaunchOp launch) {
    DenseMap<Operation *, Value> cloned;
    launch.getBody().walk([&](Operation *op) {
      for (OpOperand &use : op->getOpOperands()) {
        auto g = use.get().getDefiningOp<memref::GetGlobalOp>();
        if (!g || launch->isProperAncestor(g))
          continue;
        Value &local = cloned[g];
        if (!local) {
          OpBuilder b(&launch.getBody().front(),
                      launch.getBody().front().begin());
          local = b.clone(*g)->getResult(0);
        }
        use.set(local);
      }
    });
  });
}

/// Ops without results run in order on one thread, in one launch placed
/// where the last of them was (every value they use is defined by then).
LogicalResult mapSequentialRun(ArrayRef<Operation *> run) {
  Operation *last = run.back();
  OpBuilder b(last->getContext());
  b.setInsertionPointAfter(last);
  Location loc = last->getLoc();
  Value one = cIdx(b, loc, 1);
  launch(b, loc, one, one, [&](OpBuilder &kb, gpu::LaunchOp) {
    for (Operation *op : run)
      kb.clone(*op);
  });
  for (Operation *op : run)
    op->erase();
  return success();
}

/// Host-side buffers become device buffers.
LogicalResult allocateOnDevice(func::FuncOp fn) {
  SmallVector<Operation *> allocs, deallocs;
  fn.walk([&](Operation *op) {
    if (isa<memref::AllocOp>(op))
      allocs.push_back(op);
    else if (isa<memref::DeallocOp>(op))
      deallocs.push_back(op);
  });
  for (Operation *op : allocs) {
    auto a = cast<memref::AllocOp>(op);
    if (a->getParentOfType<gpu::LaunchOp>())
      return a.emitError() << "ds-map-kernels-to-gpu: allocation inside a "
                              "GPU kernel";
    OpBuilder b(a);
    a.replaceAllUsesWith(
        deviceAlloc(b, a.getLoc(), a.getType(), a.getDynamicSizes()));
    a.erase();
  }
  for (Operation *op : deallocs) {
    OpBuilder b(op);
    deviceFree(b, op->getLoc(), op->getOperand(0));
    op->erase();
  }
  return success();
}

struct MapKernelsToGPUPass
    : mlir::ds::impl::DSMapKernelsToGPUPassBase<MapKernelsToGPUPass> {
  using Base::Base;

  LogicalResult mapKernel(func::FuncOp fn) {
    auto kind = fn->getAttrOfType<StringAttr>("ds.kernel");
    if (kind &&
        (kind.getValue() == "rms_norm" || kind.getValue() == "add_rms_norm")) {
      FailureOr<bool> done = gpu_kernels::emitRowNorm(fn);
      if (failed(done))
        return failure();
      if (*done)
        return success();
    }
    if (kind && kind.getValue() == "argmax") {
      FailureOr<bool> done = gpu_kernels::emitRowArgmax(fn);
      if (failed(done))
        return failure();
      if (*done)
        return success();
    }
    if (splitKV && kind && kind.getValue() == "latent_attention") {
      FailureOr<bool> done = gpu_kernels::emitSplitKVAttention(fn);
      if (failed(done))
        return failure();
      if (*done)
        return success();
    }
    // The routing nest becomes a block per token; the permutation that
    // may follow it in the same kernel keeps the generic mapping below.
    if (kind &&
        (kind.getValue() == "moe_route" ||
         kind.getValue() == "moe_route_permute") &&
        failed(gpu_kernels::emitRouting(fn)))
      return failure();
    if (splitKV && kind && kind.getValue() == "paged_latent_attention") {
      FailureOr<bool> done = gpu_kernels::emitPagedSplitKVAttention(fn);
      if (failed(done))
        return failure();
      if (*done)
        return success();
    }
    if (kind && kind.getValue() == "paged_cache_write") {
      FailureOr<bool> done = gpu_kernels::emitPagedCacheWrite(fn);
      if (failed(done))
        return failure();
      if (*done)
        return success();
    }
    if (kind && kind.getValue() == "cache_write") {
      for (auto par : llvm::to_vector(
               fn.getBody().front().getOps<scf::ParallelOp>()))
        (void)splitColumns(par);
    }
    return mapBlock(fn.getBody().front());
  }

  /// Maps the ops of a host block. A loop without results around parallel
  /// nests (the naive attention's loop over context chunks) stays on the
  /// host and its body is mapped: one launch per nest and iteration.
  LogicalResult mapBlock(Block &block) {
    SmallVector<Operation *> ops;
    for (Operation &op : block.without_terminator())
      ops.push_back(&op);
    // Consecutive sequential code without results (the steps of the MoE
    // counting sort) shares one single-thread launch; scalar host code
    // between them stays where it is.
    SmallVector<Operation *> run;
    auto flush = [&]() -> LogicalResult {
      if (run.empty())
        return success();
      LogicalResult r = mapSequentialRun(run);
      run.clear();
      return r;
    };
    for (Operation *op : ops) {
      // Already a launch (a hand-mapped kernel's, under its guard).
      if (op->walk([](gpu::LaunchOp) {
              return WalkResult::interrupt();
            }).wasInterrupted()) {
        if (failed(flush()))
          return failure();
        continue;
      }
      bool sequential = !isa<scf::ParallelOp>(op) && touchesMemory(op) &&
                        op->getNumResults() == 0 &&
                        !(isa<scf::ForOp>(op) &&
                          !cast<scf::ForOp>(op)
                               .getBody()
                               ->getOps<scf::ParallelOp>()
                               .empty());
      if (sequential) {
        run.push_back(op);
        continue;
      }
      if (isPure(op) && op->getNumRegions() == 0)
        continue; // host scalar code: does not end a run
      if (failed(flush()))
        return failure();
      if (auto par = dyn_cast<scf::ParallelOp>(op)) {
        if (failed(mapParallel(par, blockSize)))
          return failure();
      } else if (auto loop = dyn_cast<scf::ForOp>(op);
                 loop && loop.getNumResults() == 0 &&
                 !loop.getBody()->getOps<scf::ParallelOp>().empty()) {
        if (failed(mapBlock(*loop.getBody())))
          return failure();
      } else if (touchesMemory(op)) {
        if (failed(mapSequential(op)))
          return failure();
      }
    }
    return flush();
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (blockSize < 32 || blockSize > 1024) {
      module.emitError() << "ds-map-kernels-to-gpu: block-size must be in "
                            "[32, 1024], got "
                         << blockSize;
      return signalPassFailure();
    }
    module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                    UnitAttr::get(&getContext()));
    for (auto fn : llvm::to_vector(module.getOps<func::FuncOp>())) {
      if (fn.isDeclaration())
        continue;
      // Entry points hold loop nests too (the copy into the logits).
      LLVM_DEBUG(if (fn->hasAttr("ds.kernel") || fn->hasAttr("ds.entry_point"))
                     llvm::dbgs() << "[" DEBUG_TYPE "] mapping @"
                                  << fn.getName() << "\n");
      if ((fn->hasAttr("ds.kernel") || fn->hasAttr("ds.entry_point")) &&
          failed(mapKernel(fn)))
        return signalPassFailure();
      sinkGlobals(fn);
      if ((fn->hasAttr("ds.kernel") || fn->hasAttr("ds.entry_point")) &&
          failed(allocateOnDevice(fn)))
        return signalPassFailure();
    }
  }
};

} // namespace
