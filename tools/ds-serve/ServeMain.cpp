//===- ServeMain.cpp - binding, serving and signals, shared by the mains --===//

#include "ServeMain.h"

#include "Routes.h"

#include <csignal>
#include <cstdio>
#include <fstream>
#include <pthread.h>
#include <thread>

namespace dsserve {

void blockServerSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

int runServer(Backend &backend, const Options &o, const char *tool) {
  ServerConfig c;
  c.host = o.host;
  c.port = o.port;
  c.apiKey = o.apiKey;
  c.modelName = backend.info().name;
  c.maxInFlight = o.maxNumSeqs + o.maxWaiting;
  c.shutdownTimeoutSeconds = o.shutdownTimeout;
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
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    int sig = 0;
    sigwait(&set, &sig);
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
