//===- Graph.h - a decode step as one CUDA graph launch ---------*- C++ -*-===//
#ifndef DSRT_CUDA_GRAPH_H
#define DSRT_CUDA_GRAPH_H

#include "cuda/Device.h"

#include <functional>

namespace dsrt::cuda {

/// Runs `body` (the generated host code of one entry-point call, which
/// queues its work on the session's stream) for `tokens` tokens of the
/// entry point `entry`. From the second call of that (entry, tokens) shape
/// on, the call is captured into a CUDA graph and launched as one
/// (cuGraphExecUpdate refreshes the shape's executable graph in place, so
/// changed grids and arguments, such as the split count following the
/// context, are taken), unless:
/// - the driver lacks the stream-capture or graph entry points, or
///   DSRT_CUDA_GRAPHS=0, or DSRT_CUDA_SYNC=1 (which waits after each call);
/// - the call waits on the host (a scalar copied back, the expert offsets
///   of a grouped GEMM with more rows than experts, a buffer that grows):
///   the capture is dropped, the call runs again without it, and the shape
///   is not captured again in this session.
/// Failures go to `ex` as for any call.
void runStep(DeviceSession &d, Execution &ex, const void *entry,
             int64_t tokens, const std::function<void()> &body);

} // namespace dsrt::cuda

#endif // DSRT_CUDA_GRAPH_H
