//===- ModelConfig.cpp - Hugging Face DeepSeek config.json ----------------===//
#include "ds/Import/ModelConfig.h"

#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cmath>
#include <cstdio>

using namespace mlir::ds;
using llvm::json::Object;
using llvm::json::Value;

namespace {

class Reader {
public:
  Reader(const Object &root, llvm::StringRef path) : root(root), path(path) {}

  llvm::Error error(llvm::StringRef field, const llvm::Twine &msg) const {
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        (path + ": field '" + field + "': " + msg).str());
  }

  static std::string describe(const Value &v) {
    std::string s;
    llvm::raw_string_ostream os(s);
    os << v;
    if (s.size() > 40)
      s = s.substr(0, 37) + "...";
    return s;
  }

  llvm::Expected<std::optional<int64_t>> optInt(const Object &o,
                                                llvm::StringRef name,
                                                llvm::StringRef field) const {
    const Value *v = o.get(name);
    if (!v || v->kind() == Value::Null)
      return std::nullopt;
    if (auto i = v->getAsInteger())
      return *i;
    if (auto d = v->getAsNumber())
      if (std::floor(*d) == *d && std::fabs(*d) < 9e15)
        return static_cast<int64_t>(*d);
    return error(field, "expected an integer, got " + describe(*v));
  }

  llvm::Expected<int64_t> reqInt(llvm::StringRef name) const {
    auto v = optInt(root, name, name);
    if (!v)
      return v.takeError();
    if (!*v)
      return error(name, "missing required field");
    return **v;
  }

  llvm::Expected<double> num(const Object &o, llvm::StringRef name,
                             llvm::StringRef field, double dflt) const {
    const Value *v = o.get(name);
    if (!v || v->kind() == Value::Null)
      return dflt;
    if (auto d = v->getAsNumber())
      return *d;
    return error(field, "expected a number, got " + describe(*v));
  }

  llvm::Expected<bool> boolean(llvm::StringRef name, bool dflt) const {
    const Value *v = root.get(name);
    if (!v || v->kind() == Value::Null)
      return dflt;
    if (auto b = v->getAsBoolean())
      return *b;
    return error(name, "expected true or false, got " + describe(*v));
  }

  llvm::Expected<std::string> str(llvm::StringRef name,
                                  llvm::StringRef dflt) const {
    const Value *v = root.get(name);
    if (!v || v->kind() == Value::Null)
      return dflt.str();
    if (auto s = v->getAsString())
      return s->str();
    return error(name, "expected a string, got " + describe(*v));
  }

  const Object &root;
  llvm::StringRef path;
};

/// Doubles as the config wrote them (0.707, not 0.71).
std::string fmtDouble(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

#define DS_TRY(var, expr)                                                      \
  auto var##OrErr = (expr);                                                    \
  if (!var##OrErr)                                                             \
    return var##OrErr.takeError();                                             \
  auto var = *var##OrErr;

} // namespace

double ModelConfig::yarnMscale() const {
  if (!yarn || yarn->mscaleAllDim == 0 || yarn->factor <= 1)
    return 1.0;
  return 0.1 * yarn->mscaleAllDim * std::log(yarn->factor) + 1.0;
}

double ModelConfig::softmaxScale() const {
  double m = yarnMscale();
  return std::pow(double(qkNopeHeadDim + qkRopeHeadDim), -0.5) * m * m;
}

llvm::Expected<ModelConfig>
mlir::ds::parseModelConfig(llvm::StringRef text, llvm::StringRef path) {
  llvm::Expected<Value> parsed = llvm::json::parse(text);
  if (!parsed) {
    std::string msg = llvm::toString(parsed.takeError());
    // llvm::json reports "[line:col, byte=N]: message"; keep line:col.
    std::string where;
    size_t open = msg.find('['), comma = msg.find(',');
    if (open != std::string::npos && comma != std::string::npos &&
        comma > open)
      where = msg.substr(open + 1, comma - open - 1);
    size_t colon = msg.find("]: ");
    std::string reason =
        colon == std::string::npos ? msg : msg.substr(colon + 3);
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        (path + (where.empty() ? "" : ":" + where) + ": invalid JSON: " +
         reason)
            .str());
  }
  const Object *root = parsed->getAsObject();
  if (!root)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   (path + ": expected a JSON object").str());
  Reader r(*root, path);
  ModelConfig c;
  c.path = path.str();

  DS_TRY(modelType, r.str("model_type", ""));
  if (modelType == "deepseek_v2")
    c.family = ModelFamily::V2;
  else if (modelType == "deepseek_v3")
    c.family = ModelFamily::V3;
  else if (modelType.empty())
    return r.error("model_type", "missing required field");
  else
    return r.error("model_type", "unknown model_type '" + modelType +
                                     "', expected deepseek_v2 or deepseek_v3");
  bool v3 = c.family == ModelFamily::V3;

  struct Req {
    const char *name;
    int64_t *dst;
  } reqs[] = {{"vocab_size", &c.vocabSize},
              {"hidden_size", &c.hiddenSize},
              {"intermediate_size", &c.intermediateSize},
              {"num_hidden_layers", &c.numHiddenLayers},
              {"num_attention_heads", &c.numAttentionHeads},
              {"kv_lora_rank", &c.kvLoraRank},
              {"qk_nope_head_dim", &c.qkNopeHeadDim},
              {"qk_rope_head_dim", &c.qkRopeHeadDim},
              {"v_head_dim", &c.vHeadDim},
              {"n_routed_experts", &c.nRoutedExperts},
              {"num_experts_per_tok", &c.numExpertsPerTok},
              {"moe_intermediate_size", &c.moeIntermediateSize}};
  for (const Req &q : reqs) {
    DS_TRY(v, r.reqInt(q.name));
    if (v <= 0)
      return r.error(q.name, fmtDouble(v) + " must be > 0");
    *q.dst = v;
  }
  auto optionalInt = [&](const char *name, int64_t dflt,
                         int64_t min) -> llvm::Expected<int64_t> {
    DS_TRY(v, r.optInt(*root, name, name));
    int64_t value = v ? *v : dflt;
    if (value < min)
      return r.error(name, llvm::formatv("{0} must be >= {1}", value, min).str());
    return value;
  };
  {
    DS_TRY(v, r.optInt(*root, "q_lora_rank", "q_lora_rank"));
    if (v && *v <= 0)
      return r.error("q_lora_rank", llvm::formatv("{0} must be > 0 or null", *v).str());
    c.qLoraRank = v;
  }
  {
    DS_TRY(v, optionalInt("n_shared_experts", 0, 0));
    c.nSharedExperts = v;
  }
  {
    DS_TRY(v, optionalInt("first_k_dense_replace", 0, 0));
    c.firstKDenseReplace = v;
  }
  {
    DS_TRY(v, optionalInt("moe_layer_freq", 1, 1));
    c.moeLayerFreq = v;
  }
  {
    DS_TRY(v, optionalInt("n_group", 1, 1));
    c.nGroup = v;
  }
  {
    DS_TRY(v, optionalInt("topk_group", 1, 1));
    c.topkGroup = v;
  }
  {
    DS_TRY(v, optionalInt("num_nextn_predict_layers", 0, 0));
    c.numNextnPredictLayers = v;
  }
  {
    DS_TRY(v, optionalInt("max_position_embeddings", 4096, 1));
    c.maxPositionEmbeddings = v;
  }
  {
    DS_TRY(v, r.boolean("norm_topk_prob", v3));
    c.normTopkProb = v;
  }
  {
    DS_TRY(v, r.boolean("tie_word_embeddings", false));
    if (v)
      return r.error("tie_word_embeddings",
                     "true is not supported: DeepSeek models have a separate "
                     "lm_head");
  }
  {
    DS_TRY(v, r.boolean("attention_bias", false));
    if (v)
      return r.error("attention_bias", "true is not supported");
  }
  {
    DS_TRY(v, r.num(*root, "routed_scaling_factor", "routed_scaling_factor", 1.0));
    if (!(v > 0))
      return r.error("routed_scaling_factor", fmtDouble(v) + " must be > 0");
    c.routedScalingFactor = v;
  }
  {
    DS_TRY(v, r.num(*root, "rms_norm_eps", "rms_norm_eps", 1e-6));
    if (!(v > 0))
      return r.error("rms_norm_eps", fmtDouble(v) + " must be > 0");
    c.rmsNormEps = v;
  }
  {
    DS_TRY(v, r.num(*root, "rope_theta", "rope_theta", 10000.0));
    if (!(v > 0))
      return r.error("rope_theta", fmtDouble(v) + " must be > 0");
    c.ropeTheta = v;
  }
  {
    DS_TRY(v, r.str("scoring_func", v3 ? "sigmoid" : "softmax"));
    if (v == "softmax")
      c.scoringFunc = ScoringFunction::Softmax;
    else if (v == "sigmoid")
      c.scoringFunc = ScoringFunction::Sigmoid;
    else
      return r.error("scoring_func", "unknown scoring function '" + v +
                                         "', expected softmax or sigmoid");
  }
  {
    DS_TRY(v, r.str("topk_method", v3 ? "noaux_tc" : "greedy"));
    if (v == "greedy")
      c.topkMethod = RoutingMethod::Greedy;
    else if (v == "group_limited_greedy")
      c.topkMethod = RoutingMethod::GroupLimitedGreedy;
    else if (v == "noaux_tc")
      c.topkMethod = RoutingMethod::NoauxTc;
    else
      return r.error("topk_method",
                     "unknown topk_method '" + v +
                         "', expected greedy, group_limited_greedy or "
                         "noaux_tc");
  }
  {
    DS_TRY(v, r.str("hidden_act", "silu"));
    if (v != "silu")
      return r.error("hidden_act", "'" + v + "' is not supported, expected silu");
  }
  {
    DS_TRY(v, r.str("torch_dtype", "bfloat16"));
    if (v != "bfloat16" && v != "float16" && v != "float32")
      return r.error("torch_dtype", "'" + v +
                                        "' is not supported, expected "
                                        "bfloat16, float16 or float32");
    c.torchDtype = v;
  }
  for (const char *name : {"bos_token_id", "eos_token_id"}) {
    const Value *v = root->get(name);
    std::optional<int64_t> id;
    // Some configs list several eos ids; the first is the one generation stops on.
    if (v && v->getAsArray() && !v->getAsArray()->empty())
      v = &v->getAsArray()->front();
    if (v && v->kind() != Value::Null) {
      auto i = v->getAsInteger();
      if (!i || *i < 0)
        return r.error(name, "expected a token id, got " + Reader::describe(*v));
      id = *i;
    }
    (std::string(name) == "bos_token_id" ? c.bosTokenId : c.eosTokenId) = id;
  }

  // Cross-field rules of SEMANTICS.md.
  if (c.qkRopeHeadDim % 2)
    return r.error("qk_rope_head_dim",
                   llvm::formatv("{0} must be even (RoPE rotates pairs)",
                                 c.qkRopeHeadDim)
                       .str());
  if (c.numExpertsPerTok > c.nRoutedExperts)
    return r.error("num_experts_per_tok",
                   llvm::formatv("{0} must be <= n_routed_experts ({1})",
                                 c.numExpertsPerTok, c.nRoutedExperts)
                       .str());
  if (c.firstKDenseReplace > c.numHiddenLayers)
    return r.error("first_k_dense_replace",
                   llvm::formatv("{0} must be <= num_hidden_layers ({1})",
                                 c.firstKDenseReplace, c.numHiddenLayers)
                       .str());
  if (c.topkMethod != RoutingMethod::Greedy) {
    if (c.nRoutedExperts % c.nGroup)
      return r.error("n_group",
                     llvm::formatv("n_routed_experts ({0}) must be divisible "
                                   "by n_group ({1})",
                                   c.nRoutedExperts, c.nGroup)
                         .str());
    if (c.topkGroup > c.nGroup)
      return r.error("topk_group", llvm::formatv("{0} must be <= n_group ({1})",
                                                 c.topkGroup, c.nGroup)
                                       .str());
    int64_t per = c.nRoutedExperts / c.nGroup;
    if (c.topkGroup * per < c.numExpertsPerTok)
      return r.error("topk_group",
                     llvm::formatv("grouped routing cannot fill top_k: "
                                   "topk_group ({0}) x experts per group ({1}) "
                                   "< num_experts_per_tok ({2})",
                                   c.topkGroup, per, c.numExpertsPerTok)
                         .str());
    if (c.topkMethod == RoutingMethod::NoauxTc && per < 2)
      return r.error("n_group",
                     llvm::formatv("noaux_tc scores groups by their top-2 "
                                   "experts: {0} experts per group is too few",
                                   per)
                         .str());
  }

  if (const Value *rs = root->get("rope_scaling");
      rs && rs->kind() != Value::Null) {
    const Object *o = rs->getAsObject();
    if (!o)
      return r.error("rope_scaling", "expected an object or null");
    std::optional<llvm::StringRef> type = o->getString("type");
    if (!type)
      type = o->getString("rope_type");
    if (!type)
      return r.error("rope_scaling.type", "missing required field");
    if (*type != "yarn")
      return r.error("rope_scaling.type", "unsupported rope_scaling type '" +
                                              *type + "', expected yarn");
    YarnConfig y;
    DS_TRY(factor, r.num(*o, "factor", "rope_scaling.factor", 0));
    if (!(factor > 0))
      return r.error("rope_scaling.factor",
                     fmtDouble(factor) + " must be > 0");
    y.factor = factor;
    DS_TRY(orig, r.optInt(*o, "original_max_position_embeddings",
                          "rope_scaling.original_max_position_embeddings"));
    if (!orig)
      return r.error("rope_scaling.original_max_position_embeddings",
                     "missing required field");
    if (*orig <= 0)
      return r.error("rope_scaling.original_max_position_embeddings",
                     llvm::formatv("{0} must be > 0", *orig).str());
    y.originalMaxPositionEmbeddings = *orig;
    DS_TRY(bf, r.num(*o, "beta_fast", "rope_scaling.beta_fast", 32));
    DS_TRY(bs, r.num(*o, "beta_slow", "rope_scaling.beta_slow", 1));
    if (!(bf > 0) || !(bs > 0))
      return r.error("rope_scaling.beta_fast",
                     "beta_fast (" + fmtDouble(bf) + ") and beta_slow (" +
                         fmtDouble(bs) + ") must be > 0");
    y.betaFast = bf;
    y.betaSlow = bs;
    DS_TRY(ms, r.num(*o, "mscale", "rope_scaling.mscale", 1));
    DS_TRY(msa, r.num(*o, "mscale_all_dim", "rope_scaling.mscale_all_dim", 0));
    // HF multiplies cos/sin by mscale/mscale_all_dim; released models keep
    // them equal (factor 1). Others would change the math silently.
    if (msa != 0 && ms != msa)
      return r.error("rope_scaling.mscale",
                     fmtDouble(ms) + " differs from mscale_all_dim " +
                         fmtDouble(msa) + "; only equal values are supported");
    y.mscale = ms;
    y.mscaleAllDim = msa;
    c.yarn = y;
  }

  if (const Value *q = root->get("quantization_config");
      q && q->kind() != Value::Null) {
    const Object *o = q->getAsObject();
    if (!o)
      return r.error("quantization_config", "expected an object");
    std::optional<llvm::StringRef> method = o->getString("quant_method");
    if (!method || *method != "fp8")
      return r.error("quantization_config.quant_method",
                     "unsupported quantization '" +
                         (method ? method->str() : std::string("<missing>")) +
                         "', expected fp8");
    if (std::optional<llvm::StringRef> fmt = o->getString("fmt");
        fmt && *fmt != "e4m3")
      return r.error("quantization_config.fmt",
                     "unsupported fp8 format '" + *fmt + "', expected e4m3");
    const llvm::json::Array *bs = o->getArray("weight_block_size");
    if (!bs || bs->size() != 2 || (*bs)[0].getAsInteger() != 128 ||
        (*bs)[1].getAsInteger() != 128)
      return r.error("quantization_config.weight_block_size",
                     "expected [128, 128]");
    c.fp8BlockQuantized = true;
    c.fp8BlockSize = 128;
  }
  return c;
}

llvm::Expected<ModelConfig> mlir::ds::readModelConfig(llvm::StringRef path) {
  auto buf = llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!buf)
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        (path + ": cannot read: " + buf.getError().message()).str());
  return parseModelConfig((*buf)->getBuffer(), path);
}
