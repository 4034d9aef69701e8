/* A stand-in libcuda.so.1 for testing the runtime on machines without a
 * GPU. Loaded through DSRT_CUDA_DRIVER. Its prototypes come from the
 * runtime's own list (runtime/src/cuda/CudaSymbols.inc): a definition that
 * drifts from what the runtime calls does not compile.
 *
 * Behaviour from the environment (read at each call):
 *   FAKE_CUDA_CC unset: cuInit fails with CUDA_ERROR_NO_DEVICE (100);
 *   FAKE_CUDA_CC=80:    one device "Fake GPU" of compute capability 8.0,
 *                       host memory as device memory;
 *   FAKE_CUDA_LOAD=1:   modules load and kernels "launch" (nothing runs;
 *                       launches are counted); otherwise cuModuleLoadData
 *                       answers CUDA_ERROR_NO_BINARY_FOR_GPU;
 *   FAKE_CUDA_FAIL=kind:N  the N-th call (from the last fakeCudaReset) of
 *                       kind alloc (OUT_OF_MEMORY), launch, copy (HtoD,
 *                       DtoH, DtoD) or sync (LAUNCH_FAILED) fails;
 *                       kind:+N counts from the first kernel launch (so
 *                       the weights' upload does not move the target).
 * fakeCudaCount(kind) tells tests how many calls of a kind were made
 * (alloc, free, launch, copy, sync, memset, getfunction, unload; dtoh
 * counts the device-to-host copies among the copies).
 *   FAKE_CUDA_STREAM_HANG=1: cuStreamQuery never reports completion.
 *   FAKE_CUDA_COUNTS=FILE: the counts are written there at exit. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
/* The driver's handle types, as the runtime declares them. */
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;

#define DSRT_CU_SYM(field, symbol, params) CUresult symbol params;
#include "cuda/CudaSymbols.inc"

#define OK 0
#define OUT_OF_MEMORY 2
#define NO_DEVICE 100
#define NO_BINARY 209
#define NOT_FOUND 500
#define LAUNCH_FAILED 719
#define NOT_SUPPORTED 801

enum { ALLOC, FREE, LAUNCH, COPY, SYNC, MEMSET, GETFUNCTION, UNLOAD, DTOH, KINDS };
static const char *const kindNames[KINDS] = {
    "alloc", "free", "launch", "copy", "sync", "memset", "getfunction", "unload",
    "dtoh"};
static long counts[KINDS];
/* counts[] when the first kernel was launched; launched: whether it was. */
static long countsAtLaunch[KINDS];
static int launched;
static char lastKernel[256];

void fakeCudaReset(void) {
  memset(counts, 0, sizeof(counts));
  launched = 0;
  lastKernel[0] = 0;
}
long fakeCudaCount(const char *kind) {
  for (int k = 0; k < KINDS; ++k)
    if (strcmp(kind, kindNames[k]) == 0)
      return counts[k];
  return -1;
}
const char *fakeCudaLastKernel(void) { return lastKernel; }

/* FAKE_CUDA_COUNTS=FILE: the counts, one "kind N" a line, written at exit
 * (test/tools/decode_waits.py reads them). */
__attribute__((destructor)) static void writeCounts(void) {
  const char *path = getenv("FAKE_CUDA_COUNTS");
  FILE *f = path && *path ? fopen(path, "w") : NULL;
  if (!f)
    return;
  for (int k = 0; k < KINDS; ++k)
    fprintf(f, "%s %ld\n", kindNames[k], counts[k]);
  fclose(f);
}

static int cc(void) {
  const char *v = getenv("FAKE_CUDA_CC");
  return v ? atoi(v) : 0;
}

/* Counts a call of `kind`; nonzero when FAKE_CUDA_FAIL says it fails. */
static int fails(int kind) {
  long n = ++counts[kind];
  if (kind == LAUNCH && !launched) {
    launched = 1;
    memcpy(countsAtLaunch, counts, sizeof(counts));
    countsAtLaunch[LAUNCH] = 0; /* this launch is +1 */
  }
  const char *f = getenv("FAKE_CUDA_FAIL");
  size_t len = strlen(kindNames[kind]);
  if (!f || strncmp(f, kindNames[kind], len) != 0 || f[len] != ':')
    return 0;
  if (f[len + 1] == '+')
    return launched && atol(f + len + 2) == n - countsAtLaunch[kind];
  return atol(f + len + 1) == n;
}

CUresult cuInit(unsigned f) { (void)f; return cc() ? OK : NO_DEVICE; }
CUresult cuDriverGetVersion(int *v) { *v = 13000; return OK; }
CUresult cuDeviceGetCount(int *n) { *n = cc() ? 1 : 0; return OK; }
CUresult cuDeviceGet(CUdevice *d, int i) { *d = i; return OK; }
CUresult cuDeviceGetName(char *s, int n, CUdevice d) {
  (void)d;
  strncpy(s, "Fake GPU", (size_t)n);
  return OK;
}
CUresult cuDeviceGetAttribute(int *v, int a, CUdevice d) {
  (void)d;
  *v = a == 75 ? cc() / 10 : a == 76 ? cc() % 10 : 0;
  return OK;
}
CUresult cuDevicePrimaryCtxRetain(CUcontext *c, CUdevice d) { (void)d; *c = (CUcontext)1; return OK; }
CUresult cuCtxSetCurrent(CUcontext c) { (void)c; return OK; }
CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t n) {
  *p = 0;
  if (fails(ALLOC))
    return OUT_OF_MEMORY;
  /* 256-byte aligned, like the driver's allocations. */
  size_t rounded = (n + 255) & ~(size_t)255;
  void *m = aligned_alloc(256, rounded ? rounded : 256);
  if (m)
    memset(m, 0, rounded);
  *p = (CUdeviceptr)m;
  return m ? OK : OUT_OF_MEMORY;
}
CUresult cuMemFree_v2(CUdeviceptr p) { ++counts[FREE]; free((void *)p); return OK; }
CUresult cuMemGetInfo_v2(size_t *f, size_t *t) { *f = *t = (size_t)1 << 34; return OK; }
CUresult cuMemcpyAsync(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st) {
  (void)st;
  if (fails(COPY))
    return LAUNCH_FAILED;
  memcpy((void *)d, (void *)s, n);
  return OK;
}
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr d, const void *s, size_t n, CUstream st) {
  (void)st;
  if (fails(COPY))
    return LAUNCH_FAILED;
  memcpy((void *)d, s, n);
  return OK;
}
CUresult cuMemcpyDtoHAsync_v2(void *d, CUdeviceptr s, size_t n, CUstream st) {
  (void)st;
  ++counts[DTOH];
  if (fails(COPY))
    return LAUNCH_FAILED;
  memcpy(d, (void *)s, n);
  return OK;
}
CUresult cuMemsetD32Async(CUdeviceptr d, unsigned v, size_t n, CUstream st) {
  (void)st;
  ++counts[MEMSET];
  for (size_t i = 0; i < n; ++i) ((unsigned *)d)[i] = v;
  return OK;
}
CUresult cuMemsetD16Async(CUdeviceptr d, unsigned short v, size_t n, CUstream st) {
  (void)st;
  ++counts[MEMSET];
  for (size_t i = 0; i < n; ++i) ((unsigned short *)d)[i] = v;
  return OK;
}
CUresult cuStreamCreate(CUstream *s, unsigned f) { (void)f; *s = (CUstream)2; return OK; }
CUresult cuStreamDestroy_v2(CUstream s) { (void)s; return OK; }
CUresult cuStreamSynchronize(CUstream s) { (void)s; return fails(SYNC) ? LAUNCH_FAILED : OK; }

/* Entry points only the NCCL communicator loads (runtime/src/comm), outside
 * the runtime's symbol list. FAKE_CUDA_STREAM_HANG=1: work never completes
 * (CUDA_ERROR_NOT_READY), as when a collective waits for a peer that died. */
CUresult cuStreamQuery(CUstream s) {
  (void)s;
  return getenv("FAKE_CUDA_STREAM_HANG") ? 600 : OK;
}
CUresult cuMemcpyHtoD_v2(CUdeviceptr d, const void *s, size_t n) {
  memcpy((void *)(uintptr_t)d, s, n); return OK;
}
CUresult cuMemcpyDtoH_v2(void *d, CUdeviceptr s, size_t n) {
  memcpy(d, (const void *)(uintptr_t)s, n); return OK;
}

/* A loaded "module" is a static marker; a function is its own name. */
static char moduleMarker;
CUresult cuModuleLoadData(CUmodule *m, const void *d) {
  (void)d;
  const char *load = getenv("FAKE_CUDA_LOAD");
  if (!load || strcmp(load, "1") != 0)
    return NO_BINARY;
  *m = (CUmodule)&moduleMarker;
  return OK;
}
CUresult cuModuleUnload(CUmodule m) { (void)m; ++counts[UNLOAD]; return OK; }
CUresult cuModuleGetFunction(CUfunction *f, CUmodule m, const char *n) {
  ++counts[GETFUNCTION];
  if (m != (CUmodule)&moduleMarker)
    return NOT_SUPPORTED;
  if (strcmp(n, "missing_kernel") == 0)
    return NOT_FOUND;
  /* Leaked on purpose: a function handle lives as long as its module. */
  *f = (CUfunction)strdup(n);
  return OK;
}
CUresult cuLaunchKernel(CUfunction f, unsigned a, unsigned b, unsigned c, unsigned d,
                        unsigned e, unsigned g, unsigned s, CUstream st, void **p,
                        void **x) {
  (void)a; (void)b; (void)c; (void)d; (void)e; (void)g; (void)s;
  (void)st; (void)p; (void)x;
  if (fails(LAUNCH))
    return LAUNCH_FAILED;
  strncpy(lastKernel, (const char *)f, sizeof(lastKernel) - 1);
  /* The runtime's own kernel (runtime/src/cuda/Convert.cpp) is emulated,
   * so tests of the bf16 GEMM path see real bf16 activations. */
  if (strcmp((const char *)f, "dsrt_f32_to_bf16") == 0) {
    uint16_t *dst = *(uint16_t **)p[0];
    const uint32_t *src = *(const uint32_t **)p[1];
    unsigned long long n = *(unsigned long long *)p[2];
    for (unsigned long long i = 0; i < n; ++i) {
      uint32_t u = src[i]; /* round to nearest even, as cvt.rn.bf16.f32 */
      dst[i] = (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
    }
  }
  /* The runtime's expert-row pointer kernel, as its PTX computes it. */
  if (strcmp((const char *)f, "dsrt_expert_rows") == 0) {
    uint64_t *ptrs = *(uint64_t **)p[0];
    const int32_t *off = *(const int32_t **)p[1];
    uint64_t experts = *(uint64_t *)p[2], rows = *(uint64_t *)p[3];
    uint64_t w = *(uint64_t *)p[4], ws = *(uint64_t *)p[5];
    uint64_t x = *(uint64_t *)p[6], xs = *(uint64_t *)p[7];
    uint64_t y = *(uint64_t *)p[8], ys = *(uint64_t *)p[9];
    for (uint64_t r = 0; r < rows; ++r) {
      uint64_t e = 0;
      for (uint64_t i = 0; i < experts; ++i)
        if ((int64_t)off[i + 1] <= (int64_t)r)
          e = i + 1;
      if (e > experts - 1)
        e = experts - 1;
      ptrs[r] = w + e * ws;
      ptrs[rows + r] = x + r * xs;
      ptrs[2 * rows + r] = y + r * ys;
    }
  }
  return OK;
}
CUresult cuGetErrorName(CUresult r, const char **s) {
  *s = r == NO_DEVICE ? "CUDA_ERROR_NO_DEVICE"
       : r == OUT_OF_MEMORY ? "CUDA_ERROR_OUT_OF_MEMORY"
       : r == NO_BINARY ? "CUDA_ERROR_NO_BINARY_FOR_GPU"
       : r == NOT_FOUND ? "CUDA_ERROR_NOT_FOUND"
       : r == LAUNCH_FAILED ? "CUDA_ERROR_LAUNCH_FAILED"
       : r == NOT_SUPPORTED ? "CUDA_ERROR_NOT_SUPPORTED"
                            : "CUDA_ERROR_UNKNOWN";
  return OK;
}
