//===- ArtifactFuzzer.cpp - fuzz the artifact reader and manifest ---------===//
#include "OneLineCheck.h"
#include "artifact/ArtifactFile.h"

#include <cstdint>
#include <cstdio>
#include <string>
#include <unistd.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string bytes(reinterpret_cast<const char *>(data), size);
  // The manifest parser alone, then the whole file with a valid envelope
  // around the input (so the checksum does not hide the manifest).
  dsrt::Manifest m;
  std::string error;
  if (!dsrt::parseManifest(bytes, m, error))
    requireOneLine(error);

  static std::string path = [] {
    char tmpl[] = "/tmp/ds-fuzz-art-XXXXXX";
    int fd = mkstemp(tmpl);
    close(fd);
    return std::string(tmpl);
  }();
  std::string file = "DSARTIFA";
  uint32_t version = 1, flags = 0;
  uint64_t ms = size, os = 0;
  uint64_t h = dsrt::fnv1a64(14695981039346656037ULL, bytes.data(), size);
  file.append(reinterpret_cast<char *>(&version), 4);
  file.append(reinterpret_cast<char *>(&flags), 4);
  file.append(reinterpret_cast<char *>(&ms), 8);
  file.append(reinterpret_cast<char *>(&os), 8);
  file.append(reinterpret_cast<char *>(&h), 8);
  file += bytes;
  for (const std::string &content : {file, bytes}) {
    FILE *f = std::fopen(path.c_str(), "wb");
    if (!f)
      return 0;
    std::fwrite(content.data(), 1, content.size(), f);
    std::fclose(f);
    dsrt::ArtifactFile a;
    if (!dsrt::readArtifact(path, a, error))
      requireOneLine(error);
  }
  return 0;
}
