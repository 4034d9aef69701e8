//===- SplitKVAttention.h - decode attention as a GPU kernel ----*- C++ -*-===//
#ifndef DS_CONVERSION_KERNELSTOGPU_SPLITKVATTENTION_H
#define DS_CONVERSION_KERNELSTOGPU_SPLITKVATTENTION_H

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace mlir::ds::gpu_kernels {

/// Replaces the body of an outlined `latent_attention` kernel function
/// (operands: q_latent, q_rope, cache, positions, out, layer) by a split-KV
/// kernel pair: partial attention over slices of the context in parallel
/// blocks, then a log-sum-exp merge. Returns false (body untouched) when
/// the widths do not allow vector loads; the generic mapping then applies.
FailureOr<bool> emitSplitKVAttention(func::FuncOp fn);

} // namespace mlir::ds::gpu_kernels

#endif
