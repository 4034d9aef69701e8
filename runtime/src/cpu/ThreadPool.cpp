//===- ThreadPool.cpp - a persistent pool for the runtime's own kernels ---===//
#include "cpu/ThreadPool.h"

#include <algorithm>
#include <cblas.h>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

using namespace dsrt::cpu;

namespace {

/// Jobs are split into chunks that the caller and the workers claim from
/// one atomic word, so the caller never waits for a worker that has not
/// started: on a machine shared with other processes a worker may take
/// milliseconds to be scheduled, and the caller then runs every chunk
/// itself instead of idling. It waits only for chunks a worker has
/// claimed (a worker running them).
class Pool {
public:
  explicit Pool(int threads) {
    for (int i = 1; i < threads; ++i)
      workers.emplace_back([this] { loop(); });
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

  /// Runs fn(c) for every chunk c in [0, chunks) (< 2^20) and waits.
  void run(int64_t chunks, const std::function<void(int64_t)> &fn) {
    uint64_t g;
    {
      std::lock_guard<std::mutex> lock(mutex);
      g = generation.load(std::memory_order_relaxed) + 1;
      job = &fn;
      state.store(pack(g, 0, uint64_t(chunks)), std::memory_order_release);
      generation.store(g, std::memory_order_release);
    }
    wake.notify_all();
    int64_t c;
    while (claim(g, c))
      fn(c);
    // Every chunk is claimed; the ones workers hold are running.
    if (!spinUntil([&] { return inflight.load(std::memory_order_acquire) == 0; })) {
      std::unique_lock<std::mutex> lock(mutex);
      done.wait(lock, [&] {
        return inflight.load(std::memory_order_acquire) == 0;
      });
    }
  }

private:
  /// state = generation (24 bits) | next chunk (20) | chunks (20).
  static uint64_t pack(uint64_t g, uint64_t next, uint64_t chunks) {
    return ((g & 0xFFFFFF) << 40) | (next << 20) | chunks;
  }

  /// Takes the next chunk of job g; false when the job is another or has
  /// no chunk left. A successful claim means job g's caller is still in
  /// run() (it returns only after its own claim fails), so `job` is g's.
  bool claim(uint64_t g, int64_t &chunk) {
    uint64_t v = state.load(std::memory_order_acquire);
    for (;;) {
      uint64_t next = (v >> 20) & 0xFFFFF, chunks = v & 0xFFFFF;
      if ((v >> 40) != (g & 0xFFFFFF) || next >= chunks)
        return false;
      if (state.compare_exchange_weak(v, v + (uint64_t(1) << 20),
                                      std::memory_order_acq_rel)) {
        chunk = int64_t(next);
        return true;
      }
    }
  }

  /// Polls `ready` with the CPU's pause hint for up to kSpin; true when it
  /// became true. Never yields to the scheduler: a spinning thread either
  /// gets its work within microseconds or goes to sleep.
  template <typename Ready> static bool spinUntil(Ready ready) {
    auto start = std::chrono::steady_clock::now();
    for (int i = 0;; ++i) {
      if (ready())
        return true;
      cpuRelax();
      if ((i & 63) == 63 && std::chrono::steady_clock::now() - start > kSpin)
        return ready();
    }
  }

  static void cpuRelax() {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
  }

  void loop() {
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
      // Counted before claiming, so a caller that saw no worker in flight
      // after its last claim cannot miss one that claims after.
      inflight.fetch_add(1, std::memory_order_acq_rel);
      int64_t c;
      while (claim(seen, c))
        (*job)(c);
      if (inflight.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mutex); // no lost wake-up
        done.notify_all();
      }
    }
  }

  static constexpr std::chrono::microseconds kSpin{50};

  std::vector<std::thread> workers;
  std::mutex mutex;
  std::condition_variable wake, done;
  std::atomic<uint64_t> generation{0};
  std::atomic<uint64_t> state{0};
  std::atomic<int> inflight{0};
  const std::function<void(int64_t)> *job = nullptr;
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
thread_local bool inside = false;

} // namespace

int dsrt::cpu::numThreads() { return pool().size(); }

void dsrt::cpu::singleThreadedBlas() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

void dsrt::cpu::parallelFor(int64_t n, int64_t grain,
                            const std::function<void(int64_t, int64_t)> &body) {
  if (n <= 0)
    return;
  grain = std::max<int64_t>(grain, 1);
  int64_t chunks = (n + grain - 1) / grain;
  Pool &p = pool();
  int threads = int(std::min<int64_t>(p.size(), chunks));
  std::unique_lock<std::mutex> lock(busy, std::defer_lock);
  if (threads <= 1 || inside || !lock.try_lock()) {
    body(0, n);
    return;
  }
  inside = true;
  // A few chunks per thread: claimed dynamically, they balance threads
  // that start late or run slower (a core shared with other processes).
  int64_t want = std::min<int64_t>(chunks, int64_t(threads) * 4);
  int64_t per = (chunks + want - 1) / want * grain;
  int64_t pieces = (n + per - 1) / per;
  p.run(pieces, [&](int64_t c) {
    int64_t begin = c * per;
    body(begin, std::min(n, begin + per));
  });
  inside = false;
}
