//===- CApi.cpp - dsrt_comm_*
//-----------------------------------------------===//
#include "dsrt/dsrt_comm.h"

#include "api/Error.h"
#include "comm/Communicator.h"

#include <cstring>

using namespace dsrt;
using namespace dsrt::comm;

struct dsrt_comm {
  std::unique_ptr<Communicator> impl;
};

static dsrt_status noComm(const char *fn) {
  return fail(DSRT_ERROR_ARGUMENT, std::string(fn) + ": comm is NULL");
}

extern "C" dsrt_status dsrt_comm_init(const char *backend, dsrt_comm **out) {
  return guarded("dsrt_comm_init", [&]() -> dsrt_status {
    if (!out)
      return fail(DSRT_ERROR_ARGUMENT, "dsrt_comm_init: out is NULL");
    *out = nullptr;
    std::string name = backend ? backend : "auto";
    if (name == "auto")
      name = launchedByMpi() ? "mpi" : "single";
    if (name != "single" && name != "mpi" && name != "nccl")
      return fail(DSRT_ERROR_ARGUMENT,
                  "dsrt_comm_init: unknown backend '" + name +
                      "' (expected auto, single, mpi or nccl)");
    double timeout = 0;
    std::string error;
    if (!timeoutFromEnvironment(timeout, error))
      return fail(DSRT_ERROR_ARGUMENT, error);
    std::unique_ptr<Communicator> c;
    if (name == "single") {
      c = createSingle(timeout);
    } else if (name == "mpi") {
      c = createMpi(timeout, error);
    } else {
      std::unique_ptr<Communicator> boot =
          launchedByMpi() ? createMpi(timeout, error) : createSingle(timeout);
      if (boot)
        c = createNccl(std::move(boot), error);
    }
    if (!c)
      return fail(DSRT_ERROR_DEVICE, error);
    *out = new dsrt_comm{std::move(c)};
    return DSRT_OK;
  });
}

extern "C" dsrt_status dsrt_comm_finalize(dsrt_comm *comm) {
  if (!comm)
    return DSRT_OK;
  dsrt_status s = comm->impl->finalize();
  delete comm;
  return s;
}

extern "C" int dsrt_comm_rank(const dsrt_comm *comm) {
  return comm ? comm->impl->rank() : -1;
}

extern "C" int dsrt_comm_size(const dsrt_comm *comm) {
  return comm ? comm->impl->size() : -1;
}

extern "C" const char *dsrt_comm_backend(const dsrt_comm *comm) {
  return comm ? backendName(comm->impl->backend()) : "";
}

extern "C" double dsrt_comm_timeout(const dsrt_comm *comm) {
  return comm ? comm->impl->timeoutSeconds() : 0.0;
}

extern "C" dsrt_status dsrt_comm_barrier(dsrt_comm *comm) {
  if (!comm)
    return noComm("dsrt_comm_barrier");
  return comm->impl->barrier();
}

extern "C" dsrt_status
dsrt_comm_all_reduce_sum_f32(dsrt_comm *comm, float *data, int64_t count) {
  if (!comm)
    return noComm("dsrt_comm_all_reduce_sum_f32");
  return comm->impl->allReduceSum(data, count);
}

extern "C" dsrt_status dsrt_comm_all_gather(dsrt_comm *comm, const void *send,
                                            int64_t bytes_per_rank,
                                            void *recv) {
  if (!comm)
    return noComm("dsrt_comm_all_gather");
  return comm->impl->allGather(send, bytes_per_rank, recv);
}

extern "C" dsrt_status dsrt_comm_all_to_all_counts(dsrt_comm *comm,
                                                   const int64_t *send_rows,
                                                   int64_t *recv_rows) {
  if (!comm)
    return noComm("dsrt_comm_all_to_all_counts");
  return comm->impl->allToAllCounts(send_rows, recv_rows);
}

extern "C" dsrt_status dsrt_comm_all_to_all_v(dsrt_comm *comm, const void *send,
                                              const int64_t *send_rows,
                                              void *recv,
                                              const int64_t *recv_rows,
                                              int64_t row_bytes) {
  if (!comm)
    return noComm("dsrt_comm_all_to_all_v");
  return comm->impl->allToAllV(send, send_rows, recv, recv_rows, row_bytes);
}

extern "C" dsrt_status dsrt_comm_broadcast(dsrt_comm *comm, void *data,
                                           int64_t bytes, int root) {
  if (!comm)
    return noComm("dsrt_comm_broadcast");
  return comm->impl->broadcast(data, bytes, root);
}
