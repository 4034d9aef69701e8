//===- ImportModel.cpp - ModelConfig -> ds IR -----------------------------===//
//
// Builds the model-level IR of SEMANTICS.md's block structure. Each op keeps
// the model's meaning (MLA, MoE as single ops); passes rewrite them later.
//
//===----------------------------------------------------------------------===//
#include "ds/Import/ImportModel.h"
#include "ds/DSDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace mlir::ds;

namespace {

/// Builds one entry point; weights are referenced where they are used.
class ModelBuilder {
public:
  ModelBuilder(OpBuilder &b, Location loc, const ModelConfig &cfg,
               const ImportOptions &opts)
      : b(b), loc(loc), cfg(cfg), opts(opts) {}

  Type f32() { return b.getF32Type(); }

  RankedTensorType act(int64_t tokens, int64_t features) {
    return RankedTensorType::get({tokens, features}, f32());
  }

  /// Element type for unquantised weights when no checkpoint is at hand.
  Type defaultFloatType() {
    if (cfg.torchDtype == "float32")
      return b.getF32Type();
    if (cfg.torchDtype == "float16")
      return b.getF16Type();
    return b.getBF16Type();
  }

  Type typeOf(StringRef name, bool quantizable, Type fallback = {}) {
    if (opts.checkpointType)
      if (std::optional<Type> t = opts.checkpointType(name))
        if (*t)
          return *t;
    if (quantizable && cfg.fp8BlockQuantized)
      return b.getType<Float8E4M3FNType>();
    return fallback ? fallback : defaultFloatType();
  }

  /// A single checkpoint tensor. `quantizable` linear weights of FP8
  /// checkpoints come with `<name>_scale_inv` and are dequantised here.
  Value weight(const std::string &name, ArrayRef<int64_t> shape,
               bool quantizable = false) {
    Type et = typeOf(name, quantizable);
    Value w = WeightOp::create(b, loc, RankedTensorType::get(shape, et),
                                 b.getStringAttr(name));
    if (!isa<Float8E4M3FNType>(et))
      return w;
    Value s = WeightOp::create(b, loc, RankedTensorType::get(scaleShape(shape), f32()),
        b.getStringAttr(name + "_scale_inv"));
    return DequantizeOp::create(b, loc,
                                  RankedTensorType::get(shape, b.getBF16Type()),
                                  w, s, b.getI64IntegerAttr(cfg.fp8BlockSize));
  }

  /// A per-expert tensor family; `pattern` has a '*' for the expert index.
  Value stacked(const std::string &pattern, int64_t count,
                ArrayRef<int64_t> memberShape) {
    SmallVector<int64_t> shape{count};
    shape.append(memberShape.begin(), memberShape.end());
    std::string first = StringRef(pattern).str();
    first.replace(first.find('*'), 1, "0");
    Type et = typeOf(first, /*quantizable=*/true);
    Value w = StackedWeightOp::create(b, loc, RankedTensorType::get(shape, et),
                                        b.getStringAttr(pattern));
    if (!isa<Float8E4M3FNType>(et))
      return w;
    SmallVector<int64_t> sshape{count};
    for (int64_t d : scaleShape(memberShape))
      sshape.push_back(d);
    Value s = StackedWeightOp::create(b, loc, RankedTensorType::get(sshape, f32()),
        b.getStringAttr(pattern + "_scale_inv"));
    return DequantizeOp::create(b, loc,
                                  RankedTensorType::get(shape, b.getBF16Type()),
                                  w, s, b.getI64IntegerAttr(cfg.fp8BlockSize));
  }

  SmallVector<int64_t> scaleShape(ArrayRef<int64_t> shape) {
    int64_t bs = cfg.fp8BlockSize;
    return {(shape[0] + bs - 1) / bs, (shape[1] + bs - 1) / bs};
  }

  Value rmsNorm(Value x, const std::string &name, double eps) {
    auto t = cast<RankedTensorType>(x.getType());
    Value w = weight(name, {t.getDimSize(1)});
    return RMSNormOp::create(b, loc, t, x, w, b.getF64FloatAttr(eps));
  }

  MLAConfigAttr mlaConfig() {
    MLIRContext *ctx = b.getContext();
    YarnAttr yarn;
    if (cfg.yarn) {
      const YarnConfig &y = *cfg.yarn;
      yarn = YarnAttr::get(ctx, APFloat(y.factor),
                           y.originalMaxPositionEmbeddings,
                           APFloat(y.betaFast), APFloat(y.betaSlow),
                           APFloat(y.mscale), APFloat(y.mscaleAllDim));
    }
    return MLAConfigAttr::get(
        ctx, cfg.numAttentionHeads, cfg.qLoraRank, cfg.kvLoraRank,
        cfg.qkNopeHeadDim, cfg.qkRopeHeadDim, cfg.vHeadDim,
        APFloat(cfg.softmaxScale()), APFloat(cfg.ropeTheta), yarn);
  }

  MoEConfigAttr moeConfig() {
    auto scoring = cfg.scoringFunc == ScoringFunction::Sigmoid
                       ? ScoringFunc::sigmoid
                       : ScoringFunc::softmax;
    TopkMethod method = TopkMethod::greedy;
    if (cfg.topkMethod == RoutingMethod::GroupLimitedGreedy)
      method = TopkMethod::group_limited_greedy;
    else if (cfg.topkMethod == RoutingMethod::NoauxTc)
      method = TopkMethod::noaux_tc;
    NormRule rule = cfg.family == ModelFamily::V2 ? NormRule::v2 : NormRule::v3;
    return MoEConfigAttr::get(b.getContext(), cfg.nRoutedExperts,
                              cfg.numExpertsPerTok, cfg.nGroup, cfg.topkGroup,
                              scoring, method, cfg.normTopkProb,
                              APFloat(cfg.routedScalingFactor), rule,
                              cfg.moeIntermediateSize, cfg.nSharedExperts);
  }

  /// `layer` names the weights; `cacheLayer` is the layer of `cache` it
  /// writes (they differ for an MTP module, which has a cache of its own).
  Value attention(Value x, Value positions, Value &cache, int64_t layer,
                  int64_t cacheLayer) {
    std::string p = llvm::formatv("model.layers.{0}.self_attn.", layer).str();
    int64_t d = cfg.hiddenSize, h = cfg.numAttentionHeads,
            dn = cfg.qkNopeHeadDim, dr = cfg.qkRopeHeadDim,
            dv = cfg.vHeadDim, dc = cfg.kvLoraRank;
    Value qa, qan, qb, q;
    if (cfg.qLoraRank) {
      int64_t dq = *cfg.qLoraRank;
      qa = weight(p + "q_a_proj.weight", {dq, d}, true);
      qan = weight(p + "q_a_layernorm.weight", {dq});
      qb = weight(p + "q_b_proj.weight", {h * (dn + dr), dq}, true);
    } else {
      q = weight(p + "q_proj.weight", {h * (dn + dr), d}, true);
    }
    Value kva = weight(p + "kv_a_proj_with_mqa.weight", {dc + dr, d}, true);
    Value kvan = weight(p + "kv_a_layernorm.weight", {dc});
    Value kvb = weight(p + "kv_b_proj.weight", {h * (dn + dv), dc}, true);
    Value o = weight(p + "o_proj.weight", {d, h * dv}, true);
    auto op = MLAOp::create(b, loc, x.getType(), cache.getType(), x, positions,
                            cache, qa, qan, qb, q, kva, kvan, kvb, o,
                            queryStart, blockTables, mlaConfig(),
                            b.getI64IntegerAttr(cacheLayer));
    cache = op.getCacheOut();
    return op.getResult();
  }

  Value ffn(Value x, int64_t layer) {
    std::string p = llvm::formatv("model.layers.{0}.mlp.", layer).str();
    int64_t d = cfg.hiddenSize;
    auto t = x.getType();
    if (!cfg.isMoeLayer(layer)) {
      int64_t f = cfg.intermediateSize;
      return MLPOp::create(b, loc, t, x, weight(p + "gate_proj.weight", {f, d}, true),
                             weight(p + "up_proj.weight", {f, d}, true),
                             weight(p + "down_proj.weight", {d, f}, true));
    }
    int64_t e = cfg.nRoutedExperts, f = cfg.moeIntermediateSize;
    Value router = weight(p + "gate.weight", {e, d});
    Value bias;
    if (cfg.topkMethod == RoutingMethod::NoauxTc)
      bias = WeightOp::create(b, loc, RankedTensorType::get({e}, typeOf(p + "gate.e_score_correction_bias", false, f32())),
          b.getStringAttr(p + "gate.e_score_correction_bias"));
    Value g = stacked(p + "experts.*.gate_proj.weight", e, {f, d});
    Value u = stacked(p + "experts.*.up_proj.weight", e, {f, d});
    Value dn = stacked(p + "experts.*.down_proj.weight", e, {d, f});
    Value sg, su, sd;
    if (cfg.nSharedExperts > 0) {
      int64_t fs = cfg.nSharedExperts * f;
      sg = weight(p + "shared_experts.gate_proj.weight", {fs, d}, true);
      su = weight(p + "shared_experts.up_proj.weight", {fs, d}, true);
      sd = weight(p + "shared_experts.down_proj.weight", {d, fs}, true);
    }
    return MoEOp::create(b, loc, t, x, router, bias, g, u, dn, sg, su, sd,
                           moeConfig());
  }

  /// h = x + MLA(RMSNorm(x)); h + FFN(RMSNorm(h)).
  Value decoderLayer(Value x, Value positions, Value &cache, int64_t layer,
                     int64_t cacheLayer) {
    std::string p = llvm::formatv("model.layers.{0}.", layer).str();
    Value hn = rmsNorm(x, p + "input_layernorm.weight", cfg.rmsNormEps);
    Value a = attention(hn, positions, cache, layer, cacheLayer);
    Value h = arith::AddFOp::create(b, loc, x, a);
    Value fn2 =
        rmsNorm(h, p + "post_attention_layernorm.weight", cfg.rmsNormEps);
    return arith::AddFOp::create(b, loc, h, ffn(fn2, layer));
  }

  /// The forward pass of one entry point: tokens -> (logits, cache), or
  /// with `withHidden` (logits, cache, the hidden states after the final
  /// norm), which an MTP module reads. With `ragged` (@ragged_step) the tokens
  /// are a ragged batch: arguments 3.. are (query_start, context_lens,
  /// block_tables, logits_rows), every layer's MLA reads the paged cache
  /// through the block tables, and only the logits rows reach the LM head.
  void buildBody(func::FuncOp fn, bool withHidden = false,
                 bool ragged = false) {
    Block *entry = fn.addEntryBlock();
    b.setInsertionPointToStart(entry);
    Value tokens = entry->getArgument(0), positions = entry->getArgument(1);
    Value cache = entry->getArgument(2);
    if (ragged) {
      queryStart = entry->getArgument(3);
      blockTables = entry->getArgument(5);
    }
    int64_t n = cast<RankedTensorType>(tokens.getType()).getDimSize(0);
    int64_t d = cfg.hiddenSize, v = cfg.vocabSize;

    Value table = weight("model.embed_tokens.weight", {v, d});
    Value x = EmbeddingOp::create(b, loc, act(n, d), table, tokens);
    for (int64_t l = 0; l < cfg.numHiddenLayers; ++l)
      x = decoderLayer(x, positions, cache, l, l);
    queryStart = blockTables = Value();
    if (ragged)
      x = GatherRowsOp::create(b, loc, act(ShapedType::kDynamic, d), x,
                               entry->getArgument(6));
    Value norm = weight("model.norm.weight", {d});
    Value head = weight("lm_head.weight", {v, d});
    n = cast<RankedTensorType>(x.getType()).getDimSize(0);
    if (!withHidden) {
      Value logits = LMHeadOp::create(b, loc, act(n, v), x, norm, head,
                                      b.getF64FloatAttr(cfg.rmsNormEps));
      func::ReturnOp::create(b, loc, ValueRange{logits, cache});
      return;
    }
    // The same function as ds.lm_head (ds-decompose-dense splits it the
    // same way), with the normalised states kept.
    Value hidden = RMSNormOp::create(b, loc, x.getType(), x, norm,
                                     b.getF64FloatAttr(cfg.rmsNormEps));
    Value logits = LinearOp::create(b, loc, act(n, v), hidden, head);
    func::ReturnOp::create(b, loc, ValueRange{logits, cache, hidden});
  }

  /// The first MTP module (checkpoint layer L = num_hidden_layers) as a
  /// drafter: (next tokens, positions, its own one-layer cache, hidden
  /// states) -> (draft logits, cache, the module's output states). The
  /// output state is the decoder layer's, before shared_head.norm: fed back
  /// as `hidden` with the drafted token, it drafts one position further
  /// (chained drafts, as vLLM's and SGLang's MTP proposers run k > 1). The
  /// embedding and lm_head are the main model's (SEMANTICS.md), so a
  /// checkpoint's copies under layer L are not needed.
  void buildDraft(func::FuncOp fn) {
    // Drafting calls it with one token, or a few after accepted drafts:
    // ds-absorb-mla's cost model then picks the decode-like form.
    fn->setAttr("ds.tokens_per_call", b.getI64IntegerAttr(1));
    Block *entry = fn.addEntryBlock();
    b.setInsertionPointToStart(entry);
    Value tokens = entry->getArgument(0), positions = entry->getArgument(1);
    Value cache = entry->getArgument(2), hidden = entry->getArgument(3);
    int64_t n = cast<RankedTensorType>(tokens.getType()).getDimSize(0);
    int64_t d = cfg.hiddenSize, v = cfg.vocabSize, l = cfg.numHiddenLayers;
    std::string p = llvm::formatv("model.layers.{0}.", l).str();

    Value table = weight("model.embed_tokens.weight", {v, d});
    Value e = EmbeddingOp::create(b, loc, act(n, d), table, tokens);
    Value x = MTPProjectOp::create(
        b, loc, act(n, d), e, hidden, positions,
        weight(p + "enorm.weight", {d}), weight(p + "hnorm.weight", {d}),
        weight(p + "eh_proj.weight", {d, 2 * d}, true),
        b.getF64FloatAttr(cfg.rmsNormEps));
    x = decoderLayer(x, positions, cache, l, /*cacheLayer=*/0);
    Value norm = weight(p + "shared_head.norm.weight", {d});
    Value head = weight("lm_head.weight", {v, d});
    Value logits = LMHeadOp::create(b, loc, act(n, v), x, norm, head,
                                    b.getF64FloatAttr(cfg.rmsNormEps));
    func::ReturnOp::create(b, loc, ValueRange{logits, cache, x});
  }

private:
  OpBuilder &b;
  Location loc;
  /// The ragged batch's sequences while @ragged_step's layers are built.
  Value queryStart, blockTables;
  const ModelConfig &cfg;
  const ImportOptions &opts;
};

} // namespace

OwningOpRef<ModuleOp> mlir::ds::importModel(MLIRContext *context,
                                            const ModelConfig &cfg,
                                            const ImportOptions &opts) {
  context->loadDialect<DSDialect, func::FuncDialect, arith::ArithDialect>();
  OpBuilder b(context);
  Location loc = FileLineColLoc::get(b.getStringAttr(cfg.path), 1, 1);
  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);

  // What the runtime needs to drive generation without the config.
  module->getOperation()->setAttr(
      "ds.model_type", b.getStringAttr(cfg.family == ModelFamily::V2
                                           ? "deepseek_v2"
                                           : "deepseek_v3"));
  module->getOperation()->setAttr("ds.vocab_size",
                                  b.getI64IntegerAttr(cfg.vocabSize));
  module->getOperation()->setAttr(
      "ds.max_position_embeddings",
      b.getI64IntegerAttr(cfg.maxPositionEmbeddings));
  if (cfg.bosTokenId)
    module->getOperation()->setAttr("ds.bos_token_id",
                                    b.getI64IntegerAttr(*cfg.bosTokenId));
  if (cfg.eosTokenId)
    module->getOperation()->setAttr("ds.eos_token_id",
                                    b.getI64IntegerAttr(*cfg.eosTokenId));

  Type cacheElem = opts.cacheElementType ? opts.cacheElementType
                                         : Type(b.getF32Type());
  // The fp8 layout (e4m3 latent, f32 scale per group, bf16 rope) spells
  // the rope width and the group in the type.
  auto makeCache = [&](int64_t layers) {
    if (isa<Float8E4M3FNType>(cacheElem))
      return LatentCacheType::get(context, layers, cfg.latentCacheWidth(),
                                  cacheElem, cfg.qkRopeHeadDim,
                                  opts.cacheScaleGroup);
    return LatentCacheType::get(context, layers, cfg.latentCacheWidth(),
                                cacheElem);
  };
  auto cacheType = makeCache(cfg.numHiddenLayers);
  ModelBuilder mb(b, loc, cfg, opts);
  // prefill: a chunk of any length; decode: exactly one token.
  for (auto [name, tokens] :
       {std::pair<StringRef, int64_t>{"prefill", ShapedType::kDynamic},
        std::pair<StringRef, int64_t>{"decode", 1}}) {
    auto ids = RankedTensorType::get({tokens}, b.getI32Type());
    auto logits = RankedTensorType::get({tokens, cfg.vocabSize}, b.getF32Type());
    auto type = b.getFunctionType({ids, ids, cacheType}, {logits, cacheType});
    b.setInsertionPointToEnd(module->getBody());
    auto fn = func::FuncOp::create(b, loc, name, type);
    fn.setArgAttr(0, "ds.name", b.getStringAttr("tokens"));
    fn.setArgAttr(1, "ds.name", b.getStringAttr("positions"));
    fn.setArgAttr(2, "ds.name", b.getStringAttr("cache"));
    mb.buildBody(fn);
  }
  if (opts.stepEntry) {
    auto dyn = ShapedType::kDynamic;
    auto vec = RankedTensorType::get({dyn}, b.getI32Type());
    auto table = RankedTensorType::get({dyn, dyn}, b.getI32Type());
    auto logits = RankedTensorType::get({dyn, cfg.vocabSize}, b.getF32Type());
    // Pages of the contiguous cache's rows (its fp8 layout included), or
    // of every head's K and V (--kv-layout=per-head).
    LatentCacheType rows = cacheType;
    Type paged =
        opts.perHeadKVCache
            ? Type(PagedKVCacheType::get(
                  context, cfg.numHiddenLayers, cfg.numAttentionHeads,
                  cfg.qkNopeHeadDim + cfg.qkRopeHeadDim, cfg.vHeadDim,
                  cacheElem, /*page_size=*/64))
            : Type(PagedLatentCacheType::get(
                  context, rows.getNumLayers(), rows.getWidth(),
                  rows.getElementType(), /*page_size=*/64,
                  rows.getRopeWidth(), rows.getScaleGroup()));
    b.setInsertionPointToEnd(module->getBody());
    auto step = func::FuncOp::create(
        b, loc, "ragged_step",
        b.getFunctionType({vec, vec, paged, vec, vec, table, vec},
                          {logits, paged}));
    unsigned i = 0;
    for (StringRef name : {"tokens", "positions", "cache", "query_start",
                           "context_lens", "block_tables", "logits_rows"})
      step.setArgAttr(i++, "ds.name", b.getStringAttr(name));
    mb.buildBody(step, /*withHidden=*/false, /*ragged=*/true);
  }
  if (cfg.numNextnPredictLayers < 1)
    return module;
  // Multi-token prediction: the main model with its hidden states, and the
  // first MTP module as a drafter over its own one-layer cache.
  auto ids = RankedTensorType::get({ShapedType::kDynamic}, b.getI32Type());
  auto logits = RankedTensorType::get({ShapedType::kDynamic, cfg.vocabSize},
                                      b.getF32Type());
  auto hidden = RankedTensorType::get({ShapedType::kDynamic, cfg.hiddenSize},
                                      b.getF32Type());
  b.setInsertionPointToEnd(module->getBody());
  auto withHidden = func::FuncOp::create(
      b, loc, "prefill_hidden",
      b.getFunctionType({ids, ids, cacheType}, {logits, cacheType, hidden}));
  withHidden.setArgAttr(0, "ds.name", b.getStringAttr("tokens"));
  withHidden.setArgAttr(1, "ds.name", b.getStringAttr("positions"));
  withHidden.setArgAttr(2, "ds.name", b.getStringAttr("cache"));
  mb.buildBody(withHidden, /*withHidden=*/true);

  auto draftCache = makeCache(1);
  b.setInsertionPointToEnd(module->getBody());
  auto draft = func::FuncOp::create(
      b, loc, "draft",
      b.getFunctionType({ids, ids, draftCache, hidden},
                        {logits, draftCache, hidden}));
  draft.setArgAttr(0, "ds.name", b.getStringAttr("next_tokens"));
  draft.setArgAttr(1, "ds.name", b.getStringAttr("positions"));
  draft.setArgAttr(2, "ds.name", b.getStringAttr("mtp_cache"));
  draft.setArgAttr(3, "ds.name", b.getStringAttr("hidden"));
  mb.buildDraft(draft);
  return module;
}

std::vector<RequiredWeight> mlir::ds::collectRequiredWeights(ModuleOp module) {
  std::vector<RequiredWeight> out;
  llvm::StringSet<> seen;
  auto add = [&](std::string name, ArrayRef<int64_t> shape, Type et) {
    if (seen.insert(name).second)
      out.push_back({std::move(name), SmallVector<int64_t>(shape), et});
  };
  module.walk([&](Operation *op) {
    // A split weight (ds-partition-model) still requires the whole tensor.
    if (auto w = dyn_cast<WeightOp>(op)) {
      auto t = w.getResult().getType();
      add(w.getName().str(), w.getFullShape(), t.getElementType());
    } else if (auto s = dyn_cast<StackedWeightOp>(op)) {
      auto t = s.getResult().getType();
      SmallVector<int64_t> full = s.getFullShape();
      for (int64_t i = 0; i < full[0]; ++i)
        add(s.getMemberName(i), ArrayRef<int64_t>(full).drop_front(),
            t.getElementType());
    }
  });
  return out;
}
