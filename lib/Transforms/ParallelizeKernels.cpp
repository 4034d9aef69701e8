//===- ParallelizeKernels.cpp - ds-parallelize-kernels --------------------===//
//
// On the CPU the kernels are sequential loop nests; the heavy ones
// (attention over the cache, per-head matmuls, prefill's norms) get the
// runtime's thread pool. For a kernel K whose body is one top-level
// scf.parallel:
//   K__range(args..., begin, end)  runs linear iterations [begin, end);
//   K__task(packed, begin, end)    unpacks K's arguments (memref
//                                  descriptors, indices) and calls it;
//   K                              packs its arguments on the stack and
//                                  calls dsrt_parallel_for(K__task,
//                                  packed, iterations, grain).
// The packing uses the descriptor structs of the LLVM lowering; the casts
// between them and memrefs fold away in reconcile-unrealized-casts.
// Kernels of sequential phases (the MoE glue: routing, a counting sort,
// row moves; the combine) get each top-level scf.parallel split this way
// in its place (K__p<i>__range / __task) by its outermost dimension only
// (the inner ones stay loops), the code between them staying on the
// caller: a parallel-for returns when all its iterations are done.
// Row-wise kernels (rope, the SiLU-mul, residual adds, slices, gathers,
// cache writes, argmax) split the same way by their outermost dimension
// (tokens), with a grain sized from the elements one token touches, so a
// 256-token prefill's rows go to both cores while decode's one token stays
// on the caller.
//
//===----------------------------------------------------------------------===//
#include "ds/Transforms/Passes.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/IR/TypeUtilities.h"
#include "llvm/ADT/DenseSet.h"
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

/// Whether the nest runs over normalised bounds (lower 0, step 1) and
/// yields nothing.
bool normalised(scf::ParallelOp par) {
  if (par.getNumResults())
    return false;
  for (auto [lb, step] : llvm::zip(par.getLowerBound(), par.getStep())) {
    auto l = lb.getDefiningOp<arith::ConstantIndexOp>();
    auto s = step.getDefiningOp<arith::ConstantIndexOp>();
    if (!l || !s || l.value() != 0 || s.value() != 1)
      return false;
  }
  return true;
}

/// Top-level ops of the kernel a range variant can recompute: pure,
/// without regions, on arguments and on each other's results only.
llvm::DenseSet<Operation *> recomputable(func::FuncOp fn) {
  llvm::DenseSet<Operation *> ops;
  for (Operation &op : fn.getBody().front().without_terminator()) {
    if (op.getNumRegions() || !isPure(&op))
      continue;
    if (llvm::all_of(op.getOperands(), [&](Value v) {
          Operation *def = v.getDefiningOp();
          return !def || ops.contains(def);
        }))
      ops.insert(&op);
  }
  return ops;
}

/// Whether every value the nest takes from outside it is an argument or
/// a result of a recomputable op.
bool selfContained(scf::ParallelOp par,
                   const llvm::DenseSet<Operation *> &ops) {
  bool ok = true;
  par->walk([&](Operation *inner) {
    for (Value v : inner->getOperands()) {
      if (auto arg = dyn_cast<BlockArgument>(v)) {
        Operation *owner = arg.getOwner()->getParentOp();
        ok &= par->isAncestor(owner) || isa<func::FuncOp>(owner);
        continue;
      }
      Operation *def = v.getDefiningOp();
      ok &= par->isProperAncestor(def) || ops.contains(def);
    }
  });
  return ok;
}

/// Whether a nest of a phased kernel has work enough for a wake of the
/// pool: not fewer outer iterations than a grain, known statically
/// (decode's one-token variant stays as it is), and loops inside or at
/// least 64 inner iterations per outer one (the shared experts' ids, one
/// store per token, stay on the caller).
bool worthSplitting(scf::ParallelOp par, int64_t grain) {
  if (auto outer =
          par.getUpperBound().front().getDefiningOp<arith::ConstantIndexOp>())
    if (outer.value() < grain)
      return false;
  for (Operation &op : par.getBody()->without_terminator())
    if (op.getNumRegions())
      return true;
  int64_t inner = 1;
  for (Value ub : par.getUpperBound().drop_front()) {
    auto c = ub.getDefiningOp<arith::ConstantIndexOp>();
    if (!c)
      return true;
    inner *= c.value();
  }
  return inner >= 64;
}

/// The nests that go to the pool: the kernel's one top-level
/// scf.parallel, the rest of its body pure (`phases` false); or, for
/// kernels of sequential phases (`phases` true: MoE routing, the counting
/// sort, the row moves), each top-level scf.parallel the rest of the body
/// does not feed but through recomputable values (the phases between them
/// stay on the caller, each nest a blocking parallel-for in its place).
SmallVector<scf::ParallelOp> nestsOf(func::FuncOp fn, bool phases,
                                     int64_t grain) {
  SmallVector<scf::ParallelOp> nests;
  llvm::DenseSet<Operation *> ops = recomputable(fn);
  for (Operation &op : fn.getBody().front().without_terminator()) {
    if (auto p = dyn_cast<scf::ParallelOp>(op)) {
      if (normalised(p) && selfContained(p, ops) &&
          (!phases || worthSplitting(p, grain)))
        nests.push_back(p);
      else if (!phases)
        return {};
      continue;
    }
    if (!phases && !ops.contains(&op))
      return {};
  }
  if (!phases && nests.size() != 1)
    return {};
  return nests;
}

struct ParallelizeKernelsPass
    : mlir::ds::impl::DSParallelizeKernelsPassBase<ParallelizeKernelsPass> {
  using Base::Base;

  /// Iterations per thread below which a split costs more than it saves
  /// (0: the kernel stays sequential). For the MoE glue, in iterations of
  /// the outermost dimension (tokens, or (token, slot) pairs), whatever
  /// the inner ones: a decode step's few tokens stay on the caller.
  struct Grain {
    int64_t iterations = 0;
    bool perOuter = false; // split by the outermost dimension only
    bool phases = false;   // each top-level nest of several
    bool fromWork = false; // iterations: kChunkElements / elements per row
  };
  static Grain grainOf(StringRef kind) {
    if (kind == "latent_attention" || kind == "paged_latent_attention" ||
        kind == "paged_kv_attention")
      return {1}; // each iteration reads the whole context
    if (kind == "head_matmul")
      return {64}; // one dot product per iteration
    // A (token, head) over a chunk of rows / one decoded cache row.
    if (kind == "paged_naive_attend")
      return {1};
    if (kind == "paged_naive_gather" || kind == "naive_gather")
      return {16};
    // One head's block of weight rows per iteration (64 x 256 multiply-adds
    // at V3's widths, ~1 us vectorised): decode's 8-128 heads split over
    // the threads, while a dispatch (a few us) still costs less than half.
    if (kind == "head_matmul_rows")
      return {4};
    // One row of the hidden state per iteration: prefill's norms split by
    // rows, so the second core is not idle between GEMMs (decode's one row
    // stays on the caller).
    if (kind == "rms_norm" || kind == "add_rms_norm")
      return {4};
    // Prefill's routing (a softmax and top-k per token), the permutation's
    // row moves and the weighted combine (a hidden row per token), which
    // left one core idle between the expert GEMMs; 16 tokens (~10-40 us of
    // work) per thread at least.
    if (kind == "moe_route" || kind == "moe_route_permute" ||
        kind == "moe_permute" || kind == "moe_combine")
      return {16, true, true};
    // One token's row (or a (token, pair) of rope) per outer iteration:
    // element-wise work, a few ns a row at hidden widths, so the grain comes
    // from the elements a row touches (rowGrain).
    if (kind == "rope" || kind == "silu_mul" || kind == "silu_mul_packed" ||
        kind == "add" || kind == "slice" || kind == "gather_rows" ||
        kind == "mtp_concat" || kind == "cache_write" ||
        kind == "paged_cache_write" || kind == "paged_kv_write" ||
        kind == "argmax")
      return {0, true, false, true};
    return {};
  }

  /// Elements a chunk of a row-wise kernel should cover: ~1-4 us of
  /// vectorised work, well above a dispatch to a spinning worker (~1 us)
  /// and small enough for 2-8 chunks per thread at 256 tokens.
  static constexpr int64_t kChunkElements = 4096;

  /// Trips assumed for a loop or dimension of dynamic bound (a search over
  /// a batch's sequences, a row of unknown width): a guess on the small
  /// side, so a few tokens do not wake the pool for little work.
  static constexpr int64_t kUnknownTrips = 16;

  /// Elements a math-library call (sin, cos, exp...) counts as: an f64
  /// one is a libm call of 20-40 ns (rope's angles), an f32 one a
  /// vectorised polynomial after ds-approximate-exp, a few element ops.
  static int64_t mathCost(Operation &op) {
    Dialect *dialect = op.getDialect(); // null for an unregistered op
    if (!dialect || dialect->getNamespace() != "math" ||
        op.getNumResults() != 1)
      return 0;
    return getElementTypeOrSelf(op.getResult(0).getType()).isF64() ? 64 : 4;
  }

  /// Elements one outer iteration of `par` touches: the inner dimensions
  /// times the work of its body (its loops' trip counts times theirs, and
  /// math calls by mathCost).
  static int64_t elementsPerRow(scf::ParallelOp par) {
    auto work = [](Block &block, auto &self) -> int64_t {
      int64_t total = 0;
      for (Operation &op : block) {
        total += mathCost(op);
        auto f = dyn_cast<scf::ForOp>(op);
        if (!f)
          continue;
        std::optional<int64_t> trips = constantTripCount(f);
        total += trips.value_or(kUnknownTrips) * self(*f.getBody(), self);
        total = std::min(total, kChunkElements);
      }
      return std::max<int64_t>(total, 1);
    };
    int64_t inner = work(*par.getBody(), work);
    for (Value ub : par.getUpperBound().drop_front()) {
      auto c = ub.getDefiningOp<arith::ConstantIndexOp>();
      inner *= c ? c.value() : kUnknownTrips;
      inner = std::min(inner, kChunkElements);
    }
    return std::min(inner, kChunkElements);
  }

  static std::optional<int64_t> constantTripCount(scf::ForOp f) {
    auto lb = f.getLowerBound().getDefiningOp<arith::ConstantIndexOp>();
    auto ub = f.getUpperBound().getDefiningOp<arith::ConstantIndexOp>();
    auto st = f.getStep().getDefiningOp<arith::ConstantIndexOp>();
    if (!lb || !ub || !st || st.value() <= 0)
      return std::nullopt;
    return std::max<int64_t>(0, (ub.value() - lb.value() + st.value() - 1) /
                                    st.value());
  }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    for (auto fn : llvm::to_vector(module.getOps<func::FuncOp>())) {
      auto kind = fn->getAttrOfType<StringAttr>("ds.kernel");
      if (!kind)
        continue;
      Grain grain = grainOf(kind.getValue());
      if (!grain.iterations && !grain.fromWork)
        continue;
      SmallVector<scf::ParallelOp> nests =
          nestsOf(fn, grain.phases, grain.iterations);
      if (nests.empty())
        continue;
      if (grain.fromWork)
        grain.iterations =
            (kChunkElements + elementsPerRow(nests.front()) - 1) /
            elementsPerRow(nests.front());
      SmallVector<Type> fields;
      for (Type t : fn.getArgumentTypes())
        fields.push_back(packedType(t));
      if (llvm::any_of(fields, [](Type t) { return !t; }))
        continue;
      LLVM_DEBUG(llvm::dbgs()
                 << "[" DEBUG_TYPE "] @" << fn.getName() << ": " << nests.size()
                 << " nest(s) over the thread pool, grain " << grain.iterations
                 << "\n");
      llvm::DenseSet<Operation *> ops = recomputable(fn);
      // Last first: each variant goes right after the kernel, so the
      // module lists them in the nests' order.
      for (size_t i = nests.size(); i-- > 0;) {
        std::string name = fn.getName().str();
        if (grain.phases)
          name += "__p" + std::to_string(i);
        parallelize(module, fn, nests[i], ops, fields, name, grain);
      }
    }
  }

  void parallelize(ModuleOp module, func::FuncOp fn, scf::ParallelOp par,
                   const llvm::DenseSet<Operation *> &ops,
                   ArrayRef<Type> fields, const std::string &base,
                   Grain grain) {
    MLIRContext *ctx = &getContext();
    Location loc = fn.getLoc();
    OpBuilder mb(ctx);
    mb.setInsertionPointAfter(fn);
    auto idx = mb.getIndexType();
    auto i64 = mb.getI64Type();
    auto ptr = LLVM::LLVMPointerType::get(ctx);

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
        if (ops.contains(&op))
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
      if (grain.perOuter) {
        // Outer iterations only; the inner dimensions stay loops of their
        // own, so a row's copy or sum is still a unit-stride inner loop
        // for the vectoriser, with no division per element.
        map.map(par.getInductionVars()[0], rest);
        Value zero = arith::ConstantIndexOp::create(lb, loc, 0);
        for (size_t d = 1; d < trips.size(); ++d) {
          auto inner = scf::ForOp::create(lb, loc, zero, trips[d], one);
          map.map(par.getInductionVars()[d], inner.getInductionVar());
          lb.setInsertionPointToStart(inner.getBody());
        }
      } else {
        for (int64_t d = int64_t(trips.size()) - 1; d >= 0; --d) {
          Value iv =
              d == 0 ? rest : arith::RemUIOp::create(lb, loc, rest, trips[d]);
          if (d > 0)
            rest = arith::DivUIOp::create(lb, loc, rest, trips[d]);
          map.map(par.getInductionVars()[d], iv);
        }
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
    for (Value ub : grain.perOuter ? par.getUpperBound().take_front()
                                   : par.getUpperBound())
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
    Value grainValue = LLVM::ConstantOp::create(
        b, loc, i64, b.getI64IntegerAttr(grain.iterations));
    func::CallOp::create(
        b, loc, pool,
        ValueRange{fnPtr, packed,
                   arith::IndexCastOp::create(b, loc, i64, total), grainValue});
    par.erase();
    fn->setAttr("ds.parallel", UnitAttr::get(ctx));
  }
};

} // namespace
