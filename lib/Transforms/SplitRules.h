//===- SplitRules.h - which weights the parallel layouts split --*- C++ -*-===//
//
// ds-shard-model writes these splits as annotations and ds-partition-model
// checks the annotations it finds against them: one table, so the two
// passes cannot drift apart.
//
//===----------------------------------------------------------------------===//
#ifndef DS_TRANSFORMS_SPLITRULES_H
#define DS_TRANSFORMS_SPLITRULES_H

#include "ds/DSDialect.h"

#include <optional>

namespace mlir::ds {

/// Operands of one op and the dim each is split along over the ranks. An
/// operand the op does not have (a null Value) is split by no one.
using SplitRule = SmallVector<std::pair<Value, int64_t>>;

/// The tensor-parallel splits of ds.mla (heads: q_b/q, kv_b by rows, o by
/// columns), ds.mlp (gate/up by rows, down by columns), ds.lm_head and
/// ds.embedding (vocabulary rows); nullopt for any other op.
std::optional<SplitRule> tensorParallelSplits(Operation *op);

/// The splits of ds.moe. `expertParallel`: whole routed experts per rank
/// (dim 0 of the stacks), else each expert's intermediate columns.
/// `dataParallel` (with expertParallel): the input's tokens are this rank's
/// own and the shared experts stay whole; otherwise the shared experts are
/// split like a dense MLP.
SplitRule moeSplits(MoEOp moe, bool expertParallel, bool dataParallel);

} // namespace mlir::ds

#endif // DS_TRANSFORMS_SPLITRULES_H
