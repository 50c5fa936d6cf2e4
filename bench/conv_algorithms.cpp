// Three ways to compute the tutorial's conv2 for one image, x (16, 14, 14) -> y (32, 12, 12),
// each producing the NCHW output the next layer reads:
//   - im2col + OpenBLAS SGEMM: the library's fast kernel (cnn::conv2d_forward);
//   - a direct, register-blocked AVX-512 convolution (6 pixels x 32 channels of accumulators,
//     weights rearranged to (ic, kh, kw, oc), the (pixel, channel) result transposed);
//   - Winograd F(2x2, 3x3) in AVX-512 (2.25x fewer multiplications: weight, input and output
//     transforms around 16 products of 36 tiles x 16 x 32).
// The measurement behind docs/BENCHMARKS.md's choice of im2col + SGEMM. Each variant is checked
// against the library's result before timing. Run: build/cnn_conv_algorithms (1 thread).
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdio>
#include <immintrin.h>
#include <vector>

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

cnn::Tensor library_conv(const Problem& p) {
  static const cnn::Conv2dGeometry g = cnn::conv2d_geometry(3, 1, 0, 1, 1);
  return cnn::conv2d_forward(p.x, p.w, p.b, g);
}

// ---- direct, register-blocked ----

struct Direct {
  std::vector<float> wt = std::vector<float>(kCin * 9 * kCout), out = std::vector<float>(kP * kCout);

  __attribute__((target("avx512f"))) void run(const float* x, const float* w, const float* b, float* y) {
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

// ---- Winograd F(2x2, 3x3): Y = A^T [ (G g G^T) . (B^T d B) ] A ----

struct Winograd {
  // U[xi][ic][oc], V[xi][ic][tile], M[xi][tile][oc]; xi = 4 r + c indexes the 4 x 4 transform.
  std::vector<float> U = std::vector<float>(16 * kCin * kCout), V = std::vector<float>(16 * kCin * kTiles + 16),
                     M = std::vector<float>(16 * kTiles * kCout);

  __attribute__((target("avx512f"))) void run(const float* x, const float* w, const float* b, float* y) {
    // Weights: per input channel and half of the output channels, the 9 taps gathered over 16
    // output channels, then G g G^T on vectors.
    const __m512i stride = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                              _mm512_set1_epi32(kCin * 9));
    const __m512 half = _mm512_set1_ps(0.5f);
    for (int ic = 0; ic < kCin; ++ic) {
      for (int h = 0; h < 2; ++h) {
        __m512 g[9];
        for (int k = 0; k < 9; ++k) g[k] = _mm512_i32gather_ps(stride, w + (h * 16 * kCin + ic) * 9 + k, 4);
        __m512 t[4][3];  // G g, G = [[1,0,0],[.5,.5,.5],[.5,-.5,.5],[0,0,1]]
        for (int c = 0; c < 3; ++c) {
          t[0][c] = g[c];
          t[1][c] = _mm512_mul_ps(half, _mm512_add_ps(_mm512_add_ps(g[c], g[3 + c]), g[6 + c]));
          t[2][c] = _mm512_mul_ps(half, _mm512_add_ps(_mm512_sub_ps(g[c], g[3 + c]), g[6 + c]));
          t[3][c] = g[6 + c];
        }
        for (int r = 0; r < 4; ++r) {  // (G g) G^T
          const __m512 u[4] = {t[r][0], _mm512_mul_ps(half, _mm512_add_ps(_mm512_add_ps(t[r][0], t[r][1]), t[r][2])),
                               _mm512_mul_ps(half, _mm512_add_ps(_mm512_sub_ps(t[r][0], t[r][1]), t[r][2])), t[r][2]};
          for (int c = 0; c < 4; ++c) _mm512_storeu_ps(U.data() + ((r * 4 + c) * kCin + ic) * kCout + h * 16, u[c]);
        }
      }
    }
    // Input tiles, B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]], a row of 6 tiles at a time.
    const __mmask16 row_mask = (1u << kW) - 1, tile_mask = (1u << kTilesW) - 1;
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i next = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 7, 0, 0, 0, 0, 0, 0, 0, 0);
    for (int ic = 0; ic < kCin; ++ic) {
      for (int ty = 0; ty < kTilesW; ++ty) {
        const float* r = x + (ic * kH + 2 * ty) * kW;
        const __m512 r0 = _mm512_maskz_loadu_ps(row_mask, r), r1 = _mm512_maskz_loadu_ps(row_mask, r + kW);
        const __m512 r2 = _mm512_maskz_loadu_ps(row_mask, r + 2 * kW), r3 = _mm512_maskz_loadu_ps(row_mask, r + 3 * kW);
        const __m512 t[4] = {_mm512_sub_ps(r0, r2), _mm512_add_ps(r1, r2), _mm512_sub_ps(r2, r1), _mm512_sub_ps(r1, r3)};
        for (int i = 0; i < 4; ++i) {
          const __m512 e = _mm512_permutexvar_ps(even, t[i]), o = _mm512_permutexvar_ps(odd, t[i]);
          const __m512 e1 = _mm512_permutexvar_ps(next, e), o1 = _mm512_permutexvar_ps(next, o);
          const __m512 v[4] = {_mm512_sub_ps(e, e1), _mm512_add_ps(o, e1), _mm512_sub_ps(e1, o), _mm512_sub_ps(o, o1)};
          for (int j = 0; j < 4; ++j) {
            _mm512_mask_storeu_ps(V.data() + ((i * 4 + j) * kCin + ic) * kTiles + ty * kTilesW, tile_mask, v[j]);
          }
        }
      }
    }
    // 16 products M[xi] (tiles x 32) = V[xi]^T (tiles x 16) U[xi] (16 x 32), 6 tiles at a time.
    for (int xi = 0; xi < 16; ++xi) {
      const float* Ux = U.data() + xi * kCin * kCout;
      const float* Vx = V.data() + xi * kCin * kTiles;
      float* Mx = M.data() + xi * kTiles * kCout;
      for (int t0 = 0; t0 < kTiles; t0 += 6) {
        __m512 acc[6][2];
        for (auto& a : acc) a[0] = a[1] = _mm512_setzero_ps();
        for (int ic = 0; ic < kCin; ++ic) {
          const __m512 u0 = _mm512_loadu_ps(Ux + ic * kCout), u1 = _mm512_loadu_ps(Ux + ic * kCout + 16);
#pragma GCC unroll 6
          for (int k = 0; k < 6; ++k) {
            const __m512 v = _mm512_set1_ps(Vx[ic * kTiles + t0 + k]);
            acc[k][0] = _mm512_fmadd_ps(v, u0, acc[k][0]);
            acc[k][1] = _mm512_fmadd_ps(v, u1, acc[k][1]);
          }
        }
        for (int k = 0; k < 6; ++k) {
          _mm512_storeu_ps(Mx + (t0 + k) * kCout, acc[k][0]);
          _mm512_storeu_ps(Mx + (t0 + k) * kCout + 16, acc[k][1]);
        }
      }
    }
    // Output tiles, A^T = [[1,1,1,0],[0,1,-1,-1]], plus the bias, into NCHW.
    alignas(64) float tile[4][kCout];
    for (int t = 0; t < kTiles; ++t) {
      for (int h = 0; h < 2; ++h) {
        __m512 m[16];
        for (int xi = 0; xi < 16; ++xi) m[xi] = _mm512_loadu_ps(M.data() + (xi * kTiles + t) * kCout + h * 16);
        __m512 s0[4], s1[4];
        for (int c = 0; c < 4; ++c) {
          s0[c] = _mm512_add_ps(_mm512_add_ps(m[c], m[4 + c]), m[8 + c]);
          s1[c] = _mm512_sub_ps(_mm512_sub_ps(m[4 + c], m[8 + c]), m[12 + c]);
        }
        const __m512 bias = _mm512_loadu_ps(b + h * 16);
        _mm512_store_ps(tile[0] + h * 16, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s0[0], s0[1]), s0[2]), bias));
        _mm512_store_ps(tile[1] + h * 16, _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s0[1], s0[2]), s0[3]), bias));
        _mm512_store_ps(tile[2] + h * 16, _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s1[0], s1[1]), s1[2]), bias));
        _mm512_store_ps(tile[3] + h * 16, _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s1[1], s1[2]), s1[3]), bias));
      }
      float* base = y + 2 * (t / kTilesW) * kWo + 2 * (t % kTilesW);
      for (int oc = 0; oc < kCout; ++oc) {
        float* p = base + oc * kP;
        p[0] = tile[0][oc], p[1] = tile[1][oc], p[kWo] = tile[2][oc], p[kWo + 1] = tile[3][oc];
      }
    }
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

// Each variant must give the library's numbers (to float rounding) before it is timed.
template <class Variant>
bool agrees(const char* name) {
  const Problem& p = problem();
  const cnn::Tensor want = library_conv(p);
  cnn::Tensor got({kCout, kP});
  Variant v;
  v.run(p.x.data(), p.w.data(), p.b.data(), got.data());
  double worst = 0;
  for (int64_t i = 0; i < want.numel(); ++i) worst = std::max(worst, double(std::fabs(got[i] - want[i])));
  std::printf("%s: largest difference from cnn::conv2d_forward %.2g\n", name, worst);
  return worst < 1e-4;
}

}  // namespace

int main(int argc, char** argv) {
  cnn::set_num_threads(1);
  if (has_avx512() && !(agrees<Direct>("direct") && agrees<Winograd>("winograd"))) return 1;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
