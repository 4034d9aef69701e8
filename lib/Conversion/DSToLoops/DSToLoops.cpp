//===- DSToLoops.cpp - kernel-level ds ops -> loops over buffers ----------===//
//
// The entry points are straight-line code over tensors, so buffers are
// assigned directly: every tensor value gets one buffer (an alloc, or a view
// of another buffer for reshapes), freed when the function returns. Each
// kernel op becomes a loop nest: scf.parallel over independent iterations,
// scf.for for reductions, the same nest the GPU path maps to threads. GEMMs
// and weight bindings are calls into the runtime.
//
//===----------------------------------------------------------------------===//
#include "ds/Conversion/Passes.h"
#include "KernelEmitter.h"
#include "MTPKernels.h"

#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/StringMap.h"

#define DEBUG_TYPE "convert-ds-to-loops"

namespace mlir::ds {
#define GEN_PASS_DEF_CONVERTDSTOLOOPSPASS
#include "ds/Conversion/Passes.h.inc"
} // namespace mlir::ds

using namespace mlir;
using namespace mlir::ds;
using namespace mlir::ds::loops;

namespace {

/// Weight buffers the runtime binds, shared by all entry points.
struct BindingTable {
  struct Binding {
    SmallVector<int64_t> shape;
    SmallVector<std::string> members;
    bool dequantize = false;
    /// Read only by the runtime's GEMMs: the runtime may store it in
    /// another element type (bf16) since no generated code dereferences it.
    bool gemmOnly = true;
  };
  std::vector<Binding> bindings;
  llvm::StringMap<int64_t> byName;

  int64_t get(ArrayRef<int64_t> shape, ArrayRef<std::string> members,
              bool dequantize) {
    auto it = byName.find(members.front());
    if (it != byName.end())
      return it->second;
    int64_t index = bindings.size();
    bindings.push_back({SmallVector<int64_t>(shape),
                        SmallVector<std::string>(members), dequantize});
    byName[members.front()] = index;
    return index;
  }

  /// `ds.bindings` on the module: what the artifact manifest lists.
  ArrayAttr toAttr(Builder &b) const {
    SmallVector<Attribute> out;
    for (auto [i, bd] : llvm::enumerate(bindings)) {
      SmallVector<Attribute> members;
      for (const std::string &m : bd.members)
        members.push_back(b.getStringAttr(m));
      out.push_back(b.getDictionaryAttr({
          b.getNamedAttr("index", b.getI64IntegerAttr(i)),
          b.getNamedAttr("shape", b.getDenseI64ArrayAttr(bd.shape)),
          b.getNamedAttr("members", b.getArrayAttr(members)),
          b.getNamedAttr("dequantize", b.getBoolAttr(bd.dequantize)),
          b.getNamedAttr("gemm_only", b.getBoolAttr(bd.gemmOnly)),
      }));
    }
    return b.getArrayAttr(out);
  }
};

class FunctionLowering {
public:
  FunctionLowering(func::FuncOp fn, BindingTable &table, ModuleOp module,
                   bool traceRouting, int64_t attentionChunk,
                   bool gemmEpilogue)
      : fn(fn), table(table), module(module), traceRouting(traceRouting),
        attentionChunk(attentionChunk), gemmEpilogue(gemmEpilogue) {}

  LogicalResult run();

private:
  /// A weight seen but not yet bound: bound on first use only, so the
  /// scales of a dequantised weight are never loaded on their own.
  struct PendingWeight {
    SmallVector<int64_t> shape;
    SmallVector<std::string> members;
    bool dequantize = false;
  };

  Value get(Value old);
  LogicalResult lowerOp(Operation *op);
  Value bind(const PendingWeight &w);

  func::FuncOp fn;
  BindingTable &table;
  ModuleOp module;
  std::unique_ptr<KernelEmitter> k;
  IRMapping map;
  DenseMap<Value, PendingWeight> pending;
  SmallVector<Value> allocs;
  Value ctx;
  bool traceRouting;
  int64_t attentionChunk;
  bool gemmEpilogue;
  int64_t moeOrdinal = 0;
};

SmallVector<std::string> weightMembers(Operation *op) {
  if (auto w = dyn_cast<WeightOp>(op))
    return {w.getName().str()};
  auto s = cast<StackedWeightOp>(op);
  SmallVector<std::string> out;
  int64_t n = s.getResult().getType().getDimSize(0);
  for (int64_t i = 0; i < n; ++i)
    out.push_back(s.getMemberName(i));
  return out;
}

Value FunctionLowering::bind(const PendingWeight &w) {
  int64_t index = table.get(w.shape, w.members, w.dequantize);
  return k->weight(ctx, index, w.shape);
}

Value FunctionLowering::get(Value old) {
  Value v = map.lookupOrNull(old);
  if (!v) {
    auto it = pending.find(old);
    assert(it != pending.end() && "value used before it was lowered");
    v = bind(it->second);
    map.map(old, v);
  }
  // Entry arguments are dynamic (one ABI for prefill and decode) where the
  // IR may know a static size: give each use the shape its op expects.
  auto tt = dyn_cast<RankedTensorType>(old.getType());
  auto mt = dyn_cast<MemRefType>(v.getType());
  if (tt && mt && tt.getShape() != mt.getShape())
    v = memref::CastOp::create(k->builder(), fn.getLoc(),
                               MemRefType::get(tt.getShape(),
                                               mt.getElementType()),
                               v);
  return v;
}

LogicalResult FunctionLowering::run() {
  OpBuilder b(fn);
  Location loc = fn.getLoc();
  MLIRContext *mctx = fn.getContext();
  auto oldType = fn.getFunctionType();
  if (oldType.getNumInputs() < 3 || oldType.getNumResults() < 2)
    return fn.emitError() << "entry point must take (tokens, positions, "
                             "cache) and return (logits, cache)";
  // Further inputs and results ([tokens, features] f32: the hidden states
  // of multi-token prediction) become memref arguments after the cache and
  // after the logits.
  SmallVector<Type> extraIn, extraOut;
  auto activation = [&](Type t) -> Type {
    auto tt = dyn_cast<RankedTensorType>(t);
    if (!tt || tt.getRank() != 2 || !tt.getElementType().isF32())
      return {};
    return MemRefType::get({ShapedType::kDynamic, tt.getDimSize(1)},
                           tt.getElementType());
  };
  for (Type t : oldType.getInputs().drop_front(3))
    extraIn.push_back(activation(t));
  for (Type t : oldType.getResults().drop_front(2))
    extraOut.push_back(activation(t));
  if (llvm::is_contained(extraIn, Type()) ||
      llvm::is_contained(extraOut, Type()))
    return fn.emitError() << "entry point extra inputs/results must be "
                             "[tokens, features] f32 tensors";
  auto cacheType = dyn_cast<LatentCacheType>(oldType.getInput(2));
  auto logitsType = dyn_cast<RankedTensorType>(oldType.getResult(0));
  if (!cacheType || !logitsType)
    return fn.emitError() << "entry point cache/logits types are not ds types";

  Type f32 = b.getF32Type();
  auto ids = MemRefType::get({ShapedType::kDynamic}, b.getI32Type());
  auto cacheMem = KernelEmitter::cacheMemRefType(cacheType);
  auto logitsMem = MemRefType::get(
      {ShapedType::kDynamic, logitsType.getDimSize(1)}, f32);
  auto ptr = LLVM::LLVMPointerType::get(mctx);
  SmallVector<Type> args{ptr, ids, ids, cacheMem};
  llvm::append_range(args, extraIn);
  args.push_back(logitsMem);
  llvm::append_range(args, extraOut);
  auto newType = b.getFunctionType(args, {});
  auto newFn = func::FuncOp::create(b, loc, fn.getName(), newType);
  newFn->setAttr("llvm.emit_c_interface", b.getUnitAttr());
  newFn->setAttr("ds.entry_point", b.getUnitAttr());
  Block *entry = newFn.addEntryBlock();
  b.setInsertionPointToStart(entry);
  k = std::make_unique<KernelEmitter>(b, loc, module);
  ctx = entry->getArgument(0);

  Block &old = fn.getBody().front();
  map.map(old.getArgument(0), entry->getArgument(1));
  map.map(old.getArgument(1), entry->getArgument(2));
  map.map(old.getArgument(2), entry->getArgument(3));
  for (unsigned i = 3; i < old.getNumArguments(); ++i)
    map.map(old.getArgument(i), entry->getArgument(i + 1));
  unsigned logitsArg = old.getNumArguments() + 1;

  for (Operation &op : old.without_terminator())
    if (failed(lowerOp(&op))) {
      newFn.erase();
      return failure();
    }

  auto ret = cast<func::ReturnOp>(old.getTerminator());
  Value logits = get(ret.getOperand(0));
  k->copy(logits, entry->getArgument(logitsArg));
  for (unsigned i = 2; i < ret.getNumOperands(); ++i)
    k->copy(get(ret.getOperand(i)), entry->getArgument(logitsArg + i - 1));
  for (Value a : allocs)
    memref::DeallocOp::create(b, loc, a);
  func::ReturnOp::create(b, loc);
  fn.erase();
  return success();
}

LogicalResult FunctionLowering::lowerOp(Operation *op) {
  OpBuilder &b = k->builder();
  auto result = [&](Value v) {
    map.map(op->getResult(0), v);
    return success();
  };
  auto alloc = [&](Value old, ArrayRef<Value> dynDims = {}) {
    Value a = k->alloc(cast<RankedTensorType>(old.getType()), dynDims);
    allocs.push_back(a);
    return a;
  };
  // The token count of a [tokens, ...] result, from a [tokens, ...] operand.
  auto tokensOf = [&](Value oldOperand) { return k->dim(get(oldOperand), 0); };

  if (isa<WeightOp, StackedWeightOp>(op)) {
    auto t = cast<RankedTensorType>(op->getResult(0).getType());
    pending[op->getResult(0)] = {SmallVector<int64_t>(t.getShape()),
                                 weightMembers(op), false};
    return success();
  }
  if (auto dq = dyn_cast<DequantizeOp>(op)) {
    Operation *src = dq.getWeight().getDefiningOp();
    if (!src || !isa<WeightOp, StackedWeightOp>(src))
      return op->emitError() << "ds.dequantize must consume a ds.weight";
    auto t = dq.getResult().getType();
    pending[dq.getResult()] = {SmallVector<int64_t>(t.getShape()),
                               weightMembers(src), true};
    return success();
  }
  if (auto c = dyn_cast<ConcatWeightsOp>(op)) {
    auto a = pending.find(c.getFirst()), bw = pending.find(c.getSecond());
    // Members fill the binding one after the other, each the same number
    // of elements: two single weights, or a stack and one more slice.
    bool stackPlusSlice =
        c.getSecond().getType().getRank() + 1 == c.getFirst().getType().getRank();
    if (a == pending.end() || bw == pending.end() ||
        a->second.dequantize != bw->second.dequantize ||
        bw->second.members.size() != 1 ||
        (!stackPlusSlice && a->second.members.size() != 1))
      return op->emitError() << "ds.concat_weights must stack checkpoint "
                                "weights of the same kind";
    auto t = c.getResult().getType();
    SmallVector<std::string> members = a->second.members;
    members.push_back(bw->second.members.front());
    pending[c.getResult()] = {SmallVector<int64_t>(t.getShape()), members,
                              a->second.dequantize};
    return success();
  }
  if (auto p = dyn_cast<SiluMulPackedOp>(op)) {
    Value in = get(p.getInput());
    Value out = alloc(p.getResult(), {k->dim(in, 0)});
    k->outline("silu_mul_packed", "", {in, out},
               [&](ValueRange a) { k->siluMulPacked(a[0], a[1]); });
    return result(out);
  }
  if (auto e = dyn_cast<EmbeddingOp>(op)) {
    Value out = alloc(e.getResult(), {tokensOf(e.getIds())});
    k->outline("embedding", "", {get(e.getTable()), get(e.getIds()), out},
               [&](ValueRange a) { k->embedding(a[0], a[1], a[2]); });
    return result(out);
  }
  if (auto n = dyn_cast<RMSNormOp>(op)) {
    Value in = get(n.getInput());
    Value out = alloc(n.getResult(), {k->dim(in, 0)});
    double eps = n.getEps().convertToDouble();
    func::FuncOp kernel =
        k->outline("rms_norm", std::to_string(eps),
                   {in, get(n.getWeight()), out},
                   [&](ValueRange a) { k->rmsNorm(a[0], a[1], a[2], eps); });
    // The GPU path rebuilds norms as block-per-row kernels.
    kernel->setAttr("ds.eps", n.getEpsAttr());
    return result(out);
  }
  if (auto f = dyn_cast<AddRMSNormOp>(op)) {
    Value lhs = get(f.getLhs());
    Value sum = alloc(f.getSum(), {k->dim(lhs, 0)});
    Value out = alloc(f.getResult(), {k->dim(lhs, 0)});
    double eps = f.getEps().convertToDouble();
    func::FuncOp kernel =
        k->outline("add_rms_norm", std::to_string(eps),
                   {lhs, get(f.getRhs()), get(f.getWeight()), sum, out},
                   [&](ValueRange a) {
                     k->addRmsNorm(a[0], a[1], a[2], a[3], a[4], eps);
                   });
    kernel->setAttr("ds.eps", f.getEpsAttr());
    map.map(f.getSum(), sum);
    map.map(f.getResult(), out);
    return success();
  }
  if (auto ls = dyn_cast<LinearSiluMulOp>(op)) {
    Value in = get(ls.getInput());
    Value out = alloc(ls.getResult(), {k->dim(in, 0)});
    Value w = get(ls.getWeight());
    if (gemmEpilogue) {
      k->linearSiluMul(ctx, in, w, out);
      return result(out);
    }
    int64_t packed = cast<RankedTensorType>(ls.getWeight().getType())
                         .getDimSize(0);
    Value gu = k->alloc(RankedTensorType::get({ShapedType::kDynamic, packed},
                                              b.getF32Type()),
                        {k->dim(in, 0)});
    allocs.push_back(gu);
    k->linear(ctx, in, w, gu);
    k->outline("silu_mul_packed", "", {gu, out},
               [&](ValueRange a) { k->siluMulPacked(a[0], a[1]); });
    return result(out);
  }
  if (auto l = dyn_cast<LinearOp>(op)) {
    Value in = get(l.getInput());
    Value out = alloc(l.getResult(), {k->dim(in, 0)});
    k->linear(ctx, in, get(l.getWeight()), out);
    return result(out);
  }
  if (auto a = dyn_cast<arith::AddFOp>(op)) {
    if (!isa<RankedTensorType>(a.getType()))
      return op->emitError() << "only tensor additions are expected here";
    Value lhs = get(a.getLhs());
    Value out = alloc(a.getResult(), {k->dim(lhs, 0)});
    k->outline("add", "", {lhs, get(a.getRhs()), out},
               [&](ValueRange v) { k->add(v[0], v[1], v[2]); });
    return result(out);
  }
  if (auto c = dyn_cast<MTPConcatOp>(op)) {
    Value e = get(c.getEmbedding());
    Value out = alloc(c.getResult(), {k->dim(e, 0)});
    emitMTPConcat(*k, e, get(c.getHidden()), get(c.getPositions()), out);
    return result(out);
  }
  if (auto s = dyn_cast<SiluMulOp>(op)) {
    Value g = get(s.getGate());
    Value out = alloc(s.getResult(), {k->dim(g, 0)});
    k->outline("silu_mul", "", {g, get(s.getUp()), out},
               [&](ValueRange a) { k->siluMul(a[0], a[1], a[2]); });
    return result(out);
  }
  if (auto r = dyn_cast<RopeOp>(op)) {
    Value in = get(r.getInput());
    Value out = alloc(r.getResult(), {k->dim(in, 0)});
    std::string key;
    llvm::raw_string_ostream(key) << r.getConfig();
    k->outline("rope", key, {in, get(r.getPositions()), out},
               [&](ValueRange a) { k->rope(a[0], a[1], a[2], r.getConfig()); });
    return result(out);
  }
  if (auto w = dyn_cast<CacheWriteOp>(op)) {
    Value cache = get(w.getCache());
    k->outline("cache_write", "",
               {cache, get(w.getLatent()), get(w.getRopeKey()),
                get(w.getPositions()), k->cIdx(w.getLayer())},
               [&](ValueRange a) {
                 k->cacheWrite(a[0], a[1], a[2], a[3], a[4]);
               });
    return result(cache); // updated in place
  }
  if (auto h = dyn_cast<HeadMatmulOp>(op)) {
    Value in = get(h.getInput());
    Value out = alloc(h.getResult(), {k->dim(in, 0)});
    int64_t group = h.getGroup(), offset = h.getOffset();
    bool transpose = h.getTranspose();
    k->outline("head_matmul",
               std::to_string(group) + "/" + std::to_string(offset) + "/" +
                   std::to_string(transpose),
               {in, get(h.getWeight()), out}, [&](ValueRange a) {
                 k->headMatmul(a[0], a[1], a[2], group, offset, transpose);
               });
    return result(out);
  }
  if (auto at = dyn_cast<LatentAttentionOp>(op)) {
    Value ql = get(at.getQLatent());
    Value out = alloc(at.getResult(), {k->dim(ql, 0)});
    double scale = at.getScale().convertToDouble();
    func::FuncOp kernel = k->outline(
        "latent_attention", std::to_string(scale),
        {ql, get(at.getQRope()), get(at.getCache()), get(at.getPositions()),
         out, k->cIdx(at.getLayer())},
        [&](ValueRange a) {
          k->latentAttention(a[0], a[1], a[2], a[3], a[4], a[5], scale);
        });
    // The GPU path rebuilds this kernel (split-KV) and needs the scale.
    kernel->setAttr("ds.scale", at.getScaleAttr());
    return result(out);
  }
  if (auto na = dyn_cast<NaiveAttentionOp>(op)) {
    Value qn = get(na.getQNope());
    Value out = alloc(na.getResult(), {k->dim(qn, 0)});
    double scale = na.getScale().convertToDouble();
    int64_t chunk = attentionChunk;
    k->outline("naive_attention",
               std::to_string(scale) + "/" + std::to_string(chunk),
               {qn, get(na.getQRope()), get(na.getCache()),
                get(na.getPositions()), get(na.getKvBProj()), out,
                k->cIdx(na.getLayer())},
               [&](ValueRange a) {
                 k->naiveAttention(a[0], a[1], a[2], a[3], a[4], a[5], a[6],
                                   scale, chunk);
               });
    return result(out);
  }
  // Routing (alone or fused with the permutation): ids and weights, the
  // score scratch buffers, the bias last.
  auto lowerRoute = [&](Value oldLogits, Value oldBias, MoEConfigAttr cfg,
                        Value oldIds, Value oldWeights,
                        SmallVector<Value> &operands) {
    Value logits = get(oldLogits);
    Value t = k->dim(logits, 0);
    Value ids = alloc(oldIds, {t});
    Value w = alloc(oldWeights, {t});
    Type f32 = b.getF32Type();
    auto scratch = [&](int64_t width) {
      Value a = k->alloc(
          RankedTensorType::get({ShapedType::kDynamic, width}, f32), {t});
      allocs.push_back(a);
      return a;
    };
    operands = {logits, ids, w, scratch(cfg.getNumExperts()),
                scratch(cfg.getNumExperts())};
    if (cfg.isGrouped()) {
      operands.push_back(scratch(cfg.getNGroup()));
      operands.push_back(scratch(cfg.getNGroup()));
    }
    map.map(oldIds, ids);
    map.map(oldWeights, w);
  };
  auto routeBody = [&](ValueRange a, MoEConfigAttr cfg, Value bias) {
    bool grouped = cfg.isGrouped();
    k->moeRoute(a[0], bias, a[1], a[2], cfg, a[3], a[4],
                grouped ? a[5] : Value(), grouped ? a[6] : Value());
  };
  auto traced = [&](Value ids) {
    if (traceRouting)
      k->traceRouting(ctx, moeOrdinal, ids);
    ++moeOrdinal;
  };
  if (auto rt = dyn_cast<MoERouteOp>(op)) {
    MoEConfigAttr cfg = rt.getConfig();
    SmallVector<Value> operands;
    lowerRoute(rt.getLogits(), rt.getBias(), cfg, rt.getExpertIds(),
               rt.getWeights(), operands);
    if (rt.getBias())
      operands.push_back(get(rt.getBias()));
    std::string key;
    llvm::raw_string_ostream(key) << cfg;
    k->outline("moe_route", key, operands, [&](ValueRange a) {
      routeBody(a, cfg, rt.getBias() ? a.back() : Value());
    });
    traced(operands[1]);
    return success();
  }
  if (auto rp = dyn_cast<MoERoutePermuteOp>(op)) {
    MoEConfigAttr cfg = rp.getConfig();
    SmallVector<Value> operands;
    lowerRoute(rp.getLogits(), rp.getBias(), cfg, rp.getExpertIds(),
               rp.getWeights(), operands);
    size_t routeCount = operands.size();
    Value ids = operands[1];
    Value x = get(rp.getInput());
    Value pairs = k->mul(k->dim(ids, 0), k->dim(ids, 1));
    Value xp = alloc(rp.getPermuted(), {pairs});
    Value off = alloc(rp.getOffsets());
    Value rows = alloc(rp.getRowOfSlot(), {pairs});
    Value cursor = k->alloc(
        RankedTensorType::get({int64_t(cfg.getNumExperts()) +
                                   int64_t(rp.getSharedExperts())},
                              b.getI32Type()),
        {});
    allocs.push_back(cursor);
    for (Value v : {x, xp, off, rows, cursor})
      operands.push_back(v);
    if (rp.getBias())
      operands.push_back(get(rp.getBias()));
    std::string key;
    llvm::raw_string_ostream(key) << cfg;
    int64_t shared = int64_t(rp.getSharedExperts());
    k->outline("moe_route_permute", key + "/" + std::to_string(shared),
               operands, [&](ValueRange a) {
                 routeBody(a, cfg, rp.getBias() ? a.back() : Value());
                 if (shared)
                   k->appendSharedExperts(a[1], a[2], cfg.getTopK(),
                                          cfg.getNumExperts());
                 ValueRange p = a.slice(routeCount, 5);
                 k->moePermute(p[0], a[1], p[1], p[2], p[3], p[4]);
               });
    // Traces report the routed choices only.
    traced(shared ? k->leadingColumns(ids, cfg.getTopK()) : ids);
    map.map(rp.getPermuted(), xp);
    map.map(rp.getOffsets(), off);
    map.map(rp.getRowOfSlot(), rows);
    return success();
  }
  if (auto p = dyn_cast<MoEPermuteOp>(op)) {
    Value x = get(p.getInput()), ids = get(p.getExpertIds());
    Value pairs = k->mul(k->dim(ids, 0), k->dim(ids, 1));
    Value xp = alloc(p.getPermuted(), {pairs});
    Value off = alloc(p.getOffsets());
    Value rows = alloc(p.getRowOfSlot(), {pairs});
    // The counting sort's cursors: a buffer of the entry point (planned
    // with the others), not an allocation inside the kernel.
    int64_t experts =
        cast<MemRefType>(off.getType()).getDimSize(0) - 1;
    Value cursor =
        k->alloc(RankedTensorType::get({experts}, b.getI32Type()), {});
    allocs.push_back(cursor);
    k->outline("moe_permute", "", {x, ids, xp, off, rows, cursor},
               [&](ValueRange a) {
                 k->moePermute(a[0], a[1], a[2], a[3], a[4], a[5]);
               });
    map.map(p.getPermuted(), xp);
    map.map(p.getOffsets(), off);
    map.map(p.getRowOfSlot(), rows);
    return success();
  }
  if (auto g = dyn_cast<GroupedMatmulOp>(op)) {
    Value in = get(g.getInput());
    Value out = alloc(g.getResult(), {k->dim(in, 0)});
    k->groupedLinear(ctx, in, get(g.getWeights()), get(g.getOffsets()), out);
    return result(out);
  }
  if (auto c = dyn_cast<MoECombineOp>(op)) {
    Value w = get(c.getWeights());
    Value out = alloc(c.getResult(), {k->dim(w, 0)});
    k->outline("moe_combine", "",
               {get(c.getExpertOut()), get(c.getRowOfSlot()), w, out},
               [&](ValueRange a) { k->moeCombine(a[0], a[1], a[2], a[3]); });
    return result(out);
  }
  if (auto s = dyn_cast<tensor::ExtractSliceOp>(op)) {
    Value src = get(s.getSource());
    SmallVector<Value> dyn;
    for (int64_t i = 0; i < s.getType().getRank(); ++i)
      if (s.getType().isDynamicDim(i))
        dyn.push_back(k->dim(src, i));
    Value out = alloc(s.getResult(), dyn);
    SmallVector<int64_t> offsets(s.getStaticOffsets());
    if (llvm::any_of(offsets, ShapedType::isDynamic) ||
        !llvm::all_of(s.getStaticStrides(), [](int64_t v) { return v == 1; }))
      return op->emitError() << "only static-offset unit-stride slices";
    std::string key;
    for (int64_t o : offsets)
      key += std::to_string(o) + ",";
    k->outline("slice", key, {src, out},
               [&](ValueRange a) { k->copySlice(a[0], a[1], offsets); });
    return result(out);
  }
  if (auto e = dyn_cast<tensor::ExpandShapeOp>(op)) {
    Value src = get(e.getSrc());
    return result(k->expand(src, e.getResultType(),
                            e.getReassociationIndices()));
  }
  if (auto c = dyn_cast<tensor::CollapseShapeOp>(op)) {
    Value src = get(c.getSrc());
    return result(k->collapse(src, c.getResultType(),
                              c.getReassociationIndices()));
  }
  if (auto d = dyn_cast<tensor::DimOp>(op)) {
    Value src = get(d.getSource());
    return result(memref::DimOp::create(b, op->getLoc(), src,
                                        map.lookup(d.getIndex())));
  }
  if (isa<MLAOp, MoEOp, MLPOp, LMHeadOp, MTPProjectOp>(op))
    return op->emitError() << "'" << op->getName()
                           << "' must be rewritten by the ds passes "
                              "(ds-absorb-mla, ds-dispatch-experts, "
                              "ds-decompose-dense) before convert-ds-to-loops";
  // Scalar glue (index constants, arithmetic on sizes) is kept as is.
  if (llvm::none_of(op->getOperandTypes(), llvm::IsaPred<TensorType>) &&
      llvm::none_of(op->getResultTypes(), llvm::IsaPred<TensorType>) &&
      op->getNumRegions() == 0) {
    b.clone(*op, map);
    return success();
  }
  return op->emitError() << "convert-ds-to-loops cannot lower '"
                         << op->getName() << "'";
}

/// True when every use of `v` (through casts) is the weight operand of a
/// runtime GEMM call.
bool onlyFeedsGemms(Value v) {
  for (OpOperand &use : v.getUses()) {
    Operation *user = use.getOwner();
    if (auto cast = dyn_cast<memref::CastOp>(user)) {
      if (!onlyFeedsGemms(cast.getResult()))
        return false;
      continue;
    }
    auto call = dyn_cast<func::CallOp>(user);
    if (!call || use.getOperandNumber() != 2 ||
        (call.getCallee() != "dsrt_linear_f32" &&
         call.getCallee() != "dsrt_linear_silu_mul_f32" &&
         call.getCallee() != "dsrt_grouped_linear_f32"))
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
        !onlyFeedsGemms(call.getResult(0)))
      table.bindings[size_t(i)].gemmOnly = false;
  });
}

struct ConvertDSToLoopsPass
    : mlir::ds::impl::ConvertDSToLoopsPassBase<ConvertDSToLoopsPass> {
  using Base::Base;
  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (attentionChunk < 1) {
      module.emitError() << "convert-ds-to-loops: attention-chunk must be "
                            "positive, got "
                         << attentionChunk;
      return signalPassFailure();
    }
    BindingTable table;
    SmallVector<func::FuncOp> fns;
    for (auto fn : module.getOps<func::FuncOp>())
      if (!fn.isDeclaration() && fn.getNumArguments() >= 3 &&
          isa<LatentCacheType>(fn.getArgumentTypes()[2]))
        fns.push_back(fn);
    for (func::FuncOp fn : fns)
      if (failed(FunctionLowering(fn, table, module, traceRouting,
                                  attentionChunk, gemmEpilogue)
                     .run()))
        return signalPassFailure();
    markGemmOnly(module, table);
    if (!fns.empty())
      buildSampler(module);
    Builder b(module.getContext());
    module->setAttr("ds.bindings", table.toAttr(b));
  }

  /// `@sample_greedy(ctx, logits [n, vocab], ids [n])`: the first maximum
  /// of each row (NaN never wins), so greedy decoding on the GPU copies one
  /// id back per step instead of a vocabulary of logits.
  void buildSampler(ModuleOp module) {
    auto decode = module.lookupSymbol<func::FuncOp>("decode");
    if (!decode || decode.getNumArguments() != 5 ||
        module.lookupSymbol("sample_greedy"))
      return;
    auto logitsType = cast<MemRefType>(decode.getArgumentTypes()[4]);
    OpBuilder b(module.getBodyRegion());
    b.setInsertionPointToEnd(module.getBody());
    Location loc = module.getLoc();
    auto ids = MemRefType::get({ShapedType::kDynamic}, b.getI32Type());
    auto fn = func::FuncOp::create(
        b, loc, "sample_greedy",
        b.getFunctionType({decode.getArgumentTypes()[0], logitsType, ids}, {}));
    fn->setAttr("llvm.emit_c_interface", b.getUnitAttr());
    fn->setAttr("ds.sampler", b.getUnitAttr());
    Block *entry = fn.addEntryBlock();
    b.setInsertionPointToStart(entry);
    loops::KernelEmitter k(b, loc, module);
    k.outline("argmax", "", {entry->getArgument(1), entry->getArgument(2)},
              [&](ValueRange a) { k.argmaxRows(a[0], a[1]); });
    func::ReturnOp::create(b, loc);
  }
};

} // namespace
