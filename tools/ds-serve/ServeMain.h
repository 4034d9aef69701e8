//===- ServeMain.h - binding, serving and signals, shared by the mains ----===//
#ifndef DS_SERVE_SERVEMAIN_H
#define DS_SERVE_SERVEMAIN_H

#include "Backend.h"
#include "Options.h"

namespace dsserve {

/// Serves `backend` until SIGTERM or SIGINT, then drains (see
/// Server::stop) and returns the exit code. Call it before starting any
/// thread that should not receive those signals... or after: it blocks
/// them in the calling thread and every thread created later.
int runServer(Backend &backend, const Options &options, const char *tool);

/// Blocks SIGTERM, SIGINT (taken by sigwait in runServer) and SIGPIPE; call
/// first in main so every thread inherits the mask.
void blockServerSignals();

} // namespace dsserve

#endif // DS_SERVE_SERVEMAIN_H
