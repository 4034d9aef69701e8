/* A stand-in libcuda.so.1 for testing the runtime's no-device paths and
 * its checks before any kernel runs, on machines without a GPU. Loaded
 * through DSRT_CUDA_DRIVER. Behaviour from the environment:
 *   FAKE_CUDA_CC unset: cuInit fails with CUDA_ERROR_NO_DEVICE (100);
 *   FAKE_CUDA_CC=80:    one device "Fake GPU" of compute capability 8.0,
 *                       host memory as device memory, and no code loads
 *                       (cuModuleLoadData: CUDA_ERROR_NO_BINARY_FOR_GPU). */
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
/* The driver's handle types, as the runtime declares them (the function
 * types must match exactly: UBSan checks calls through pointers). */
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
#define OK 0
#define NO_DEVICE 100
#define NO_BINARY 209
#define NOT_SUPPORTED 801

static int cc(void) {
  const char *v = getenv("FAKE_CUDA_CC");
  return v ? atoi(v) : 0;
}

CUresult cuInit(unsigned f) { (void)f; return cc() ? OK : NO_DEVICE; }
CUresult cuDriverGetVersion(int *v) { *v = 13000; return OK; }
CUresult cuDeviceGetCount(int *n) { *n = cc() ? 1 : 0; return OK; }
CUresult cuDeviceGet(int *d, int i) { *d = i; return OK; }
CUresult cuDeviceGetName(char *s, int n, int d) {
  (void)d;
  strncpy(s, "Fake GPU", (size_t)n);
  return OK;
}
CUresult cuDeviceGetAttribute(int *v, int a, int d) {
  (void)d;
  *v = a == 75 ? cc() / 10 : a == 76 ? cc() % 10 : 0;
  return OK;
}
CUresult cuDevicePrimaryCtxRetain(CUcontext *c, int d) { (void)d; *c = (CUcontext)1; return OK; }
CUresult cuCtxSetCurrent(CUcontext c) { (void)c; return OK; }
CUresult cuMemAlloc_v2(unsigned long long *p, size_t n) {
  /* 256-byte aligned, like the driver's allocations. */
  size_t rounded = (n + 255) & ~(size_t)255;
  void *m = aligned_alloc(256, rounded ? rounded : 256);
  if (m)
    memset(m, 0, rounded);
  *p = (unsigned long long)m;
  return m ? OK : 2;
}
CUresult cuMemFree_v2(unsigned long long p) { free((void *)p); return OK; }
CUresult cuMemGetInfo_v2(size_t *f, size_t *t) { *f = *t = (size_t)1 << 34; return OK; }
CUresult cuMemcpyAsync(unsigned long long d, unsigned long long s, size_t n, CUstream st) {
  (void)st; memcpy((void *)d, (void *)s, n); return OK;
}
CUresult cuMemcpyHtoDAsync_v2(unsigned long long d, const void *s, size_t n, CUstream st) {
  (void)st; memcpy((void *)d, s, n); return OK;
}
CUresult cuMemcpyDtoHAsync_v2(void *d, unsigned long long s, size_t n, CUstream st) {
  (void)st; memcpy(d, (void *)s, n); return OK;
}
CUresult cuMemsetD32Async(unsigned long long d, unsigned v, size_t n, CUstream st) {
  (void)st;
  for (size_t i = 0; i < n; ++i) ((unsigned *)d)[i] = v;
  return OK;
}
CUresult cuMemsetD16Async(unsigned long long d, unsigned short v, size_t n, CUstream st) {
  (void)st;
  for (size_t i = 0; i < n; ++i) ((unsigned short *)d)[i] = v;
  return OK;
}
CUresult cuStreamCreate(CUstream *s, unsigned f) { (void)f; *s = (CUstream)2; return OK; }
CUresult cuStreamDestroy_v2(CUstream s) { (void)s; return OK; }
CUresult cuStreamSynchronize(CUstream s) { (void)s; return OK; }
CUresult cuStreamQuery(CUstream s) { (void)s; return OK; }
CUresult cuModuleLoadData(CUmodule *m, const void *d) { (void)m; (void)d; return NO_BINARY; }
CUresult cuModuleUnload(CUmodule m) { (void)m; return OK; }
CUresult cuModuleGetFunction(CUfunction *f, CUmodule m, const char *n) {
  (void)f; (void)m; (void)n; return NOT_SUPPORTED;
}
CUresult cuLaunchKernel(CUfunction f, unsigned a, unsigned b, unsigned c, unsigned d,
                        unsigned e, unsigned g, unsigned s, CUstream st, void **p,
                        void **x) {
  (void)f; (void)a; (void)b; (void)c; (void)d; (void)e; (void)g; (void)s;
  (void)st; (void)p; (void)x;
  return NOT_SUPPORTED;
}
CUresult cuGetErrorName(CUresult r, const char **s) {
  *s = r == NO_DEVICE ? "CUDA_ERROR_NO_DEVICE"
       : r == NO_BINARY ? "CUDA_ERROR_NO_BINARY_FOR_GPU"
       : r == NOT_SUPPORTED ? "CUDA_ERROR_NOT_SUPPORTED"
                            : "CUDA_ERROR_UNKNOWN";
  return OK;
}
