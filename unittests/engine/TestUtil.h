//===- TestUtil.h - files for the engine tests ------------------*- C++ -*-===//
#ifndef DS_UNITTESTS_ENGINE_TESTUTIL_H
#define DS_UNITTESTS_ENGINE_TESTUTIL_H

#include "../runtime/TestFiles.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace dstest {

// The temporary directory and the safetensors writer are the runtime
// tests' (one copy: unittests/runtime/TestFiles.h).
using dsrt::testing::bytesOf;
using dsrt::testing::jsonShape;
using dsrt::testing::TempDir;
using dsrt::testing::Tensor;

/// A well-formed safetensors file holding `tensors` back to back.
inline std::string safetensors(const std::vector<Tensor> &tensors) {
  return dsrt::testing::safetensorsOf(tensors);
}

inline void writeFile(const std::string &path, const std::string &bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

inline std::string readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline bool exists(const std::string &path) {
  return std::ifstream(path).good();
}

/// bf16 bytes of values that bf16 holds exactly (truncation).
inline std::string bf16(const std::vector<float> &v) {
  std::string out;
  for (float f : v) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    out += char((bits >> 16) & 0xFF);
    out += char((bits >> 24) & 0xFF);
  }
  return out;
}

inline uint64_t fnv1a(uint64_t h, const std::string &bytes) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

/// An artifact file around `manifest` and `object`, written independently
/// of the reader under test.
inline std::string artifact(const std::string &manifest,
                            const std::string &object, uint32_t version = 1,
                            uint32_t flags = 0) {
  std::string out = "DSARTIFA";
  auto put = [&](uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i)
      out += char((v >> (8 * i)) & 0xFF);
  };
  put(version, 4);
  put(flags, 4);
  put(manifest.size(), 8);
  put(object.size(), 8);
  put(fnv1a(fnv1a(14695981039346656037ULL, manifest), object), 8);
  return out + manifest + object;
}

/// The manifest the stand-in kernels (FakeKernels.cpp) expect: vocab 12,
/// 2 layers, cache width 3; binding 0 = embed [12, 4] (F32), binding 1 =
/// stack of e.0, e.1 [4, 4] (BF16).
inline std::string
fakeManifest(const std::string &prefillMaxTokens = "null",
             const std::string &prefillSymbol = "_mlir_ciface_prefill",
             const std::string &eos = "3") {
  return R"({"format_version": 1, "target": "cpu", "dtype": "f32",
 "model": {"model_type": "deepseek_v3", "vocab_size": 12, "num_layers": 2,
           "kv_lora_rank": 2, "qk_rope_head_dim": 1, "cache_width": 3,
           "cache_dtype": "f32", "max_position_embeddings": 16,
           "bos_token_id": 0, "eos_token_id": )" +
         eos + R"(},
 "entry_points": {"prefill": {"symbol": ")" +
         prefillSymbol + R"(", "max_tokens": )" + prefillMaxTokens + R"(},
                  "decode": {"symbol": "_mlir_ciface_decode", "max_tokens": 1}},
 "bindings": [{"index": 0, "shape": [12, 4], "members": ["model.embed_tokens.weight"], "dequantize": false},
              {"index": 1, "shape": [2, 4, 4], "members": ["e.0", "e.1"], "dequantize": false}],
 "weights": [{"name": "model.embed_tokens.weight", "shape": [12, 4], "dtype": "F32"},
             {"name": "e.0", "shape": [4, 4], "dtype": "BF16"},
             {"name": "e.1", "shape": [4, 4], "dtype": "BF16"}]})";
}

/// embed[v][d] = (v + 1) * 0.25 * (d + 1) - d: distinct dot products.
inline std::vector<float> fakeEmbed() {
  std::vector<float> e(12 * 4);
  for (int v = 0; v < 12; ++v)
    for (int d = 0; d < 4; ++d)
      e[size_t(v * 4 + d)] = float(v + 1) * 0.25f * float(d + 1) - float(d);
  return e;
}

/// A checkpoint for fakeManifest(); e.1 starts with `e1First`.
inline void writeFakeCheckpoint(const std::string &dir, float e1First = 7.5f) {
  std::vector<float> e0(16, 1.0f), e1(16, 2.0f);
  e1[0] = e1First;
  writeFile(
      dir + "/model.safetensors",
      safetensors(
          {{"model.embed_tokens.weight", "F32", {12, 4}, bytesOf(fakeEmbed())},
           {"e.0", "BF16", {4, 4}, bf16(e0)},
           {"e.1", "BF16", {4, 4}, bf16(e1)}}));
}

} // namespace dstest

#endif // DS_UNITTESTS_ENGINE_TESTUTIL_H
