//===- GemmPatterns.cpp - GEMMs and weights -> runtime calls --------------===//
//
// GEMMs are calls into the runtime (BLAS on the CPU, cuBLAS on the GPU).
// Weights never enter the IR: each ds.weight chain (stacked, dequantised,
// concatenated) becomes one binding the runtime fills from the checkpoint,
// numbered once per name across entry points and bound where first used.
//
//===----------------------------------------------------------------------===//
#include "LoweringPatterns.h"

using namespace mlir;
using namespace mlir::ds;
using namespace mlir::ds::loops;

//===----------------------------------------------------------------------===//
// Weight bindings
//===----------------------------------------------------------------------===//

int64_t BindingTable::get(ArrayRef<int64_t> shape,
                          ArrayRef<std::string> members, bool dequantize,
                          int64_t splitDim, int64_t splitParts) {
  auto it = byName.find(members.front());
  if (it != byName.end())
    return it->second;
  int64_t index = bindings.size();
  bindings.push_back({SmallVector<int64_t>(shape),
                      SmallVector<std::string>(members), dequantize});
  bindings.back().splitDim = splitDim;
  bindings.back().splitParts = splitParts;
  byName[members.front()] = index;
  return index;
}

ArrayAttr BindingTable::toAttr(Builder &b) const {
  SmallVector<Attribute> out;
  for (auto [i, bd] : llvm::enumerate(bindings)) {
    SmallVector<Attribute> members;
    for (const std::string &m : bd.members)
      members.push_back(b.getStringAttr(m));
    SmallVector<NamedAttribute> fields = {
        b.getNamedAttr("index", b.getI64IntegerAttr(i)),
        b.getNamedAttr("shape", b.getDenseI64ArrayAttr(bd.shape)),
        b.getNamedAttr("members", b.getArrayAttr(members)),
        b.getNamedAttr("dequantize", b.getBoolAttr(bd.dequantize)),
        b.getNamedAttr("gemm_only", b.getBoolAttr(bd.gemmOnly)),
    };
    if (bd.logits)
      fields.push_back(b.getNamedAttr("logits", b.getUnitAttr()));
    if (bd.splitParts > 1)
      fields.push_back(b.getNamedAttr(
          "split", b.getDenseI64ArrayAttr({bd.splitDim, bd.splitParts})));
    out.push_back(b.getDictionaryAttr(fields));
  }
  return b.getArrayAttr(out);
}

Value LoweringState::operand(KernelEmitter &k, Value ctx, Value original,
                             Value converted) {
  auto it = pending.find(original);
  if (it == pending.end())
    return converted;
  Value &b = bound[original];
  if (!b) {
    const PendingWeight &w = it->second;
    b = k.weight(ctx,
                 table.get(w.shape, w.members, w.dequantize, w.splitDim,
                           w.splitParts),
                 w.shape);
  }
  return b;
}

//===----------------------------------------------------------------------===//
// GEMMs
//===----------------------------------------------------------------------===//

namespace {

/// The caller's logits buffer of the entry point returning `result` as its
/// logits (operand 0 of its return, the result's only use), or null: the
/// GEMM then writes the logits there itself, with no [T, vocab] buffer of
/// its own and no copy (and a call that asks for the last rows only
/// touches no page of the others).
Value callerLogits(Value result, Type type) {
  if (!result.hasOneUse())
    return {};
  OpOperand &only = *result.getUses().begin();
  auto ret = dyn_cast<func::ReturnOp>(only.getOwner());
  if (!ret || only.getOperandNumber() != 0)
    return {};
  auto fn = ret->getParentOfType<func::FuncOp>();
  unsigned numResults = ret.getNumOperands();
  Block *block = ret->getBlock();
  // Converted entry points only (the pass converts the signature first):
  // the logits buffer follows the cache's operands, results 2.. after it.
  if (!fn || !fn->hasAttr("ds.entry_point") || numResults < 2 ||
      block->getNumArguments() < numResults + 3)
    return {};
  Value out = block->getArgument(block->getNumArguments() - (numResults - 1));
  return out.getType() == type ? out : Value();
}

struct LinearLowering : KernelPattern<LinearOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(LinearOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    Value in = use(k, op, op.getInput(), adaptor.getInput());
    Value out = callerLogits(op.getResult(),
                             getTypeConverter()->convertType(op.getType()));
    if (!out)
      out = alloc(k, op.getResult(), {k.dim(in, 0)});
    k.linear(contextOf(op), in,
             use(k, op, op.getWeight(), adaptor.getWeight()), out);
    rewriter.replaceOp(op, out);
    return success();
  }
};

/// With the GEMM epilogue (CPU) one runtime call; without (cuBLAS has none)
/// a GEMM into a [T, 2F] buffer and a SiLU-mul kernel.
struct LinearSiluMulLowering : KernelPattern<LinearSiluMulOp> {
  using KernelPattern::KernelPattern;
  LogicalResult
  matchAndRewrite(LinearSiluMulOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    Value ctx = contextOf(op);
    Value in = use(k, op, op.getInput(), adaptor.getInput());
    Value out = alloc(k, op.getResult(), {k.dim(in, 0)});
    Value w = use(k, op, op.getWeight(), adaptor.getWeight());
    if (state.gemmEpilogue) {
      k.linearSiluMul(ctx, in, w, out);
      rewriter.replaceOp(op, out);
      return success();
    }
    int64_t packed =
        cast<RankedTensorType>(op.getWeight().getType()).getDimSize(0);
    Value gu = k.alloc(RankedTensorType::get({ShapedType::kDynamic, packed},
                                             rewriter.getF32Type()),
                       {k.dim(in, 0)});
    k.linear(ctx, in, w, gu);
    k.outline("silu_mul_packed", "", {gu, out},
              [&](ValueRange a) { k.siluMulPacked(a[0], a[1]); });
    rewriter.replaceOp(op, out);
    return success();
  }
};

/// The offsets a grouped product of `local` experts' weights runs over.
/// Expert parallelism (more groups than local experts): this rank's experts
/// start at rank * local; their rows are computed in place and the others'
/// rows of `out` are zeroed here, so that the combine sums this rank's part
/// of every token (silu(0) * 0 is zero too).
Value rankOffsets(KernelEmitter &k, Location loc, Value ctx, Value offsets,
                  int64_t groups, int64_t local, Value out) {
  if (groups <= local)
    return offsets;
  OpBuilder &b = k.builder();
  Value rank =
      arith::IndexCastOp::create(b, loc, b.getIndexType(), k.commRank(ctx));
  Value first = k.mul(rank, k.cIdx(local));
  Value mine = k.alloc(RankedTensorType::get({local + 1}, b.getI32Type()));
  Value c0 = k.cIdx(0), c1 = k.cIdx(1);
  scf::ForOp::create(
      b, loc, c0, k.cIdx(local + 1), c1, ValueRange{},
      [&](OpBuilder &fb, Location l, Value i, ValueRange) {
        Value src = arith::AddIOp::create(fb, l, first, i);
        Value v = memref::LoadOp::create(fb, l, offsets, ValueRange{src});
        memref::StoreOp::create(fb, l, v, mine, ValueRange{i});
        scf::YieldOp::create(fb, l);
      });
  Value zero = k.cF32(0.0);
  scf::ParallelOp::create(
      b, loc, ValueRange{c0, c0}, ValueRange{k.dim(out, 0), k.dim(out, 1)},
      ValueRange{c1, c1}, [&](OpBuilder &pb, Location l, ValueRange iv) {
        memref::StoreOp::create(pb, l, zero, out, iv);
      });
  return mine;
}

/// What a grouped product's lowering starts from, whichever op: the input,
/// a result buffer of its rows and the offsets as the op gives them, with
/// what rankOffsets needs to take this rank's share of them.
struct GroupedOperands {
  /// rowOfSlot: the gather form's index (else null).
  Value ctx, in, out, offsets, rowOfSlot;
  int64_t groups, local;
  Location loc;

  /// The offsets over this rank's experts for a product into `buffer`.
  Value share(KernelEmitter &k, Value buffer) const {
    return rankOffsets(k, loc, ctx, offsets, groups, local, buffer);
  }
};

/// Base of the grouped products' lowerings (ds.grouped_matmul and
/// ds.grouped_matmul_silu_mul): one place that reads their common operands.
template <typename Op> struct GroupedPattern : KernelPattern<Op> {
  using KernelPattern<Op>::KernelPattern;

protected:
  /// `local`: how many experts' weights the op holds (the offsets may count
  /// more groups: expert parallelism).
  GroupedOperands operands(KernelEmitter &k, Op op,
                           typename Op::Adaptor adaptor, int64_t local) const {
    Value in = this->use(k, op, op.getInput(), adaptor.getInput());
    Value rowOfSlot;
    if (op.getRowOfSlot())
      rowOfSlot = this->use(k, op, op.getRowOfSlot(), adaptor.getRowOfSlot());
    // A row per slot when gathered, else per input row.
    Value out =
        this->alloc(k, op.getResult(), {k.dim(rowOfSlot ? rowOfSlot : in, 0)});
    Value offsets = this->use(k, op, op.getOffsets(), adaptor.getOffsets());
    return {this->contextOf(op),
            in,
            out,
            offsets,
            rowOfSlot,
            op.getOffsets().getType().getDimSize(0) - 1,
            local,
            op.getLoc()};
  }
};

struct GroupedMatmulLowering : GroupedPattern<GroupedMatmulOp> {
  using GroupedPattern::GroupedPattern;
  LogicalResult
  matchAndRewrite(GroupedMatmulOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    GroupedOperands g =
        operands(k, op, adaptor, op.getWeights().getType().getDimSize(0));
    Value offsets = g.share(k, g.out);
    k.groupedLinear(g.ctx, g.in,
                    use(k, op, op.getWeights(), adaptor.getWeights()), offsets,
                    g.out, g.rowOfSlot);
    rewriter.replaceOp(op, g.out);
    return success();
  }
};

/// With the GEMM epilogue (CPU) one runtime call; without (the GPU) the two
/// grouped GEMMs and a SiLU-mul kernel, as before the fusion.
struct GroupedMatmulSiluMulLowering : GroupedPattern<GroupedMatmulSiluMulOp> {
  using GroupedPattern::GroupedPattern;
  LogicalResult
  matchAndRewrite(GroupedMatmulSiluMulOp op, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    KernelEmitter k = emitter(rewriter, op);
    GroupedOperands g =
        operands(k, op, adaptor, op.getGate().getType().getDimSize(0));
    Value wg = use(k, op, op.getGate(), adaptor.getGate());
    Value wu = use(k, op, op.getUp(), adaptor.getUp());
    if (state.gemmEpilogue) {
      k.groupedLinearSiluMul(g.ctx, g.in, wg, wu, g.share(k, g.out), g.out,
                             g.rowOfSlot);
      rewriter.replaceOp(op, g.out);
      return success();
    }
    auto f = RankedTensorType::get(
        {ShapedType::kDynamic, op.getGate().getType().getDimSize(1)},
        rewriter.getF32Type());
    Value rows = k.dim(g.out, 0);
    Value gate = k.alloc(f, {rows}), up = k.alloc(f, {rows});
    k.groupedLinear(g.ctx, g.in, wg, g.share(k, gate), gate, g.rowOfSlot);
    k.groupedLinear(g.ctx, g.in, wu, g.share(k, up), up, g.rowOfSlot);
    k.outline("silu_mul", "", {gate, up, g.out},
              [&](ValueRange a) { k.siluMul(a[0], a[1], a[2]); });
    rewriter.replaceOp(op, g.out);
    return success();
  }
};

} // namespace

void mlir::ds::loops::populateGemmPatterns(const TypeConverter &converter,
                                           LoweringState &state,
                                           RewritePatternSet &patterns) {
  patterns.add<LinearLowering, LinearSiluMulLowering, GroupedMatmulLowering,
               GroupedMatmulSiluMulLowering>(converter, patterns.getContext(),
                                             state);
}
