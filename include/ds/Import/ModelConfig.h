//===- ModelConfig.h - Hugging Face DeepSeek config.json --------*- C++ -*-===//
//
// The architecture fields of a DeepSeek V2/V3 checkpoint, read and validated
// from its config.json exactly as ../shared/SEMANTICS.md describes. The
// importer builds IR only from a ModelConfig that passed validation.
//
//===----------------------------------------------------------------------===//
#ifndef DS_IMPORT_MODELCONFIG_H
#define DS_IMPORT_MODELCONFIG_H

#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <optional>
#include <string>

namespace mlir::ds {

enum class ModelFamily { V2, V3 };           // model_type deepseek_v2 / _v3
enum class ScoringFunction { Softmax, Sigmoid };
// Named apart from the dialect's TopkMethod: this header has no MLIR deps.
enum class RoutingMethod { Greedy, GroupLimitedGreedy, NoauxTc };

/// rope_scaling with type "yarn" (the only scaling DeepSeek releases use).
struct YarnConfig {
  double factor = 1.0;
  int64_t originalMaxPositionEmbeddings = 0;
  double betaFast = 32.0;
  double betaSlow = 1.0;
  double mscale = 1.0;
  double mscaleAllDim = 0.0; // 0 when absent: no softmax correction
};

struct ModelConfig {
  std::string path; // the config.json this came from, for messages
  ModelFamily family = ModelFamily::V3;

  int64_t vocabSize = 0;
  int64_t hiddenSize = 0;
  int64_t intermediateSize = 0;   // dense MLP width (Fd)
  int64_t numHiddenLayers = 0;
  /// Multi-token-prediction modules after the main layers (V3/R1: 1);
  /// module j is checkpoint layer numHiddenLayers + j.
  int64_t numNextnPredictLayers = 0;
  int64_t numAttentionHeads = 0;
  int64_t maxPositionEmbeddings = 0;
  double rmsNormEps = 1e-6;
  bool tieWordEmbeddings = false; // true is refused: DeepSeek never ties

  // MLA.
  std::optional<int64_t> qLoraRank; // null -> q_proj (V2-Lite)
  int64_t kvLoraRank = 0;
  int64_t qkNopeHeadDim = 0;
  int64_t qkRopeHeadDim = 0;
  int64_t vHeadDim = 0;
  double ropeTheta = 10000.0;
  std::optional<YarnConfig> yarn;

  // MoE.
  int64_t nRoutedExperts = 0;
  int64_t numExpertsPerTok = 0;
  int64_t moeIntermediateSize = 0;
  int64_t nSharedExperts = 0;
  int64_t firstKDenseReplace = 0;
  int64_t moeLayerFreq = 1;
  int64_t nGroup = 1;
  int64_t topkGroup = 1;
  ScoringFunction scoringFunc = ScoringFunction::Softmax;
  RoutingMethod topkMethod = RoutingMethod::Greedy;
  bool normTopkProb = false;
  double routedScalingFactor = 1.0;

  std::optional<int64_t> bosTokenId;
  std::optional<int64_t> eosTokenId;

  /// FP8 checkpoints (quantization_config.quant_method == "fp8",
  /// weight_block_size [128, 128]) ship weight_scale_inv tensors.
  bool fp8BlockQuantized = false;
  /// torch_dtype: the dtype of unquantised weights when no checkpoint file
  /// says otherwise ("bfloat16", "float16" or "float32").
  std::string torchDtype = "bfloat16";
  int64_t fp8BlockSize = 128;

  bool isMoeLayer(int64_t layer) const {
    return nRoutedExperts > 0 && layer >= firstKDenseReplace &&
           layer % moeLayerFreq == 0;
  }
  /// Latent cache width per token per layer: kv_lora_rank + rope dim.
  int64_t latentCacheWidth() const { return kvLoraRank + qkRopeHeadDim; }
  /// mscale factor m of SEMANTICS.md (1 without yarn / mscale_all_dim).
  double yarnMscale() const;
  /// (dn+dr)^-0.5 * m^2.
  double softmaxScale() const;
};

/// Parses and validates a config.json text. Errors are one line naming
/// `path` and the field: "<path>: field 'n_group': ...", or for JSON syntax
/// "<path>:<line>:<col>: invalid JSON: ...".
llvm::Expected<ModelConfig> parseModelConfig(llvm::StringRef jsonText,
                                             llvm::StringRef path);

/// Reads `path` (a config.json file) and calls parseModelConfig.
llvm::Expected<ModelConfig> readModelConfig(llvm::StringRef path);

} // namespace mlir::ds

#endif // DS_IMPORT_MODELCONFIG_H
