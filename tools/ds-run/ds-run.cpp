//===- ds-run.cpp - run a compiled ds artifact ----------------------------===//
//
// Loads an artifact and its checkpoint, prefills a prompt, decodes, and
// prints the generated token ids. Links only libdsrt (no MLIR/LLVM).
//
//===----------------------------------------------------------------------===//
#include "dsrt/dsrt.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/resource.h>
#include <unistd.h>
#include <vector>

namespace {

[[noreturn]] void die(const std::string &msg) {
  std::fprintf(stderr, "ds-run: error: %s\n", msg.c_str());
  std::exit(1);
}

const char *kUsage =
    "usage: ds-run ARTIFACT --weights DIR --prompt-tokens 1,2,3\n"
    "  [--max-new-tokens N] [--force-tokens a,b,...] [--dump-logits F.npy]\n"
    "  [--stats-json F] [--device cpu|cuda] [--max-context T]\n"
    "  [--temperature X] [--top-p P] [--seed S] [--check-weights]\n"
    "  [--dump-routing F.json] (artifacts built with --trace-routing)\n";

struct Options {
  std::string artifact, weights, device = "cpu", dumpLogits, statsJson, dumpRouting;
  std::vector<int32_t> prompt, forced;
  bool haveForced = false, checkWeights = false;
  int64_t maxNew = -1, maxContext = -1;
  float temperature = 0, topP = 1;
  uint64_t seed = 0;
};

int64_t parseInt(const std::string &flag, const std::string &text) {
  char *end = nullptr;
  errno = 0;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end || errno)
    die(flag + ": '" + text + "' is not an integer");
  return v;
}

double parseFloat(const std::string &flag, const std::string &text) {
  char *end = nullptr;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end)
    die(flag + ": '" + text + "' is not a number");
  return v;
}

std::vector<int32_t> parseTokens(const std::string &flag,
                                 const std::string &text) {
  std::vector<int32_t> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string item = text.substr(start, comma == std::string::npos
                                              ? std::string::npos
                                              : comma - start);
    char *end = nullptr;
    errno = 0;
    long long v = std::strtoll(item.c_str(), &end, 10);
    if (item.empty() || *end || errno || v < INT32_MIN || v > INT32_MAX)
      die(flag + ": '" + item + "' is not a token id");
    out.push_back(int32_t(v));
    if (comma == std::string::npos)
      break;
    start = comma + 1;
  }
  return out;
}

Options parseArgs(int argc, char **argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (a == "--weights") {
      o.weights = value();
    } else if (a == "--prompt-tokens") {
      std::string v = value();
      o.prompt = v.empty() ? std::vector<int32_t>{} : parseTokens(a, v);
    } else if (a == "--force-tokens") {
      o.forced = parseTokens(a, value());
      o.haveForced = true;
    } else if (a == "--max-new-tokens") {
      o.maxNew = parseInt(a, value());
      if (o.maxNew < 0)
        die("--max-new-tokens: must be >= 0");
    } else if (a == "--dump-logits") {
      o.dumpLogits = value();
    } else if (a == "--dump-routing") {
      o.dumpRouting = value();
    } else if (a == "--stats-json") {
      o.statsJson = value();
    } else if (a == "--device") {
      o.device = value();
    } else if (a == "--max-context") {
      o.maxContext = parseInt(a, value());
      if (o.maxContext <= 0)
        die("--max-context: must be positive");
    } else if (a == "--temperature") {
      o.temperature = float(parseFloat(a, value()));
    } else if (a == "--top-p") {
      o.topP = float(parseFloat(a, value()));
    } else if (a == "--seed") {
      o.seed = uint64_t(parseInt(a, value()));
    } else if (a == "--check-weights") {
      o.checkWeights = true;
    } else if (!a.empty() && a[0] == '-') {
      die("unknown option '" + a + "'\n" + kUsage);
    } else if (o.artifact.empty()) {
      o.artifact = a;
    } else {
      die("unexpected argument '" + a + "'");
    }
  }
  if (o.artifact.empty())
    die(std::string("missing ARTIFACT\n") + kUsage);
  if (o.weights.empty())
    die("--weights DIR is required");
  if (o.prompt.empty())
    die("empty prompt: --prompt-tokens needs at least one token id");
  if (o.device != "cpu" && o.device != "cuda")
    die("--device: expected cpu or cuda, got '" + o.device + "'");
  if (o.maxNew < 0)
    o.maxNew = o.haveForced ? int64_t(o.forced.size()) : 16;
  if (o.haveForced && o.maxNew > int64_t(o.forced.size()))
    die("--max-new-tokens (" + std::to_string(o.maxNew) +
        ") exceeds the number of --force-tokens (" +
        std::to_string(o.forced.size()) + ")");
  return o;
}

/// Writes `data` through a temporary file and rename, so a failure never
/// leaves half a file under `path`.
void writeAtomically(const std::string &path, const std::string &data) {
  std::string tmp = path + ".tmp-XXXXXX";
  std::vector<char> name(tmp.begin(), tmp.end());
  name.push_back('\0');
  int fd = mkstemp(name.data());
  if (fd < 0)
    die("cannot write '" + path + "': " + std::strerror(errno));
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n <= 0) {
      close(fd);
      unlink(name.data());
      die("cannot write '" + path + "': " + std::strerror(errno));
    }
    done += size_t(n);
  }
  close(fd);
  if (rename(name.data(), path.c_str()) != 0) {
    unlink(name.data());
    die("cannot write '" + path + "': " + std::strerror(errno));
  }
}

std::string npyFloat32(const std::vector<float> &data, int64_t rows,
                       int64_t cols) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" +
                       std::to_string(rows) + ", " + std::to_string(cols) +
                       "), }";
  size_t total = 10 + header.size() + 1;
  header += std::string((64 - total % 64) % 64, ' ') + "\n";
  std::string out = "\x93NUMPY";
  out += char(1);
  out += char(0);
  uint16_t len = uint16_t(header.size());
  out.append(reinterpret_cast<char *>(&len), 2);
  out += header;
  out.append(reinterpret_cast<const char *>(data.data()),
             data.size() * sizeof(float));
  return out;
}

void check(dsrt_status s) {
  if (s != DSRT_OK)
    die(dsrt_last_error());
}

double now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

} // namespace

int main(int argc, char **argv) {
  Options o = parseArgs(argc, argv);
  // Check the output locations before any work.
  for (const std::string &p : {o.dumpLogits, o.statsJson, o.dumpRouting}) {
    if (p.empty())
      continue;
    std::string dir = p.find('/') == std::string::npos
                          ? "."
                          : p.substr(0, p.find_last_of('/') + 1);
    if (access(dir.c_str(), W_OK) != 0)
      die("cannot write '" + p + "': directory is not writable");
  }

  dsrt_model *model = nullptr;
  check(dsrt_model_load(o.artifact.c_str(), o.weights.c_str(),
                        o.device.c_str(), &model));
  if (o.checkWeights)
    check(dsrt_model_check_weights(model));
  dsrt_model_info info;
  check(dsrt_model_info_get(model, &info));
  int64_t capacity = o.maxContext > 0
                         ? o.maxContext
                         : std::min<int64_t>(info.max_position_embeddings, 4096);
  int64_t needed = int64_t(o.prompt.size()) + o.maxNew;
  if (needed > capacity)
    die("context of " + std::to_string(needed) + " tokens (prompt " +
        std::to_string(o.prompt.size()) + " + " + std::to_string(o.maxNew) +
        " new) exceeds the cache capacity (" + std::to_string(capacity) +
        "); raise --max-context");
  dsrt_session *session = nullptr;
  check(dsrt_session_create(model, capacity, &session));

  int64_t vocab = info.vocab_size;
  std::vector<float> logits(static_cast<size_t>(o.prompt.size() * vocab));
  double t0 = now();
  check(dsrt_session_prefill(session, o.prompt.data(),
                             int64_t(o.prompt.size()), logits.data()));
  double prefillSeconds = now() - t0;

  std::vector<int32_t> generated;
  uint64_t rng = o.seed * 0x9E3779B97F4A7C15ULL + 1;
  std::vector<float> row(static_cast<size_t>(vocab));
  double t1 = now();
  for (int64_t i = 0; i < o.maxNew; ++i) {
    const float *last = logits.data() + logits.size() - size_t(vocab);
    int32_t next = o.haveForced ? o.forced[size_t(i)]
                                : dsrt_sample(last, vocab, o.temperature,
                                              o.topP, &rng);
    check(dsrt_session_decode(session, next, row.data()));
    generated.push_back(next);
    logits.insert(logits.end(), row.begin(), row.end());
    if (!o.haveForced && next == info.eos_token_id)
      break;
  }
  double decodeSeconds = now() - t1;

  for (size_t i = 0; i < generated.size(); ++i)
    std::printf("%s%d", i ? "," : "", generated[i]);
  std::printf("\n");

  if (!o.dumpLogits.empty())
    writeAtomically(o.dumpLogits,
                    npyFloat32(logits, int64_t(logits.size()) / vocab, vocab));
  if (!o.dumpRouting.empty())
    writeAtomically(o.dumpRouting,
                    std::string(dsrt_model_routing_trace(model)) + "\n");
  if (!o.statsJson.empty()) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    char buf[1024];
    double tps = decodeSeconds > 0 ? double(generated.size()) / decodeSeconds
                                   : 0.0;
    std::snprintf(
        buf, sizeof(buf),
        "{\"prefill_tokens\": %zu, \"decode_tokens\": %zu, "
        "\"prefill_seconds\": %.6f, \"decode_seconds\": %.6f, "
        "\"decode_tokens_per_second\": %.3f, \"kv_cache_bytes_per_token\": "
        "%lld, \"weights_bytes\": %lld, \"peak_rss_bytes\": %lld}\n",
        o.prompt.size(), generated.size(), prefillSeconds, decodeSeconds, tps,
        (long long)info.kv_cache_bytes_per_token,
        (long long)info.weights_bytes, (long long)ru.ru_maxrss * 1024);
    writeAtomically(o.statsJson, buf);
  }
  dsrt_session_free(session);
  dsrt_model_free(model);
  return 0;
}
