//===- ExpertParallel.cpp - expert parallelism with all-to-all dispatch ---===//
//
// The MoE side of ds-partition-model: a ds.moe whose routed experts are
// split over W ranks (whole experts, rank p owning [p E/W, (p + 1) E/W))
// becomes, on each rank,
//
//   tokens   -> shard.all_slice (this rank's share of the step's tokens)
//            -> router, ds.moe_route, ds.moe_permute (over all E experts)
//            -> ds.moe_dispatch   (all-to-all-v: rows to their experts' rank)
//            -> grouped matmuls over the rows this rank's experts received
//            -> ds.moe_collect    (all-to-all-v: results back to their rank)
//            -> ds.moe_combine    (routing weights, this rank's tokens)
//            -> shard.all_gather  (every rank's tokens again)
//   + shared experts: their split MLP over every token, all-reduced.
//
// Why split the tokens when every rank already holds all of them (after
// the TP attention's all-reduce, or replicated attention)? So that each
// token is routed, dispatched and combined once in the job, as DeepSeek's
// EP units and DeepEP do, rather than once per rank: the all-to-alls then
// carry T k rows over the job per layer, and the all-gather of [T, H]
// brings the replicated layout back for the next attention. Under
// data-parallel attention (`localTokens`) each rank's input already is its
// own sequences' tokens: no slice, no gather, and the shared experts are
// whole on every rank (their tokens differ by rank, so there is no partial
// sum to reduce).
//
// Uneven token counts: shard.all_slice and shard.all_gather of a dynamic
// dimension are given ceil(T/W)-row blocks in rank order, the last ones
// shorter or empty (the lowering in DSToLoops/ShardPatterns.cpp); static
// token counts are cast to dynamic first, since the upstream verifiers
// require static dims to divide evenly.
//
//===----------------------------------------------------------------------===//
#include "ExpertParallel.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"

using namespace mlir;
using namespace mlir::ds;

void mlir::ds::expandExpertParallelMoE(OpBuilder &b, MoEOp moe,
                                       shard::GridOp grid, bool localTokens,
                                       bool sharedSplit) {
  Location loc = moe.getLoc();
  MoEConfigAttr cfg = moe.getConfig();
  int64_t world = grid.getShape()[0];
  int64_t e = cfg.getNumExperts(), k = cfg.getTopK(),
          f = cfg.getIntermediateSize(), local = e / world;
  Value x = moe.getInput();
  auto xt = cast<RankedTensorType>(x.getType());
  int64_t d = xt.getDimSize(1), dyn = ShapedType::kDynamic;
  Type f32 = b.getF32Type(), i32 = b.getI32Type();
  auto rows = [&](int64_t n) { return RankedTensorType::get({dyn, n}, f32); };
  StringRef sym = grid.getSymName();
  static const int16_t kAxis0[] = {0};
  ArrayRef<int16_t> axis0(kAxis0);

  b.setInsertionPoint(moe);
  Value mine = x;
  if (!localTokens) {
    if (!xt.isDynamicDim(0))
      mine = tensor::CastOp::create(b, loc, rows(d), x);
    mine = shard::AllSliceOp::create(b, loc, rows(d), mine, sym, axis0,
                                     /*slice_axis=*/0)
               .getResult();
  }
  Value logits = LinearOp::create(b, loc, rows(e), mine, moe.getRouter());
  auto route = MoERouteOp::create(b, loc, RankedTensorType::get({dyn, k}, i32),
                                  RankedTensorType::get({dyn, k}, f32), logits,
                                  moe.getBias(), cfg);
  auto perm =
      MoEPermuteOp::create(b, loc, rows(d), RankedTensorType::get({e + 1}, i32),
                           RankedTensorType::get({dyn}, i32), mine,
                           route.getExpertIds(), b.getI64IntegerAttr(e));
  auto dispatch = MoEDispatchOp::create(
      b, loc, rows(d), RankedTensorType::get({local + 1}, i32),
      RankedTensorType::get({world, local}, i32), perm.getPermuted(),
      perm.getOffsets(), b.getI64IntegerAttr(world));
  Value gate = GroupedMatmulOp::create(b, loc, rows(f), dispatch.getReceived(),
                                       moe.getExpertsGate(),
                                       dispatch.getReceivedOffsets(), Value());
  Value up = GroupedMatmulOp::create(b, loc, rows(f), dispatch.getReceived(),
                                     moe.getExpertsUp(),
                                     dispatch.getReceivedOffsets(), Value());
  Value act = SiluMulOp::create(b, loc, rows(f), gate, up);
  Value down =
      GroupedMatmulOp::create(b, loc, rows(d), act, moe.getExpertsDown(),
                              dispatch.getReceivedOffsets(), Value());
  Value back =
      MoECollectOp::create(b, loc, rows(d), down, dispatch.getCounts(),
                           perm.getOffsets(), b.getI64IntegerAttr(world));
  Value y = MoECombineOp::create(b, loc, localTokens ? xt : rows(d), back,
                                 perm.getRowOfSlot(), route.getWeights());
  if (!localTokens) {
    y = shard::AllGatherOp::create(b, loc, rows(d), sym, axis0, y,
                                   llvm::APInt(64, 0))
            .getResult();
    if (!xt.isDynamicDim(0))
      y = tensor::CastOp::create(b, loc, xt, y);
  }
  if (moe.getSharedGate()) {
    Value shared = MLPOp::create(b, loc, xt, x, moe.getSharedGate(),
                                 moe.getSharedUp(), moe.getSharedDown());
    if (sharedSplit)
      shared = shard::AllReduceOp::create(b, loc, xt, sym, axis0, shared,
                                          shard::ReductionKind::Sum)
                   .getResult();
    y = arith::AddFOp::create(b, loc, y, shared);
  }
  moe.getResult().replaceAllUsesWith(y);
  moe.erase();
}
