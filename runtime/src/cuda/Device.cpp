//===- Device.cpp - a model and its sessions on the GPU -------------------===//
#include "cuda/Device.h"

#include <algorithm>

using namespace dsrt::cuda;

DeviceBuffer::~DeviceBuffer() {
  if (p)
    g->drv.cuMemFree(p);
}

DeviceBuffer &DeviceBuffer::operator=(DeviceBuffer &&o) noexcept {
  if (this != &o) {
    if (p)
      g->drv.cuMemFree(p);
    g = o.g;
    p = o.p;
    bytes = o.bytes;
    o.p = 0;
    o.bytes = 0;
  }
  return *this;
}

std::string DeviceBuffer::allocate(const Gpu &gpu, size_t n) {
  if (p)
    gpu.drv.cuMemFree(p);
  p = 0;
  bytes = 0;
  g = &gpu;
  CUresult r = gpu.drv.cuMemAlloc(&p, std::max<size_t>(n, 1));
  if (r != CUDA_SUCCESS) {
    p = 0;
    return gpu.describe("cuMemAlloc", r) + " (" + std::to_string(n) +
           " bytes)";
  }
  bytes = n;
  return "";
}

Arena::~Arena() {
  for (CUdeviceptr o : overflow)
    g.drv.cuMemFree(o);
  if (base)
    g.drv.cuMemFree(base);
}

std::string Arena::reset() {
  used = 0;
  if (overflow.empty())
    return "";
  for (CUdeviceptr o : overflow)
    g.drv.cuMemFree(o);
  overflow.clear();
  if (base)
    g.drv.cuMemFree(base);
  base = 0;
  capacity = peak + peak / 4;
  ++driverAllocations;
  CUresult r = g.drv.cuMemAlloc(&base, capacity);
  if (r != CUDA_SUCCESS) {
    base = 0;
    capacity = 0;
    return g.describe("cuMemAlloc", r) + " (activation arena of " +
           std::to_string(peak) + " bytes)";
  }
  return "";
}

void *Arena::allocate(size_t bytes, std::string &error) {
  // 256-byte alignment: what cudaMalloc guarantees and vector loads need.
  size_t n = (std::max<size_t>(bytes, 1) + 255) & ~size_t(255);
  if (used + n <= capacity) {
    void *p = reinterpret_cast<void *>(base + used);
    used += n;
    peak = std::max(peak, used);
    return p;
  }
  CUdeviceptr p = 0;
  ++driverAllocations;
  CUresult r = g.drv.cuMemAlloc(&p, n);
  if (r != CUDA_SUCCESS) {
    error = g.describe("cuMemAlloc", r) + " (" + std::to_string(n) +
            " bytes of activations)";
    return nullptr;
  }
  overflow.push_back(p);
  used += n;
  peak = std::max(peak, used);
  return reinterpret_cast<void *>(p);
}

DeviceSession::~DeviceSession() {
  if (blas && cublasApi)
    cublasApi->destroy(blas);
  if (stream)
    g.drv.cuStreamDestroy(stream);
}

Execution *&Execution::current() {
  static thread_local Execution *e = nullptr;
  return e;
}

std::string &dsrt::cuda::moduleLoadError() {
  static std::string e;
  return e;
}
