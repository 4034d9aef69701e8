//===- ParallelizeKernels.cpp - ds-parallelize-kernels --------------------===//
//
// On the CPU the kernels are sequential loop nests; the heavy ones
// (attention over the cache, per-head matmuls, prefill's norms) get the
// runtime's thread pool. For a kernel K whose body is one top-level scf.parallel:
//   K__range(args..., begin, end)  runs linear iterations [begin, end);
//   K__task(packed, begin, end)    unpacks K's arguments (memref
//                                  descriptors, indices) and calls it;
//   K                              packs its arguments on the stack and
//                                  calls dsrt_parallel_for(K__task,
//                                  packed, iterations, grain).
// The packing uses the descriptor structs of the LLVM lowering; the casts
// between them and memrefs fold away in reconcile-unrealized-casts.
//
//===----------------------------------------------------------------------===//
#include "ds/Transforms/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/Support/Debug.h"

#define DEBUG_TYPE "ds-parallelize-kernels"

namespace mlir::ds {
#define GEN_PASS_DEF_DSPARALLELIZEKERNELSPASS
#include "ds/Transforms/Passes.h.inc"
} // namespace mlir::ds

using namespace mlir;
using namespace mlir::ds;

namespace {

/// The LLVM type a kernel argument travels as (MLIR's descriptor layout).
Type packedType(Type t) {
  MLIRContext *ctx = t.getContext();
  auto ptr = LLVM::LLVMPointerType::get(ctx);
  auto i64 = IntegerType::get(ctx, 64);
  if (auto m = dyn_cast<MemRefType>(t)) {
    if (m.getMemorySpace())
      return {};
    SmallVector<Type> fields{ptr, ptr, i64};
    if (m.getRank() > 0) {
      fields.push_back(LLVM::LLVMArrayType::get(i64, m.getRank()));
      fields.push_back(LLVM::LLVMArrayType::get(i64, m.getRank()));
    }
    return LLVM::LLVMStructType::getLiteral(ctx, fields);
  }
  if (t.isIndex())
    return i64;
  if (t.isIntOrFloat())
    return t;
  return {};
}

/// The kernel's one top-level scf.parallel (normalised: lower bounds 0,
/// steps 1), or null.
scf::ParallelOp soleParallel(func::FuncOp fn) {
  scf::ParallelOp par;
  for (Operation &op : fn.getBody().front().without_terminator()) {
    if (auto p = dyn_cast<scf::ParallelOp>(op)) {
      if (par)
        return {};
      par = p;
      continue;
    }
    if (op.getNumRegions() || !isPure(&op))
      return {};
  }
  if (!par || par.getNumResults())
    return {};
  for (auto [lb, step] : llvm::zip(par.getLowerBound(), par.getStep())) {
    auto l = lb.getDefiningOp<arith::ConstantIndexOp>();
    auto s = step.getDefiningOp<arith::ConstantIndexOp>();
    if (!l || !s || l.value() != 0 || s.value() != 1)
      return {};
  }
  return par;
}

struct ParallelizeKernelsPass
    : mlir::ds::impl::DSParallelizeKernelsPassBase<ParallelizeKernelsPass> {
  using Base::Base;

  /// Iterations per thread below which a split costs more than it saves
  /// (0: the kernel stays sequential).
  static int64_t grainOf(StringRef kind) {
    if (kind == "latent_attention" || kind == "paged_latent_attention" ||
        kind == "paged_kv_attention")
      return 1; // each iteration reads the whole context
    if (kind == "head_matmul")
      return 64; // one dot product per iteration
    // A (token, head) over a chunk of rows / one decoded cache row.
    if (kind == "paged_naive_attend")
      return 1;
    if (kind == "paged_naive_gather" || kind == "naive_gather")
      return 16;
    // One head's block of weight rows per iteration (64 x 256 multiply-adds
    // at V3's widths, ~1 us vectorised): decode's 8-128 heads split over
    // the threads, while a dispatch (a few us) still costs less than half.
    if (kind == "head_matmul_rows")
      return 4;
    // One row of the hidden state per iteration: prefill's norms split by
    // rows, so the second core is not idle between GEMMs (decode's one row
    // stays on the caller).
    if (kind == "rms_norm" || kind == "add_rms_norm")
      return 4;
    return 0;
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    for (auto fn : llvm::to_vector(module.getOps<func::FuncOp>())) {
      auto kind = fn->getAttrOfType<StringAttr>("ds.kernel");
      if (!kind || grainOf(kind.getValue()) == 0)
        continue;
      scf::ParallelOp par = soleParallel(fn);
      if (!par)
        continue;
      SmallVector<Type> fields;
      for (Type t : fn.getArgumentTypes())
        fields.push_back(packedType(t));
      if (llvm::any_of(fields, [](Type t) { return !t; }))
        continue;
      LLVM_DEBUG(llvm::dbgs() << "[" DEBUG_TYPE "] @" << fn.getName()
                              << " over the thread pool, grain "
                              << grainOf(kind.getValue()) << "\n");
      parallelize(module, fn, par, fields, grainOf(kind.getValue()));
    }
  }

  void parallelize(ModuleOp module, func::FuncOp fn, scf::ParallelOp par,
                   ArrayRef<Type> fields, int64_t grain) {
    MLIRContext *ctx = &getContext();
    Location loc = fn.getLoc();
    OpBuilder mb(ctx);
    mb.setInsertionPointAfter(fn);
    auto idx = mb.getIndexType();
    auto i64 = mb.getI64Type();
    auto ptr = LLVM::LLVMPointerType::get(ctx);
    std::string base = fn.getName().str();

    // K__range: the nest over linear iterations [begin, end).
    SmallVector<Type> rangeArgs(fn.getArgumentTypes());
    rangeArgs.append({idx, idx});
    auto range = func::FuncOp::create(mb, loc, base + "__range",
                                      mb.getFunctionType(rangeArgs, {}));
    range.setPrivate();
    {
      Block *entry = range.addEntryBlock();
      OpBuilder b = OpBuilder::atBlockEnd(entry);
      IRMapping map;
      for (unsigned i = 0; i < fn.getNumArguments(); ++i)
        map.map(fn.getArgument(i), entry->getArgument(i));
      for (Operation &op : fn.getBody().front().without_terminator())
        if (&op != par.getOperation())
          b.clone(op, map);
      SmallVector<Value> trips;
      for (Value ub : par.getUpperBound())
        trips.push_back(map.lookupOrDefault(ub));
      Value begin = entry->getArgument(fn.getNumArguments());
      Value end = entry->getArgument(fn.getNumArguments() + 1);
      Value one = arith::ConstantIndexOp::create(b, loc, 1);
      auto loop = scf::ForOp::create(b, loc, begin, end, one);
      OpBuilder lb = OpBuilder::atBlockBegin(loop.getBody());
      Value rest = loop.getInductionVar();
      for (int64_t d = int64_t(trips.size()) - 1; d >= 0; --d) {
        Value iv = d == 0 ? rest
                          : arith::RemUIOp::create(lb, loc, rest, trips[d]);
        if (d > 0)
          rest = arith::DivUIOp::create(lb, loc, rest, trips[d]);
        map.map(par.getInductionVars()[d], iv);
      }
      for (Operation &op : par.getBody()->without_terminator())
        lb.clone(op, map);
      func::ReturnOp::create(b, loc);
    }

    // K__task(packed, begin, end): the C ABI the pool calls.
    auto structType = LLVM::LLVMStructType::getLiteral(ctx, fields);
    auto task = func::FuncOp::create(
        mb, loc, base + "__task", mb.getFunctionType({ptr, i64, i64}, {}));
    task.setPrivate();
    {
      Block *entry = task.addEntryBlock();
      OpBuilder b = OpBuilder::atBlockEnd(entry);
      SmallVector<Value> args;
      for (auto [i, t] : llvm::enumerate(fn.getArgumentTypes())) {
        Value addr = LLVM::GEPOp::create(
            b, loc, ptr, structType, entry->getArgument(0),
            ArrayRef<LLVM::GEPArg>{0, int32_t(i)});
        Value v = LLVM::LoadOp::create(b, loc, fields[i], addr);
        if (t.isIndex())
          v = arith::IndexCastOp::create(b, loc, idx, v);
        else if (isa<MemRefType>(t))
          v = UnrealizedConversionCastOp::create(b, loc, t, v).getResult(0);
        args.push_back(v);
      }
      args.push_back(arith::IndexCastOp::create(b, loc, idx,
                                                entry->getArgument(1)));
      args.push_back(arith::IndexCastOp::create(b, loc, idx,
                                                entry->getArgument(2)));
      func::CallOp::create(b, loc, range, args);
      func::ReturnOp::create(b, loc);
    }

    // K: pack, count the iterations, hand them to the pool.
    auto pool = module.lookupSymbol<func::FuncOp>("dsrt_parallel_for");
    if (!pool) {
      OpBuilder pb(ctx);
      pb.setInsertionPointToStart(module.getBody());
      pool = func::FuncOp::create(
          pb, loc, "dsrt_parallel_for",
          pb.getFunctionType({ptr, ptr, i64, i64}, {}));
      pool.setPrivate();
    }
    OpBuilder b(par);
    Value total = arith::ConstantIndexOp::create(b, loc, 1);
    for (Value ub : par.getUpperBound())
      total = arith::MulIOp::create(b, loc, total, ub);
    Value one = LLVM::ConstantOp::create(b, loc, i64, b.getI64IntegerAttr(1));
    Value packed = LLVM::AllocaOp::create(b, loc, ptr, structType, one);
    for (auto [i, t] : llvm::enumerate(fn.getArgumentTypes())) {
      Value v = fn.getArgument(i);
      if (t.isIndex())
        v = arith::IndexCastOp::create(b, loc, i64, v);
      else if (isa<MemRefType>(t))
        v = UnrealizedConversionCastOp::create(b, loc, fields[i], v)
                .getResult(0);
      Value addr = LLVM::GEPOp::create(b, loc, ptr, structType, packed,
                                       ArrayRef<LLVM::GEPArg>{0, int32_t(i)});
      LLVM::StoreOp::create(b, loc, v, addr);
    }
    Value fnRef = func::ConstantOp::create(b, loc, task.getFunctionType(),
                                           SymbolRefAttr::get(task));
    Value fnPtr =
        UnrealizedConversionCastOp::create(b, loc, ptr, fnRef).getResult(0);
    func::CallOp::create(
        b, loc, pool,
        ValueRange{fnPtr, packed, arith::IndexCastOp::create(b, loc, i64, total),
                   LLVM::ConstantOp::create(b, loc, i64,
                                            b.getI64IntegerAttr(grain))});
    par.erase();
    fn->setAttr("ds.parallel", UnitAttr::get(ctx));
  }
};

} // namespace
