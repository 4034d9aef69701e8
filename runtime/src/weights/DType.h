//===- DType.h - safetensors element types ----------------------*- C++ -*-===//
#ifndef DSRT_WEIGHTS_DTYPE_H
#define DSRT_WEIGHTS_DTYPE_H

#include <cstddef>
#include <cstdint>
#include <string>

namespace dsrt {

enum class DType { F64, F32, F16, BF16, F8_E4M3, F8_E5M2, I64, I32, I16, I8, U8, BOOL };

/// From the safetensors spelling ("BF16"); false for unknown names.
bool parseDType(const std::string &name, DType &out);
const char *dtypeName(DType t);
size_t dtypeSize(DType t);
/// The dtypes model weights may have (F32, F16, BF16, F8_E4M3).
bool isSupportedWeightDType(DType t);

float bf16ToF32(uint16_t v);
float f16ToF32(uint16_t v);
/// e4m3fn: bias 7, no infinities, 0x7F/0xFF are NaN, max 448.
float e4m3ToF32(uint8_t v);
/// Round to nearest even.
uint16_t f32ToBF16(float v);

} // namespace dsrt

#endif // DSRT_WEIGHTS_DTYPE_H
