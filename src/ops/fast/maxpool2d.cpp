// maxpool2d, fast CPU kernel for dilation 1 (the dispatcher in src/ops/maxpool2d.cpp sends
// dilated pools to the reference kernel). The window is clipped to the input once per output;
// for the common 2x2 window with stride 2 the interior of each output row is a branch-free loop
// the compiler vectorises, built for AVX2 and for the baseline and chosen at load time.
#include "maxpool2d.h"

#include <immintrin.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "../../core/cpu.h"
#include "../../core/parallel.h"

namespace cnn::fast {

namespace {

// As PyTorch: the first maximum wins; NaN wins and propagates. Branch-free: on real data the
// comparison is a coin toss, and mispredicted branches cost more than the selects.
inline void take(float v, int32_t i, float& best, int32_t& best_i) {
  const bool wins = (v > best) | (v != v);
  best = wins ? v : best;
  best_i = wins ? i : best_i;
}

// One output row of a 2x2, stride-2 pool whose two input rows r0 = row h, r1 = row h + 1 are
// both inside the input, for outputs [ow0, ow1) whose windows are inside too. c0 is the input
// column of output 0's window.
__attribute__((target_clones("avx2", "default"))) void pool2x2_row(
    const float* __restrict r0, const float* __restrict r1, int32_t row_index, int64_t c0,
    int64_t ow0, int64_t ow1, int32_t W, float* __restrict y, int32_t* __restrict idx) {
  for (int64_t ow = ow0; ow < ow1; ++ow) {
    const int64_t c = c0 + 2 * ow;
    const int32_t i0 = row_index + static_cast<int32_t>(c);
    float best = r0[c];
    int32_t bi = i0;
    const float v1 = r0[c + 1], v2 = r1[c], v3 = r1[c + 1];
    // The first tap always wins against -inf, NaN or not, so start from it.
    bool w = (v1 > best) | (v1 != v1);
    best = w ? v1 : best;
    bi = w ? i0 + 1 : bi;
    w = (v2 > best) | (v2 != v2);
    best = w ? v2 : best;
    bi = w ? i0 + W : bi;
    w = (v3 > best) | (v3 != v3);
    best = w ? v3 : best;
    bi = w ? i0 + W + 1 : bi;
    y[ow] = best;
    idx[ow] = bi;
  }
}

// The same for an output row whose window keeps one input row (the other is padding).
__attribute__((target_clones("avx2", "default"))) void pool1x2_row(const float* __restrict r0,
                                                                   int32_t row_index, int64_t c0,
                                                                   int64_t ow0, int64_t ow1,
                                                                   float* __restrict y,
                                                                   int32_t* __restrict idx) {
  for (int64_t ow = ow0; ow < ow1; ++ow) {
    const int64_t c = c0 + 2 * ow;
    const int32_t i0 = row_index + static_cast<int32_t>(c);
    const float v0 = r0[c], v1 = r0[c + 1];
    const bool w = (v1 > v0) | (v1 != v1);
    y[ow] = w ? v1 : v0;
    idx[ow] = w ? i0 + 1 : i0;
  }
}

// Larger of a (first in PyTorch's scan order) and b; NaN wins and propagates.
inline float nan_max(float a, float b) { return (b > a) | (b != b) ? b : a; }

}  // namespace

// Built for AVX2 and for the baseline, chosen when the library loads. Per plane, two passes
// over a scratch plane m of H_out rows of 2 W_out columns: m holds the column-wise maximum of each
// output row's two input rows, with -inf in the columns that are padding (or past the end, in
// ceil_mode), so that output i is the maximum of m[2 i] and m[2 i + 1] over the whole plane: one
// long loop the compiler vectorises, rather than one short loop per row.
// The scratch plane of maxpool2x2_planes's two passes: H_out rows of M_w = 2 W_out columns,
// [0, pad) padding, [pad, pad + W) the input, [pad + W, M_w) past the end; -inf in all but the
// input's, which the vertical pass writes. The calling thread's.
static float* pool_scratch(int64_t W, int64_t pad, int64_t H_out, int64_t W_out) {
  constexpr float kLowest = -std::numeric_limits<float>::infinity();
  const int64_t M_w = 2 * W_out;
  thread_local std::vector<float> buf;
  if (static_cast<int64_t>(buf.size()) < H_out * M_w) {
    buf.resize(static_cast<std::size_t>(H_out * M_w));
  }
  float* m = buf.data();
  const int64_t right = std::max<int64_t>(0, M_w - pad - W);
  for (int64_t oh = 0; oh < H_out; ++oh) {
    for (int64_t c = 0; c < pad; ++c) m[oh * M_w + c] = kLowest;
    for (int64_t c = M_w - right; c < M_w; ++c) m[oh * M_w + c] = kLowest;
  }
  return m;
}

// nan_max on 8 lanes: MAXPS(b, a) is b > a ? b : a (a when either is NaN); then b where b is NaN.
__attribute__((target("avx2"), always_inline)) inline __m256 nan_max8(__m256 a, __m256 b) {
  return _mm256_blendv_ps(_mm256_max_ps(b, a), b, _mm256_cmp_ps(b, b, _CMP_UNORD_Q));
}

// out[c] = nan_max(a[c], b[c]) for c < n, 8 at a time; for n >= 8 the last vector ends at n,
// overlapping the one before (it writes the same values again).
__attribute__((target("avx2"), always_inline)) inline void rows_max8(const float* a, const float* b,
                                                                     float* out, int64_t n) {
  if (n < 8) {
    for (int64_t c = 0; c < n; ++c) out[c] = nan_max(a[c], b[c]);
    return;
  }
  for (int64_t c = 0;; c += 8) {
    if (c > n - 8) c = n - 8;
    _mm256_storeu_ps(out + c, nan_max8(_mm256_loadu_ps(a + c), _mm256_loadu_ps(b + c)));
    if (c == n - 8) return;
  }
}

// Outputs i .. i + 7 from m[2 i .. 2 i + 15]: the larger of each pair of even and odd lanes,
// then with ReLU v < 0 ? 0 : v (MAXPS(0, v) keeps a NaN v).
__attribute__((target("avx2"), always_inline)) inline __m256 pairs_max8(const float* m, bool relu) {
  const __m256 lo = _mm256_loadu_ps(m), hi = _mm256_loadu_ps(m + 8);
  const __m256 ev = _mm256_castpd_ps(_mm256_permute4x64_pd(
      _mm256_castps_pd(_mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0))), 0xd8));
  const __m256 od = _mm256_castpd_ps(_mm256_permute4x64_pd(
      _mm256_castps_pd(_mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1))), 0xd8));
  const __m256 v = nan_max8(ev, od);
  return relu ? _mm256_max_ps(_mm256_setzero_ps(), v) : v;
}

// maxpool2x2_planes's two passes written out on AVX2 (GCC's vectorisation of the loops below
// spent most of its time in their scalar remainders, the tutorial's rows being 12 and 26 floats
// long: 27 % of its inference before, build/cnn_ops_bench --benchmark_filter=Inference).
static __attribute__((target("avx2"))) void maxpool2x2_planes_avx2(const float* x, int64_t planes,
                                                                   int64_t H, int64_t W,
                                                                   int64_t pad, int64_t H_out,
                                                                   int64_t W_out, bool relu,
                                                                   float* y) {
  const int64_t M_w = 2 * W_out, out_plane = H_out * W_out, cols = std::min(W, M_w - pad);
  float* m = pool_scratch(W, pad, H_out, W_out);
  for (int64_t p = 0; p < planes; ++p) {
    const float* x_plane = x + p * H * W;
    for (int64_t oh = 0; oh < H_out; ++oh) {
      const int64_t h = 2 * oh - pad;
      float* m_row = m + oh * M_w + pad;
      if (h >= 0 && h + 1 < H) {
        const float* r0 = x_plane + h * W;
        rows_max8(r0, r0 + W, m_row, cols);
      } else {  // one row inside the input (the other is padding, or past the end)
        const float* r = x_plane + (h < 0 ? h + 1 : h) * W;
        std::copy(r, r + cols, m_row);
      }
    }
    float* out = y + p * out_plane;
    if (out_plane < 8) {
      for (int64_t i = 0; i < out_plane; ++i) {
        const float v = nan_max(m[2 * i], m[2 * i + 1]);
        out[i] = relu && v < 0.0f ? 0.0f : v;
      }
      continue;
    }
    for (int64_t i = 0;; i += 8) {  // the last vector ends at out_plane, as in rows_max8
      if (i > out_plane - 8) i = out_plane - 8;
      _mm256_storeu_ps(out + i, pairs_max8(m + 2 * i, relu));
      if (i == out_plane - 8) break;
    }
  }
}

static __attribute__((target_clones("avx2", "default"))) void maxpool2x2_planes_any(
    const float* x, int64_t planes, int64_t H, int64_t W, int64_t pad, int64_t H_out, int64_t W_out,
    bool relu, float* y) {
  const int64_t M_w = 2 * W_out, out_plane = H_out * W_out, cols = std::min(W, M_w - pad);
  float* __restrict m = pool_scratch(W, pad, H_out, W_out);
  for (int64_t p = 0; p < planes; ++p) {
    const float* x_plane = x + p * H * W;
    for (int64_t oh = 0; oh < H_out; ++oh) {
      const int64_t h = 2 * oh - pad;
      float* __restrict m_row = m + oh * M_w + pad;
      if (h >= 0 && h + 1 < H) {
        const float* __restrict r0 = x_plane + h * W;
        const float* __restrict r1 = r0 + W;
        for (int64_t c = 0; c < cols; ++c) m_row[c] = nan_max(r0[c], r1[c]);
      } else {  // one row inside the input (the other is padding, or past the end)
        const float* __restrict r = x_plane + (h < 0 ? h + 1 : h) * W;
        for (int64_t c = 0; c < cols; ++c) m_row[c] = r[c];
      }
    }
    float* __restrict out = y + p * out_plane;
    if (relu) {
      for (int64_t i = 0; i < out_plane; ++i) {
        const float v = nan_max(m[2 * i], m[2 * i + 1]);
        out[i] = v < 0.0f ? 0.0f : v;
      }
    } else {
      for (int64_t i = 0; i < out_plane; ++i) out[i] = nan_max(m[2 * i], m[2 * i + 1]);
    }
  }
}

void maxpool2x2_planes(const float* x, int64_t planes, int64_t H, int64_t W, int64_t pad,
                       int64_t H_out, int64_t W_out, bool relu, float* y) {
  if (__builtin_cpu_supports("avx2") && detail::use_avx2_fma()) {
    return maxpool2x2_planes_avx2(x, planes, H, W, pad, H_out, W_out, relu, y);
  }
  maxpool2x2_planes_any(x, planes, H, W, pad, H_out, W_out, relu, y);
}

// As maxpool2x2_planes, with the index of each output's winner, chosen as PyTorch's scan of the
// window in row-major order chooses it: the first maximum, or the last NaN. The vertical pass
// keeps, per column, the winner of its two rows (the bottom one only if greater, or NaN) and its
// index (-1 for padding columns); the horizontal pass decides between the left (a) and the right
// (b) column's winners. Indices order the four taps: for the same window, index(b) < index(a)
// exactly when b's row is above a's. So b wins if a is padding, if b > a, on a tie if b comes
// first in the scan (index(b) < index(a)), or if b is NaN unless a is a NaN later in the scan;
// never if b is padding (padding never wins, even against a real -inf).
__attribute__((target_clones("avx2", "default"))) void maxpool2x2_indices_planes(
    const float* x, int64_t planes, int64_t H, int64_t W, int64_t pad, int64_t H_out, int64_t W_out,
    float* y, int32_t* indices) {
  constexpr float kLowest = -std::numeric_limits<float>::infinity();
  const int64_t M_w = 2 * W_out, out_plane = H_out * W_out;
  thread_local std::vector<float> scratch;
  thread_local std::vector<int32_t> scratch_i;
  if (static_cast<int64_t>(scratch.size()) < H_out * M_w) {
    scratch.resize(static_cast<std::size_t>(H_out * M_w));
    scratch_i.resize(static_cast<std::size_t>(H_out * M_w));
  }
  float* __restrict m = scratch.data();
  int32_t* __restrict mi = scratch_i.data();
  const int64_t right = std::max<int64_t>(0, M_w - pad - W), cols = std::min(W, M_w - pad);
  for (int64_t oh = 0; oh < H_out; ++oh) {
    for (int64_t c = 0; c < pad; ++c) m[oh * M_w + c] = kLowest, mi[oh * M_w + c] = -1;
    for (int64_t c = M_w - right; c < M_w; ++c) m[oh * M_w + c] = kLowest, mi[oh * M_w + c] = -1;
  }
  for (int64_t p = 0; p < planes; ++p) {
    const float* x_plane = x + p * H * W;
    for (int64_t oh = 0; oh < H_out; ++oh) {
      const int64_t h = 2 * oh - pad;
      float* __restrict m_row = m + oh * M_w + pad;
      int32_t* __restrict mi_row = mi + oh * M_w + pad;
      if (h >= 0 && h + 1 < H) {
        const float* __restrict r0 = x_plane + h * W;
        const float* __restrict r1 = r0 + W;
        const auto i0 = static_cast<int32_t>(h * W), i1 = static_cast<int32_t>((h + 1) * W);
        for (int64_t c = 0; c < cols; ++c) {
          const float top = r0[c], bottom = r1[c];
          const bool wins = (bottom > top) | (bottom != bottom);
          m_row[c] = wins ? bottom : top;
          mi_row[c] = (wins ? i1 : i0) + static_cast<int32_t>(c);
        }
      } else {  // one row inside the input (the other is padding, or past the end)
        const int64_t hr = h < 0 ? h + 1 : h;
        const float* __restrict r = x_plane + hr * W;
        const auto i0 = static_cast<int32_t>(hr * W);
        for (int64_t c = 0; c < cols; ++c)
          m_row[c] = r[c], mi_row[c] = i0 + static_cast<int32_t>(c);
      }
    }
    float* __restrict out = y + p * out_plane;
    int32_t* __restrict out_i = indices + p * out_plane;
    for (int64_t i = 0; i < out_plane; ++i) {
      const float a = m[2 * i], b = m[2 * i + 1];
      const int32_t ia = mi[2 * i], ib = mi[2 * i + 1];
      const bool b_wins =
          (ia < 0) |
          ((ib >= 0) & ((b > a) | ((b == a) & (ib < ia)) | ((b != b) & ((a == a) | (ib > ia)))));
      out[i] = b_wins ? b : a;
      out_i[i] = b_wins ? ib : ia;
    }
  }
}

void maxpool2d_planes(const float* x, int64_t planes, int64_t H, int64_t W, const Pool2dGeometry& g,
                      int64_t H_out, int64_t W_out, float* y, int32_t* indices) {
  const int64_t K_h = g.kernel.h, K_w = g.kernel.w, S_h = g.stride.h, S_w = g.stride.w;
  const bool two_by_two = K_h == 2 && K_w == 2 && S_h == 2 && S_w == 2;
  // Outputs whose window lies wholly inside the input columns: [ow_lo, ow_hi).
  const int64_t ow_lo = std::min(W_out, (g.padding.w + S_w - 1) / S_w);
  const int64_t ow_hi = std::max(ow_lo, std::min(W_out, (W - K_w + g.padding.w) / S_w + 1));
  // Without indices (inference), each row's go to a scratch row that is thrown away.
  thread_local std::vector<int32_t> scratch;
  if (!indices && static_cast<int64_t>(scratch.size()) < W_out)
    scratch.resize(static_cast<std::size_t>(W_out));
  for (int64_t p = 0; p < planes; ++p) {
    const float* x_plane = x + p * H * W;
    float* y_plane = y + p * H_out * W_out;
    int32_t* idx_plane = indices ? indices + p * H_out * W_out : nullptr;
    auto idx_row = [&](int64_t oh) { return indices ? idx_plane + oh * W_out : scratch.data(); };
    for (int64_t oh = 0; oh < H_out; ++oh) {
      const int64_t h_start = oh * S_h - g.padding.h;
      const int64_t h0 = std::max<int64_t>(h_start, 0), h1 = std::min(h_start + K_h, H);
      auto general = [&](int64_t ow) {
        const int64_t w_start = ow * S_w - g.padding.w;
        const int64_t w0 = std::max<int64_t>(w_start, 0), w1 = std::min(w_start + K_w, W);
        float best = -std::numeric_limits<float>::infinity();
        auto best_i = static_cast<int32_t>(h0 * W + w0);
        for (int64_t ih = h0; ih < h1; ++ih) {
          for (int64_t iw = w0; iw < w1; ++iw) {
            const auto i = static_cast<int32_t>(ih * W + iw);
            take(x_plane[i], i, best, best_i);
          }
        }
        y_plane[oh * W_out + ow] = best;
        idx_row(oh)[ow] = best_i;
      };
      if (two_by_two && (h1 - h0 == 2 || h1 - h0 == 1)) {
        // A 2x2 window clipped at the left or right edge keeps one column: at most two taps.
        auto edge = [&](int64_t ow) {
          const auto c = static_cast<int32_t>(std::max<int64_t>(ow * 2 - g.padding.w, 0));
          const auto i0 = static_cast<int32_t>(h0 * W) + c;
          float best = x_plane[i0];
          int32_t best_i = i0;
          if (h1 - h0 == 2) take(x_plane[i0 + W], i0 + static_cast<int32_t>(W), best, best_i);
          y_plane[oh * W_out + ow] = best;
          idx_row(oh)[ow] = best_i;
        };
        for (int64_t ow = 0; ow < ow_lo; ++ow) edge(ow);
        if (h1 - h0 == 2) {
          pool2x2_row(x_plane + h0 * W, x_plane + (h0 + 1) * W, static_cast<int32_t>(h0 * W),
                      -g.padding.w, ow_lo, ow_hi, static_cast<int32_t>(W), y_plane + oh * W_out,
                      idx_row(oh));
        } else {
          pool1x2_row(x_plane + h0 * W, static_cast<int32_t>(h0 * W), -g.padding.w, ow_lo, ow_hi,
                      y_plane + oh * W_out, idx_row(oh));
        }
        for (int64_t ow = ow_hi; ow < W_out; ++ow) edge(ow);
      } else {
        for (int64_t ow = 0; ow < W_out; ++ow) general(ow);
      }
    }
  }
}

Tensor maxpool2d_forward(const Tensor& x, const Pool2dGeometry& g, const Shape& y_shape,
                         int32_t* indices) {
  Tensor y = Tensor::empty(y_shape);
  const int64_t planes = x.size(0) * x.size(1), H = x.size(2), W = x.size(3);
  const int64_t H_out = y_shape[2], W_out = y_shape[3], plane_out = H_out * W_out;
  const bool share = planes * plane_out > 16384;  // enough work to split across threads
  const bool two_by_two = g.kernel.all(2) && g.stride.all(2) && g.padding.h == g.padding.w;
  detail::parallel_chunks(planes, share ? 1 : planes + 1, [&](int64_t lo, int64_t hi) {
    if (two_by_two && indices) {
      maxpool2x2_indices_planes(x.data() + lo * H * W, hi - lo, H, W, g.padding.h, H_out, W_out,
                                y.data() + lo * plane_out, indices + lo * plane_out);
      return;
    }
    if (two_by_two) {
      maxpool2x2_planes(x.data() + lo * H * W, hi - lo, H, W, g.padding.h, H_out, W_out,
                        /*relu=*/false, y.data() + lo * plane_out);
      return;
    }
    maxpool2d_planes(x.data() + lo * H * W, hi - lo, H, W, g, H_out, W_out,
                     y.data() + lo * plane_out, indices ? indices + lo * plane_out : nullptr);
  });
  return y;
}

}  // namespace cnn::fast
