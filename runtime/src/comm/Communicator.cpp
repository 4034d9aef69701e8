//===- Communicator.cpp - argument checks, timeout, one-process backend ---===//
#include "comm/Communicator.h"
#include "comm/JobAbort.h"

#include "api/Error.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unistd.h>

using namespace dsrt;
using namespace dsrt::comm;

const char *dsrt::comm::backendName(Backend b) {
  switch (b) {
  case Backend::Single:
    return "single";
  case Backend::Mpi:
    return "mpi";
  case Backend::Nccl:
    return "nccl";
  }
  return "?";
}

bool dsrt::comm::timeoutFromEnvironment(double &seconds, std::string &error) {
  seconds = 60.0;
  const char *v = std::getenv("DSRT_COMM_TIMEOUT");
  if (!v || !*v)
    return true;
  char *end = nullptr;
  errno = 0;
  double s = std::strtod(v, &end);
  if (errno || end == v || *end || !std::isfinite(s) || s <= 0) {
    error = std::string("DSRT_COMM_TIMEOUT: expected a positive number of "
                        "seconds, got '") +
            v + "'";
    return false;
  }
  seconds = s;
  return true;
}

std::string dsrt::comm::formatSeconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof(text), "%g", seconds);
  return text;
}

bool dsrt::comm::launchedByMpi() {
  for (const char *v : {"PMI_RANK", "PMIX_RANK", "OMPI_COMM_WORLD_RANK"})
    if (std::getenv(v))
      return true;
  return false;
}

//===----------------------------------------------------------------------===//
// Ending the job
//===----------------------------------------------------------------------===//

namespace {
void (*jobAbortHook)(int) = nullptr;
} // namespace

void dsrt::comm::setJobAbortHook(void (*hook)(int)) { jobAbortHook = hook; }

void dsrt::comm::abortJob(const std::string &message) {
  std::fprintf(stderr, "dsrt: comm: %s\n", message.c_str());
  std::fflush(stderr);
  // mpiexec forwards each rank's stderr through a pipe; killing the job at
  // once can drop the line that says why. A failing job can spare 0.2 s.
  usleep(200 * 1000);
  if (jobAbortHook)
    jobAbortHook(1);
  _exit(1);
}

//===----------------------------------------------------------------------===//
// Checks shared by every backend
//===----------------------------------------------------------------------===//

Communicator::~Communicator() = default;

std::string Communicator::who() const {
  return "rank " + std::to_string(rank_) + " of " + std::to_string(size_);
}

std::string Communicator::timeoutMessage(const std::string &what) const {
  return who() + ": " + what + " did not complete within " +
         formatSeconds(timeout_) +
         " s (DSRT_COMM_TIMEOUT): a peer rank died, hung or never called it";
}

dsrt_status Communicator::usable(const char *what) const {
  if (finalized_)
    return fail(DSRT_ERROR_ARGUMENT,
                std::string(what) + ": the communicator is finalized");
  return DSRT_OK;
}

dsrt_status Communicator::barrier() {
  if (dsrt_status s = usable("barrier"))
    return s;
  return doBarrier();
}

dsrt_status Communicator::allReduceSum(float *data, int64_t count) {
  if (dsrt_status s = usable("all_reduce"))
    return s;
  if (count < 0)
    return fail(DSRT_ERROR_ARGUMENT,
                "all_reduce: count must be >= 0, got " + std::to_string(count));
  if (count > 0 && !data)
    return fail(DSRT_ERROR_ARGUMENT, "all_reduce: data is NULL");
  return doAllReduceSum(data, count);
}

dsrt_status Communicator::allGather(const void *send, int64_t bytesPerRank,
                                    void *recv) {
  if (dsrt_status s = usable("all_gather"))
    return s;
  if (bytesPerRank < 0)
    return fail(DSRT_ERROR_ARGUMENT,
                "all_gather: bytes_per_rank must be >= 0, got " +
                    std::to_string(bytesPerRank));
  if (bytesPerRank > 0 && (!send || !recv))
    return fail(DSRT_ERROR_ARGUMENT, std::string("all_gather: ") +
                                         (send ? "recv" : "send") + " is NULL");
  return doAllGather(send, bytesPerRank, recv);
}

static dsrt_status checkRows(const char *what, const char *name,
                             const int64_t *rows, int size) {
  if (!rows)
    return fail(DSRT_ERROR_ARGUMENT,
                std::string(what) + ": " + name + " is NULL");
  for (int p = 0; p < size; ++p)
    if (rows[p] < 0)
      return fail(DSRT_ERROR_ARGUMENT,
                  std::string(what) + ": " + name + "[" + std::to_string(p) +
                      "] must be >= 0, got " + std::to_string(rows[p]));
  return DSRT_OK;
}

dsrt_status Communicator::allToAllCounts(const int64_t *sendRows,
                                         int64_t *recvRows) {
  if (dsrt_status s = usable("all_to_all_counts"))
    return s;
  if (dsrt_status s =
          checkRows("all_to_all_counts", "send_rows", sendRows, size_))
    return s;
  if (!recvRows)
    return fail(DSRT_ERROR_ARGUMENT, "all_to_all_counts: recv_rows is NULL");
  return doAllToAllCounts(sendRows, recvRows);
}

dsrt_status Communicator::allToAllV(const void *send, const int64_t *sendRows,
                                    void *recv, const int64_t *recvRows,
                                    int64_t rowBytes) {
  if (dsrt_status s = usable("all_to_all"))
    return s;
  if (rowBytes <= 0)
    return fail(DSRT_ERROR_ARGUMENT, "all_to_all: row_bytes must be > 0, got " +
                                         std::to_string(rowBytes));
  if (dsrt_status s = checkRows("all_to_all", "send_rows", sendRows, size_))
    return s;
  if (dsrt_status s = checkRows("all_to_all", "recv_rows", recvRows, size_))
    return s;
  int64_t sent = 0, received = 0;
  for (int p = 0; p < size_; ++p) {
    sent += sendRows[p];
    received += recvRows[p];
  }
  if (sent > 0 && !send)
    return fail(DSRT_ERROR_ARGUMENT, "all_to_all: send is NULL");
  if (received > 0 && !recv)
    return fail(DSRT_ERROR_ARGUMENT, "all_to_all: recv is NULL");
  return doAllToAllV(send, sendRows, recv, recvRows, rowBytes);
}

dsrt_status Communicator::broadcast(void *data, int64_t bytes, int root) {
  if (dsrt_status s = usable("broadcast"))
    return s;
  if (root < 0 || root >= size_)
    return fail(DSRT_ERROR_ARGUMENT, "broadcast: root " + std::to_string(root) +
                                         " is not a rank (size " +
                                         std::to_string(size_) + ")");
  if (bytes < 0)
    return fail(DSRT_ERROR_ARGUMENT,
                "broadcast: bytes must be >= 0, got " + std::to_string(bytes));
  if (bytes > 0 && !data)
    return fail(DSRT_ERROR_ARGUMENT, "broadcast: data is NULL");
  return doBroadcast(data, bytes, root);
}

dsrt_status Communicator::finalize() {
  if (finalized_)
    return DSRT_OK;
  dsrt_status s = doFinalize();
  finalized_ = true;
  return s;
}

//===----------------------------------------------------------------------===//
// One process
//===----------------------------------------------------------------------===//

namespace {

class SingleCommunicator final : public Communicator {
public:
  explicit SingleCommunicator(double timeout) : Communicator(0, 1, timeout) {}
  Backend backend() const override { return Backend::Single; }

protected:
  dsrt_status doBarrier() override { return DSRT_OK; }
  dsrt_status doAllReduceSum(float *, int64_t) override { return DSRT_OK; }
  dsrt_status doAllGather(const void *send, int64_t bytes,
                          void *recv) override {
    if (bytes > 0 && send != recv)
      std::memmove(recv, send, static_cast<size_t>(bytes));
    return DSRT_OK;
  }
  dsrt_status doAllToAllCounts(const int64_t *sendRows,
                               int64_t *recvRows) override {
    recvRows[0] = sendRows[0];
    return DSRT_OK;
  }
  dsrt_status doAllToAllV(const void *send, const int64_t *sendRows, void *recv,
                          const int64_t *recvRows, int64_t rowBytes) override {
    if (sendRows[0] != recvRows[0])
      return fail(DSRT_ERROR_ARGUMENT,
                  "all_to_all: send_rows[0] (" + std::to_string(sendRows[0]) +
                      ") != recv_rows[0] (" + std::to_string(recvRows[0]) +
                      ") on a single rank");
    if (sendRows[0] > 0 && send != recv)
      std::memmove(recv, send, static_cast<size_t>(sendRows[0] * rowBytes));
    return DSRT_OK;
  }
  dsrt_status doBroadcast(void *, int64_t, int) override { return DSRT_OK; }
  dsrt_status doFinalize() override { return DSRT_OK; }
};

} // namespace

std::unique_ptr<Communicator> dsrt::comm::createSingle(double timeout) {
  return std::make_unique<SingleCommunicator>(timeout);
}
