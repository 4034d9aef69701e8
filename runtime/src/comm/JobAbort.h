//===- JobAbort.h - ending a job that cannot continue -----------*- C++ -*-===//
//
// Backends that can end every rank of the job (MPI_Abort) register it here;
// abortJob() calls it after printing its line. The watchdog bounds a
// blocking call that offers no nonblocking form (MPI_Init, NCCL's
// communicator setup) the same way collectives are bounded.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_COMM_JOBABORT_H
#define DSRT_COMM_JOBABORT_H

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace dsrt::comm {

/// hook(exitCode) ends every rank; nullptr when MPI is down.
void setJobAbortHook(void (*hook)(int));

/// While alive, a thread waits `seconds`; if the guarded call has not
/// returned by then (the destructor did not run), it prints `message` and
/// ends the job: the call cannot be interrupted from inside.
class Watchdog {
public:
  Watchdog(double seconds, std::string message);
  ~Watchdog();
  Watchdog(const Watchdog &) = delete;
  Watchdog &operator=(const Watchdog &) = delete;

private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

} // namespace dsrt::comm

#endif // DSRT_COMM_JOBABORT_H
