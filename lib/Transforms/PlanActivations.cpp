//===- PlanActivations.cpp - ds-plan-activations --------------------------===//
//
// convert-ds-to-loops gives every activation its own allocation, freed at
// the end of the entry point. This pass replaces them by views into one
// scratch buffer the runtime hands out (dsrt_scratch: kept per thread on the
// CPU, the session's arena on the GPU), so a decode step allocates nothing
// once the buffer has grown to its size.
//
// Sizes depend on the token count T of the call only, as a*T + b bytes
// (every activation is [T, ...], [T*k, ...] or fixed, except the rows
// expert parallelism receives from other ranks, which keep their own
// allocations: ds.unplanned_buffers counts them). Buffers whose
// lifetimes (definition to last use, views included) do not overlap share
// a slot; a slot is as large as its largest buffer (componentwise in a and
// b, so for every T). Offsets are then fixed sums: the whole plan is known
// at compile time and reported as the entry point's peak activation bytes.
//
//===----------------------------------------------------------------------===//
#include "ds/Transforms/Passes.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/Support/Debug.h"

#define DEBUG_TYPE "ds-plan-activations"

namespace mlir::ds {
#define GEN_PASS_DEF_DSPLANACTIVATIONSPASS
#include "ds/Transforms/Passes.h.inc"
} // namespace mlir::ds

using namespace mlir;
using namespace mlir::ds;

namespace {

/// a*T + b.
struct Affine {
  int64_t perToken = 0, fixed = 0;
  Affine max(Affine o) const {
    return {std::max(perToken, o.perToken), std::max(fixed, o.fixed)};
  }
  Affine operator+(Affine o) const {
    return {perToken + o.perToken, fixed + o.fixed};
  }
  bool covers(Affine o) const {
    return perToken >= o.perToken && fixed >= o.fixed;
  }
  /// Larger for long calls: the per-token part first, then the fixed one.
  bool after(Affine o) const {
    return perToken != o.perToken ? perToken > o.perToken : fixed > o.fixed;
  }
};

constexpr int64_t kAlign = 64; // cache lines; 16-byte GPU vector loads

int64_t alignUp(int64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

/// One activation: its bytes and its lifetime in entry-block positions.
struct Buffer {
  memref::AllocOp alloc;
  Affine bytes;
  int64_t start = 0, end = 0;
  int64_t slot = -1;
};

/// Slot sizes, each buffer's slot, and their sum (the peak).
struct Colouring {
  std::vector<Affine> slotSize;
  std::vector<int64_t> slotOf;
  Affine total;
};

class Planner {
public:
  explicit Planner(func::FuncOp fn) : fn(fn), body(fn.getBody().front()) {}

  /// Rewrites the entry point; failure (with nothing changed) when a size
  /// is not affine in T.
  LogicalResult run(Affine &peak);

private:
  std::optional<Affine> affineOf(Value v, int depth = 0);
  std::optional<Affine> affineOfUncached(Value v, int depth);
  std::optional<Affine> dimOf(Value memref, int64_t index, int depth);
  /// Position (index in the entry block) of the op holding `op`.
  int64_t position(Operation *op);
  int64_t lastUse(Value v);

public:
  /// Allocations left as they are (sizes not affine in T).
  int64_t unplanned = 0;

private:
  func::FuncOp fn;
  Block &body;
  DenseMap<Operation *, int64_t> order;
  /// Sizes chain through the previous buffers' dims: memoised, so each
  /// lookup is shallow when buffers are visited in program order.
  DenseMap<Value, std::optional<Affine>> affineMemo;
};

std::optional<Affine> Planner::dimOf(Value m, int64_t index, int depth) {
  auto type = dyn_cast<MemRefType>(m.getType());
  if (!type || index >= type.getRank())
    return std::nullopt;
  if (!type.isDynamicDim(index))
    return Affine{0, type.getDimSize(index)};
  // Tokens and positions (arguments 1, 2) and the logits (4) have T rows.
  if (auto arg = dyn_cast<BlockArgument>(m))
    if (arg.getOwner() == &body && index == 0 &&
        (arg.getArgNumber() == 1 || arg.getArgNumber() == 2 ||
         arg.getArgNumber() == 4))
      return Affine{1, 0};
  // A ragged step's sequence vectors (query_start [S + 1], context_lens
  // [S], logits_rows [R]) have at most T + 1 entries: the runtime checks
  // that every sequence has a token and every logits row is a distinct
  // token.
  if (auto arg = dyn_cast<BlockArgument>(m))
    if (arg.getOwner() == &body && index == 0 && type.getRank() == 1 &&
        type.getElementType().isInteger(32))
      return Affine{1, 1};
  Operation *def = m.getDefiningOp();
  if (!def || depth > 64)
    return std::nullopt;
  if (auto cast = dyn_cast<memref::CastOp>(def))
    return dimOf(cast.getSource(), index, depth + 1);
  if (auto expand = dyn_cast<memref::ExpandShapeOp>(def)) {
    OpFoldResult extent = expand.getMixedOutputShape()[index];
    if (auto v = dyn_cast<Value>(extent))
      return affineOf(v, depth + 1);
    return Affine{0, cast<IntegerAttr>(cast<Attribute>(extent)).getInt()};
  }
  if (auto collapse = dyn_cast<memref::CollapseShapeOp>(def)) {
    Affine extent{0, 1};
    // A copy: the reassociation comes back as a temporary.
    SmallVector<ReassociationIndices> groups =
        collapse.getReassociationIndices();
    for (int64_t src : groups[index]) {
      std::optional<Affine> d = dimOf(collapse.getSrc(), src, depth + 1);
      if (!d || (extent.perToken && d->perToken))
        return std::nullopt;
      extent = d->perToken ? Affine{extent.fixed * d->perToken,
                                    extent.fixed * d->fixed}
                           : Affine{extent.perToken * d->fixed,
                                    extent.fixed * d->fixed};
    }
    return extent;
  }
  if (auto alloc = dyn_cast<memref::AllocOp>(def)) {
    int64_t dynIndex = 0;
    for (int64_t i = 0; i < index; ++i)
      dynIndex += type.isDynamicDim(i);
    return affineOf(alloc.getDynamicSizes()[dynIndex], depth + 1);
  }
  return std::nullopt;
}

std::optional<Affine> Planner::affineOf(Value v, int depth) {
  auto it = affineMemo.find(v);
  if (it != affineMemo.end())
    return it->second;
  if (depth > 64)
    return std::nullopt;
  std::optional<Affine> result = affineOfUncached(v, depth);
  affineMemo[v] = result;
  return result;
}

std::optional<Affine> Planner::affineOfUncached(Value v, int depth) {
  if (auto c = v.getDefiningOp<arith::ConstantIndexOp>())
    return Affine{0, c.value()};
  if (auto d = v.getDefiningOp<memref::DimOp>()) {
    std::optional<int64_t> index = d.getConstantIndex();
    if (!index)
      return std::nullopt;
    return dimOf(d.getSource(), *index, depth + 1);
  }
  if (auto mul = v.getDefiningOp<arith::MulIOp>()) {
    auto l = affineOf(mul.getLhs(), depth + 1),
         r = affineOf(mul.getRhs(), depth + 1);
    if (!l || !r || (l->perToken && r->perToken))
      return std::nullopt;
    if (r->perToken)
      std::swap(l, r);
    return Affine{l->perToken * r->fixed, l->fixed * r->fixed};
  }
  if (auto add = v.getDefiningOp<arith::AddIOp>()) {
    auto l = affineOf(add.getLhs(), depth + 1),
         r = affineOf(add.getRhs(), depth + 1);
    if (!l || !r)
      return std::nullopt;
    return *l + *r;
  }
  return std::nullopt;
}

int64_t Planner::position(Operation *op) {
  while (op->getBlock() != &body)
    op = op->getParentOp();
  return order.lookup(op);
}

int64_t Planner::lastUse(Value v) {
  int64_t last = 0;
  for (OpOperand &use : v.getUses()) {
    Operation *user = use.getOwner();
    if (isa<memref::DeallocOp>(user))
      continue;
    last = std::max(last, position(user));
    // Views alias the buffer: their uses keep it alive.
    if (isa<ViewLikeOpInterface>(user) || isa<memref::CastOp>(user))
      for (Value r : user->getResults())
        last = std::max(last, lastUse(r));
  }
  return last;
}

/// Interval colouring in program order: each buffer takes a slot free at
/// its start (its last tenant's last use is earlier). Among those, one that
/// already holds it (the first, or with `bestFit` the smallest), else the
/// first (or with `leastGrowth` the largest, which grows least: a slot is as
/// large as its largest tenant), else a new slot.
Colouring colour(const std::vector<Buffer> &buffers, bool bestFit,
                 bool leastGrowth) {
  Colouring c;
  std::vector<int64_t> freeAt;
  for (const Buffer &b : buffers) {
    int64_t pick = -1;
    auto isFree = [&](size_t s) { return freeAt[s] < b.start; };
    for (size_t s = 0; s < c.slotSize.size(); ++s)
      if (isFree(s) && c.slotSize[s].covers(b.bytes) &&
          (pick < 0 ||
           (bestFit && c.slotSize[size_t(pick)].after(c.slotSize[s]))))
        pick = int64_t(s);
    for (size_t s = 0; pick < 0 && s < c.slotSize.size(); ++s)
      if (isFree(s))
        pick = int64_t(s);
    if (pick >= 0 && leastGrowth && !c.slotSize[size_t(pick)].covers(b.bytes))
      for (size_t s = 0; s < c.slotSize.size(); ++s)
        if (isFree(s) && c.slotSize[s].after(c.slotSize[size_t(pick)]))
          pick = int64_t(s);
    if (pick < 0) {
      pick = int64_t(c.slotSize.size());
      c.slotSize.push_back({});
      freeAt.push_back(0);
    }
    c.slotSize[size_t(pick)] = c.slotSize[size_t(pick)].max(b.bytes);
    freeAt[size_t(pick)] = b.end;
    c.slotOf.push_back(pick);
  }
  for (const Affine &size : c.slotSize)
    c.total = c.total + size;
  return c;
}

LogicalResult Planner::run(Affine &peak) {
  int64_t i = 0;
  for (Operation &op : body)
    order[&op] = i++;
  std::vector<Buffer> buffers;
  for (Operation &op : body) {
    auto alloc = dyn_cast<memref::AllocOp>(op);
    if (!alloc)
      continue;
    MemRefType type = alloc.getType();
    if (!type.getLayout().isIdentity() || !type.getElementType().isIntOrFloat())
      return failure();
    Affine bytes{0, (type.getElementTypeBitWidth() + 7) / 8};
    bool affine = true;
    for (int64_t d = 0; d < type.getRank() && affine; ++d) {
      std::optional<Affine> extent = dimOf(alloc.getResult(), d, 0);
      if (!extent || (bytes.perToken && extent->perToken)) {
        affine = false;
        break;
      }
      bytes = extent->perToken
                  ? Affine{bytes.fixed * extent->perToken,
                           bytes.fixed * extent->fixed}
                  : Affine{bytes.perToken * extent->fixed,
                           bytes.fixed * extent->fixed};
    }
    // Rows that other ranks decide (expert parallelism's received rows, a
    // token share): not a function of T, so the buffer keeps its own
    // allocation; the rest is still planned.
    if (!affine) {
      ++unplanned;
      continue;
    }
    bytes = {alignUp(bytes.perToken), alignUp(bytes.fixed)};
    buffers.push_back({alloc, bytes, order[alloc], lastUse(alloc.getResult())});
  }
  if (buffers.empty())
    return failure();

  // Slot colourings are greedy; none of the cheap rules wins on every entry
  // point (decode's late logits favour growing the largest free slot,
  // prefill's chain of per-token buffers the first one), so try each and
  // keep the smallest peak.
  Colouring best;
  for (bool bestFit : {false, true})
    for (bool leastGrowth : {false, true}) {
      Colouring c = colour(buffers, bestFit, leastGrowth);
      if (best.slotOf.empty() || best.total.after(c.total))
        best = std::move(c);
    }
  for (size_t i = 0; i < buffers.size(); ++i)
    buffers[i].slot = best.slotOf[i];
  std::vector<Affine> slotOffset(best.slotSize.size());
  Affine total;
  for (size_t s = 0; s < best.slotSize.size(); ++s) {
    slotOffset[s] = total;
    total = total + best.slotSize[s];
  }
  peak = total;

  // The scratch buffer, once per call, then each buffer a view into it.
  MLIRContext *ctx = fn.getContext();
  OpBuilder b(ctx);
  b.setInsertionPointToStart(&body);
  Location loc = fn.getLoc();
  auto module = fn->getParentOfType<ModuleOp>();
  auto bytesType = MemRefType::get({ShapedType::kDynamic}, b.getI8Type());
  auto scratchFn = module.lookupSymbol<func::FuncOp>("dsrt_scratch");
  if (!scratchFn) {
    OpBuilder mb(module.getBodyRegion());
    scratchFn = func::FuncOp::create(
        mb, loc, "dsrt_scratch",
        mb.getFunctionType({body.getArgument(0).getType(), mb.getI64Type()},
                           {bytesType}));
    scratchFn.setPrivate();
    scratchFn->setAttr("llvm.emit_c_interface", mb.getUnitAttr());
  }
  Value tokens =
      memref::DimOp::create(b, loc, body.getArgument(1), int64_t(0));
  auto affineValue = [&](OpBuilder &ob, Affine a) -> Value {
    Value perToken = arith::MulIOp::create(
        ob, loc, tokens, arith::ConstantIndexOp::create(ob, loc, a.perToken));
    return arith::AddIOp::create(
        ob, loc, perToken, arith::ConstantIndexOp::create(ob, loc, a.fixed));
  };
  Value size = arith::IndexCastOp::create(b, loc, b.getI64Type(),
                                          affineValue(b, total));
  Value scratch =
      func::CallOp::create(b, loc, scratchFn,
                           ValueRange{body.getArgument(0), size})
          .getResult(0);
  for (Buffer &buf : buffers) {
    OpBuilder vb(buf.alloc);
    Value offset = affineValue(vb, slotOffset[size_t(buf.slot)]);
    Value view = memref::ViewOp::create(vb, buf.alloc.getLoc(),
                                        buf.alloc.getType(), scratch, offset,
                                        buf.alloc.getDynamicSizes());
    for (OpOperand &use : llvm::make_early_inc_range(buf.alloc->getUses()))
      if (isa<memref::DeallocOp>(use.getOwner()))
        use.getOwner()->erase();
    buf.alloc.replaceAllUsesWith(view);
    buf.alloc.erase();
  }
  return success();
}

struct PlanActivationsPass
    : mlir::ds::impl::DSPlanActivationsPassBase<PlanActivationsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    Builder b(module.getContext());
    for (auto fn : llvm::to_vector(module.getOps<func::FuncOp>())) {
      if (!fn->hasAttr("ds.entry_point") || fn.isDeclaration() ||
          fn.getNumArguments() < 5)
        continue;
      Affine peak;
      Planner planner(fn);
      if (failed(planner.run(peak))) {
        LLVM_DEBUG(llvm::dbgs() << "[" DEBUG_TYPE "] @" << fn.getName()
                                << ": sizes not affine in T, unplanned\n");
        fn->setAttr("ds.activation_bytes", b.getStringAttr("unplanned"));
        continue;
      }
      LLVM_DEBUG(llvm::dbgs() << "[" DEBUG_TYPE "] @" << fn.getName() << ": "
                              << peak.perToken << " bytes per token + "
                              << peak.fixed << "\n");
      fn->setAttr("ds.activation_bytes",
                  b.getDenseI64ArrayAttr({peak.perToken, peak.fixed}));
      if (planner.unplanned)
        fn->setAttr("ds.unplanned_buffers",
                    b.getI64IntegerAttr(planner.unplanned));
    }
  }
};

} // namespace
