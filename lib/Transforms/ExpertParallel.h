//===- ExpertParallel.h - the MoE side of ds-partition-model ----*- C++ -*-===//
#ifndef DS_TRANSFORMS_EXPERTPARALLEL_H
#define DS_TRANSFORMS_EXPERTPARALLEL_H

#include "ds/DSDialect.h"

#include "mlir/Dialect/Shard/IR/ShardOps.h"

namespace mlir::ds {

/// Replaces `moe`, whose routed expert stacks already are this rank's
/// E/W whole experts, by its expert-parallel dispatch form (see
/// ExpertParallel.cpp). `localTokens`: the input holds this rank's own
/// tokens (data-parallel attention) instead of every token of the step;
/// `sharedSplit`: the shared experts' weights are column/row pieces whose
/// outputs are partial sums.
void expandExpertParallelMoE(OpBuilder &b, MoEOp moe, shard::GridOp grid,
                             bool localTokens, bool sharedSplit);

} // namespace mlir::ds

#endif // DS_TRANSFORMS_EXPERTPARALLEL_H
