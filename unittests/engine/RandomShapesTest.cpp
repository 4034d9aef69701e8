//===- RandomShapesTest.cpp - products of drawn shapes on every ISA -------===//
//
// The other kernel tests pick their shapes around known thresholds. These
// draw them: row counts, weight parts, row ranges, K, strides and expert
// groups (gathered or not) from a seeded generator, every format on every
// ISA against a float64 product of the same values. A shape that no one
// thought of (a tail of one path meeting a threshold of another) fails
// here with its seed and shape in the message.
//
//===----------------------------------------------------------------------===//
#include "TestWeight.h"
#include "cpu/HeadMatmul.h"
#include "cpu/Isa.h"
#include "cpu/MatMul.h"
#include "weights/DType.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using namespace dsrt;
using namespace dsrt::cpu;
using namespace dsrt::cpu::testing;

namespace {

bool roundsX(Isa isa, WeightFormat f) {
  return (isa >= Isa::Avx512Bf16 && f == WeightFormat::BF16) ||
         (isa >= Isa::Avx512Vbmi && f == WeightFormat::FP8);
}

/// Cases per format; DS_RANDOM_SHAPES raises it for a longer search.
int casesPerFormat() {
  const char *env = std::getenv("DS_RANDOM_SHAPES");
  return env && std::atoi(env) > 0 ? std::atoi(env) : 12;
}

int64_t draw(std::mt19937 &rng, int64_t lo, int64_t hi) {
  return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
}

/// K: small, around the vector widths and the 128-wide scale blocks, or
/// anywhere up to a few blocks.
int64_t drawK(std::mt19937 &rng) {
  switch (draw(rng, 0, 3)) {
  case 0:
    return draw(rng, 1, 40);
  case 1:
    return 128 * draw(rng, 1, 4) + draw(rng, -2, 2);
  case 2:
    return 64 * draw(rng, 1, 12) + draw(rng, -1, 1);
  default:
    return draw(rng, 1, 1100);
  }
}

/// Rows of x: decode's few, the dot-product and tile thresholds, prefill's.
int64_t drawRows(std::mt19937 &rng) {
  switch (draw(rng, 0, 2)) {
  case 0:
    return draw(rng, 0, 17);
  case 1:
    return 32 * draw(rng, 1, 3) + draw(rng, -9, 9);
  default:
    return draw(rng, 1, 120);
  }
}

double f64Product(const TestWeight &w, const float *x, bool rounded,
                  int64_t row, double &mag) {
  double want = 0;
  mag = 0;
  for (int64_t c = 0; c < w.cols; ++c) {
    double term = double(rounded ? roundBf16(x[c]) : x[c]) *
                  w.values[size_t(row * w.cols + c)];
    want += term;
    mag += std::abs(term);
  }
  return want;
}

} // namespace

// matmul over a drawn row range of a weight in drawn parts, x and y at
// drawn strides; every y element past the range must be left alone.
TEST(RandomShapes, MatMulMatchesTheF64Product) {
  const int cases = casesPerFormat();
  for (WeightFormat f :
       {WeightFormat::F32, WeightFormat::BF16, WeightFormat::FP8})
    for (int c = 0; c < cases; ++c) {
      unsigned seed = 1000u * unsigned(f) + unsigned(c);
      std::mt19937 rng(seed);
      int64_t k = drawK(rng), parts = draw(rng, 1, 3),
              partRows = draw(rng, 1, 300), rows = drawRows(rng);
      TestWeight w(f, parts, partRows, k, draw(rng, 0, 5), rng);
      int64_t r0 = draw(rng, 0, w.rows - 1);
      int64_t n = draw(rng, 1, w.rows - r0);
      int64_t ldx = k + draw(rng, 0, 9), ldy = n + draw(rng, 1, 9);
      std::ostringstream shape;
      shape << "seed " << seed << " " << formatName(f) << ": rows " << rows
            << " k " << k << " parts " << parts << " x " << partRows << " r0 "
            << r0 << " n " << n;
      std::vector<float> x =
          normalValues(rng, size_t(std::max<int64_t>(rows, 1) * ldx));
      for (const KernelSet *set : testedSets()) {
        Isa isa = set->isa;
        std::vector<float> y(size_t(std::max<int64_t>(rows, 1) * ldy), -7.0f);
        matmul(*set, x.data(), ldx, rows, w.matrix, r0, n, y.data(), ldy);
        for (int64_t t = 0; t < rows; ++t) {
          for (int64_t j = 0; j < n; ++j) {
            double mag;
            double want =
                f64Product(w, x.data() + t * ldx, roundsX(isa, f), r0 + j, mag);
            ASSERT_NEAR(y[size_t(t * ldy + j)], want, 1e-6 * (1 + mag))
                << shape.str() << " " << setName(*set) << " at " << t << ","
                << j;
          }
          for (int64_t j = n; j < ldy; ++j)
            ASSERT_EQ(y[size_t(t * ldy + j)], -7.0f)
                << shape.str() << " " << setName(*set) << " wrote padding";
        }
      }
    }
}

// Experts' grouped products: drawn group sizes (empty ones too), each
// group on a drawn expert, rows gathered through a drawn index or not,
// plain or with the SiLU-mul epilogue; rows of no group left alone.
TEST(RandomShapes, GroupedProductsMatchTheF64Product) {
  const int cases = casesPerFormat();
  for (WeightFormat f :
       {WeightFormat::F32, WeightFormat::BF16, WeightFormat::FP8})
    for (int c = 0; c < cases; ++c) {
      unsigned seed = 5000u + 1000u * unsigned(f) + unsigned(c);
      std::mt19937 rng(seed);
      int64_t k = drawK(rng), experts = draw(rng, 1, 6), n = draw(rng, 1, 70);
      TestWeight gate(f, experts, n, k, draw(rng, 0, 3), rng),
          up(f, experts, n, k, draw(rng, 0, 3), rng);
      std::vector<MatmulGroup> groups;
      int64_t rows = 0;
      for (int64_t g = draw(rng, 1, 6); g > 0; --g) {
        int64_t size = draw(rng, 0, 3) ? draw(rng, 0, 80) : draw(rng, 0, 3);
        groups.push_back({rows, rows + size, n * draw(rng, 0, experts - 1)});
        rows += size;
      }
      int64_t spare = draw(rng, 0, 2); // rows of no group
      rows += spare;
      bool gather = draw(rng, 0, 1), silu = draw(rng, 0, 1);
      int64_t sourceRows = rows + draw(rng, 0, 10), ldx = k + draw(rng, 0, 5);
      std::vector<int32_t> index(static_cast<size_t>(rows));
      for (int32_t &i : index)
        i = int32_t(draw(rng, 0, sourceRows - 1));
      std::vector<float> x =
          normalValues(rng, size_t(std::max<int64_t>(sourceRows, 1) * ldx));
      std::ostringstream shape;
      shape << "seed " << seed << " " << formatName(f) << ": k " << k << " n "
            << n << " experts " << experts << (gather ? " gathered" : "")
            << (silu ? " silu" : "") << " groups";
      for (const MatmulGroup &g : groups)
        shape << " " << g.end - g.begin << "@" << g.r0 / n;
      for (const KernelSet *set : testedSets()) {
        const KernelSet &ks = *set;
        Isa isa = ks.isa;
        std::vector<float> y(size_t(std::max<int64_t>(rows, 1) * n), -7.0f);
        const int32_t *idx = gather ? index.data() : nullptr;
        if (silu)
          matmulGroupsSiluMul(ks, x.data(), ldx, rows, gate.matrix, up.matrix,
                              n, groups, y.data(), n, idx);
        else
          matmulGroups(ks, x.data(), ldx, rows, gate.matrix, n, groups,
                       y.data(), n, idx);
        bool rx = roundsX(isa, f);
        for (const MatmulGroup &g : groups)
          for (int64_t t = g.begin; t < g.end; ++t) {
            const float *xt = x.data() + (gather ? index[size_t(t)] : t) * ldx;
            for (int64_t j = 0; j < n; ++j) {
              double gm, um = 0;
              double gv = f64Product(gate, xt, rx, g.r0 + j, gm), want = gv,
                     tol = 1e-6 * (1 + gm);
              if (silu) {
                double uv = f64Product(up, xt, rx, g.r0 + j, um);
                double s = 1 / (1 + std::exp(-gv));
                want = gv * s * uv;
                // The error of g and u, carried through silu(g) * u, and
                // the vector exp's own (within 1e-6 of libm's).
                tol = 1e-6 * ((1 + gm) * std::abs(uv) * (1 + std::abs(gv)) +
                              (1 + um) * std::abs(gv * s) + std::abs(want));
              }
              ASSERT_NEAR(y[size_t(t * n + j)], want, tol)
                  << shape.str() << " " << setName(*set) << " row " << t
                  << " col " << j;
            }
          }
        for (int64_t t = rows - spare; t < rows; ++t)
          for (int64_t j = 0; j < n; ++j)
            ASSERT_EQ(y[size_t(t * n + j)], -7.0f)
                << shape.str() << " " << setName(*set) << " wrote row " << t;
      }
    }
}

// The absorbed MLA's per-head products (q_h W_UK_h, and u_h W_UV_h^T
// transposed) over drawn head counts and widths, decode's rows and the
// GEMM's, the weight in drawn parts; products in f32 arithmetic whatever
// the format (x never rounded), nothing written past each head's columns.
TEST(RandomShapes, HeadProductsMatchTheF64Product) {
  const int cases = casesPerFormat();
  for (WeightFormat f :
       {WeightFormat::F32, WeightFormat::BF16, WeightFormat::FP8})
    for (int c = 0; c < cases; ++c) {
      unsigned seed = 9000u + 1000u * unsigned(f) + unsigned(c);
      std::mt19937 rng(seed);
      int64_t heads = draw(rng, 1, 5), dn = draw(rng, 1, 140),
              dv = draw(rng, 1, 140), group = dn + dv, dc = drawK(rng);
      int64_t tokens = draw(rng, 0, 1) ? draw(rng, 1, 6) : draw(rng, 0, 40);
      bool transpose = draw(rng, 0, 1);
      int64_t parts = heads * group % 2 ? 1 : draw(rng, 1, 2);
      TestWeight w(f, parts, heads * group / parts, dc, draw(rng, 0, 4), rng);
      int64_t k = transpose ? dc : dn, n = transpose ? dv : dc,
              offset = transpose ? dn : 0;
      int64_t ldx = heads * k + draw(rng, 0, 5),
              ldo = heads * n + draw(rng, 1, 5);
      std::vector<float> x =
          normalValues(rng, size_t(std::max<int64_t>(tokens, 1) * ldx));
      std::ostringstream shape;
      shape << "seed " << seed << " " << formatName(f) << ": tokens " << tokens
            << " heads " << heads << " dn " << dn << " dv " << dv << " dc "
            << dc << " parts " << parts << (transpose ? " transposed" : "");
      for (Isa isa : supportedIsas()) {
        std::vector<float> out(size_t(std::max<int64_t>(tokens, 1) * ldo),
                               -7.0f);
        ASSERT_EQ(headMatmul(kernelsFor(isa),
                             headsView(x.data(), tokens, heads, k, ldx),
                             w.matrix,
                             headsView(out.data(), tokens, heads, n, ldo),
                             group, offset, transpose),
                  "")
            << shape.str();
        for (int64_t t = 0; t < tokens; ++t) {
          for (int64_t h = 0; h < heads; ++h)
            for (int64_t j = 0; j < n; ++j) {
              double want = 0, mag = 0;
              for (int64_t i = 0; i < k; ++i) {
                int64_t row = h * group + offset + (transpose ? j : i);
                double term = double(x[size_t(t * ldx + h * k + i)]) *
                              w.values[size_t(row * dc + (transpose ? i : j))];
                want += term;
                mag += std::abs(term);
              }
              ASSERT_NEAR(out[size_t(t * ldo + h * n + j)], want,
                          1e-6 * (1 + mag))
                  << shape.str() << " " << isaName(isa) << " at " << t << ","
                  << h << "," << j;
            }
          for (int64_t j = heads * n; j < ldo; ++j)
            ASSERT_EQ(out[size_t(t * ldo + j)], -7.0f)
                << shape.str() << " " << isaName(isa) << " wrote padding";
        }
      }
    }
}
