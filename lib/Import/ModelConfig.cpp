//===- ModelConfig.cpp - Hugging Face DeepSeek config.json ----------------===//
#include "ds/Import/ModelConfig.h"
#include "support/OneLine.h"

#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"

#include <cmath>
#include <cstdio>

using namespace mlir::ds;
using llvm::json::Object;
using llvm::json::Value;

namespace {

using llvm::json::ObjectMapper;
using llvm::json::Path;

std::string describe(const Value &v) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << v;
  if (s.size() > 40)
    s = s.substr(0, 37) + "...";
  return s;
}

/// A field of config.json: absent and null both mean "not given" (the
/// default applies); a value of the wrong JSON type fails the mapping.
template <typename T>
struct Field {
  std::optional<T> value;
  T get(T dflt) const { return value.value_or(dflt); }
};

bool fromJSON(const Value &v, Field<int64_t> &f, Path p) {
  if (v.kind() == Value::Null)
    return true;
  if (auto i = v.getAsInteger()) {
    f.value = *i;
    return true;
  }
  if (auto d = v.getAsNumber())
    if (std::floor(*d) == *d && std::fabs(*d) < 9e15) {
      f.value = static_cast<int64_t>(*d);
      return true;
    }
  p.report("expected an integer");
  return false;
}

bool fromJSON(const Value &v, Field<double> &f, Path p) {
  if (v.kind() == Value::Null)
    return true;
  if (auto d = v.getAsNumber()) {
    f.value = *d;
    return true;
  }
  p.report("expected a number");
  return false;
}

bool fromJSON(const Value &v, Field<bool> &f, Path p) {
  if (v.kind() == Value::Null)
    return true;
  if (auto b = v.getAsBoolean()) {
    f.value = *b;
    return true;
  }
  p.report("expected true or false");
  return false;
}

bool fromJSON(const Value &v, Field<std::string> &f, Path p) {
  if (v.kind() == Value::Null)
    return true;
  if (auto s = v.getAsString()) {
    f.value = s->str();
    return true;
  }
  p.report("expected a string");
  return false;
}

/// The flat fields of config.json, typed; what they mean and how they
/// relate is checked by hand afterwards.
struct RawConfig {
  Field<std::string> modelType;
  // Required, > 0.
  Field<int64_t> vocabSize, hiddenSize, intermediateSize, numHiddenLayers,
      numAttentionHeads, kvLoraRank, qkNopeHeadDim, qkRopeHeadDim, vHeadDim,
      nRoutedExperts, numExpertsPerTok, moeIntermediateSize;
  Field<int64_t> qLoraRank, nSharedExperts, firstKDenseReplace, moeLayerFreq,
      nGroup, topkGroup, numNextnPredictLayers, maxPositionEmbeddings;
  Field<bool> normTopkProb, tieWordEmbeddings, attentionBias;
  Field<double> routedScalingFactor, rmsNormEps, ropeTheta;
  Field<std::string> scoringFunc, topkMethod, hiddenAct, torchDtype;
};

bool fromJSON(const Value &v, RawConfig &c, Path p) {
  ObjectMapper o(v, p);
  return o && o.mapOptional("model_type", c.modelType) &&
         o.mapOptional("vocab_size", c.vocabSize) &&
         o.mapOptional("hidden_size", c.hiddenSize) &&
         o.mapOptional("intermediate_size", c.intermediateSize) &&
         o.mapOptional("num_hidden_layers", c.numHiddenLayers) &&
         o.mapOptional("num_attention_heads", c.numAttentionHeads) &&
         o.mapOptional("kv_lora_rank", c.kvLoraRank) &&
         o.mapOptional("qk_nope_head_dim", c.qkNopeHeadDim) &&
         o.mapOptional("qk_rope_head_dim", c.qkRopeHeadDim) &&
         o.mapOptional("v_head_dim", c.vHeadDim) &&
         o.mapOptional("n_routed_experts", c.nRoutedExperts) &&
         o.mapOptional("num_experts_per_tok", c.numExpertsPerTok) &&
         o.mapOptional("moe_intermediate_size", c.moeIntermediateSize) &&
         o.mapOptional("q_lora_rank", c.qLoraRank) &&
         o.mapOptional("n_shared_experts", c.nSharedExperts) &&
         o.mapOptional("first_k_dense_replace", c.firstKDenseReplace) &&
         o.mapOptional("moe_layer_freq", c.moeLayerFreq) &&
         o.mapOptional("n_group", c.nGroup) &&
         o.mapOptional("topk_group", c.topkGroup) &&
         o.mapOptional("num_nextn_predict_layers", c.numNextnPredictLayers) &&
         o.mapOptional("max_position_embeddings", c.maxPositionEmbeddings) &&
         o.mapOptional("norm_topk_prob", c.normTopkProb) &&
         o.mapOptional("tie_word_embeddings", c.tieWordEmbeddings) &&
         o.mapOptional("attention_bias", c.attentionBias) &&
         o.mapOptional("routed_scaling_factor", c.routedScalingFactor) &&
         o.mapOptional("rms_norm_eps", c.rmsNormEps) &&
         o.mapOptional("rope_theta", c.ropeTheta) &&
         o.mapOptional("scoring_func", c.scoringFunc) &&
         o.mapOptional("topk_method", c.topkMethod) &&
         o.mapOptional("hidden_act", c.hiddenAct) &&
         o.mapOptional("torch_dtype", c.torchDtype);
}

/// Errors name the file and the field: "config.json: field 'x': ...".
class Errors {
public:
  explicit Errors(llvm::StringRef path) : path(path) {}

  llvm::Error operator()(llvm::StringRef field, const llvm::Twine &msg) const {
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        (path + ": field '" + field + "': " + msg).str());
  }

  /// A failed mapping: Root's "<message> at (root).<field>", with the
  /// offending value appended.
  llvm::Error fromMapping(const llvm::json::Path::Root &root,
                          const Object &json) const {
    std::string msg = llvm::toString(root.getError());
    llvm::StringRef text(msg);
    size_t at = text.rfind(" at (root).");
    if (at == llvm::StringRef::npos)
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     (path + ": " + text).str());
    llvm::StringRef field = text.substr(at + 11);
    std::string got;
    if (const Value *v = json.get(field))
      got = ", got " + describe(*v);
    return (*this)(field, text.take_front(at) + got);
  }

  llvm::StringRef path;
};

/// Doubles as the config wrote them (0.707, not 0.71).
std::string fmtDouble(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

/// A number of a nested object ("rope_scaling.factor"); `dflt` when absent.
llvm::Expected<double> nestedNum(const Errors &error, const Object &o,
                                 llvm::StringRef name, llvm::StringRef field,
                                 double dflt) {
  const Value *v = o.get(name);
  if (!v || v->kind() == Value::Null)
    return dflt;
  if (auto d = v->getAsNumber())
    return *d;
  return error(field, "expected a number, got " + describe(*v));
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

namespace {

llvm::Expected<Value> parseJson(llvm::StringRef text, llvm::StringRef path) {
  llvm::Expected<Value> parsed = llvm::json::parse(text);
  if (parsed)
    return parsed;
  std::string msg = llvm::toString(parsed.takeError());
  // llvm::json reports "[line:col, byte=N]: message"; keep line:col.
  std::string where;
  size_t open = msg.find('['), comma = msg.find(',');
  if (open != std::string::npos && comma != std::string::npos && comma > open)
    where = msg.substr(open + 1, comma - open - 1);
  size_t colon = msg.find("]: ");
  std::string reason = colon == std::string::npos ? msg : msg.substr(colon + 3);
  return llvm::createStringError(
      llvm::inconvertibleErrorCode(),
      (path + (where.empty() ? "" : ":" + where) + ": invalid JSON: " + reason)
          .str());
}

/// Sizes: the required ones > 0, the optional ones at least their minimum.
llvm::Error readSizes(const Errors &error, const RawConfig &raw,
                      ModelConfig &c) {
  struct Req {
    const char *name;
    const Field<int64_t> &in;
    int64_t &out;
  } reqs[] = {{"vocab_size", raw.vocabSize, c.vocabSize},
              {"hidden_size", raw.hiddenSize, c.hiddenSize},
              {"intermediate_size", raw.intermediateSize, c.intermediateSize},
              {"num_hidden_layers", raw.numHiddenLayers, c.numHiddenLayers},
              {"num_attention_heads", raw.numAttentionHeads,
               c.numAttentionHeads},
              {"kv_lora_rank", raw.kvLoraRank, c.kvLoraRank},
              {"qk_nope_head_dim", raw.qkNopeHeadDim, c.qkNopeHeadDim},
              {"qk_rope_head_dim", raw.qkRopeHeadDim, c.qkRopeHeadDim},
              {"v_head_dim", raw.vHeadDim, c.vHeadDim},
              {"n_routed_experts", raw.nRoutedExperts, c.nRoutedExperts},
              {"num_experts_per_tok", raw.numExpertsPerTok,
               c.numExpertsPerTok},
              {"moe_intermediate_size", raw.moeIntermediateSize,
               c.moeIntermediateSize}};
  for (const Req &q : reqs) {
    if (!q.in.value)
      return error(q.name, "missing required field");
    if (*q.in.value <= 0)
      return error(q.name, fmtDouble(*q.in.value) + " must be > 0");
    q.out = *q.in.value;
  }
  if (raw.qLoraRank.value && *raw.qLoraRank.value <= 0)
    return error("q_lora_rank",
                 llvm::formatv("{0} must be > 0 or null", *raw.qLoraRank.value)
                     .str());
  c.qLoraRank = raw.qLoraRank.value;
  struct Opt {
    const char *name;
    const Field<int64_t> &in;
    int64_t dflt, min;
    int64_t &out;
  } opts[] = {
      {"n_shared_experts", raw.nSharedExperts, 0, 0, c.nSharedExperts},
      {"first_k_dense_replace", raw.firstKDenseReplace, 0, 0,
       c.firstKDenseReplace},
      {"moe_layer_freq", raw.moeLayerFreq, 1, 1, c.moeLayerFreq},
      {"n_group", raw.nGroup, 1, 1, c.nGroup},
      {"topk_group", raw.topkGroup, 1, 1, c.topkGroup},
      {"num_nextn_predict_layers", raw.numNextnPredictLayers, 0, 0,
       c.numNextnPredictLayers},
      {"max_position_embeddings", raw.maxPositionEmbeddings, 4096, 1,
       c.maxPositionEmbeddings}};
  for (const Opt &q : opts) {
    int64_t value = q.in.get(q.dflt);
    if (value < q.min)
      return error(q.name,
                   llvm::formatv("{0} must be >= {1}", value, q.min).str());
    q.out = value;
  }
  return llvm::Error::success();
}

/// Flags, scales and the routing / activation / dtype names.
llvm::Error readChoices(const Errors &error, const RawConfig &raw, bool v3,
                        ModelConfig &c) {
  c.normTopkProb = raw.normTopkProb.get(v3);
  if (raw.tieWordEmbeddings.get(false))
    return error("tie_word_embeddings",
                 "true is not supported: DeepSeek models have a separate "
                 "lm_head");
  if (raw.attentionBias.get(false))
    return error("attention_bias", "true is not supported");
  struct Positive {
    const char *name;
    const Field<double> &in;
    double dflt;
    double &out;
  } positives[] = {{"routed_scaling_factor", raw.routedScalingFactor, 1.0,
                    c.routedScalingFactor},
                   {"rms_norm_eps", raw.rmsNormEps, 1e-6, c.rmsNormEps},
                   {"rope_theta", raw.ropeTheta, 10000.0, c.ropeTheta}};
  for (const Positive &q : positives) {
    double v = q.in.get(q.dflt);
    if (!(v > 0))
      return error(q.name, fmtDouble(v) + " must be > 0");
    q.out = v;
  }
  std::string scoring = raw.scoringFunc.get(v3 ? "sigmoid" : "softmax");
  if (scoring == "softmax")
    c.scoringFunc = ScoringFunction::Softmax;
  else if (scoring == "sigmoid")
    c.scoringFunc = ScoringFunction::Sigmoid;
  else
    return error("scoring_func", "unknown scoring function '" + scoring +
                                     "', expected softmax or sigmoid");
  std::string method = raw.topkMethod.get(v3 ? "noaux_tc" : "greedy");
  if (method == "greedy")
    c.topkMethod = RoutingMethod::Greedy;
  else if (method == "group_limited_greedy")
    c.topkMethod = RoutingMethod::GroupLimitedGreedy;
  else if (method == "noaux_tc")
    c.topkMethod = RoutingMethod::NoauxTc;
  else
    return error("topk_method", "unknown topk_method '" + method +
                                    "', expected greedy, group_limited_greedy "
                                    "or noaux_tc");
  std::string act = raw.hiddenAct.get("silu");
  if (act != "silu")
    return error("hidden_act", "'" + act + "' is not supported, expected silu");
  std::string dtype = raw.torchDtype.get("bfloat16");
  if (dtype != "bfloat16" && dtype != "float16" && dtype != "float32")
    return error("torch_dtype", "'" + dtype +
                                    "' is not supported, expected "
                                    "bfloat16, float16 or float32");
  c.torchDtype = dtype;
  return llvm::Error::success();
}

/// bos/eos: an id, null, or a list whose first id is the one that counts.
llvm::Error readTokenIds(const Errors &error, const Object &root,
                         ModelConfig &c) {
  for (const char *name : {"bos_token_id", "eos_token_id"}) {
    const Value *v = root.get(name);
    std::optional<int64_t> id;
    // Some configs list several eos ids; the first is the one generation stops on.
    if (v && v->getAsArray() && !v->getAsArray()->empty())
      v = &v->getAsArray()->front();
    if (v && v->kind() != Value::Null) {
      auto i = v->getAsInteger();
      if (!i || *i < 0)
        return error(name, "expected a token id, got " + describe(*v));
      id = *i;
    }
    (std::string(name) == "bos_token_id" ? c.bosTokenId : c.eosTokenId) = id;
  }
  return llvm::Error::success();
}

/// Cross-field rules of SEMANTICS.md.
llvm::Error checkCrossFields(const Errors &error, const ModelConfig &c) {
  if (c.qkRopeHeadDim % 2)
    return error("qk_rope_head_dim",
                 llvm::formatv("{0} must be even (RoPE rotates pairs)",
                               c.qkRopeHeadDim)
                     .str());
  if (c.numExpertsPerTok > c.nRoutedExperts)
    return error("num_experts_per_tok",
                 llvm::formatv("{0} must be <= n_routed_experts ({1})",
                               c.numExpertsPerTok, c.nRoutedExperts)
                     .str());
  if (c.topkMethod == RoutingMethod::Greedy)
    return llvm::Error::success();
  if (c.nRoutedExperts % c.nGroup)
    return error("n_group", llvm::formatv("n_routed_experts ({0}) must be "
                                          "divisible by n_group ({1})",
                                          c.nRoutedExperts, c.nGroup)
                                .str());
  if (c.topkGroup > c.nGroup)
    return error("topk_group", llvm::formatv("{0} must be <= n_group ({1})",
                                             c.topkGroup, c.nGroup)
                                   .str());
  int64_t per = c.nRoutedExperts / c.nGroup;
  if (c.topkGroup * per < c.numExpertsPerTok)
    return error("topk_group",
                 llvm::formatv("grouped routing cannot fill top_k: "
                               "topk_group ({0}) x experts per group ({1}) "
                               "< num_experts_per_tok ({2})",
                               c.topkGroup, per, c.numExpertsPerTok)
                     .str());
  if (c.topkMethod == RoutingMethod::NoauxTc && per < 2)
    return error("n_group",
                 llvm::formatv("noaux_tc scores groups by their top-2 "
                               "experts: {0} experts per group is too few",
                               per)
                     .str());
  return llvm::Error::success();
}

/// "rope_scaling": YaRN only.
llvm::Error readRopeScaling(const Errors &error, const Object &root,
                            ModelConfig &c) {
  const Value *rs = root.get("rope_scaling");
  if (!rs || rs->kind() == Value::Null)
    return llvm::Error::success();
  const Object *o = rs->getAsObject();
  if (!o)
    return error("rope_scaling", "expected an object or null");
  std::optional<llvm::StringRef> type = o->getString("type");
  if (!type)
    type = o->getString("rope_type");
  if (!type)
    return error("rope_scaling.type", "missing required field");
  if (*type != "yarn")
    return error("rope_scaling.type",
                 "unsupported rope_scaling type '" + *type + "', expected yarn");
  YarnConfig y;
  DS_TRY(factor, nestedNum(error, *o, "factor", "rope_scaling.factor", 0));
  if (!(factor > 0))
    return error("rope_scaling.factor", fmtDouble(factor) + " must be > 0");
  y.factor = factor;
  llvm::StringRef origField = "rope_scaling.original_max_position_embeddings";
  const Value *orig = o->get("original_max_position_embeddings");
  if (!orig || orig->kind() == Value::Null)
    return error(origField, "missing required field");
  Field<int64_t> origValue;
  llvm::json::Path::Root unused;
  if (!fromJSON(*orig, origValue, unused))
    return error(origField, "expected an integer, got " + describe(*orig));
  if (*origValue.value <= 0)
    return error(origField,
                 llvm::formatv("{0} must be > 0", *origValue.value).str());
  y.originalMaxPositionEmbeddings = *origValue.value;
  DS_TRY(bf, nestedNum(error, *o, "beta_fast", "rope_scaling.beta_fast", 32));
  DS_TRY(bs, nestedNum(error, *o, "beta_slow", "rope_scaling.beta_slow", 1));
  if (!(bf > 0) || !(bs > 0))
    return error("rope_scaling.beta_fast", "beta_fast (" + fmtDouble(bf) +
                                               ") and beta_slow (" +
                                               fmtDouble(bs) + ") must be > 0");
  y.betaFast = bf;
  y.betaSlow = bs;
  DS_TRY(ms, nestedNum(error, *o, "mscale", "rope_scaling.mscale", 1));
  DS_TRY(msa, nestedNum(error, *o, "mscale_all_dim",
                        "rope_scaling.mscale_all_dim", 0));
  // HF multiplies cos/sin by mscale/mscale_all_dim; released models keep
  // them equal (factor 1). Others would change the math silently.
  if (msa != 0 && ms != msa)
    return error("rope_scaling.mscale",
                 fmtDouble(ms) + " differs from mscale_all_dim " +
                     fmtDouble(msa) + "; only equal values are supported");
  y.mscale = ms;
  y.mscaleAllDim = msa;
  c.yarn = y;
  return llvm::Error::success();
}

/// "quantization_config": FP8 e4m3 with 128 x 128 blocks only.
llvm::Error readQuantization(const Errors &error, const Object &root,
                             ModelConfig &c) {
  const Value *q = root.get("quantization_config");
  if (!q || q->kind() == Value::Null)
    return llvm::Error::success();
  const Object *o = q->getAsObject();
  if (!o)
    return error("quantization_config", "expected an object");
  std::optional<llvm::StringRef> method = o->getString("quant_method");
  if (!method || *method != "fp8")
    return error("quantization_config.quant_method",
                 "unsupported quantization '" +
                     (method ? method->str() : std::string("<missing>")) +
                     "', expected fp8");
  if (std::optional<llvm::StringRef> fmt = o->getString("fmt");
      fmt && *fmt != "e4m3")
    return error("quantization_config.fmt",
                 "unsupported fp8 format '" + *fmt + "', expected e4m3");
  const llvm::json::Array *bs = o->getArray("weight_block_size");
  if (!bs || bs->size() != 2 || (*bs)[0].getAsInteger() != 128 ||
      (*bs)[1].getAsInteger() != 128)
    return error("quantization_config.weight_block_size",
                 "expected [128, 128]");
  c.fp8BlockQuantized = true;
  c.fp8BlockSize = 128;
  return llvm::Error::success();
}

llvm::Expected<ModelConfig> parseConfig(llvm::StringRef text,
                                        llvm::StringRef path) {
  DS_TRY(parsed, parseJson(text, path));
  const Object *root = parsed.getAsObject();
  if (!root)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   (path + ": expected a JSON object").str());
  Errors error(path);
  RawConfig raw;
  llvm::json::Path::Root mapping;
  if (!fromJSON(parsed, raw, mapping))
    return error.fromMapping(mapping, *root);

  ModelConfig c;
  c.path = path.str();
  std::string modelType = raw.modelType.get("");
  if (modelType == "deepseek_v2")
    c.family = ModelFamily::V2;
  else if (modelType == "deepseek_v3")
    c.family = ModelFamily::V3;
  else if (modelType.empty())
    return error("model_type", "missing required field");
  else
    return error("model_type", "unknown model_type '" + modelType +
                                   "', expected deepseek_v2 or deepseek_v3");
  bool v3 = c.family == ModelFamily::V3;
  if (llvm::Error e = readSizes(error, raw, c))
    return std::move(e);
  if (llvm::Error e = readChoices(error, raw, v3, c))
    return std::move(e);
  if (llvm::Error e = readTokenIds(error, *root, c))
    return std::move(e);
  if (llvm::Error e = checkCrossFields(error, c))
    return std::move(e);
  if (llvm::Error e = readRopeScaling(error, *root, c))
    return std::move(e);
  if (llvm::Error e = readQuantization(error, *root, c))
    return std::move(e);
  return c;
}

} // namespace

llvm::Expected<ModelConfig> mlir::ds::parseModelConfig(llvm::StringRef text,
                                                       llvm::StringRef path) {
  llvm::Expected<ModelConfig> c = parseConfig(text, path);
  if (!c) // a message quoting the file's strings stays on one line
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        dsrt::oneLine(llvm::toString(c.takeError())));
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
