//===- Device.cpp - a model and its sessions on the GPU -------------------===//
#include "cuda/Device.h"

#include <algorithm>
#include <cstdlib>

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
  for (auto [o, n] : overflow)
    g.drv.cuMemFree(o); // nothing to report to in a destructor
  if (base)
    g.drv.cuMemFree(base);
}

std::string Arena::reset() {
  used = 0;
  footprint = 0;
  stack.clear();
  if (overflow.empty())
    return "";
  for (auto [o, n] : overflow)
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
  Entry entry{0, n, true, false};
  if (used + n <= capacity) {
    entry.p = base + used;
    used += n;
  } else {
    ++driverAllocations;
    CUresult r = g.drv.cuMemAlloc(&entry.p, n);
    if (r != CUDA_SUCCESS) {
      error = g.describe("cuMemAlloc", r) + " (" + std::to_string(n) +
              " bytes of activations)";
      return nullptr;
    }
    entry.inBlock = false;
    overflow.push_back({entry.p, n});
  }
  stack.push_back(entry);
  footprint += n;
  peak = std::max(peak, footprint);
  return reinterpret_cast<void *>(entry.p);
}

void Arena::release(void *p) {
  auto at = reinterpret_cast<CUdeviceptr>(p);
  auto it = std::find_if(stack.rbegin(), stack.rend(),
                         [&](const Entry &e) { return e.p == at; });
  if (it == stack.rend() || it->released)
    return;
  it->released = true;
  while (!stack.empty() && stack.back().released) {
    const Entry &top = stack.back();
    footprint -= top.bytes;
    // Overflow memory stays until the next reset (the stream may still
    // use it and the block replaces it then).
    if (top.inBlock)
      used = top.p - base;
    stack.pop_back();
  }
}

bool Arena::contains(const void *p) const {
  auto at = reinterpret_cast<CUdeviceptr>(p);
  if (base && at >= base && at < base + capacity)
    return true;
  return std::any_of(overflow.begin(), overflow.end(), [&](const auto &o) {
    return at >= o.first && at < o.first + o.second;
  });
}

bool DeviceSession::isDevice(const void *p) const {
  auto at = reinterpret_cast<CUdeviceptr>(p);
  for (const DeviceBuffer *b : {&cache, &tokens, &positions, &logits, &staging,
                                  &rowPointers})
    if (b->ptr() && at >= b->ptr() && at < b->ptr() + b->size())
      return true;
  return arena.contains(p);
}

/// `b` holding at least `bytes`, grown (doubling) after the stream drains:
/// work already queued may still read the old buffer.
static void *grown(const Gpu &g, CUstream stream, DeviceBuffer &b,
                   size_t bytes, const char *what, std::string &error) {
  if (b.size() >= bytes && b.ptr())
    return b.as<void>();
  if (Execution *e = Execution::current();
      e && e->refuseHostWait((std::string("growing the ") + what).c_str())) {
    error = e->error;
    return nullptr;
  }
  CUresult r = g.drv.cuStreamSynchronize(stream);
  if (r != CUDA_SUCCESS) {
    error = g.describe("cuStreamSynchronize", r) + " (before growing the " +
            what + ")";
    return nullptr;
  }
  error = b.allocate(g, std::max(bytes, b.size() * 2));
  return error.empty() ? b.as<void>() : nullptr;
}

void *DeviceSession::stagingFor(size_t bytes, std::string &error) {
  return grown(g, stream, staging, bytes, "bf16 staging buffer", error);
}

void *DeviceSession::rowPointersFor(size_t bytes, std::string &error) {
  return grown(g, stream, rowPointers, bytes, "expert row pointers", error);
}

DeviceSession::~DeviceSession() {
  for (auto &[shape, graph] : graphs)
    if (graph.exec && g.drv.cuGraphExecDestroy)
      g.drv.cuGraphExecDestroy(graph.exec);
  if (blas && cublasApi)
    cublasApi->destroy(blas);
  if (stream)
    g.drv.cuStreamDestroy(stream);
}

std::string dsrt::cuda::openDeviceSession(const Gpu &g,
                                          const std::string &what,
                                          size_t cacheBytes, size_t ioBytes,
                                          std::unique_ptr<DeviceSession> &out) {
  CUresult r = g.bind();
  if (r != CUDA_SUCCESS)
    return g.describe("cuCtxSetCurrent", r);
  auto d = std::make_unique<DeviceSession>(g);
  r = g.drv.cuStreamCreate(&d->stream, 0);
  if (r != CUDA_SUCCESS)
    return g.describe("cuStreamCreate", r);
  std::string error;
  d->cublasApi = cublas(error);
  if (!d->cublasApi)
    return error;
  if (int st = d->cublasApi->create(&d->blas))
    return "cublasCreate failed with status " + std::to_string(st);
  if (int st = d->cublasApi->setStream(d->blas, d->stream))
    return "cublasSetStream failed with status " + std::to_string(st);
  for (auto [buf, bytes] : {std::pair{&d->cache, cacheBytes},
                            std::pair{&d->tokens, ioBytes},
                            std::pair{&d->positions, ioBytes}}) {
    error = buf->allocate(g, bytes);
    if (!error.empty())
      return what + " does not fit on " + g.name + ": " + error;
  }
  // Zeroed like the CPU cache: stale rows are never read, but a bf16 NaN
  // pattern would be a hazard for vector kernels reading a whole tile.
  r = g.drv.cuMemsetD32Async(d->cache.ptr(), 0, cacheBytes / 4, d->stream);
  if (r == CUDA_SUCCESS)
    r = g.drv.cuStreamSynchronize(d->stream);
  if (r != CUDA_SUCCESS)
    return g.describe("cuMemsetD32", r);
  out = std::move(d);
  return "";
}

Execution *&Execution::current() {
  static thread_local Execution *e = nullptr;
  return e;
}

bool dsrt::cuda::syncEveryCall() {
  static const bool on = [] {
    const char *v = std::getenv("DSRT_CUDA_SYNC");
    return v && *v && std::string(v) != "0";
  }();
  return on;
}

void dsrt::cuda::syncForBringUp(const std::string &what) {
  Execution *e = Execution::current();
  if (!syncEveryCall() || !e || !e->session || e->failed())
    return;
  const DeviceSession &s = *e->session;
  CUresult r = s.g.drv.cuStreamSynchronize(s.stream);
  if (r != CUDA_SUCCESS)
    e->fail(what + ": " + s.g.describe("cuStreamSynchronize", r));
}

std::string &dsrt::cuda::moduleLoadError() {
  // Never destroyed: module unloads may run after static destructors.
  static std::string *e = new std::string;
  return *e;
}
