//===- RoutingKernelTest.cpp - the GPU routing algorithm vs the CPU's -----===//
//
// No GPU runs here, so the block-per-token routing kernel's algorithm
// (RoutingReference.h: every lane through the same butterflies) is compared
// with the CPU routing, transcribed below step for step from
// KernelEmitter::moeRoute (lib/Conversion/DSToLoops/MoEKernels.cpp): scores,
// bias, group top-2 / max, group argmaxes, top-k by repeated first-maximum
// argmax. On random logits with many exact ties (few distinct values), NaN
// and -inf, for V3's 256 experts / 8 groups / top-4 groups / top-8 and the
// other released shapes, the chosen experts must be the same in the same
// order, and the weights equal (sigmoid: same arithmetic, bit for bit;
// softmax: the block sums in another order, 4e-6 relative).
//
//===----------------------------------------------------------------------===//
#include "RoutingReference.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

using namespace ds::routing;

namespace {

const float kNegInf = -std::numeric_limits<float>::infinity();
/// Softmax weights: the block sums up to 160 exponentials as a tree, the
/// CPU in sequence; 1.6e-6 relative is the largest difference measured.
const float kSoftmaxRel = 4e-6f;

/// KernelEmitter::moeRoute for one token, in its order of operations.
void cpuRoute(const Config &c, const float *logits, const float *bias,
              int32_t *ids, float *weights) {
  const int64_t e = c.experts;
  std::vector<float> scores(static_cast<size_t>(e)),
      sel(static_cast<size_t>(e));
  auto argmax = [](const std::vector<float> &m) {
    float best = kNegInf;
    int64_t at = 0;
    for (size_t i = 0; i < m.size(); ++i)
      if (m[i] > best) {
        best = m[i];
        at = int64_t(i);
      }
    return at;
  };
  if (c.softmax) {
    float mx = kNegInf;
    for (int64_t i = 0; i < e; ++i)
      mx = maximumf(mx, logits[i]);
    float total = 0.0f;
    for (int64_t i = 0; i < e; ++i) {
      float ex = std::exp(logits[i] - mx);
      scores[size_t(i)] = ex;
      total += ex;
    }
    for (int64_t i = 0; i < e; ++i)
      scores[size_t(i)] = scores[size_t(i)] / total;
  } else {
    for (int64_t i = 0; i < e; ++i)
      scores[size_t(i)] = 1.0f / (1.0f + std::exp(-logits[i]));
  }
  for (int64_t i = 0; i < e; ++i)
    sel[size_t(i)] = bias ? scores[size_t(i)] + bias[i] : scores[size_t(i)];
  if (c.grouped) {
    int64_t per = e / c.groups;
    std::vector<float> groupScore(static_cast<size_t>(c.groups));
    std::vector<bool> kept(static_cast<size_t>(c.groups), false);
    for (int64_t g = 0; g < c.groups; ++g) {
      float b1 = kNegInf, b2 = kNegInf;
      for (int64_t j = 0; j < per; ++j) {
        float v = sel[size_t(g * per + j)];
        bool gt1 = v > b1, gt2 = v > b2;
        float n2 = gt1 ? b1 : (gt2 ? v : b2);
        b1 = gt1 ? v : b1;
        b2 = n2;
      }
      groupScore[size_t(g)] = c.top2 ? b1 + b2 : b1;
    }
    for (int64_t r = 0; r < c.topkGroups; ++r) {
      int64_t g = argmax(groupScore);
      kept[size_t(g)] = true;
      groupScore[size_t(g)] = kNegInf;
    }
    for (int64_t i = 0; i < e; ++i)
      if (!kept[size_t(i / per)])
        sel[size_t(i)] = kNegInf;
  }
  float total = 0.0f;
  for (int64_t j = 0; j < c.topK; ++j) {
    int64_t best = argmax(sel);
    sel[size_t(best)] = kNegInf;
    ids[j] = int32_t(best);
    weights[j] = scores[size_t(best)];
    total += weights[j];
  }
  float factor = c.scale;
  if (c.normalise)
    factor = factor / (total + 1e-20f);
  for (int64_t j = 0; j < c.topK; ++j)
    weights[j] = weights[j] * factor;
}

struct Shape {
  const char *name;
  Config cfg;
  bool bias;
};

/// The released routing shapes (SEMANTICS.md) and two the kernel must
/// also cover: more experts than threads (strided), and a tiny test model.
std::vector<Shape> shapes() {
  Config v3{256, 8, 8, 4, false, true, true, true, 2.5f};
  Config v2{160, 6, 8, 3, true, true, false, false, 16.0f};
  Config v2lite{64, 6, 1, 1, true, false, false, false, 1.0f};
  Config wide{320, 8, 10, 3, false, true, true, true, 2.5f};
  Config tiny{8, 2, 4, 2, false, true, true, true, 2.5f};
  Config greedyOne{16, 1, 1, 1, true, false, false, false, 3.0f};
  return {{"V3", v3, true},           {"V2", v2, false},
          {"V2-Lite", v2lite, false}, {"strided-320", wide, true},
          {"tiny-v3", tiny, true},    {"top-1", greedyOne, false}};
}

enum class Draw { Continuous, FewValues, WithNaN, AllTied };

std::vector<float> draw(std::mt19937 &rng, int64_t n, Draw kind) {
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::uniform_int_distribution<int> few(-3, 3), pos(0, int(n) - 1);
  std::vector<float> v(static_cast<size_t>(n));
  for (float &x : v) {
    switch (kind) {
    case Draw::Continuous:
      x = normal(rng);
      break;
    case Draw::FewValues: // exact ties within and across groups
    case Draw::WithNaN:
      x = float(few(rng)) * 0.5f;
      break;
    case Draw::AllTied:
      x = 0.25f;
      break;
    }
  }
  if (kind == Draw::WithNaN) {
    v[size_t(pos(rng))] = std::numeric_limits<float>::quiet_NaN();
    v[size_t(pos(rng))] = kNegInf;
  }
  return v;
}

bool same(float a, float b, float rel) {
  if (std::isnan(a) || std::isnan(b))
    return std::isnan(a) && std::isnan(b);
  return std::fabs(a - b) <= rel * std::max(std::fabs(a), std::fabs(b));
}

TEST(RoutingKernel, ThreadsPerToken) {
  EXPECT_EQ(threadsFor(8), 32);
  EXPECT_EQ(threadsFor(64), 64);
  EXPECT_EQ(threadsFor(160), 160);
  EXPECT_EQ(threadsFor(256), 256);
  EXPECT_EQ(threadsFor(320), 256);
}

TEST(RoutingKernel, MatchesCpuRouting) {
  std::mt19937 rng(17);
  for (const Shape &s : shapes()) {
    const Config &c = s.cfg;
    for (Draw kind :
         {Draw::Continuous, Draw::FewValues, Draw::WithNaN, Draw::AllTied}) {
      for (int token = 0; token < 200; ++token) {
        std::vector<float> logits = draw(rng, c.experts, kind);
        // Bias values on a coarse grid too, so that sel ties as well.
        std::vector<float> bias = draw(rng, c.experts, Draw::FewValues);
        for (float &b : bias)
          b *= 0.1f;
        const float *bp = s.bias ? bias.data() : nullptr;
        std::vector<int32_t> gotIds(size_t(c.topK)), wantIds(size_t(c.topK));
        std::vector<float> gotW(size_t(c.topK)), wantW(size_t(c.topK));
        blockRoute(c, logits.data(), bp, gotIds.data(), gotW.data());
        cpuRoute(c, logits.data(), bp, wantIds.data(), wantW.data());
        std::string where = std::string(s.name) + " draw " +
                            std::to_string(int(kind)) + " token " +
                            std::to_string(token);
        ASSERT_EQ(gotIds, wantIds) << where;
        for (int64_t j = 0; j < c.topK; ++j)
          ASSERT_TRUE(same(gotW[size_t(j)], wantW[size_t(j)],
                           c.softmax ? kSoftmaxRel : 0.0f))
              << where << " weight " << j << ": " << gotW[size_t(j)] << " vs "
              << wantW[size_t(j)];
      }
    }
  }
}

/// The lowest index wins every tie: with all logits equal, V3 keeps groups
/// 0-3 and takes experts 0-7 in order, each weighted 2.5 / 8.
TEST(RoutingKernel, TiesGoToTheLowestIndex) {
  Config v3{256, 8, 8, 4, false, true, true, true, 2.5f};
  std::vector<float> logits(256, 0.0f);
  std::vector<int32_t> ids(8);
  std::vector<float> w(8);
  blockRoute(v3, logits.data(), nullptr, ids.data(), w.data());
  EXPECT_EQ(ids, (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6, 7}));
  for (float x : w)
    EXPECT_FLOAT_EQ(x, 2.5f / 8.0f);
  // A tie across groups: experts 40 and 200 (groups 1 and 6) share the
  // best score; both groups are kept, 40 comes first.
  logits[40] = logits[200] = 3.0f;
  blockRoute(v3, logits.data(), nullptr, ids.data(), w.data());
  EXPECT_EQ(ids[0], 40);
  EXPECT_EQ(ids[1], 200);
}

/// The group stage matters: one excellent expert in an otherwise poor
/// group loses to a group whose top two are good (noaux_tc sums two).
TEST(RoutingKernel, GroupTopTwoDecides) {
  Config v3{256, 8, 8, 4, false, true, true, true, 2.5f};
  std::vector<float> logits(256, -4.0f);
  logits[5] = 6.0f; // group 0: one strong expert
  for (int g = 1; g < 5; ++g)
    logits[size_t(g * 32)] = logits[size_t(g * 32 + 1)] = 3.0f;
  std::vector<int32_t> ids(8), want(8);
  std::vector<float> w(8), ww(8);
  blockRoute(v3, logits.data(), nullptr, ids.data(), w.data());
  cpuRoute(v3, logits.data(), nullptr, want.data(), ww.data());
  EXPECT_EQ(ids, want);
  for (int32_t id : ids)
    EXPECT_NE(id, 5) << "group 0 (top-2 sum 6 + sigmoid(-4)) is not kept";
}

} // namespace
