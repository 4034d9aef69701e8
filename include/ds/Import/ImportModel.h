//===- ImportModel.h - ModelConfig -> ds IR ---------------------*- C++ -*-===//
#ifndef DS_IMPORT_IMPORTMODEL_H
#define DS_IMPORT_IMPORTMODEL_H

#include "ds/Import/ModelConfig.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

#include <functional>
#include <optional>

namespace mlir::ds {

struct ImportOptions {
  /// Element type of the latent cache (the compile dtype); f32 when null.
  /// f8E4M3FN selects the FP8 layout, `cacheScaleGroup` latent values per
  /// f32 scale (kv_lora_rank must be a multiple of it).
  Type cacheElementType;
  int64_t cacheScaleGroup = 128;
  /// The element type a checkpoint stores tensor `name` with, when a
  /// checkpoint is at hand; null or std::nullopt: derive it from the config
  /// (torch_dtype, FP8 quantization_config).
  std::function<std::optional<Type>(llvm::StringRef name)> checkpointType;
  /// Adds @ragged_step (not @step: glibc exports a `step` symbol that
  /// would interpose on the artifact's own), the serving engine's ragged batch over a paged latent
  /// cache (see importModel).
  bool stepEntry = false;
  /// @ragged_step's pages hold every head's K and V (!ds.paged_kv_cache,
  /// ds-compile --kv-layout=per-head) instead of the latent: the layout of
  /// a multi-head attention deployment, for the capacity comparison.
  bool perHeadKVCache = false;
};

/// Builds the whole model at the ds level: @prefill (a chunk of tokens of one
/// sequence at given positions -> logits for every position, cache filled)
/// and @decode (one token). Layers >= num_hidden_layers are not part of it,
/// except that num_nextn_predict_layers >= 1 adds @prefill_hidden (prefill
/// also returning the hidden states after the final norm) and @draft (the
/// first multi-token-prediction module over its own one-layer cache, also
/// returning its output hidden states for chained drafts).
/// `stepEntry` adds @ragged_step(tokens [T], positions [T], paged cache,
/// query_start [S + 1], context_lens [S], block_tables [S, pages],
/// logits_rows [R]) -> (logits [R, vocab], paged cache): T tokens of S
/// sequences, each sequence's tokens contiguous and causal among
/// themselves, all going through the MoE together.
OwningOpRef<ModuleOp> importModel(MLIRContext *context,
                                  const ModelConfig &config,
                                  const ImportOptions &options = {});

/// One tensor the compiled model needs from the checkpoint.
struct RequiredWeight {
  std::string name;
  llvm::SmallVector<int64_t> shape;
  Type elementType;
};

/// Every checkpoint tensor the module names (ds.weight, and each member of a
/// ds.stacked_weight), once each, in first-use order.
std::vector<RequiredWeight> collectRequiredWeights(ModuleOp module);

} // namespace mlir::ds

#endif // DS_IMPORT_IMPORTMODEL_H
