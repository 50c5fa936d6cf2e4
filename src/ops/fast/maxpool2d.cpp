// maxpool2d, fast CPU kernel for dilation 1 (the dispatcher in src/ops/maxpool2d.cpp sends
// dilated pools to the reference kernel). The window is clipped to the input once per output;
// for the common 2x2 window with stride 2 the interior of each output row is a branch-free loop
// the compiler vectorises, built for AVX2 and for the baseline and chosen at load time, and on
// AVX-512 the 2x2 pools (with and without indices) are written out on 16 lanes with no scratch
// plane (2.3x the AVX2 code on the tutorial's first pool, build/cnn_ops_bench
// --benchmark_filter=MaxPool2dForward).
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

namespace {

// The window's columns on AVX-512: lanes j of (lo, hi) hold input columns base + j, j < 32, -inf
// where base + j is outside [0, W) (masked loads: nothing outside the row is read). Even lanes are
// the left columns of outputs 0..15 of the chunk, odd lanes the right ones.
__attribute__((target("avx512f"), always_inline)) inline __mmask32 columns_mask(int64_t base,
                                                                                int64_t W) {
  const int64_t first = std::max<int64_t>(0, -base), end = std::min<int64_t>(32, W - base);
  if (end <= first) return 0;
  const uint32_t upto = end >= 32 ? ~0u : (1u << end) - 1u;
  return static_cast<__mmask32>(upto & ~((1u << first) - 1u));
}

// nan_max on 16 lanes, as nan_max8. (The masked MAXPS with every lane set: GCC 12's unmasked
// form reads an undefined vector and warns.)
__attribute__((target("avx512f"), always_inline)) inline __m512 max16(__m512 b, __m512 a) {
  return _mm512_mask_max_ps(a, static_cast<__mmask16>(0xffff), b, a);
}
__attribute__((target("avx512f"), always_inline)) inline __m512 nan_max16(__m512 a, __m512 b) {
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q), max16(b, a), b);
}

// Lanes j of row[first + j] where m has bit j, `fill` elsewhere. first may be negative (the
// lanes before the row are masked off and not read), so the address is formed as an integer.
__attribute__((target("avx512f"), always_inline)) inline __m512 row_lanes(const float* row,
                                                                          int64_t first,
                                                                          __mmask16 m,
                                                                          __m512 fill) {
  const auto at = reinterpret_cast<uintptr_t>(row) + static_cast<uintptr_t>(first * 4);
  return _mm512_mask_loadu_ps(fill, m, reinterpret_cast<const void*>(at));
}

// The permutes' tables: lanes 0, 2, .., 30 (the windows' left columns) and 1, 3, .., 31 (the
// right ones) of a pair of vectors.
__attribute__((target("avx512f"), always_inline)) inline __m512i even_lanes() {
  return _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
}
__attribute__((target("avx512f"), always_inline)) inline __m512i odd_lanes() {
  return _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
}

}  // namespace

// maxpool2x2_planes on AVX-512, without the scratch plane: per output row and chunk of 16
// outputs, the 32 columns of its two input rows in two vectors each (masked loads that give -inf
// outside the input), their column-wise maxima, then the larger of each even and odd lane by two
// permutes, stored with a mask. The same comparisons in the same order as the AVX2 passes (top
// row against bottom, then left column against right), so the same numbers.
static __attribute__((target("avx512f"))) void maxpool2x2_planes_avx512(
    const float* x, int64_t planes, int64_t H, int64_t W, int64_t pad, int64_t H_out, int64_t W_out,
    bool relu, float* y) {
  const __m512 lowest = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  const __m512i even = even_lanes(), odd = odd_lanes();
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t p = 0; p < planes; ++p) {
    const float* x_plane = x + p * H * W;
    float* out = y + p * H_out * W_out;
    for (int64_t oh = 0; oh < H_out; ++oh, out += W_out) {
      const int64_t h = 2 * oh - pad;
      // The window's rows inside the input: top, bottom, or both (never neither).
      const float* top = h >= 0 ? x_plane + h * W : nullptr;
      const float* bottom = h + 1 < H ? x_plane + (h + 1) * W : nullptr;
      for (int64_t o = 0; o < W_out; o += 16) {
        const int64_t base = 2 * o - pad;
        const __mmask32 cols = columns_mask(base, W);
        const auto m_lo = static_cast<__mmask16>(cols), m_hi = static_cast<__mmask16>(cols >> 16);
        __m512 lo, hi;
        if (top && bottom) {
          lo = nan_max16(row_lanes(top, base, m_lo, lowest), row_lanes(bottom, base, m_lo, lowest));
          hi = nan_max16(row_lanes(top, base + 16, m_hi, lowest),
                         row_lanes(bottom, base + 16, m_hi, lowest));
        } else {
          const float* r = top ? top : bottom;
          lo = row_lanes(r, base, m_lo, lowest);
          hi = row_lanes(r, base + 16, m_hi, lowest);
        }
        __m512 v =
            nan_max16(_mm512_permutex2var_ps(lo, even, hi), _mm512_permutex2var_ps(lo, odd, hi));
        if (relu) v = max16(zero, v);  // MAXPS(0, v) keeps a NaN v
        const int64_t n = std::min<int64_t>(16, W_out - o);
        _mm512_mask_storeu_ps(out + o, static_cast<__mmask16>((1u << n) - 1u), v);
      }
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
  if (detail::use_avx512()) {
    return maxpool2x2_planes_avx512(x, planes, H, W, pad, H_out, W_out, relu, y);
  }
  if (__builtin_cpu_supports("avx2") && detail::use_avx2_fma()) {
    return maxpool2x2_planes_avx2(x, planes, H, W, pad, H_out, W_out, relu, y);
  }
  maxpool2x2_planes_any(x, planes, H, W, pad, H_out, W_out, relu, y);
}

namespace {

// Sixteen columns of a window row pair, each the winner of its two rows and that winner's index
// into the plane (-inf and -1 where the column is outside the input): the vertical pass of
// maxpool2x2_indices_planes on AVX-512. top or bottom is null where that row is padding.
struct Winners16 {
  __m512 v;
  __m512i i;
};

__attribute__((target("avx512f"), always_inline)) inline Winners16 column_winners(
    const float* top, const float* bottom, int32_t top_index, int32_t bottom_index, int64_t first,
    __mmask16 m) {
  const __m512 lowest = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  const __m512i column =
      _mm512_add_epi32(_mm512_set1_epi32(static_cast<int32_t>(first)),
                       _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  Winners16 w;
  if (top && bottom) {
    const __m512 t = row_lanes(top, first, m, lowest), b = row_lanes(bottom, first, m, lowest);
    // The bottom row wins only if greater, or NaN (the first maximum wins).
    const __mmask16 wins =
        _mm512_cmp_ps_mask(b, t, _CMP_GT_OQ) | _mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q);
    w.v = _mm512_mask_blend_ps(wins, t, b);
    w.i = _mm512_mask_blend_epi32(wins, _mm512_set1_epi32(top_index),
                                  _mm512_set1_epi32(bottom_index));
  } else {
    w.v = row_lanes(top ? top : bottom, first, m, lowest);
    w.i = _mm512_set1_epi32(top ? top_index : bottom_index);
  }
  w.i = _mm512_mask_add_epi32(_mm512_set1_epi32(-1), m, w.i, column);
  return w;
}

}  // namespace

// maxpool2x2_indices_planes on AVX-512: per output row and chunk of 16 outputs, the vertical
// pass's winners in registers (column_winners), then the horizontal choice between the left (a,
// even lanes) and right (b, odd lanes) columns by the rule written out below, as masks.
static __attribute__((target("avx512f"))) void maxpool2x2_indices_planes_avx512(
    const float* x, int64_t planes, int64_t H, int64_t W, int64_t pad, int64_t H_out, int64_t W_out,
    float* y, int32_t* indices, bool relu) {
  const __m512i even = even_lanes(), odd = odd_lanes();
  const __m512i minus_one = _mm512_set1_epi32(-1);
  const __m512 zero = _mm512_setzero_ps();
  for (int64_t p = 0; p < planes; ++p) {
    const float* x_plane = x + p * H * W;
    float* out = y + p * H_out * W_out;
    int32_t* out_i = indices + p * H_out * W_out;
    for (int64_t oh = 0; oh < H_out; ++oh, out += W_out, out_i += W_out) {
      const int64_t h = 2 * oh - pad;
      const float* top = h >= 0 ? x_plane + h * W : nullptr;
      const float* bottom = h + 1 < H ? x_plane + (h + 1) * W : nullptr;
      const auto top_index = static_cast<int32_t>(h * W);
      const auto bottom_index = static_cast<int32_t>((h + 1) * W);
      for (int64_t o = 0; o < W_out; o += 16) {
        const int64_t base = 2 * o - pad;
        const __mmask32 cols = columns_mask(base, W);
        const Winners16 lo = column_winners(top, bottom, top_index, bottom_index, base,
                                            static_cast<__mmask16>(cols));
        const Winners16 hi = column_winners(top, bottom, top_index, bottom_index, base + 16,
                                            static_cast<__mmask16>(cols >> 16));
        const __m512 a = _mm512_permutex2var_ps(lo.v, even, hi.v);
        const __m512 b = _mm512_permutex2var_ps(lo.v, odd, hi.v);
        const __m512i ia = _mm512_permutex2var_epi32(lo.i, even, hi.i);
        const __m512i ib = _mm512_permutex2var_epi32(lo.i, odd, hi.i);
        // b wins if a is padding; never if b is padding; else if b > a, on a tie if b comes
        // first in the scan, or if b is NaN unless a is a NaN later in the scan.
        const __mmask16 a_pad = _mm512_cmplt_epi32_mask(ia, _mm512_setzero_si512());
        const __mmask16 b_in = _mm512_cmpgt_epi32_mask(ib, minus_one);
        const __mmask16 b_first = _mm512_cmplt_epi32_mask(ib, ia);
        const __mmask16 b_nan_wins =
            _mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q) &
            (_mm512_cmp_ps_mask(a, a, _CMP_ORD_Q) | static_cast<__mmask16>(~b_first));
        const __mmask16 b_wins =
            a_pad | (b_in & (_mm512_cmp_ps_mask(b, a, _CMP_GT_OQ) |
                             (_mm512_cmp_ps_mask(b, a, _CMP_EQ_OQ) & b_first) | b_nan_wins));
        __m512 v = _mm512_mask_blend_ps(b_wins, a, b);
        if (relu) v = max16(zero, v);  // MAXPS(0, v) keeps a NaN v and a -0.0
        const int64_t n = std::min<int64_t>(16, W_out - o);
        const auto store = static_cast<__mmask16>((1u << n) - 1u);
        _mm512_mask_storeu_ps(out + o, store, v);
        _mm512_mask_storeu_epi32(out_i + o, store, _mm512_mask_blend_epi32(b_wins, ia, ib));
      }
    }
  }
}

// As maxpool2x2_planes, with the index of each output's winner, chosen as PyTorch's scan of the
// window in row-major order chooses it: the first maximum, or the last NaN. The vertical pass
// keeps, per column, the winner of its two rows (the bottom one only if greater, or NaN) and its
// index (-1 for padding columns); the horizontal pass decides between the left (a) and the right
// (b) column's winners. Indices order the four taps: for the same window, index(b) < index(a)
// exactly when b's row is above a's. So b wins if a is padding, if b > a, on a tie if b comes
// first in the scan (index(b) < index(a)), or if b is NaN unless a is a NaN later in the scan;
// never if b is padding (padding never wins, even against a real -inf).
static __attribute__((target_clones("avx2", "default"))) void maxpool2x2_indices_planes_any(
    const float* x, int64_t planes, int64_t H, int64_t W, int64_t pad, int64_t H_out, int64_t W_out,
    float* y, int32_t* indices, bool relu) {
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
      const float v = b_wins ? b : a;
      out[i] = relu && v < 0.0f ? 0.0f : v;
      out_i[i] = b_wins ? ib : ia;
    }
  }
}

void maxpool2x2_indices_planes(const float* x, int64_t planes, int64_t H, int64_t W, int64_t pad,
                               int64_t H_out, int64_t W_out, float* y, int32_t* indices,
                               bool relu) {
  if (detail::use_avx512()) {
    return maxpool2x2_indices_planes_avx512(x, planes, H, W, pad, H_out, W_out, y, indices, relu);
  }
  maxpool2x2_indices_planes_any(x, planes, H, W, pad, H_out, W_out, y, indices, relu);
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
