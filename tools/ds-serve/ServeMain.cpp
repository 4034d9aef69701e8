//===- ServeMain.cpp - binding, serving and signals, shared by the mains --===//

#include "ServeMain.h"

#include "Routes.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <thread>
#include <unistd.h>

namespace dsserve {

namespace {
// Written by the signal handler, read by the thread that drains the server.
// A handler rather than sigwait: libraries start threads before main
// (MPI's, for one) whose signal masks this program does not control.
int signalPipe[2] = {-1, -1};

void onSignal(int sig) {
  unsigned char b = static_cast<unsigned char>(sig);
  ssize_t r = write(signalPipe[1], &b, 1);
  (void)r;
}
} // namespace

void installServerSignals() {
  if (signalPipe[0] < 0 && pipe(signalPipe) != 0)
    signalPipe[0] = signalPipe[1] = -1;
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = onSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN); // a client gone mid-write is an error value
}

int runServer(Backend &backend, const Options &o, const char *tool) {
  ServerConfig c;
  c.host = o.host;
  c.port = o.port;
  c.apiKey = o.apiKey;
  c.modelName = backend.info().name;
  c.modelAliases = o.modelAliases;
  c.maxInFlight = o.maxNumSeqs + o.maxWaiting;
  c.shutdownTimeoutSeconds = o.shutdownTimeout;
  c.splitReasoning = !o.reasoningParser.empty();
  if (!o.toolCallParser.empty())
    c.toolFormat = toolCallFormat(o.toolCallParser);
  c.autoToolChoice = o.autoToolChoice;
  c.sharedPrefixTokens = backend.sharedPrefixTokens();
  c.priorityScheduling = o.priorityScheduling;
  Server server(backend, c);
  std::string error;
  if (!server.bind(error)) {
    fprintf(stderr, "%s: error: %s\n", tool, error.c_str());
    return 1;
  }
  if (!o.portFile.empty()) {
    // Written whole then renamed: a reader never sees half a number.
    std::string tmp = o.portFile + ".tmp";
    std::ofstream(tmp) << server.boundPort() << "\n";
    if (std::rename(tmp.c_str(), o.portFile.c_str()) != 0) {
      fprintf(stderr, "%s: error: cannot write '%s'\n", tool,
              o.portFile.c_str());
      return 1;
    }
  }
  fprintf(stderr, "%s: serving '%s' on http://%s:%d\n", tool,
          c.modelName.c_str(), c.host.c_str(), server.boundPort());
  std::thread signals([&server, tool] {
    unsigned char sig = 0;
    while (read(signalPipe[0], &sig, 1) < 0 && errno == EINTR)
      ;
    fprintf(stderr, "%s: %s: draining in-flight requests\n", tool,
            sig == SIGTERM ? "SIGTERM" : "SIGINT");
    server.stop();
  });
  server.serve();
  signals.join();
  backend.shutdown();
  fprintf(stderr, "%s: stopped\n", tool);
  return 0;
}

} // namespace dsserve
