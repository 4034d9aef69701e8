//===- Npy.cpp - float32 .npy files ---------------------------------------===//
#include "Npy.h"

using namespace ds;

std::string ds::npyFloat32(const float *data, int64_t rows, int64_t cols) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
                       std::to_string(rows) + ", " + std::to_string(cols) +
                       "), }";
  // Magic (6) + version (2) + header length (2) + header + '\n' is padded
  // with spaces to a multiple of 64, as numpy writes it (data aligned).
  size_t unpadded = 10 + header.size() + 1;
  header += std::string((64 - unpadded % 64) % 64, ' ') + "\n";
  std::string out = "\x93NUMPY";
  out += char(1);
  out += char(0);
  out += char(header.size() & 0xFF); // little-endian u16
  out += char((header.size() >> 8) & 0xFF);
  out += header;
  if (rows > 0 && cols > 0)
    out.append(reinterpret_cast<const char *>(data),
               size_t(rows * cols) * sizeof(float));
  return out;
}
