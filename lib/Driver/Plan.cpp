//===- Plan.cpp - ds-compile --plan ---------------------------------------===//
//
// Bytes moved per rank follow the ring algorithms NCCL and MPI use for
// large messages: an all-reduce of P bytes sends 2 (W-1)/W P per rank, an
// all-gather of a P-byte result (W-1)/W P. Activations are exchanged as
// the IR has them (f32, the CPU artifact); a GPU deployment exchanges bf16,
// half of that, which the report prints beside it.
//
//===----------------------------------------------------------------------===//
#include "ds/Driver/Plan.h"
#include "ds/DSDialect.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Shard/IR/ShardOps.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <cmath>

using namespace mlir;
using namespace mlir::ds;

namespace {

int64_t elementBytes(Type t) {
  if (isa<Float8E4M3FNType>(t))
    return 1;
  return std::max<int64_t>(1, int64_t(t.getIntOrFloatBitWidth()) / 8);
}

int64_t tensorBytes(RankedTensorType t) {
  return t.getNumElements() * elementBytes(t.getElementType());
}

/// Bytes per token of a [T, N] tensor.
int64_t perTokenBytes(Type t) {
  auto r = cast<RankedTensorType>(t);
  int64_t n = 1;
  for (int64_t d : r.getShape().drop_front())
    n *= d;
  return n * elementBytes(r.getElementType());
}

std::string gb(double bytes) { return llvm::formatv("{0:f2} GB", bytes / 1e9); }
std::string mb(double bytes) { return llvm::formatv("{0:f2} MB", bytes / 1e6); }

} // namespace

void mlir::ds::measurePartitioned(ModuleOp m, PlanFigures &out) {
  if (auto grid = llvm::to_vector(m.getOps<shard::GridOp>()); !grid.empty())
    out.worldSize = grid.front().getShape().front();
  llvm::StringSet<> main, mtp;
  for (auto fn : m.getOps<func::FuncOp>()) {
    bool drafter = fn.getName() == "draft";
    fn.walk([&](Operation *op) {
      RankedTensorType t;
      StringRef name;
      if (auto w = dyn_cast<WeightOp>(op)) {
        t = w.getResult().getType();
        name = w.getName();
      } else if (auto s = dyn_cast<StackedWeightOp>(op)) {
        t = s.getResult().getType();
        name = s.getPattern();
      } else {
        return;
      }
      // A weight both models use counts once, for the main model.
      if (drafter ? mtp.insert(name).second : main.insert(name).second)
        (drafter ? out.mtpWeightBytes : out.weightBytes) += tensorBytes(t);
    });
    if (fn.getNumArguments() >= 3)
      if (auto c = dyn_cast<LatentCacheType>(fn.getArgumentTypes()[2]);
          c && fn.getName() == "decode") {
        out.cacheLayers = c.getNumLayers();
        out.cacheWidth = c.getWidth();
        out.cacheElementBytes = elementBytes(c.getElementType());
        out.kvBytesPerToken =
            out.cacheLayers * out.cacheWidth * out.cacheElementBytes;
      }
    PlanFigures::Comm &c = out.comm[fn.getName().str()];
    fn.walk([&](shard::AllReduceOp op) {
      ++c.allReduces;
      c.reduceBytesPerToken += perTokenBytes(op.getResult().getType());
    });
    fn.walk([&](shard::AllGatherOp op) {
      ++c.allGathers;
      c.gatherBytesPerToken += perTokenBytes(op.getResult().getType());
    });
    // Each dispatched token sends top_k rows there and gets them back.
    auto topK = [](Value offsets) -> int64_t {
      auto perm = offsets.getDefiningOp<MoEPermuteOp>();
      return perm ? perm.getExpertIds().getType().getDimSize(1) : 1;
    };
    fn.walk([&](MoEDispatchOp op) {
      ++c.allToAlls;
      c.allToAllBytesPerToken +=
          topK(op.getOffsets()) * perTokenBytes(op.getPermuted().getType());
    });
    fn.walk([&](MoECollectOp op) {
      ++c.allToAlls;
      c.allToAllBytesPerToken +=
          topK(op.getOffsets()) * perTokenBytes(op.getResult().getType());
    });
    fn.walk([&](shard::AllSliceOp) { c.tokensShared = true; });
    fn.walk([&](MLAOp op) {
      out.kvLoraRank = op.getConfig().getKvLoraRank();
      out.ropeWidth = op.getConfig().getQkRopeHeadDim();
    });
  }
}

std::string mlir::ds::formatPlan(const PlanFigures &f, const PlanOptions &o,
                                 StringRef modelType) {
  std::string s;
  llvm::raw_string_ostream os(s);
  int64_t w = f.worldSize;
  double ring = w > 1 ? double(w - 1) / double(w) : 0;
  // Data-parallel attention: each rank runs its own batch and holds only
  // its sequences' cache, so the job serves W times a rank's sequences.
  int64_t jobFactor = o.dpAttention ? w : 1;
  os << "plan: " << modelType << ", " << w << " ranks (tp " << o.tp << ", ep "
     << o.ep << (o.dpAttention ? ", data-parallel attention" : "")
     << "), per rank:\n";
  os << "  weights: " << gb(double(f.weightBytes)) << " (" << f.weightBytes
     << " bytes; the MTP module adds " << gb(double(f.mtpWeightBytes)) << ")\n";
  int64_t fp8Row = f.kvLoraRank ? f.fp8CacheRowBytes() : f.cacheWidth;
  os << "  latent cache: " << f.kvBytesPerToken << " bytes per token ("
     << f.cacheLayers << " layers x " << f.cacheWidth << " x "
     << f.cacheElementBytes << " B; "
     << (o.dpAttention ? "this rank's sequences only"
                       : "every sequence, whole on every rank")
     << "); FP8 layout (e4m3 latent, f32 scale per 128, bf16 rope) "
     << f.cacheLayers * fp8Row << " (" << f.cacheLayers << " x " << fp8Row
     << " B)\n";
  auto act = [&](const char *fn, int64_t tokens) -> double {
    auto it = f.activations.find(fn);
    if (it == f.activations.end())
      return -1;
    return double(it->second.first * tokens + it->second.second);
  };
  double actPrefill = act("prefill", o.prefillTokens);
  double actDecode = act("decode", 1);
  if (actPrefill >= 0)
    os << "  activation peak (f32 plan): prefill chunk of " << o.prefillTokens
       << " tokens " << mb(actPrefill) << ", decode " << mb(actDecode)
       << " per sequence step"
       << (f.comm.count("decode") && f.comm.at("decode").allToAlls
               ? ", besides the rows other ranks dispatch here (data-"
                 "dependent, allocated per step)"
               : "")
       << "\n";
  // Bytes a rank sends in a step of `tokens` tokens (f32, as the IR has
  // them): ring all-reduces and all-gathers; all-to-alls under uniform
  // routing, (W-1)/W of the rows a rank dispatches leave it, and as many
  // come back. A rank dispatches its share of the step's tokens (T/W)
  // when they are replicated, all of its own under DP attention.
  auto sentBytes = [&](const PlanFigures::Comm &c, int64_t tokens) {
    double local = c.tokensShared ? double(tokens) / double(w) : double(tokens);
    double a2a = ring * double(c.allToAllBytesPerToken) * local;
    return std::pair<double, double>{(2 * ring * double(c.reduceBytesPerToken) +
                                      ring * double(c.gatherBytesPerToken)) *
                                             double(tokens) +
                                         a2a,
                                     a2a};
  };
  for (auto [name, tokens] :
       {std::pair<const char *, int64_t>{"prefill", o.prefillTokens},
        {"decode", o.decodeBatch}}) {
    auto it = f.comm.find(name);
    if (it == f.comm.end())
      continue;
    const PlanFigures::Comm &c = it->second;
    auto [sent, a2a] = sentBytes(c, tokens);
    os << "  communication, @" << name << " step of " << tokens << " tokens"
       << (o.dpAttention ? " on each rank" : "") << ": " << c.allReduces
       << " all-reduces + " << c.allGathers << " all-gathers + " << c.allToAlls
       << " all-to-alls; bytes sent " << mb(sent) << " f32, " << mb(sent / 2)
       << " bf16";
    if (c.allToAlls)
      os << " (all-to-all dispatch + combine " << mb(a2a / 2)
         << " bf16, uniform routing)";
    os << "\n";
  }
  // Capacity: what is left of the device after weights and the decode
  // batch's activations holds the latent cache.
  double left = o.deviceMemoryGB * 1e9 - double(f.weightBytes) -
                double(f.mtpWeightBytes) -
                std::max(0.0, actDecode) * double(o.decodeBatch);
  for (int64_t ctx : {4096, 32768}) {
    for (int64_t row : {f.cacheWidth * f.cacheElementBytes, fp8Row}) {
      double perSeq = double(f.cacheLayers * row) * double(ctx);
      int64_t seqs = left > 0 ? int64_t(std::floor(left / perSeq)) : 0;
      os << llvm::formatv("  capacity at {0} context, {1} cache: {2} "
                          "sequences per rank in {3:f0} GB, {4} in the job\n",
                          ctx, row == fp8Row ? "FP8" : "f32", seqs,
                          o.deviceMemoryGB, seqs * jobFactor);
    }
  }
  // One decode step of the batch: reading every weight byte once and the
  // cache of every sequence (at 4K, FP8 layout), against the exchanges and
  // their latency. Upper bounds of each cost; the largest is the bound.
  auto it = f.comm.find("decode");
  if (it != f.comm.end()) {
    const PlanFigures::Comm &c = it->second;
    double hbm = (double(f.weightBytes) + double(o.decodeBatch) * 4096.0 *
                                              double(f.cacheLayers * fp8Row)) /
                 (o.hbmTBs * 1e12);
    double bytes = sentBytes(c, o.decodeBatch).first / 2; // bf16 on the wire
    double link = bytes / (o.linkGBs * 1e9);
    int64_t collectives = c.allReduces + c.allGathers + c.allToAlls;
    double latency = double(collectives) * o.collectiveLatencyUs * 1e-6;
    const char *bound = hbm >= link && hbm >= latency ? "HBM bandwidth"
                        : link >= latency             ? "link bandwidth"
                                                      : "collective latency";
    os << llvm::formatv("  decode step of {0} sequences{9} at 4K (FP8 cache): "
                        "HBM {1:f2} ms (every weight byte once, {2:f1} TB/s), "
                        "link {3:f2} ms ({4:f0} GB/s, bf16), latency {5:f2} "
                        "ms ({6} x {7:f0} us): bound by {8}\n",
                        o.decodeBatch, hbm * 1e3, o.hbmTBs, link * 1e3,
                        o.linkGBs, latency * 1e3, collectives,
                        o.collectiveLatencyUs, bound,
                        o.dpAttention ? " per rank" : "");
  }
  return s;
}
