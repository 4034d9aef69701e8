/* A stand-in libcublas for machines without a GPU: the entry points the
 * runtime calls (runtime/src/cuda/CudaSymbols.inc), computed on the host
 * with cuBLAS's column-major conventions, over the stand-in driver's
 * "device memory" (host memory). Loaded through DSRT_CUBLAS; lets tests
 * run the runtime's GEMM glue (transposes, leading dimensions, grouped
 * offsets, bf16 staging) against the CPU GEMMs.
 *   FAKE_CUBLAS_FAIL=N: the N-th GEMM answers CUBLAS_STATUS_EXECUTION_FAILED
 *   (a grouped call fails as a whole when one of its problems does).
 * fakeCublasGemms() counts GEMMs (each problem of a grouped or batched call
 * is one), fakeCublasGroupedCalls() the grouped calls and
 * fakeCublasBatchedCalls() the batched ones, since fakeCublasReset().
 * Built with FAKE_CUBLAS_NO_GROUPED it is a cuBLAS older than 12.5, without
 * cublasGemmGroupedBatchedEx.
 * While the stand-in driver ($DSRT_CUDA_DRIVER) captures a stream, a GEMM
 * (single or batched) is recorded there and computed at each graph launch,
 * as a captured cuBLAS kernel would be (a grouped call's problems are
 * recorded with the pointers as read at the call). */
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct CUstream_st *CUstream;
typedef struct cublasContext *cublasHandle_t;

#define DSRT_CUBLAS_SYM(field, symbol, params) int symbol params;
#define DSRT_CUBLAS_OPT_SYM(field, symbol, params) int symbol params;
#include "cuda/CudaSymbols.inc"

#define STATUS_SUCCESS 0
#define STATUS_NOT_INITIALIZED 1
#define STATUS_INVALID_VALUE 7
#define STATUS_EXECUTION_FAILED 13
#define STATUS_NOT_SUPPORTED 15
#define OP_N 0
#define R_32F 0
#define R_16BF 14
#define COMPUTE_32F 68

struct cublasContext {
  CUstream stream;
};
static long gemms, groupedCalls;

void fakeCublasReset(void);
long fakeCublasGemms(void) { return gemms; }
long fakeCublasGroupedCalls(void) { return groupedCalls; }

int cublasCreate_v2(cublasHandle_t *h) {
  *h = calloc(1, sizeof(struct cublasContext));
  return *h ? STATUS_SUCCESS : STATUS_NOT_INITIALIZED;
}
int cublasDestroy_v2(cublasHandle_t h) { free(h); return STATUS_SUCCESS; }
int cublasSetStream_v2(cublasHandle_t h, CUstream s) {
  if (!h)
    return STATUS_NOT_INITIALIZED;
  h->stream = s;
  return STATUS_SUCCESS;
}

static float load(const void *p, int type, size_t i) {
  if (type == R_32F)
    return ((const float *)p)[i];
  uint32_t bits = (uint32_t)((const uint16_t *)p)[i] << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

/* Column-major: element (r, c) of an op(X) with leading dimension ld. */
static float at(const void *p, int type, int op, int ld, int r, int c) {
  return op == OP_N ? load(p, type, (size_t)c * ld + r)
                    : load(p, type, (size_t)r * ld + c);
}

/* The stand-in driver's capture hook: 1 when it recorded the work. */
typedef void (*FakeWork)(void *);
static int defer(FakeWork run, const void *arg, size_t bytes) {
  static int (*hook)(FakeWork, const void *, size_t);
  static int looked;
  if (!looked) {
    looked = 1;
    const char *path = getenv("DSRT_CUDA_DRIVER");
    void *h = path ? dlopen(path, RTLD_NOW | RTLD_NOLOAD) : NULL;
    if (h)
      *(void **)&hook = dlsym(h, "fakeCudaDefer");
  }
  return hook ? hook(run, arg, bytes) : 0;
}

static void compute(int ta, int tb, int m, int n, int k, float alpha,
                    const void *a, int at_, int lda, const void *b, int bt,
                    int ldb, float beta, float *c, int ldc) {
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) {
      double s = 0;
      for (int p = 0; p < k; ++p)
        s += (double)at(a, at_, ta, lda, i, p) * at(b, bt, tb, ldb, p, j);
      float *y = &c[(size_t)j * ldc + i];
      *y = (float)(alpha * s) + (beta != 0.0f ? beta * *y : 0.0f);
    }
}

struct Gemm {
  int ta, tb, m, n, k, at, lda, bt, ldb, ldc;
  float alpha, beta;
  const void *a, *b;
  float *c;
};
static void runGemm(void *p) {
  struct Gemm *g = p;
  compute(g->ta, g->tb, g->m, g->n, g->k, g->alpha, g->a, g->at, g->lda, g->b,
          g->bt, g->ldb, g->beta, g->c, g->ldc);
}

/* Checks a problem and counts it (FAKE_CUBLAS_FAIL); computes it now, or
 * at each launch of the graph being captured. */
static int gemm(int ta, int tb, int m, int n, int k, float alpha,
                const void *a, int at_, int lda, const void *b, int bt,
                int ldb, float beta, float *c, int ldc) {
  if (m < 0 || n < 0 || k < 0 || lda < (ta == OP_N ? m : k) ||
      ldb < (tb == OP_N ? k : n) || ldc < m)
    return STATUS_INVALID_VALUE;
  const char *f = getenv("FAKE_CUBLAS_FAIL");
  if (++gemms == (f ? atol(f) : 0))
    return STATUS_EXECUTION_FAILED;
  struct Gemm g = {ta, tb, m, n, k, at_, lda, bt, ldb, ldc, alpha, beta,
                   a, b, c};
  if (!defer(runGemm, &g, sizeof g))
    runGemm(&g);
  return STATUS_SUCCESS;
}

int cublasSgemm_v2(cublasHandle_t h, int ta, int tb, int m, int n, int k,
                   const float *alpha, const float *a, int lda, const float *b,
                   int ldb, const float *beta, float *c, int ldc) {
  if (!h)
    return STATUS_NOT_INITIALIZED;
  return gemm(ta, tb, m, n, k, *alpha, a, R_32F, lda, b, R_32F, ldb, *beta, c,
              ldc);
}

int cublasGemmEx(cublasHandle_t h, int ta, int tb, int m, int n, int k,
                 const void *alpha, const void *a, int atype, int lda,
                 const void *b, int btype, int ldb, const void *beta, void *c,
                 int ctype, int ldc, int compute, int algo) {
  (void)algo;
  if (!h)
    return STATUS_NOT_INITIALIZED;
  if ((atype != R_32F && atype != R_16BF) || (btype != R_32F && btype != R_16BF) ||
      ctype != R_32F || compute != COMPUTE_32F)
    return STATUS_INVALID_VALUE;
  return gemm(ta, tb, m, n, k, *(const float *)alpha, a, atype, lda, b, btype,
              ldb, *(const float *)beta, (float *)c, ldc);
}

static long batchedCalls;
long fakeCublasBatchedCalls(void) { return batchedCalls; }

/* Pointer arrays in "device memory" (host memory here), one problem each,
 * read when the product runs (a captured call sees what a kernel captured
 * before it wrote there). */
struct Batched {
  struct Gemm shape;
  const void *const *a, *const *b;
  void *const *c;
  int count;
};
static void runBatched(void *p) {
  struct Batched *g = p;
  for (int i = 0; i < g->count; ++i) {
    struct Gemm one = g->shape;
    one.a = g->a[i];
    one.b = g->b[i];
    one.c = (float *)g->c[i];
    runGemm(&one);
  }
}

/* Pointer arrays in "device memory" (host memory here), one problem each. */
int cublasGemmBatchedEx(cublasHandle_t h, int ta, int tb, int m, int n, int k,
                        const void *alpha, const void *const *a, int atype,
                        int lda, const void *const *b, int btype, int ldb,
                        const void *beta, void *const *c, int ctype, int ldc,
                        int count, int compute, int algo) {
  (void)algo;
  if (!h)
    return STATUS_NOT_INITIALIZED;
  if ((atype != R_32F && atype != R_16BF) || btype != atype ||
      ctype != R_32F || compute != COMPUTE_32F)
    return STATUS_INVALID_VALUE;
  if (count < 0)
    return STATUS_INVALID_VALUE;
  ++batchedCalls;
  if (m < 0 || n < 0 || k < 0 || lda < (ta == OP_N ? m : k) ||
      ldb < (tb == OP_N ? k : n) || ldc < m)
    return STATUS_INVALID_VALUE;
  const char *f = getenv("FAKE_CUBLAS_FAIL");
  long first = gemms + 1;
  gemms += count;
  if (f && atol(f) >= first && atol(f) <= gemms)
    return STATUS_EXECUTION_FAILED;
  struct Batched g = {{ta, tb, m, n, k, atype, lda, btype, ldb, ldc,
                       *(const float *)alpha, *(const float *)beta, NULL,
                       NULL, NULL},
                      a, b, c, count};
  if (!defer(runBatched, &g, sizeof g))
    runBatched(&g);
  return STATUS_SUCCESS;
}

void fakeCublasReset(void) { gemms = groupedCalls = batchedCalls = 0; }

#ifndef FAKE_CUBLAS_NO_GROUPED
/* Only the f32 form is computed; bf16 inputs with an f32 output are not a
 * combination cuBLAS lists for the grouped call (its bf16 form writes bf16),
 * so they answer NOT_SUPPORTED, as the runtime must expect. */
int cublasGemmGroupedBatchedEx(cublasHandle_t h, const int *ta, const int *tb,
                               const int *m, const int *n, const int *k,
                               const void *alpha, const void *const *a,
                               int atype, const int *lda,
                               const void *const *b, int btype,
                               const int *ldb, const void *beta,
                               void *const *c, int ctype, const int *ldc,
                               int groups, const int *groupSize, int compute) {
  if (!h)
    return STATUS_NOT_INITIALIZED;
  if (atype != R_32F || btype != R_32F || ctype != R_32F ||
      compute != COMPUTE_32F)
    return STATUS_NOT_SUPPORTED;
  if (groups < 0)
    return STATUS_INVALID_VALUE;
  ++groupedCalls;
  const float *alphas = alpha, *betas = beta;
  int problem = 0;
  for (int g = 0; g < groups; ++g) {
    if (groupSize[g] < 0)
      return STATUS_INVALID_VALUE;
    for (int i = 0; i < groupSize[g]; ++i, ++problem) {
      int st = gemm(ta[g], tb[g], m[g], n[g], k[g], alphas[g], a[problem],
                    R_32F, lda[g], b[problem], R_32F, ldb[g], betas[g],
                    (float *)c[problem], ldc[g]);
      if (st != STATUS_SUCCESS)
        return st;
    }
  }
  return STATUS_SUCCESS;
}
#endif
