//===- ds-serve-fake.cpp - ds-serve's HTTP layer on the scripted backend --===//
//
// For tests only (not installed): the same server as ds-serve, with
// FakeBackend instead of a model, so the HTTP layer is tested on its own.
//
//===----------------------------------------------------------------------===//

#include "FakeBackend.h"
#include "ServeMain.h"

#include <cstdio>
#include <cstdlib>

using namespace dsserve;

int main(int argc, char **argv) {
  installServerSignals();
  Options o;
  std::string error;
  if (!parseOptions(argc, argv, o, error,
                    {"--fake-token-delay-ms", "--fake-pages", "--fake-text"},
                    /*needArtifact=*/false)) {
    fprintf(stderr, "ds-serve-fake: error: %s\n", error.c_str());
    return 1;
  }
  if (o.help) {
    printf("%s\n", help().c_str());
    return 0;
  }
  FakeBackend::Config c;
  c.maxNumSeqs = o.maxNumSeqs;
  c.maxWaiting = o.maxWaiting;
  if (o.maxModelLen)
    c.maxContext = o.maxModelLen;
  if (auto it = o.extra.find("--fake-token-delay-ms"); it != o.extra.end())
    c.tokenDelayMs = atoi(it->second.c_str());
  if (auto it = o.extra.find("--fake-pages"); it != o.extra.end())
    c.pages = atoll(it->second.c_str());
  if (auto it = o.extra.find("--fake-text"); it != o.extra.end())
    c.text = it->second; // what every request replays
  c.priorityScheduling = o.priorityScheduling;
  if (!o.servedModelName.empty())
    c.name = o.servedModelName;
  FakeBackend backend(c);
  return runServer(backend, o, "ds-serve-fake");
}
