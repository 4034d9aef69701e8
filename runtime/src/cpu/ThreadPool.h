//===- ThreadPool.h - the runtime's persistent thread pool ----*- C++ -*-===//
//
// Decode runs hundreds of small matrix-vector products per token; starting
// threads for each would cost more than the product. The workers live for
// the process, spin briefly for the next job (a job every few microseconds
// during decode) with the pause hint, then sleep on a condition variable.
//
//===----------------------------------------------------------------------===//
#ifndef DSRT_CPU_THREADPOOL_H
#define DSRT_CPU_THREADPOOL_H

#include <cstdint>
#include <functional>

namespace dsrt::cpu {

/// Calls body(begin, end) over [0, n) split into a few contiguous ranges
/// per thread, which the caller's thread and the workers claim as they come
/// (the caller takes them all when no worker is free); returns when all
/// are done. Ranges are multiples of `grain` except the last. Nested calls
/// and calls from several threads at once run serially on the caller.
void parallelFor(int64_t n, int64_t grain,
                 const std::function<void(int64_t, int64_t)> &body);

/// Threads parallelFor uses: $DSRT_NUM_THREADS, else the hardware's.
int numThreads();

/// The grain up to `grain` (the largest of the best) whose tasks spread n
/// items most evenly over numThreads(): fewest items on the busiest
/// thread. A few large tasks claimed by 2 threads otherwise leave one idle
/// for a whole task (8 heads in tasks of 3 ran as 6 + 2; in tasks of 2,
/// 4 + 4). `grain` where n fits in one task.
int64_t evenGrain(int64_t n, int64_t grain);

/// What parallelFor has done since the process started: how a decode
/// step splits into parallel regions and whether the workers take their
/// share (ds-cpu-bench reports it per step).
struct PoolStats {
  int64_t regions = 0;      // calls split over the pool
  int64_t serial = 0;       // calls run whole on the caller (one chunk,
                            // nested, or another region running)
  int64_t chunks = 0;       // grain-sized chunks of the split calls
  int64_t workerChunks = 0; // of those, run by a worker
  double seconds = 0;       // wall time inside split calls
  double busySeconds = 0;   // thread time running their chunks, all
                            // threads: the rest of threads x seconds is
                            // a core idle (waking, waiting, imbalance)
};
PoolStats poolStats();

} // namespace dsrt::cpu

#endif // DSRT_CPU_THREADPOOL_H
