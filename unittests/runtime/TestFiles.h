//===- TestFiles.h - temporary files for runtime tests ----------*- C++ -*-===//
#ifndef DSRT_UNITTESTS_TESTFILES_H
#define DSRT_UNITTESTS_TESTFILES_H

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace dsrt::testing {

/// A fresh directory under /tmp, removed with its files at scope exit.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/dsrt-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
  std::string file(const std::string &name) const { return path + "/" + name; }
};

inline void writeBytes(const std::string &path, const std::string &bytes) {
  FILE *f = std::fopen(path.c_str(), "wb");
  std::fwrite(bytes.data(), 1, bytes.size(), f);
  std::fclose(f);
}

/// header JSON + data -> safetensors bytes (header length as given).
inline std::string safetensors(const std::string &header,
                               const std::string &data) {
  uint64_t n = header.size();
  std::string out(reinterpret_cast<const char *>(&n), 8);
  return out + header + data;
}

inline std::string floats(const std::vector<float> &v) {
  return std::string(reinterpret_cast<const char *>(v.data()), v.size() * 4);
}

} // namespace dsrt::testing

#endif
