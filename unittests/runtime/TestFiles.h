//===- TestFiles.h - temporary files for runtime tests ----------*- C++ -*-===//
#ifndef DSRT_UNITTESTS_TESTFILES_H
#define DSRT_UNITTESTS_TESTFILES_H

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ftw.h>
#include <string>
#include <unistd.h>
#include <vector>

namespace dsrt::testing {

/// A fresh directory under /tmp, removed with its files at scope exit.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/dsrt-test-XXXXXX";
    const char *p = mkdtemp(tmpl);
    path = p ? p : "/nonexistent-dsrt-test-dir";
  }
  ~TempDir() {
    nftw(
        path.c_str(),
        [](const char *p, const struct stat *, int, struct FTW *) {
          return ::remove(p);
        },
        16, FTW_DEPTH | FTW_PHYS);
  }
  std::string file(const std::string &name) const { return path + "/" + name; }
};

inline void writeBytes(const std::string &path, const std::string &bytes) {
  FILE *f = std::fopen(path.c_str(), "wb");
  if (!f)
    return;
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
}

/// header JSON + data -> safetensors bytes, for headers written by hand
/// (possibly malformed).
inline std::string safetensors(const std::string &header,
                               const std::string &data) {
  uint64_t n = header.size();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i)
    out[i] = char((n >> (8 * i)) & 0xFF); // little-endian on any host
  return out + header + data;
}

template <typename T> std::string bytesOf(const std::vector<T> &v) {
  return std::string(reinterpret_cast<const char *>(v.data()),
                     v.size() * sizeof(T));
}
inline std::string floats(const std::vector<float> &v) { return bytesOf(v); }

/// One tensor of a well-formed file.
struct Tensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

inline std::string jsonShape(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

/// A well-formed safetensors file: the tensors back to back, in order.
inline std::string safetensorsOf(const std::vector<Tensor> &tensors) {
  std::string header = "{", data;
  for (const Tensor &t : tensors) {
    size_t begin = data.size();
    data += t.bytes;
    header += std::string(header.size() > 1 ? ", " : "") + "\"" + t.name +
              "\": {\"dtype\": \"" + t.dtype +
              "\", \"shape\": " + jsonShape(t.shape) + ", \"data_offsets\": [" +
              std::to_string(begin) + ", " + std::to_string(data.size()) + "]}";
  }
  return safetensors(header + "}", data);
}

} // namespace dsrt::testing

#endif // DSRT_UNITTESTS_TESTFILES_H
