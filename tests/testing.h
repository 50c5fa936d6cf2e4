// Shared test helpers: fixture loading, the tolerance table, tensor comparison and the
// finite-difference gradient check.
#pragma once

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "cnn/cnn.h"

namespace cnn::testing {

// The tolerance table: |got - want| <= atol + rtol * |want|, element by element.
struct Tol {
  double rtol, atol;
};
// Golden fixtures: float32 kernels against PyTorch's float32 kernels; the sums differ only in
// order. atol covers elements that are sums cancelling to near zero.
inline constexpr Tol kGolden{1e-4, 1e-5};
// Whole-model gradients: sums over 64 images and hundreds of taps per element, so cancellation
// leaves absolute errors a little above the single-op ones.
inline constexpr Tol kModel{1e-4, 2e-5};
// Finite differences in float32: rounding in the perturbed outputs bounds their accuracy.
inline constexpr Tol kGradCheck{1e-2, 2e-3};
// Fast kernels against the reference loops: the same float32 sums in another order.
inline constexpr Tol kFastVsReference{1e-4, 1e-5};
// One image shared by the threads (a fused block's output channels split between them), through
// a whole model: the SGEMM on a share of the rows may sum in another order than on the whole
// product (OpenBLAS picks its kernel by processor, OPENBLAS_CORETYPE and the rows' count), and
// the layers after the convolutions carry the difference on: the same float32 sums in another
// order, as kFastVsReference. A single convolution is held to the tighter sum_order_bound below.
inline constexpr Tol kSharedImage = kFastVsReference;
// Weights after several Adam steps: Adam normalises each update to about lr whatever the
// gradient's size, so where a weight's gradient is rounding noise (near zero), the noise's sign
// decides its steps, and which weights those are depends on the order of the gradient's sums
// (threads, kernels). All but this fraction of a tensor are held to their tolerance; the rest to
// the reach of the steps, each at most lr (1 - beta1) / sqrt(1 - beta2) (Kingma & Ba, 2.1).
inline constexpr double kAdamNoiseDecided = 0.01;
inline double adam_reach(int steps, double lr, double beta1 = 0.9, double beta2 = 0.999) {
  return 2.0 * steps * lr * std::max(1.0, (1.0 - beta1) / std::sqrt(1.0 - beta2));
}

inline std::string fixture(const std::string& name) {
  return std::string(CNN_FIXTURE_DIR) + "/" + name + ".cnnt";
}

inline std::string case_name(int i) { return std::to_string(i) + "/"; }

// Non-fatal comparison with a message naming the worst element.
inline ::testing::AssertionResult all_close(const Tensor& got, const Tensor& want, Tol tol) {
  if (got.shape() != want.shape()) {
    return ::testing::AssertionFailure()
           << "shape " << shape_str(got.shape()) << " != expected " << shape_str(want.shape());
  }
  int64_t bad = 0, worst = -1;
  double worst_excess = 0.0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double g = got[i], w = want[i];
    const double allowed = tol.atol + tol.rtol * std::fabs(w);
    const double err = std::fabs(g - w);
    if (!(err <= allowed) && !(std::isinf(g) && g == w)) {
      ++bad;
      if (worst < 0 || err - allowed > worst_excess || std::isnan(err)) {
        worst_excess = err - allowed;
        worst = i;
      }
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << bad << " of " << got.numel() << " elements differ; worst at flat index " << worst
         << ": got " << got[worst] << ", expected " << want[worst] << " (rtol " << tol.rtol
         << ", atol " << tol.atol << ")";
}

// Two float32 sums of the same `terms` products in different orders: each lies within
// gamma_terms * sum|products| of the exact sum (Higham, Accuracy and Stability of Numerical
// Algorithms, 2nd ed., 3.1; gamma_n = n u / (1 - n u), u = 2^-24), so the two differ by at most
// twice that. `magnitude` holds each element's sum|products| (the same computation on the
// inputs' absolute values). The bound holds whatever order a kernel chooses, and a missing,
// repeated or wrong product (of size ~ magnitude / terms) is still far outside it.
inline ::testing::AssertionResult within_sum_order_bound(const Tensor& got, const Tensor& want,
                                                         const Tensor& magnitude, int64_t terms) {
  if (got.shape() != want.shape() || magnitude.shape() != want.shape()) {
    return ::testing::AssertionFailure()
           << "shapes " << shape_str(got.shape()) << ", " << shape_str(want.shape()) << ", "
           << shape_str(magnitude.shape()) << " differ";
  }
  const double u = std::ldexp(1.0, -24), gamma = terms * u / (1.0 - terms * u);
  int64_t bad = 0, worst = -1;
  double worst_ratio = 0.0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double allowed = 2.0 * gamma * magnitude[i], err = std::fabs(double(got[i]) - want[i]);
    if (!(err <= allowed)) {
      ++bad;
      const double ratio = err / allowed;
      if (worst < 0 || !(ratio <= worst_ratio)) {
        worst_ratio = ratio;
        worst = i;
      }
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << bad << " of " << got.numel() << " elements differ by more than two float32 sums of "
         << terms << " products in any order can; worst at flat index " << worst << ": got "
         << got[worst] << ", expected " << want[worst] << ", sum|products| " << magnitude[worst];
}

// All but a few elements within tol, the few within `bound`: for results where rounding noise can
// legitimately decide a handful of elements by a larger amount (see kAdamNoiseDecided).
inline ::testing::AssertionResult all_close_but_few(const Tensor& got, const Tensor& want, Tol tol,
                                                    double max_fraction, double bound) {
  const ::testing::AssertionResult strict = all_close(got, want, tol);
  if (strict) return strict;
  if (got.shape() != want.shape()) return strict;
  int64_t outside = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    const double err = std::fabs(double(got[i]) - want[i]);
    if (!(err <= tol.atol + tol.rtol * std::fabs(want[i]))) ++outside;
    if (!(err <= bound)) {
      return ::testing::AssertionFailure() << "element " << i << ": got " << got[i] << ", expected "
                                           << want[i] << ", beyond the bound " << bound;
    }
  }
  if (outside <= max_fraction * got.numel()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "more than " << max_fraction * 100 << " % (" << strict.message() << ")";
}

inline Tensor abs(const Tensor& t) {
  Tensor out = t.clone();
  for (float& v : out) v = std::fabs(v);
  return out;
}

inline Tensor randn(const Shape& shape, Generator& gen) {
  Tensor t(shape);
  // Box-Muller: enough for test data.
  for (float& v : t) {
    const double u1 = std::max(1e-12, double(gen.uniform())), u2 = gen.uniform();
    v = static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2));
  }
  return t;
}

inline std::vector<int64_t> to_indices(const Tensor& t) {
  std::vector<int64_t> out;
  for (float v : t) out.push_back(static_cast<int64_t>(v));
  return out;
}

// Checks an analytic gradient against central differences of L = sum(dy * f()), where f reads
// `input` (which this function perturbs in place and restores). Checks at most max_checks
// elements, spread over the tensor.
inline ::testing::AssertionResult gradcheck(const std::function<Tensor()>& f, Tensor& input,
                                            const Tensor& analytic, const Tensor& dy, double eps,
                                            Tol tol = kGradCheck, int64_t max_checks = 120) {
  if (analytic.shape() != input.shape()) {
    return ::testing::AssertionFailure() << "gradient shape " << shape_str(analytic.shape())
                                         << " != input shape " << shape_str(input.shape());
  }
  auto loss = [&] {
    const Tensor y = f();
    double sum = 0.0;
    for (int64_t i = 0; i < y.numel(); ++i) sum += double(y[i]) * dy[i];
    return sum;
  };
  const int64_t n = input.numel();
  const int64_t stride = std::max<int64_t>(1, n / max_checks);
  for (int64_t i = 0; i < n; i += stride) {
    const float orig = input[i];
    input[i] = static_cast<float>(orig + eps);
    const double up = loss();
    input[i] = static_cast<float>(orig - eps);
    const double down = loss();
    input[i] = orig;
    const double numeric = (up - down) / (2.0 * eps);
    const double err = std::fabs(numeric - analytic[i]);
    if (!(err <= tol.atol + tol.rtol * std::fabs(numeric))) {
      return ::testing::AssertionFailure()
             << "element " << i << ": analytic " << analytic[i] << ", numeric " << numeric;
    }
  }
  return ::testing::AssertionSuccess();
}

// A fresh directory for the running test, TempDir/<prefix>_<test's name>_<pid>: whatever a
// crashed run left there is removed first.
inline std::filesystem::path fresh_test_dir(const std::string& prefix) {
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) /
      (prefix + "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name() + "_" +
       std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// Checks that text (an error message, a command's output) contains every fragment.
inline void expect_contains(const std::string& text, const std::vector<std::string>& fragments) {
  for (const auto& f : fragments)
    EXPECT_NE(text.find(f), std::string::npos) << text << "\n  lacks: " << f;
}

// Runs f, expects a cnn::Error, and checks that its message contains every fragment.
template <class F>
void expect_error(F&& f, const std::vector<std::string>& fragments) {
  try {
    f();
    ADD_FAILURE() << "expected a cnn::Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& frag : fragments) {
      EXPECT_NE(msg.find(frag), std::string::npos) << "'" << frag << "' missing from: " << msg;
    }
  }
}

// For EXPECT_EXIT: in the child, limits the address space to what it holds now plus
// `extra_bytes`, where an allocation of a big declared size would fail, then runs f; exits 0
// printing the message when f throws cnn::Error (a clean refusal within the cap), 1 otherwise.
// _exit(), not exit(): no static destructors (OpenBLAS's would wait for its threads).
template <class F>
[[noreturn]] void exit_after_capped(F&& f, long extra_bytes = 32L << 20) {
  rlimit lim{};
  getrlimit(RLIMIT_AS, &lim);
  long pages = 0;
  std::ifstream("/proc/self/statm") >> pages;
  lim.rlim_cur = static_cast<rlim_t>(pages * sysconf(_SC_PAGESIZE) + extra_bytes);
  setrlimit(RLIMIT_AS, &lim);
  try {
    f();
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    _exit(0);
  } catch (...) {
    std::fprintf(stderr, "not a cnn::Error\n");
  }
  _exit(1);
}

}  // namespace cnn::testing
