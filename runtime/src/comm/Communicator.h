//===- Communicator.h - collectives between the ranks of a job --*- C++ -*-===//
//
// What a partitioned model calls between its ranks: the tensor-parallel
// all-reduce after o_proj and the row-split MLPs, the expert-parallel
// all-to-all that dispatches permuted tokens to the ranks owning their
// experts and combines them back, the vocabulary all-gather, broadcasts from
// the scheduling rank. Three backends: one process (size 1, no MPI needed),
// MPI on host buffers, NCCL on device buffers (bootstrapped over MPI).
//
// Every collective is synchronous: when it returns, the data is in place.
// A collective that does not complete within the timeout
// ($DSRT_COMM_TIMEOUT seconds, default 60) means a peer died, hung or never
// called it; nothing can be recovered from a half-done collective, so the
// rank prints one line naming the collective and aborts the whole job
// (MPI_Abort) instead of hanging. Bad arguments are checked before any
// communication and returned as DSRT_ERROR_ARGUMENT; the peers of a rank
// that returns such an error reach the timeout.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_COMM_COMMUNICATOR_H
#define DSRT_COMM_COMMUNICATOR_H

#include "dsrt/dsrt.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace dsrt::comm {

enum class Backend { Single, Mpi, Nccl };
const char *backendName(Backend b);

/// Seconds from $DSRT_COMM_TIMEOUT (default 60): a positive number, or an
/// error naming the variable.
bool timeoutFromEnvironment(double &seconds, std::string &error);
/// "60", "2.5": seconds as messages print them.
std::string formatSeconds(double seconds);

class Communicator {
public:
  virtual ~Communicator();
  virtual Backend backend() const = 0;
  int rank() const { return rank_; }
  int size() const { return size_; }
  double timeoutSeconds() const { return timeout_; }

  /// All ranks reach this point.
  dsrt_status barrier();
  /// data[i] = sum over ranks of data[i], in place.
  dsrt_status allReduceSum(float *data, int64_t count);
  /// recv[r * bytesPerRank ...] = rank r's send (size x bytesPerRank bytes);
  /// send may be recv + rank * bytesPerRank (in place).
  dsrt_status allGather(const void *send, int64_t bytesPerRank, void *recv);
  /// The first half of a data-dependent all-to-all: sendRows[p] = rows this
  /// rank sends to rank p; recvRows[p] = rows rank p sends to this one. Both
  /// arrays have size() entries on the host, whatever the backend.
  dsrt_status allToAllCounts(const int64_t *sendRows, int64_t *recvRows);
  /// The payload: rows of rowBytes bytes, sent to peers in rank order
  /// (sendRows[0] rows to rank 0 first), received in rank order; the counts
  /// are the ones allToAllCounts exchanged.
  dsrt_status allToAllV(const void *send, const int64_t *sendRows, void *recv,
                        const int64_t *recvRows, int64_t rowBytes);
  /// root's bytes to every rank.
  dsrt_status broadcast(void *data, int64_t bytes, int root);
  /// Ends the communicator (a last barrier first, so that no rank leaves
  /// while another still waits on it). Further calls fail.
  dsrt_status finalize();

protected:
  Communicator(int rank, int size, double timeout)
      : rank_(rank), size_(size), timeout_(timeout) {}
  virtual dsrt_status doBarrier() = 0;
  virtual dsrt_status doAllReduceSum(float *data, int64_t count) = 0;
  virtual dsrt_status doAllGather(const void *send, int64_t bytesPerRank,
                                  void *recv) = 0;
  virtual dsrt_status doAllToAllCounts(const int64_t *sendRows,
                                       int64_t *recvRows) = 0;
  virtual dsrt_status doAllToAllV(const void *send, const int64_t *sendRows,
                                  void *recv, const int64_t *recvRows,
                                  int64_t rowBytes) = 0;
  virtual dsrt_status doBroadcast(void *data, int64_t bytes, int root) = 0;
  virtual dsrt_status doFinalize() = 0;

  /// "rank 1 of 2": the prefix of every message this communicator writes.
  std::string who() const;
  /// The one line a stuck collective prints before the job is aborted.
  std::string timeoutMessage(const std::string &what) const;

  int rank_, size_;
  double timeout_;
  bool finalized_ = false;

private:
  dsrt_status usable(const char *what) const;
};

/// One process: rank 0 of 1; the collectives copy locally.
std::unique_ptr<Communicator> createSingle(double timeout);

/// The job started by mpiexec (MPI_COMM_WORLD, duplicated); libmpich is
/// loaded with dlopen on first use ($DSRT_MPI_LIBRARY overrides the name).
/// nullptr and a one-line `error` when MPI is missing or cannot start.
std::unique_ptr<Communicator> createMpi(double timeout, std::string &error);

/// NCCL on device buffers (CUdeviceptr values passed as pointers), device 0
/// of those visible to this process, its unique id broadcast over
/// `bootstrap` (which it keeps for counts and barriers, and owns).
/// libnccl.so.2 is loaded with dlopen ($DSRT_NCCL overrides the path).
std::unique_ptr<Communicator>
createNccl(std::unique_ptr<Communicator> bootstrap, std::string &error);

/// Whether the environment says an MPI launcher (mpiexec, srun) started
/// this process: PMI_RANK, PMIX_RANK or OMPI_COMM_WORLD_RANK is set.
bool launchedByMpi();

/// Prints "dsrt: comm: <message>" on stderr and ends the whole job: every
/// rank when MPI is up (MPI_Abort), this process otherwise.
[[noreturn]] void abortJob(const std::string &message);

} // namespace dsrt::comm

#endif // DSRT_COMM_COMMUNICATOR_H
