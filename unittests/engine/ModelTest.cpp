//===- ModelTest.cpp - the C API end to end, on stand-in kernels ----------===//
//
// FakeKernels.cpp is a real shared object with a compiled artifact's entry
// points; every logit it writes is predictable (see there), so these tests
// check loading, binding, prefill/decode dispatch, chunking, the cache,
// validation and generation through the public C API only.
//
//===----------------------------------------------------------------------===//
#include "TestUtil.h"
#include "dsrt/dsrt.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <climits>
#include <thread>

using namespace dstest;

namespace {

constexpr int64_t kVocab = 12;

/// An artifact of the stand-in kernels (variant 1 or 2) and its checkpoint.
struct Fixture {
  TempDir dir;
  std::string artifactPath, weights;
  explicit Fixture(const std::string &manifest = fakeManifest(),
                   int variant = 1, float e1First = 7.5f) {
    artifactPath = dir.file("m.dsa");
    weights = dir.path;
    std::string object =
        readFile(variant == 1 ? DS_FAKE_KERNELS_1 : DS_FAKE_KERNELS_2);
    EXPECT_FALSE(object.empty());
    writeFile(artifactPath, artifact(manifest, object));
    writeFakeCheckpoint(dir.path, e1First);
  }
};

struct ModelPtr {
  dsrt_model *m = nullptr;
  ~ModelPtr() { dsrt_model_free(m); }
};
struct SessionPtr {
  dsrt_session *s = nullptr;
  ~SessionPtr() { dsrt_session_free(s); }
};

dsrt_model *load(const Fixture &f, const char *device = "cpu") {
  dsrt_model *m = nullptr;
  dsrt_status st =
      dsrt_model_load(f.artifactPath.c_str(), f.weights.c_str(), device, &m);
  EXPECT_EQ(st, DSRT_OK) << dsrt_last_error();
  return m;
}

/// What the stand-in kernels compute for `tok` at `pos` after `history`.
std::vector<float> predict(const std::vector<int32_t> &history, int32_t tok,
                           int entry, int64_t callSize, int variant = 1) {
  std::vector<float> e = fakeEmbed(), row(kVocab);
  float prefix = 0;
  for (int32_t t : history)
    prefix += float(t);
  row[0] = float(history.size());
  row[1] = prefix;
  row[2] = float(entry + 10 * variant);
  row[3] = float(callSize);
  row[4] = 7.5f;
  for (int64_t v = 5; v < kVocab; ++v) {
    double acc = 0;
    for (int d = 0; d < 4; ++d)
      acc += double(e[size_t(tok * 4 + d)]) * double(e[size_t(v * 4 + d)]);
    row[size_t(v)] = float(acc);
  }
  return row;
}

void expectRow(const float *got, const std::vector<float> &want,
               const std::string &what) {
  for (int64_t v = 0; v < kVocab; ++v)
    EXPECT_NEAR(got[v], want[size_t(v)], 1e-4) << what << " column " << v;
}

std::string lastError() { return dsrt_last_error(); }

} // namespace

TEST(Model, LoadsAndReportsInfo) {
  Fixture f;
  ModelPtr m{load(f)};
  ASSERT_NE(m.m, nullptr);
  dsrt_model_info info;
  ASSERT_EQ(dsrt_model_info_get(m.m, &info), DSRT_OK);
  EXPECT_EQ(info.vocab_size, 12);
  EXPECT_EQ(info.num_layers, 2);
  EXPECT_EQ(info.cache_width, 3);
  EXPECT_EQ(info.kv_cache_bytes_per_token, 2 * 3 * 4);
  EXPECT_EQ(info.weights_bytes, (12 * 4 + 2 * 4 * 4) * 4);
  EXPECT_EQ(info.max_position_embeddings, 16);
  EXPECT_EQ(info.bos_token_id, 0);
  EXPECT_EQ(info.eos_token_id, 3);
  EXPECT_EQ(dsrt_model_check_weights(m.m), DSRT_OK) << lastError();
}

TEST(Model, PrefillThenDecodeThroughTheCache) {
  Fixture f;
  ModelPtr m{load(f)};
  ASSERT_NE(m.m, nullptr);
  SessionPtr s;
  ASSERT_EQ(dsrt_session_create(m.m, 8, &s.s), DSRT_OK) << lastError();
  EXPECT_EQ(dsrt_session_position(s.s), 0);
  std::vector<int32_t> prompt = {5, 6, 7};
  std::vector<float> logits(3 * kVocab);
  ASSERT_EQ(dsrt_session_prefill(s.s, prompt.data(), 3, logits.data()), DSRT_OK)
      << lastError();
  expectRow(&logits[0], predict({}, 5, 1, 3), "row 0");
  expectRow(&logits[kVocab], predict({5}, 6, 1, 3), "row 1");
  expectRow(&logits[2 * kVocab], predict({5, 6}, 7, 1, 3), "row 2");
  EXPECT_EQ(dsrt_session_position(s.s), 3);

  std::vector<float> row(kVocab);
  ASSERT_EQ(dsrt_session_decode(s.s, 8, row.data()), DSRT_OK) << lastError();
  expectRow(row.data(), predict({5, 6, 7}, 8, 2, 1), "decode");
  // A one-token prefill is a decode step.
  ASSERT_EQ(dsrt_session_prefill(s.s, prompt.data(), 1, row.data()), DSRT_OK);
  expectRow(row.data(), predict({5, 6, 7, 8}, 5, 2, 1), "prefill of one");
  EXPECT_EQ(dsrt_session_position(s.s), 5);

  dsrt_session_reset(s.s);
  EXPECT_EQ(dsrt_session_position(s.s), 0);
  ASSERT_EQ(dsrt_session_decode(s.s, 9, row.data()), DSRT_OK);
  expectRow(row.data(), predict({}, 9, 2, 1), "after reset");
}

TEST(Model, BoundedPrefillRunsInChunks) {
  Fixture f(fakeManifest("2"));
  ModelPtr m{load(f)};
  ASSERT_NE(m.m, nullptr);
  SessionPtr s;
  ASSERT_EQ(dsrt_session_create(m.m, 16, &s.s), DSRT_OK);
  std::vector<int32_t> prompt = {1, 2, 3, 4, 5};
  std::vector<float> logits(5 * kVocab);
  ASSERT_EQ(dsrt_session_prefill(s.s, prompt.data(), 5, logits.data()), DSRT_OK)
      << lastError();
  std::vector<int32_t> history;
  for (int64_t i = 0; i < 5; ++i) {
    expectRow(&logits[size_t(i * kVocab)],
              predict(history, prompt[size_t(i)], 1, i < 4 ? 2 : 1),
              "row " + std::to_string(i));
    history.push_back(prompt[size_t(i)]);
  }
  EXPECT_EQ(dsrt_session_position(s.s), 5);
}

TEST(Model, RoutingTraceRecordsEachCall) {
  Fixture f;
  ModelPtr m{load(f)};
  ASSERT_NE(m.m, nullptr);
  EXPECT_STREQ(dsrt_model_routing_trace(m.m), "[]");
  SessionPtr s;
  ASSERT_EQ(dsrt_session_create(m.m, 8, &s.s), DSRT_OK);
  std::vector<int32_t> prompt = {4, 2};
  std::vector<float> logits(2 * kVocab);
  ASSERT_EQ(dsrt_session_prefill(s.s, prompt.data(), 2, logits.data()),
            DSRT_OK);
  ASSERT_EQ(dsrt_session_decode(s.s, 9, logits.data()), DSRT_OK);
  EXPECT_STREQ(dsrt_model_routing_trace(m.m),
               "[{\"layer\": 1, \"experts\": [[4], [2]]}, "
               "{\"layer\": 2, \"experts\": [[9]]}]");
}

TEST(Model, RejectsBadInputsBeforeRunning) {
  Fixture f;
  ModelPtr m{load(f)};
  ASSERT_NE(m.m, nullptr);
  SessionPtr s;
  ASSERT_EQ(dsrt_session_create(m.m, 4, &s.s), DSRT_OK);
  std::vector<float> logits(8 * kVocab);
  std::vector<int32_t> bad = {1, 2, 70};
  EXPECT_EQ(dsrt_session_prefill(s.s, bad.data(), 3, logits.data()),
            DSRT_ERROR_ARGUMENT);
  EXPECT_EQ(lastError(), "token id 70 at index 2 is out of range [0, 12)");
  EXPECT_EQ(dsrt_session_decode(s.s, -4, logits.data()), DSRT_ERROR_ARGUMENT);
  EXPECT_EQ(lastError(), "token id -4 at index 0 is out of range [0, 12)");
  EXPECT_EQ(dsrt_session_prefill(s.s, bad.data(), 0, logits.data()),
            DSRT_ERROR_ARGUMENT);
  EXPECT_EQ(lastError(), "empty prompt: at least one token is needed");
  std::vector<int32_t> five = {1, 2, 3, 4, 5};
  EXPECT_EQ(dsrt_session_prefill(s.s, five.data(), 5, logits.data()),
            DSRT_ERROR_ARGUMENT);
  EXPECT_EQ(lastError(), "context of 5 tokens exceeds the cache capacity (4)");
  EXPECT_EQ(dsrt_session_prefill(s.s, five.data(), 2, nullptr),
            DSRT_ERROR_ARGUMENT);
  EXPECT_EQ(dsrt_session_prefill(nullptr, five.data(), 2, logits.data()),
            DSRT_ERROR_ARGUMENT);
  EXPECT_EQ(dsrt_session_prefill(s.s, nullptr, 2, logits.data()),
            DSRT_ERROR_ARGUMENT);
  // Nothing ran: the session is where it was, and then fills up exactly.
  EXPECT_EQ(dsrt_session_position(s.s), 0);
  ASSERT_EQ(dsrt_session_prefill(s.s, five.data(), 3, logits.data()), DSRT_OK);
  EXPECT_EQ(dsrt_session_prefill(s.s, five.data(), 2, logits.data()),
            DSRT_ERROR_ARGUMENT);
  EXPECT_EQ(lastError(), "context of 5 tokens exceeds the cache capacity (4)");
  EXPECT_EQ(dsrt_session_decode(s.s, 1, logits.data()), DSRT_OK);
  EXPECT_EQ(dsrt_session_decode(s.s, 1, logits.data()), DSRT_ERROR_ARGUMENT);
  EXPECT_EQ(dsrt_session_position(s.s), 4);
}

TEST(Model, SessionCapacityIsChecked) {
  Fixture f;
  ModelPtr m{load(f)};
  ASSERT_NE(m.m, nullptr);
  dsrt_session *s = reinterpret_cast<dsrt_session *>(1);
  EXPECT_EQ(dsrt_session_create(m.m, 0, &s), DSRT_ERROR_ARGUMENT);
  EXPECT_EQ(s, nullptr);
  EXPECT_EQ(lastError(), "cache capacity must be positive, got 0");
  EXPECT_EQ(dsrt_session_create(m.m, int64_t(1) << 40, &s),
            DSRT_ERROR_ARGUMENT);
  EXPECT_NE(lastError().find("exceeds the largest position"),
            std::string::npos);
  EXPECT_EQ(dsrt_session_create(nullptr, 4, &s), DSRT_ERROR_ARGUMENT);
  EXPECT_EQ(dsrt_session_create(m.m, 4, nullptr), DSRT_ERROR_ARGUMENT);
}

TEST(Model, SeekStaysInsideTheCache) {
  Fixture f;
  ModelPtr m{load(f)};
  ASSERT_NE(m.m, nullptr);
  dsrt_session *raw = nullptr;
  ASSERT_EQ(dsrt_session_create(m.m, 8, &raw), DSRT_OK);
  SessionPtr s{raw};
  EXPECT_EQ(dsrt_session_seek(raw, 8), DSRT_ERROR_ARGUMENT);
  EXPECT_EQ(lastError(), "position 8 is outside the cache [0, 8)");
  EXPECT_EQ(dsrt_session_seek(raw, -1), DSRT_ERROR_ARGUMENT);
  EXPECT_EQ(dsrt_session_seek(nullptr, 0), DSRT_ERROR_ARGUMENT);
  EXPECT_EQ(dsrt_session_position(raw), 0);
  ASSERT_EQ(dsrt_session_seek(raw, 7), DSRT_OK);
  EXPECT_EQ(dsrt_session_position(raw), 7);
  std::vector<float> row(64);
  // One token fits, a second would pass the capacity.
  int32_t two[2] = {1, 2};
  EXPECT_EQ(dsrt_session_prefill(raw, two, 2, row.data()),
            DSRT_ERROR_ARGUMENT);
  EXPECT_EQ(dsrt_session_position(raw), 7);
}

TEST(Model, GenerateWithForcedTokens) {
  Fixture f;
  ModelPtr m{load(f)};
  ASSERT_NE(m.m, nullptr);
  SessionPtr s;
  ASSERT_EQ(dsrt_session_create(m.m, 16, &s.s), DSRT_OK);
  std::vector<int32_t> prompt = {5, 6}, forced = {9, 3, 9, 10};
  dsrt_generate_options o = {};
  o.max_new_tokens = 3;
  o.force_tokens = forced.data();
  o.num_force_tokens = 4;
  std::vector<int32_t> out(3, -1);
  std::vector<float> logits(5 * kVocab, NAN);
  int64_t count = -1;
  dsrt_stats stats;
  ASSERT_EQ(dsrt_generate(s.s, prompt.data(), 2, &o, out.data(), &count,
                          logits.data(), &stats),
            DSRT_OK)
      << lastError();
  // Forcing feeds eos (3) without stopping.
  EXPECT_EQ(count, 3);
  EXPECT_EQ(out, (std::vector<int32_t>{9, 3, 9}));
  std::vector<int32_t> history;
  std::vector<int32_t> fed = {5, 6, 9, 3, 9};
  for (size_t t = 0; t < fed.size(); ++t) {
    expectRow(&logits[t * kVocab],
              predict(history, fed[t], t < 2 ? 1 : 2, t < 2 ? 2 : 1),
              "row " + std::to_string(t));
    history.push_back(fed[t]);
  }
  EXPECT_EQ(stats.prefill_tokens, 2);
  EXPECT_EQ(stats.decode_tokens, 3);
  EXPECT_EQ(stats.kv_cache_bytes_per_token, 24);
  EXPECT_EQ(stats.weights_bytes, 320);
  EXPECT_GT(stats.peak_rss_bytes, 0);
  EXPECT_EQ(dsrt_session_position(s.s), 5);
}

TEST(Model, GreedyGenerationStopsAfterEos) {
  // eos = 11, the argmax of the stand-in's rows for large tokens.
  Fixture f(fakeManifest("null", "_mlir_ciface_prefill", "11"));
  ModelPtr m{load(f)};
  ASSERT_NE(m.m, nullptr);
  SessionPtr s;
  ASSERT_EQ(dsrt_session_create(m.m, 16, &s.s), DSRT_OK);
  std::vector<int32_t> prompt = {2, 7};
  std::vector<float> expect = predict({2}, 7, 1, 2);
  ASSERT_EQ(std::max_element(expect.begin(), expect.end()) - expect.begin(),
            11);
  dsrt_generate_options o = {};
  o.max_new_tokens = 6;
  std::vector<int32_t> out(6, -1);
  std::vector<float> logits(8 * kVocab);
  int64_t count = 0;
  ASSERT_EQ(dsrt_generate(s.s, prompt.data(), 2, &o, out.data(), &count,
                          logits.data(), nullptr),
            DSRT_OK)
      << lastError();
  EXPECT_EQ(count, 1);
  EXPECT_EQ(out[0], 11);
  expectRow(&logits[2 * kVocab], predict({2, 7}, 11, 2, 1), "eos row");
}

TEST(Model, GreedyGenerationFollowsTheArgmax) {
  Fixture f; // eos 3
  ModelPtr m{load(f)};
  ASSERT_NE(m.m, nullptr);
  SessionPtr s;
  ASSERT_EQ(dsrt_session_create(m.m, 16, &s.s), DSRT_OK);
  std::vector<int32_t> prompt = {0};
  dsrt_generate_options o = {};
  o.max_new_tokens = 5;
  std::vector<int32_t> out(5);
  int64_t count = 0;
  ASSERT_EQ(dsrt_generate(s.s, prompt.data(), 1, &o, out.data(), &count,
                          nullptr, nullptr),
            DSRT_OK)
      << lastError();
  // Replay: each fed token is the argmax of the previous row.
  std::vector<int32_t> history;
  int32_t tok = 0;
  for (int64_t i = 0; i < count; ++i) {
    std::vector<float> row = predict(history, tok, 2, 1);
    history.push_back(tok);
    tok = int32_t(std::max_element(row.begin(), row.end()) - row.begin());
    EXPECT_EQ(out[size_t(i)], tok) << "step " << i;
  }
  EXPECT_EQ(count, 5);
}

TEST(Model, GenerateChecksEverythingFirst) {
  Fixture f;
  ModelPtr m{load(f)};
  ASSERT_NE(m.m, nullptr);
  SessionPtr s;
  ASSERT_EQ(dsrt_session_create(m.m, 6, &s.s), DSRT_OK);
  std::vector<int32_t> prompt = {5, 6}, forced = {1, 2, 70};
  std::vector<int32_t> out(8);
  std::vector<float> logits(10 * kVocab);
  int64_t count = 0;
  dsrt_generate_options o = {};
  o.max_new_tokens = 3;
  o.force_tokens = forced.data();
  o.num_force_tokens = 3;
  EXPECT_EQ(dsrt_generate(s.s, prompt.data(), 2, &o, out.data(), &count,
                          logits.data(), nullptr),
            DSRT_ERROR_ARGUMENT);
  EXPECT_EQ(lastError(),
            "forced token id 70 at index 2 is out of range [0, 12)");
  o.max_new_tokens = 4;
  EXPECT_EQ(dsrt_generate(s.s, prompt.data(), 2, &o, out.data(), &count,
                          logits.data(), nullptr),
            DSRT_ERROR_ARGUMENT);
  EXPECT_EQ(lastError(),
            "max_new_tokens (4) exceeds the number of forced tokens (3)");
  o = {};
  o.max_new_tokens = 5;
  EXPECT_EQ(dsrt_generate(s.s, prompt.data(), 2, &o, out.data(), &count,
                          logits.data(), nullptr),
            DSRT_ERROR_ARGUMENT);
  EXPECT_EQ(lastError(), "context of 7 tokens (prompt 2 + 5 new) exceeds the "
                         "cache capacity (6)");
  o.max_new_tokens = INT64_MAX;
  EXPECT_EQ(dsrt_generate(s.s, prompt.data(), 2, &o, out.data(), &count,
                          logits.data(), nullptr),
            DSRT_ERROR_ARGUMENT);
  o.max_new_tokens = -1;
  EXPECT_EQ(dsrt_generate(s.s, prompt.data(), 2, &o, out.data(), &count,
                          logits.data(), nullptr),
            DSRT_ERROR_ARGUMENT);
  o.max_new_tokens = 1;
  EXPECT_EQ(dsrt_generate(s.s, prompt.data(), 2, &o, nullptr, &count,
                          logits.data(), nullptr),
            DSRT_ERROR_ARGUMENT);
  EXPECT_EQ(dsrt_generate(s.s, prompt.data(), 0, &o, out.data(), &count,
                          logits.data(), nullptr),
            DSRT_ERROR_ARGUMENT);
  EXPECT_EQ(lastError(), "empty prompt: at least one token is needed");
  EXPECT_EQ(dsrt_generate(s.s, prompt.data(), 2, nullptr, out.data(), &count,
                          logits.data(), nullptr),
            DSRT_ERROR_ARGUMENT);
  // None of these ran a token.
  EXPECT_EQ(dsrt_session_position(s.s), 0);
  EXPECT_STREQ(dsrt_model_routing_trace(m.m), "[]");
}

TEST(Model, TwoArtifactsLoadedAtOnceKeepTheirOwnCode) {
  // Each object is opened through /proc/self/fd/N; glibc reuses a loaded
  // object with the same path, so the descriptors must stay distinct.
  Fixture f1(fakeManifest(), 1), f2(fakeManifest(), 2);
  ModelPtr a{load(f1)};
  ModelPtr b{load(f2)};
  ASSERT_NE(a.m, nullptr);
  ASSERT_NE(b.m, nullptr);
  for (auto [model, variant] : {std::pair{a.m, 1}, std::pair{b.m, 2}}) {
    SessionPtr s;
    ASSERT_EQ(dsrt_session_create(model, 4, &s.s), DSRT_OK);
    std::vector<float> row(kVocab);
    ASSERT_EQ(dsrt_session_decode(s.s, 6, row.data()), DSRT_OK);
    EXPECT_EQ(row[2], float(2 + 10 * variant));
  }
  // And after the first is freed, a third load still gets its own code.
  dsrt_model_free(a.m);
  a.m = nullptr;
  Fixture f3(fakeManifest(), 2);
  ModelPtr c{load(f3)};
  ASSERT_NE(c.m, nullptr);
  SessionPtr s;
  ASSERT_EQ(dsrt_session_create(c.m, 4, &s.s), DSRT_OK);
  std::vector<float> row(kVocab);
  ASSERT_EQ(dsrt_session_decode(s.s, 6, row.data()), DSRT_OK);
  EXPECT_EQ(row[2], 22.0f);
}

TEST(Model, ModelsSessionsRunOnThreads) {
  Fixture f;
  ModelPtr m{load(f)};
  ASSERT_NE(m.m, nullptr);
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&, i] {
      dsrt_session *s = nullptr;
      if (dsrt_session_create(m.m, 16, &s) != DSRT_OK)
        return;
      std::vector<int32_t> prompt = {int32_t(i + 4), 5, 6};
      std::vector<float> logits(3 * kVocab);
      bool good = true;
      for (int rep = 0; rep < 20 && good; ++rep) {
        dsrt_session_reset(s);
        good = dsrt_session_prefill(s, prompt.data(), 3, logits.data()) ==
                   DSRT_OK &&
               logits[2 * kVocab + 1] == float(i + 4 + 5);
      }
      dsrt_session_free(s);
      ok[size_t(i)] = good;
    });
  for (std::thread &t : threads)
    t.join();
  EXPECT_EQ(ok, (std::vector<int>{1, 1, 1, 1}));
}

TEST(Model, LastErrorIsPerThread) {
  std::vector<float> row(kVocab);
  EXPECT_EQ(dsrt_session_decode(nullptr, 1, row.data()), DSRT_ERROR_ARGUMENT);
  std::string mine = lastError();
  std::thread([] {
    dsrt_model *m = nullptr;
    dsrt_model_load("/nonexistent.dsa", "/nonexistent", "cpu", &m);
  }).join();
  EXPECT_EQ(lastError(), mine);
}

//===----------------------------------------------------------------------===//
// Load failures
//===----------------------------------------------------------------------===//

namespace {

/// Loads and expects `status` with a message containing every `parts`.
void expectLoadError(const std::string &artifactPath, const std::string &dir,
                     const char *device, dsrt_status status,
                     std::vector<std::string> parts) {
  dsrt_model *m = reinterpret_cast<dsrt_model *>(1);
  EXPECT_EQ(dsrt_model_load(artifactPath.c_str(), dir.c_str(), device, &m),
            status);
  EXPECT_EQ(m, nullptr);
  for (const std::string &p : parts)
    EXPECT_NE(lastError().find(p), std::string::npos)
        << "'" << lastError() << "' lacks '" << p << "'";
}

} // namespace

TEST(ModelLoad, Devices) {
  Fixture f;
  expectLoadError(f.artifactPath, f.weights, "cuda", DSRT_ERROR_FORMAT,
                  {f.artifactPath, "compiled for target 'cpu', cannot run on "
                                   "device 'cuda' (recompile with ds-compile "
                                   "--target cuda)"});
  expectLoadError(f.artifactPath, f.weights, "tpu", DSRT_ERROR_ARGUMENT,
                  {"device 'tpu' is unknown (expected cpu or cuda)"});
  ModelPtr m{load(f, nullptr)}; // NULL device: cpu
  EXPECT_NE(m.m, nullptr);
}

TEST(ModelLoad, NullArguments) {
  Fixture f;
  EXPECT_EQ(dsrt_model_load(f.artifactPath.c_str(), f.weights.c_str(), "cpu",
                            nullptr),
            DSRT_ERROR_ARGUMENT);
  expectLoadError("", f.weights, "cpu", DSRT_ERROR_FORMAT, {"cannot open"});
  dsrt_model *m = nullptr;
  EXPECT_EQ(dsrt_model_load(nullptr, f.weights.c_str(), "cpu", &m),
            DSRT_ERROR_ARGUMENT);
  EXPECT_EQ(dsrt_model_load(f.artifactPath.c_str(), nullptr, "cpu", &m),
            DSRT_ERROR_ARGUMENT);
  dsrt_model_info info;
  EXPECT_EQ(dsrt_model_info_get(nullptr, &info), DSRT_ERROR_ARGUMENT);
  EXPECT_EQ(dsrt_model_check_weights(nullptr), DSRT_ERROR_ARGUMENT);
  EXPECT_STREQ(dsrt_model_routing_trace(nullptr), "[]");
  EXPECT_EQ(dsrt_session_position(nullptr), -1);
  dsrt_session_reset(nullptr);
  dsrt_session_free(nullptr);
  dsrt_model_free(nullptr);
}

TEST(ModelLoad, OtherTarget) {
  std::string manifest = fakeManifest();
  manifest.replace(manifest.find("\"cpu\""), 5, "\"cuda\"");
  {
    Fixture f(manifest);
    expectLoadError(f.artifactPath, f.weights, "cuda", DSRT_ERROR_FORMAT,
                    {f.artifactPath, "lacks 'gpu_arch' (sm_NN)"});
  }
  manifest.replace(manifest.find("\"cuda\""), 6,
                   "\"cuda\", \"gpu_arch\": \"sm_90\"");
  Fixture f(manifest);
  expectLoadError(f.artifactPath, f.weights, "cpu", DSRT_ERROR_FORMAT,
                  {f.artifactPath, "compiled for target 'cuda', cannot run on "
                                   "device 'cpu'"});
  // The process looks the driver up once; only this test asks for it.
  setenv("DSRT_CUDA_DRIVER", "/nonexistent/libcuda.so.1", 1);
  expectLoadError(f.artifactPath, f.weights, "cuda", DSRT_ERROR_DEVICE,
                  {"no CUDA driver: cannot load /nonexistent/libcuda.so.1"});
  unsetenv("DSRT_CUDA_DRIVER");
}

TEST(ModelLoad, MissingEntrySymbol) {
  Fixture f(fakeManifest("null", "_mlir_ciface_nope"));
  expectLoadError(f.artifactPath, f.weights, "cpu", DSRT_ERROR_FORMAT,
                  {f.artifactPath, "entry point 'prefill' (symbol "
                                   "'_mlir_ciface_nope') is missing"});
}

TEST(ModelLoad, ObjectIsNotAnElf) {
  TempDir d;
  writeFile(d.file("m.dsa"), artifact(fakeManifest(), "not an ELF object"));
  writeFakeCheckpoint(d.path);
  expectLoadError(d.file("m.dsa"), d.path, "cpu", DSRT_ERROR_FORMAT,
                  {d.file("m.dsa"), "cannot load its native code"});
}

TEST(ModelLoad, CorruptedArtifact) {
  Fixture f;
  std::string bytes = readFile(f.artifactPath);
  bytes[bytes.size() / 2] ^= 1;
  writeFile(f.artifactPath, bytes);
  expectLoadError(f.artifactPath, f.weights, "cpu", DSRT_ERROR_FORMAT,
                  {f.artifactPath, "corrupted (checksum mismatch)"});
}

TEST(ModelLoad, EveryCheckpointProblemAtOnce) {
  Fixture f;
  // e.1 missing, embed of the wrong shape.
  std::vector<float> embed(12 * 5, 0.5f), e0(16, 1.0f);
  writeFile(f.dir.file("model.safetensors"),
            safetensors(
                {{"model.embed_tokens.weight", "F32", {12, 5}, bytesOf(embed)},
                 {"e.0", "BF16", {4, 4}, bf16(e0)}}));
  expectLoadError(f.artifactPath, f.weights, "cpu", DSRT_ERROR_WEIGHTS,
                  {"tensor 'e.1' [4, 4] is missing from the checkpoint",
                   "tensor 'model.embed_tokens.weight': shape [12, 5], "
                   "expected [12, 4]",
                   "\n"});
  expectLoadError(f.artifactPath, f.dir.file("nowhere"), "cpu",
                  DSRT_ERROR_WEIGHTS, {"nowhere"});
}

TEST(ModelLoad, BindingMemberNotInTheCheckpoint) {
  // A member the manifest's weight list forgot is still checked.
  std::string manifest = fakeManifest();
  manifest.replace(manifest.find("[\"e.0\", \"e.1\"]"), 14,
                   "[\"e.0\", \"e.9\"]");
  Fixture f(manifest);
  expectLoadError(f.artifactPath, f.weights, "cpu", DSRT_ERROR_WEIGHTS,
                  {"tensor 'e.9' (binding 1) is missing"});
}

TEST(ModelLoad, BindingMemberOfTheWrongSize) {
  std::string manifest = fakeManifest();
  // Binding 1 wants [4, 3] members; the weight list (what validation
  // checks) still says [4, 4], as does the checkpoint.
  manifest.replace(manifest.find("[2, 4, 4]"), 9, "[2, 4, 3]");
  Fixture f(manifest);
  expectLoadError(f.artifactPath, f.weights, "cpu", DSRT_ERROR_WEIGHTS,
                  {"tensor 'e.0' of shape [4, 4] does not fill 1/2 of "
                   "binding 1 of shape [2, 4, 3]"});
}

TEST(ModelLoad, CheckWeightsFindsNaN) {
  Fixture f(fakeManifest(), 1, NAN);
  ModelPtr m{load(f)};
  ASSERT_NE(m.m, nullptr);
  EXPECT_EQ(dsrt_model_check_weights(m.m), DSRT_ERROR_WEIGHTS);
  EXPECT_NE(lastError().find("tensor 'e.1': NaN at element 0"),
            std::string::npos)
      << lastError();
}
