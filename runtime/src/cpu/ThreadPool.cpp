//===- ThreadPool.cpp - a persistent pool for the runtime's own kernels ---===//
#include "cpu/ThreadPool.h"
#include "cpu/WorkSlices.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

using namespace dsrt::cpu;

namespace {

/// True on a thread running a region's chunks (the caller during its
/// region, a worker always): parallelFor there runs inline.
thread_local bool inside = false;

/// Each job's chunks are split into one contiguous slice per thread
/// (WorkSlices.h), which the caller and the workers take from the front and
/// steal from each other's back, so the caller never waits for a worker
/// that has not started: on a machine shared with other processes a worker
/// may take milliseconds to be scheduled, and the caller then runs its
/// slice too instead of idling. It waits only for chunks a worker has
/// claimed (a worker running them).
class Pool {
public:
  explicit Pool(int threads) : slices(threads) {
    for (int i = 1; i < threads; ++i)
      workers.emplace_back([this, i] { loop(i); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stopping = true;
      generation.fetch_add(1, std::memory_order_release);
    }
    wake.notify_all();
    for (std::thread &t : workers)
      t.join();
  }
  int size() const { return int(workers.size()) + 1; }

  /// What one run() saw: how many chunks the workers ran, how long the
  /// caller waited for them after its last claim, and how long after the
  /// job's start the first worker claimed a chunk (-1: none did).
  struct RunResult {
    int64_t workerChunks = 0, waitNs = 0, workerStartNs = -1;
  };

  /// Runs fn(begin, end) over runs of chunks covering [0, chunks) once
  /// (chunks < WorkSlices::kMaxChunks) and waits. `busyNs` gets the
  /// nanoseconds every thread spent running chunks; with `timed` (a
  /// trace), the RunResult's times are measured too. A decode step runs
  /// ~150 regions, and a clock read costs ~25 ns here: the untraced path
  /// reads it once per run of chunks and not to time the waits.
  RunResult run(int64_t chunks, const std::function<void(int64_t, int64_t)> &fn,
                std::atomic<int64_t> &busyNs, bool timed) {
    uint64_t g;
    {
      std::lock_guard<std::mutex> lock(mutex);
      g = generation.load(std::memory_order_relaxed) + 1;
      job = &fn;
      jobBusy = &busyNs;
      remaining.store(chunks, std::memory_order_relaxed);
      slices.reset(g, chunks);
      jobTimed = timed;
      if (timed)
        jobStart = Clock::now();
      workerStart.store(-1, std::memory_order_relaxed);
      generation.store(g, std::memory_order_release);
    }
    wake.notify_all();
    int64_t b, e, mine = 0;
    Clock::time_point stamp;
    for (bool first = true; slices.claim(g, 0, b, e); first = false) {
      if (first)
        stamp = Clock::now();
      runChunks(fn, b, e, busyNs, stamp);
      mine += e - b;
    }
    // Every chunk is claimed; wait for the ones a worker is running. Not
    // for workers that woke but claimed nothing: one the scheduler
    // preempts between waking and finding the job empty (a spinning
    // thread has used its time slice: likely on a shared machine) would
    // otherwise hold the caller for a time slice.
    auto finished = [&] {
      return remaining.load(std::memory_order_acquire) == 0;
    };
    Clock::time_point waitFrom;
    if (timed)
      waitFrom = Clock::now();
    if (!spinUntil(finished)) {
      std::unique_lock<std::mutex> lock(mutex);
      done.wait(lock, finished);
    }
    RunResult r;
    r.workerChunks = chunks - mine;
    if (timed) {
      r.waitNs = nanosBetween(waitFrom, Clock::now());
      r.workerStartNs = workerStart.load(std::memory_order_relaxed);
    }
    return r;
  }

private:
  using Clock = std::chrono::steady_clock;
  static int64_t nanosBetween(Clock::time_point from, Clock::time_point to) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(to - from)
        .count();
  }

  /// Polls `ready` with the CPU's pause hint for up to kSpin; true when it
  /// became true. Never yields to the scheduler: a spinning thread either
  /// gets its work within microseconds or goes to sleep.
  /// The clock is first read after 64 polls: most waits end before.
  template <typename Ready> static bool spinUntil(Ready ready) {
    Clock::time_point start;
    for (int i = 0;; ++i) {
      if (ready())
        return true;
      cpuRelax();
      if ((i & 63) == 63) {
        Clock::time_point now = Clock::now();
        if (i == 63)
          start = now;
        else if (now - start > kSpin)
          return ready();
      }
    }
  }

  static void cpuRelax() {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
  }

  void loop(int slot) {
    inside = true;
    uint64_t seen = 0;
    for (;;) {
      // During decode the next job comes within microseconds of the last;
      // past that (single-threaded kernels, idle sessions) the worker
      // sleeps on the condition variable instead of taking a core.
      auto fresh = [&] {
        return generation.load(std::memory_order_acquire) != seen;
      };
      if (!spinUntil(fresh)) {
        std::unique_lock<std::mutex> lock(mutex);
        wake.wait(lock, fresh);
      }
      seen = generation.load(std::memory_order_acquire);
      if (stopping)
        return;
      // A successful claim means job `seen`'s caller is still in run()
      // (it returns only once every chunk has run), so `job` is that
      // job's until this run's chunks are counted done.
      int64_t b, e;
      Clock::time_point stamp;
      for (bool first = true; slices.claim(seen, slot, b, e); first = false) {
        if (first) {
          stamp = Clock::now();
          int64_t none = -1;
          if (jobTimed)
            workerStart.compare_exchange_strong(
                none, nanosBetween(jobStart, stamp), std::memory_order_relaxed);
        }
        if (runChunks(*job, b, e, *jobBusy, stamp)) {
          std::lock_guard<std::mutex> lock(mutex); // no lost wake-up
          done.notify_all();
        }
      }
    }
  }

  /// Runs chunks [b, e) of the current job, adds the time since `stamp`
  /// (the thread's previous run's end, or its first claim) to `busyNs`
  /// and moves `stamp` to now, and counts them done; true when they were
  /// the job's last. One clock read a run: the claims between runs count
  /// as busy.
  bool runChunks(const std::function<void(int64_t, int64_t)> &fn, int64_t b,
                 int64_t e, std::atomic<int64_t> &busyNs,
                 Clock::time_point &stamp) {
    fn(b, e);
    Clock::time_point now = Clock::now();
    busyNs.fetch_add(nanosBetween(stamp, now), std::memory_order_relaxed);
    stamp = now;
    return remaining.fetch_sub(e - b, std::memory_order_acq_rel) == e - b;
  }

  static constexpr std::chrono::microseconds kSpin{50};

  std::vector<std::thread> workers;
  std::mutex mutex;
  std::condition_variable wake, done;
  std::atomic<uint64_t> generation{0};
  WorkSlices slices;
  std::atomic<int64_t> remaining{0}; // the job's chunks not yet run
  const std::function<void(int64_t, int64_t)> *job = nullptr;
  std::atomic<int64_t> *jobBusy = nullptr; // job's, like `job`
  // Whether the job is timed, when it was published (like `job`, read only
  // after a claim), and the nanoseconds after that of the first worker's
  // first claim.
  bool jobTimed = false;
  std::chrono::steady_clock::time_point jobStart;
  std::atomic<int64_t> workerStart{-1};
  bool stopping = false;
};

int configuredThreads() {
  if (const char *env = std::getenv("DSRT_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n >= 1)
      return std::min(n, 256);
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

Pool &pool() {
  // Never destroyed: workers may still be parked when static destructors
  // run, and joining them there could deadlock at exit.
  static Pool *p = new Pool(configuredThreads());
  return *p;
}

std::mutex busy; // one parallel region at a time; others run serially

/// PoolStats, written by the thread holding `busy` (serial by any).
struct Counters {
  std::atomic<int64_t> regions{0}, serial{0}, chunks{0}, workerChunks{0},
      nanoseconds{0}, busyNanoseconds{0};
};
Counters counters;

/// $DSRT_POOL_TRACE set: at exit, stderr gets one line per parallelFor
/// shape (n, grain) with its calls, how many were split over the pool,
/// their wall time and the threads' time running chunks (top-level calls
/// only; busy / (threads x seconds) is the shape's parallel efficiency): what
/// bench/pool_trace.py turns into a per-token breakdown of decode.
class RegionTrace {
public:
  using Clock = std::chrono::steady_clock;
  static RegionTrace *get() {
    static RegionTrace *t =
        std::getenv("DSRT_POOL_TRACE") ? new RegionTrace : nullptr;
    return t;
  }
  void record(int64_t n, int64_t grain, bool split, Clock::time_point begin,
              Clock::time_point end, int64_t busyNs = 0, int64_t waitNs = 0,
              int64_t workerStartNs = -1) {
    std::lock_guard<std::mutex> lock(mutex);
    Shape &s = shapes[{n, grain}];
    ++s.calls;
    s.split += split;
    double wall = std::chrono::duration<double>(end - begin).count();
    s.seconds += wall;
    s.busy += split ? double(busyNs) * 1e-9 : wall;
    s.wait += double(waitNs) * 1e-9;
    if (split && workerStartNs < 0)
      ++s.noWorker;
    else if (split)
      s.workerStart += double(workerStartNs) * 1e-9;
  }

private:
  struct Shape {
    int64_t calls = 0, split = 0, noWorker = 0;
    double seconds = 0, busy = 0, wait = 0, workerStart = 0;
  };
  /// Prints from a static's destructor: the trace itself is never freed,
  /// like the pool.
  struct Printer {
    ~Printer() {
      RegionTrace *t = RegionTrace::get();
      if (!t)
        return;
      std::lock_guard<std::mutex> lock(t->mutex);
      for (const auto &[shape, s] : t->shapes)
        std::fprintf(stderr,
                     "dsrt-pool n=%lld grain=%lld calls=%lld split=%lld "
                     "seconds=%.6f busy=%.6f wait=%.6f worker_start=%.6f "
                     "no_worker=%lld\n",
                     (long long)shape.first, (long long)shape.second,
                     (long long)s.calls, (long long)s.split, s.seconds, s.busy,
                     s.wait, s.workerStart, (long long)s.noWorker);
    }
  };
  static Printer printer;
  std::mutex mutex;
  std::map<std::pair<int64_t, int64_t>, Shape> shapes;
};
RegionTrace::Printer RegionTrace::printer;

} // namespace

int dsrt::cpu::numThreads() { return pool().size(); }

int64_t dsrt::cpu::evenGrain(int64_t n, int64_t grain) {
  grain = std::max<int64_t>(grain, 1);
  int64_t threads = numThreads();
  if (n <= grain || threads <= 1)
    return grain;
  // The most items one thread runs: ceil(tasks / threads) tasks of g
  // (within one item of what dynamic claiming gives). O(grain) steps, and
  // grain < n here.
  auto load = [&](int64_t g) {
    return ((n + g - 1) / g + threads - 1) / threads * g;
  };
  int64_t best = grain;
  for (int64_t g = grain - 1; g >= 1; --g)
    if (load(g) < load(best))
      best = g;
  return best;
}

void dsrt::cpu::parallelFor(int64_t n, int64_t grain,
                            const std::function<void(int64_t, int64_t)> &body) {
  if (n <= 0)
    return;
  grain = std::max<int64_t>(grain, 1);
  int64_t chunks = (n + grain - 1) / grain;
  Pool &p = pool();
  int threads = int(std::min<int64_t>(p.size(), chunks));
  RegionTrace *trace = inside ? nullptr : RegionTrace::get();
  std::unique_lock<std::mutex> lock(busy, std::defer_lock);
  if (threads <= 1 || inside || !lock.try_lock()) {
    counters.serial.fetch_add(1, std::memory_order_relaxed);
    if (!trace)
      return body(0, n);
    auto start = std::chrono::steady_clock::now();
    body(0, n);
    trace->record(n, grain, false, start, std::chrono::steady_clock::now());
    return;
  }
  auto start = std::chrono::steady_clock::now();
  inside = true;
  // Grain-sized chunks, one contiguous slice of them per thread: no coarse
  // pieces that a late thread would hold up, no slices interleaved.
  int64_t per = grain;
  if (chunks >= WorkSlices::kMaxChunks) {
    per = (n + WorkSlices::kMaxChunks - 2) / (WorkSlices::kMaxChunks - 1);
    per = (per + grain - 1) / grain * grain;
  }
  int64_t pieces = (n + per - 1) / per;
  int64_t busyBefore = counters.busyNanoseconds.load(std::memory_order_relaxed);
  Pool::RunResult r = p.run(
      pieces,
      [&](int64_t cb, int64_t ce) { body(cb * per, std::min(n, ce * per)); },
      counters.busyNanoseconds, trace != nullptr);
  int64_t byWorkers = r.workerChunks;
  counters.regions.fetch_add(1, std::memory_order_relaxed);
  counters.chunks.fetch_add(pieces, std::memory_order_relaxed);
  counters.workerChunks.fetch_add(byWorkers, std::memory_order_relaxed);
  auto end = std::chrono::steady_clock::now();
  counters.nanoseconds.fetch_add(
      std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count(),
      std::memory_order_relaxed);
  inside = false;
  if (trace)
    trace->record(n, grain, true, start, end,
                  counters.busyNanoseconds.load(std::memory_order_relaxed) -
                      busyBefore,
                  r.waitNs, r.workerStartNs);
}

PoolStats dsrt::cpu::poolStats() {
  PoolStats s;
  s.regions = counters.regions.load(std::memory_order_relaxed);
  s.serial = counters.serial.load(std::memory_order_relaxed);
  s.chunks = counters.chunks.load(std::memory_order_relaxed);
  s.workerChunks = counters.workerChunks.load(std::memory_order_relaxed);
  s.seconds =
      double(counters.nanoseconds.load(std::memory_order_relaxed)) * 1e-9;
  s.busySeconds =
      double(counters.busyNanoseconds.load(std::memory_order_relaxed)) * 1e-9;
  return s;
}
