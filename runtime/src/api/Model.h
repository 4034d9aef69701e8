//===- Model.h - what a loaded artifact is ----------------------*- C++ -*-===//
#ifndef DSRT_API_MODEL_H
#define DSRT_API_MODEL_H

#include "artifact/ArtifactFile.h"
#include "dsrt/dsrt.h"
#include "weights/Checkpoint.h"

#include <memory>
#include <string>
#include <vector>

namespace dsrt {

struct BoundWeight {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

/// void entry(ctx, tokens, positions, cache, logits), memrefs by pointer.
using EntryFn = void (*)(void *, void *, void *, void *, void *);

void setLastError(const std::string &message);

} // namespace dsrt

struct dsrt_model {
  dsrt::ArtifactFile artifact;
  std::string artifactPath;
  std::unique_ptr<dsrt::Checkpoint> checkpoint;
  std::vector<dsrt::BoundWeight> weights;
  void *library = nullptr;
  dsrt::EntryFn prefill = nullptr;
  dsrt::EntryFn decode = nullptr;
  int64_t weightsBytes = 0;
  std::string routingTrace; // JSON records, comma separated, no brackets
  mutable std::string routingTraceJson;
  ~dsrt_model();
};

struct dsrt_session {
  dsrt_model *model = nullptr;
  int64_t capacity = 0;
  int64_t position = 0;
  std::vector<uint8_t> cache; // [layers, capacity, width] of cache_dtype
};

#endif // DSRT_API_MODEL_H
