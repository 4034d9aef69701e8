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

class Pool {
public:
  explicit Pool(int threads) {
    for (int i = 1; i < threads; ++i)
      workers.emplace_back([this, i] { loop(i); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stopping = true;
      ++generation;
    }
    wake.notify_all();
    for (std::thread &t : workers)
      t.join();
  }
  int size() const { return int(workers.size()) + 1; }

  /// Runs job(i) for i in [0, size()) and waits; the caller runs job(0).
  void run(const std::function<void(int)> &fn) {
    job = &fn;
    pending.store(int(workers.size()), std::memory_order_relaxed);
    {
      std::lock_guard<std::mutex> lock(mutex);
      generation.fetch_add(1, std::memory_order_release);
    }
    wake.notify_all();
    fn(0);
    // The workers' shares end about when the caller's does: spin briefly,
    // then sleep until the last one signals.
    if (!spinUntil([&] { return pending.load(std::memory_order_acquire) == 0; })) {
      std::unique_lock<std::mutex> lock(mutex);
      done.wait(lock,
                [&] { return pending.load(std::memory_order_acquire) == 0; });
    }
    job = nullptr;
  }

private:
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

  void loop(int index) {
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
      (*job)(index);
      if (pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mutex); // no lost wake-up
        done.notify_one();
      }
    }
  }

  static constexpr std::chrono::microseconds kSpin{50};
  std::vector<std::thread> workers;
  std::mutex mutex;
  std::condition_variable wake, done;
  std::atomic<uint64_t> generation{0};
  std::atomic<int> pending{0};
  const std::function<void(int)> *job = nullptr;
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
  int64_t per = (chunks + threads - 1) / threads * grain;
  p.run([&](int i) {
    if (i >= threads)
      return;
    int64_t begin = std::min<int64_t>(n, int64_t(i) * per);
    int64_t end = std::min<int64_t>(n, begin + per);
    if (begin < end)
      body(begin, end);
  });
  inside = false;
}
