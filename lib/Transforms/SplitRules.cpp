//===- SplitRules.cpp - which weights the parallel layouts split ----------===//
#include "SplitRules.h"

using namespace mlir;
using namespace mlir::ds;

std::optional<SplitRule> mlir::ds::tensorParallelSplits(Operation *op) {
  if (auto mla = dyn_cast<MLAOp>(op))
    return SplitRule{{mla.getQBProj(), 0},
                     {mla.getQProj(), 0},
                     {mla.getKvBProj(), 0},
                     {mla.getOProj(), 1}};
  if (auto mlp = dyn_cast<MLPOp>(op))
    return SplitRule{{mlp.getGate(), 0}, {mlp.getUp(), 0}, {mlp.getDown(), 1}};
  if (auto head = dyn_cast<LMHeadOp>(op))
    return SplitRule{{head.getHead(), 0}};
  if (auto emb = dyn_cast<EmbeddingOp>(op))
    return SplitRule{{emb.getTable(), 0}};
  return std::nullopt;
}

SplitRule mlir::ds::moeSplits(MoEOp moe, bool expertParallel,
                              bool dataParallel) {
  SplitRule rule;
  if (dataParallel)
    rule.push_back({moe.getInput(), 0});
  if (moe.getSharedGate() && !dataParallel)
    rule.append({{moe.getSharedGate(), 0},
                 {moe.getSharedUp(), 0},
                 {moe.getSharedDown(), 1}});
  if (expertParallel)
    rule.append({{moe.getExpertsGate(), 0},
                 {moe.getExpertsUp(), 0},
                 {moe.getExpertsDown(), 0}});
  else
    rule.append({{moe.getExpertsGate(), 1},
                 {moe.getExpertsUp(), 1},
                 {moe.getExpertsDown(), 2}});
  return rule;
}
