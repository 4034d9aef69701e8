#include "TestFiles.h"
#include "artifact/ArtifactFile.h"

#include <gtest/gtest.h>

using namespace dsrt;
using namespace dsrt::testing;

namespace {

const char *kManifest = R"({"format_version": 1, "target": "cpu", "dtype": "f32",
 "model": {"model_type": "deepseek_v3", "vocab_size": 64, "num_layers": 3, "kv_lora_rank": 16,
           "qk_rope_head_dim": 4, "cache_width": 20, "cache_dtype": "f32",
           "max_position_embeddings": 64, "bos_token_id": 0, "eos_token_id": null},
 "entry_points": {"prefill": {"symbol": "_mlir_ciface_prefill", "max_tokens": null},
                  "decode": {"symbol": "_mlir_ciface_decode", "max_tokens": 1}},
 "bindings": [{"index": 0, "shape": [2, 3, 4], "members": ["e.0.w", "e.1.w"], "dequantize": false}],
 "weights": [{"name": "e.0.w", "shape": [3, 4], "dtype": "BF16"}]})";

std::string artifact(const std::string &manifest, const std::string &object,
                     uint32_t version = 1) {
  std::string out = "DSARTIFA";
  auto put = [&](const void *p, size_t n) {
    out.append(static_cast<const char *>(p), n);
  };
  uint32_t flags = 0;
  uint64_t ms = manifest.size(), os = object.size();
  uint64_t h = fnv1a64(14695981039346656037ULL, manifest.data(), ms);
  h = fnv1a64(h, object.data(), os);
  put(&version, 4);
  put(&flags, 4);
  put(&ms, 8);
  put(&os, 8);
  put(&h, 8);
  return out + manifest + object;
}

std::string readError(const std::string &bytes) {
  TempDir d;
  writeBytes(d.file("m.dsa"), bytes);
  ArtifactFile a;
  std::string err;
  EXPECT_FALSE(readArtifact(d.file("m.dsa"), a, err));
  return err;
}

} // namespace

TEST(Artifact, ReadsManifestAndObject) {
  TempDir d;
  writeBytes(d.file("m.dsa"), artifact(kManifest, "ELF-bytes"));
  ArtifactFile a;
  std::string err;
  ASSERT_TRUE(readArtifact(d.file("m.dsa"), a, err)) << err;
  EXPECT_EQ(a.object, "ELF-bytes");
  EXPECT_EQ(a.manifest.vocabSize, 64);
  EXPECT_EQ(a.manifest.eosTokenId, -1);
  EXPECT_EQ(a.manifest.entrySymbols["decode"], "_mlir_ciface_decode");
  ASSERT_EQ(a.manifest.bindings.size(), 1u);
  EXPECT_EQ(a.manifest.bindings[0].members[1], "e.1.w");
  EXPECT_EQ(a.manifest.weights[0].dtype, "BF16");
}

TEST(Artifact, BadMagic) {
  EXPECT_NE(readError("hello world, this is not an artifact at all......").find("not a ds artifact"), std::string::npos);
}

TEST(Artifact, OtherVersion) {
  EXPECT_NE(readError(artifact(kManifest, "x", 7)).find("artifact format version 7, this runtime reads 1"), std::string::npos);
}

TEST(Artifact, TruncatedOrPadded) {
  std::string a = artifact(kManifest, "object");
  EXPECT_NE(readError(a.substr(0, a.size() - 1)).find("truncated or padded"), std::string::npos);
  EXPECT_NE(readError(a + "x").find("truncated or padded"), std::string::npos);
  EXPECT_NE(readError(a.substr(0, 20)).find("not a ds artifact"), std::string::npos);
}

TEST(Artifact, Corrupted) {
  std::string a = artifact(kManifest, "object");
  a[a.size() - 2] ^= 1;
  EXPECT_NE(readError(a).find("corrupted (checksum mismatch)"), std::string::npos);
}

TEST(Artifact, ManifestProblems) {
  Manifest m;
  std::string err;
  EXPECT_FALSE(parseManifest("{", m, err));
  EXPECT_NE(err.find("manifest is not valid JSON"), std::string::npos);
  std::string noVocab = kManifest;
  noVocab.replace(noVocab.find("\"vocab_size\": 64"), 16, "\"vocab_size\": \"x\"");
  EXPECT_FALSE(parseManifest(noVocab, m, err));
  EXPECT_NE(err.find("'vocab_size' must be an integer"), std::string::npos) << err;
  std::string badWidth = kManifest;
  badWidth.replace(badWidth.find("\"cache_width\": 20"), 17, "\"cache_width\": 21");
  EXPECT_FALSE(parseManifest(badWidth, m, err));
  EXPECT_NE(err.find("inconsistent"), std::string::npos) << err;
  std::string badMembers = kManifest;
  badMembers.replace(badMembers.find("[2, 3, 4]"), 9, "[3, 3, 4]");
  EXPECT_FALSE(parseManifest(badMembers, m, err));
  EXPECT_NE(err.find("leading dimension must split evenly among its 2 members"), std::string::npos) << err;
}

// Multi-token prediction: the optional 'mtp' field names the hidden width
// and needs both MTP entry points.
TEST(Artifact, MtpManifest) {
  Manifest m;
  std::string err;
  ASSERT_TRUE(parseManifest(kManifest, m, err)) << err;
  EXPECT_EQ(m.mtpHiddenSize, 0);
  std::string mtp = kManifest;
  mtp.replace(mtp.find("\"bindings\""), 0,
              "\"mtp\": {\"hidden_size\": 32, \"cache_layers\": 1, "
              "\"draft_returns_hidden\": true}, ");
  std::string withEntries = mtp;
  withEntries.replace(
      withEntries.find("\"decode\": {"), 0,
      "\"prefill_hidden\": {\"symbol\": \"_mlir_ciface_prefill_hidden\"}, "
      "\"draft\": {\"symbol\": \"_mlir_ciface_draft\"}, ");
  Manifest ok;
  ASSERT_TRUE(parseManifest(withEntries, ok, err)) << err;
  EXPECT_EQ(ok.mtpHiddenSize, 32);
  EXPECT_EQ(ok.mtpCacheLayers, 1);
  EXPECT_EQ(ok.entrySymbols["draft"], "_mlir_ciface_draft");
  Manifest missing;
  EXPECT_FALSE(parseManifest(mtp, missing, err));
  EXPECT_NE(err.find("manifest entry point 'prefill_hidden' is missing"),
            std::string::npos)
      << err;
  std::string zero = withEntries;
  zero.replace(zero.find("\"hidden_size\": 32"), 17, "\"hidden_size\": 0");
  EXPECT_FALSE(parseManifest(zero, missing, err));
  EXPECT_NE(err.find("manifest mtp sizes are out of range"), std::string::npos)
      << err;
  // An artifact whose @draft does not return the module's output states
  // (compiled before chained drafting) is refused, not misread.
  for (const char *old : {"\"draft_returns_hidden\": false",
                          "\"draft_returns_hidden_\": true"}) {
    std::string before = withEntries;
    before.replace(before.find("\"draft_returns_hidden\": true"), 28, old);
    Manifest refused;
    EXPECT_FALSE(parseManifest(before, refused, err)) << old;
    EXPECT_NE(err.find("@draft predates chained drafting; recompile it"),
              std::string::npos)
        << err;
  }
}

// Partitioned models (ds-compile --tp/--ep): 'parallel.world_size' and each
// binding's 'split' [dim, parts]; a cut member list binds 1/parts of them.
TEST(Artifact, ParallelManifest) {
  Manifest m;
  std::string err;
  ASSERT_TRUE(parseManifest(kManifest, m, err)) << err;
  EXPECT_EQ(m.worldSize, 1);
  EXPECT_EQ(m.bindings[0].splitParts, 1);

  std::string rows = kManifest;
  rows.replace(rows.find("\"dequantize\": false"), 0, "\"split\": [0, 2], ");
  rows.replace(rows.find("\"bindings\""), 0, "\"parallel\": {\"world_size\": 2}, ");
  Manifest ok;
  ASSERT_TRUE(parseManifest(rows, ok, err)) << err;
  EXPECT_EQ(ok.worldSize, 2);
  EXPECT_EQ(ok.bindings[0].splitDim, 0);
  EXPECT_EQ(ok.bindings[0].splitParts, 2);

  // Experts over ranks: 2 members cut in 2, so [1, 3, 4] is one member's.
  std::string experts = kManifest;
  experts.replace(experts.find("[2, 3, 4]"), 9, "[1, 3, 4]");
  experts.replace(experts.find("\"dequantize\": false"), 0,
                  "\"split\": [-1, 2], ");
  Manifest cut;
  ASSERT_TRUE(parseManifest(experts, cut, err)) << err;
  EXPECT_EQ(cut.bindings[0].splitDim, -1);

  for (const char *bad : {"[0]", "[0, 0]", "[-2, 2]", "[-1, 3]", "\"x\""}) {
    std::string s = kManifest;
    s.replace(s.find("\"dequantize\": false"), 0,
              std::string("\"split\": ") + bad + ", ");
    Manifest out;
    EXPECT_FALSE(parseManifest(s, out, err)) << bad;
    EXPECT_NE(err.find("manifest binding 0: split"), std::string::npos)
        << bad << ": " << err;
  }
  std::string world = kManifest;
  world.replace(world.find("\"bindings\""), 0,
                "\"parallel\": {\"world_size\": 0}, ");
  Manifest out;
  EXPECT_FALSE(parseManifest(world, out, err));
  EXPECT_NE(err.find("manifest parallel world_size (0) is out of range"),
            std::string::npos)
      << err;
}
