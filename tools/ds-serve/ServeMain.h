//===- ServeMain.h - binding, serving and signals, shared by the mains ----===//
#ifndef DS_SERVE_SERVEMAIN_H
#define DS_SERVE_SERVEMAIN_H

#include "Backend.h"
#include "Options.h"

namespace dsserve {

/// Serves `backend` until SIGTERM or SIGINT, then drains (see
/// Server::stop) and returns the exit code.
int runServer(Backend &backend, const Options &options, const char *tool);

/// SIGTERM and SIGINT start the drain in runServer (whichever thread takes
/// them); SIGPIPE is ignored. Call first in main.
void installServerSignals();

} // namespace dsserve

#endif // DS_SERVE_SERVEMAIN_H
