//===- CommCheck.cpp - ds-comm-check: the communicator, end to end --------===//
//
// Run by every rank of `mpiexec -n N ds-comm-check` (or alone): each
// collective of dsrt_comm.h on data whose every result element is known in
// closed form, compared exactly. The all-to-all is deliberately imbalanced
// (rank 0 receives most rows, some pairs exchange none), then the rows go
// back (the MoE combine) and must return to their senders in order.
// --case selects a failure to stage instead: a rank that never starts, one
// that exits early, one that hangs; the others must end with one line.
//
// With --backend nccl the buffers live on the device (the CUDA driver is
// loaded here for cuMemAlloc and copies): bench/gpu/comm_check.sh.
//
//===----------------------------------------------------------------------===//
#include "dsrt/dsrt_comm.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <algorithm>
#include <cstdarg>
#include <cstdlib>
#include <cstring>
#include <dlfcn.h>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace {

int rank = 0, size = 1;

[[noreturn]] void die(const std::string &msg) {
  std::fprintf(stderr, "ds-comm-check: rank %d: %s\n", rank, msg.c_str());
  std::exit(1);
}

/// One report line in one write(2): ranks share mpiexec's output, which
/// may be unbuffered, so a line printed in pieces could be cut by another
/// rank's line (seen under load); a single short write to the pipe is not.
[[gnu::format(printf, 1, 2)]] void report(const char *fmt, ...) {
  char line[1024];
  va_list args;
  va_start(args, fmt);
  int n = std::vsnprintf(line, sizeof(line), fmt, args);
  va_end(args);
  if (n < 0)
    return;
  size_t len = std::min(size_t(n), sizeof(line) - 1);
  std::fflush(stdout);
  for (size_t done = 0; done < len;) {
    ssize_t w = ::write(1, line + done, len - done);
    if (w <= 0)
      return;
    done += size_t(w);
  }
}

void ok(dsrt_status s, const char *what) {
  if (s != DSRT_OK)
    die(std::string(what) + ": " + dsrt_last_error());
}

/// Host buffers, or device buffers through the driver for NCCL.
struct Memory {
  bool device = false;
  using CUresult = int;
  CUresult (*alloc)(unsigned long long *, size_t) = nullptr;
  CUresult (*release)(unsigned long long) = nullptr;
  CUresult (*htod)(unsigned long long, const void *, size_t) = nullptr;
  CUresult (*dtoh)(void *, unsigned long long, size_t) = nullptr;
  std::vector<void *> owned;

  void init(bool onDevice) {
    device = onDevice;
    if (!device)
      return;
    // The communicator already made device 0's primary context current.
    // The driver the runtime loaded ($DSRT_CUDA_DRIVER: the stand-in one
    // in tests).
    const char *env = std::getenv("DSRT_CUDA_DRIVER");
    std::string path = env && *env ? env : "libcuda.so.1";
    void *lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib)
      die("cannot load " + path);
    alloc = reinterpret_cast<decltype(alloc)>(dlsym(lib, "cuMemAlloc_v2"));
    release = reinterpret_cast<decltype(release)>(dlsym(lib, "cuMemFree_v2"));
    htod = reinterpret_cast<decltype(htod)>(dlsym(lib, "cuMemcpyHtoD_v2"));
    dtoh = reinterpret_cast<decltype(dtoh)>(dlsym(lib, "cuMemcpyDtoH_v2"));
    if (!alloc || !release || !htod || !dtoh)
      die(path + " lacks the memory entry points");
  }
  /// A buffer holding `bytes` of `host` (at least 1 byte).
  void *put(const void *host, size_t bytes) {
    size_t n = bytes ? bytes : 1;
    if (!device) {
      void *p = std::malloc(n);
      if (bytes)
        std::memcpy(p, host, bytes);
      owned.push_back(p);
      return p;
    }
    unsigned long long d = 0;
    if (alloc(&d, n) || (bytes && htod(d, host, bytes)))
      die("device allocation or upload failed");
    owned.push_back(reinterpret_cast<void *>(d));
    return reinterpret_cast<void *>(d);
  }
  void get(void *host, const void *buf, size_t bytes) {
    if (!bytes)
      return;
    if (!device)
      std::memcpy(host, buf, bytes);
    else if (dtoh(host, reinterpret_cast<unsigned long long>(buf), bytes))
      die("device download failed");
  }
  ~Memory() {
    for (void *p : owned)
      device ? (void)release(reinterpret_cast<unsigned long long>(p))
             : std::free(p);
  }
};

template <typename T>
void expectEqual(const char *check, size_t i, T want, T got) {
  if (want != got)
    die(std::string(check) + ": element " + std::to_string(i) + ": expected " +
        std::to_string(want) + ", got " + std::to_string(got));
}

void checkAllReduce(dsrt_comm *c, Memory &m) {
  const size_t n = 7168 + 3; // a V3 hidden row, and not a multiple of 8
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i)
    v[i] = float((rank + 1) * int(i % 97) + rank);
  void *buf = m.put(v.data(), n * sizeof(float));
  ok(dsrt_comm_all_reduce_sum_f32(c, static_cast<float *>(buf),
                                  static_cast<int64_t>(n)),
     "all_reduce");
  m.get(v.data(), buf, n * sizeof(float));
  // sum_r (r+1) k + r = k S(S+1)/2 + S(S-1)/2: integers, exact in f32.
  const int s = size;
  for (size_t i = 0; i < n; ++i)
    expectEqual("all_reduce", i,
                float(int(i % 97) * s * (s + 1) / 2 + s * (s - 1) / 2), v[i]);
  ok(dsrt_comm_all_reduce_sum_f32(c, static_cast<float *>(buf), 0),
     "all_reduce of 0 elements");
  report("rank %d: all_reduce ok (%zu f32)\n", rank, n);
}

uint8_t gatherByte(int r, size_t i) { return uint8_t(r * 31 + i * 7 + 1); }

void checkAllGather(dsrt_comm *c, Memory &m) {
  const size_t per = 37; // odd on purpose
  std::vector<uint8_t> mine(per), all(per * size, 0);
  for (size_t i = 0; i < per; ++i)
    mine[i] = gatherByte(rank, i);
  void *send = m.put(mine.data(), per);
  void *recv = m.put(all.data(), all.size());
  ok(dsrt_comm_all_gather(c, send, per, recv), "all_gather");
  m.get(all.data(), recv, all.size());
  for (int r = 0; r < size; ++r)
    for (size_t i = 0; i < per; ++i)
      expectEqual<int>("all_gather", r * per + i, gatherByte(r, i),
                       all[r * per + i]);
  report("rank %d: all_gather ok (%zu bytes per rank)\n", rank, per);
}

/// A dispatched token row: who sent it, to whom, its index among those
/// rows, a value the combine doubles.
struct Row {
  int32_t src, dst, index;
  float value[3];
};

/// Rows rank `from` sends to rank `to`: rank 0 gets `heavy` + from, the
/// others 0, 1 or 2 (some pairs exchange nothing).
int64_t rowsFor(int from, int to, int64_t heavy) {
  return to == 0 ? heavy + from : (from + to) % 3;
}

void checkAllToAll(dsrt_comm *c, Memory &m, int64_t heavy) {
  std::vector<int64_t> sendRows(size), recvRows(size, -1);
  std::vector<Row> out;
  for (int p = 0; p < size; ++p) {
    sendRows[p] = rowsFor(rank, p, heavy);
    for (int64_t k = 0; k < sendRows[p]; ++k)
      out.push_back(
          Row{rank, p, int32_t(k), {float(k), float(rank * 1000 + p), 0.5f}});
  }
  ok(dsrt_comm_all_to_all_counts(c, sendRows.data(), recvRows.data()),
     "all_to_all_counts");
  int64_t total = 0;
  for (int p = 0; p < size; ++p) {
    expectEqual<int64_t>("all_to_all_counts", p, rowsFor(p, rank, heavy),
                         recvRows[p]);
    total += recvRows[p];
  }
  void *send = m.put(out.data(), out.size() * sizeof(Row));
  std::vector<Row> in(total);
  void *recv = m.put(in.data(), in.size() * sizeof(Row));
  ok(dsrt_comm_all_to_all_v(c, send, sendRows.data(), recv, recvRows.data(),
                            sizeof(Row)),
     "all_to_all (dispatch)");
  m.get(in.data(), recv, in.size() * sizeof(Row));
  size_t at = 0;
  for (int p = 0; p < size; ++p)
    for (int64_t k = 0; k < recvRows[p]; ++k, ++at) {
      const Row &r = in[at];
      expectEqual("all_to_all src", at, p, int(r.src));
      expectEqual("all_to_all dst", at, rank, int(r.dst));
      expectEqual<int64_t>("all_to_all index", at, k, r.index);
      expectEqual("all_to_all value", at, float(p * 1000 + rank), r.value[1]);
    }
  // The combine: every row back to its sender, its value doubled.
  for (Row &r : in)
    for (float &v : r.value)
      v *= 2;
  void *back = m.put(in.data(), in.size() * sizeof(Row));
  std::vector<Row> home(out.size());
  void *homeBuf = m.put(home.data(), home.size() * sizeof(Row));
  ok(dsrt_comm_all_to_all_v(c, back, recvRows.data(), homeBuf, sendRows.data(),
                            sizeof(Row)),
     "all_to_all (combine)");
  m.get(home.data(), homeBuf, home.size() * sizeof(Row));
  for (size_t i = 0; i < out.size(); ++i) {
    expectEqual("combine src", i, out[i].src, home[i].src);
    expectEqual("combine index", i, out[i].index, home[i].index);
    for (int j = 0; j < 3; ++j)
      expectEqual("combine value", i, 2 * out[i].value[j], home[i].value[j]);
  }
  std::string from;
  for (int p = 0; p < size; ++p)
    from += (p ? ", " : ": ") + std::to_string(recvRows[p]) + " from " +
            std::to_string(p);
  report("rank %d: all_to_all ok (received %lld rows%s; combine returned %zu)\n",
         rank, static_cast<long long>(total), from.c_str(), out.size());
}

void checkBroadcast(dsrt_comm *c, Memory &m) {
  const size_t n = 1001;
  const int root = size - 1;
  std::vector<uint8_t> v(n, 0);
  if (rank == root)
    for (size_t i = 0; i < n; ++i)
      v[i] = uint8_t(i * 13 + 5);
  void *buf = m.put(v.data(), n);
  ok(dsrt_comm_broadcast(c, buf, n, root), "broadcast");
  m.get(v.data(), buf, n);
  for (size_t i = 0; i < n; ++i)
    expectEqual<int>("broadcast", i, uint8_t(i * 13 + 5), v[i]);
  report("rank %d: broadcast ok (%zu bytes from rank %d)\n", rank, n, root);
}

/// Every argument check answers in one line without communicating.
void badArguments(dsrt_comm *c) {
  std::vector<int64_t> rows(size, 0), neg(size, 0);
  neg[size - 1] = -3;
  float f = 0;
  auto expect = [](const char *name, dsrt_status s) {
    if (s != DSRT_ERROR_ARGUMENT)
      die(std::string(name) + ": expected DSRT_ERROR_ARGUMENT, got status " +
          std::to_string(s));
    std::printf("%s: %s\n", name, dsrt_last_error());
  };
  expect("null comm", dsrt_comm_barrier(nullptr));
  expect("negative count", dsrt_comm_all_reduce_sum_f32(c, &f, -1));
  expect("null data", dsrt_comm_all_reduce_sum_f32(c, nullptr, 4));
  expect("null recv", dsrt_comm_all_gather(c, &f, 4, nullptr));
  expect("negative rows",
         dsrt_comm_all_to_all_counts(c, neg.data(), rows.data()));
  expect("zero row bytes",
         dsrt_comm_all_to_all_v(c, &f, rows.data(), &f, rows.data(), 0));
  expect("bad root", dsrt_comm_broadcast(c, &f, 4, size));
}

int usage() {
  std::fprintf(stderr, "usage: ds-comm-check [--backend auto|single|mpi|nccl] "
                       "[--case collectives|bad-args|no-start|exit-early|hang] "
                       "[--heavy ROWS]\n");
  return 2;
}

} // namespace

int main(int argc, char **argv) {
  const char *backend = nullptr;
  std::string which = "collectives";
  int64_t heavy = 5000;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--backend" && i + 1 < argc)
      backend = argv[++i];
    else if (a == "--case" && i + 1 < argc)
      which = argv[++i];
    else if (a == "--heavy" && i + 1 < argc)
      heavy = std::atoll(argv[++i]);
    else
      return usage();
  }
  // The last rank of the job never starts: it leaves before any MPI call.
  if (which == "no-start") {
    const char *r = std::getenv("PMI_RANK");
    const char *s = std::getenv("PMI_SIZE");
    if (r && s && std::atoi(r) == std::atoi(s) - 1)
      return 0;
  }
  dsrt_comm *c = nullptr;
  if (dsrt_comm_init(backend, &c) != DSRT_OK) {
    std::fprintf(stderr, "ds-comm-check: %s\n", dsrt_last_error());
    return 1;
  }
  rank = dsrt_comm_rank(c);
  size = dsrt_comm_size(c);
  const bool last = rank == size - 1 && size > 1;
  if (which == "exit-early" && last)
    std::exit(0); // without dsrt_comm_finalize
  if (which == "hang" && last) {
    std::this_thread::sleep_for(
        std::chrono::duration<double>(3 * dsrt_comm_timeout(c) + 5));
    return 0;
  }
  if (which == "bad-args") {
    badArguments(c);
  } else {
    Memory m;
    m.init(std::string(dsrt_comm_backend(c)) == "nccl");
    checkAllReduce(c, m);
    if (which == "collectives") {
      checkAllGather(c, m);
      checkAllToAll(c, m, heavy);
      checkBroadcast(c, m);
      ok(dsrt_comm_barrier(c), "barrier");
    }
  }
  report("rank %d of %d (%s): all checks passed\n", rank, size,
              dsrt_comm_backend(c));
  std::fflush(stdout);
  ok(dsrt_comm_finalize(c), "finalize");
  return 0;
}
