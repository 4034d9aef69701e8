//===- RowNormKernel.h - RMSNorm as one block per row -----------*- C++ -*-===//
#ifndef DS_CONVERSION_KERNELSTOGPU_ROWNORMKERNEL_H
#define DS_CONVERSION_KERNELSTOGPU_ROWNORMKERNEL_H

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace mlir::ds::gpu_kernels {

/// Replaces the body of an outlined `rms_norm` (x, w, out) or
/// `add_rms_norm` (x, y, w, sum, out) kernel by one block of threads per
/// row: strided loads, a block reduction (warp shuffles + shared memory),
/// then the scaled row. Returns false (body untouched) for other shapes.
FailureOr<bool> emitRowNorm(func::FuncOp fn);

/// Replaces the body of an outlined `argmax` (logits [n, V], ids [n])
/// kernel by one block per row: strided scans, then (value, index) pairs
/// reduced by warp shuffles and shared memory, the first maximum winning.
FailureOr<bool> emitRowArgmax(func::FuncOp fn);

} // namespace mlir::ds::gpu_kernels

#endif
