//===- ArtifactReaderTest.cpp - the artifact file and its manifest --------===//
#include "TestUtil.h"
#include "artifact/ArtifactFile.h"

#include <gtest/gtest.h>

using namespace dsrt;
using namespace dstest;

namespace {

/// Reads `bytes` as an artifact file; returns the error ("" on success).
std::string readBytes(const std::string &bytes, ArtifactFile *out = nullptr) {
  TempDir d;
  writeFile(d.file("m.dsa"), bytes);
  ArtifactFile a;
  std::string err;
  bool ok = readArtifact(d.file("m.dsa"), a, err);
  if (out)
    *out = a;
  EXPECT_EQ(ok, err.empty()) << err;
  // Every message names the file.
  if (!ok)
    EXPECT_NE(err.find(d.file("m.dsa") + ": "), std::string::npos) << err;
  return err;
}

std::string parseError(const std::string &manifest) {
  Manifest m;
  std::string err;
  EXPECT_FALSE(parseManifest(manifest, m, err)) << manifest;
  return err;
}

/// fakeManifest() with the first occurrence of `from` replaced by `to`.
std::string edited(const std::string &from, const std::string &to) {
  std::string m = fakeManifest();
  size_t at = m.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return at == std::string::npos ? m : m.replace(at, from.size(), to);
}

#define EXPECT_CONTAINS(haystack, needle)                                      \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos)             \
      << "'" << (haystack) << "' lacks '" << (needle) << "'"

} // namespace

TEST(ArtifactReader, Fnv1aMatchesReferenceVectors) {
  // Published FNV-1a 64 test vectors.
  EXPECT_EQ(fnv1a64(kFnvOffsetBasis, "", 0), 0xcbf29ce484222325ULL);
  EXPECT_EQ(fnv1a64(kFnvOffsetBasis, "a", 1), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(fnv1a64(kFnvOffsetBasis, "foobar", 6), 0x85944171f73967e8ULL);
  // Incremental hashing (manifest, then object) equals one pass.
  EXPECT_EQ(fnv1a64(fnv1a64(kFnvOffsetBasis, "foo", 3), "bar", 3),
            0x85944171f73967e8ULL);
}

TEST(ArtifactReader, ReadsAValidFile) {
  ArtifactFile a;
  ASSERT_EQ(readBytes(artifact(fakeManifest("4"), "\x7f"
                                                  "ELF-bytes"),
                      &a),
            "");
  EXPECT_EQ(a.object, "\x7f"
                      "ELF-bytes");
  const Manifest &m = a.manifest;
  EXPECT_EQ(m.target, "cpu");
  EXPECT_EQ(m.dtype, "f32");
  EXPECT_EQ(m.modelType, "deepseek_v3");
  EXPECT_EQ(m.cacheDtype, "f32");
  EXPECT_EQ(m.vocabSize, 12);
  EXPECT_EQ(m.numLayers, 2);
  EXPECT_EQ(m.kvLoraRank, 2);
  EXPECT_EQ(m.ropeDim, 1);
  EXPECT_EQ(m.cacheWidth, 3);
  EXPECT_EQ(m.maxPositions, 16);
  EXPECT_EQ(m.bosTokenId, 0);
  EXPECT_EQ(m.eosTokenId, 3);
  EXPECT_EQ(m.entrySymbols.at("prefill"), "_mlir_ciface_prefill");
  EXPECT_EQ(m.entrySymbols.at("decode"), "_mlir_ciface_decode");
  EXPECT_EQ(m.entryMaxTokens.at("prefill"), 4);
  EXPECT_EQ(m.entryMaxTokens.at("decode"), 1);
  ASSERT_EQ(m.bindings.size(), 2u);
  EXPECT_EQ(m.bindings[1].shape, (std::vector<int64_t>{2, 4, 4}));
  EXPECT_EQ(m.bindings[1].members, (std::vector<std::string>{"e.0", "e.1"}));
  ASSERT_EQ(m.weights.size(), 3u);
  EXPECT_EQ(m.weights[2].name, "e.1");
  EXPECT_EQ(m.weights[2].dtype, "BF16");
  EXPECT_EQ(m.weights[0].shape, (std::vector<int64_t>{12, 4}));
}

TEST(ArtifactReader, NullTokenIdsAndUnboundedPrefill) {
  Manifest m;
  std::string err;
  ASSERT_TRUE(parseManifest(
      fakeManifest("null", "_mlir_ciface_prefill", "null"), m, err))
      << err;
  EXPECT_EQ(m.eosTokenId, -1);
  EXPECT_EQ(m.entryMaxTokens.at("prefill"), -1);
}

TEST(ArtifactReader, BadMagic) {
  EXPECT_CONTAINS(readBytes(std::string(64, 'x')),
                  "not a ds artifact (bad magic)");
  EXPECT_CONTAINS(readBytes(""), "not a ds artifact");
  std::string a = artifact(fakeManifest(), "obj");
  a[3] = 'X';
  EXPECT_CONTAINS(readBytes(a), "not a ds artifact");
}

TEST(ArtifactReader, OtherFormatVersion) {
  EXPECT_CONTAINS(readBytes(artifact(fakeManifest(), "obj", 2)),
                  "artifact format version 2, this runtime reads 1");
  EXPECT_CONTAINS(readBytes(artifact(fakeManifest(), "obj", 0)),
                  "artifact format version 0, this runtime reads 1");
}

TEST(ArtifactReader, UnknownFlags) {
  EXPECT_CONTAINS(readBytes(artifact(fakeManifest(), "obj", 1, 4)),
                  "artifact flags 4 are unknown");
}

TEST(ArtifactReader, TruncatedOrPadded) {
  std::string a = artifact(fakeManifest(), "object");
  size_t full = a.size();
  EXPECT_CONTAINS(readBytes(a.substr(0, full - 1)),
                  "truncated or padded: header announces " +
                      std::to_string(full) + " bytes, file has " +
                      std::to_string(full - 1));
  EXPECT_CONTAINS(readBytes(a + "x"), "truncated or padded");
  // A header cut short is not recognisable as an artifact.
  EXPECT_CONTAINS(readBytes(a.substr(0, 20)), "not a ds artifact");
  // Sizes whose sum wraps around 2^64 are not taken at face value.
  std::string huge = a;
  for (int i = 16; i < 32; ++i)
    huge[size_t(i)] = char(0xFF);
  EXPECT_CONTAINS(readBytes(huge), "truncated or padded");
}

TEST(ArtifactReader, ChecksumMismatch) {
  std::string a = artifact(fakeManifest(), "object");
  std::string objectFlip = a, manifestFlip = a, sumFlip = a;
  objectFlip[a.size() - 2] ^= 1;
  manifestFlip[50] ^= 0x20;
  sumFlip[33] ^= 1;
  for (const std::string &bad : {objectFlip, manifestFlip, sumFlip})
    EXPECT_CONTAINS(readBytes(bad), "corrupted (checksum mismatch)");
}

TEST(ArtifactReader, MissingFileAndDirectory) {
  ArtifactFile a;
  std::string err;
  EXPECT_FALSE(readArtifact("/nonexistent/m.dsa", a, err));
  EXPECT_CONTAINS(err, "/nonexistent/m.dsa: cannot open");
  TempDir d;
  EXPECT_FALSE(readArtifact(d.path, a, err));
  EXPECT_CONTAINS(err, d.path + ": cannot read");
}

TEST(ArtifactReader, ManifestNotJson) {
  EXPECT_CONTAINS(readBytes(artifact("{\"format_version\": 1,", "obj")),
                  "manifest is not valid JSON");
  EXPECT_CONTAINS(parseError("[1, 2]"), "manifest is not a JSON object");
  EXPECT_CONTAINS(parseError(""), "manifest is not valid JSON");
}

TEST(ArtifactReader, ManifestVersionMustMatch) {
  EXPECT_CONTAINS(
      parseError(edited("\"format_version\": 1", "\"format_version\": 3")),
      "manifest format_version 3, this runtime reads 1");
}

TEST(ArtifactReader, Fp8CacheRowsAreBytesOfTheLayout) {
  auto withCache = [](const std::string &to) {
    return edited("\"cache_dtype\": \"f32\"", to);
  };
  // kv_lora_rank 2 in groups of 2: 2 e4m3 + one f32 scale + 1 bf16 rope.
  std::string text =
      withCache("\"cache_dtype\": \"fp8\", \"cache_scale_group\": 2");
  ArtifactFile a;
  ASSERT_EQ(readBytes(artifact(text, "\x7f"), &a), "");
  EXPECT_EQ(a.manifest.cacheScaleGroup, 2);
  EXPECT_EQ(a.manifest.cacheRowBytes(), 2 + 4 + 2);
  EXPECT_EQ(a.manifest.cacheRowElements(), 8);
  // The other dtypes: width values of their size.
  ASSERT_EQ(readBytes(artifact(fakeManifest(), "\x7f"), &a), "");
  EXPECT_EQ(a.manifest.cacheRowBytes(), 3 * 4);
  EXPECT_EQ(a.manifest.cacheRowElements(), 3);

  EXPECT_CONTAINS(parseError(withCache("\"cache_dtype\": \"fp8\"")),
                  "manifest field 'cache_scale_group' must be an integer");
  EXPECT_CONTAINS(parseError(withCache(
                      "\"cache_dtype\": \"fp8\", \"cache_scale_group\": 3")),
                  "manifest cache_scale_group (3) must be positive and divide "
                  "kv_lora_rank (2)");
}

TEST(ArtifactReader, MissingFieldsAreNamed) {
  struct Case {
    const char *from, *to, *message;
  } cases[] = {
      {"\"target\": \"cpu\",", "", "'target' must be a string"},
      {"\"dtype\": \"f32\",", "", "'dtype' must be a string"},
      {"\"vocab_size\": 12,", "", "'vocab_size' must be an integer"},
      {"\"vocab_size\": 12", "\"vocab_size\": 12.5",
       "'vocab_size' must be an integer"},
      {"\"num_layers\": 2,", "", "'num_layers' must be an integer"},
      {"\"cache_width\": 3,", "", "'cache_width' must be an integer"},
      {"\"cache_dtype\": \"f32\",", "", "'cache_dtype' must be a string"},
      {"\"cache_dtype\": \"f32\"", "\"cache_dtype\": \"f8\"",
       "cache_dtype 'f8' is not supported"},
      {"\"max_position_embeddings\": 16,", "",
       "'max_position_embeddings' must be an integer"},
      {"\"cache_width\": 3", "\"cache_width\": 4", "inconsistent"},
      {"\"vocab_size\": 12", "\"vocab_size\": 0", "inconsistent"},
      {"\"decode\": {\"symbol\": \"_mlir_ciface_decode\", \"max_tokens\": 1}",
       "\"other\": {}", "entry point 'decode' is missing"},
      {"\"max_tokens\": 1", "\"max_tokens\": 0",
       "entry point 'decode': max_tokens must be a positive integer or null"},
      {"\"bindings\"", "\"bindingz\"",
       "'bindings' and 'weights' must be arrays"},
      {"\"weights\"", "\"weightz\"", "'bindings' and 'weights' must be arrays"},
      {"\"index\": 1", "\"index\": 5", "bindings are not numbered in order"},
      {"\"members\": [\"e.0\", \"e.1\"]", "\"members\": []",
       "binding 1 has no members"},
      {"[2, 4, 4]", "[3, 4, 4]",
       "leading dimension must split evenly among its 2 members"},
      {"\"shape\": [12, 4], \"members\"", "\"shape\": [12, -4], \"members\"",
       "shape entries must be non-negative integers"},
      {"\"name\": \"e.0\", ", "", "'name' must be a string"},
      {"\"num_layers\": 2", "\"num_layers\": 4294967296", "inconsistent"},
      {"[2, 4, 4]", "[2, 4294967296, 4294967296]", "shape is too large"},
  };
  for (const Case &c : cases)
    EXPECT_CONTAINS(parseError(edited(c.from, c.to)), c.message);
  // "model" itself.
  std::string noModel = fakeManifest();
  noModel.replace(noModel.find("\"model\":"), 8, "\"modle\":");
  EXPECT_CONTAINS(parseError(noModel), "'model' must be an object");
}

// A cuda artifact's host code is built for a portable x86-64 level
// elsewhere; the manifest says which, and a CPU below it is refused with
// one line before any of that code runs.
TEST(ArtifactReader, HostCpuLevel) {
  Manifest m;
  std::string err;
  ASSERT_TRUE(parseManifest(
      edited("\"dtype\":", "\"host_cpu\": \"x86-64-v3\", \"dtype\":"), m, err))
      << err;
  EXPECT_EQ(m.hostCpu, "x86-64-v3");
  EXPECT_EQ(hostCpuProblem(""), "");
  EXPECT_EQ(hostCpuProblem("znver3"), ""); // a cpu artifact: its own machine
  EXPECT_EQ(hostCpuProblem("x86-64"), "");
  EXPECT_EQ(hostCpuProblem("x86-64-v2"), ""); // every machine here has it
  EXPECT_EQ(hostCpuProblem("x86-64-v9"),
            "its host code needs an x86-64-v9 CPU, which this machine is not "
            "(rebuild it with a ds-compile for this machine)");
}

// ds-compile --kv-layout=per-head: @ragged_step's rows are per-head K/V of
// "step_cache".width values; sessions' @prefill/@decode keep latent rows.
TEST(ArtifactReader, PerHeadStepCacheRows) {
  auto withStep = [](const std::string &stepCache) {
    std::string m = edited(
        "\"decode\": {\"symbol\": \"_mlir_ciface_decode\", \"max_tokens\": 1}",
        "\"decode\": {\"symbol\": \"_mlir_ciface_decode\", \"max_tokens\": "
        "1}, \"ragged_step\": {\"symbol\": \"_mlir_ciface_ragged_step\"}");
    return m.replace(m.rfind('}'), 1, ", " + stepCache + "}");
  };
  Manifest m;
  std::string err;
  ASSERT_TRUE(parseManifest(
      withStep(R"("step_cache": {"layout": "per_head", "width": 10})"), m, err))
      << err;
  EXPECT_TRUE(m.perHeadStepCache());
  EXPECT_EQ(m.stepRowElements(), 10);
  EXPECT_EQ(m.stepRowBytes(), 40);
  EXPECT_EQ(m.cacheRowBytes(), 12); // the latent rows: 3 x f32
  // Without "step_cache" the step's rows are the latent rows.
  Manifest latent;
  ASSERT_TRUE(parseManifest(fakeManifest(), latent, err)) << err;
  EXPECT_FALSE(latent.perHeadStepCache());
  EXPECT_EQ(latent.stepRowBytes(), latent.cacheRowBytes());

  EXPECT_CONTAINS(
      parseError(withStep(R"("step_cache": {"layout": "mha", "width": 10})")),
      "manifest step_cache.layout 'mha' is not supported");
  EXPECT_CONTAINS(parseError(withStep(
                      R"("step_cache": {"layout": "per_head", "width": 0})")),
                  "manifest step_cache is inconsistent (width 0");
  EXPECT_CONTAINS(
      parseError(withStep(R"("step_cache": {"layout": "per_head"})")),
      "'width' must be an integer");
  // A per-head step cache without a step.
  std::string noStep = fakeManifest();
  noStep.replace(noStep.rfind('}'), 1,
                 R"(, "step_cache": {"layout": "per_head", "width": 10}})");
  EXPECT_CONTAINS(parseError(noStep), "it needs @ragged_step");
}
