//===- Graph.cpp - a decode step as one CUDA graph launch -----------------===//
//
// A V3 decode step is hundreds of small launches and cuBLAS calls; as a
// graph they reach the GPU in one launch, without the gaps between them.
// The host code still runs every step (it is what captures), as in
// llama.cpp's CUDA graphs: capturing costs about what launching did, and
// updating the executable graph keeps it right when grids or arguments
// change with the context.
//
//===----------------------------------------------------------------------===//
#include "cuda/Graph.h"

#include <cstdlib>
#include <string>

using namespace dsrt::cuda;

namespace {

constexpr int CU_STREAM_CAPTURE_MODE_RELAXED = 2;

/// DSRT_CUDA_GRAPHS: unset or 1 uses graphs where the driver has them, 0
/// never (bring-up: tells graph replay apart on a first GPU run).
bool graphsWanted(Execution &ex) {
  const char *v = std::getenv("DSRT_CUDA_GRAPHS");
  if (!v || !*v || std::string(v) == "1")
    return !syncEveryCall();
  if (std::string(v) != "0")
    ex.fail(std::string("DSRT_CUDA_GRAPHS must be 0 or 1, got '") + v + "'");
  return false;
}

/// The call, run again without capture after a capture that failed:
/// nothing of the captured run executed, so the device is as before it.
void rerun(DeviceSession &d, Execution &ex,
           const std::function<void()> &body) {
  ex.error.clear();
  ex.forgetOffsets();
  std::string error = d.arena.reset();
  if (!error.empty())
    return ex.fail(error);
  body();
}

} // namespace

void dsrt::cuda::runStep(DeviceSession &d, Execution &ex, const void *entry,
                         int64_t tokens, const std::function<void()> &body) {
  const Driver &drv = d.g.drv;
  bool wanted = graphsWanted(ex);
  if (ex.failed())
    return;
  StepGraph &st = d.graphs[{entry, tokens}];
  // The first call of a shape runs plainly: it grows the arena and the
  // staging buffers to the shape, which a capture could not do.
  if (!wanted || !drv.hasGraphs() || st.broken || st.calls++ == 0)
    return body();

  CUresult r = drv.cuStreamBeginCapture(d.stream,
                                        CU_STREAM_CAPTURE_MODE_RELAXED);
  if (r != CUDA_SUCCESS) {
    st.broken = true;
    d.graphNote = d.g.describe("cuStreamBeginCapture", r);
    return body();
  }
  ex.capturing = true;
  body();
  ex.capturing = false;
  CUgraph graph = nullptr;
  r = drv.cuStreamEndCapture(d.stream, &graph);
  if (r != CUDA_SUCCESS || ex.failed() || !graph) {
    if (graph)
      drv.cuGraphDestroy(graph);
    st.broken = true;
    d.graphNote = ex.failed() ? ex.error
                              : d.g.describe("cuStreamEndCapture", r);
    ++d.graphFallbacks;
    return rerun(d, ex, body);
  }
  if (st.exec) {
    alignas(8) unsigned char info[64] = {};
    if (drv.cuGraphExecUpdate(st.exec, graph, info) != CUDA_SUCCESS) {
      drv.cuGraphExecDestroy(st.exec);
      st.exec = nullptr;
    }
  }
  if (!st.exec) {
    r = drv.cuGraphInstantiate(&st.exec, graph, 0);
    if (r != CUDA_SUCCESS) {
      st.exec = nullptr;
      drv.cuGraphDestroy(graph);
      st.broken = true;
      d.graphNote = d.g.describe("cuGraphInstantiateWithFlags", r);
      ++d.graphFallbacks;
      return rerun(d, ex, body);
    }
  }
  drv.cuGraphDestroy(graph);
  r = drv.cuGraphLaunch(st.exec, d.stream);
  if (r != CUDA_SUCCESS)
    return ex.fail(d.g.describe("cuGraphLaunch", r));
  ++d.graphLaunches;
}
