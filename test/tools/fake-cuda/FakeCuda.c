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
 * counts the device-to-host copies among the copies; capture the stream
 * captures ended into a graph, graphlaunch the graph launches).
 * Stream capture: between cuStreamBeginCapture and cuStreamEndCapture,
 * launches, copies and memsets are recorded, not run (the runtime's own
 * kernels and the stand-in cuBLAS's GEMMs, through fakeCudaDefer, replay
 * at each cuGraphLaunch); a stream synchronisation invalidates the capture
 * (CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED), as the driver does. Built with
 * FAKE_CUDA_NO_GRAPHS it is a driver without the graph entry points.
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
typedef struct CUgraph_st *CUgraph;
typedef struct CUgraphExec_st *CUgraphExec;

#define DSRT_CU_SYM(field, symbol, params) CUresult symbol params;
#ifndef FAKE_CUDA_NO_GRAPHS
#define DSRT_CU_OPT_SYM(field, symbol, params) CUresult symbol params;
#endif
#include "cuda/CudaSymbols.inc"

#define OK 0
#define OUT_OF_MEMORY 2
#define NO_DEVICE 100
#define NO_BINARY 209
#define NOT_FOUND 500
#define LAUNCH_FAILED 719
#define NOT_SUPPORTED 801
#define CAPTURE_UNSUPPORTED 900
#define CAPTURE_INVALIDATED 901
#define GRAPH_UPDATE_FAILURE 910

enum {
  ALLOC, FREE, LAUNCH, COPY, SYNC, MEMSET, GETFUNCTION, UNLOAD, DTOH,
  CAPTURE, GRAPHLAUNCH, KINDS
};
static const char *const kindNames[KINDS] = {
    "alloc", "free", "launch", "copy", "sync", "memset", "getfunction", "unload",
    "dtoh", "capture", "graphlaunch"};
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

/* Work recorded by a capture: run(arg) at each graph launch. */
typedef void (*FakeWork)(void *);
struct Node {
  FakeWork run;
  void *arg;
  size_t bytes;
};
struct Graph {
  struct Node *nodes;
  int count, capacity;
};
static struct Graph *capturing; /* the graph being captured, if any */
static int invalidated;         /* the capture met a synchronisation */

static void freeGraph(struct Graph *g) {
  if (!g)
    return;
  for (int i = 0; i < g->count; ++i)
    free(g->nodes[i].arg);
  free(g->nodes);
  free(g);
}

/* Records `run` with a copy of `arg` when a capture is in progress (1);
 * 0: the caller runs the work now. The stand-in cuBLAS calls it. */
int fakeCudaDefer(FakeWork run, const void *arg, size_t bytes) {
  if (!capturing)
    return 0;
  struct Graph *g = capturing;
  if (g->count == g->capacity) {
    g->capacity = g->capacity ? 2 * g->capacity : 16;
    g->nodes = realloc(g->nodes, (size_t)g->capacity * sizeof(struct Node));
  }
  void *copy = malloc(bytes ? bytes : 1);
  memcpy(copy, arg, bytes);
  g->nodes[g->count].run = run;
  g->nodes[g->count].arg = copy;
  g->nodes[g->count].bytes = bytes;
  ++g->count;
  return 1;
}

struct CopyArgs {
  void *dst;
  const void *src;
  size_t n;
};
static void runCopy(void *a) {
  struct CopyArgs *c = a;
  memcpy(c->dst, c->src, c->n);
}
struct SetArgs {
  void *dst;
  unsigned value;
  size_t n;
  int bytes;
};
static void runSet(void *a) {
  struct SetArgs *c = a;
  for (size_t i = 0; i < c->n; ++i) {
    if (c->bytes == 4)
      ((unsigned *)c->dst)[i] = c->value;
    else
      ((unsigned short *)c->dst)[i] = (unsigned short)c->value;
  }
}
/* A copy, now or (captured) at each graph launch. */
static void copyOrRecord(void *d, const void *s, size_t n) {
  struct CopyArgs c = {d, s, n};
  if (!fakeCudaDefer(runCopy, &c, sizeof c))
    runCopy(&c);
}
static void setOrRecord(void *d, unsigned v, size_t n, int bytes) {
  struct SetArgs c = {d, v, n, bytes};
  if (!fakeCudaDefer(runSet, &c, sizeof c))
    runSet(&c);
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
  copyOrRecord((void *)d, (void *)s, n);
  return OK;
}
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr d, const void *s, size_t n, CUstream st) {
  (void)st;
  if (fails(COPY))
    return LAUNCH_FAILED;
  copyOrRecord((void *)d, s, n);
  return OK;
}
CUresult cuMemcpyDtoHAsync_v2(void *d, CUdeviceptr s, size_t n, CUstream st) {
  (void)st;
  ++counts[DTOH];
  if (fails(COPY))
    return LAUNCH_FAILED;
  copyOrRecord(d, (void *)s, n);
  return OK;
}
CUresult cuMemsetD32Async(CUdeviceptr d, unsigned v, size_t n, CUstream st) {
  (void)st;
  ++counts[MEMSET];
  setOrRecord((void *)d, v, n, 4);
  return OK;
}
CUresult cuMemsetD16Async(CUdeviceptr d, unsigned short v, size_t n, CUstream st) {
  (void)st;
  ++counts[MEMSET];
  setOrRecord((void *)d, v, n, 2);
  return OK;
}
CUresult cuStreamCreate(CUstream *s, unsigned f) { (void)f; *s = (CUstream)2; return OK; }
CUresult cuStreamDestroy_v2(CUstream s) { (void)s; return OK; }
CUresult cuStreamSynchronize(CUstream s) {
  (void)s;
  if (capturing) {
    invalidated = 1;
    return CAPTURE_UNSUPPORTED;
  }
  return fails(SYNC) ? LAUNCH_FAILED : OK;
}

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
  /* A function handle lives as long as its module, which the runtime may
     never unload: the names are interned in a table that stays reachable,
     so LeakSanitizer (make test-asan) sees no leak. */
  static char *names[1024];
  static int count;
  for (int i = 0; i < count; ++i)
    if (strcmp(names[i], n) == 0) {
      *f = (CUfunction)names[i];
      return OK;
    }
  if (count == (int)(sizeof(names) / sizeof(names[0])))
    return NOT_SUPPORTED;
  names[count] = strdup(n);
  *f = (CUfunction)names[count++];
  return OK;
}
struct KernelArgs {
  int kind; /* 1: dsrt_f32_to_bf16, 2: dsrt_expert_rows */
  uint64_t args[10];
};
static void runNothing(void *a) { (void)a; }
static void runKernel(void *a) {
  struct KernelArgs *k = a;
  uint64_t *v = k->args;
  if (k->kind == 1) {
    uint16_t *dst = (uint16_t *)v[0];
    const uint32_t *src = (const uint32_t *)v[1];
    for (uint64_t i = 0; i < v[2]; ++i) {
      uint32_t u = src[i]; /* round to nearest even, as cvt.rn.bf16.f32 */
      dst[i] = (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
    }
    return;
  }
  /* dsrt_expert_rows, as its PTX computes it. */
  uint64_t *ptrs = (uint64_t *)v[0];
  const int32_t *off = (const int32_t *)v[1];
  uint64_t experts = v[2], rows = v[3];
  for (uint64_t r = 0; r < rows; ++r) {
    uint64_t e = 0;
    for (uint64_t i = 0; i < experts; ++i)
      if ((int64_t)off[i + 1] <= (int64_t)r)
        e = i + 1;
    if (e > experts - 1)
      e = experts - 1;
    ptrs[r] = v[4] + e * v[5];
    ptrs[rows + r] = v[6] + r * v[7];
    ptrs[2 * rows + r] = v[8] + r * v[9];
  }
}

CUresult cuLaunchKernel(CUfunction f, unsigned a, unsigned b, unsigned c, unsigned d,
                        unsigned e, unsigned g, unsigned s, CUstream st, void **p,
                        void **x) {
  (void)a; (void)b; (void)c; (void)d; (void)e; (void)g; (void)s;
  (void)st; (void)p; (void)x;
  if (fails(LAUNCH))
    return LAUNCH_FAILED;
  strncpy(lastKernel, (const char *)f, sizeof(lastKernel) - 1);
  /* The runtime's own kernels (runtime/src/cuda/Convert.cpp) are
   * emulated, so tests of the bf16 GEMM path see real bf16 activations;
   * their arguments are all 64-bit. Generated kernels do not run. */
  struct KernelArgs k = {0, {0}};
  if (strcmp((const char *)f, "dsrt_f32_to_bf16") == 0)
    k.kind = 1;
  else if (strcmp((const char *)f, "dsrt_expert_rows") == 0)
    k.kind = 2;
  if (!k.kind) {
    /* A node all the same, so a graph's shape is its launches'. */
    fakeCudaDefer(runNothing, &k, sizeof k);
    return OK;
  }
  for (int i = 0; i < (k.kind == 1 ? 3 : 10); ++i)
    k.args[i] = *(uint64_t *)p[i];
  if (!fakeCudaDefer(runKernel, &k, sizeof k))
    runKernel(&k);
  return OK;
}

#ifndef FAKE_CUDA_NO_GRAPHS
CUresult cuStreamBeginCapture_v2(CUstream s, int mode) {
  (void)s;
  (void)mode;
  if (capturing)
    return CAPTURE_INVALIDATED;
  capturing = calloc(1, sizeof(struct Graph));
  invalidated = 0;
  return OK;
}
CUresult cuStreamEndCapture(CUstream s, CUgraph *graph) {
  (void)s;
  struct Graph *g = capturing;
  capturing = NULL;
  *graph = NULL;
  if (!g)
    return CAPTURE_INVALIDATED;
  if (invalidated) {
    freeGraph(g);
    return CAPTURE_INVALIDATED;
  }
  ++counts[CAPTURE];
  *graph = (CUgraph)g;
  return OK;
}
static struct Graph *cloneGraph(const struct Graph *from) {
  struct Graph *g = calloc(1, sizeof(struct Graph));
  g->count = g->capacity = from->count;
  g->nodes = calloc((size_t)(from->count ? from->count : 1), sizeof(struct Node));
  for (int i = 0; i < from->count; ++i) {
    g->nodes[i] = from->nodes[i];
    g->nodes[i].arg = malloc(from->nodes[i].bytes ? from->nodes[i].bytes : 1);
    memcpy(g->nodes[i].arg, from->nodes[i].arg, from->nodes[i].bytes);
  }
  return g;
}
CUresult cuGraphInstantiateWithFlags(CUgraphExec *e, CUgraph graph,
                                     unsigned long long flags) {
  (void)flags;
  *e = (CUgraphExec)cloneGraph((struct Graph *)graph);
  return OK;
}
/* The topology must match (node count and the kind of each node). */
CUresult cuGraphExecUpdate_v2(CUgraphExec e, CUgraph graph, void *info) {
  (void)info;
  struct Graph *to = (struct Graph *)e, *from = (struct Graph *)graph;
  if (to->count != from->count)
    return GRAPH_UPDATE_FAILURE;
  for (int i = 0; i < from->count; ++i)
    if (to->nodes[i].run != from->nodes[i].run ||
        to->nodes[i].bytes != from->nodes[i].bytes)
      return GRAPH_UPDATE_FAILURE;
  for (int i = 0; i < from->count; ++i)
    memcpy(to->nodes[i].arg, from->nodes[i].arg, from->nodes[i].bytes);
  return OK;
}
CUresult cuGraphLaunch(CUgraphExec e, CUstream s) {
  (void)s;
  if (capturing)
    return CAPTURE_UNSUPPORTED;
  ++counts[GRAPHLAUNCH];
  struct Graph *g = (struct Graph *)e;
  for (int i = 0; i < g->count; ++i)
    g->nodes[i].run(g->nodes[i].arg);
  return OK;
}
CUresult cuGraphDestroy(CUgraph g) { freeGraph((struct Graph *)g); return OK; }
CUresult cuGraphExecDestroy(CUgraphExec e) { freeGraph((struct Graph *)e); return OK; }
#endif

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
