//===- NpyTest.cpp - the .npy writer, read back by an independent parser
//---===//
#include "Npy.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace {

/// Parses what numpy's format 1.0 reader checks: magic, version, header
/// length, header dict (descr, order, shape) and the payload size.
struct Parsed {
  std::string descr, order;
  std::vector<int64_t> shape;
  std::vector<float> data;
  size_t dataOffset = 0;
};

bool parseNpy(const std::string &bytes, Parsed &out, std::string &error) {
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) {
    error = "bad magic";
    return false;
  }
  if (bytes[6] != 1 || bytes[7] != 0) {
    error = "not version 1.0";
    return false;
  }
  size_t len = size_t(uint8_t(bytes[8])) | size_t(uint8_t(bytes[9])) << 8;
  if (10 + len > bytes.size()) {
    error = "header past the end";
    return false;
  }
  std::string header = bytes.substr(10, len);
  if (header.back() != '\n') {
    error = "header does not end with a newline";
    return false;
  }
  auto field = [&](const std::string &key) {
    size_t at = header.find("'" + key + "': ");
    if (at == std::string::npos)
      return std::string();
    at += key.size() + 4;
    size_t end = header.find_first_of(
        ",}", header[at] == '(' ? header.find(')', at) : at);
    return header.substr(at, end - at);
  };
  out.descr = field("descr");
  out.order = field("fortran_order");
  std::string shape = field("shape");
  for (size_t i = 1; i < shape.size();) {
    size_t end = shape.find_first_of(",)", i);
    std::string num = shape.substr(i, end - i);
    if (num.find_first_not_of(' ') != std::string::npos)
      out.shape.push_back(std::stoll(num));
    i = end + 1;
  }
  out.dataOffset = 10 + len;
  size_t count = 1;
  for (int64_t d : out.shape)
    count *= size_t(d);
  if (bytes.size() - out.dataOffset != count * sizeof(float)) {
    error = "payload size does not match the shape";
    return false;
  }
  out.data.resize(count);
  if (count)
    std::memcpy(out.data.data(), bytes.data() + out.dataOffset,
                count * sizeof(float));
  return true;
}

} // namespace

TEST(Npy, RoundTrip) {
  std::vector<float> v(3 * 5);
  for (size_t i = 0; i < v.size(); ++i)
    v[i] = float(i) * 0.5f - 3.0f;
  std::string bytes = ds::npyFloat32(v.data(), 3, 5);
  Parsed p;
  std::string err;
  ASSERT_TRUE(parseNpy(bytes, p, err)) << err;
  EXPECT_EQ(p.descr, "'<f4'");
  EXPECT_EQ(p.order, "False");
  EXPECT_EQ(p.shape, (std::vector<int64_t>{3, 5}));
  EXPECT_EQ(p.data, v);
  // numpy aligns the payload to 64 bytes.
  EXPECT_EQ(p.dataOffset % 64, 0u);
}

TEST(Npy, ZeroRowsAndWideHeaders) {
  std::string bytes = ds::npyFloat32(nullptr, 0, 129280);
  Parsed p;
  std::string err;
  ASSERT_TRUE(parseNpy(bytes, p, err)) << err;
  EXPECT_EQ(p.shape, (std::vector<int64_t>{0, 129280}));
  EXPECT_TRUE(p.data.empty());
  EXPECT_EQ(p.dataOffset % 64, 0u);

  std::vector<float> big(size_t(1234567) * 2, 1.5f);
  bytes = ds::npyFloat32(big.data(), 1234567, 2);
  p = Parsed();
  ASSERT_TRUE(parseNpy(bytes, p, err)) << err;
  EXPECT_EQ(p.shape, (std::vector<int64_t>{1234567, 2}));
  EXPECT_EQ(p.dataOffset % 64, 0u);
  EXPECT_EQ(p.data.back(), 1.5f);
}
