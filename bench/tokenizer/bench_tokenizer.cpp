//===- bench_tokenizer.cpp - encode/decode throughput of dsrt_text --------===//
//
// ds-bench-tokenizer DIR TEXT_FILE [REPEATS]: one thread, through the C
// API. "first" encodes the text once with a fresh tokenizer (empty
// pre-token cache); "warm" is the best of REPEATS further passes; decode is
// the best of REPEATS. Each in wall-clock and in this thread's CPU time.
// Prints one JSON object; the ids go to TEXT_FILE.ids
// so run.py can check them against the reference.
//
//===----------------------------------------------------------------------===//
#include "dsrt/dsrt_text.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <time.h>

namespace {

double now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// CPU seconds of this thread: on a machine shared with other jobs the
/// wall clock also counts the time spent waiting for a core.
double cpuNow() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

/// Wall and CPU seconds of one call.
struct Timing {
  double wall = 1e30, cpu = 1e30;
  template <typename F> void best(F &&f) {
    double w = now(), c = cpuNow();
    f();
    wall = std::min(wall, now() - w);
    cpu = std::min(cpu, cpuNow() - c);
  }
};

[[noreturn]] void die(const std::string &m) {
  std::fprintf(stderr, "ds-bench-tokenizer: error: %s\n", m.c_str());
  std::exit(1);
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 3)
    die("usage: ds-bench-tokenizer DIR TEXT_FILE [REPEATS]");
  int repeats = argc > 3 ? std::max(1, std::atoi(argv[3])) : 3;
  std::ifstream in(argv[2], std::ios::binary);
  if (!in)
    die(std::string(argv[2]) + ": cannot read");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();

  double t0 = now();
  dsrt_tokenizer *tok = nullptr;
  if (dsrt_tokenizer_load(argv[1], &tok) != DSRT_OK)
    die(dsrt_last_error());
  double load = now() - t0;

  int32_t *ids = nullptr;
  size_t n = 0;
  Timing first, warm, decode;
  first.best([&] {
    if (dsrt_tokenizer_encode(tok, text.data(), text.size(), 0, &ids, &n))
      die(dsrt_last_error());
  });
  for (int r = 0; r < repeats; ++r)
    warm.best([&] {
      int32_t *again = nullptr;
      size_t m = 0;
      if (dsrt_tokenizer_encode(tok, text.data(), text.size(), 0, &again, &m))
        die(dsrt_last_error());
      dsrt_text_free(again);
    });
  for (int r = 0; r < repeats; ++r) {
    char *out = nullptr;
    size_t len = 0;
    decode.best([&] {
      if (dsrt_tokenizer_decode(tok, ids, n, 0, &out, &len))
        die(dsrt_last_error());
    });
    if (std::string(out, len) != text)
      die("decode(encode(text)) differs from the text");
    dsrt_text_free(out);
  }
  std::ofstream idsOut(std::string(argv[2]) + ".ids");
  for (size_t i = 0; i < n; ++i)
    idsOut << ids[i] << (i + 1 < n ? "," : "\n");
  double mb = double(text.size()) / 1e6;
  std::printf("{\"bytes\": %zu, \"tokens\": %zu, \"load_s\": %.4f, "
              "\"encode_first_mb_s\": %.3f, \"encode_warm_mb_s\": %.3f, "
              "\"decode_mb_s\": %.3f, \"cpu_encode_first_mb_s\": %.3f, "
              "\"cpu_encode_warm_mb_s\": %.3f, \"cpu_decode_mb_s\": %.3f}\n",
              text.size(), n, load, mb / first.wall, mb / warm.wall,
              mb / decode.wall, mb / first.cpu, mb / warm.cpu, mb / decode.cpu);
  dsrt_text_free(ids);
  dsrt_tokenizer_free(tok);
  return 0;
}
