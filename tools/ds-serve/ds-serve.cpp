//===- ds-serve.cpp - an OpenAI-compatible server for a compiled model -----===//

#include "EngineBackend.h"
#include "ServeMain.h"
#include "TextTokenizer.h"

#include <cstdio>
#include <unistd.h>

using namespace dsserve;

static std::string baseName(std::string p) {
  while (p.size() > 1 && p.back() == '/')
    p.pop_back();
  size_t s = p.find_last_of('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

int main(int argc, char **argv) {
  installServerSignals();
  Options o;
  std::string error;
  if (!parseOptions(argc, argv, o, error)) {
    fprintf(stderr, "ds-serve: error: %s\n", error.c_str());
    return 1;
  }
  if (o.help) {
    printf("%s\n", help().c_str());
    return 0;
  }
  // The tokenizer: --tokenizer DIR, else the checkpoint's own when it has
  // one; without, prompts must be token ids.
  std::unique_ptr<Tokenizer> tok;
  std::string tokDir = o.tokenizer;
  if (tokDir.empty() && access((o.weights + "/tokenizer.json").c_str(), F_OK) == 0)
    tokDir = o.weights;
  if (!tokDir.empty()) {
    tok = TextTokenizer::load(tokDir, error);
    if (!tok) {
      fprintf(stderr, "ds-serve: error: --tokenizer: %s\n", error.c_str());
      return 1;
    }
    if (!o.chatTemplate.empty() &&
        !static_cast<TextTokenizer &>(*tok).useChatTemplate(o.chatTemplate,
                                                            error)) {
      fprintf(stderr, "ds-serve: error: --chat-template: %s\n", error.c_str());
      return 1;
    }
    // V3's own template never shows the model `tools`: calls would only
    // come where the request forces them.
    if (!o.toolCallParser.empty() &&
        !static_cast<TextTokenizer &>(*tok).templateNames("tools"))
      fprintf(stderr,
              "ds-serve: warning: the chat template never reads 'tools', so "
              "the model is not told which functions it may call; pass "
              "--chat-template with one that does (DeepSeek V3 / R1: "
              "tools/ds-serve/templates/deepseek_v3_tools.jinja)\n");
  } else if (!o.chatTemplate.empty()) {
    fprintf(stderr, "ds-serve: error: --chat-template needs a tokenizer "
                    "(--tokenizer DIR)\n");
    return 1;
  }
  EngineBackend::Config c;
  c.artifact = o.artifact;
  c.weights = o.weights;
  c.device = o.device;
  c.name = o.servedModelName.empty() ? baseName(o.weights) : o.servedModelName;
  c.maxNumSeqs = o.maxNumSeqs;
  c.maxWaiting = o.maxWaiting;
  c.maxModelLen = o.maxModelLen;
  c.kvCacheBytes = o.kvCacheBytes;
  c.maxNumBatchedTokens = o.maxNumBatchedTokens;
  c.prefixCaching = o.prefixCaching;
  c.speculative = o.speculative;
  c.priorityScheduling = o.priorityScheduling;
  auto backend = EngineBackend::create(c, std::move(tok), error);
  if (!backend) {
    fprintf(stderr, "ds-serve: error: %s\n", error.c_str());
    return 1;
  }
  // Under mpiexec only rank 0 binds the port; the others run its steps
  // until it stops serving.
  if (backend->isFollower())
    return backend->follow("ds-serve");
  return runServer(*backend, o, "ds-serve");
}
