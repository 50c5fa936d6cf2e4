// The vectorised activations of src/ops/fast/vmath.h against the correctly rounded result
// (computed in double) over a sweep of the whole float range, and against libm's loop (the
// baseline path) on the special values.
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "../src/ops/fast/vmath.h"
#include "testing.h"

namespace cnn::testing {
namespace {

using fast::Isa;

// Distance in units in the last place between two finite floats of the same sign class (the
// float line as ordered integers).
int64_t ulps(float a, float b) {
  auto key = [](float f) {
    const int32_t i = std::bit_cast<int32_t>(f);
    return i < 0 ? int64_t{INT32_MIN} - i : int64_t{i};
  };
  return std::llabs(key(a) - key(b));
}

// Every 251st float bit pattern (17 million values: every exponent, dense mantissas), NaNs left
// out (checked below).
std::vector<float> sweep() {
  std::vector<float> v;
  for (uint64_t bits = 0; bits <= 0xffffffffu; bits += 251) {
    const float f = std::bit_cast<float>(static_cast<uint32_t>(bits));
    if (!std::isnan(f)) v.push_back(f);
  }
  return v;
}

std::vector<Isa> vector_isas() {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::Avx2, Isa::Avx512}) {
    if (fast::isa_supported(isa)) isas.push_back(isa);
  }
  return isas;
}

double sigmoid_d(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Bound: 2 ulp from the correctly rounded result. PyTorch's own CPU kernels for these functions
// (SLEEF's 1-ulp-class routines, or 1 / (1 + exp(-x)) over them) are off by as much, so a model's
// outputs stay within the tolerances of the fixture tests (tests/test_golden_*.cpp), which were
// written against PyTorch. Checked wherever the result is a normal float and, for sigmoid and
// SiLU, where exp(-x) is finite in float: for x < -88.72 it overflows, here as in libm's loop and
// PyTorch's, and the formulas give 0 where the double-precision result is a tiny number.
TEST(Vmath, WithinTwoUlpOfTheCorrectlyRoundedResult) {
  const std::vector<float> x = sweep();
  std::vector<float> y(x.size());
  if (vector_isas().empty()) GTEST_SKIP() << "no AVX2 + FMA on this processor";
  for (Isa isa : vector_isas()) {
    struct Fn {
      const char* name;
      void (*span)(const float*, float*, int64_t, Isa);
      double (*exact)(double);
    };
    const Fn fns[] = {{"tanh", fast::tanh_span, [](double v) { return std::tanh(v); }},
                      {"sigmoid", fast::sigmoid_span, sigmoid_d},
                      {"silu", fast::silu_span, [](double v) { return v * sigmoid_d(v); }}};
    for (const Fn& f : fns) {
      f.span(x.data(), y.data(), static_cast<int64_t>(x.size()), isa);
      int64_t worst = 0;
      float worst_x = 0;
      for (std::size_t i = 0; i < x.size(); ++i) {
        const float want = static_cast<float>(f.exact(x[i]));
        const bool exp_overflows = std::string(f.name) != "tanh" && std::isinf(std::exp(-x[i]));
        if (exp_overflows || std::fabs(want) < std::numeric_limits<float>::min()) continue;
        if (std::isinf(want) || std::isinf(y[i])) {
          ASSERT_EQ(y[i], want) << f.name << "(" << x[i] << ")";
          continue;
        }
        const int64_t u = ulps(y[i], want);
        if (u > worst) worst = u, worst_x = x[i];
      }
      EXPECT_LE(worst, 2) << f.name << " isa " << static_cast<int>(isa) << ": " << worst
                          << " ulp at x = " << worst_x;
    }
  }
}

// Special values exactly as the baseline (libm) loop: +-0, +-inf, NaN, saturation.
TEST(Vmath, SpecialValuesAsLibm) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> x = {0.0f,    -0.0f,   inf,    -inf,   std::nanf(""),
                                1e-40f,  -1e-40f, 30.0f,  -30.0f, 100.0f,
                                -100.0f, 88.7f,   -88.7f, 89.5f,  -89.5f};
  const int64_t n = static_cast<int64_t>(x.size());
  for (Isa isa : vector_isas()) {
    for (auto span : {fast::tanh_span, fast::sigmoid_span, fast::silu_span}) {
      std::vector<float> got(x.size()), want(x.size());
      span(x.data(), got.data(), n, isa);
      span(x.data(), want.data(), n, Isa::Baseline);
      for (int64_t i = 0; i < n; ++i) {
        if (std::isnan(want[i])) {
          EXPECT_TRUE(std::isnan(got[i])) << "x = " << x[i];
        } else if (std::isinf(want[i])) {
          EXPECT_EQ(got[i], want[i]) << "x = " << x[i];
        } else if (std::fabs(want[i]) < std::numeric_limits<float>::min() ||
                   std::fabs(want[i]) == 1.0f || want[i] == 0.0f) {
          EXPECT_EQ(std::bit_cast<uint32_t>(got[i]) >> 31, std::bit_cast<uint32_t>(want[i]) >> 31)
              << "sign at x = " << x[i];
          EXPECT_NEAR(got[i], want[i], 1e-38f) << "x = " << x[i];
        } else {
          EXPECT_LE(ulps(got[i], want[i]), 4) << "x = " << x[i];
        }
      }
    }
  }
}

// The backward passes and GELU's tanh form: the same formulas over the vector exp and tanh, so
// within a few ulp of libm's loop wherever the result is not a difference of nearly equal terms;
// compared relative to the largest term's size.
TEST(Vmath, GradientsAndGeluAgreeWithLibm) {
  Generator gen(3);
  const Tensor xt = randn({1 << 16}, gen), gt = randn({1 << 16}, gen);
  std::vector<float> x(xt.begin(), xt.end()), g(gt.begin(), gt.end());
  for (float& v : x) v *= 6.0f;
  const int64_t n = static_cast<int64_t>(x.size());
  for (Isa isa : vector_isas()) {
    std::vector<float> got(x.size()), want(x.size());
    fast::gelu_tanh_span(x.data(), got.data(), n, isa);
    fast::gelu_tanh_span(x.data(), want.data(), n, Isa::Baseline);
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_NEAR(got[i], want[i], 4e-7f * (std::fabs(x[i]) + 1e-30f)) << "gelu x = " << x[i];
    }
    for (auto span : {fast::silu_backward_span, fast::gelu_tanh_backward_span}) {
      span(x.data(), g.data(), got.data(), n, isa);
      span(x.data(), g.data(), want.data(), n, Isa::Baseline);
      for (int64_t i = 0; i < n; ++i) {
        EXPECT_NEAR(got[i], want[i], 1e-6f * std::fabs(g[i]) * (2.0f + std::fabs(x[i])))
            << "backward x = " << x[i];
      }
    }
  }
}

// The AVX2 and AVX-512 paths do the same operations in the same order (Vec8 and Vec16 in
// vmath.cpp), so they give the same numbers, forward and backward, lane for lane; lengths that
// are not whole vectors exercise both tails.
TEST(Vmath, Avx2AndAvx512GiveTheSameNumbers) {
  if (!fast::isa_supported(Isa::Avx2) || !fast::isa_supported(Isa::Avx512))
    GTEST_SKIP() << "needs AVX2 and AVX-512";
  // Every 17th value of the sweep: a million values over the whole float range.
  const std::vector<float> all = sweep();
  std::vector<float> x;
  for (std::size_t i = 0; i < all.size(); i += 17) x.push_back(all[i]);
  x.resize(1'000'003);
  Generator gen(5);
  const Tensor gt = randn({static_cast<int64_t>(x.size())}, gen);
  const std::vector<float> g(gt.begin(), gt.end());
  for (const int64_t n : {int64_t{1}, int64_t{7}, int64_t{15}, int64_t{17}, int64_t{1'000'003}}) {
    for (auto span : {fast::tanh_span, fast::sigmoid_span, fast::silu_span, fast::gelu_tanh_span}) {
      std::vector<float> a(static_cast<std::size_t>(n)), b(a.size());
      span(x.data(), a.data(), n, Isa::Avx2);
      span(x.data(), b.data(), n, Isa::Avx512);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_EQ(std::bit_cast<uint32_t>(a[i]), std::bit_cast<uint32_t>(b[i]))
            << "x = " << x[i] << ", n = " << n;
      }
    }
    for (auto span : {fast::silu_backward_span, fast::gelu_tanh_backward_span}) {
      std::vector<float> a(static_cast<std::size_t>(n)), b(a.size());
      span(x.data(), g.data(), a.data(), n, Isa::Avx2);
      span(x.data(), g.data(), b.data(), n, Isa::Avx512);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_EQ(std::bit_cast<uint32_t>(a[i]), std::bit_cast<uint32_t>(b[i]))
            << "backward x = " << x[i] << ", n = " << n;
      }
    }
  }
}

}  // namespace
}  // namespace cnn::testing
