//===- LoweringPatterns.h - convert-ds-to-loops patterns ---------*- C++ -*-===//
//
// The pieces of the convert-ds-to-loops dialect conversion: the type
// converter (tensors -> memrefs, the latent cache -> its memref), the state
// the patterns share (weight bindings, options), the base class of the
// kernel patterns, and one populate function per op family:
//
//   ElementwisePatterns.cpp   embedding, adds, SiLU-mul, RMSNorm, slices and
//                             reshapes
//   AttentionPatterns.cpp     rope, cache write, per-head matmul, attention
//   MoEPatterns.cpp           routing, permutation, combine
//   GemmPatterns.cpp          GEMMs (runtime calls) and weight bindings
//   MTPPatterns.cpp           multi-token prediction's [e | h] concatenation
//   DSToLoops.cpp             the pass: target, entry points, return
//
// Each pattern builds its loop nest through KernelEmitter (one file per
// family as well).
//
//===----------------------------------------------------------------------===//
#ifndef DS_CONVERSION_DSTOLOOPS_LOWERINGPATTERNS_H
#define DS_CONVERSION_DSTOLOOPS_LOWERINGPATTERNS_H

#include "KernelEmitter.h"

#include "mlir/Transforms/DialectConversion.h"
#include "llvm/ADT/StringMap.h"

#include <map>
#include <string>
#include <vector>

namespace mlir::ds::loops {

/// Weight buffers the runtime binds, shared by all entry points.
struct BindingTable {
  struct Binding {
    SmallVector<int64_t> shape;
    SmallVector<std::string> members;
    bool dequantize = false;
    /// Read only by the runtime's calls (GEMMs, the embedding gather): the
    /// runtime may keep it in another element type (bf16, FP8, in place)
    /// since no generated code dereferences it.
    bool gemmOnly = true;
    /// The weight of the one GEMM that produces an entry point's logits:
    /// the runtime computes only the rows a caller asks for.
    bool logits = false;
    /// ds-partition-model: each member is cut into `splitParts` pieces
    /// along its dim `splitDim` (-1: the members themselves are split, a
    /// stack of experts) and this rank binds piece `rank`.
    int64_t splitDim = -1, splitParts = 1;
  };
  std::vector<Binding> bindings;
  llvm::StringMap<int64_t> byName;

  int64_t get(ArrayRef<int64_t> shape, ArrayRef<std::string> members,
              bool dequantize, int64_t splitDim = -1, int64_t splitParts = 1);
  /// `ds.bindings` on the module: what the artifact manifest lists.
  ArrayAttr toAttr(Builder &b) const;
};

/// A weight seen but not yet bound: bound where it is first used, so the
/// scales of a dequantised weight are never loaded on their own and the
/// binding numbers follow the order of first use.
struct PendingWeight {
  SmallVector<int64_t> shape;
  SmallVector<std::string> members;
  bool dequantize = false;
  int64_t splitDim = -1, splitParts = 1; // see BindingTable::Binding
};

/// What the patterns of one convert-ds-to-loops run share.
struct LoweringState {
  BindingTable table;
  /// ds.weight / ds.stacked_weight / ds.dequantize / ds.concat_weights
  /// results, described before the conversion starts.
  DenseMap<Value, PendingWeight> pending;
  /// Pending weights already bound (the runtime call's result).
  DenseMap<Value, Value> bound;
  /// The runtime context argument of each converted entry point.
  DenseMap<Operation *, Value> context;
  /// Routing traces are numbered per entry point.
  DenseMap<Operation *, int64_t> moeOrdinal;
  bool traceRouting = false;
  int64_t attentionChunk = 256;
  bool gemmEpilogue = true;
  bool runtimeEmbedding = false;
  bool headMatmulRows = false;
  bool headMatmulCalls = false;
  bool cacheDecodeCalls = false;
  bool latentAttentionCalls = false;
  bool moeRowLoops = false;
  /// Heads per absorbed attention iteration (0: automatic, see the option).
  int64_t attentionHeadGroup = 1;
  /// The CPU's naive attention buffers (KernelEmitter::naiveScratch), one
  /// set per entry point and shape, made at its first layer's attention:
  /// every layer's call works in the same chunk buffers (32 MiB at
  /// DeepSeek-V3's widths), which the plan would otherwise give a slot of
  /// their own where other buffers live across the attention.
  std::map<std::pair<Operation *, std::string>, KernelEmitter::NaiveScratch>
      naiveScratch;

  /// The buffer of `original` for a pattern: the bound weight (bound now on
  /// first use) or the converted operand `converted`.
  Value operand(KernelEmitter &k, Value ctx, Value original, Value converted);
};

/// ranked tensor -> memref of the same shape (floats computed in f32, as
/// weights are bound); !ds.latent_cache -> memref<layers x ? x width x elem>.
class DSToLoopsTypeConverter : public TypeConverter {
public:
  explicit DSToLoopsTypeConverter(MLIRContext *ctx);
};

/// Base of the kernel patterns: access to the shared state and the helpers
/// every lowering uses.
template <typename Op>
class KernelPattern : public OpConversionPattern<Op> {
public:
  KernelPattern(const TypeConverter &converter, MLIRContext *ctx,
                LoweringState &state)
      : OpConversionPattern<Op>(converter, ctx), state(state) {}

protected:
  LoweringState &state;

  KernelEmitter emitter(ConversionPatternRewriter &rewriter,
                        Operation *op) const {
    return KernelEmitter(rewriter, op->getLoc(),
                         op->template getParentOfType<ModuleOp>());
  }
  /// The runtime context of the entry point holding `op` (converted first:
  /// the driver visits the function before its body).
  Value contextOf(Operation *op) const {
    return state.context.lookup(
        op->template getParentOfType<func::FuncOp>().getOperation());
  }
  /// The buffer standing for operand `original` (see LoweringState).
  Value use(KernelEmitter &k, Operation *op, Value original,
            Value converted) const {
    return state.operand(k, contextOf(op), original, converted);
  }
  /// The naive attention's working buffers for `op`'s entry point (see
  /// LoweringState::naiveScratch).
  KernelEmitter::NaiveScratch naiveScratch(KernelEmitter &k, Operation *op,
                                           Value qNope, Value qRope, Value kvb,
                                           Value out, int64_t chunk) const {
    std::string key = std::to_string(chunk);
    llvm::raw_string_ostream os(key);
    for (Value v : {qNope, qRope, kvb, out})
      os << "|" << v.getType();
    auto at = std::make_pair(
        op->template getParentOfType<func::FuncOp>().getOperation(), key);
    auto it = state.naiveScratch.find(at);
    bool first = it == state.naiveScratch.end();
    KernelEmitter::NaiveScratch s = k.naiveScratch(
        k.dim(qNope, 0), qNope, qRope, kvb, out, chunk, /*chunkBuffers=*/first);
    if (first)
      state.naiveScratch.emplace(at, s);
    // The chunk's buffers are shared; the per-token running max and sum
    // are the call's own (a slot of the plan only for its lifetime).
    if (!first) {
      s.lat = it->second.lat;
      s.rope = it->second.rope;
      s.kv = it->second.kv;
    }
    return s;
  }
  /// A fresh buffer for the tensor `original`, freed when the entry point
  /// returns.
  Value alloc(KernelEmitter &k, Value original,
              ArrayRef<Value> dynDims = {}) const {
    return k.alloc(cast<RankedTensorType>(original.getType()), dynDims);
  }
};

void populateElementwisePatterns(const TypeConverter &converter,
                                 LoweringState &state,
                                 RewritePatternSet &patterns);
void populateAttentionPatterns(const TypeConverter &converter,
                               LoweringState &state,
                               RewritePatternSet &patterns);
/// ds.paged_naive_attention (NaivePagedAttention.cpp).
void populateNaivePagedAttentionPatterns(const TypeConverter &converter,
                                         LoweringState &state,
                                         RewritePatternSet &patterns);
/// The per-head K/V cache's write and attention (PerHeadCachePatterns.cpp).
void populatePerHeadCachePatterns(const TypeConverter &converter,
                                  LoweringState &state,
                                  RewritePatternSet &patterns);
void populateMoEPatterns(const TypeConverter &converter, LoweringState &state,
                         RewritePatternSet &patterns);
void populateGemmPatterns(const TypeConverter &converter, LoweringState &state,
                          RewritePatternSet &patterns);
void populateMTPPatterns(const TypeConverter &converter, LoweringState &state,
                         RewritePatternSet &patterns);
/// shard collectives (ds-partition-model) as communicator calls.
void populateShardPatterns(const TypeConverter &converter, LoweringState &state,
                           RewritePatternSet &patterns);

/// `@sample_greedy(ctx, logits [n, vocab], ids [n])` beside `@decode`
/// (ArgmaxKernel.cpp).
void buildGreedySampler(ModuleOp module);

} // namespace mlir::ds::loops

#endif // DS_CONVERSION_DSTOLOOPS_LOWERINGPATTERNS_H
