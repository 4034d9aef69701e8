//===- Options.h - ds-serve's command line ---------------------------------===//
#ifndef DS_SERVE_OPTIONS_H
#define DS_SERVE_OPTIONS_H

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace dsserve {

struct Options {
  std::string artifact;
  std::string weights;
  std::string tokenizer;
  std::string device = "cpu";
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string portFile; // written with the bound port (for --port 0)
  std::string apiKey;   // also from $DS_SERVE_API_KEY
  std::string servedModelName;
  /// Further --served-model-name values: names the model also answers to.
  std::vector<std::string> modelAliases;
  int64_t kvCacheBytes = 0;
  int maxNumSeqs = 4;
  int maxWaiting = 64;
  int64_t maxModelLen = 0;
  int64_t maxNumBatchedTokens = 0; // 0: the engine's default
  bool prefixCaching = true;
  std::string speculative; // "" off, "mtp" or "mtp:K"
  bool priorityScheduling = false; // --scheduling-policy priority
  std::string reasoningParser; // "" off, or "deepseek_r1"
  std::string toolCallParser;  // "" off, "deepseek_v3" or "deepseek_v31"
  bool autoToolChoice = false; // --enable-auto-tool-choice
  std::string chatTemplate;    // a Jinja file replacing the checkpoint's
  double shutdownTimeout = 30;
  /// -h / --help: print help() and exit 0; nothing else was parsed.
  bool help = false;
  /// --name=value pairs for flags this parser does not know, when the
  /// caller accepts extras (ds-serve-fake's).
  std::map<std::string, std::string> extra;
};

/// False with a one-line message naming the flag at fault. `extraFlags`
/// lists further flags (with values) the caller handles itself.
bool parseOptions(int argc, char **argv, Options &out, std::string &error,
                  const std::vector<std::string> &extraFlags = {},
                  bool needArtifact = true);
std::string usage();
/// usage() with a line on every option and its default.
std::string help();

} // namespace dsserve

#endif // DS_SERVE_OPTIONS_H
