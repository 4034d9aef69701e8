//===- Options.cpp - ds-serve's command line -------------------------------===//

#include "Options.h"
#include "ToolCalls.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

namespace dsserve {

std::string usage() {
  return "usage: ds-serve ARTIFACT --weights DIR [--tokenizer DIR] "
         "[--host 127.0.0.1] [--port 8000] [--kv-cache-bytes N] "
         "[--max-num-seqs N] [--max-num-batched-tokens N] [--max-waiting N] "
         "[--max-model-len N] [--no-prefix-caching] [--speculative mtp[:K]] "
         "[--scheduling-policy fcfs|priority] "
         "[--api-key KEY] [--served-model-name NAME] [--device cpu|cuda] "
         "[--reasoning-parser deepseek_r1] [--chat-template FILE] "
         "[--tool-call-parser deepseek_v3|deepseek_v31] "
         "[--enable-auto-tool-choice] "
         "[--shutdown-timeout SECONDS] [--port-file FILE]";
}

std::string help() {
  return usage() + R"(

An OpenAI-compatible HTTP server (/v1/completions, /v1/chat/completions,
/v1/responses, /v1/models, /tokenize, /detokenize, /health, /metrics), with
Anthropic's Messages API too (/v1/messages, /v1/messages/count_tokens), for
an artifact of ds-compile.

  ARTIFACT                   the compiled model (.dsa)
  --weights DIR              its checkpoint (safetensors, config.json)
  --tokenizer DIR            tokenizer.json and tokenizer_config.json (default:
                             the checkpoint's own; without one, prompts must
                             be token ids)
  --host H, --port P         where to listen (default 127.0.0.1:8000; port 0
                             picks a free one, written to --port-file FILE)
  --kv-cache-bytes N         the paged latent cache's budget (default: what
                             --max-num-seqs requests of --max-model-len need)
  --max-num-seqs N           requests decoded together (default 4)
  --max-num-batched-tokens N tokens a step may hold (default: the engine's)
  --max-waiting N            requests queued beyond the running ones before
                             a 429 (default 64)
  --max-model-len N          a request's prompt + completion bound (default:
                             the model's maximum, at most 4096)
  --no-prefix-caching        do not share cached prompt prefixes
  --scheduling-policy fcfs|priority
                             which waiting request runs first and which
                             running one gives way when the cache is full:
                             arrival order, or the requests' `priority`
                             field, lower first (vLLM's; default: fcfs)
  --speculative mtp[:K]      draft K tokens a step with the MTP module
  --reasoning-parser deepseek_r1
                             chat answers give the text up to </think> as
                             reasoning_content, the rest as content (R1)
  --chat-template FILE       a Jinja chat template to use instead of the
                             tokenizer_config.json's (its special tokens stay)
  --tool-call-parser deepseek_v3|deepseek_v31
                             parse chat answers' tool calls (V3 and R1's
                             format, or V3.1's) into OpenAI tool_calls; needed
                             for tool_choice "required" or a named function
  --enable-auto-tool-choice  let the model decide whether to call a tool
                             (tool_choice "auto", the default with tools)
  --api-key KEY              require "Authorization: Bearer KEY" (also
                             $DS_SERVE_API_KEY)
  --served-model-name NAME   the model's name in responses (default: the
                             checkpoint directory's name); given again,
                             further names requests may use (an agent's
                             own model names, say)
  --device cpu|cuda          where the model runs (default cpu)
  --shutdown-timeout S       on SIGTERM, seconds to let running requests
                             finish (default 30)
  -h, --help                 this text)";
}

static bool toInt(const std::string &flag, const std::string &v, int64_t lo,
                  int64_t hi, int64_t &out, std::string &error) {
  errno = 0;
  char *end = nullptr;
  long long x = strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end || errno || x < lo || x > hi) {
    error = flag + " expects an integer in [" + std::to_string(lo) + ", " +
            std::to_string(hi) + "], got '" + v + "'";
    return false;
  }
  out = x;
  return true;
}

bool parseOptions(int argc, char **argv, Options &o, std::string &error,
                  const std::vector<std::string> &extraFlags,
                  bool needArtifact) {
  if (const char *k = getenv("DS_SERVE_API_KEY"))
    o.apiKey = k;
  // Help wins over whatever else the line holds, a mistake included.
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "-h" || std::string(argv[i]) == "--help") {
      o.help = true;
      return true;
    }
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) {
      positional.push_back(a);
      continue;
    }
    if (a == "--no-prefix-caching") {
      o.prefixCaching = false;
      continue;
    }
    if (a == "--enable-auto-tool-choice") {
      o.autoToolChoice = true;
      continue;
    }
    std::string flag = a, value;
    bool hasValue = false;
    if (size_t eq = a.find('='); eq != std::string::npos) {
      flag = a.substr(0, eq);
      value = a.substr(eq + 1);
      hasValue = true;
    }
    if (!hasValue) {
      if (i + 1 >= argc) {
        error = flag + " expects a value";
        return false;
      }
      value = argv[++i];
    }
    int64_t n = 0;
    if (flag == "--weights")
      o.weights = value;
    else if (flag == "--tokenizer")
      o.tokenizer = value;
    else if (flag == "--device")
      o.device = value;
    else if (flag == "--host")
      o.host = value;
    else if (flag == "--port-file")
      o.portFile = value;
    else if (flag == "--api-key")
      o.apiKey = value;
    else if (flag == "--speculative")
      o.speculative = value;
    else if (flag == "--served-model-name") {
      if (value.empty()) {
        error = "--served-model-name expects a name";
        return false;
      }
      if (o.servedModelName.empty())
        o.servedModelName = value;
      else
        o.modelAliases.push_back(value);
    } else if (flag == "--reasoning-parser") {
      if (value != "deepseek_r1") {
        error = "--reasoning-parser: unknown parser '" + value +
                "' (known: deepseek_r1)";
        return false;
      }
      o.reasoningParser = value;
    } else if (flag == "--tool-call-parser") {
      if (!toolCallFormat(value)) {
        error = "--tool-call-parser: unknown parser '" + value +
                "' (known: deepseek_v3, deepseek_v31)";
        return false;
      }
      o.toolCallParser = value;
    } else if (flag == "--chat-template") {
      o.chatTemplate = value;
    } else if (flag == "--scheduling-policy") {
      if (value != "fcfs" && value != "priority") {
        error = "--scheduling-policy: unknown policy '" + value +
                "' (known: fcfs, priority)";
        return false;
      }
      o.priorityScheduling = value == "priority";
    } else if (flag == "--port") {
      if (!toInt(flag, value, 0, 65535, n, error))
        return false;
      o.port = int(n);
    } else if (flag == "--kv-cache-bytes") {
      if (!toInt(flag, value, 1, INT64_MAX, o.kvCacheBytes, error))
        return false;
    } else if (flag == "--max-num-seqs") {
      if (!toInt(flag, value, 1, 4096, n, error))
        return false;
      o.maxNumSeqs = int(n);
    } else if (flag == "--max-num-batched-tokens") {
      if (!toInt(flag, value, 1, INT64_MAX, o.maxNumBatchedTokens, error))
        return false;
    } else if (flag == "--max-waiting") {
      if (!toInt(flag, value, 0, 1 << 20, n, error))
        return false;
      o.maxWaiting = int(n);
    } else if (flag == "--max-model-len") {
      if (!toInt(flag, value, 2, INT64_MAX, o.maxModelLen, error))
        return false;
    } else if (flag == "--shutdown-timeout") {
      if (!toInt(flag, value, 0, 3600, n, error))
        return false;
      o.shutdownTimeout = double(n);
    } else if (std::find(extraFlags.begin(), extraFlags.end(), flag) !=
               extraFlags.end()) {
      o.extra[flag] = value;
    } else {
      error = "unknown option " + flag + "\n" + usage();
      return false;
    }
  }
  if (o.autoToolChoice && o.toolCallParser.empty()) {
    error = "--enable-auto-tool-choice needs --tool-call-parser "
            "(deepseek_v3 or deepseek_v31)";
    return false;
  }
  if (positional.size() > 1) {
    error = "unexpected argument '" + positional[1] + "'";
    return false;
  }
  if (needArtifact) {
    if (positional.empty()) {
      error = "missing the artifact\n" + usage();
      return false;
    }
    o.artifact = positional[0];
    if (o.weights.empty()) {
      error = "missing --weights DIR (the checkpoint)";
      return false;
    }
  }
  return true;
}

} // namespace dsserve
