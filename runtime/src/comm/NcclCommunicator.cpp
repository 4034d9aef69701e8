//===- NcclCommunicator.cpp - collectives over NCCL, on device buffers ----===//
//
// Buffers are device addresses (CUdeviceptr values passed as pointers) on
// device 0 of those this process sees: a launcher gives each rank its GPU
// with CUDA_VISIBLE_DEVICES (bench/gpu/comm_check.sh does). The bootstrap
// communicator (MPI under mpiexec, one process otherwise) carries NCCL's
// unique id, the all-to-all counts (host integers the caller needs to size
// its buffers) and barriers.
//
// Each collective is enqueued on the communicator's stream, then the stream
// is polled against the deadline with NCCL's asynchronous error: a peer
// that died leaves NCCL's kernels waiting forever, so the rank aborts the
// NCCL communicator and ends the job with one line.
//
//===----------------------------------------------------------------------===//
#include "comm/Communicator.h"
#include "comm/JobAbort.h"
#include "comm/NcclApi.h"

#include "api/Error.h"
#include "cuda/CudaApi.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <thread>
#include <vector>

using namespace dsrt;
using namespace dsrt::comm;
using dsrt::cuda::CUresult;
using dsrt::cuda::CUstream;

namespace {

constexpr CUresult CUDA_ERROR_NOT_READY = 600;
using StreamQuery = CUresult (*)(CUstream);

/// cuStreamQuery is not among the entry points cuda/CudaApi.h loads; the
/// driver is already open, so this only finds the symbol.
StreamQuery streamQuery(std::string &error) {
  const char *env = std::getenv("DSRT_CUDA_DRIVER");
  std::string path = env && *env ? env : "libcuda.so.1";
  void *lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  auto fn = lib ? reinterpret_cast<StreamQuery>(dlsym(lib, "cuStreamQuery"))
                : nullptr;
  if (!fn)
    error = "CUDA driver " + path + " lacks cuStreamQuery";
  return fn;
}

class NcclCommunicator final : public Communicator {
public:
  NcclCommunicator(std::unique_ptr<Communicator> boot, const nccl::Api &api,
                   const cuda::Gpu &gpu, StreamQuery query, CUstream stream,
                   nccl::ncclComm_t comm)
      : Communicator(boot->rank(), boot->size(), boot->timeoutSeconds()),
        boot_(std::move(boot)), api_(api), gpu_(gpu), query_(query),
        stream_(stream), comm_(comm) {}
  ~NcclCommunicator() override { finalize(); }
  Backend backend() const override { return Backend::Nccl; }

protected:
  dsrt_status doBarrier() override {
    wait("barrier");
    return boot_->barrier();
  }

  dsrt_status doAllReduceSum(float *data, int64_t count) override {
    std::string what = "all_reduce (" + std::to_string(count) + " f32)";
    check(api_.allReduce(data, data, static_cast<size_t>(count),
                         nccl::ncclFloat32, nccl::ncclSum, comm_, stream()),
          "ncclAllReduce");
    wait(what);
    return DSRT_OK;
  }

  dsrt_status doAllGather(const void *send, int64_t bytes,
                          void *recv) override {
    check(api_.allGather(send, recv, static_cast<size_t>(bytes),
                         nccl::ncclUint8, comm_, stream()),
          "ncclAllGather");
    wait("all_gather (" + std::to_string(bytes) + " bytes/rank)");
    return DSRT_OK;
  }

  dsrt_status doAllToAllCounts(const int64_t *sendRows,
                               int64_t *recvRows) override {
    return boot_->allToAllCounts(sendRows, recvRows);
  }

  dsrt_status doAllToAllV(const void *send, const int64_t *sendRows, void *recv,
                          const int64_t *recvRows, int64_t rowBytes) override {
    // NCCL has no alltoallv: grouped point-to-point is its documented form.
    const char *src = static_cast<const char *>(send);
    char *dst = static_cast<char *>(recv);
    int64_t so = 0, ro = 0;
    check(api_.groupStart(), "ncclGroupStart");
    for (int p = 0; p < size_; ++p) {
      size_t sb = static_cast<size_t>(sendRows[p] * rowBytes);
      size_t rb = static_cast<size_t>(recvRows[p] * rowBytes);
      if (sb)
        check(api_.send(src + so, sb, nccl::ncclUint8, p, comm_, stream()),
              "ncclSend");
      if (rb)
        check(api_.recv(dst + ro, rb, nccl::ncclUint8, p, comm_, stream()),
              "ncclRecv");
      so += static_cast<int64_t>(sb);
      ro += static_cast<int64_t>(rb);
    }
    check(api_.groupEnd(), "ncclGroupEnd");
    wait("all_to_all (" + std::to_string(so) + " bytes out, " +
         std::to_string(ro) + " in)");
    return DSRT_OK;
  }

  dsrt_status doBroadcast(void *data, int64_t bytes, int root) override {
    check(api_.broadcast(data, data, static_cast<size_t>(bytes),
                         nccl::ncclUint8, root, comm_, stream()),
          "ncclBroadcast");
    wait("broadcast (" + std::to_string(bytes) + " bytes from rank " +
         std::to_string(root) + ")");
    return DSRT_OK;
  }

  dsrt_status doFinalize() override {
    wait("finalize");
    dsrt_status s = boot_->barrier();
    api_.commDestroy(comm_);
    gpu_.drv.cuStreamDestroy(stream_);
    dsrt_status f = boot_->finalize();
    return s ? s : f;
  }

private:
  /// The stream of the next NCCL call, with this GPU's context current on
  /// the calling thread (sessions may move between threads).
  nccl::cudaStream_t stream() const {
    gpu_.bind();
    return reinterpret_cast<nccl::cudaStream_t>(stream_);
  }

  void check(nccl::ncclResult_t r, const char *call) {
    if (r != nccl::ncclSuccess && r != nccl::ncclInProgress) {
      api_.commAbort(comm_);
      abortJob(who() + ": " + nccl::describe(api_, call, r));
    }
  }

  void wait(const std::string &what) {
    using namespace std::chrono;
    gpu_.bind();
    auto limit = steady_clock::now() + duration_cast<steady_clock::duration>(
                                           duration<double>(timeout_));
    for (unsigned spin = 0;; ++spin) {
      CUresult r = query_(stream_);
      if (r == cuda::CUDA_SUCCESS)
        return;
      if (r != CUDA_ERROR_NOT_READY) {
        api_.commAbort(comm_);
        abortJob(who() + ": " + what + ": " +
                 gpu_.describe("cuStreamQuery", r));
      }
      nccl::ncclResult_t async = nccl::ncclSuccess;
      api_.commGetAsyncError(comm_, &async);
      if (async != nccl::ncclSuccess && async != nccl::ncclInProgress) {
        api_.commAbort(comm_);
        abortJob(who() + ": " + what + ": " +
                 nccl::describe(api_, "NCCL", async));
      }
      if (steady_clock::now() > limit) {
        api_.commAbort(comm_);
        abortJob(timeoutMessage(what));
      }
      if (spin >= 200)
        std::this_thread::sleep_for(microseconds(spin < 5000 ? 5 : 200));
    }
  }

  std::unique_ptr<Communicator> boot_;
  const nccl::Api &api_;
  const cuda::Gpu &gpu_;
  StreamQuery query_;
  CUstream stream_;
  nccl::ncclComm_t comm_;
};

} // namespace

std::unique_ptr<Communicator>
dsrt::comm::createNccl(std::unique_ptr<Communicator> boot, std::string &error) {
  // Local setup first, then every rank learns whether all others succeeded:
  // a rank without NCCL or a GPU must not leave its peers waiting for the
  // unique id until the timeout.
  std::string local;
  const nccl::Api *api = nccl::get(local);
  const cuda::Gpu *gpu = api ? cuda::gpu(local) : nullptr;
  StreamQuery query = gpu ? streamQuery(local) : nullptr;
  CUstream stream = nullptr;
  if (query) {
    // A blocking stream (flags 0): ordered after work on the legacy default
    // stream, such as a caller's synchronous cuMemcpyHtoD whose DMA may
    // still be in flight when it returns.
    CUresult r = gpu->drv.cuStreamCreate(&stream, 0);
    if (r != cuda::CUDA_SUCCESS)
      local = gpu->describe("cuStreamCreate", r);
  }
  struct Ticket {
    int32_t ok;
    nccl::ncclUniqueId id;
  } mine{local.empty() ? 1 : 0, {}};
  if (mine.ok && boot->rank() == 0) {
    nccl::ncclResult_t r = api->getUniqueId(&mine.id);
    if (r != nccl::ncclSuccess) {
      local = nccl::describe(*api, "ncclGetUniqueId", r);
      mine.ok = 0;
    }
  }
  const int size = boot->size(), rank = boot->rank();
  std::vector<int32_t> oks(static_cast<size_t>(size));
  if (boot->allGather(&mine.ok, sizeof(int32_t), oks.data()) != DSRT_OK) {
    error = dsrt_last_error();
    return nullptr;
  }
  std::string failed;
  for (int p = 0; p < size; ++p)
    if (!oks[p])
      failed += (failed.empty() ? "" : ", ") + std::to_string(p);
  if (!failed.empty()) {
    if (stream)
      gpu->drv.cuStreamDestroy(stream);
    error = !local.empty() ? local
                           : "NCCL could not start on rank(s) " + failed +
                                 " (see their messages)";
    return nullptr;
  }
  if (boot->broadcast(&mine.id, sizeof(mine.id), 0) != DSRT_OK) {
    error = dsrt_last_error();
    return nullptr;
  }
  nccl::ncclComm_t comm = nullptr;
  nccl::ncclResult_t r;
  {
    Watchdog guard(boot->timeoutSeconds(),
                   "rank " + std::to_string(rank) + " of " +
                       std::to_string(size) +
                       ": ncclCommInitRank did not complete within " +
                       formatSeconds(boot->timeoutSeconds()) +
                       " s (DSRT_COMM_TIMEOUT): a rank failed to start");
    gpu->bind();
    r = api->commInitRank(&comm, size, mine.id, rank);
  }
  if (r != nccl::ncclSuccess) {
    gpu->drv.cuStreamDestroy(stream);
    error = nccl::describe(*api, "ncclCommInitRank", r);
    return nullptr;
  }
  return std::make_unique<NcclCommunicator>(std::move(boot), *api, *gpu, query,
                                            stream, comm);
}
