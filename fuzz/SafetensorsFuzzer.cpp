//===- SafetensorsFuzzer.cpp - fuzz the safetensors header parser ---------===//
//
// Each input is one .safetensors file: opened, every tensor converted to
// f32 (so offsets and sizes the parser accepted are exercised), and checked
// against a requirement list.
//
//===----------------------------------------------------------------------===//
#include "OneLineCheck.h"
#include "weights/Checkpoint.h"

#include <cstdint>
#include <cstdio>
#include <string>
#include <unistd.h>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static std::string dir = [] {
    char tmpl[] = "/tmp/ds-fuzz-st-XXXXXX";
    return std::string(mkdtemp(tmpl));
  }();
  std::string path = dir + "/model.safetensors";
  FILE *f = std::fopen(path.c_str(), "wb");
  if (!f)
    return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  std::string error;
  auto ckpt = dsrt::Checkpoint::open(dir, error);
  if (!ckpt) {
    requireOneLine(error);
    return 0;
  }
  for (const std::string &name : ckpt->names()) {
    const dsrt::TensorView *t = ckpt->find(name);
    if (t->numElements() > (1 << 20))
      continue;
    std::vector<float> out(static_cast<size_t>(t->numElements()));
    if (!ckpt->readF32(name, out.data(), error))
      requireOneLine(error);
  }
  for (const std::string &problem :
       dsrt::validateCheckpoint(*ckpt, {{"a", {2, 2}}, {"w.weight", {4, 4}}}))
    requireOneLine(problem); // each problem is a line of its own
  return 0;
}
