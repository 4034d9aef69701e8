//===- ArtifactFile.h - reading a ds artifact -------------------*- C++ -*-===//
//
// The layout is written by lib/Target/Artifact.cpp (see its header): magic,
// version, sizes, FNV-1a checksum, JSON manifest, ELF shared object.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_ARTIFACT_ARTIFACTFILE_H
#define DSRT_ARTIFACT_ARTIFACTFILE_H

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace dsrt {

constexpr uint32_t kArtifactFormatVersion = 1;
/// magic, version, flags, manifest size, object size, checksum.
constexpr size_t kArtifactHeaderSize = 40;
constexpr uint64_t kFnvOffsetBasis = 14695981039346656037ULL;

struct Binding {
  std::vector<int64_t> shape;
  std::vector<std::string> members;
  bool dequantize = false;
  /// Only the runtime's GEMMs read it: its storage type is the runtime's.
  bool gemmOnly = false;
  /// The weight of the GEMM that produces the logits (and of no other).
  bool logits = false;
  /// Partitioned models: each member is cut into splitParts equal pieces
  /// along its dim splitDim and this rank binds piece `rank` of each
  /// (splitDim -1: the member list itself is cut, experts over ranks).
  int64_t splitDim = -1, splitParts = 1;
};

struct RequiredTensor {
  std::string name;
  std::vector<int64_t> shape;
  std::string dtype;
};

struct Manifest {
  std::string target, dtype, modelType, cacheDtype;
  std::string gpuArch; // cuda artifacts: "sm_90", ...; "" otherwise
  /// What the host code was compiled for: an x86-64 level ("x86-64-v3",
  /// cuda artifacts) or a CPU name (cpu artifacts: the build machine's).
  std::string hostCpu;
  int64_t vocabSize = 0, numLayers = 0, kvLoraRank = 0, ropeDim = 0,
          cacheWidth = 0, maxPositions = 0, bosTokenId = -1, eosTokenId = -1;
  /// fp8 cache: latent values per f32 scale; 0 for the other dtypes.
  int64_t cacheScaleGroup = 0;
  /// Bytes of one token's cache row of one layer: width values of
  /// cache_dtype, or (fp8) kv_lora_rank e4m3 + one f32 scale per group +
  /// the rope key in bf16 (656 bytes for V3).
  int64_t cacheRowBytes() const {
    if (cacheDtype == "fp8")
      return kvLoraRank + 4 * (kvLoraRank / cacheScaleGroup) + 2 * ropeDim;
    return cacheWidth * (cacheDtype == "bf16" ? 2 : 4);
  }
  /// A named byte range [begin, end) of a cache row.
  struct CacheRowPart {
    std::string name;
    int64_t begin, end;
  };
  /// The parts of a cacheRowBytes() row, in order and covering it: what
  /// DSRT_DEBUG_CACHE's description lists, so readers of a dump need not
  /// restate this layout.
  std::vector<CacheRowPart> cacheRowParts() const {
    if (cacheDtype == "fp8") {
      int64_t scales = kvLoraRank + 4 * (kvLoraRank / cacheScaleGroup);
      return {{"latent codes", 0, kvLoraRank},
              {"latent scales", kvLoraRank, scales},
              {"rope", scales, scales + 2 * ropeDim}};
    }
    int64_t w = cacheDtype == "bf16" ? 2 : 4;
    return {{"latent", 0, kvLoraRank * w},
            {"rope", kvLoraRank * w, (kvLoraRank + ropeDim) * w}};
  }
  /// The last dimension of the cache buffer the entry points take: values
  /// of cache_dtype, bytes for fp8.
  int64_t cacheRowElements() const {
    return cacheDtype == "fp8" ? cacheRowBytes() : cacheWidth;
  }
  /// "step_cache": @ragged_step's pages hold every head's K and V, rows of
  /// this many cache_dtype values (ds-compile --kv-layout=per-head); 0 when
  /// they hold latent rows like the sessions' caches.
  int64_t stepCacheWidth = 0;
  bool perHeadStepCache() const { return stepCacheWidth > 0; }
  /// The row of @ragged_step's page pool: elements, and bytes.
  int64_t stepRowElements() const {
    return perHeadStepCache() ? stepCacheWidth : cacheRowElements();
  }
  int64_t stepRowBytes() const {
    return perHeadStepCache() ? stepCacheWidth * (cacheDtype == "bf16" ? 2 : 4)
                              : cacheRowBytes();
  }
  std::map<std::string, std::string> entrySymbols; // prefill, decode, ...
  /// Multi-token prediction: the hidden-state width @prefill_hidden returns
  /// and @draft takes, and @draft's cache layers; 0 without an MTP module.
  int64_t mtpHiddenSize = 0, mtpCacheLayers = 0;
  /// Most tokens one call of the entry point takes; -1 when unbounded.
  std::map<std::string, int64_t> entryMaxTokens;
  std::vector<Binding> bindings;
  std::vector<RequiredTensor> weights;
  /// Ranks of the job the model was partitioned for (1: not partitioned).
  int64_t worldSize = 1;
};

struct ArtifactFile {
  Manifest manifest;
  std::string object; // the ELF shared object
};

/// Reads and checks `path`; errors name the file.
bool readArtifact(const std::string &path, ArtifactFile &out,
                  std::string &error);

/// Parses a manifest text (exposed for tests).
bool parseManifest(const std::string &text, Manifest &out, std::string &error);

uint64_t fnv1a64(uint64_t hash, const char *data, size_t size);

/// "" when this CPU runs host code compiled for `hostCpu`, else one line
/// saying what is missing. x86-64 levels are checked; a CPU name (a cpu
/// artifact, built for its own machine) and "" are taken on trust.
std::string hostCpuProblem(const std::string &hostCpu);

} // namespace dsrt

#endif // DSRT_ARTIFACT_ARTIFACTFILE_H
