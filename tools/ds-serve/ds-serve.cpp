//===- ds-serve.cpp - an OpenAI-compatible server for a compiled model -----===//

#include "EngineBackend.h"
#include "ServeMain.h"

#include <cstdio>

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
  if (!o.tokenizer.empty()) {
    // The tokenizer library (#14) has not landed in this build.
    fprintf(stderr, "ds-serve: error: --tokenizer: this build has no "
                    "tokenizer support yet; serve token-id prompts without "
                    "it\n");
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
  auto backend = EngineBackend::create(c, nullptr, error);
  if (!backend) {
    fprintf(stderr, "ds-serve: error: %s\n", error.c_str());
    return 1;
  }
  return runServer(*backend, o, "ds-serve");
}
