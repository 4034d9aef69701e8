/* A stand-in libnccl.so.2 for one rank, on the stand-in CUDA driver (device
 * memory is host memory): the NCCL communicator's code runs end to end on
 * machines without a GPU (grouped send/recv to itself, in-place
 * collectives, stream polling, asynchronous errors, abort at the deadline).
 * Loaded through DSRT_NCCL. Behaviour from the environment:
 *   FAKE_NCCL_VERSION=N:     ncclGetVersion reports N (default 22800);
 *   FAKE_NCCL_ASYNC_ERROR=R: ncclCommGetAsyncError reports R.
 * ncclCommInitRank accepts one rank only (ncclInvalidUsage otherwise);
 * ncclCommAbort prints "fake nccl: ncclCommAbort" on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int ncclResult_t;
typedef struct ncclComm {
  int aborted;
} * ncclComm_t;
typedef struct {
  char internal[128];
} ncclUniqueId;
typedef struct CUstream_st *cudaStream_t;

#define SUCCESS 0
#define INVALID_ARGUMENT 4
#define INVALID_USAGE 5

ncclResult_t ncclGetVersion(int *v) {
  const char *e = getenv("FAKE_NCCL_VERSION");
  *v = e ? atoi(e) : 22800;
  return SUCCESS;
}
ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
  memset(id, 0, sizeof(*id));
  strcpy(id->internal, "fake-nccl");
  return SUCCESS;
}
ncclResult_t ncclCommInitRank(ncclComm_t *comm, int n, ncclUniqueId id,
                              int rank) {
  if (n != 1 || rank != 0 || strcmp(id.internal, "fake-nccl") != 0)
    return INVALID_USAGE;
  *comm = calloc(1, sizeof(struct ncclComm));
  return SUCCESS;
}
ncclResult_t ncclCommDestroy(ncclComm_t c) {
  free(c);
  return SUCCESS;
}
ncclResult_t ncclCommAbort(ncclComm_t c) {
  fprintf(stderr, "fake nccl: ncclCommAbort\n");
  free(c);
  return SUCCESS;
}
ncclResult_t ncclCommGetAsyncError(ncclComm_t c, ncclResult_t *r) {
  (void)c;
  const char *e = getenv("FAKE_NCCL_ASYNC_ERROR");
  *r = e ? atoi(e) : SUCCESS;
  return SUCCESS;
}
const char *ncclGetErrorString(ncclResult_t r) {
  switch (r) {
  case 4:
    return "invalid argument (run with NCCL_DEBUG=WARN for details)";
  case 5:
    return "invalid usage (run with NCCL_DEBUG=WARN for details)";
  case 6:
    return "remote process exited or there was a network error";
  default:
    return "unknown result code";
  }
}

static size_t elemSize(int type) {
  switch (type) {
  case 0: case 1: return 1; /* int8, uint8 */
  case 2: case 3: return 4; /* int32, uint32 */
  case 4: case 5: return 8; /* int64, uint64 */
  case 7: return 4;         /* float32 */
  default: return 0;
  }
}

static ncclResult_t copy(const void *s, void *d, size_t n, int type) {
  size_t e = elemSize(type);
  if (!e)
    return INVALID_ARGUMENT;
  if (s != d && n)
    memmove(d, s, n * e);
  return SUCCESS;
}

ncclResult_t ncclAllReduce(const void *s, void *d, size_t n, int type, int op,
                           ncclComm_t c, cudaStream_t st) {
  (void)c; (void)st;
  return op == 0 ? copy(s, d, n, type) : INVALID_ARGUMENT;
}
ncclResult_t ncclAllGather(const void *s, void *d, size_t n, int type,
                           ncclComm_t c, cudaStream_t st) {
  (void)c; (void)st;
  return copy(s, d, n, type);
}
ncclResult_t ncclBroadcast(const void *s, void *d, size_t n, int type,
                           int root, ncclComm_t c, cudaStream_t st) {
  (void)c; (void)st;
  return root == 0 ? copy(s, d, n, type) : INVALID_ARGUMENT;
}

/* Point-to-point to itself: sends and receives queue up inside a group and
 * pair in order at ncclGroupEnd, as NCCL requires. */
enum { MAX_P2P = 64 };
static struct {
  const void *buf;
  size_t bytes;
} sends[MAX_P2P], recvs[MAX_P2P];
static int nSend, nRecv, depth;

ncclResult_t ncclGroupStart(void) {
  ++depth;
  return SUCCESS;
}
ncclResult_t ncclSend(const void *s, size_t n, int type, int peer,
                      ncclComm_t c, cudaStream_t st) {
  (void)c; (void)st;
  if (!depth || peer != 0 || nSend == MAX_P2P || !elemSize(type))
    return INVALID_USAGE;
  sends[nSend].buf = s;
  sends[nSend++].bytes = n * elemSize(type);
  return SUCCESS;
}
ncclResult_t ncclRecv(void *d, size_t n, int type, int peer, ncclComm_t c,
                      cudaStream_t st) {
  (void)c; (void)st;
  if (!depth || peer != 0 || nRecv == MAX_P2P || !elemSize(type))
    return INVALID_USAGE;
  recvs[nRecv].buf = d;
  recvs[nRecv++].bytes = n * elemSize(type);
  return SUCCESS;
}
ncclResult_t ncclGroupEnd(void) {
  if (!depth)
    return INVALID_USAGE;
  if (--depth)
    return SUCCESS;
  ncclResult_t r = nSend == nRecv ? SUCCESS : INVALID_USAGE;
  for (int i = 0; r == SUCCESS && i < nSend; ++i) {
    if (sends[i].bytes != recvs[i].bytes)
      r = INVALID_USAGE;
    else
      memmove((void *)recvs[i].buf, sends[i].buf, sends[i].bytes);
  }
  nSend = nRecv = 0;
  return r;
}
