//===- PagedAttention.h - @ragged_step's paged kernels on the GPU -*- C++
//-*-===//
#ifndef DS_CONVERSION_KERNELSTOGPU_PAGEDATTENTION_H
#define DS_CONVERSION_KERNELSTOGPU_PAGEDATTENTION_H

#include "mlir/Dialect/Func/IR/FuncOps.h"

namespace mlir::ds::gpu_kernels {

/// Replaces the body of an outlined `paged_latent_attention` kernel
/// (operands: q_latent, q_rope, paged cache, positions, query_start,
/// block_tables, out, layer) by a split-KV kernel pair over the pages:
/// each block takes a tile of one sequence's (token, head) query rows,
/// reads every cache row once for all of them (16-byte loads within a
/// page, the page found through the block table), masks causally per
/// row, and splits the context by the sequence's own length; a
/// log-sum-exp combine merges the splits. Returns false (body untouched)
/// when the widths do not allow 16-byte loads.
FailureOr<bool> emitPagedSplitKVAttention(func::FuncOp fn);

/// Replaces the body of an outlined `paged_cache_write` kernel (operands:
/// paged cache, latent, rope key, positions, query_start, block_tables,
/// layer) by one block per token whose threads write consecutive columns
/// of the token's row in its page. Returns false when the operands are
/// not that shape.
FailureOr<bool> emitPagedCacheWrite(func::FuncOp fn);

} // namespace mlir::ds::gpu_kernels

#endif
