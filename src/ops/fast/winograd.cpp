// Winograd F(2x2, 3x3) convolution, AVX-512 (see winograd.h). Transforms, with
//   G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]           (weights, 4x3)
//   B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]      (input, 4x4)
//   A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]                                 (output, 2x4)
// Tile (ty, tx) covers outputs 2 ty .. 2 ty + 1, 2 tx .. 2 tx + 1 and reads padded input rows and
// columns 2 ty .. 2 ty + 3, 2 tx .. 2 tx + 3.
#include "winograd.h"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "../../core/cpu.h"
#include "copy_row.h"
#include "scratch.h"

// GCC 12's AVX-512 gathers and permutes start from an undefined vector, which its flow analysis
// reports as possibly uninitialised (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace cnn::fast {

namespace {

constexpr int64_t kMaxTilesW = 7;  // 2 * 7 + 2 = 16 padded columns: one vector per input row
// The AVX2 variant's least input and output channels.
constexpr int64_t kMinChannelsAvx2 = 8;

struct Geometry {
  int64_t C_in, H, W, C_out, H_out, W_out, pad_top, pad_left;
  int64_t tiles_h, tiles_w, tiles;
  // The zero-padded input: tiles_h * 2 + 2 rows of 16 floats per channel.
  int64_t rows() const { return 2 * tiles_h + 2; }
};

Geometry geometry_of(const Shape& x, const Shape& y, const Conv2dGeometry& g) {
  Geometry q{};
  q.C_in = x[1], q.H = x[2], q.W = x[3];
  q.C_out = y[1], q.H_out = y[2], q.W_out = y[3];
  q.pad_top = g.pad_top, q.pad_left = g.pad_left;
  q.tiles_h = (q.H_out + 1) / 2, q.tiles_w = (q.W_out + 1) / 2, q.tiles = q.tiles_h * q.tiles_w;
  return q;
}

// M[t0 .. t0 + NT)[16 NB channels from oc] = sum over ic of V[ic][t] U[ic][oc ..]: NT x NB
// accumulators, one broadcast of V and NB loads of U per input channel.
template <int NT, int NB>
__attribute__((target("avx512f"), always_inline)) inline void product_block(
    const float* V, int64_t T, int64_t t0, const float* U, int64_t C_out, int64_t oc, int64_t C_in,
    float* M, int64_t ld_m, int64_t m_col) {
  __m512 acc[NT][NB];
  for (int k = 0; k < NT; ++k) {
    for (int j = 0; j < NB; ++j) acc[k][j] = _mm512_setzero_ps();
  }
  for (int64_t ic = 0; ic < C_in; ++ic) {
    __m512 u[NB];
    for (int j = 0; j < NB; ++j) u[j] = _mm512_loadu_ps(U + ic * C_out + oc + 16 * j);
    for (int k = 0; k < NT; ++k) {
      const __m512 v = _mm512_set1_ps(V[ic * T + t0 + k]);
      for (int j = 0; j < NB; ++j) acc[k][j] = _mm512_fmadd_ps(v, u[j], acc[k][j]);
    }
  }
  for (int k = 0; k < NT; ++k) {
    for (int j = 0; j < NB; ++j) _mm512_storeu_ps(M + (t0 + k) * ld_m + m_col + 16 * j, acc[k][j]);
  }
}

// The last T - t0 < 6 tiles: the block of that height, chosen at compile time.
template <int NT, int NB>
__attribute__((target("avx512f"), always_inline)) inline void product_rest(
    const float* V, int64_t T, int64_t t0, const float* U, int64_t C_out, int64_t oc, int64_t C_in,
    float* M, int64_t ld_m, int64_t m_col) {
  if constexpr (NT > 0) {
    if (T - t0 == NT) return product_block<NT, NB>(V, T, t0, U, C_out, oc, C_in, M, ld_m, m_col);
    product_rest<NT - 1, NB>(V, T, t0, U, C_out, oc, C_in, M, ld_m, m_col);
  }
}

template <int NB>
__attribute__((target("avx512f"))) void product_tiles(const float* V, int64_t T, const float* U,
                                                      int64_t C_out, int64_t oc, int64_t C_in,
                                                      float* M, int64_t ld_m, int64_t m_col) {
  int64_t t0 = 0;
  for (; t0 + 6 <= T; t0 += 6) product_block<6, NB>(V, T, t0, U, C_out, oc, C_in, M, ld_m, m_col);
  product_rest<5, NB>(V, T, t0, U, C_out, oc, C_in, M, ld_m, m_col);
}

}  // namespace

namespace {

// The AVX-512 variant: a row of tiles in one vector.
bool rows512_applies(const Shape& w, const Shape& y) {
  return detail::use_avx512() && w[0] % 16 == 0 && (y[3] + 1) / 2 <= kMaxTilesW;
}

}  // namespace

bool winograd_applies(const Shape& x, const Shape& w, const Conv2dGeometry& g, const Shape& y) {
  if (!detail::use_winograd() || x.size() != 4 || w[2] != 3 || w[3] != 3 || !g.stride.all(1) ||
      !g.dilation.all(1) || g.groups != 1) {
    return false;
  }
  if (rows512_applies(w, y)) return true;
  // AVX2: where it measured faster than the direct convolution (build/cnn_conv_layers
  // --compare, docs/KERNELS.md): channels enough for the products to outweigh the transforms,
  // and at least 60 % of the outputs its vectors of 8 tiles compute kept (a 5x5 output, 9 tiles
  // in 16 lanes, keeps 39 % and ran at 0.7x; a 7x7 one keeps 77 %).
  const int64_t tiles = (y[2] + 1) / 2 * ((y[3] + 1) / 2), computed = 4 * ((tiles + 7) / 8 * 8);
  return detail::use_avx2_fma() && w[1] >= kMinChannelsAvx2 && w[0] >= kMinChannelsAvx2 &&
         10 * y[2] * y[3] >= 6 * computed;
}

bool winograd_avx512(const Shape& w, const Shape& y) { return rows512_applies(w, y); }

int64_t winograd_channel_unit(const Shape& w, const Shape& y) {
  return rows512_applies(w, y) ? 16 : 4;
}

void winograd_weights(const Tensor& w, int64_t oc0, int64_t oc1, std::vector<float>& U_buf) {
  const int64_t C_out = w.size(0), C_in = w.size(1);
  float* U = scratch(U_buf, 16 * C_in * C_out);
  // Cached (winograd_weights_cached): plain loops, in the order of operations both variants'
  // tests were written against.
  for (int64_t oc = oc0; oc < oc1; ++oc) {
    for (int64_t ic = 0; ic < C_in; ++ic) {
      const float* g = w.data() + (oc * C_in + ic) * 9;
      float t[4][3];  // G g
      for (int c = 0; c < 3; ++c) {
        t[0][c] = g[c];
        t[1][c] = 0.5f * ((g[c] + g[3 + c]) + g[6 + c]);
        t[2][c] = 0.5f * ((g[c] - g[3 + c]) + g[6 + c]);
        t[3][c] = g[6 + c];
      }
      for (int r = 0; r < 4; ++r) {  // (G g) G^T
        const float u[4] = {t[r][0], 0.5f * ((t[r][0] + t[r][1]) + t[r][2]),
                            0.5f * ((t[r][0] - t[r][1]) + t[r][2]), t[r][2]};
        for (int c = 0; c < 4; ++c) U[((r * 4 + c) * C_in + ic) * C_out + oc] = u[c];
      }
    }
  }
}

const std::vector<float>& winograd_weights_cached(const Tensor& w) {
  struct Entry {
    const float* data = nullptr;
    Shape shape;
    std::vector<float> weights, U;
  };
  constexpr std::size_t kEntries = 16;  // a model's eligible layers, reused round robin
  thread_local std::array<Entry, kEntries> cache;
  thread_local std::size_t next = 0;
  const auto bytes = static_cast<std::size_t>(w.numel()) * sizeof(float);
  for (Entry& e : cache) {
    if (e.data == w.data() && e.shape == w.shape() &&
        std::memcmp(e.weights.data(), w.data(), bytes) == 0) {
      return e.U;
    }
  }
  Entry& e = cache[next];
  next = (next + 1) % kEntries;
  e.data = w.data();
  e.shape = w.shape();
  e.weights.assign(w.data(), w.data() + w.numel());
  winograd_weights(w, 0, w.size(0), e.U);
  return e.U;
}

namespace {

__attribute__((target("avx512f"))) void image_rows512(const float* x_img, const Shape& x,
                                                      const Conv2dGeometry& g, const Shape& y,
                                                      const std::vector<float>& U_buf,
                                                      const float* bias, int64_t oc0, int64_t oc1,
                                                      float* y_img) {
  const Geometry q = geometry_of(x, y, g);
  const int64_t T = q.tiles, ocs = oc1 - oc0, R = q.rows();
  thread_local std::vector<float> xp_buf, v_buf, m_buf;
  // The input, zero-padded to whole tiles: R rows of 16 floats per channel, each written as one
  // vector: the input row's columns that a tile reads (a masked load), moved pad_left lanes up
  // (rows are 14 floats or fewer: calls to memset and memcpy took 14 % of the tutorial's
  // inference).
  float* xp = scratch(xp_buf, q.C_in * R * 16);
  const int64_t rows = std::min(q.H, R - q.pad_top), cols = std::min(q.W, 16 - q.pad_left);
  const auto load_mask = static_cast<__mmask16>(cols > 0 ? (1u << cols) - 1u : 0u);
  const auto place_mask = static_cast<__mmask16>(load_mask << q.pad_left);
  const __m512i shift =
      _mm512_sub_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                       _mm512_set1_epi32(static_cast<int>(q.pad_left)));
  for (int64_t ic = 0; ic < q.C_in; ++ic) {
    for (int64_t r = 0; r < R; ++r) {
      const int64_t h = r - q.pad_top;
      __m512 v = _mm512_setzero_ps();
      if (h >= 0 && h < rows) {
        v = _mm512_maskz_loadu_ps(load_mask, x_img + (ic * q.H + h) * q.W);
        v = _mm512_maskz_permutexvar_ps(place_mask, shift, v);
      }
      _mm512_storeu_ps(xp + (ic * R + r) * 16, v);
    }
  }
  // V[xi][ic][t] = (B^T d B)[xi] for every tile: a row of tiles at a time, columns split into
  // even and odd lanes so that the tiles of the row are the lanes of a vector.
  float* V = scratch(v_buf, 16 * q.C_in * T);
  const auto tile_mask = static_cast<__mmask16>((1u << q.tiles_w) - 1u);
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 14, 14, 14, 14, 14, 14, 14, 14);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 15, 15, 15, 15, 15, 15, 15, 15);
  const __m512i next = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7);
  for (int64_t ic = 0; ic < q.C_in; ++ic) {
    for (int64_t ty = 0; ty < q.tiles_h; ++ty) {
      const float* r = xp + (ic * R + 2 * ty) * 16;
      const __m512 r0 = _mm512_loadu_ps(r), r1 = _mm512_loadu_ps(r + 16);
      const __m512 r2 = _mm512_loadu_ps(r + 32), r3 = _mm512_loadu_ps(r + 48);
      const __m512 t[4] = {_mm512_sub_ps(r0, r2), _mm512_add_ps(r1, r2), _mm512_sub_ps(r2, r1),
                           _mm512_sub_ps(r1, r3)};
      for (int i = 0; i < 4; ++i) {
        // e[k] = t[2 k], o[k] = t[2 k + 1], e1[k] = t[2 k + 2], o1[k] = t[2 k + 3]
        const __m512 e = _mm512_permutexvar_ps(even, t[i]), o = _mm512_permutexvar_ps(odd, t[i]);
        const __m512 e1 = _mm512_permutexvar_ps(next, e), o1 = _mm512_permutexvar_ps(next, o);
        const __m512 v[4] = {_mm512_sub_ps(e, e1), _mm512_add_ps(o, e1), _mm512_sub_ps(e1, o),
                             _mm512_sub_ps(o, o1)};
        for (int j = 0; j < 4; ++j) {
          _mm512_mask_storeu_ps(V + ((i * 4 + j) * q.C_in + ic) * T + ty * q.tiles_w, tile_mask,
                                v[j]);
        }
      }
    }
  }
  // M[xi][t][oc - oc0] = sum over ic of V[xi][ic][t] U[xi][ic][oc].
  float* M = scratch(m_buf, 16 * T * ocs);
  const float* U = U_buf.data();
  for (int xi = 0; xi < 16; ++xi) {
    const float* V_xi = V + xi * q.C_in * T;
    const float* U_xi = U + xi * q.C_in * q.C_out;
    float* M_xi = M + xi * T * ocs;
    int64_t oc = oc0;
    for (; oc + 32 <= oc1; oc += 32)
      product_tiles<2>(V_xi, T, U_xi, q.C_out, oc, q.C_in, M_xi, ocs, oc - oc0);
    if (oc < oc1) product_tiles<1>(V_xi, T, U_xi, q.C_out, oc, q.C_in, M_xi, ocs, oc - oc0);
  }
  // y = A^T m A + bias, 16 channels at a time, written to the outputs inside y.
  alignas(64) float out[4][16];
  const int64_t P = q.H_out * q.W_out;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t oh = 2 * (t / q.tiles_w), ow = 2 * (t % q.tiles_w);
    const bool full = oh + 1 < q.H_out && ow + 1 < q.W_out;
    for (int64_t oc = oc0; oc < oc1; oc += 16) {
      __m512 m[16];
      for (int xi = 0; xi < 16; ++xi) m[xi] = _mm512_loadu_ps(M + (xi * T + t) * ocs + (oc - oc0));
      __m512 s0[4], s1[4];
      for (int c = 0; c < 4; ++c) {
        s0[c] = _mm512_add_ps(_mm512_add_ps(m[c], m[4 + c]), m[8 + c]);
        s1[c] = _mm512_sub_ps(_mm512_sub_ps(m[4 + c], m[8 + c]), m[12 + c]);
      }
      const __m512 b = bias ? _mm512_loadu_ps(bias + oc) : _mm512_setzero_ps();
      _mm512_store_ps(out[0], _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s0[0], s0[1]), s0[2]), b));
      _mm512_store_ps(out[1], _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s0[1], s0[2]), s0[3]), b));
      _mm512_store_ps(out[2], _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s1[0], s1[1]), s1[2]), b));
      _mm512_store_ps(out[3], _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s1[1], s1[2]), s1[3]), b));
      float* corner = y_img + oc * P + oh * q.W_out + ow;
      for (int64_t j = 0; j < 16; ++j) {
        float* p = corner + j * P;
        p[0] = out[0][j];
        if (full) {
          p[1] = out[1][j], p[q.W_out] = out[2][j], p[q.W_out + 1] = out[3][j];
          continue;
        }
        if (ow + 1 < q.W_out) p[1] = out[1][j];  // a tile on the last row or column, cut off
        if (oh + 1 < q.H_out) p[q.W_out] = out[2][j];
      }
    }
  }
}

// ---- The AVX2 variant: any width, the image's tiles in blocks --------------------------------
// The tiles t = ty tiles_w + tx of the image are taken in blocks of consecutive t; for each
// block, V[xi][ic][t] (the input's transform, 8 tiles of a row to a vector), the 16 products
// M[xi][oc][t] = sum over ic of U[xi][ic][oc] V[xi][ic][t], and the output's transform, 8 tiles
// (16 output columns) at a time. Each output is computed from its own tile, in the same order
// of operations whatever the block, the share of channels or the thread.

struct Wide {
  int64_t C_in, H, W, C_out, H_out, W_out, pad_top, pad_left;
  int64_t tiles_h, tiles_w, T;
  int64_t R, Wp;  // the zero-padded input: R rows of Wp floats per channel
  int64_t block;  // tiles per block (a multiple of 8)
};

Wide wide_of(const Shape& x, const Shape& y, const Conv2dGeometry& g, int64_t ocs) {
  Wide q{};
  q.C_in = x[1], q.H = x[2], q.W = x[3];
  q.C_out = y[1], q.H_out = y[2], q.W_out = y[3];
  q.pad_top = g.pad_top, q.pad_left = g.pad_left;
  q.tiles_h = (q.H_out + 1) / 2, q.tiles_w = (q.W_out + 1) / 2, q.T = q.tiles_h * q.tiles_w;
  q.R = 2 * q.tiles_h + 2;
  // A vector of 8 tiles from tile tx reads columns 2 tx .. 2 tx + 17, and tx runs to tiles_w - 1.
  q.Wp = (2 * q.tiles_w + 18 + 7) / 8 * 8;
  // V and M of a block within about 192 KiB (half of L2), the tiles shared evenly between the
  // blocks, in whole vectors.
  const int64_t per_tile = 16 * (q.C_in + ocs) * static_cast<int64_t>(sizeof(float));
  const int64_t fit = std::max<int64_t>(8, (192 << 10) / per_tile);
  const int64_t blocks = (q.T + fit - 1) / fit;
  q.block = ((q.T + blocks - 1) / blocks + 7) / 8 * 8;
  return q;
}

// The even and odd elements of a (elements 0-7) and b (8-15), in order.
__attribute__((target("avx2,fma"), always_inline)) inline __m256 evens(__m256 a, __m256 b) {
  const __m256 s = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0));  // a0 a2 b0 b2 a4 a6 b4 b6
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(s), _MM_SHUFFLE(3, 1, 2, 0)));
}
__attribute__((target("avx2,fma"), always_inline)) inline __m256 odds(__m256 a, __m256 b) {
  const __m256 s = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
  return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(s), _MM_SHUFFLE(3, 1, 2, 0)));
}

// B^T d's rows for 8 consecutive columns from c of 4 rows ld apart: r0 - r2, r1 + r2, r2 - r1,
// r1 - r3.
__attribute__((target("avx2,fma"), always_inline)) inline void row_combinations(const float* c,
                                                                                int64_t ld,
                                                                                __m256* out) {
  const __m256 r0 = _mm256_loadu_ps(c), r1 = _mm256_loadu_ps(c + ld);
  const __m256 r2 = _mm256_loadu_ps(c + 2 * ld), r3 = _mm256_loadu_ps(c + 3 * ld);
  out[0] = _mm256_sub_ps(r0, r2), out[1] = _mm256_add_ps(r1, r2);
  out[2] = _mm256_sub_ps(r2, r1), out[3] = _mm256_sub_ps(r1, r3);
}

// V[xi][ic][t - t0] for the tiles [t0, t1), ld floats per (xi, ic) row.
__attribute__((target("avx2,fma"), noinline)) void input_transform(const float* xp, const Wide& q,
                                                                   int64_t t0, int64_t t1, float* V,
                                                                   int64_t ld) {
  for (int64_t ic = 0; ic < q.C_in; ++ic) {
    for (int64_t ty = t0 / q.tiles_w; ty * q.tiles_w < t1; ++ty) {
      const int64_t first = std::max(t0 - ty * q.tiles_w, int64_t{0});
      const int64_t last = std::min(t1 - ty * q.tiles_w, q.tiles_w);
      const float* r = xp + (ic * q.R + 2 * ty) * q.Wp;
      for (int64_t tx = first; tx < last; tx += 8) {
        const float* c = r + 2 * tx;
        // The rows' combinations B^T d, at columns 2 tx .. 2 tx + 15 (a, b) and 2 tx + 2 ..
        // 2 tx + 17 (a2, b2).
        __m256 ta[4], tb[4], ta2[4], tb2[4];
        row_combinations(c, q.Wp, ta), row_combinations(c + 8, q.Wp, tb);
        row_combinations(c + 2, q.Wp, ta2), row_combinations(c + 10, q.Wp, tb2);
        float* dst = V + (ic * ld) + ty * q.tiles_w + tx - t0;
        for (int i = 0; i < 4; ++i) {
          // Tile k of the vector: e = column 2 k, o = 2 k + 1, e1 = 2 k + 2, o1 = 2 k + 3.
          const __m256 e = evens(ta[i], tb[i]), o = odds(ta[i], tb[i]);
          const __m256 e1 = evens(ta2[i], tb2[i]), o1 = odds(ta2[i], tb2[i]);
          const __m256 v[4] = {_mm256_sub_ps(e, e1), _mm256_add_ps(o, e1), _mm256_sub_ps(e1, o),
                               _mm256_sub_ps(o, o1)};
          // Whole vectors: lanes past the row's last tile land on the next row's first tiles,
          // which are stored after them, or past the block's last tile, in the row's 8 spare
          // floats (masked stores cost far more on AMD's processors).
          for (int j = 0; j < 4; ++j) _mm256_storeu_ps(dst + (i * 4 + j) * q.C_in * ld, v[j]);
        }
      }
    }
  }
}

// M[oc .. oc + NO)[t .. t + 8 NV) of one xi: NO x NV accumulators, NV loads of V and NO
// broadcasts of U per input channel.
template <int NO, int NV>
__attribute__((target("avx2,fma"), always_inline)) inline void product_wide_block(
    const float* V, int64_t ld, int64_t t, const float* U, int64_t C_out, int64_t oc, int64_t C_in,
    float* M) {
  __m256 acc[NO][NV];
  for (int o = 0; o < NO; ++o) {
    for (int v = 0; v < NV; ++v) acc[o][v] = _mm256_setzero_ps();
  }
  for (int64_t ic = 0; ic < C_in; ++ic) {
    __m256 x[NV];
    for (int v = 0; v < NV; ++v) x[v] = _mm256_loadu_ps(V + ic * ld + t + 8 * v);
    for (int o = 0; o < NO; ++o) {
      const __m256 u = _mm256_broadcast_ss(U + ic * C_out + oc + o);
      for (int v = 0; v < NV; ++v) acc[o][v] = _mm256_fmadd_ps(u, x[v], acc[o][v]);
    }
  }
  for (int o = 0; o < NO; ++o) {
    for (int v = 0; v < NV; ++v) _mm256_storeu_ps(M + o * ld + t + 8 * v, acc[o][v]);
  }
}

// The last oc1 - oc < NO channels: the block of that height, chosen at compile time.
template <int NO, int NV>
__attribute__((target("avx2,fma"), always_inline)) inline void product_wide_rest(
    const float* V, int64_t ld, int64_t t, const float* U, int64_t C_out, int64_t oc, int64_t oc1,
    int64_t C_in, float* M) {
  if constexpr (NO > 0) {
    if (oc1 - oc == NO) return product_wide_block<NO, NV>(V, ld, t, U, C_out, oc, C_in, M);
    product_wide_rest<NO - 1, NV>(V, ld, t, U, C_out, oc, oc1, C_in, M);
  }
}

// M[oc0 .. oc1)[t .. t + 8 NV) of one xi, in blocks of 12 / NV channels (12 accumulators).
template <int NV>
__attribute__((target("avx2,fma"), noinline)) void product_wide_columns(const float* V, int64_t ld,
                                                                        int64_t t, const float* U,
                                                                        int64_t C_out, int64_t oc0,
                                                                        int64_t oc1, int64_t C_in,
                                                                        float* M) {
  constexpr int NO = 12 / NV;
  int64_t oc = oc0;
  for (; oc + NO <= oc1; oc += NO)
    product_wide_block<NO, NV>(V, ld, t, U, C_out, oc, C_in, M + (oc - oc0) * ld);
  product_wide_rest<NO - 1, NV>(V, ld, t, U, C_out, oc, oc1, C_in, M + (oc - oc0) * ld);
}

// y[oc][rows 2 ty, 2 ty + 1][columns 2 tx ..] = A^T m A + bias for the tiles [t0, t1), from
// M[xi][oc - oc0][t - t0].
__attribute__((target("avx2,fma"), noinline)) void output_transform(const float* M, int64_t ld,
                                                                    const Wide& q, int64_t t0,
                                                                    int64_t t1, const float* bias,
                                                                    int64_t oc0, int64_t oc1,
                                                                    float* y_img) {
  const int64_t P = q.H_out * q.W_out, xi_stride = (oc1 - oc0) * ld;
  for (int64_t oc = oc0; oc < oc1; ++oc) {
    const __m256 b = _mm256_set1_ps(bias ? bias[oc] : 0.0f);
    const float* m_oc = M + (oc - oc0) * ld;
    for (int64_t ty = t0 / q.tiles_w; ty * q.tiles_w < t1; ++ty) {
      const int64_t first = std::max(t0 - ty * q.tiles_w, int64_t{0});
      const int64_t last = std::min(t1 - ty * q.tiles_w, q.tiles_w);
      const int64_t oh = 2 * ty;
      for (int64_t tx = first; tx < last; tx += 8) {
        const float* src = m_oc + ty * q.tiles_w + tx - t0;
        __m256 m[16];
        for (int xi = 0; xi < 16; ++xi) m[xi] = _mm256_loadu_ps(src + xi * xi_stride);
        __m256 s0[4], s1[4];
        for (int c = 0; c < 4; ++c) {
          s0[c] = _mm256_add_ps(_mm256_add_ps(m[c], m[4 + c]), m[8 + c]);
          s1[c] = _mm256_sub_ps(_mm256_sub_ps(m[4 + c], m[8 + c]), m[12 + c]);
        }
        // Rows 2 ty (y0: even columns, y1: odd) and 2 ty + 1 (y2, y3).
        const __m256 y0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s0[0], s0[1]), s0[2]), b);
        const __m256 y1 = _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(s0[1], s0[2]), s0[3]), b);
        const __m256 y2 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s1[0], s1[1]), s1[2]), b);
        const __m256 y3 = _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(s1[1], s1[2]), s1[3]), b);
        const int64_t ow = 2 * tx, width = std::min(2 * (last - tx), q.W_out - ow);
        const __m256 rows[2][2] = {{y0, y1}, {y2, y3}};
        for (int r = 0; r < 2 && oh + r < q.H_out; ++r) {
          // Interleaved: columns 2 tx, 2 tx + 1, ..., 2 tx + 15.
          const __m256 lo = _mm256_unpacklo_ps(rows[r][0], rows[r][1]);
          const __m256 hi = _mm256_unpackhi_ps(rows[r][0], rows[r][1]);
          const __m256 first8 = _mm256_permute2f128_ps(lo, hi, 0x20);
          const __m256 next8 = _mm256_permute2f128_ps(lo, hi, 0x31);
          float* out = y_img + oc * P + (oh + r) * q.W_out + ow;
          if (width >= 16) {
            _mm256_storeu_ps(out, first8), _mm256_storeu_ps(out + 8, next8);
            continue;
          }
          // The row's or the block's end: 8, 4, 2 and 1 floats at a time (a whole vector would
          // run into outputs that other blocks or threads write).
          int64_t n = width;
          __m256 rest = first8;
          if (n >= 8) _mm256_storeu_ps(out, first8), out += 8, n -= 8, rest = next8;
          __m128 part = _mm256_castps256_ps128(rest);
          if (n >= 4)
            _mm_storeu_ps(out, part), out += 4, n -= 4, part = _mm256_extractf128_ps(rest, 1);
          if (n >= 2) {
            _mm_storel_pi(reinterpret_cast<__m64*>(out), part);
            out += 2, n -= 2, part = _mm_movehl_ps(part, part);
          }
          if (n >= 1) _mm_store_ss(out, part);
        }
      }
    }
  }
}

__attribute__((target("avx2,fma"))) void image_wide(const float* x_img, const Shape& x,
                                                    const Conv2dGeometry& g, const Shape& y,
                                                    const std::vector<float>& U_buf,
                                                    const float* bias, int64_t oc0, int64_t oc1,
                                                    float* y_img) {
  const int64_t ocs = oc1 - oc0;
  const Wide q = wide_of(x, y, g, ocs);
  thread_local std::vector<float> xp_buf, v_buf, m_buf;
  // The input, zero-padded: rows and columns past the input (and the padding) read as 0.
  float* xp = scratch(xp_buf, q.C_in * q.R * q.Wp);
  // Input rows and columns past the last tile's reach are not needed. Rows of vectors (Wp is a
  // multiple of 8): zeros, then the input's row over them, its last vector overlapping the one
  // before (rows are short: calls to memset and memcpy cost more than the copies).
  const int64_t rows = std::min(q.H, q.R - q.pad_top), cols = std::min(q.W, q.Wp - q.pad_left);
  const __m256 zero = _mm256_setzero_ps();
  for (int64_t ic = 0; ic < q.C_in; ++ic) {
    for (int64_t r = 0; r < q.R; ++r) {
      float* row = xp + (ic * q.R + r) * q.Wp;
      for (int64_t c = 0; c < q.Wp; c += 8) _mm256_storeu_ps(row + c, zero);
      const int64_t h = r - q.pad_top;
      if (h < 0 || h >= rows || cols <= 0) continue;
      copy_row_avx2(x_img + (ic * q.H + h) * q.W, cols, row + q.pad_left);
    }
  }
  // Per (xi, channel) row of V and M: the block's tiles, and 8 floats that the last vector of
  // tiles of a row may run on into (the output transform reads them, then drops them).
  const int64_t ld = q.block + 8;
  float* V = scratch(v_buf, 16 * q.C_in * ld);
  float* M = scratch(m_buf, 16 * ocs * ld);
  const float* U = U_buf.data();
  for (int64_t t0 = 0; t0 < q.T; t0 += q.block) {
    const int64_t t1 = std::min(q.T, t0 + q.block), n = (t1 - t0 + 7) / 8 * 8;
    input_transform(xp, q, t0, t1, V, ld);
    for (int xi = 0; xi < 16; ++xi) {
      const float* V_xi = V + xi * q.C_in * ld;
      const float* U_xi = U + xi * q.C_in * q.C_out;
      float* M_xi = M + xi * ocs * ld;
      int64_t t = 0;
      for (; t + 24 <= n; t += 24)
        product_wide_columns<3>(V_xi, ld, t, U_xi, q.C_out, oc0, oc1, q.C_in, M_xi);
      if (n - t == 16) product_wide_columns<2>(V_xi, ld, t, U_xi, q.C_out, oc0, oc1, q.C_in, M_xi);
      if (n - t == 8) product_wide_columns<1>(V_xi, ld, t, U_xi, q.C_out, oc0, oc1, q.C_in, M_xi);
    }
    output_transform(M, ld, q, t0, t1, bias, oc0, oc1, y_img);
  }
}

}  // namespace

void winograd_image(const float* x_img, const Shape& x, const Conv2dGeometry& g, const Shape& y,
                    const std::vector<float>& U, const float* bias, int64_t oc0, int64_t oc1,
                    float* y_img) {
  if (rows512_applies(Shape{y[1], x[1], 3, 3}, y)) {
    return image_rows512(x_img, x, g, y, U, bias, oc0, oc1, y_img);
  }
  image_wide(x_img, x, g, y, U, bias, oc0, oc1, y_img);
}

}  // namespace cnn::fast
