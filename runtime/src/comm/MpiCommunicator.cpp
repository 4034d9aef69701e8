//===- MpiCommunicator.cpp - collectives over MPI, on host buffers --------===//
//
// libmpich is opened with dlopen, not linked: libdsrt then starts on
// machines without MPI (one process, or a GPU box that only runs the
// single-rank path), and any MPI of the MPICH ABI (MPICH, Intel MPI,
// MVAPICH, Cray MPICH: libmpi.so.12) serves at run time. The handles and
// constants come from MPICH's mpi.h at build time: in that ABI they are
// integer constants, so no symbol of the library is needed to name them.
//
// Each collective is the nonblocking form (MPI_Iallreduce, ...) polled
// against the deadline: MPI has no timeout of its own and a blocking call
// waits forever for a peer that died.
//
//===----------------------------------------------------------------------===//
#include "comm/Communicator.h"
#include "comm/JobAbort.h"

#include "api/Error.h"

#include <string>

#if DSRT_HAVE_MPI

#include <mpi.h>

#include <chrono>
#include <climits>
#include <cstdlib>
#include <dlfcn.h>
#include <mutex>
#include <thread>
#include <vector>

using namespace dsrt;
using namespace dsrt::comm;

namespace {

struct MpiApi {
  decltype(&MPI_Initialized) Initialized;
  decltype(&MPI_Finalized) Finalized;
  decltype(&MPI_Init_thread) Init_thread;
  decltype(&MPI_Finalize) Finalize;
  decltype(&MPI_Abort) Abort;
  decltype(&MPI_Comm_dup) Comm_dup;
  decltype(&MPI_Comm_free) Comm_free;
  decltype(&MPI_Comm_rank) Comm_rank;
  decltype(&MPI_Comm_size) Comm_size;
  decltype(&MPI_Comm_set_errhandler) Comm_set_errhandler;
  decltype(&MPI_Error_string) Error_string;
  decltype(&MPI_Test) Test;
  decltype(&MPI_Ibarrier) Ibarrier;
  decltype(&MPI_Iallreduce) Iallreduce;
  decltype(&MPI_Iallgather) Iallgather;
  decltype(&MPI_Ialltoall) Ialltoall;
  decltype(&MPI_Ialltoallv) Ialltoallv;
  decltype(&MPI_Ibcast) Ibcast;
  decltype(&MPI_Type_contiguous) Type_contiguous;
  decltype(&MPI_Type_commit) Type_commit;
  decltype(&MPI_Type_free) Type_free;
};

template <typename F>
void lookup(void *lib, const char *name, F &fn, std::string &missing) {
  fn = reinterpret_cast<F>(dlsym(lib, name));
  if (!fn && missing.empty())
    missing = name;
}

/// The process-wide MPI state: loaded once, initialized once, finalized
/// when the last communicator ends (MPI cannot start twice in a process).
struct MpiState {
  std::mutex mu;
  bool loadTried = false;
  std::string loadError;
  MpiApi api{};
  bool weInitialized = false;
  int live = 0;
};

MpiState &state() {
  static MpiState s;
  return s;
}

const MpiApi *loadMpi(std::string &error) {
  MpiState &s = state();
  if (s.loadTried) {
    error = s.loadError;
    return s.loadError.empty() ? &s.api : nullptr;
  }
  s.loadTried = true;
  const char *env = std::getenv("DSRT_MPI_LIBRARY");
  void *lib = nullptr;
  std::string tried, why;
  for (const char *name : {env, "libmpich.so.12", "libmpi.so.12"}) {
    if (!name || !*name)
      continue;
    tried += tried.empty() ? name : std::string(", ") + name;
    if ((lib = dlopen(name, RTLD_NOW | RTLD_LOCAL)))
      break;
    if (why.empty()) {
      const char *e = dlerror();
      why = e ? e : "";
    }
    if (env && *env)
      break; // an explicit choice is not replaced by a guess
  }
  if (!lib) {
    s.loadError = "no MPI: cannot load " + tried +
                  (why.empty() ? "" : " (" + why + ")") +
                  "; install mpich (Debian: mpich libmpich-dev) or set "
                  "DSRT_MPI_LIBRARY";
    error = s.loadError;
    return nullptr;
  }
  MpiApi &a = s.api;
  std::string missing;
  lookup(lib, "MPI_Initialized", a.Initialized, missing);
  lookup(lib, "MPI_Finalized", a.Finalized, missing);
  lookup(lib, "MPI_Init_thread", a.Init_thread, missing);
  lookup(lib, "MPI_Finalize", a.Finalize, missing);
  lookup(lib, "MPI_Abort", a.Abort, missing);
  lookup(lib, "MPI_Comm_dup", a.Comm_dup, missing);
  lookup(lib, "MPI_Comm_free", a.Comm_free, missing);
  lookup(lib, "MPI_Comm_rank", a.Comm_rank, missing);
  lookup(lib, "MPI_Comm_size", a.Comm_size, missing);
  lookup(lib, "MPI_Comm_set_errhandler", a.Comm_set_errhandler, missing);
  lookup(lib, "MPI_Error_string", a.Error_string, missing);
  lookup(lib, "MPI_Test", a.Test, missing);
  lookup(lib, "MPI_Ibarrier", a.Ibarrier, missing);
  lookup(lib, "MPI_Iallreduce", a.Iallreduce, missing);
  lookup(lib, "MPI_Iallgather", a.Iallgather, missing);
  lookup(lib, "MPI_Ialltoall", a.Ialltoall, missing);
  lookup(lib, "MPI_Ialltoallv", a.Ialltoallv, missing);
  lookup(lib, "MPI_Ibcast", a.Ibcast, missing);
  lookup(lib, "MPI_Type_contiguous", a.Type_contiguous, missing);
  lookup(lib, "MPI_Type_commit", a.Type_commit, missing);
  lookup(lib, "MPI_Type_free", a.Type_free, missing);
  if (!missing.empty()) {
    s.loadError = "MPI library " + tried + " lacks " + missing +
                  " (not an MPI-3 library of the MPICH ABI)";
    error = s.loadError;
    return nullptr;
  }
  return &a;
}

void abortWorld(int code) {
  const MpiApi &a = state().api;
  int up = 0, down = 0;
  if (a.Initialized && a.Initialized(&up) == MPI_SUCCESS && up &&
      a.Finalized(&down) == MPI_SUCCESS && !down)
    a.Abort(MPI_COMM_WORLD, code);
}

/// A rank leaving with a communicator open: its peers would wait for it
/// until their timeout (or, when it exits with 0, mpiexec's cleanup kills
/// them and reports success). Ending the job here says what happened.
std::string openCommOwner;
void onExitWithOpenComm() {
  if (state().live > 0)
    abortJob(openCommOwner + ": exited without dsrt_comm_finalize (a rank "
                             "that stops early ends the job)");
}

class MpiCommunicator final : public Communicator {
public:
  MpiCommunicator(const MpiApi &api, MPI_Comm comm, int rank, int size,
                  double timeout)
      : Communicator(rank, size, timeout), api_(api), comm_(comm) {}
  ~MpiCommunicator() override { finalize(); }
  Backend backend() const override { return Backend::Mpi; }

protected:
  dsrt_status doBarrier() override {
    MPI_Request req;
    start(api_.Ibarrier(comm_, &req), "barrier");
    wait(req, "barrier");
    return DSRT_OK;
  }

  dsrt_status doAllReduceSum(float *data, int64_t count) override {
    if (count > INT_MAX)
      return tooLarge("all_reduce", count);
    std::string what = "all_reduce (" + std::to_string(count) + " f32)";
    MPI_Request req;
    start(api_.Iallreduce(MPI_IN_PLACE, data, static_cast<int>(count),
                          MPI_FLOAT, MPI_SUM, comm_, &req),
          what);
    wait(req, what);
    return DSRT_OK;
  }

  dsrt_status doAllGather(const void *send, int64_t bytes,
                          void *recv) override {
    if (bytes > INT_MAX)
      return tooLarge("all_gather", bytes);
    std::string what = "all_gather (" + std::to_string(bytes) + " bytes/rank)";
    const void *src = send == static_cast<const char *>(recv) + rank_ * bytes
                          ? MPI_IN_PLACE
                          : send;
    MPI_Request req;
    start(api_.Iallgather(src, static_cast<int>(bytes), MPI_BYTE, recv,
                          static_cast<int>(bytes), MPI_BYTE, comm_, &req),
          what);
    wait(req, what);
    return DSRT_OK;
  }

  dsrt_status doAllToAllCounts(const int64_t *sendRows,
                               int64_t *recvRows) override {
    MPI_Request req;
    start(api_.Ialltoall(sendRows, 1, MPI_INT64_T, recvRows, 1, MPI_INT64_T,
                         comm_, &req),
          "all_to_all_counts");
    wait(req, "all_to_all_counts");
    return DSRT_OK;
  }

  dsrt_status doAllToAllV(const void *send, const int64_t *sendRows, void *recv,
                          const int64_t *recvRows, int64_t rowBytes) override {
    if (rowBytes > INT_MAX)
      return tooLarge("all_to_all row", rowBytes);
    // Counts and displacements are in rows of one contiguous type, so a
    // payload may pass 2 GiB as long as each side stays under 2^31 rows.
    std::vector<int> sc(size_), sd(size_), rc(size_), rd(size_);
    int64_t so = 0, ro = 0;
    for (int p = 0; p < size_; ++p) {
      if (so > INT_MAX || ro > INT_MAX || sendRows[p] > INT_MAX ||
          recvRows[p] > INT_MAX)
        return tooLarge("all_to_all rows", std::max(so, ro));
      sc[p] = static_cast<int>(sendRows[p]);
      sd[p] = static_cast<int>(so);
      rc[p] = static_cast<int>(recvRows[p]);
      rd[p] = static_cast<int>(ro);
      so += sendRows[p];
      ro += recvRows[p];
    }
    std::string what = "all_to_all (" + std::to_string(so) + " rows out, " +
                       std::to_string(ro) + " in, " + std::to_string(rowBytes) +
                       " bytes each)";
    MPI_Datatype row;
    start(api_.Type_contiguous(static_cast<int>(rowBytes), MPI_BYTE, &row),
          what);
    start(api_.Type_commit(&row), what);
    MPI_Request req;
    start(api_.Ialltoallv(send, sc.data(), sd.data(), row, recv, rc.data(),
                          rd.data(), row, comm_, &req),
          what);
    wait(req, what);
    api_.Type_free(&row);
    return DSRT_OK;
  }

  dsrt_status doBroadcast(void *data, int64_t bytes, int root) override {
    if (bytes > INT_MAX)
      return tooLarge("broadcast", bytes);
    std::string what = "broadcast (" + std::to_string(bytes) +
                       " bytes from rank " + std::to_string(root) + ")";
    MPI_Request req;
    start(
        api_.Ibcast(data, static_cast<int>(bytes), MPI_BYTE, root, comm_, &req),
        what);
    wait(req, what);
    return DSRT_OK;
  }

  dsrt_status doFinalize() override {
    // The barrier keeps a rank from finalizing (and MPI from tearing down
    // its connections) while a peer still waits on a collective.
    doBarrier();
    api_.Comm_free(&comm_);
    MpiState &s = state();
    std::lock_guard<std::mutex> lock(s.mu);
    if (--s.live == 0 && s.weInitialized) {
      setJobAbortHook(nullptr);
      api_.Finalize();
    }
    return DSRT_OK;
  }

private:
  dsrt_status tooLarge(const char *what, int64_t n) {
    return fail(DSRT_ERROR_ARGUMENT, std::string(what) + ": " +
                                         std::to_string(n) +
                                         " exceeds MPI's int count (2^31 - 1)");
  }

  std::string describe(int rc) const {
    char text[MPI_MAX_ERROR_STRING + 1] = {0};
    int len = 0;
    if (api_.Error_string(rc, text, &len) != MPI_SUCCESS)
      return "MPI error " + std::to_string(rc);
    std::string s(text, static_cast<size_t>(len));
    for (char &c : s) // one line, whatever MPI writes
      if (c == '\n')
        c = ' ';
    return s;
  }

  /// A failed start or wait leaves the communicator unusable (the peers are
  /// inside the collective): the job ends with MPI's reason.
  void start(int rc, const std::string &what) {
    if (rc != MPI_SUCCESS)
      abortJob(who() + ": " + what + ": " + describe(rc));
  }

  void wait(MPI_Request &req, const std::string &what) {
    using namespace std::chrono;
    auto limit = steady_clock::now() + duration_cast<steady_clock::duration>(
                                           duration<double>(timeout_));
    for (unsigned spin = 0;; ++spin) {
      int done = 0;
      int rc = api_.Test(&req, &done, MPI_STATUS_IGNORE);
      if (rc != MPI_SUCCESS)
        abortJob(who() + ": " + what + ": " + describe(rc));
      if (done)
        return;
      if (steady_clock::now() > limit)
        abortJob(timeoutMessage(what));
      // Spin briefly (a decode step's collectives finish in microseconds),
      // then yield the core: ranks often share cores with their peers.
      if (spin >= 200)
        std::this_thread::sleep_for(microseconds(spin < 5000 ? 5 : 200));
    }
  }

  const MpiApi &api_;
  MPI_Comm comm_;
};

} // namespace

std::unique_ptr<Communicator> dsrt::comm::createMpi(double timeout,
                                                    std::string &error) {
  MpiState &s = state();
  std::lock_guard<std::mutex> lock(s.mu);
  const MpiApi *a = loadMpi(error);
  if (!a)
    return nullptr;
  int up = 0, down = 0;
  a->Initialized(&up);
  a->Finalized(&down);
  if (down) {
    error = "MPI was finalized in this process; it cannot start again";
    return nullptr;
  }
  if (!up) {
    // MPI_Init waits for every rank of the job: a rank that never starts
    // (crashed, or exited before init) would keep it waiting forever.
    Watchdog guard(timeout, "MPI_Init did not complete within " +
                                formatSeconds(timeout) +
                                " s (DSRT_COMM_TIMEOUT): a rank failed to "
                                "start");
    int provided = 0;
    int rc = a->Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided);
    if (rc != MPI_SUCCESS) {
      error = "MPI_Init_thread failed (error " + std::to_string(rc) + ")";
      return nullptr;
    }
    s.weInitialized = true;
  }
  setJobAbortHook(abortWorld);
  MPI_Comm comm;
  int rank = 0, size = 0;
  if (a->Comm_dup(MPI_COMM_WORLD, &comm) != MPI_SUCCESS ||
      a->Comm_set_errhandler(comm, MPI_ERRORS_RETURN) != MPI_SUCCESS ||
      a->Comm_rank(comm, &rank) != MPI_SUCCESS ||
      a->Comm_size(comm, &size) != MPI_SUCCESS) {
    error = "MPI: cannot set up a communicator over MPI_COMM_WORLD";
    return nullptr;
  }
  static bool exitHookInstalled = false;
  if (!exitHookInstalled) {
    std::atexit(onExitWithOpenComm);
    exitHookInstalled = true;
  }
  ++s.live;
  openCommOwner =
      "rank " + std::to_string(rank) + " of " + std::to_string(size);
  return std::make_unique<MpiCommunicator>(*a, comm, rank, size, timeout);
}

#else // !DSRT_HAVE_MPI

std::unique_ptr<dsrt::comm::Communicator>
dsrt::comm::createMpi(double, std::string &error) {
  error = "no MPI: this runtime was built without MPI headers (Debian: "
          "libmpich-dev)";
  return nullptr;
}

#endif
