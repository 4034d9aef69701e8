//===- CacheDecode.h - FP8 latent cache rows to f32 -------------*- C++ -*-===//
//
// The FP8 latent cache (FlashMLA's layout, lib/Conversion/CacheCodec) keeps
// a row's latent as e4m3 bytes with one f32 scale per `group` of them.
// Attention on the CPU decodes each row it reads once into f32 scratch
// through the instruction set's e4m3 kernel (KernelSet::decodeFp8, chosen
// at run time like the GEMMs' and forced by $DSRT_CPU_ISA), then its dot
// products run over f32 as for an f32 cache. The compiler passes the
// addresses of the codes and of the scales: the row layout stays the
// compiler's (CacheLayout).
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_CPU_CACHEDECODE_H
#define DSRT_CPU_CACHEDECODE_H

#include "cpu/Kernels.h"

#include <cstdint>

namespace dsrt::cpu {

/// dst[i] = e4m3(codes[i]) * scales[i / group], i < n; `scales` are f32
/// bytes of the row (possibly unaligned).
void decodeCacheFp8(const KernelSet &ks, const uint8_t *codes,
                    const uint8_t *scales, int64_t n, int64_t group,
                    float *dst);

} // namespace dsrt::cpu

#endif // DSRT_CPU_CACHEDECODE_H
