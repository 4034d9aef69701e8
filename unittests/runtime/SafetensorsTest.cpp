// One test per way a .safetensors file can be malformed: each must be
// refused with one line naming the file and, where there is one, the tensor.
#include "TestFiles.h"
#include "weights/Checkpoint.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

using namespace dsrt;
using namespace dsrt::testing;

namespace {

class Safetensors : public ::testing::Test {
protected:
  TempDir dir;
  std::string path = dir.file("model.safetensors");

  /// Writes `bytes` as the file and returns why it is refused.
  std::string refusal(const std::string &bytes) {
    writeBytes(path, bytes);
    std::string err;
    auto f = SafetensorsFile::open(path, err);
    EXPECT_EQ(f, nullptr);
    EXPECT_EQ(err.find('\n'), std::string::npos) << err;
    return err;
  }
  /// A header with entries "a" (given) and "b" F32 [3] at [16, 28], over 28
  /// bytes of data.
  std::string withA(const std::string &aEntry,
                    const std::string &bOffsets = "[16, 28]") {
    return safetensors(
        R"({"a": )" + aEntry +
            R"(, "b": {"dtype": "F32", "shape": [3], "data_offsets": )" +
            bOffsets + "}}",
        floats({1, 2, 3, 4, 5, 6, 7}));
  }
  static std::string entry(const std::string &dtype, const std::string &shape,
                           const std::string &offsets) {
    return R"({"dtype": )" + dtype + R"(, "shape": )" + shape +
           R"(, "data_offsets": )" + offsets + "}";
  }
};

} // namespace

TEST_F(Safetensors, ReadsTensorsInHeaderOrder) {
  writeBytes(path, safetensorsOf({{"z", "F32", {2}, floats({1.5f, -2})},
                                  {"a", "BF16", {1, 3}, std::string(6, '\1')},
                                  {"e", "F16", {0, 4}, ""}}));
  std::string err;
  auto f = SafetensorsFile::open(path, err);
  ASSERT_NE(f, nullptr) << err;
  EXPECT_EQ(f->path(), path);
  const auto &t = f->tensors();
  ASSERT_EQ(t.size(), 3u);
  EXPECT_EQ(t[0].name, "z");
  EXPECT_EQ(t[0].file, path);
  EXPECT_EQ(t[0].dtype, DType::F32);
  EXPECT_EQ(t[0].nbytes, 8u);
  float z1;
  std::memcpy(&z1, t[0].data + 4, 4);
  EXPECT_EQ(z1, -2.0f);
  EXPECT_EQ(t[1].shape, (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(t[1].data, t[0].data + 8);
  EXPECT_EQ(t[1].numElements(), 3);
  EXPECT_EQ(t[2].nbytes, 0u); // empty tensors are fine
  EXPECT_EQ(t[2].numElements(), 0);
}

TEST_F(Safetensors, MetadataIsSkipped) {
  writeBytes(path, safetensors(R"({"__metadata__": {"format": "pt"}, "a": )" +
                                   entry(R"("F32")", "[1]", "[0, 4]") + "}",
                               floats({1})));
  std::string err;
  auto f = SafetensorsFile::open(path, err);
  ASSERT_NE(f, nullptr) << err;
  ASSERT_EQ(f->tensors().size(), 1u);
  EXPECT_EQ(f->tensors()[0].name, "a");
}

TEST_F(Safetensors, MetadataMustMapStringsToStrings) {
  EXPECT_EQ(refusal(safetensors(R"({"__metadata__": {"format": 1}})", "")),
            path + ": __metadata__ is not an object of strings");
  EXPECT_EQ(refusal(safetensors(R"({"__metadata__": "pt"})", "")),
            path + ": __metadata__ is not an object of strings");
}

TEST_F(Safetensors, FileShorterThanTheLengthField) {
  EXPECT_EQ(refusal("abc"),
            path + ": file of 3 bytes is too short for a safetensors header "
                   "(8 bytes)");
}

TEST_F(Safetensors, HeaderLengthPastTheEnd) {
  std::string bytes = withA(entry(R"("F32")", "[2, 2]", "[0, 16]"));
  bytes[5] = 1; // length += 2^40
  EXPECT_EQ(refusal(bytes).rfind(path + ": header length 1099511627", 0), 0u);
  bytes = safetensors("{}", "");
  bytes[0] = 3; // one byte more than there is
  EXPECT_EQ(refusal(bytes), path + ": header length 3 runs past the end of "
                                   "the file (10 bytes)");
}

TEST_F(Safetensors, HeaderLengthOverTheLimit) {
  // A sparse file large enough that the length is in bounds.
  uint64_t len = SafetensorsFile::kMaxHeaderBytes + 1;
  writeBytes(path, safetensors(std::string(1, '{'), "").substr(0, 8));
  int fd = ::open(path.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, &len, 8, 0), 8); // tests run on little-endian hosts
  ASSERT_EQ(ftruncate(fd, off_t(len + 8)), 0);
  ::close(fd);
  std::string err;
  EXPECT_EQ(SafetensorsFile::open(path, err), nullptr);
  EXPECT_EQ(err, path + ": header length 100000001 exceeds the limit of "
                        "100000000 bytes");
}

TEST_F(Safetensors, HeaderNotJson) {
  EXPECT_EQ(refusal(safetensors("{this is not json", "")),
            path + ": header is not valid JSON: 1:2: expected a string key in "
                   "object");
  EXPECT_EQ(refusal(safetensors("{\"a\":\n  {\"dtype\": F32}}", "")),
            path + ": header is not valid JSON: 2:13: unexpected character "
                   "'F'");
}

TEST_F(Safetensors, HeaderNotAnObject) {
  EXPECT_EQ(refusal(safetensors("[1, 2]", "")),
            path + ": header is not a JSON object (got an array)");
}

TEST_F(Safetensors, EntryNotAnObject) {
  EXPECT_EQ(refusal(withA("[1, 2]")),
            path +
                ": tensor 'a': header entry is not an object (got an array)");
}

TEST_F(Safetensors, UnknownDType) {
  EXPECT_EQ(refusal(withA(entry(R"("F12")", "[2, 2]", "[0, 16]"))),
            path + ": tensor 'a': unknown dtype 'F12'");
}

TEST_F(Safetensors, MissingFields) {
  EXPECT_EQ(refusal(withA(R"({"shape": [4], "data_offsets": [0, 16]})")),
            path + ": tensor 'a': missing or non-string dtype");
  EXPECT_EQ(refusal(withA(R"({"dtype": "F32", "data_offsets": [0, 16]})")),
            path + ": tensor 'a': missing or non-array shape");
  EXPECT_EQ(refusal(withA(R"({"dtype": "F32", "shape": [4]})")),
            path + ": tensor 'a': data_offsets must be [begin, end]");
}

TEST_F(Safetensors, NegativeShape) {
  EXPECT_EQ(refusal(withA(entry(R"("F32")", "[2, -2]", "[0, 16]"))),
            path +
                ": tensor 'a': shape entry -2 is not a non-negative integer");
}

TEST_F(Safetensors, NonIntegerShape) {
  EXPECT_EQ(refusal(withA(entry(R"("F32")", "[2, 2.5]", "[0, 16]"))),
            path +
                ": tensor 'a': shape entry 2.5 is not a non-negative integer");
  EXPECT_EQ(refusal(withA(entry(R"("F32")", R"([2, "2"])", "[0, 16]"))),
            path + ": tensor 'a': shape entry \"2\" is not a non-negative "
                   "integer");
  EXPECT_EQ(refusal(withA(entry(R"("F32")", "4", "[0, 16]"))),
            path + ": tensor 'a': missing or non-array shape");
}

TEST_F(Safetensors, ShapeProductOverflow) {
  EXPECT_EQ(
      refusal(withA(entry(R"("F32")", "[4611686018427387904, 4]", "[0, 16]"))),
      path + ": tensor 'a': shape [4611686018427387904, 4] is too large");
  // 2^61 elements of 8 bytes wrap a 64-bit byte count to 0, which would
  // match empty offsets.
  EXPECT_EQ(
      refusal(withA(entry(R"("F64")", "[2305843009213693952]", "[0, 0]"))),
      path + ": tensor 'a': shape [2305843009213693952] is too large");
  EXPECT_EQ(
      refusal(
          withA(entry(R"("F32")", "[65536, 65536, 65536, 65536]", "[0, 0]"))),
      path + ": tensor 'a': shape [65536, 65536, 65536, 65536] is too large");
}

TEST_F(Safetensors, DataOffsetsNotTwoNonNegativeIntegers) {
  for (const char *offs : {"[0]", "[0, 4, 8]", "{}", "16"})
    EXPECT_EQ(refusal(withA(entry(R"("F32")", "[4]", offs))),
              path + ": tensor 'a': data_offsets must be [begin, end]")
        << offs;
  EXPECT_EQ(refusal(withA(entry(R"("F32")", "[4]", "[-16, 0]"))),
            path + ": tensor 'a': data_offsets entry -16 is not a non-negative "
                   "integer");
  EXPECT_EQ(refusal(withA(entry(R"("F32")", "[4]", "[0, 16.5]"))),
            path + ": tensor 'a': data_offsets entry 16.5 is not a "
                   "non-negative integer");
  EXPECT_EQ(
      refusal(withA(entry(R"("F32")", "[4]", "[0, 99999999999999999999]"))),
      path + ": tensor 'a': data_offsets entry 1e+20 is "
             "not a non-negative integer");
}

TEST_F(Safetensors, DataOffsetsOutOfOrder) {
  EXPECT_EQ(refusal(withA(entry(R"("F32")", "[4]", "[16, 0]"))),
            path +
                ": tensor 'a': data_offsets out of order (begin 16 > end 0)");
}

TEST_F(Safetensors, DataOffsetsPastTheDataSection) {
  EXPECT_EQ(refusal(withA(entry(R"("F32")", "[4]", "[0, 16]"), "[16, 40]")),
            path + ": tensor 'b': data_offsets end 40 is past the data section "
                   "(28 bytes)");
}

TEST_F(Safetensors, ByteSizeDoesNotMatchShape) {
  EXPECT_EQ(refusal(withA(entry(R"("F32")", "[2, 3]", "[0, 16]"))),
            path +
                ": tensor 'a': holds 16 bytes but shape [2, 3] x F32 needs 24");
  EXPECT_EQ(refusal(withA(entry(R"("BF16")", "[2, 2]", "[0, 16]"))),
            path +
                ": tensor 'a': holds 16 bytes but shape [2, 2] x BF16 needs 8");
}

TEST_F(Safetensors, OverlappingTensors) {
  EXPECT_EQ(refusal(withA(entry(R"("F32")", "[4]", "[0, 16]"), "[8, 20]")),
            path + ": tensor 'b': bytes overlap tensor 'a'");
}

TEST_F(Safetensors, OverlapHiddenBehindAnEmptyTensor) {
  // "big" covers [0, 24); "e" (empty) and "c" sort after it: "c" overlaps
  // "big" though its neighbour in offset order is the empty tensor.
  EXPECT_EQ(
      refusal(safetensors(
          R"({"big": {"dtype": "F32", "shape": [6], "data_offsets": [0, 24]}, )"
          R"("e": {"dtype": "F32", "shape": [0], "data_offsets": [8, 8]}, )"
          R"("c": {"dtype": "F32", "shape": [1], "data_offsets": [12, 16]}})",
          floats({1, 2, 3, 4, 5, 6}))),
      path + ": tensor 'c': bytes overlap tensor 'big'");
}

TEST_F(Safetensors, DuplicateTensorNames) {
  EXPECT_EQ(
      refusal(safetensors(
          R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, )"
          R"("a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
          floats({1, 2}))),
      path + ": tensor 'a': appears twice in the header");
}

TEST_F(Safetensors, NotAReadableRegularFile) {
  std::string err;
  EXPECT_EQ(SafetensorsFile::open(dir.file("absent.safetensors"), err),
            nullptr);
  EXPECT_EQ(err, dir.file("absent.safetensors") +
                     ": cannot open: No such file or directory");
  EXPECT_EQ(SafetensorsFile::open(dir.path, err), nullptr);
  EXPECT_EQ(err, dir.path + ": not a regular file");
}
