//===- ds-run.cpp - run a compiled ds artifact ----------------------------===//
//
// Loads an artifact and its checkpoint, prefills a prompt, decodes, and
// prints the generated token ids. Links only libdsrt (no MLIR/LLVM).
//
//===----------------------------------------------------------------------===//
#include "dsrt/dsrt.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
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
  if (s == DSRT_OK)
    return;
  // Several checkpoint problems come one per line; prefix each.
  std::string msg = dsrt_last_error();
  size_t start = 0, nl;
  while ((nl = msg.find('\n', start)) != std::string::npos) {
    std::fprintf(stderr, "ds-run: error: %s\n",
                 msg.substr(start, nl - start).c_str());
    start = nl + 1;
  }
  die(msg.substr(start));
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
  dsrt_generate_options gen = {};
  gen.max_new_tokens = o.maxNew;
  if (o.haveForced) {
    gen.force_tokens = o.forced.data();
    gen.num_force_tokens = int64_t(o.forced.size());
  }
  gen.temperature = o.temperature;
  gen.top_p = o.topP;
  gen.seed = o.seed;
  int64_t rowsMax = int64_t(o.prompt.size()) + o.maxNew;
  std::vector<float> logits(static_cast<size_t>(rowsMax * vocab));
  std::vector<int32_t> generated(static_cast<size_t>(o.maxNew));
  int64_t count = 0;
  dsrt_stats stats;
  check(dsrt_generate(session, o.prompt.data(), int64_t(o.prompt.size()), &gen,
                      generated.data(), &count, logits.data(), &stats));
  generated.resize(size_t(count));

  for (size_t i = 0; i < generated.size(); ++i)
    std::printf("%s%d", i ? "," : "", generated[i]);
  std::printf("\n");

  int64_t rows = int64_t(o.prompt.size()) + count;
  logits.resize(size_t(rows * vocab));
  if (!o.dumpLogits.empty())
    writeAtomically(o.dumpLogits, npyFloat32(logits, rows, vocab));
  if (!o.dumpRouting.empty())
    writeAtomically(o.dumpRouting,
                    std::string(dsrt_model_routing_trace(model)) + "\n");
  if (!o.statsJson.empty()) {
    char buf[1024];
    std::snprintf(
        buf, sizeof(buf),
        "{\"prefill_tokens\": %lld, \"decode_tokens\": %lld, "
        "\"prefill_seconds\": %.6f, \"decode_seconds\": %.6f, "
        "\"decode_tokens_per_second\": %.3f, \"kv_cache_bytes_per_token\": "
        "%lld, \"weights_bytes\": %lld, \"peak_rss_bytes\": %lld}\n",
        (long long)stats.prefill_tokens, (long long)stats.decode_tokens,
        stats.prefill_seconds, stats.decode_seconds,
        stats.decode_tokens_per_second,
        (long long)stats.kv_cache_bytes_per_token,
        (long long)stats.weights_bytes, (long long)stats.peak_rss_bytes);
    writeAtomically(o.statsJson, buf);
  }
  dsrt_session_free(session);
  dsrt_model_free(model);
  return 0;
}
