//===- ds-run.cpp - run a compiled ds artifact ----------------------------===//
//
// Loads an artifact and its checkpoint, prefills a prompt, decodes, and
// prints the fed token ids on one line, or, for a text prompt, streams the
// generated text as it comes. Links only libdsrt (no MLIR/LLVM).
// Every failure is `ds-run: error: ...` naming the culprit, exit code 1;
// output files are written whole or not at all.
//
//===----------------------------------------------------------------------===//
#include "Npy.h"
#include "Speculative.h"
#include "dsrt/dsrt.h"
#include "dsrt/dsrt_chat.h"
#include "dsrt/dsrt_comm.h"
#include "dsrt/dsrt_text.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

namespace {

[[noreturn]] void die(const std::string &msg) {
  std::fprintf(stderr, "ds-run: error: %s\n", msg.c_str());
  std::exit(1);
}

const char *kUsage =
    "usage: ds-run ARTIFACT --weights DIR (--prompt-tokens 1,2,3 | --prompt "
    "TEXT)\n"
    "  [--prompt TEXT]          encode TEXT with the checkpoint's tokenizer\n"
    "                           (BOS as tokenizer_config.json says), stream\n"
    "                           the generated text to stdout\n"
    "  [--chat MSG [--system S]] a conversation of one user message (and a\n"
    "                           system prompt) rendered by the chat template\n"
    "                           of tokenizer_config.json, with the generation\n"
    "                           prompt; the reply streams like --prompt's\n"
    "  [--tokenizer DIR]        tokenizer.json and tokenizer_config.json from\n"
    "                           DIR instead of the --weights directory\n"
    "  [--max-new-tokens N]     tokens to feed after the prompt (default: the\n"
    "                           number of --force-tokens, else 16 or what\n"
    "                           fits in the context)\n"
    "  [--force-tokens a,b,...] feed these instead of sampled tokens\n"
    "  [--dump-logits F.npy]    float32 [prompt + fed, vocab]: row t = logits\n"
    "                           after token t\n"
    "  [--stats-json F]         timings, cache and weight sizes, peak RSS\n"
    "  [--device cpu|cuda] [--max-context T] (default min(max positions, "
    "4096))\n"
    "  [--temperature X] [--top-p P] [--top-k K] [--seed S] (default greedy)\n"
    "  [--check-weights]        scan the weights for NaN/Inf first\n"
    "  [--speculative mtp[:K]]  draft K tokens (default 1) per step with the\n"
    "                           artifact's MTP module and verify them in one\n"
    "                           step (greedy: the same tokens; sampled: the\n"
    "                           same distribution); --stats-json then reports\n"
    "                           drafts proposed and accepted\n"
    "  [--dump-routing F.json]  expert choices (artifacts built with\n"
    "                           --trace-routing)\n"
    "  [--start-position P]     benchmarks: start at position P over a zero\n"
    "                           cache instead of prefilling P tokens\n";

constexpr int64_t kDefaultNewTokens = 16;

struct Options {
  std::string artifact, weights, device = "cpu", dumpLogits, statsJson,
                                 dumpRouting, tokenizer, speculative;
  std::string promptText, chat, system;
  bool haveText = false, haveTokens = false, haveChat = false,
       haveSystem = false, havePrompt = false;
  std::vector<int32_t> prompt, forced;
  bool haveForced = false, checkWeights = false;
  int64_t maxNew = -1, maxContext = -1, startPosition = 0;
  float temperature = 0, topP = 1;
  int32_t topK = 0;
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
  errno = 0;
  double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end || errno || !std::isfinite(v))
    die(flag + ": '" + text + "' is not a finite number");
  return v;
}

std::vector<int32_t> parseTokens(const std::string &flag,
                                 const std::string &text) {
  std::vector<int32_t> out;
  size_t start = 0;
  while (true) {
    size_t comma = text.find(',', start);
    std::string item = text.substr(
        start, comma == std::string::npos ? std::string::npos : comma - start);
    char *end = nullptr;
    errno = 0;
    long long v = std::strtoll(item.c_str(), &end, 10);
    // strtoll skips leading spaces and takes '+': a token id is digits.
    bool digits = !item.empty() &&
                  (std::isdigit((unsigned char)item[0]) || item[0] == '-');
    if (!digits || *end || errno || v < INT32_MIN || v > INT32_MAX)
      die(flag + ": '" + item + "' is not a token id");
    out.push_back(int32_t(v));
    if (comma == std::string::npos)
      return out;
    start = comma + 1;
  }
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
      o.haveTokens = true;
    } else if (a == "--prompt") {
      o.promptText = value();
      o.haveText = o.havePrompt = true;
    } else if (a == "--chat") {
      o.chat = value();
      o.haveChat = o.haveText = true;
    } else if (a == "--system") {
      o.system = value();
      o.haveSystem = true;
    } else if (a == "--tokenizer") {
      o.tokenizer = value();
    } else if (a == "--force-tokens") {
      o.forced = parseTokens(a, value());
      o.haveForced = true;
    } else if (a == "--max-new-tokens") {
      o.maxNew = parseInt(a, value());
      if (o.maxNew < 0)
        die("--max-new-tokens: must be >= 0, got " + std::to_string(o.maxNew));
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
        die("--max-context: must be positive, got " +
            std::to_string(o.maxContext));
    } else if (a == "--start-position") {
      o.startPosition = parseInt(a, value());
      if (o.startPosition < 0)
        die("--start-position: must be >= 0, got " +
            std::to_string(o.startPosition));
    } else if (a == "--temperature") {
      std::string text = value();
      double t = parseFloat(a, text);
      if (t < 0)
        die("--temperature: must be >= 0 (0 is greedy), got " + text);
      o.temperature = float(t);
    } else if (a == "--top-p") {
      std::string text = value();
      double p = parseFloat(a, text);
      if (!(p > 0 && p <= 1))
        die("--top-p: must be in (0, 1], got " + text);
      o.topP = float(p);
    } else if (a == "--top-k") {
      int64_t k = parseInt(a, value());
      if (k < 0 || k > INT32_MAX)
        die("--top-k: must be >= 0 (0 is off), got " + std::to_string(k));
      o.topK = int32_t(k);
    } else if (a == "--seed") {
      int64_t s = parseInt(a, value());
      if (s < 0)
        die("--seed: must be >= 0, got " + std::to_string(s));
      o.seed = uint64_t(s);
    } else if (a == "--speculative") {
      o.speculative = value();
      if (o.speculative.empty())
        die("--speculative: expected 'mtp' or 'mtp:K'");
    } else if (a == "--check-weights") {
      o.checkWeights = true;
    } else if (!a.empty() && a[0] == '-') {
      die("unknown option '" + a + "' (see --help)");
    } else if (o.artifact.empty()) {
      o.artifact = a;
    } else {
      die("unexpected argument '" + a + "' (one ARTIFACT only)");
    }
  }
  if (o.artifact.empty())
    die("missing ARTIFACT (see --help)");
  if (o.weights.empty())
    die("--weights DIR is required");
  if (o.haveChat && o.havePrompt)
    die("--chat and --prompt exclude each other");
  if (o.haveSystem && !o.haveChat)
    die("--system needs --chat");
  if (o.haveText && o.haveTokens)
    die(std::string(o.haveChat ? "--chat" : "--prompt") +
        " and --prompt-tokens exclude each other");
  if (!o.haveText && o.prompt.empty())
    die(o.haveTokens ? "empty prompt: --prompt-tokens needs at least one "
                       "token id"
                     : "missing prompt: give --prompt TEXT or --prompt-tokens "
                       "1,2,3");
  if (!o.tokenizer.empty() && !o.haveText)
    die("--tokenizer is only used with --prompt or --chat");
  if (o.device != "cpu" && o.device != "cuda")
    die("--device: expected cpu or cuda, got '" + o.device + "'");
  if (!o.speculative.empty() && !o.dumpLogits.empty())
    die("--speculative and --dump-logits exclude each other (a request "
        "returning every logits row does not draft)");
  if (!o.speculative.empty() && o.startPosition > 0)
    die("--speculative and --start-position exclude each other");
  if (o.maxNew < 0 && o.haveForced)
    o.maxNew = int64_t(o.forced.size());
  if (o.haveForced && o.maxNew > int64_t(o.forced.size()))
    die("--max-new-tokens (" + std::to_string(o.maxNew) +
        ") exceeds the number of --force-tokens (" +
        std::to_string(o.forced.size()) + ")");
  return o;
}

/// Fails before any work when `path` cannot be created.
void checkWritable(const std::string &path) {
  struct stat st, target;
  if (lstat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    if (S_ISDIR(st.st_mode) ||
        (stat(path.c_str(), &target) == 0 && S_ISDIR(target.st_mode)))
      die("cannot write '" + path + "': it is a directory");
    if (access(path.c_str(), W_OK) != 0)
      die("cannot write '" + path + "': " + std::strerror(errno));
    return; // a pipe or device, written in place
  }
  size_t slash = path.find_last_of('/');
  std::string dir =
      slash == std::string::npos ? "." : path.substr(0, slash + 1);
  if (access(dir.c_str(), W_OK) != 0)
    die("cannot write '" + path + "': directory is not writable");
}

/// Writes `data` through a temporary file and rename, so a failure never
/// leaves half a file under `path`.
void writeAtomically(const std::string &path, const std::string &data) {
  // A symbolic link (/dev/stdout), pipe or device is written in place:
  // renaming over it would replace the link or node itself.
  struct stat st, target, out;
  // The file behind our own stdout (`--stats-json /dev/stdout > f`): written
  // through the stdout stream, so the token lines and the data stay in order.
  if (stat(path.c_str(), &target) == 0 && fstat(STDOUT_FILENO, &out) == 0 &&
      target.st_dev == out.st_dev && target.st_ino == out.st_ino) {
    if (std::fwrite(data.data(), 1, data.size(), stdout) != data.size() ||
        std::fflush(stdout) != 0)
      die("cannot write '" + path + "': " + std::strerror(errno));
    return;
  }
  if (lstat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    FILE *f = std::fopen(path.c_str(), "wb");
    bool ok = f && std::fwrite(data.data(), 1, data.size(), f) == data.size();
    if (f && std::fclose(f) != 0)
      ok = false;
    if (!ok)
      die("cannot write '" + path + "': " + std::strerror(errno));
    return;
  }
  std::string tmp = path + ".tmp-XXXXXX";
  std::vector<char> name(tmp.begin(), tmp.end());
  name.push_back('\0');
  int fd = mkstemp(name.data());
  if (fd < 0)
    die("cannot write '" + path + "': " + std::strerror(errno));
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      std::string why = n < 0 ? std::strerror(errno) : "short write";
      close(fd);
      unlink(name.data());
      die("cannot write '" + path + "': " + why);
    }
    done += size_t(n);
  }
  if (close(fd) != 0 || rename(name.data(), path.c_str()) != 0) {
    std::string why = std::strerror(errno);
    unlink(name.data());
    die("cannot write '" + path + "': " + why);
  }
}

/// Exits with the library's message. Several checkpoint problems come one
/// per line: each gets the prefix.
void check(dsrt_status s, const std::string &context = "") {
  if (s == DSRT_OK)
    return;
  std::string msg = dsrt_last_error();
  size_t start = 0, nl;
  while ((nl = msg.find('\n', start)) != std::string::npos) {
    std::fprintf(stderr, "ds-run: error: %s%s\n", context.c_str(),
                 msg.substr(start, nl - start).c_str());
    start = nl + 1;
  }
  die(context + msg.substr(start));
}

std::string statsJson(const dsrt_stats &s) {
  char buf[1024];
  std::snprintf(
      buf, sizeof(buf),
      "{\"prefill_tokens\": %lld, \"decode_tokens\": %lld, "
      "\"prefill_seconds\": %.6f, \"decode_seconds\": %.6f, "
      "\"decode_tokens_per_second\": %.3f, \"kv_cache_bytes_per_token\": "
      "%lld, \"weights_bytes\": %lld, \"peak_rss_bytes\": %lld, "
      "\"activation_bytes\": %lld, \"decode_allocations\": %lld}\n",
      (long long)s.prefill_tokens, (long long)s.decode_tokens,
      s.prefill_seconds, s.decode_seconds, s.decode_tokens_per_second,
      (long long)s.kv_cache_bytes_per_token, (long long)s.weights_bytes,
      (long long)s.peak_rss_bytes, (long long)s.activation_bytes,
      (long long)s.decode_allocations);
  return buf;
}

/// A stats object with how the weights sat in memory: bytes touched
/// through the checkpoint's mappings, and of those, bytes in 2 MiB pages.
std::string withWeightPages(std::string stats, const dsrt_weight_pages &p) {
  size_t close = stats.rfind('}');
  if (close == std::string::npos)
    return stats;
  char buf[160];
  std::snprintf(buf, sizeof buf,
                ", \"weights_resident_bytes\": %lld, "
                "\"weights_huge_page_bytes\": %lld",
                (long long)p.resident_bytes, (long long)p.huge_page_bytes);
  stats.insert(close, buf);
  return stats;
}

/// `s` as a JSON string: the chat template takes its messages as JSON.
std::string jsonString(const std::string &s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (uint8_t(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", unsigned(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

/// --chat / --system through the chat template of tokenizer_config.json,
/// ending with the generation prompt (the assistant's turn).
std::string renderChat(const Options &o, const std::string &dir,
                       dsrt_tokenizer *tok) {
  // Our own UTF-8 check first, for the byte offset in the message.
  for (auto [flag, text] : {std::make_pair("--chat: ", &o.chat),
                            std::make_pair("--system: ", &o.system)}) {
    int32_t *ids = nullptr;
    size_t n = 0;
    check(dsrt_tokenizer_encode(tok, text->data(), text->size(), 0, &ids, &n),
          flag);
    dsrt_text_free(ids);
  }
  std::string config = (dir.empty() || dir.back() == '/' ? dir : dir + "/") +
                       "tokenizer_config.json";
  dsrt_chat_template *tmpl = nullptr;
  check(dsrt_chat_template_load(config.c_str(), &tmpl), "--chat: ");
  std::string messages = "[";
  if (o.haveSystem)
    messages +=
        "{\"role\": \"system\", \"content\": " + jsonString(o.system) + "}, ";
  messages += "{\"role\": \"user\", \"content\": " + jsonString(o.chat) + "}]";
  char *out = nullptr;
  dsrt_status st =
      dsrt_chat_template_render(tmpl, messages.c_str(),
                                /*add_generation_prompt=*/1, nullptr, &out);
  dsrt_chat_template_free(tmpl);
  check(st, "--chat: ");
  std::string text = out;
  dsrt_chat_string_free(out);
  return text;
}

/// Loads the tokenizer (from --tokenizer, else the checkpoint directory)
/// and encodes the --prompt text (or the rendered --chat) into o.prompt.
dsrt_tokenizer *encodePrompt(Options &o) {
  std::string dir = o.tokenizer.empty() ? o.weights : o.tokenizer;
  dsrt_tokenizer *tok = nullptr;
  dsrt_status st = dsrt_tokenizer_load(dir.c_str(), &tok);
  if (st == DSRT_ERROR_IO && o.tokenizer.empty())
    die(std::string(dsrt_last_error()) + "; pass --tokenizer DIR");
  check(st, "--tokenizer: ");
  // A rendered chat carries its own BOS: encoded without special tokens,
  // as transformers' apply_chat_template(tokenize=True) does.
  bool chat = o.haveChat;
  if (chat)
    o.promptText = renderChat(o, dir, tok);
  int32_t *ids = nullptr;
  size_t n = 0;
  check(dsrt_tokenizer_encode(tok, o.promptText.data(), o.promptText.size(),
                              /*add_special_tokens=*/chat ? 0 : 1, &ids, &n),
        chat ? "--chat: " : "--prompt: ");
  o.prompt.assign(ids, ids + n);
  dsrt_text_free(ids);
  if (o.prompt.empty())
    die("empty prompt: --prompt encodes to no tokens");
  return tok;
}

/// Streams the generated text: each token's completed characters reach
/// stdout at once. Special tokens (EOS) are not printed. An id without
/// text is remembered and reported once the run ends.
struct TextOutput {
  dsrt_text_stream *stream = nullptr;
  std::string error;

  static void onToken(void *user, int32_t id) {
    auto *self = static_cast<TextOutput *>(user);
    const char *text = nullptr;
    size_t len = 0;
    if (dsrt_text_stream_push(self->stream, id, &text, &len) != DSRT_OK) {
      if (self->error.empty())
        self->error = std::string("generated ") + dsrt_last_error();
      return;
    }
    std::fwrite(text, 1, len, stdout);
    std::fflush(stdout);
  }
};

} // namespace

int main(int argc, char **argv) {
  Options o = parseArgs(argc, argv);
  for (const std::string &p : {o.dumpLogits, o.statsJson, o.dumpRouting})
    if (!p.empty())
      checkWritable(p);

  dsrt_model *model = nullptr;
  check(dsrt_model_load(o.artifact.c_str(), o.weights.c_str(), o.device.c_str(),
                        &model),
        o.device == "cuda" ? "--device cuda: " : "");
  // Under mpiexec (a model compiled with --tp/--ep) every rank runs the
  // same steps; rank 0 alone prints and writes files. Errors still reach
  // stderr from every rank. Every rank still asks for the logits rows rank 0
  // dumps: a step computes the rows it is asked for, and the vocabulary
  // pieces gathered from the ranks must be the same rows.
  bool writeLogits = !o.dumpLogits.empty();
  if (dsrt_model_rank(model) != 0) {
    writeLogits = false;
    o.statsJson.clear();
    o.dumpRouting.clear();
    if (!std::freopen("/dev/null", "w", stdout))
      die("cannot silence stdout on rank " +
          std::to_string(dsrt_model_rank(model)));
  }
  if (o.checkWeights)
    check(dsrt_model_check_weights(model));
  dsrt_model_info info;
  check(dsrt_model_info_get(model, &info));
  dsrt_tokenizer *tokenizer = o.haveText ? encodePrompt(o) : nullptr;
  TextOutput textOut;
  if (tokenizer)
    check(dsrt_text_stream_create(tokenizer, /*skip_special_tokens=*/1,
                                  &textOut.stream));
  int64_t capacity =
      o.maxContext > 0 ? o.maxContext
                       : std::min<int64_t>(info.max_position_embeddings, 4096);
  // A start position takes its rows of the context first.
  int64_t promptLen = int64_t(o.prompt.size()) + o.startPosition;
  // Unasked, the length adapts to the room left; asked, it is a promise.
  if (o.maxNew < 0)
    o.maxNew = std::clamp<int64_t>(capacity - promptLen, 0, kDefaultNewTokens);
  if (o.maxNew > capacity - promptLen)
    die("context of " +
        (o.maxNew > INT64_MAX - promptLen
             ? std::string("more than 2^63")
             : std::to_string(promptLen + o.maxNew)) +
        " tokens (prompt " + std::to_string(promptLen) + " + " +
        std::to_string(o.maxNew) + " new) exceeds the cache capacity (" +
        std::to_string(capacity) + "); raise --max-context");
  int64_t rowsMax = int64_t(o.prompt.size()) + o.maxNew;
  dsrt_session *session = nullptr;
  check(dsrt_session_create(model, capacity, &session));
  if (o.startPosition > 0)
    check(dsrt_session_seek(session, o.startPosition));

  dsrt_generate_options gen = {};
  gen.max_new_tokens = o.maxNew;
  if (o.haveForced) {
    gen.force_tokens = o.forced.data();
    gen.num_force_tokens = int64_t(o.forced.size());
  }
  gen.temperature = o.temperature;
  gen.top_p = o.topP;
  gen.top_k = o.topK;
  gen.seed = o.seed;
  if (tokenizer) {
    gen.on_token = &TextOutput::onToken;
    gen.user_data = &textOut;
  }
  int64_t vocab = info.vocab_size;
  std::vector<float> logits(o.dumpLogits.empty() ? 0 : size_t(rowsMax * vocab));
  std::vector<int32_t> generated(static_cast<size_t>(o.maxNew));
  int64_t count = 0;
  dsrt_stats stats;
  std::string statsText;
  if (!o.speculative.empty()) {
    ds::SpeculativeRun run;
    check(
        ds::runSpeculative(model, o.speculative, capacity, o.prompt, gen, run),
        "");
    generated = run.tokens;
    count = int64_t(generated.size());
    statsText = ds::speculativeStatsJson(run);
  } else {
    check(dsrt_generate(session, o.prompt.data(), int64_t(o.prompt.size()),
                        &gen, generated.data(), &count,
                        logits.empty() ? nullptr : logits.data(), &stats));
    generated.resize(size_t(count));
    statsText = statsJson(stats);
  }

  // Decode streams large weights slower from 4 KiB pages than from 2 MiB
  // ones, which only the page cache's history decides: say so.
  dsrt_weight_pages pages;
  check(dsrt_model_weight_pages(model, &pages));
  statsText = withWeightPages(statsText, pages);
  if (pages.note[0] && dsrt_model_rank(model) == 0)
    std::fprintf(stderr, "ds-run: note: %s\n", pages.note);

  // Files before the ids: a failure then leaves stdout empty (text is
  // streamed while generating, so with --prompt it comes first).
  int64_t rows = int64_t(o.prompt.size()) + count;
  if (writeLogits)
    writeAtomically(o.dumpLogits, ds::npyFloat32(logits.data(), rows, vocab));
  if (!o.dumpRouting.empty())
    writeAtomically(o.dumpRouting,
                    std::string(dsrt_model_routing_trace(model)) + "\n");
  if (!o.statsJson.empty())
    writeAtomically(o.statsJson, statsText);

  if (tokenizer) {
    const char *rest = nullptr;
    size_t len = 0;
    check(dsrt_text_stream_finish(textOut.stream, &rest, &len));
    std::fwrite(rest, 1, len, stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
    if (!textOut.error.empty())
      die(textOut.error);
    dsrt_text_stream_free(textOut.stream);
    dsrt_tokenizer_free(tokenizer);
  } else {
    std::string line;
    for (size_t i = 0; i < generated.size(); ++i)
      line += (i ? "," : "") + std::to_string(generated[i]);
    std::printf("%s\n", line.c_str());
  }
  dsrt_session_free(session);
  dsrt_model_free(model);
  return 0;
}
