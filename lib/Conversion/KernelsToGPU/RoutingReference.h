//===- RoutingReference.h - the GPU routing, lane by lane -------*- C++ -*-===//
//
// The block-per-token routing kernel (RoutingKernel.cpp) written as plain
// C++ that steps every lane of the block through the same reduction tree:
// the same strided per-thread scans, the same XOR butterflies (lane l
// meets lane l ^ off), the same order of the per-warp partials. No GPU can
// run here, so this is how the algorithm is checked against the CPU
// routing (unittests/conversion/RoutingKernelTest.cpp); the emitter and
// this file change together. No MLIR dependency: the test links nothing.
//
//===----------------------------------------------------------------------===//
#ifndef DS_CONVERSION_KERNELSTOGPU_ROUTINGREFERENCE_H
#define DS_CONVERSION_KERNELSTOGPU_ROUTINGREFERENCE_H

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

namespace ds::routing {

/// Threads per token: one expert per thread up to 256 (V3's 256 experts),
/// whole warps, strided beyond.
inline int64_t threadsFor(int64_t experts) {
  return std::clamp<int64_t>((experts + 31) / 32 * 32, 32, 256);
}

/// What the kernel handles; other configurations keep the generic mapping.
/// Groups are one per lane in the group selection, so at most 32; the
/// experts' scores live in shared memory.
constexpr int64_t kMaxExperts = 4096, kMaxGroups = 32;

struct Config {
  int64_t experts = 0, topK = 0, groups = 1, topkGroups = 1;
  bool softmax = false, grouped = false, top2 = false, normalise = false;
  /// Weights are multiplied by `scale` (1 where the rule does not scale).
  float scale = 1.0f;
};

/// A candidate (value, index). `b` replaces `a` when larger, or equal with
/// a smaller index: the lowest index wins ties, as the CPU's first-maximum
/// argmax does.
struct Candidate {
  float v;
  int32_t i;
};
inline Candidate pick(Candidate a, Candidate b) {
  bool take = b.v > a.v || (b.v == a.v && b.i < a.i);
  return take ? b : a;
}

/// NaN never wins a CPU argmax (its comparisons are false): the kernel
/// compares NaN as -inf, which selects the same experts.
inline float key(float v) {
  return std::isnan(v) ? -std::numeric_limits<float>::infinity() : v;
}

/// arith.maximumf / minimumf: NaN-propagating.
inline float maximumf(float a, float b) {
  return std::isnan(a) || std::isnan(b)
             ? std::numeric_limits<float>::quiet_NaN()
             : std::max(a, b);
}
inline float minimumf(float a, float b) {
  return std::isnan(a) || std::isnan(b)
             ? std::numeric_limits<float>::quiet_NaN()
             : std::min(a, b);
}

/// gpu.shuffle xor over offsets 16..1: lane l combines its value with lane
/// l ^ off's (its own first), every lane ending with the warp's result.
template <typename T, typename F>
void butterfly(std::array<T, 32> &lanes, F combine) {
  for (int off : {16, 8, 4, 2, 1}) {
    std::array<T, 32> old = lanes;
    for (int l = 0; l < 32; ++l)
      lanes[size_t(l)] = combine(old[size_t(l)], old[size_t(l ^ off)]);
  }
}

/// One token's routing as the block computes it: `logits` and `bias`
/// (nullptr without) have `experts` entries; `ids`, `weights` get top_k.
inline void blockRoute(const Config &c, const float *logits, const float *bias,
                       int32_t *ids, float *weights) {
  const float negInf = -std::numeric_limits<float>::infinity();
  const int64_t e = c.experts, t = threadsFor(e), w = t / 32;
  const size_t n = static_cast<size_t>(e);
  std::vector<float> scores(n), sel(n);
  // Per-warp butterflies over a per-thread value; the warps' results in
  // warp order (what lane 0 of each warp writes to shared memory).
  auto perWarp = [&](const std::vector<float> &perThread, auto combine) {
    std::vector<float> out;
    for (int64_t wi = 0; wi < w; ++wi) {
      std::array<float, 32> lanes;
      for (int l = 0; l < 32; ++l)
        lanes[size_t(l)] = perThread[size_t(wi * 32 + l)];
      butterfly(lanes, combine);
      out.push_back(lanes[0]);
    }
    return out;
  };

  // Scores.
  if (c.softmax) {
    std::vector<float> local(static_cast<size_t>(t), negInf);
    for (int64_t tid = 0; tid < t; ++tid)
      for (int64_t i = tid; i < e; i += t)
        local[size_t(tid)] = maximumf(local[size_t(tid)], logits[i]);
    float mx = negInf;
    for (float v : perWarp(local, maximumf))
      mx = maximumf(mx, v);
    for (int64_t tid = 0; tid < t; ++tid) {
      float s = 0.0f;
      for (int64_t i = tid; i < e; i += t) {
        float ex = std::exp(logits[i] - mx);
        scores[size_t(i)] = ex;
        s += ex;
      }
      local[size_t(tid)] = s;
    }
    float total = 0.0f;
    for (float v : perWarp(local, [](float a, float b) { return a + b; }))
      total += v;
    for (int64_t i = 0; i < e; ++i)
      scores[size_t(i)] = scores[size_t(i)] / total;
  } else {
    for (int64_t i = 0; i < e; ++i)
      scores[size_t(i)] = 1.0f / (1.0f + std::exp(-logits[i]));
  }
  for (int64_t i = 0; i < e; ++i)
    sel[size_t(i)] =
        key(bias ? scores[size_t(i)] + bias[i] : scores[size_t(i)]);

  // Groups: warp wi scores groups wi, wi + w, ...; each lane keeps the top
  // two of its strided slice, the butterfly merges the pairs. Then every
  // warp picks the kept groups alike (lane g holds group g), as a bit mask.
  uint32_t kept = 0;
  const int64_t per = e / c.groups;
  if (c.grouped) {
    std::vector<float> groupScore(static_cast<size_t>(c.groups));
    for (int64_t g = 0; g < c.groups; ++g) {
      std::array<std::array<float, 2>, 32> lanes;
      for (int l = 0; l < 32; ++l) {
        float b1 = negInf, b2 = negInf;
        for (int64_t j = l; j < per; j += 32) {
          float v = sel[size_t(g * per + j)];
          bool gt1 = v > b1, gt2 = v > b2;
          float n2 = gt1 ? b1 : (gt2 ? v : b2);
          b1 = gt1 ? v : b1;
          b2 = n2;
        }
        lanes[size_t(l)] = {b1, b2};
      }
      butterfly(lanes, [](std::array<float, 2> a, std::array<float, 2> o) {
        return std::array<float, 2>{
            maximumf(a[0], o[0]),
            maximumf(minimumf(a[0], o[0]), maximumf(a[1], o[1]))};
      });
      groupScore[size_t(g)] = c.top2 ? lanes[0][0] + lanes[0][1] : lanes[0][0];
    }
    std::array<float, 32> value;
    for (int l = 0; l < 32; ++l)
      value[size_t(l)] = l < c.groups ? key(groupScore[size_t(l)]) : negInf;
    for (int64_t r = 0; r < c.topkGroups; ++r) {
      std::array<Candidate, 32> lanes;
      for (int l = 0; l < 32; ++l)
        lanes[size_t(l)] = {value[size_t(l)], l};
      butterfly(lanes, pick);
      int32_t win = lanes[0].i;
      kept |= uint32_t(1) << win;
      value[size_t(win)] = negInf;
    }
  }

  // Top-k: k rounds of a block argmax; the winner's owner clears it.
  float total = 0.0f;
  std::vector<int32_t> chosen;
  std::vector<float> chosenW;
  for (int64_t j = 0; j < c.topK; ++j) {
    std::vector<Candidate> local(static_cast<size_t>(t));
    for (int64_t tid = 0; tid < t; ++tid) {
      Candidate best{negInf, int32_t(e)};
      for (int64_t i = tid; i < e; i += t) {
        bool in = !c.grouped || ((kept >> (i / per)) & 1u);
        best = pick(best, {in ? sel[size_t(i)] : negInf, int32_t(i)});
      }
      local[size_t(tid)] = best;
    }
    Candidate win{negInf, int32_t(e)};
    for (int64_t wi = 0; wi < w; ++wi) {
      std::array<Candidate, 32> lanes;
      for (int l = 0; l < 32; ++l)
        lanes[size_t(l)] = local[size_t(wi * 32 + l)];
      butterfly(lanes, pick);
      win = pick(win, lanes[0]);
    }
    sel[size_t(win.i)] = negInf;
    float wt = scores[size_t(win.i)];
    total += wt;
    chosen.push_back(win.i);
    chosenW.push_back(wt);
  }
  float factor = c.scale;
  if (c.normalise)
    factor = factor / (total + 1e-20f);
  for (int64_t j = 0; j < c.topK; ++j) {
    ids[j] = chosen[size_t(j)];
    weights[j] = chosenW[size_t(j)] * factor;
  }
}

} // namespace ds::routing

#endif
