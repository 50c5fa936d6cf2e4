// Three ways to compute the tutorial's conv2 for one image, x (16, 14, 14) -> y (32, 12, 12),
// each producing the NCHW output the next layer reads:
//   - im2col + OpenBLAS SGEMM: the library's fast kernel without Winograd (cnn::conv2d_forward);
//   - a direct, register-blocked AVX-512 convolution (6 pixels x 32 channels of accumulators,
//     weights rearranged to (ic, kh, kw, oc), the (pixel, channel) result transposed);
//   - Winograd F(2x2, 3x3) in AVX-512, the library's kernel (2.25x fewer
//     multiplications: weight, input and output transforms around 16 products of 36 tiles x 16
//     x 32), with and without the weights' transform.
// The measurement behind docs/KERNELS.md's choices. Each variant is checked
// against the library's result before timing. Run: build/cnn_conv_algorithms (1 thread).
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <cmath>
#include <cstdio>
#include <vector>

#include "../src/ops/fast/winograd.h"
#include "cnn/cnn.h"

namespace {

constexpr int kCin = 16, kCout = 32, kH = 14, kW = 14, kHo = 12, kWo = 12, kP = kHo * kWo;
constexpr int kTiles = 36, kTilesW = 6;  // Winograd: 6 x 6 tiles of 2 x 2 outputs

struct Problem {
  cnn::Tensor x, w, b;
  Problem() : x({1, kCin, kH, kW}), w({kCout, kCin, 3, 3}), b({kCout}) {
    cnn::Generator gen(7);
    cnn::uniform_(x, -1.0f, 1.0f, gen);
    cnn::uniform_(w, -0.1f, 0.1f, gen);
    cnn::uniform_(b, -0.1f, 0.1f, gen);
  }
};

const Problem& problem() {
  static const Problem p;
  return p;
}

// The library's im2col + SGEMM path: asking for the im2col matrices (columns) keeps
// conv2d_forward off its Winograd path.
cnn::Tensor library_conv(const Problem& p) {
  static const cnn::Conv2dGeometry g = cnn::conv2d_geometry(3, 1, 0, 1, 1);
  thread_local cnn::Tensor columns;
  return cnn::conv2d_forward(p.x, p.w, p.b, g, &columns);
}

// ---- direct, register-blocked ----

struct Direct {
  std::vector<float> wt = std::vector<float>(kCin * 9 * kCout),
                     out = std::vector<float>(kP * kCout);

  __attribute__((target("avx512f"))) void run(const float* x, const float* w, const float* b,
                                              float* y) {
    for (int oc = 0; oc < kCout; ++oc) {  // w (oc, ic, kh, kw) -> wt (ic, kh, kw, oc)
      for (int k = 0; k < kCin * 9; ++k) wt[k * kCout + oc] = w[oc * kCin * 9 + k];
    }
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
    for (int oh = 0; oh < kHo; ++oh) {
      for (int ow0 = 0; ow0 < kWo; ow0 += 6) {
        __m512 acc[6][2];
        for (auto& a : acc) a[0] = b0, a[1] = b1;
        for (int ic = 0; ic < kCin; ++ic) {
          for (int kh = 0; kh < 3; ++kh) {
            const float* row = x + (ic * kH + oh + kh) * kW + ow0;
            for (int kw = 0; kw < 3; ++kw) {
              const float* wp = wt.data() + ((ic * 3 + kh) * 3 + kw) * kCout;
              const __m512 w0 = _mm512_loadu_ps(wp), w1 = _mm512_loadu_ps(wp + 16);
#pragma GCC unroll 6
              for (int k = 0; k < 6; ++k) {
                const __m512 v = _mm512_set1_ps(row[kw + k]);
                acc[k][0] = _mm512_fmadd_ps(v, w0, acc[k][0]);
                acc[k][1] = _mm512_fmadd_ps(v, w1, acc[k][1]);
              }
            }
          }
        }
        for (int k = 0; k < 6; ++k) {
          float* o = out.data() + (oh * kWo + ow0 + k) * kCout;
          _mm512_storeu_ps(o, acc[k][0]);
          _mm512_storeu_ps(o + 16, acc[k][1]);
        }
      }
    }
    for (int p = 0; p < kP; ++p) {  // (pixel, oc) -> (oc, pixel)
      for (int oc = 0; oc < kCout; ++oc) y[oc * kP + p] = out[p * kCout + oc];
    }
  }
};

// ---- Winograd F(2x2, 3x3): the library's kernel (src/ops/fast/winograd.h), called on one image,
// with the weights' transform paid on each call and without it (the library caches the
// transformed weights, so that repeated calls with the same weights pay it once) ----

struct Winograd {
  std::vector<float> U;
  void run(const float* x, const float*, const float* b, float* y) {
    const cnn::Tensor& w = problem().w;
    static const cnn::Conv2dGeometry g = cnn::conv2d_geometry(3, 1, 0, 1, 1);
    cnn::fast::winograd_weights(w, 0, kCout, U);
    cnn::fast::winograd_image(x, {1, kCin, kH, kW}, g, {1, kCout, kHo, kWo}, U, b, 0, kCout, y);
  }
};

// The products and transforms of one image alone, the weights transformed beforehand.
struct WinogradImageOnly {
  std::vector<float> U;
  WinogradImageOnly() { cnn::fast::winograd_weights(problem().w, 0, kCout, U); }
  void run(const float* x, const float*, const float* b, float* y) {
    static const cnn::Conv2dGeometry g = cnn::conv2d_geometry(3, 1, 0, 1, 1);
    cnn::fast::winograd_image(x, {1, kCin, kH, kW}, g, {1, kCout, kHo, kWo}, U, b, 0, kCout, y);
  }
};

bool has_avx512() { return __builtin_cpu_supports("avx512f"); }

template <class Variant>
void BM_Conv2(benchmark::State& state) {
  if (!has_avx512()) {
    state.SkipWithError("needs AVX-512");
    return;
  }
  const Problem& p = problem();
  Variant v;
  cnn::Tensor y({kCout, kP});
  for (auto _ : state) {
    v.run(p.x.data(), p.w.data(), p.b.data(), y.data());
    benchmark::ClobberMemory();
  }
}

void BM_Conv2_Im2colSgemm(benchmark::State& state) {
  const Problem& p = problem();
  for (auto _ : state) benchmark::DoNotOptimize(library_conv(p));
}

BENCHMARK(BM_Conv2_Im2colSgemm);
BENCHMARK_TEMPLATE(BM_Conv2, Direct)->Name("BM_Conv2_DirectRegisterBlocked");
BENCHMARK_TEMPLATE(BM_Conv2, Winograd)->Name("BM_Conv2_WinogradF2x3");
BENCHMARK_TEMPLATE(BM_Conv2, WinogradImageOnly)
    ->Name("BM_Conv2_WinogradF2x3_WeightsTransformedBefore");

// Each variant must give the library's numbers (to float rounding) before it is timed.
template <class Variant>
bool agrees(const char* name) {
  const Problem& p = problem();
  const cnn::Tensor want = library_conv(p);
  cnn::Tensor got({kCout, kP});
  Variant v;
  v.run(p.x.data(), p.w.data(), p.b.data(), got.data());
  double worst = 0;
  for (int64_t i = 0; i < want.numel(); ++i)
    worst = std::max(worst, double(std::fabs(got[i] - want[i])));
  std::printf("%s: largest difference from cnn::conv2d_forward %.2g\n", name, worst);
  return worst < 1e-4;
}

}  // namespace

int main(int argc, char** argv) {
  cnn::set_num_threads(1);
  if (has_avx512() && !(agrees<Direct>("direct") && agrees<Winograd>("winograd") &&
                        agrees<WinogradImageOnly>("winograd, weights transformed before"))) {
    return 1;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
