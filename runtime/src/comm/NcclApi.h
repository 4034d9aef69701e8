//===- NcclApi.h - NCCL reached by dlopen -----------------------*- C++ -*-===//
//
// Like the CUDA driver (cuda/CudaApi.h), NCCL is never linked: one build of
// libdsrt serves machines with and without it. Only the entry points the
// communicator uses are declared, with NCCL's ABI spelled out (no nccl.h at
// build time); unittests/comm checks these against nccl.h where the CUDA
// toolkit is installed.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_COMM_NCCLAPI_H
#define DSRT_COMM_NCCLAPI_H

#include <cstddef>
#include <memory>
#include <string>

namespace dsrt::comm::nccl {

using ncclResult_t = int;
using ncclComm_t = struct ncclComm *;
using cudaStream_t = struct CUstream_st *; // the driver's CUstream
struct ncclUniqueId {
  char internal[128];
};

constexpr ncclResult_t ncclSuccess = 0, ncclInProgress = 7;
constexpr int ncclSum = 0;
constexpr int ncclUint8 = 1, ncclInt64 = 4, ncclFloat32 = 7;
/// ncclSend/ncclRecv arrived in 2.7; NCCL_VERSION(2,7,0) = 20700.
constexpr int kMinVersion = 20700;

struct Api {
  ncclResult_t (*getVersion)(int *);
  ncclResult_t (*getUniqueId)(ncclUniqueId *);
  ncclResult_t (*commInitRank)(ncclComm_t *, int, ncclUniqueId, int);
  ncclResult_t (*commDestroy)(ncclComm_t);
  ncclResult_t (*commAbort)(ncclComm_t);
  ncclResult_t (*commGetAsyncError)(ncclComm_t, ncclResult_t *);
  const char *(*getErrorString)(ncclResult_t);
  ncclResult_t (*allReduce)(const void *, void *, size_t, int, int, ncclComm_t,
                            cudaStream_t);
  ncclResult_t (*allGather)(const void *, void *, size_t, int, ncclComm_t,
                            cudaStream_t);
  ncclResult_t (*broadcast)(const void *, void *, size_t, int, int, ncclComm_t,
                            cudaStream_t);
  ncclResult_t (*send)(const void *, size_t, int, int, ncclComm_t,
                       cudaStream_t);
  ncclResult_t (*recv)(void *, size_t, int, int, ncclComm_t, cudaStream_t);
  ncclResult_t (*groupStart)();
  ncclResult_t (*groupEnd)();
  int version = 0;
  std::string path;
};

/// Loads NCCL from `path` and checks its version; nullptr and a one-line
/// `error` (naming the path and what is missing) otherwise.
std::unique_ptr<Api> load(const std::string &path, std::string &error);

/// $DSRT_NCCL, else libnccl.so.2 on the loader's path, else the CUDA
/// toolkit's ($CUDA_HOME or /usr/local/cuda)/lib64/libnccl.so.2. Loaded once.
const Api *get(std::string &error);

/// "ncclCommInitRank: unhandled cuda error (run with NCCL_DEBUG=INFO for
/// details)".
std::string describe(const Api &api, const char *call, ncclResult_t r);

} // namespace dsrt::comm::nccl

#endif // DSRT_COMM_NCCLAPI_H
