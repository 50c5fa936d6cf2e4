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

// GCC 12's AVX-512 gathers and permutes start from an undefined vector, which its flow analysis
// reports as possibly uninitialised (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace cnn::fast {

namespace {

constexpr int64_t kMaxTilesW = 7;  // 2 * 7 + 2 = 16 padded columns: one vector per input row

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

float* grow(std::vector<float>& buf, int64_t n) {
  if (static_cast<int64_t>(buf.size()) < n) buf.resize(static_cast<std::size_t>(n));
  return buf.data();
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

bool winograd_applies(const Shape& x, const Shape& w, const Conv2dGeometry& g, const Shape& y) {
  return detail::use_avx512() && x.size() == 4 && w[2] == 3 && w[3] == 3 && g.stride.all(1) &&
         g.dilation.all(1) && g.groups == 1 && w[0] % 16 == 0 && (y[3] + 1) / 2 <= kMaxTilesW;
}

__attribute__((target("avx512f"))) void winograd_weights(const Tensor& w, int64_t oc0, int64_t oc1,
                                                         std::vector<float>& U_buf) {
  const int64_t C_out = w.size(0), C_in = w.size(1);
  float* U = grow(U_buf, 16 * C_in * C_out);
  // Per input channel and 16 output channels: the 9 taps gathered across the 16 channels.
  const __m512i lanes =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(static_cast<int>(C_in * 9)));
  const __m512 half = _mm512_set1_ps(0.5f);
  for (int64_t ic = 0; ic < C_in; ++ic) {
    for (int64_t oc = oc0; oc < oc1; oc += 16) {
      const float* base = w.data() + (oc * C_in + ic) * 9;
      __m512 g[9];
      for (int k = 0; k < 9; ++k) g[k] = _mm512_i32gather_ps(lanes, base + k, 4);
      __m512 t[4][3];  // G g
      for (int c = 0; c < 3; ++c) {
        t[0][c] = g[c];
        t[1][c] = _mm512_mul_ps(half, _mm512_add_ps(_mm512_add_ps(g[c], g[3 + c]), g[6 + c]));
        t[2][c] = _mm512_mul_ps(half, _mm512_add_ps(_mm512_sub_ps(g[c], g[3 + c]), g[6 + c]));
        t[3][c] = g[6 + c];
      }
      for (int r = 0; r < 4; ++r) {  // (G g) G^T
        const __m512 u[4] = {
            t[r][0], _mm512_mul_ps(half, _mm512_add_ps(_mm512_add_ps(t[r][0], t[r][1]), t[r][2])),
            _mm512_mul_ps(half, _mm512_add_ps(_mm512_sub_ps(t[r][0], t[r][1]), t[r][2])), t[r][2]};
        for (int c = 0; c < 4; ++c)
          _mm512_storeu_ps(U + ((r * 4 + c) * C_in + ic) * C_out + oc, u[c]);
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
  constexpr std::size_t kEntries = 4;  // a model's eligible layers, reused round robin
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

__attribute__((target("avx512f"))) void winograd_image(const float* x_img, const Shape& x,
                                                       const Conv2dGeometry& g, const Shape& y,
                                                       const std::vector<float>& U_buf,
                                                       const float* bias, int64_t oc0, int64_t oc1,
                                                       float* y_img) {
  const Geometry q = geometry_of(x, y, g);
  const int64_t T = q.tiles, ocs = oc1 - oc0, R = q.rows();
  thread_local std::vector<float> xp_buf, v_buf, m_buf;
  // The input, zero-padded to whole tiles: R rows of 16 floats per channel.
  float* xp = grow(xp_buf, q.C_in * R * 16);
  std::fill(xp, xp + q.C_in * R * 16, 0.0f);
  for (int64_t ic = 0; ic < q.C_in; ++ic) {
    for (int64_t h = 0; h < q.H; ++h) {
      const float* in = x_img + (ic * q.H + h) * q.W;
      std::copy(in, in + q.W, xp + (ic * R + h + q.pad_top) * 16 + q.pad_left);
    }
  }
  // V[xi][ic][t] = (B^T d B)[xi] for every tile: a row of tiles at a time, columns split into
  // even and odd lanes so that the tiles of the row are the lanes of a vector.
  float* V = grow(v_buf, 16 * q.C_in * T);
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
  float* M = grow(m_buf, 16 * T * ocs);
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

}  // namespace cnn::fast
