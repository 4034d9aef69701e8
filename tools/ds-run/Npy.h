//===- Npy.h - float32 .npy files -------------------------------*- C++ -*-===//
//
// The logits dump is read by numpy (np.load) in the parity tests: NPY
// format 1.0, little-endian float32, C order.
//
//===----------------------------------------------------------------------===//
#ifndef DS_RUN_NPY_H
#define DS_RUN_NPY_H

#include <cstdint>
#include <string>

namespace ds {

/// The bytes of a .npy file holding `data` as a [rows, cols] float32 array.
std::string npyFloat32(const float *data, int64_t rows, int64_t cols);

} // namespace ds

#endif // DS_RUN_NPY_H
