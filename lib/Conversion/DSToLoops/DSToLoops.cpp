//===- DSToLoops.cpp - kernel-level ds ops -> loops over buffers ----------===//
//
// A dialect conversion. The target: every ds kernel op illegal, and any op
// left with a tensor or a latent cache illegal; the type converter turns
// tensors into memrefs and the cache into its memref. Entry points change
// ABI (a runtime context first, the logits written to a caller buffer), so
// a pattern rebuilds each one and converts its block signature (further
// [tokens, features] f32 inputs and results, the hidden states multi-token
// prediction exchanges, become caller buffers too); the
// kernel patterns (one per op, by family: see LoweringPatterns.h) each
// allocate their results and build their loop nest; the return pattern
// copies the logits out and frees every buffer the patterns allocated.
//
// Buffers are assigned here rather than by One-Shot Bufferize: entry points
// are straight-line code where every kernel writes a fresh buffer, except
// the cache, which every kernel updates in place; ds-plan-activations then
// packs those buffers into one scratch slab (see the pass description).
//
// Weight ops stay legal during the conversion: the patterns bind a weight
// where it is first used (LoweringState::operand) and the dead weight ops
// are erased afterwards.
//
//===----------------------------------------------------------------------===//
#include "ds/Conversion/Passes.h"
#include "LoweringPatterns.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Shard/IR/ShardDialect.h"
#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Debug.h"

#define DEBUG_TYPE "convert-ds-to-loops"

namespace mlir::ds {
#define GEN_PASS_DEF_CONVERTDSTOLOOPSPASS
#include "ds/Conversion/Passes.h.inc"
} // namespace mlir::ds

using namespace mlir;
using namespace mlir::ds;
using namespace mlir::ds::loops;

//===----------------------------------------------------------------------===//
// Type converter
//===----------------------------------------------------------------------===//

DSToLoopsTypeConverter::DSToLoopsTypeConverter(MLIRContext *ctx) {
  addConversion([](Type t) { return t; });
  addConversion([ctx](RankedTensorType t) -> Type {
    Type et = t.getElementType();
    if (isa<FloatType>(et))
      et = Float32Type::get(ctx); // kernels compute in f32
    return MemRefType::get(t.getShape(), et);
  });
  addConversion([](LatentCacheType t) -> Type {
    return KernelEmitter::cacheMemRefType(t);
  });
  addConversion([](PagedLatentCacheType t) -> Type {
    return KernelEmitter::cacheMemRefType(t);
  });
  addConversion([](PagedKVCacheType t) -> Type {
    return KernelEmitter::cacheMemRefType(t);
  });
  // Entry arguments are dynamic (one ABI for prefill and decode) where the
  // IR may know a static size: a cast gives users the shape they expect.
  addTargetMaterialization([](OpBuilder &b, MemRefType type, ValueRange inputs,
                              Location loc) -> Value {
    if (inputs.size() != 1 || !isa<MemRefType>(inputs[0].getType()) ||
        !memref::CastOp::areCastCompatible(inputs[0].getType(), type))
      return Value();
    return memref::CastOp::create(b, loc, type, inputs[0]);
  });
}

//===----------------------------------------------------------------------===//
// Entry points
//===----------------------------------------------------------------------===//

namespace {

bool isWeightOp(Operation *op) {
  return isa<WeightOp, StackedWeightOp, DequantizeOp, ConcatWeightsOp>(op);
}

bool isEntryPoint(func::FuncOp fn) {
  return !fn.isDeclaration() && fn.getNumArguments() >= 3 &&
         isa<LatentCacheType, PagedLatentCacheType, PagedKVCacheType>(
             fn.getArgumentTypes()[2]);
}

bool isBufferLevel(Type t) {
  return !isa<TensorType, LatentCacheType, PagedLatentCacheType,
              PagedKVCacheType>(t);
}

/// The caller's buffer for an entry point's input or result past (tokens,
/// positions, cache) and (logits, cache): a [tokens, features] f32 tensor
/// (multi-token prediction's hidden states), dynamic in tokens like every
/// entry buffer; null for any other type.
MemRefType extraEntryBuffer(Type t) {
  auto tt = dyn_cast<RankedTensorType>(t);
  // A ragged step's sequence description (query offsets, context lengths,
  // block tables, logits rows): i32 vectors and tables of any size.
  if (tt && tt.getElementType().isInteger(32) &&
      (tt.getRank() == 1 || tt.getRank() == 2))
    return MemRefType::get(
        SmallVector<int64_t>(tt.getRank(), ShapedType::kDynamic),
        tt.getElementType());
  if (!tt || tt.getRank() != 2 || !tt.getElementType().isF32() ||
      tt.isDynamicDim(1))
    return {};
  return MemRefType::get({ShapedType::kDynamic, tt.getDimSize(1)},
                         tt.getElementType());
}

/// Checked before the conversion so a bad signature fails with its own
/// message rather than as an op the conversion could not legalize.
LogicalResult checkEntrySignature(func::FuncOp fn) {
  FunctionType type = fn.getFunctionType();
  if (type.getNumInputs() < 3 || type.getNumResults() < 2 ||
      !isa<LatentCacheType, PagedLatentCacheType, PagedKVCacheType>(
          type.getInput(2)) ||
      type.getResult(1) != type.getInput(2) ||
      !isa<RankedTensorType>(type.getResult(0)))
    return fn.emitError() << "entry point must take (tokens, positions, "
                             "cache) and return (logits, cache)";
  auto extra = llvm::concat<const Type>(type.getInputs().drop_front(3),
                                        type.getResults().drop_front(2));
  if (llvm::any_of(extra, [](Type t) { return !extraEntryBuffer(t); }))
    return fn.emitError() << "entry point extra inputs/results must be "
                             "[tokens, features] f32 tensors (or i32 "
                             "vectors and tables as inputs)";
  if (llvm::any_of(type.getResults().drop_front(2), [](Type t) {
        return !cast<RankedTensorType>(t).getElementType().isF32();
      }))
    return fn.emitError() << "entry point extra results must be "
                             "[tokens, features] f32 tensors";
  return success();
}

/// Every member of the whole stack, also when this rank binds some of them
/// (the runtime picks its own by rank).
SmallVector<std::string> weightMembers(Operation *op) {
  if (auto w = dyn_cast<WeightOp>(op))
    return {w.getName().str()};
  auto s = cast<StackedWeightOp>(op);
  SmallVector<std::string> out;
  int64_t n = s.getFullShape()[0];
  for (int64_t i = 0; i < n; ++i)
    out.push_back(s.getMemberName(i));
  return out;
}

/// A weight op's split in member terms (BindingTable::Binding::splitDim).
std::pair<int64_t, int64_t> memberSplit(Operation *op) {
  std::optional<ArrayRef<int64_t>> split;
  bool stacked = false;
  if (auto w = dyn_cast<WeightOp>(op))
    split = w.getSplit();
  else if (auto s = dyn_cast<StackedWeightOp>(op)) {
    split = s.getSplit();
    stacked = true;
  }
  if (!split)
    return {-1, 1};
  int64_t dim = (*split)[0], parts = (*split)[1];
  return {stacked ? dim - 1 : dim, parts};
}

/// Describes every weight chain of `fn` in `pending` before the conversion;
/// fails with a message on a chain the runtime cannot bind.
LogicalResult describeWeights(func::FuncOp fn,
                              DenseMap<Value, PendingWeight> &pending) {
  for (Operation &op : fn.getBody().front()) {
    if (isa<WeightOp, StackedWeightOp>(op)) {
      auto t = cast<RankedTensorType>(op.getResult(0).getType());
      auto [dim, parts] = memberSplit(&op);
      pending[op.getResult(0)] = {SmallVector<int64_t>(t.getShape()),
                                  weightMembers(&op), false, dim, parts};
      continue;
    }
    if (auto dq = dyn_cast<DequantizeOp>(op)) {
      Operation *src = dq.getWeight().getDefiningOp();
      if (!src || !isa<WeightOp, StackedWeightOp>(src))
        return op.emitError() << "ds.dequantize must consume a ds.weight";
      // The runtime loads the scales by the weight's name: computed ones
      // would be ignored.
      Operation *scales = dq.getScaleInv().getDefiningOp();
      if (!scales || !isa<WeightOp, StackedWeightOp>(scales))
        return op.emitError()
               << "ds.dequantize scales must be a ds.weight (the runtime "
                  "loads them by the weight's name)";
      auto t = dq.getResult().getType();
      auto [dim, parts] = memberSplit(src);
      pending[dq.getResult()] = {SmallVector<int64_t>(t.getShape()),
                                 weightMembers(src), true, dim, parts};
      continue;
    }
    auto c = dyn_cast<ConcatWeightsOp>(op);
    if (!c)
      continue;
    auto a = pending.find(c.getFirst()), bw = pending.find(c.getSecond());
    // Members fill the binding one after the other, each the same number
    // of elements: two single weights, or a stack and one more slice.
    bool stackPlusSlice = c.getSecond().getType().getRank() + 1 ==
                          c.getFirst().getType().getRank();
    if (a == pending.end() || bw == pending.end() ||
        a->second.dequantize != bw->second.dequantize ||
        bw->second.members.size() != 1 ||
        (!stackPlusSlice && a->second.members.size() != 1))
      return op.emitError() << "ds.concat_weights must stack checkpoint "
                               "weights of the same kind";
    // Pieces of members concatenate when every member is cut alike.
    if (a->second.splitDim != bw->second.splitDim ||
        a->second.splitParts != bw->second.splitParts ||
        (a->second.splitParts > 1 && a->second.splitDim < 0))
      return op.emitError() << "ds.concat_weights of weights split "
                               "differently over ranks";
    SmallVector<std::string> members = a->second.members;
    members.push_back(bw->second.members.front());
    pending[c.getResult()] = {SmallVector<int64_t>(c.getType().getShape()),
                              members, a->second.dequantize,
                              a->second.splitDim, a->second.splitParts};
  }
  return success();
}

/// `@f(tokens, positions, cache, in...) -> (logits, cache, out...)` becomes
/// `@f(ctx, tokens, positions, cache, in..., logits_out, out...)`: the
/// runtime context first, the cache updated in place, the logits (and any
/// further results) written to the caller's buffers (destination passing,
/// the same ABI for every entry point).
struct EntryPointLowering : OpConversionPattern<func::FuncOp> {
  EntryPointLowering(const TypeConverter &converter, MLIRContext *ctx,
                     LoweringState &state)
      : OpConversionPattern(converter, ctx), state(state) {}

  LogicalResult
  matchAndRewrite(func::FuncOp fn, OpAdaptor,
                  ConversionPatternRewriter &rewriter) const override {
    FunctionType oldType = fn.getFunctionType();
    // checkEntrySignature has vetted the types.
    Type cacheType = oldType.getInput(2);
    auto logitsType = cast<RankedTensorType>(oldType.getResult(0));
    LLVM_DEBUG(llvm::dbgs() << DEBUG_TYPE ": entry point @" << fn.getName()
                            << "\n");

    auto ids = MemRefType::get({ShapedType::kDynamic}, rewriter.getI32Type());
    auto logitsMem = MemRefType::get(
        {ShapedType::kDynamic, logitsType.getDimSize(1)}, rewriter.getF32Type());
    TypeConverter::SignatureConversion sig(oldType.getNumInputs());
    sig.addInputs({LLVM::LLVMPointerType::get(rewriter.getContext())});
    sig.addInputs(0, ids);
    sig.addInputs(1, ids);
    sig.addInputs(2, KernelEmitter::anyCacheMemRefType(cacheType));
    for (unsigned i = 3; i < oldType.getNumInputs(); ++i)
      sig.addInputs(i, extraEntryBuffer(oldType.getInput(i)));
    sig.addInputs({logitsMem});
    for (Type t : oldType.getResults().drop_front(2))
      sig.addInputs({extraEntryBuffer(t)});

    auto newFn = func::FuncOp::create(
        rewriter, fn.getLoc(), fn.getName(),
        rewriter.getFunctionType(sig.getConvertedTypes(), {}));
    newFn->setAttr("llvm.emit_c_interface", rewriter.getUnitAttr());
    newFn->setAttr("ds.entry_point", rewriter.getUnitAttr());
    rewriter.inlineRegionBefore(fn.getBody(), newFn.getBody(), newFn.end());
    Block *entry = rewriter.applySignatureConversion(
        &newFn.getBody().front(), sig, getTypeConverter());
    state.context[newFn] = entry->getArgument(0);
    rewriter.eraseOp(fn);
    return success();
  }

  LoweringState &state;
};

/// The logits and the results after the cache go to the caller's buffers
/// (the last arguments, in order); every buffer the kernel patterns
/// allocated in the entry block is freed.
struct ReturnLowering : KernelPattern<func::ReturnOp> {
  using KernelPattern::KernelPattern;

  LogicalResult
  matchAndRewrite(func::ReturnOp ret, OpAdaptor adaptor,
                  ConversionPatternRewriter &rewriter) const override {
    auto fn = ret->getParentOfType<func::FuncOp>();
    unsigned numResults = adaptor.getOperands().size();
    Block *block = ret->getBlock();
    if (!fn->hasAttr("ds.entry_point") || numResults < 2 ||
        block->getNumArguments() < numResults + 3)
      return rewriter.notifyMatchFailure(ret, "not an entry point's return");
    KernelEmitter k(rewriter, ret.getLoc(), fn->getParentOfType<ModuleOp>());
    // Buffers of the logits and of results 2.. (the cache is updated in
    // place and has none).
    unsigned firstOut = block->getNumArguments() - (numResults - 1);
    for (unsigned i = 0; i < numResults; ++i) {
      if (i == 1)
        continue;
      Value dst = block->getArgument(firstOut + (i == 0 ? 0 : i - 1));
      Value src = use(k, ret, ret.getOperand(i), adaptor.getOperands()[i]);
      // The logits GEMM wrote the caller's buffer itself (callerLogits).
      if (src != dst)
        k.copy(src, dst);
    }
    SmallVector<Value> allocs;
    for (Operation &op : *block)
      if (auto a = dyn_cast<memref::AllocOp>(op))
        allocs.push_back(a);
    for (Value a : allocs)
      memref::DeallocOp::create(rewriter, ret.getLoc(), a);
    rewriter.replaceOpWithNewOp<func::ReturnOp>(ret);
    return success();
  }
};

//===----------------------------------------------------------------------===//
// Weights only GEMMs read
//===----------------------------------------------------------------------===//

/// True when every use of `v` (through casts, and through the arguments of
/// outlined functions that pass it on: a naive attention driver hands
/// kv_b_proj to its GEMM) is the weight operand of a runtime call that
/// reads weights in their stored format.
bool onlyFeedsGemms(Value v, ModuleOp module) {
  for (OpOperand &use : v.getUses()) {
    Operation *user = use.getOwner();
    if (auto cast = dyn_cast<memref::CastOp>(user)) {
      if (!onlyFeedsGemms(cast.getResult(), module))
        return false;
      continue;
    }
    auto call = dyn_cast<func::CallOp>(user);
    if (!call)
      return false;
    auto callee = module.lookupSymbol<func::FuncOp>(call.getCallee());
    if (callee && !callee.isExternal()) {
      if (!onlyFeedsGemms(callee.getArgument(use.getOperandNumber()), module))
        return false;
      continue;
    }
    // The fused experts' calls take the gate (2) and the up weight (3).
    StringRef name = call.getCallee();
    bool fusedExperts = name == "dsrt_grouped_linear_silu_mul_f32" ||
                        name == "dsrt_grouped_linear_silu_mul_gather_f32";
    bool expertsUp = use.getOperandNumber() == 3 && fusedExperts;
    bool gemmWeight =
        expertsUp ||
        (use.getOperandNumber() == 2 &&
         (fusedExperts ||
          llvm::is_contained({StringRef("dsrt_linear_f32"),
                              StringRef("dsrt_linear_silu_mul_f32"),
                              StringRef("dsrt_grouped_linear_f32"),
                              StringRef("dsrt_grouped_linear_gather_f32"),
                              StringRef("dsrt_head_matmul_f32"),
                              StringRef("dsrt_head_matmul_skip_f32"),
                              StringRef("dsrt_linear_exact_f32")},
                             name)));
    bool embeddingTable =
        use.getOperandNumber() == 1 && call.getCallee() == "dsrt_embedding_f32";
    if (!gemmWeight && !embeddingTable)
      return false;
  }
  return true;
}

/// Clears gemmOnly of every binding some generated code reads itself.
void markGemmOnly(ModuleOp module, BindingTable &table) {
  module.walk([&](func::CallOp call) {
    if (!call.getCallee().starts_with("dsrt_weight_"))
      return;
    auto index = call.getOperand(1).getDefiningOp<arith::ConstantOp>();
    if (!index)
      return;
    int64_t i = cast<IntegerAttr>(index.getValue()).getInt();
    if (i >= 0 && i < int64_t(table.bindings.size()) &&
        !onlyFeedsGemms(call.getResult(0), module))
      table.bindings[size_t(i)].gemmOnly = false;
  });
}

/// When an entry point's logits are one GEMM's output and its weight feeds
/// nothing else, the runtime may skip the rows of that GEMM no caller
/// reads: remember the weight (by its first member, the binding's key).
void findLogitsWeight(func::FuncOp fn, const LoweringState &state,
                      llvm::StringSet<> &names) {
  auto ret = cast<func::ReturnOp>(fn.getBody().front().getTerminator());
  auto linear = ret.getOperand(0).getDefiningOp<LinearOp>();
  if (!linear || !linear.getWeight().hasOneUse())
    return;
  auto it = state.pending.find(linear.getWeight());
  if (it != state.pending.end())
    names.insert(it->second.members.front());
}

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

struct ConvertDSToLoopsPass
    : mlir::ds::impl::ConvertDSToLoopsPassBase<ConvertDSToLoopsPass> {
  using Base::Base;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = &getContext();
    if (attentionChunk < 1) {
      module.emitError() << "convert-ds-to-loops: attention-chunk must be "
                            "positive, got "
                         << attentionChunk;
      return signalPassFailure();
    }
    if (attentionHeadGroup < 0) {
      module.emitError() << "convert-ds-to-loops: attention-head-group must "
                            "be 0 (automatic) or positive, got "
                         << static_cast<int64_t>(attentionHeadGroup);
      return signalPassFailure();
    }
    LoweringState state;
    llvm::StringSet<> logitsWeights;
    state.traceRouting = traceRouting;
    state.attentionChunk = attentionChunk;
    state.gemmEpilogue = gemmEpilogue;
    state.runtimeEmbedding = runtimeEmbedding;
    state.headMatmulRows = headMatmulRows;
    state.headMatmulCalls = headMatmulCalls;
    state.cacheDecodeCalls = cacheDecodeCalls;
    state.latentAttentionCalls = latentAttentionCalls;
    state.moeRowLoops = moeRowLoops;
    state.attentionHeadGroup = attentionHeadGroup;

    SmallVector<Operation *> entryPoints;
    for (auto fn : module.getOps<func::FuncOp>()) {
      if (!isEntryPoint(fn))
        continue;
      if (failed(checkEntrySignature(fn)) || failed(rejectModelLevelOps(fn)) ||
          failed(describeWeights(fn, state.pending)))
        return signalPassFailure();
      findLogitsWeight(fn, state, logitsWeights);
      entryPoints.push_back(fn);
    }
    Builder b(ctx);
    if (entryPoints.empty()) {
      module->setAttr("ds.bindings", state.table.toAttr(b));
      return;
    }

    DSToLoopsTypeConverter converter(ctx);
    ConversionTarget target(*ctx);
    target.addIllegalDialect<DSDialect>();
    target.addLegalOp<WeightOp, StackedWeightOp, DequantizeOp,
                      ConcatWeightsOp>();
    // Collectives become communicator calls; the grid is read below.
    target.addIllegalDialect<shard::ShardDialect>();
    target.addLegalOp<shard::GridOp>();
    target.addDynamicallyLegalOp<func::FuncOp>(
        [](func::FuncOp fn) { return !isEntryPoint(fn); });
    // Scalar glue (index constants, arithmetic on sizes) stays as it is;
    // anything else still holding a tensor must be lowered by a pattern.
    target.markUnknownOpDynamicallyLegal([](Operation *op) {
      return llvm::all_of(op->getOperandTypes(), isBufferLevel) &&
             llvm::all_of(op->getResultTypes(), isBufferLevel);
    });

    RewritePatternSet patterns(ctx);
    patterns.add<EntryPointLowering>(converter, ctx, state);
    patterns.add<ReturnLowering>(converter, ctx, state);
    populateElementwisePatterns(converter, state, patterns);
    populateAttentionPatterns(converter, state, patterns);
    populateNaivePagedAttentionPatterns(converter, state, patterns);
    populatePerHeadCachePatterns(converter, state, patterns);
    populateMoEPatterns(converter, state, patterns);
    populateGemmPatterns(converter, state, patterns);
    populateMTPPatterns(converter, state, patterns);
    populateShardPatterns(converter, state, patterns);

    ConversionConfig config;
    // Only patterns rewrite: the IR of this stage is what they build.
    config.foldingMode = DialectConversionFoldingMode::Never;
    if (failed(applyPartialConversion(entryPoints, target, std::move(patterns),
                                      config)))
      return signalPassFailure();

    // The weight ops are dead once every user is lowered.
    for (auto [fn, unused] : state.context) {
      SmallVector<Operation *> weights;
      for (Operation &op : cast<func::FuncOp>(fn).getBody().front())
        if (isWeightOp(&op))
          weights.push_back(&op);
      for (Operation *op : llvm::reverse(weights)) {
        if (!op->use_empty()) {
          op->emitError() << "convert-ds-to-loops: weight still used after "
                             "the conversion";
          return signalPassFailure();
        }
        op->erase();
      }
    }
    // The job's size goes to the manifest; the grid has no lowering.
    for (auto grid : llvm::make_early_inc_range(module.getOps<shard::GridOp>())) {
      module->setAttr("ds.world_size",
                      b.getI64IntegerAttr(grid.getShape().front()));
      grid.erase();
    }
    markGemmOnly(module, state.table);
    for (BindingTable::Binding &bd : state.table.bindings)
      bd.logits = logitsWeights.contains(bd.members.front());
    buildGreedySampler(module);
    LLVM_DEBUG(llvm::dbgs() << DEBUG_TYPE ": " << entryPoints.size()
                            << " entry points, "
                            << state.table.bindings.size()
                            << " weight bindings\n");
    module->setAttr("ds.bindings", state.table.toAttr(b));
  }

  /// Model-level ops have a known cure: name the passes that remove them.
  static LogicalResult rejectModelLevelOps(func::FuncOp fn) {
    for (Operation &op : fn.getBody().front())
      if (isa<MLAOp, MoEOp, MLPOp, LMHeadOp, MTPProjectOp>(op))
        return op.emitError()
               << "'" << op.getName()
               << "' must be rewritten by the ds passes "
                  "(ds-absorb-mla, ds-dispatch-experts, "
                  "ds-decompose-dense) before convert-ds-to-loops";
    return success();
  }
};

} // namespace
