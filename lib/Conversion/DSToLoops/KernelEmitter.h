//===- KernelEmitter.h - loop nests for ds kernels --------------*- C++ -*-===//
//
// Builds the loop nest of each kernel over buffers. Outer independent
// iterations are scf.parallel (threads on the GPU path, loops on the CPU),
// reductions scf.for. Arithmetic is f32; angles are computed in f64.
//
//===----------------------------------------------------------------------===//
#ifndef DS_CONVERSION_DSTOLOOPS_KERNELEMITTER_H
#define DS_CONVERSION_DSTOLOOPS_KERNELEMITTER_H

#include "ds/DSDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

#include <functional>

namespace mlir::ds::loops {

/// How a row of the latent cache is stored (see !ds.latent_cache): values
/// of the memref's element type, or (fp8) bytes: e4m3 latent, one f32 scale
/// per `group` latent values, bf16 rope.
struct CacheLayout {
  int64_t latent = 0, rope = 0, group = 0; // group 0: not fp8
  /// fp8 on the CPU: attention decodes each row it reads once into f32
  /// scratch through the runtime (dsrt_cache_decode_fp8, vectorised per
  /// ISA) instead of a table lookup per value (which does not vectorise).
  bool decodeRows = false;
  bool isFp8() const { return group > 0; }
  bool decodesRows() const { return isFp8() && decodeRows; }
  /// Byte offsets in an fp8 row (only meaningful when isFp8()).
  int64_t scaleOffset() const { return latent; }
  int64_t ropeOffset() const { return latent + 4 * (latent / group); }
  /// `ropeWidth`: the rope key's width (the ops know it; only the fp8
  /// type spells it).
  static CacheLayout of(LatentCacheType type, int64_t ropeWidth);
  /// A paged cache's rows are laid out as the contiguous cache's.
  static CacheLayout of(PagedLatentCacheType type, int64_t ropeWidth);
};

/// Heads per iteration of the absorbed attention kernel for `heads` heads
/// and convert-ds-to-loops' attention-head-group (0: automatic).
int64_t attentionHeadGroup(int64_t requested, int64_t heads);

/// A kernel's view of the latent cache: which buffer and layer, and how a
/// sequence's row is found. Contiguous: memref<layers x capacity x width>,
/// row r at {layer, r}. Paged: memref<layers x pages x page_size x width>,
/// row r of sequence s at {layer, blockTables[s, r / page_size],
/// r % page_size}. Only KernelEmitter::cacheRow reads the layout, so the
/// element encoding (loadF32 / storeF32) stays independent of it.
struct CacheRows {
  Value cache, layer;
  Value blockTables;     // null: contiguous
  Value queryStart;      // [S + 1], paged only
  int64_t pageSize = 0;  // paged only
  /// Paged only: sequences with at least this many new tokens take the
  /// naive form (ds.paged_naive_attention); the absorbed kernel skips them.
  /// -1: none does.
  int64_t naiveMinTokens = -1;
  bool paged() const { return static_cast<bool>(blockTables); }
};

class KernelEmitter {
public:
  KernelEmitter(OpBuilder &b, Location loc, ModuleOp module)
      : b(b), loc(loc), module(module) {}

  OpBuilder &builder() { return b; }

  /// memref<layers x capacity(?) x width x elem>; the fp8 layout is
  /// memref<layers x capacity(?) x row bytes x i8>.
  static MemRefType cacheMemRefType(LatentCacheType type);
  /// The layout the cache kernels emitted next (cacheWrite, the attention
  /// kernels) read and write.
  void setCacheLayout(CacheLayout layout) { cache = layout; }
  /// The naive forms expand their latents through kv_b_proj with
  /// linearExact (the CPU's in-place weight, f32 activations like the
  /// absorbed form's runtime calls) instead of linear (the GPU's).
  void setExactExpansion(bool exact) { exactExpansion = exact; }
  /// memref<layers x pages(?) x page_size x width x elem>; the fp8 layout
  /// is memref<layers x pages(?) x page_size x row bytes x i8>.
  static MemRefType cacheMemRefType(PagedLatentCacheType type);
  /// memref<layers x pages(?) x page_size x heads * (key + value) x elem>.
  static MemRefType cacheMemRefType(PagedKVCacheType type);
  /// Any cache type's memref.
  static MemRefType anyCacheMemRefType(Type type);

  Value alloc(RankedTensorType type, ArrayRef<Value> dynDims = {});
  Value dim(Value memref, int64_t i);
  Value cIdx(int64_t v);
  Value cF32(double v);
  Value mul(Value a, Value b);

  /// Emits `body` once as a private function taking `operands` and calls
  /// it. Identical kernels (the same op with the same shapes and `key` in
  /// every layer) share one function, so native code generation sees a few
  /// dozen small functions instead of one giant entry point.
  /// Returns the kernel function.
  func::FuncOp outline(llvm::StringRef kind, llvm::StringRef key,
                       ValueRange operands,
                       function_ref<void(ValueRange)> body);

  /// Runtime calls.
  Value weight(Value ctx, int64_t index, ArrayRef<int64_t> shape);
  void linear(Value ctx, Value x, Value w, Value y);
  /// y = x w^T with x never rounded (dsrt_linear_exact_f32): f32
  /// arithmetic on any weight format, as headMatmulCall.
  void linearExact(Value ctx, Value x, Value w, Value y);
  /// y = silu(x w[:F]^T) * (x w[F:]^T), one runtime call (fused epilogue).
  void linearSiluMul(Value ctx, Value x, Value w, Value y);
  /// With rowOfSlot, x is the tokens' rows, gathered through it
  /// (dsrt_grouped_linear_gather_f32: ds.grouped_matmul's gather form).
  void groupedLinear(Value ctx, Value x, Value w, Value offsets, Value y,
                     Value rowOfSlot = {});
  /// y = silu(x Wg_e^T) * (x Wu_e^T) per expert's rows (the runtime's
  /// dsrt_grouped_linear_silu_mul_f32; with rowOfSlot its _gather_ form).
  void groupedLinearSiluMul(Value ctx, Value x, Value wg, Value wu,
                            Value offsets, Value y, Value rowOfSlot = {});
  /// Collectives on the model's communicator (partitioned models):
  /// out = the sum over ranks of in; out [T, N x ranks] = every rank's
  /// [T, N] piece by columns; this process's rank (i64).
  void allReduceSum(Value ctx, Value in, Value out);
  void allGatherCols(Value ctx, Value in, Value out);
  Value commRank(Value ctx);
  /// Expert parallelism's exchanges (ExpertCalls.cpp; runtime
  /// abi/ExpertCalls.cpp), each sizing its data-dependent result first:
  /// this rank's ceil(T/W)-row share of `in`; every rank's rows of `in` in
  /// rank order; ds.moe_dispatch's {received, received_offsets, counts};
  /// ds.moe_collect's rows in `offsets`' permuted order.
  Value sliceRows(Value ctx, Value in, RankedTensorType type);
  Value gatherRows(Value ctx, Value in, RankedTensorType type, int64_t ranks);
  SmallVector<Value> moeDispatch(Value ctx, Value permuted, Value offsets,
                                 TypeRange types);
  Value moeCollect(Value ctx, Value expertOut, Value counts, Value offsets,
                   RankedTensorType type);
  /// Reports MoE layer `ordinal`'s expert ids [tokens, top_k] (parity tests).
  void traceRouting(Value ctx, int64_t ordinal, Value ids);
  /// ds.head_matmul through the runtime (dsrt_head_matmul_f32), which reads
  /// the weight in its stored format. With `queryStart`
  /// (dsrt_head_matmul_skip_f32) the rows of sequences with at least
  /// `naiveMinTokens` new tokens are zeroed instead of computed.
  void headMatmulCall(Value ctx, Value x, Value w, Value out, int64_t group,
                      int64_t offset, bool transpose,
                      Value queryStart = Value(), int64_t naiveMinTokens = -1);
  /// out[t] = table[ids[t]] through the runtime (dsrt_embedding_f32).
  void embeddingCall(Value ctx, Value table, Value ids, Value out);

  /// Generated kernels.
  void copy(Value src, Value dst);
  void copySlice(Value src, Value dst, ArrayRef<int64_t> offsets);
  Value expand(Value src, RankedTensorType type,
               ArrayRef<ReassociationIndices> reassoc);
  Value collapse(Value src, RankedTensorType type,
                 ArrayRef<ReassociationIndices> reassoc);
  void embedding(Value table, Value ids, Value out);
  /// The table is rows [offset, offset + rows) of the vocabulary: ids
  /// outside them give zero rows (a vocabulary-split embedding).
  void embeddingRows(Value table, Value ids, Value offset, Value out);
  void rmsNorm(Value x, Value w, Value out, double eps);
  void add(Value x, Value y, Value out);
  /// sum = x + y; out = RMSNorm(sum) * w, one pass over each row.
  void addRmsNorm(Value x, Value y, Value w, Value sum, Value out, double eps);
  void siluMul(Value g, Value u, Value out);
  /// out[t, j] = silu(in[t, j]) * in[t, F + j], F = out's width.
  void siluMulPacked(Value in, Value out);
  void rope(Value x, Value positions, Value out, MLAConfigAttr config);
  void cacheWrite(const CacheRows &cache, Value latent, Value ropeKey,
                  Value positions);
  void headMatmul(Value x, Value w, Value out, int64_t group, int64_t offset,
                  bool transpose);
  /// The untransposed headMatmul with the same per-output summation order
  /// (k ascending) but k outside the output columns: out[t, h, :] +=
  /// x[t, h, k] * w[base + k, :], one contiguous weight row at a time.
  void headMatmulRows(Value x, Value w, Value out, int64_t group,
                      int64_t offset);
  /// Zeroes out[t, :, :] for the tokens t of sequences with at least
  /// `naiveMinTokens` (at least 1) new tokens (HeadMatmulSkip.cpp).
  void zeroNaiveRows(Value out, Value queryStart, int64_t naiveMinTokens);
  void latentAttention(Value qLatent, Value qRope, const CacheRows &cache,
                       Value positions, Value out, double scale);
  /// latentAttention with `group` heads per parallel iteration sharing each
  /// row read (and FP8 decode), the same per-head steps in the same order
  /// (GroupedLatentAttention.cpp).
  void groupedLatentAttention(Value qLatent, Value qRope, const CacheRows &src,
                              Value positions, Value out, double scale,
                              int64_t group);
  /// The naive form: per-head K/V of `chunk` context rows at a time built
  /// in transient buffers, attention over them, chunks merged by
  /// log-sum-exp (see ds.naive_attention).
  void naiveAttention(Value qNope, Value qRope, Value cache, Value positions,
                      Value kvb, Value out, Value layer, double scale,
                      int64_t chunk);
  /// The naive form's working buffers: one chunk's latents [chunk, dc],
  /// rope keys [chunk, dr] and per-head keys and values [chunk, heads x
  /// (dn + dv)], and every token's running max and sum [T, heads].
  struct NaiveScratch {
    Value lat, rope, kv, runMax, runSum;
    SmallVector<Value> all() const { return {lat, rope, kv, runMax, runSum}; }
  };
  /// NaiveScratch allocated where the builder stands: in the entry point,
  /// so that ds-plan-activations places them in the activation buffer. At
  /// DeepSeek-V3's widths the per-head K/V of a 256-row chunk is 32 MiB,
  /// which malloc maps afresh on every call (8192 page faults a layer;
  /// bench/RESULTS.md, "the naive form's buffers planned").
  /// Without `chunkBuffers` only the running max and sum.
  NaiveScratch naiveScratch(Value tokens, Value qNope, Value qRope, Value kvb,
                            Value out, int64_t chunk, bool chunkBuffers = true);
  /// naiveAttention with each chunk's per-head K/V computed by the runtime's
  /// GEMM (NaiveAttentionCalls.cpp): host loops over kernels, as
  /// pagedNaiveAttention, so no generated code reads kv_b_proj. Works in
  /// `scratch` (naiveScratch, made by the caller).
  void naiveAttentionCalls(Value ctx, Value qNope, Value qRope, Value cache,
                           Value positions, Value kvb, Value out, Value layer,
                           double scale, int64_t chunk,
                           const NaiveScratch &scratch);
  /// An attention step as one call of the runtime's kernel `fn`
  /// (LatentAttendCall.cpp), for the CPU: the context, the memrefs (cast to
  /// any layout), the indices (as i64), the scale. The absorbed attention
  /// over an f32 cache (dsrt_latent_attention_f32, ..._paged_...) and the
  /// naive form's attend step (naiveAttendCall) both take this shape.
  void attendCall(StringRef fn, Value ctx, ValueRange memrefs,
                  ValueRange indices, double scale);
  /// ds.paged_naive_attention (NaivePagedAttention.cpp): out = init, then
  /// the sequences with at least cache.naiveMinTokens new tokens in the
  /// naive form, over `chunk` rows (whole pages) at a time.
  /// Works in `scratch` where given (the CPU's, from the entry point),
  /// else in buffers of its own.
  void pagedNaiveAttention(Value ctx, Value qNope, Value qRope,
                           const CacheRows &cache, Value positions, Value kvb,
                           Value init, Value out, double scale, int64_t chunk,
                           const NaiveScratch *scratch = nullptr);
  /// The per-head K/V cache (!ds.paged_kv_cache, PerHeadCacheKernels.cpp):
  /// token t's row of every head's key (kv[t, h, :nope] | ropeKey[t]) and
  /// value (kv[t, h, nope:]), and standard attention over those rows.
  void pagedKVWrite(const CacheRows &cache, Value kv, Value ropeKey,
                    Value positions, int64_t valueWidth);
  void pagedKVAttention(Value qNope, Value qRope, const CacheRows &cache,
                        Value positions, Value out, double scale);
  /// `scores`, `sel` [tokens, experts] and (grouped methods) `groupScore`,
  /// `groupKept` [tokens, groups] are scratch buffers.
  void moeRoute(Value logits, Value bias, Value ids, Value weights,
                MoEConfigAttr config, Value scores, Value sel,
                Value groupScore, Value groupKept);
  /// `cursor` [experts] i32 is scratch.
  /// Columns [topK, end) of ids / weights: shared experts numExperts + s,
  /// weight 1.
  void appendSharedExperts(Value ids, Value weights, int64_t topK,
                           int64_t numExperts);
  /// The first `n` columns of a [rows, cols] buffer, as a strided view.
  Value leadingColumns(Value m, int64_t n);
  /// `rowLoops`: the rows move in a parallel loop over slots, columns an
  /// inner loop (convert-ds-to-loops' moe-row-loops); else one parallel
  /// iteration per element. Null x and permuted: the offsets and
  /// row_of_slot only.
  void moePermute(Value x, Value ids, Value permuted, Value offsets,
                  Value rowOfSlot, Value cursor, bool rowLoops);
  /// ids[t] = the first column of the row's maximum (NaN never wins).
  void argmaxRows(Value logits, Value ids);
  /// out[i] = in[rows[i]].
  void gatherRows(Value in, Value rows, Value out);
  /// out[t, c] = sum_j weights[t, j] * expertOut[rowOfSlot[t * k + j], c],
  /// j ascending. `rowLoops`: a parallel loop over tokens, each slot's row
  /// added into the token's output row (the same sums, column by column);
  /// else one parallel iteration per (token, column).
  void moeCombine(Value expertOut, Value rowOfSlot, Value weights, Value out,
                  bool rowLoops);

private:
  using Body = function_ref<void(ValueRange)>;
  /// scf.parallel over [0, ubs).
  void par(ArrayRef<Value> ubs, Body body);
  /// scf.for over [lb, ub) (step 1 unless given) carrying `inits`; `body`
  /// returns the yields.
  SmallVector<Value>
  loop(Value lb, Value ub, ValueRange inits,
       function_ref<SmallVector<Value>(Value, ValueRange)> body,
       Value step = Value());
  /// sum_{i<n} f(i) in f32.
  Value sum(Value n, function_ref<Value(Value)> term);
  /// One row of an online softmax: from the running (max, sum) and a new
  /// score, the new max and sum, the factor that rescales what was
  /// accumulated so far (corr) and the new row's weight (p).
  struct SoftmaxStep {
    Value max, sum, corr, p;
  };
  SoftmaxStep onlineSoftmaxStep(Value runMax, Value runSum, Value score);
  Value load(Value m, ValueRange idx);
  void store(Value v, Value m, ValueRange idx);
  /// Loads a cache element as f32 / stores f32 into the cache.
  Value loadF32(Value m, ValueRange idx);
  void storeF32(Value v, Value m, ValueRange idx);
  Value toIndex(Value i32);
  /// Cache row encode/decode (CacheRow.cpp). `row` is the already computed
  /// address of one token's row of one layer (all memref indices but the
  /// last); values are read as f32.
  /// Writes latent[tok, :] and ropeKey[tok, :] as the row.
  void storeCacheRow(Value cacheMem, ValueRange row, Value latent,
                     Value ropeKey, Value tok);
  /// Latent value `c` (< latent width) / rope value `r` (< rope width).
  Value loadCacheLatent(Value cacheMem, ValueRange row, Value c);
  /// For the C++ scope it lives in: when the layout decodesRows(), an
  /// alloca scope at the insertion point holding memref<latent x f32>
  /// (what is emitted meanwhile goes inside it; a bare alloca in a loop
  /// would grow the stack every iteration). read(mem, row) decodes row
  /// `row` into it once and returns c -> its latent value c; without
  /// scratch, c -> loadCacheLatent(mem, row, c).
  class RowScratch {
  public:
    explicit RowScratch(KernelEmitter &k);
    ~RowScratch();
    std::function<Value(Value)> read(Value cacheMem, ValueRange row);

  private:
    KernelEmitter &k;
    Value scratch;
    OpBuilder::InsertPoint after;
  };
  /// Decodes row `row`'s latent into `scratch` (decodesRows() layouts).
  void decodeCacheRow(Value cacheMem, ValueRange row, Value scratch);
  /// The address of byte `byteOffset` of row `row` of an i8 memref, or of
  /// element 0 of a memref (row empty), as !llvm.ptr.
  Value addressOf(Value mem, ValueRange row, int64_t byteOffset);
  Value loadCacheRope(Value cacheMem, ValueRange row, Value r);
  /// The sequence of token `t`: the s with queryStart[s] <= t <
  /// queryStart[s + 1] (0 for a contiguous cache, which holds one).
  Value sequenceOf(const CacheRows &cache, Value t);
  /// The index of row `row` of sequence `seq` without its column: append
  /// the column and load/store through loadF32/storeF32.
  SmallVector<Value> cacheRow(const CacheRows &cache, Value seq, Value row);
  /// Copies cache row `row`'s latent into lat[r, :] and its rope key into
  /// rope[r, :], decoded to f32 (the naive forms' gather).
  void copyCacheRow(Value cacheMem, ValueRange row, Value lat, Value rope,
                    Value r);
  /// max(positions[t]) + 1 over tokens t in [from, to): the context rows
  /// some token of them attends (0 when there are none).
  Value rowsAttended(Value positions, Value from, Value to);
  /// The per-sequence form choice (NaivePagedAttention.cpp): whether
  /// sequence `seq` takes the naive form; the rows an absorbed token at
  /// position `last` attends (none for a naive sequence's); 1 / sum of its
  /// softmax (0 when it attended none).
  Value segmentIsNaive(const CacheRows &cache, Value seq);
  Value absorbedRows(const CacheRows &cache, Value seq, Value last);
  Value absorbedNormalizer(const CacheRows &cache, Value sum);
  /// The kernel body of one context chunk of pagedNaiveAttention.
  void pagedNaiveAttendChunk(ValueRange operands, double scale);
  /// The same chunk through the runtime (NaiveAttendCall.cpp), for the CPU.
  void naiveAttendCall(Value ctx, ValueRange operands, double scale);
  /// Reports a sequence that took the naive form (dsrt_trace_naive_segment).
  void traceNaiveSegment(Value ctx, Value layer, Value tokens);
  static SmallVector<Value> withColumn(ArrayRef<Value> row, Value col) {
    SmallVector<Value> idx(row);
    idx.push_back(col);
    return idx;
  }
  func::FuncOp runtimeFunction(StringRef name, TypeRange args,
                               TypeRange results);
  /// A runtime call `name`(ctx, memrefs...) returning nothing, each memref
  /// cast to its type with every dimension dynamic (the runtime takes any
  /// shape).
  void callOnMemrefs(StringRef name, Value ctx, ValueRange memrefs);

  OpBuilder &b;
  Location loc;
  ModuleOp module;
  CacheLayout cache;
  bool exactExpansion = false;
};

} // namespace mlir::ds::loops

#endif // DS_CONVERSION_DSTOLOOPS_KERNELEMITTER_H
