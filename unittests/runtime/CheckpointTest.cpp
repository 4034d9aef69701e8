// Checkpoints (directories of shards, with or without an index), conversion
// to f32 including FP8 blocks, and the requirement and NaN/Inf checks.
#include "weights/Checkpoint.h"
#include "TestFiles.h"

#include <cmath>
#include <gtest/gtest.h>
#include <sys/stat.h>

using namespace dsrt;
using namespace dsrt::testing;

namespace {

class CheckpointTest : public ::testing::Test {
protected:
  TempDir dir;

  std::unique_ptr<Checkpoint> open() {
    std::string err;
    auto c = Checkpoint::open(dir.path, err);
    EXPECT_NE(c, nullptr) << err;
    return c;
  }
  std::string refusal() {
    std::string err;
    EXPECT_EQ(Checkpoint::open(dir.path, err), nullptr);
    EXPECT_EQ(err.find('\n'), std::string::npos) << err;
    return err;
  }
  void write(const std::string &file, const std::vector<Tensor> &tensors) {
    writeBytes(dir.file(file), safetensorsOf(tensors));
  }
  void writeIndex(const std::string &weightMap) {
    writeBytes(dir.file("model.safetensors.index.json"),
               R"({"metadata": {"total_size": 8}, "weight_map": )" + weightMap +
                   "}");
  }
  /// s1 holds x (3.0), s2 holds y (4.0).
  void writeShards() {
    write("s1.safetensors", {{"x", "F32", {1}, floats({3})}});
    write("s2.safetensors", {{"y", "F32", {1}, floats({4})}});
  }
};

Tensor f32(const std::string &name, std::vector<int64_t> shape,
           std::vector<float> values) {
  return {name, "F32", std::move(shape), floats(values)};
}

std::vector<float> readAll(const Checkpoint &c, const std::string &name) {
  const TensorView *t = c.find(name);
  EXPECT_NE(t, nullptr) << name;
  if (!t)
    return {};
  std::vector<float> out(size_t(t->numElements()));
  std::string err;
  EXPECT_TRUE(c.readF32(name, out.data(), err)) << err;
  return out;
}

} // namespace

//===----------------------------------------------------------------------===//
// Opening
//===----------------------------------------------------------------------===//

TEST_F(CheckpointTest, OpensEverySafetensorsFileOfADirectory) {
  write("b.safetensors", {f32("beta", {3}, {5, 6, 7})});
  write("a.safetensors", {f32("alpha", {2, 2}, {1, 2, 3, 4})});
  writeBytes(dir.file("config.json"), "{}");         // not a weight file
  writeBytes(dir.file("notes.safetensors.txt"), ""); // neither
  std::string err;
  auto c = Checkpoint::open(dir.path + "/", err); // trailing slash tolerated
  ASSERT_NE(c, nullptr) << err;
  EXPECT_EQ(c->directory(), dir.path);
  EXPECT_EQ(c->names(), (std::vector<std::string>{"alpha", "beta"}));
  const TensorView *b = c->find("beta");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->file, dir.file("b.safetensors"));
  EXPECT_EQ(b->shape, (std::vector<int64_t>{3}));
  EXPECT_EQ(readAll(*c, "beta"), (std::vector<float>{5, 6, 7}));
  EXPECT_EQ(c->find("gamma"), nullptr);
}

TEST_F(CheckpointTest, SameTensorInTwoFiles) {
  write("a.safetensors", {f32("t", {1}, {1})});
  write("b.safetensors", {f32("u", {1}, {1}), f32("t", {1}, {2})});
  EXPECT_EQ(refusal(), dir.file("b.safetensors") +
                           ": tensor 't' also appears in a.safetensors");
}

TEST_F(CheckpointTest, DirectoryWithoutWeights) {
  writeBytes(dir.file("config.json"), "{}");
  EXPECT_EQ(refusal(), dir.path + ": no *.safetensors files and no "
                                  "model.safetensors.index.json");
}

TEST_F(CheckpointTest, MissingDirectory) {
  std::string err;
  EXPECT_EQ(Checkpoint::open(dir.file("nowhere"), err), nullptr);
  EXPECT_EQ(err, dir.file("nowhere") +
                     ": cannot open directory: No such file or directory");
}

TEST_F(CheckpointTest, AMalformedFileFailsTheCheckpoint) {
  write("a.safetensors", {f32("t", {1}, {1})});
  writeBytes(dir.file("b.safetensors"), "short");
  EXPECT_EQ(refusal(), dir.file("b.safetensors") +
                           ": file of 5 bytes is too short for a safetensors "
                           "header (8 bytes)");
}

//===----------------------------------------------------------------------===//
// Sharded checkpoints
//===----------------------------------------------------------------------===//

TEST_F(CheckpointTest, ShardedIndex) {
  writeShards();
  write("stray.safetensors", {f32("x", {1}, {9})}); // not in the index
  writeIndex(R"({"x": "s1.safetensors", "y": "s2.safetensors"})");
  auto c = open();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->names(), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(c->find("y")->file, dir.file("s2.safetensors"));
  EXPECT_EQ(readAll(*c, "x"), (std::vector<float>{3}));
  EXPECT_EQ(readAll(*c, "y"), (std::vector<float>{4}));
}

TEST_F(CheckpointTest, ShardedIndexNotJson) {
  writeShards();
  writeBytes(dir.file("model.safetensors.index.json"),
             "{\"weight_map\": {\n  \"x\": s1}}");
  EXPECT_EQ(refusal(), dir.file("model.safetensors.index.json") +
                           ":2:8: unexpected character 's' (invalid JSON)");
}

TEST_F(CheckpointTest, ShardedIndexWithoutWeightMap) {
  writeShards();
  writeBytes(dir.file("model.safetensors.index.json"), R"({"metadata": {}})");
  EXPECT_EQ(refusal(), dir.file("model.safetensors.index.json") +
                           ": missing object 'weight_map'");
  writeBytes(dir.file("model.safetensors.index.json"), "[]");
  EXPECT_EQ(refusal(), dir.file("model.safetensors.index.json") +
                           ": missing object 'weight_map'");
}

TEST_F(CheckpointTest, ShardedIndexMissingShard) {
  writeShards();
  writeIndex(R"({"x": "s1.safetensors", "y": "s9.safetensors"})");
  EXPECT_EQ(refusal(), dir.file("s9.safetensors") +
                           ": cannot open shard listed in "
                           "model.safetensors.index.json: No such file or "
                           "directory");
}

TEST_F(CheckpointTest, ShardedIndexTensorMissingFromShard) {
  writeShards();
  writeIndex(R"({"x": "s1.safetensors", "z": "s1.safetensors"})");
  EXPECT_EQ(refusal(), dir.file("s1.safetensors") +
                           ": tensor 'z' is listed in "
                           "model.safetensors.index.json but missing");
}

TEST_F(CheckpointTest, ShardedIndexTensorInTwoShards) {
  writeShards();
  write("s2.safetensors", {f32("y", {1}, {4}), f32("x", {1}, {5})});
  writeIndex(R"({"x": "s1.safetensors", "y": "s2.safetensors"})");
  EXPECT_EQ(refusal(), dir.file("s2.safetensors") +
                           ": tensor 'x' also appears in s1.safetensors");
}

TEST_F(CheckpointTest, ShardedIndexListsATensorTwice) {
  writeShards();
  writeIndex(
      R"({"x": "s1.safetensors", "y": "s2.safetensors", "x": "s2.safetensors"})");
  EXPECT_EQ(refusal(), dir.file("model.safetensors.index.json") +
                           ": tensor 'x' is listed twice in weight_map");
}

TEST_F(CheckpointTest, ShardedIndexNamesTheWrongShard) {
  writeShards();
  write("s3.safetensors", {f32("w", {1}, {1})});
  writeIndex(
      R"({"x": "s1.safetensors", "y": "s3.safetensors", "w": "s2.safetensors"})");
  // Both y and w are misplaced; the first in name order is reported.
  EXPECT_EQ(refusal(), dir.file("s3.safetensors") +
                           ": tensor 'w' is listed under s2.safetensors in "
                           "model.safetensors.index.json");
}

TEST_F(CheckpointTest, ShardedIndexShardMustBeAFileName) {
  writeShards();
  for (const char *shard :
       {R"("../s1.safetensors")", R"("")", R"("..")", "1"}) {
    writeIndex(std::string(R"({"x": )") + shard + "}");
    EXPECT_EQ(refusal(), dir.file("model.safetensors.index.json") +
                             ": tensor 'x': shard " + shard +
                             " is not a file name");
  }
}

//===----------------------------------------------------------------------===//
// Conversion to f32
//===----------------------------------------------------------------------===//

TEST_F(CheckpointTest, BF16AndF16Conversion) {
  write("m.safetensors",
        {{"b", "BF16", {3}, bytesOf<uint16_t>({0x3F80, 0xC000, 0x3E20})},
         {"h", "F16", {3}, bytesOf<uint16_t>({0x3C00, 0x3800, 0x0001})}});
  auto c = open();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(readAll(*c, "b"), (std::vector<float>{1, -2, 0.15625f}));
  EXPECT_EQ(readAll(*c, "h"),
            (std::vector<float>{1, 0.5f, std::ldexp(1.0f, -24)}));
}

TEST_F(CheckpointTest, ReadF32Refusals) {
  write("m.safetensors", {{"i", "I32", {1}, bytesOf<int32_t>({7})}});
  auto c = open();
  ASSERT_NE(c, nullptr);
  float out[1];
  std::string err;
  EXPECT_FALSE(c->readF32("i", out, err));
  EXPECT_EQ(err, dir.file("m.safetensors") +
                     ": tensor 'i': dtype I32 is not a supported weight dtype");
  EXPECT_FALSE(c->readF32("nope", out, err));
  EXPECT_EQ(err, dir.path + ": tensor 'nope' is not in the checkpoint");
}

TEST_F(CheckpointTest, FP8BlockDequantisationOnPartialBlocks) {
  // [130, 260] has 2 x 3 blocks of 128x128; the last row and column of
  // blocks are partial.
  const int rows = 130, cols = 260;
  std::string w(rows * cols, char(0x38)); // 1.0 everywhere
  auto at = [&](int r, int c) -> char & { return w[r * cols + c]; };
  at(5, 200) = char(0x3A);   // 1.25
  at(5, 255) = char(0xB8);   // -1.0, last column of block (0, 1)
  at(5, 256) = char(0x40);   // 2.0, first column of block (0, 2)
  at(128, 130) = char(0x01); // 2^-9, the smallest subnormal
  at(129, 259) = char(0x7E); // 448, the largest value
  std::vector<float> scales = {0.5f, 2, 3, 4, 0.25f, 6};
  // An odd-length header leaves both tensors unaligned in memory.
  std::string header =
      R"({"w.weight": {"dtype": "F8_E4M3", "shape": [130, 260], "data_offsets": [0, 33800]}, )"
      R"("w.weight_scale_inv": {"dtype": "F32", "shape": [2, 3], "data_offsets": [33800, 33824]}})";
  if (header.size() % 2 == 0)
    header += ' ';
  writeBytes(dir.file("m.safetensors"),
             safetensors(header, w + floats(scales)));
  auto c = open();
  ASSERT_NE(c, nullptr);
  std::vector<float> out = readAll(*c, "w.weight");
  ASSERT_EQ(out.size(), size_t(rows * cols));
  auto v = [&](int r, int col) { return out[r * cols + col]; };
  EXPECT_EQ(v(0, 0), 0.5f);                      // 1.0 x block (0, 0) scale 0.5
  EXPECT_EQ(v(127, 127), 0.5f);                  // still block (0, 0)
  EXPECT_EQ(v(5, 128), 2.0f);                    // block (0, 1)
  EXPECT_EQ(v(5, 200), 2.5f);                    // 1.25 x 2
  EXPECT_EQ(v(5, 255), -2.0f);                   // -1.0 x 2
  EXPECT_EQ(v(5, 256), 6.0f);                    // 2.0 x block (0, 2) scale 3
  EXPECT_EQ(v(128, 0), 4.0f);                    // block (1, 0)
  EXPECT_EQ(v(128, 130), std::ldexp(1.0f, -11)); // 2^-9 x 0.25
  EXPECT_EQ(v(129, 259), 2688.0f);               // 448 x 6
  EXPECT_EQ(v(129, 258), 6.0f);
}

TEST_F(CheckpointTest, FP8WithoutScaleIsAnError) {
  write("m.safetensors", {{"q", "F8_E4M3", {2, 2}, "abcd"}});
  auto c = open();
  ASSERT_NE(c, nullptr);
  float out[4];
  std::string err;
  EXPECT_FALSE(c->readF32("q", out, err));
  EXPECT_EQ(err, dir.file("m.safetensors") +
                     ": tensor 'q': FP8 weight needs a 2-D shape and an F32 "
                     "'q_scale_inv'");
}

TEST_F(CheckpointTest, FP8WithMisshapenScaleIsAnError) {
  write("m.safetensors", {{"q", "F8_E4M3", {200, 2}, std::string(400, '\0')},
                          f32("q_scale_inv", {1, 1}, {1})});
  auto c = open();
  ASSERT_NE(c, nullptr);
  std::vector<float> out(400);
  std::string err;
  EXPECT_FALSE(c->readF32("q", out.data(), err));
  EXPECT_EQ(err, dir.file("m.safetensors") +
                     ": tensor 'q_scale_inv': shape [1, 1], expected [2, 1] "
                     "for 128x128 blocks of [200, 2]");
}

//===----------------------------------------------------------------------===//
// validateCheckpoint
//===----------------------------------------------------------------------===//

TEST_F(CheckpointTest, ValidateAcceptsAMatchingCheckpoint) {
  write("m.safetensors", {f32("n.weight", {2}, {1, 1}),
                          {"w.weight", "F8_E4M3", {3, 2}, std::string(6, '\0')},
                          f32("w.weight_scale_inv", {1, 1}, {1})});
  auto c = open();
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(validateCheckpoint(*c, {{"n.weight", {2}}, {"w.weight", {3, 2}}})
                  .empty());
  EXPECT_TRUE(validateCheckpoint(
                  *c, {{"w.weight", {3, 2}}, {"w.weight_scale_inv", {1, 1}}})
                  .empty());
}

TEST_F(CheckpointTest, ValidateListsEveryProblem) {
  write("m.safetensors",
        {f32("ok", {2}, {1, 2}),
         f32("shape", {2, 2}, {1, 2, 3, 4}),
         {"int", "I32", {1}, bytesOf<int32_t>({1})},
         {"noscale.weight", "F8_E4M3", {2, 2}, "abcd"},
         {"badscale.weight", "F8_E4M3", {130, 2}, std::string(260, '\0')},
         f32("badscale.weight_scale_inv", {1, 1}, {1}),
         {"bf16scale.weight", "F8_E4M3", {2, 2}, "abcd"},
         {"bf16scale.weight_scale_inv",
          "BF16",
          {1, 1},
          bytesOf<uint16_t>({0x3F80})}});
  auto c = open();
  ASSERT_NE(c, nullptr);
  std::string file = dir.file("m.safetensors");
  std::vector<std::string> problems =
      validateCheckpoint(*c, {{"ok", {2}},
                              {"shape", {4}},
                              {"int", {1}},
                              {"gone", {7, 7}},
                              {"noscale.weight", {2, 2}},
                              {"badscale.weight", {130, 2}},
                              {"bf16scale.weight", {2, 2}}});
  EXPECT_EQ(
      problems,
      (std::vector<std::string>{
          file + ": tensor 'shape': shape [2, 2], expected [4]",
          file + ": tensor 'int': dtype I32 is not supported (F32, F16, "
                 "BF16, F8_E4M3)",
          "tensor 'gone' [7, 7] is missing from the checkpoint in " + dir.path,
          file + ": tensor 'noscale.weight': F8_E4M3 weight without "
                 "'noscale.weight_scale_inv'",
          file + ": tensor 'badscale.weight_scale_inv': shape [1, 1], "
                 "expected [2, 1] for 128x128 blocks of "
                 "'badscale.weight' [130, 2]",
          file + ": tensor 'bf16scale.weight_scale_inv': dtype BF16, "
                 "expected F32 (the scale of 'bf16scale.weight')",
      }));
}

TEST_F(CheckpointTest, ValidateReportsARequiredScaleOnce) {
  write("m.safetensors",
        {{"w.weight", "F8_E4M3", {2, 2}, "abcd"},
         {"v.weight", "F8_E4M3", {2, 2}, "abcd"},
         f32("v.weight_scale_inv", {1, 2}, {1, 1}),
         {"u.weight", "F8_E4M3", {2, 2}, "abcd"},
         {"u.weight_scale_inv", "I32", {1, 1}, bytesOf<int32_t>({1})}});
  auto c = open();
  ASSERT_NE(c, nullptr);
  std::vector<std::string> problems =
      validateCheckpoint(*c, {{"w.weight", {2, 2}},
                              {"w.weight_scale_inv", {1, 1}},
                              {"v.weight", {2, 2}},
                              {"v.weight_scale_inv", {1, 1}},
                              {"u.weight", {2, 2}},
                              {"u.weight_scale_inv", {1, 1}}});
  EXPECT_EQ(problems,
            (std::vector<std::string>{
                "tensor 'w.weight_scale_inv' [1, 1] is missing from the "
                "checkpoint in " +
                    dir.path,
                dir.file("m.safetensors") +
                    ": tensor 'v.weight_scale_inv': shape [1, 2], expected "
                    "[1, 1]",
                dir.file("m.safetensors") +
                    ": tensor 'u.weight_scale_inv': dtype I32 is not "
                    "supported (F32, F16, BF16, F8_E4M3)",
            }));
}

TEST_F(CheckpointTest, ValidateFP8WeightMustBe2D) {
  write("m.safetensors", {{"w", "F8_E4M3", {4}, "abcd"}});
  auto c = open();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(validateCheckpoint(*c, {{"w", {4}}}),
            (std::vector<std::string>{
                dir.file("m.safetensors") +
                ": tensor 'w': F8_E4M3 weight of shape [4] is not 2-D, as its "
                "128x128 scale blocks need"}));
}

//===----------------------------------------------------------------------===//
// scanNonFinite
//===----------------------------------------------------------------------===//

TEST_F(CheckpointTest, ScanNonFiniteNamesTensorAndFirstBadIndex) {
  write("m.safetensors",
        {f32("ok", {2}, {1, 2}),
         f32("inf", {3}, {0, INFINITY, NAN}),
         {"bf", "BF16", {2, 3}, bytesOf<uint16_t>({0, 0, 0, 0, 0, 0x7FC1})},
         {"h", "F16", {2}, bytesOf<uint16_t>({0x3C00, 0xFC00})},
         {"q", "F8_E4M3", {2, 2}, std::string("\x38\x38\x38\x7F", 4)},
         f32("q_scale_inv", {1, 1}, {1}),
         {"noscale", "F8_E4M3", {1, 1}, std::string(1, '\0')}});
  auto c = open();
  ASSERT_NE(c, nullptr);
  std::string file = dir.file("m.safetensors");
  EXPECT_EQ(
      scanNonFinite(*c, {"ok", "inf", "bf", "h", "q", "absent", "noscale"}),
      (std::vector<std::string>{
          file + ": tensor 'inf': Inf at element 1 (index [1])",
          file + ": tensor 'bf': NaN at element 5 (index [1, 2])",
          file + ": tensor 'h': Inf at element 1 (index [1])",
          file + ": tensor 'q': NaN at element 3 (index [1, 1])",
          file + ": tensor 'noscale': FP8 weight needs a 2-D shape and "
                 "an F32 'noscale_scale_inv'",
      }));
  EXPECT_TRUE(scanNonFinite(*c, {"ok", "q_scale_inv"}).empty());
}

TEST_F(CheckpointTest, ScanNonFiniteAcrossChunksAndScaleBlocks) {
  // 1.1M elements: the scan converts in chunks of 2^20, the second starting
  // mid-row and mid-block (row 1048, column 576). The first bad value is 448
  // times a huge block scale (Inf) in that row; a NaN comes after it.
  const int rows = 1100, cols = 1000;
  std::string w(size_t(rows) * cols, '\0');
  w[size_t(1048) * cols + 900] = char(0x7E);
  w[size_t(1050) * cols + 999] = char(0x7F);
  std::vector<float> scales(9 * 8, 1.0f);
  scales[8 * 8 + 7] = 1e38f; // block (8, 7): rows 1024.., columns 896..
  write("m.safetensors", {{"w", "F8_E4M3", {rows, cols}, w},
                          f32("w_scale_inv", {9, 8}, scales)});
  auto c = open();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(scanNonFinite(*c, {"w"}),
            (std::vector<std::string>{
                dir.file("m.safetensors") +
                ": tensor 'w': Inf at element 1048900 (index [1048, 900])"}));
  // readF32 converts the whole tensor with the same block mapping.
  std::vector<float> out = readAll(*c, "w");
  EXPECT_TRUE(std::isinf(out[size_t(1048) * cols + 900]));
  EXPECT_TRUE(std::isnan(out[size_t(1050) * cols + 999]));
  EXPECT_EQ(out[0], 0.0f);
}
