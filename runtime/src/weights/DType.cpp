//===- DType.cpp - safetensors element types ------------------------------===//
#include "weights/DType.h"

#include <cmath>
#include <cstring>
#include <limits>

using namespace dsrt;

namespace {
struct Entry {
  DType type;
  const char *name;
  size_t size;
};
constexpr Entry kTable[] = {
    {DType::F64, "F64", 8},   {DType::F32, "F32", 4},
    {DType::F16, "F16", 2},   {DType::BF16, "BF16", 2},
    {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E5M2, "F8_E5M2", 1},
    {DType::I64, "I64", 8},   {DType::I32, "I32", 4},
    {DType::I16, "I16", 2},   {DType::I8, "I8", 1},
    {DType::U8, "U8", 1},     {DType::BOOL, "BOOL", 1},
};
} // namespace

bool dsrt::parseDType(const std::string &name, DType &out) {
  for (const Entry &e : kTable)
    if (name == e.name) {
      out = e.type;
      return true;
    }
  return false;
}

const char *dsrt::dtypeName(DType t) {
  for (const Entry &e : kTable)
    if (e.type == t)
      return e.name;
  return "?";
}

size_t dsrt::dtypeSize(DType t) {
  for (const Entry &e : kTable)
    if (e.type == t)
      return e.size;
  return 0;
}

bool dsrt::isSupportedWeightDType(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16 ||
         t == DType::F8_E4M3;
}

float dsrt::bf16ToF32(uint16_t v) {
  uint32_t bits = uint32_t(v) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float dsrt::f16ToF32(uint16_t v) {
  uint32_t sign = (v >> 15) & 1, exp = (v >> 10) & 0x1F, mant = v & 0x3FF;
  float out;
  if (exp == 0)
    out = std::ldexp(float(mant), -24); // subnormal (or zero)
  else if (exp == 31)
    out = mant ? std::numeric_limits<float>::quiet_NaN()
               : std::numeric_limits<float>::infinity();
  else
    out = std::ldexp(float(mant | 0x400), int(exp) - 25);
  return sign ? -out : out;
}

float dsrt::e4m3ToF32(uint8_t v) {
  uint32_t sign = v >> 7, exp = (v >> 3) & 0xF, mant = v & 0x7;
  float out;
  if (exp == 0xF && mant == 0x7)
    out = std::numeric_limits<float>::quiet_NaN();
  else if (exp == 0)
    out = std::ldexp(float(mant), -9); // subnormal: mant/8 * 2^-6
  else
    out = std::ldexp(float(mant | 0x8), int(exp) - 10);
  return sign ? -out : out;
}

uint16_t dsrt::f32ToBF16(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, 4);
  if (std::isnan(v))
    return uint16_t((bits >> 16) | 0x40);
  uint32_t rounding = 0x7FFF + ((bits >> 16) & 1);
  return uint16_t((bits + rounding) >> 16);
}
