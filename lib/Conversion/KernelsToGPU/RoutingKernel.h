//===- RoutingKernel.h - MoE routing as one block per token -----*- C++ -*-===//
#ifndef DS_CONVERSION_KERNELSTOGPU_ROUTINGKERNEL_H
#define DS_CONVERSION_KERNELSTOGPU_ROUTINGKERNEL_H

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace mlir::ds::gpu_kernels {

/// Replaces the routing nest of an outlined `moe_route` or
/// `moe_route_permute` kernel (the first scf.parallel, one iteration per
/// token; the function carries `ds.moe_config`) by one block per token:
/// experts spread over the threads, group scores and top-k by warp
/// shuffles, the same ids and weights. The rest of the function (the
/// permutation) is left for the generic mapping. Returns false (nothing
/// changed) for configurations outside RoutingReference.h's limits.
FailureOr<bool> emitRouting(func::FuncOp fn);

} // namespace mlir::ds::gpu_kernels

#endif
