//===- DsRunTest.cpp - the ds-run tool on stand-in kernels ----------------===//
#include "TestUtil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <sys/wait.h>

using namespace dstest;

namespace {

struct Result {
  int exitCode = -1;
  bool signaled = false;
  std::string out, err;
};

/// Runs ds-run with `args` (shell words) and captures everything.
Result dsRun(const TempDir &d, const std::string &args) {
  std::string cmd = std::string(DS_RUN_PATH) + " " + args + " >" +
                    d.file("stdout") + " 2>" + d.file("stderr");
  int status = std::system(cmd.c_str());
  Result r;
  r.signaled = WIFSIGNALED(status);
  r.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = readFile(d.file("stdout"));
  r.err = readFile(d.file("stderr"));
  return r;
}

/// The tool refused with exactly `message` on one line and nothing else.
void expectRefusal(const Result &r, const std::string &message) {
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_FALSE(r.signaled);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "ds-run: error: " + message + "\n");
}

struct Files {
  TempDir d;
  std::string base;
  Files() {
    writeFile(d.file("m.dsa"),
              artifact(fakeManifest(), readFile(DS_FAKE_KERNELS_1)));
    writeFakeCheckpoint(d.path);
    base = d.file("m.dsa") + " --weights " + d.path;
  }
};

} // namespace

TEST(DsRun, ForcedTokensLogitsAndStats) {
  Files f;
  Result r = dsRun(f.d, f.base + " --prompt-tokens 5,6 --force-tokens 9,3,9 " +
                            "--dump-logits " + f.d.file("l.npy") +
                            " --stats-json " + f.d.file("s.json"));
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(r.out, "9,3,9\n");
  EXPECT_EQ(r.err, "");
  std::string npy = readFile(f.d.file("l.npy"));
  EXPECT_NE(npy.find("'shape': (5, 12)"), std::string::npos);
  size_t headerLen = size_t(uint8_t(npy[8])) | size_t(uint8_t(npy[9])) << 8;
  ASSERT_EQ(npy.size(), 10 + headerLen + 5 * 12 * sizeof(float));
  // Row 4 (the last forced 9) at position 4, after 5 + 6 + 9 + 3.
  float row4[12];
  std::memcpy(row4, npy.data() + 10 + headerLen + 4 * 12 * 4, sizeof(row4));
  EXPECT_EQ(row4[0], 4.0f);
  EXPECT_EQ(row4[1], 23.0f);
  EXPECT_EQ(row4[2], 12.0f); // decode
  std::string stats = readFile(f.d.file("s.json"));
  for (const char *key :
       {"\"prefill_tokens\": 2", "\"decode_tokens\": 3",
        "\"prefill_seconds\": ", "\"decode_seconds\": ",
        "\"decode_tokens_per_second\": ", "\"kv_cache_bytes_per_token\": 24",
        "\"weights_bytes\": 320", "\"peak_rss_bytes\": "})
    EXPECT_NE(stats.find(key), std::string::npos) << key << " in " << stats;
  // No temporary files left beside the outputs.
  EXPECT_FALSE(exists(f.d.file("l.npy.tmp")));
}

TEST(DsRun, MaxNewTokensBelowTheForcedCount) {
  Files f;
  Result r = dsRun(f.d, f.base + " --prompt-tokens 5 --force-tokens 9,3,9 " +
                            "--max-new-tokens 2");
  ASSERT_EQ(r.exitCode, 0) << r.err;
  EXPECT_EQ(r.out, "9,3\n");
}

TEST(DsRun, SamplingIsReproducible) {
  Files f;
  std::string args = f.base + " --prompt-tokens 5,6 --max-new-tokens 8 " +
                     "--temperature 3 --top-p 0.95 --seed 7";
  Result a = dsRun(f.d, args), b = dsRun(f.d, args);
  ASSERT_EQ(a.exitCode, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
}

TEST(DsRun, RefusesMalformedArguments) {
  Files f;
  expectRefusal(dsRun(f.d, f.base + " --prompt-tokens 1,x"),
                "--prompt-tokens: 'x' is not a token id");
  expectRefusal(dsRun(f.d, f.base + " --prompt-tokens 1,,2"),
                "--prompt-tokens: '' is not a token id");
  expectRefusal(dsRun(f.d, f.base + " --prompt-tokens ' 1'"),
                "--prompt-tokens: ' 1' is not a token id");
  expectRefusal(dsRun(f.d, f.base + " --prompt-tokens 99999999999"),
                "--prompt-tokens: '99999999999' is not a token id");
  expectRefusal(dsRun(f.d, f.base + " --prompt-tokens ''"),
                "empty prompt: --prompt-tokens needs at least one token id");
  expectRefusal(dsRun(f.d, f.base + " --prompt-tokens 1 --max-new-tokens 2x"),
                "--max-new-tokens: '2x' is not an integer");
  expectRefusal(dsRun(f.d, f.base + " --prompt-tokens 1 --max-new-tokens -1"),
                "--max-new-tokens: must be >= 0, got -1");
  expectRefusal(dsRun(f.d, f.base + " --prompt-tokens 1 --temperature nan"),
                "--temperature: 'nan' is not a finite number");
  expectRefusal(dsRun(f.d, f.base + " --prompt-tokens 1 --top-p 1.5"),
                "--top-p: must be in (0, 1], got 1.5");
  expectRefusal(dsRun(f.d, f.base + " --prompt-tokens 1 --top-k -2"),
                "--top-k: must be >= 0 (0 is off), got -2");
  expectRefusal(dsRun(f.d, f.base + " --prompt-tokens 1 --seed -3"),
                "--seed: must be >= 0, got -3");
  expectRefusal(dsRun(f.d, f.base + " --prompt-tokens 1 --bogus"),
                "unknown option '--bogus' (see --help)");
  expectRefusal(dsRun(f.d, f.base + " --prompt-tokens"),
                "--prompt-tokens needs a value");
  expectRefusal(dsRun(f.d, "--prompt-tokens 1 --weights " + f.d.path),
                "missing ARTIFACT (see --help)");
  expectRefusal(dsRun(f.d, f.d.file("m.dsa") + " --prompt-tokens 1"),
                "--weights DIR is required");
  expectRefusal(dsRun(f.d, f.base + " --prompt-tokens 1 --device tpu"),
                "--device: expected cpu or cuda, got 'tpu'");
  expectRefusal(
      dsRun(f.d, f.base + " --prompt-tokens 1 --force-tokens 2 "
                          "--max-new-tokens 3"),
      "--max-new-tokens (3) exceeds the number of --force-tokens (1)");
}

TEST(DsRun, RefusesBadInputsWithoutOutputs) {
  Files f;
  std::string npy = " --dump-logits " + f.d.file("x.npy");
  expectRefusal(dsRun(f.d, f.base + " --prompt-tokens 1,12" + npy),
                "token id 12 at index 1 is out of range [0, 12)");
  expectRefusal(
      dsRun(f.d, f.base + " --prompt-tokens 1 --force-tokens 2,3,70" + npy),
      "forced token id 70 at index 2 is out of range [0, 12)");
  expectRefusal(dsRun(f.d, f.base +
                               " --prompt-tokens 1,2,3 --max-new-tokens "
                               "8 --max-context 10" +
                               npy),
                "context of 11 tokens (prompt 3 + 8 new) exceeds the cache "
                "capacity (10); raise --max-context");
  // Default context: min(max_position_embeddings = 16, 4096).
  expectRefusal(dsRun(f.d, f.base + " --prompt-tokens 1 --max-new-tokens 16"),
                "context of 17 tokens (prompt 1 + 16 new) exceeds the cache "
                "capacity (16); raise --max-context");
  expectRefusal(dsRun(f.d, f.base + " --prompt-tokens 1 --device cuda"),
                "--device cuda: " + f.d.file("m.dsa") +
                    ": compiled for target 'cpu', cannot run on device 'cuda' "
                    "(recompile with ds-compile --target cuda)");
  expectRefusal(dsRun(f.d, f.base + " --prompt-tokens 1 --dump-logits "
                                    "/nonexistent-dir/x.npy"),
                "cannot write '/nonexistent-dir/x.npy': directory is not "
                "writable");
  EXPECT_FALSE(exists(f.d.file("x.npy")));
}

TEST(DsRun, ReportsEachCheckpointProblemOnItsOwnLine) {
  Files f;
  writeFile(
      f.d.file("model.safetensors"),
      safetensors({{"e.0", "BF16", {4, 4}, bf16(std::vector<float>(16))}}));
  Result r = dsRun(f.d, f.base + " --prompt-tokens 1");
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_EQ(r.out, "");
  // embed and e.1 missing: two lines, each prefixed.
  EXPECT_NE(r.err.find("ds-run: error: tensor 'model.embed_tokens.weight'"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("ds-run: error: tensor 'e.1'"), std::string::npos);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 2);
}

TEST(DsRun, CheckWeightsRefusesNaN) {
  Files f;
  writeFakeCheckpoint(f.d.path, NAN);
  Result r = dsRun(f.d, f.base + " --prompt-tokens 1 --check-weights");
  EXPECT_EQ(r.exitCode, 1);
  EXPECT_NE(r.err.find("tensor 'e.1': NaN at element 0"), std::string::npos)
      << r.err;
  // Without the check the run goes ahead.
  EXPECT_EQ(
      dsRun(f.d, f.base + " --prompt-tokens 1 --max-new-tokens 1").exitCode, 0);
}

TEST(RtldLocal, KernelsResolveIntoALocallyLoadedRuntime) {
  Files f;
  std::string cmd = std::string(DS_RTLD_PROBE_PATH) + " " + DSRT_LIBRARY_PATH +
                    " " + f.d.file("m.dsa") + " " + f.d.path + " >" +
                    f.d.file("probe") + " 2>&1";
  int status = std::system(cmd.c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << readFile(f.d.file("probe"));
  EXPECT_EQ(readFile(f.d.file("probe")), "column 2 = 12\n");
}
