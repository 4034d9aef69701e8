//===- CacheDecode.cpp - FP8 latent cache rows to f32 ---------------------===//
#include "cpu/CacheDecode.h"

#include "cpu/Isa.h"
#include "cpu/TileChoice.h"

#include <cstring>

using namespace dsrt::cpu;

void dsrt::cpu::decodeCacheFp8(const KernelSet &ks, const uint8_t *codes,
                               const uint8_t *scales, int64_t n, int64_t group,
                               float *dst) {
  for (int64_t g = 0; g * group < n; ++g) {
    float scale;
    std::memcpy(&scale, scales + 4 * g, sizeof(float));
    int64_t first = g * group;
    int64_t count = n - first < group ? n - first : group;
    ks.decodeFp8(codes + first, count, scale, dst + first);
  }
}

// Called by generated attention kernels once per cache row they read
// (convert-ds-to-loops, cache-decode-calls): raw pointers, no descriptors.
extern "C" __attribute__((visibility("default"))) void
dsrt_cache_decode_fp8(const uint8_t *codes, const uint8_t *scales, int64_t n,
                      int64_t group, float *dst) {
  static const KernelSet &ks = activeKernels();
  decodeCacheFp8(ks, codes, scales, n, group, dst);
}
