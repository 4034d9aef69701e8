#include "TestFiles.h"
#include "weights/Checkpoint.h"

#include <cmath>
#include <gtest/gtest.h>

using namespace dsrt;
using namespace dsrt::testing;

namespace {

std::string openError(const std::string &dir) {
  std::string err;
  auto c = Checkpoint::open(dir, err);
  EXPECT_EQ(c, nullptr);
  return err;
}

/// One file with tensors "a" [2,2] F32 and "b" [3] F32.
std::string twoTensors(const std::string &aOffsets = "[0, 16]",
                       const std::string &bOffsets = "[16, 28]",
                       const std::string &aShape = "[2, 2]",
                       const std::string &aDtype = "F32") {
  std::string header = R"({"a": {"dtype": ")" + aDtype + R"(", "shape": )" +
                       aShape + R"(, "data_offsets": )" + aOffsets +
                       R"(}, "b": {"dtype": "F32", "shape": [3], "data_offsets": )" +
                       bOffsets + "}}";
  return safetensors(header, floats({1, 2, 3, 4, 5, 6, 7}));
}

} // namespace

TEST(Checkpoint, ReadsAValidFile) {
  TempDir d;
  writeBytes(d.file("model.safetensors"), twoTensors());
  std::string err;
  auto c = Checkpoint::open(d.path, err);
  ASSERT_NE(c, nullptr) << err;
  const TensorView *b = c->find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->shape, (std::vector<int64_t>{3}));
  float out[3];
  ASSERT_TRUE(c->readF32("b", out, err)) << err;
  EXPECT_EQ(out[2], 7.0f);
  EXPECT_EQ(c->find("zzz"), nullptr);
}

TEST(Checkpoint, MetadataIsSkipped) {
  TempDir d;
  writeBytes(d.file("m.safetensors"),
             safetensors(R"({"__metadata__": {"format": "pt"}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})",
                         floats({1})));
  std::string err;
  auto c = Checkpoint::open(d.path, err);
  ASSERT_NE(c, nullptr) << err;
  EXPECT_EQ(c->names(), (std::vector<std::string>{"a"}));
}

TEST(Checkpoint, FileTooShort) {
  TempDir d;
  writeBytes(d.file("model.safetensors"), "abc");
  std::string err = openError(d.path);
  EXPECT_NE(err.find("model.safetensors: file of 3 bytes is too short"), std::string::npos) << err;
}

TEST(Checkpoint, HeaderLengthPastEnd) {
  TempDir d;
  std::string bytes = twoTensors();
  uint64_t huge = 1ull << 40;
  std::memcpy(&bytes[0], &huge, 8);
  writeBytes(d.file("model.safetensors"), bytes);
  EXPECT_NE(openError(d.path).find("runs past the end of the file"), std::string::npos);
}

TEST(Checkpoint, HeaderNotJsonOrNotObject) {
  TempDir d;
  writeBytes(d.file("model.safetensors"), safetensors("{\"a\": ", ""));
  EXPECT_NE(openError(d.path).find("header is not valid JSON: 1:7"), std::string::npos);
  writeBytes(d.file("model.safetensors"), safetensors("[1]", ""));
  EXPECT_NE(openError(d.path).find("header is not a JSON object"), std::string::npos);
}

TEST(Checkpoint, UnknownDType) {
  TempDir d;
  writeBytes(d.file("model.safetensors"), twoTensors("[0, 16]", "[16, 28]", "[2, 2]", "F12"));
  std::string err = openError(d.path);
  EXPECT_NE(err.find("model.safetensors: tensor 'a': unknown dtype 'F12'"), std::string::npos) << err;
}

TEST(Checkpoint, NegativeOrNonIntegerShape) {
  TempDir d;
  writeBytes(d.file("model.safetensors"), twoTensors("[0, 16]", "[16, 28]", "[2, -2]"));
  EXPECT_NE(openError(d.path).find("tensor 'a': shape entry -2 is not a non-negative integer"), std::string::npos);
  writeBytes(d.file("model.safetensors"), twoTensors("[0, 16]", "[16, 28]", "[2, 2.5]"));
  EXPECT_NE(openError(d.path).find("tensor 'a': shape entry"), std::string::npos);
}

TEST(Checkpoint, SizeDoesNotMatchShape) {
  TempDir d;
  writeBytes(d.file("model.safetensors"), twoTensors("[0, 16]", "[16, 28]", "[2, 3]"));
  std::string err = openError(d.path);
  EXPECT_NE(err.find("tensor 'a': holds 16 bytes but shape [2, 3] x F32 needs 24"), std::string::npos) << err;
}

TEST(Checkpoint, OffsetsOutOfOrderOrPastEnd) {
  TempDir d;
  writeBytes(d.file("model.safetensors"), twoTensors("[16, 0]"));
  EXPECT_NE(openError(d.path).find("tensor 'a': data_offsets out of order (begin 16 > end 0)"), std::string::npos);
  writeBytes(d.file("model.safetensors"), twoTensors("[0, 16]", "[16, 40]"));
  EXPECT_NE(openError(d.path).find("tensor 'b': data_offsets end 40 is past the data section (28 bytes)"), std::string::npos);
}

TEST(Checkpoint, OverlappingTensors) {
  TempDir d;
  writeBytes(d.file("model.safetensors"), twoTensors("[0, 16]", "[8, 20]"));
  std::string err = openError(d.path);
  EXPECT_NE(err.find("tensor 'b': bytes overlap tensor 'a'"), std::string::npos) << err;
}

TEST(Checkpoint, DuplicateNames) {
  TempDir d;
  writeBytes(d.file("model.safetensors"),
             safetensors(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                         floats({1, 2})));
  EXPECT_NE(openError(d.path).find("tensor 'a': appears twice in the header"), std::string::npos);
}

TEST(Checkpoint, SameTensorInTwoFiles) {
  TempDir d;
  writeBytes(d.file("a.safetensors"), twoTensors());
  writeBytes(d.file("b.safetensors"), twoTensors());
  std::string err = openError(d.path);
  EXPECT_NE(err.find("b.safetensors: tensor 'a' also appears in a.safetensors"), std::string::npos) << err;
}

TEST(Checkpoint, EmptyDirectory) {
  TempDir d;
  EXPECT_NE(openError(d.path).find("no *.safetensors files"), std::string::npos);
}

TEST(Checkpoint, ShardedIndex) {
  TempDir d;
  writeBytes(d.file("s1.safetensors"),
             safetensors(R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", floats({3})));
  writeBytes(d.file("s2.safetensors"),
             safetensors(R"({"y": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", floats({4})));
  writeBytes(d.file("model.safetensors.index.json"),
             R"({"metadata": {}, "weight_map": {"x": "s1.safetensors", "y": "s2.safetensors"}})");
  std::string err;
  auto c = Checkpoint::open(d.path, err);
  ASSERT_NE(c, nullptr) << err;
  float v;
  ASSERT_TRUE(c->readF32("y", &v, err));
  EXPECT_EQ(v, 4.0f);
}

TEST(Checkpoint, ShardedIndexErrors) {
  TempDir d;
  writeBytes(d.file("s1.safetensors"),
             safetensors(R"({"x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", floats({3})));
  writeBytes(d.file("model.safetensors.index.json"),
             R"({"weight_map": {"x": "s1.safetensors", "y": "s9.safetensors"}})");
  EXPECT_NE(openError(d.path).find("s9.safetensors: cannot open"), std::string::npos);
  writeBytes(d.file("model.safetensors.index.json"),
             R"({"weight_map": {"x": "s1.safetensors", "z": "s1.safetensors"}})");
  std::string err = openError(d.path);
  EXPECT_NE(err.find("tensor 'z' is listed in model.safetensors.index.json but missing"), std::string::npos) << err;
  writeBytes(d.file("model.safetensors.index.json"), R"({"metadata": {}})");
  EXPECT_NE(openError(d.path).find("missing object 'weight_map'"), std::string::npos);
  writeBytes(d.file("model.safetensors.index.json"), R"({"weight_map": {"x": "../x"}})");
  EXPECT_NE(openError(d.path).find("is not a file name"), std::string::npos);
}

TEST(Checkpoint, BF16AndF16Conversion) {
  TempDir d;
  uint16_t bf[2] = {0x3F80, 0xC000};                  // 1, -2
  uint16_t hf[2] = {0x3C00, 0x3800};                  // 1, 0.5
  std::string data(reinterpret_cast<char *>(bf), 4);
  data += std::string(reinterpret_cast<char *>(hf), 4);
  writeBytes(d.file("m.safetensors"),
             safetensors(R"({"b": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}, "h": {"dtype": "F16", "shape": [2], "data_offsets": [4, 8]}})", data));
  std::string err;
  auto c = Checkpoint::open(d.path, err);
  ASSERT_NE(c, nullptr) << err;
  float out[2];
  ASSERT_TRUE(c->readF32("b", out, err));
  EXPECT_EQ(out[1], -2.0f);
  ASSERT_TRUE(c->readF32("h", out, err));
  EXPECT_EQ(out[1], 0.5f);
}

TEST(Checkpoint, FP8BlockDequantisationOnPartialBlocks) {
  // [130, 260] has 2 x 3 blocks of 128x128, the last ones partial.
  TempDir d;
  const int rows = 130, cols = 260;
  std::string w(rows * cols, char(0x38)); // every element 1.0
  w[129 * cols + 259] = char(0x40);        // 2.0 in the last (partial) block
  std::vector<float> scales = {1, 2, 3, 4, 5, 6};
  std::string header =
      R"({"w.weight": {"dtype": "F8_E4M3", "shape": [130, 260], "data_offsets": [0, 33800]}, )"
      R"("w.weight_scale_inv": {"dtype": "F32", "shape": [2, 3], "data_offsets": [33800, 33824]}})";
  writeBytes(d.file("m.safetensors"), safetensors(header, w + floats(scales)));
  std::string err;
  auto c = Checkpoint::open(d.path, err);
  ASSERT_NE(c, nullptr) << err;
  std::vector<float> out(rows * cols);
  ASSERT_TRUE(c->readF32("w.weight", out.data(), err)) << err;
  EXPECT_EQ(out[0], 1.0f);                  // block (0, 0)
  EXPECT_EQ(out[5 * cols + 200], 2.0f);     // block (0, 1): cols 128..255
  EXPECT_EQ(out[5 * cols + 259], 3.0f);     // block (0, 2) starts at 256: scale 3
  EXPECT_EQ(out[129 * cols + 0], 4.0f);     // block (1, 0)
  EXPECT_EQ(out[129 * cols + 259], 12.0f);  // 2.0 x scale 6
  // The scale must have the block shape.
  std::vector<WeightRequirement> reqs = {{"w.weight", {130, 260}}};
  EXPECT_TRUE(validateCheckpoint(*c, reqs).empty());
}

TEST(Checkpoint, FP8WithoutScaleIsAnError) {
  TempDir d;
  writeBytes(d.file("m.safetensors"),
             safetensors(R"({"q": {"dtype": "F8_E4M3", "shape": [2, 2], "data_offsets": [0, 4]}})", "abcd"));
  std::string err;
  auto c = Checkpoint::open(d.path, err);
  ASSERT_NE(c, nullptr);
  float out[4];
  EXPECT_FALSE(c->readF32("q", out, err));
  EXPECT_NE(err.find("tensor 'q': FP8 weight needs a 2-D shape and an F32 'q_scale_inv'"), std::string::npos) << err;
}

TEST(Checkpoint, ValidateListsEveryProblem) {
  TempDir d;
  writeBytes(d.file("model.safetensors"), twoTensors("[0, 16]", "[16, 28]", "[2, 2]"));
  std::string err;
  auto c = Checkpoint::open(d.path, err);
  ASSERT_NE(c, nullptr);
  std::vector<WeightRequirement> reqs = {
      {"a", {4}}, {"b", {3}}, {"missing.weight", {7, 7}}};
  auto problems = validateCheckpoint(*c, reqs);
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_NE(problems[0].find("tensor 'a': shape [2, 2], expected [4]"), std::string::npos) << problems[0];
  EXPECT_NE(problems[1].find("tensor 'missing.weight' [7, 7] is missing"), std::string::npos) << problems[1];
}

TEST(Checkpoint, UnsupportedDTypeIsReported) {
  TempDir d;
  writeBytes(d.file("m.safetensors"),
             safetensors(R"({"i": {"dtype": "I64", "shape": [1], "data_offsets": [0, 8]}})", std::string(8, '\0')));
  std::string err;
  auto c = Checkpoint::open(d.path, err);
  ASSERT_NE(c, nullptr);
  auto problems = validateCheckpoint(*c, {{"i", {1}}});
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("dtype I64 is not supported"), std::string::npos);
}

TEST(Checkpoint, ScanNonFinite) {
  TempDir d;
  writeBytes(d.file("m.safetensors"),
             safetensors(R"({"ok": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "bad": {"dtype": "F32", "shape": [3], "data_offsets": [8, 20]}})",
                         floats({1, 2, 0, INFINITY, NAN})));
  std::string err;
  auto c = Checkpoint::open(d.path, err);
  ASSERT_NE(c, nullptr);
  auto problems = scanNonFinite(*c, {"ok", "bad"});
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("tensor 'bad': Inf at element 1"), std::string::npos) << problems[0];
}
