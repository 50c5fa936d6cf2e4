// Direct AVX2 convolution for stride 1 (see direct_conv.h).
#include "direct_conv.h"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>

#include "../../core/cpu.h"
#include "copy_row.h"
#include "scratch.h"

namespace cnn::fast {

namespace {

constexpr int64_t kOc = 4;    // output channels per block (4 broadcasts)
constexpr int64_t kVec = 8;   // floats per AVX2 vector
constexpr int kTileVecs = 3;  // vectors of positions per tile: 4 x 3 = 12 accumulators

struct Geometry {
  int64_t G, C_in, Cg, K_h, K_w, H, W, H_out, W_out;
  int64_t Hp, Wp;    // the zero-padded input plane
  int64_t S_h, S_w;  // the stride
  // With a stride the padded plane is split into S_h x S_w phase planes of Hq x Wq, phase (a, b)
  // holding the padded rows a, a + S_h, ... and columns b, b + S_w, ...: an output row then reads
  // each tap's row of one phase plane at unit stride, as with stride 1 (one phase, Hq = Hp).
  int64_t Hq, Wq;
  int64_t K() const { return C_in * K_h * K_w; }
  int64_t phase() const { return Hq * Wq; }
  int64_t plane() const { return S_h * S_w * phase(); }  // one channel's phase planes
  // Wide positions: output (oh, ow) at q = oh Wq + ow; the last one is (H_out - 1, W_out - 1).
  int64_t Q() const { return (H_out - 1) * Wq + W_out; }
  int64_t Qv() const { return (Q() + kVec - 1) / kVec * kVec; }  // computed, whole vectors
};

Geometry geometry_of(const Shape& x, const Shape& w, const Shape& y, const Conv2dGeometry& g) {
  Geometry q{};
  q.G = g.groups, q.C_in = w[1], q.Cg = w[0] / g.groups, q.K_h = w[2], q.K_w = w[3];
  q.H = x[2], q.W = x[3], q.H_out = y[2], q.W_out = y[3];
  q.Hp = q.H + g.pad_top + g.pad_bottom, q.Wp = q.W + g.pad_left + g.pad_right;
  q.S_h = g.stride.h, q.S_w = g.stride.w;
  q.Hq = (q.Hp + q.S_h - 1) / q.S_h, q.Wq = (q.Wp + q.S_w - 1) / q.S_w;
  return q;
}

// The block of 4 output channels (weights wp: K taps x 4) at the V x 8 wide positions from
// in[0]: acc[j] = bias[j] + the taps in order, stored at out[j * ld ...].
template <int V>
__attribute__((target("avx2,fma"), always_inline)) inline void tile(const float* in,
                                                                    const int64_t* off, int64_t K,
                                                                    const float* wp,
                                                                    const float* bias4, float* out,
                                                                    int64_t ld) {
  __m256 acc[kOc][V];
  for (int j = 0; j < kOc; ++j) {
    for (int v = 0; v < V; ++v) acc[j][v] = _mm256_broadcast_ss(bias4 + j);
  }
  for (int64_t k = 0; k < K; ++k) {
    const float* s = in + off[k];
    __m256 xv[V];
    for (int v = 0; v < V; ++v) xv[v] = _mm256_loadu_ps(s + kVec * v);
    const float* wk = wp + kOc * k;
    for (int j = 0; j < kOc; ++j) {
      const __m256 wj = _mm256_broadcast_ss(wk + j);
      for (int v = 0; v < V; ++v) acc[j][v] = _mm256_fmadd_ps(xv[v], wj, acc[j][v]);
    }
  }
  for (int j = 0; j < kOc; ++j) {
    for (int v = 0; v < V; ++v) _mm256_storeu_ps(out + j * ld + kVec * v, acc[j][v]);
  }
}

// Every wide position of one block: whole tiles of 3 vectors, the last one moved back to end at
// Qv (it recomputes some positions of the one before, the same values), so that no narrower tile
// is needed unless Qv itself is narrower.
__attribute__((target("avx2,fma"))) void block_positions(const float* in, const int64_t* off,
                                                         int64_t K, const float* wp,
                                                         const float* bias4, float* wide,
                                                         int64_t Qv) {
  constexpr int64_t kTile = kTileVecs * kVec;
  if (Qv < kTile) {
    if (Qv == 2 * kVec) tile<2>(in, off, K, wp, bias4, wide, Qv);
    if (Qv == kVec) tile<1>(in, off, K, wp, bias4, wide, Qv);
    return;
  }
  for (int64_t q0 = 0;; q0 += kTile) {
    q0 = std::min(q0, Qv - kTile);
    tile<kTileVecs>(in + q0, off, K, wp, bias4, wide + q0, Qv);
    if (q0 + kTile == Qv) break;
  }
}

// The other kernel, for small outputs whose rows would drop many positions: 16 output channels
// (two vectors, weights wp: K taps x 16) at 6 pixels, given by their wide positions base[i],
// each a broadcast (6 broadcasts and 2 vector loads per 12 FMAs). Each output is bias + the taps
// in order, as in tile(): the two kernels give the same numbers. out: (6, 16). The accumulators
// are named, not an array: GCC 12 stores an array of them to the stack at every step.
constexpr int kPixels = 6;

__attribute__((target("avx2,fma"))) void block_pixels(const float* in, const int64_t* base,
                                                      const int64_t* off, int64_t K,
                                                      const float* wp, const float* bias16,
                                                      float* out) {
  const __m256 b0 = _mm256_loadu_ps(bias16), b1 = _mm256_loadu_ps(bias16 + kVec);
  __m256 a00 = b0, a01 = b1, a10 = b0, a11 = b1, a20 = b0, a21 = b1;
  __m256 a30 = b0, a31 = b1, a40 = b0, a41 = b1, a50 = b0, a51 = b1;
  const float *p0 = in + base[0], *p1 = in + base[1], *p2 = in + base[2];
  const float *p3 = in + base[3], *p4 = in + base[4], *p5 = in + base[5];
  for (int64_t k = 0; k < K; ++k) {
    const __m256 w0 = _mm256_loadu_ps(wp + 2 * kVec * k);
    const __m256 w1 = _mm256_loadu_ps(wp + 2 * kVec * k + kVec);
    const int64_t o = off[k];
    __m256 v = _mm256_broadcast_ss(p0 + o);
    a00 = _mm256_fmadd_ps(v, w0, a00), a01 = _mm256_fmadd_ps(v, w1, a01);
    v = _mm256_broadcast_ss(p1 + o);
    a10 = _mm256_fmadd_ps(v, w0, a10), a11 = _mm256_fmadd_ps(v, w1, a11);
    v = _mm256_broadcast_ss(p2 + o);
    a20 = _mm256_fmadd_ps(v, w0, a20), a21 = _mm256_fmadd_ps(v, w1, a21);
    v = _mm256_broadcast_ss(p3 + o);
    a30 = _mm256_fmadd_ps(v, w0, a30), a31 = _mm256_fmadd_ps(v, w1, a31);
    v = _mm256_broadcast_ss(p4 + o);
    a40 = _mm256_fmadd_ps(v, w0, a40), a41 = _mm256_fmadd_ps(v, w1, a41);
    v = _mm256_broadcast_ss(p5 + o);
    a50 = _mm256_fmadd_ps(v, w0, a50), a51 = _mm256_fmadd_ps(v, w1, a51);
  }
  const __m256 acc[] = {a00, a01, a10, a11, a20, a21, a30, a31, a40, a41, a50, a51};
  for (int i = 0; i < 2 * kPixels; ++i) _mm256_storeu_ps(out + kVec * i, acc[i]);
}

// The same on AVX-512, 12 pixels at a time: one vector of the 16 channels' weights and 12
// broadcasts per 12 FMAs (twice the AVX2 kernel's work per instruction). Each output is still
// bias + the taps in order, one fused multiply-add each: the same numbers as block_pixels.
// out: (12, 16), pixel i's channels at out + 16 i, as two of block_pixels' tiles.
constexpr int kPixels512 = 12;

__attribute__((target("avx512f"))) void block_pixels512(const float* in, const int64_t* base,
                                                        const int64_t* off, int64_t K,
                                                        const float* wp, const float* bias16,
                                                        float* out) {
  const __m512 b = _mm512_loadu_ps(bias16);
  __m512 a0 = b, a1 = b, a2 = b, a3 = b, a4 = b, a5 = b, a6 = b, a7 = b, a8 = b, a9 = b, a10 = b,
         a11 = b;
  const float *p0 = in + base[0], *p1 = in + base[1], *p2 = in + base[2], *p3 = in + base[3];
  const float *p4 = in + base[4], *p5 = in + base[5], *p6 = in + base[6], *p7 = in + base[7];
  const float *p8 = in + base[8], *p9 = in + base[9], *p10 = in + base[10], *p11 = in + base[11];
  for (int64_t k = 0; k < K; ++k) {
    const __m512 w = _mm512_loadu_ps(wp + 16 * k);
    const int64_t o = off[k];
    a0 = _mm512_fmadd_ps(_mm512_set1_ps(p0[o]), w, a0);
    a1 = _mm512_fmadd_ps(_mm512_set1_ps(p1[o]), w, a1);
    a2 = _mm512_fmadd_ps(_mm512_set1_ps(p2[o]), w, a2);
    a3 = _mm512_fmadd_ps(_mm512_set1_ps(p3[o]), w, a3);
    a4 = _mm512_fmadd_ps(_mm512_set1_ps(p4[o]), w, a4);
    a5 = _mm512_fmadd_ps(_mm512_set1_ps(p5[o]), w, a5);
    a6 = _mm512_fmadd_ps(_mm512_set1_ps(p6[o]), w, a6);
    a7 = _mm512_fmadd_ps(_mm512_set1_ps(p7[o]), w, a7);
    a8 = _mm512_fmadd_ps(_mm512_set1_ps(p8[o]), w, a8);
    a9 = _mm512_fmadd_ps(_mm512_set1_ps(p9[o]), w, a9);
    a10 = _mm512_fmadd_ps(_mm512_set1_ps(p10[o]), w, a10);
    a11 = _mm512_fmadd_ps(_mm512_set1_ps(p11[o]), w, a11);
  }
  const __m512 acc[] = {a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, a10, a11};
  for (int i = 0; i < kPixels512; ++i) _mm512_storeu_ps(out + 16 * i, acc[i]);
}

// Two blocks of 16 channels (weights wa and wb) at 6 pixels on AVX-512: 2 vector loads and 6
// broadcasts per 12 FMAs, and 6 pointers (12 overflowed the integer registers above). out: block
// a's (6, 16) tile, then block b's. The same numbers as block_pixels.
__attribute__((target("avx512f"))) void block_pixels512x2(const float* in, const int64_t* base,
                                                          const int64_t* off, int64_t K,
                                                          const float* wa, const float* wb,
                                                          const float* bias32, float* out) {
  const __m512 ba = _mm512_loadu_ps(bias32), bb = _mm512_loadu_ps(bias32 + 16);
  __m512 a0 = ba, a1 = ba, a2 = ba, a3 = ba, a4 = ba, a5 = ba;
  __m512 b0 = bb, b1 = bb, b2 = bb, b3 = bb, b4 = bb, b5 = bb;
  const float *p0 = in + base[0], *p1 = in + base[1], *p2 = in + base[2];
  const float *p3 = in + base[3], *p4 = in + base[4], *p5 = in + base[5];
  for (int64_t k = 0; k < K; ++k) {
    const __m512 u = _mm512_loadu_ps(wa + 16 * k), v = _mm512_loadu_ps(wb + 16 * k);
    const int64_t o = off[k];
    __m512 x = _mm512_set1_ps(p0[o]);
    a0 = _mm512_fmadd_ps(x, u, a0), b0 = _mm512_fmadd_ps(x, v, b0);
    x = _mm512_set1_ps(p1[o]);
    a1 = _mm512_fmadd_ps(x, u, a1), b1 = _mm512_fmadd_ps(x, v, b1);
    x = _mm512_set1_ps(p2[o]);
    a2 = _mm512_fmadd_ps(x, u, a2), b2 = _mm512_fmadd_ps(x, v, b2);
    x = _mm512_set1_ps(p3[o]);
    a3 = _mm512_fmadd_ps(x, u, a3), b3 = _mm512_fmadd_ps(x, v, b3);
    x = _mm512_set1_ps(p4[o]);
    a4 = _mm512_fmadd_ps(x, u, a4), b4 = _mm512_fmadd_ps(x, v, b4);
    x = _mm512_set1_ps(p5[o]);
    a5 = _mm512_fmadd_ps(x, u, a5), b5 = _mm512_fmadd_ps(x, v, b5);
  }
  const __m512 acc[] = {a0, a1, a2, a3, a4, a5, b0, b1, b2, b3, b4, b5};
  for (int i = 0; i < 2 * kPixels; ++i) _mm512_storeu_ps(out + 16 * i, acc[i]);
}

// The kernel's tile (pixel i's 16 channels at wide + 16 i) into the channels' planes: channels
// [c0, c1) of the block, pixels [0, np) from y (channel c at y + c P), eight channels at a time
// by an 8x8 transpose in registers (one channel's pixels in each vector), each stored as 4 + 2
// floats (a whole vector would run into pixels that the next tile or another channel writes).
__attribute__((target("avx2,fma"))) void store_pixels(const float* wide, int c0, int c1, int np,
                                                      float* y, int64_t P) {
  for (int half = 0; half < 2; ++half) {
    const int lo = std::max<int>(c0, half * kVec), hi = std::min<int>(c1, (half + 1) * kVec);
    if (lo >= hi) continue;
    __m256 r[8];
    for (int i = 0; i < 8; ++i) {
      r[i] = i < kPixels ? _mm256_loadu_ps(wide + 2 * kVec * i + half * kVec) : _mm256_setzero_ps();
    }
    // Rows (pixels) x lanes (channels) -> rows (channels) x lanes (pixels).
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 ch[8] = {
        _mm256_permute2f128_ps(u0, u4, 0x20), _mm256_permute2f128_ps(u1, u5, 0x20),
        _mm256_permute2f128_ps(u2, u6, 0x20), _mm256_permute2f128_ps(u3, u7, 0x20),
        _mm256_permute2f128_ps(u0, u4, 0x31), _mm256_permute2f128_ps(u1, u5, 0x31),
        _mm256_permute2f128_ps(u2, u6, 0x31), _mm256_permute2f128_ps(u3, u7, 0x31)};
    for (int c = lo; c < hi; ++c) {
      float* dst = y + static_cast<int64_t>(c) * P;
      const __m256 v = ch[c - half * kVec];
      if (np == kPixels) {
        _mm_storeu_ps(dst, _mm256_castps256_ps128(v));
        _mm_storel_pi(reinterpret_cast<__m64*>(dst + 4), _mm256_extractf128_ps(v, 1));
        continue;
      }
      alignas(32) float t[8];
      _mm256_store_ps(t, v);
      for (int i = 0; i < np; ++i) dst[i] = t[i];
    }
  }
}

// An input row of W floats into a padded row of Wp: pad zeros, the row, zeros to Wp, without
// calls to memset or memcpy (copy_row.h).
__attribute__((target("avx2,fma"))) void pad_row(const float* src, int64_t W, int64_t pad,
                                                 int64_t Wp, float* row) {
  for (int64_t c = 0; c < pad; ++c) row[c] = 0.0f;
  copy_row_avx2(src, W, row + pad);
  for (int64_t c = pad + W; c < Wp; ++c) row[c] = 0.0f;
}

// One channel's wide rows (H_out rows of Wq positions) into its plane of H_out x W_out outputs,
// dropping each row's last Wq - W_out positions.
__attribute__((target("avx2,fma"))) void unwide_rows(const float* wide, const Geometry& q,
                                                     float* plane) {
  for (int64_t oh = 0; oh < q.H_out; ++oh) {
    copy_row_avx2(wide + oh * q.Wq, q.W_out, plane + oh * q.W_out);
  }
}

// An input row of W floats into the two phase rows of stride 2 along the width: padded column
// pc = pad + w goes to phase pc % 2 (even, odd), at pc / 2. Sixteen columns at a time from the
// first w with pc even: their even and odd lanes are one vector of each row.
__attribute__((target("avx2,fma"))) void deal_pairs(const float* src, int64_t W, int64_t pad,
                                                    float* even, float* odd) {
  auto one = [&](int64_t w) {
    const int64_t pc = pad + w;
    (pc % 2 ? odd : even)[pc / 2] = src[w];
  };
  const int64_t first = pad % 2;  // the first w with pc even
  if (W - first < 16) {
    for (int64_t w = 0; w < W; ++w) one(w);
    return;
  }
  if (first) one(0);
  // The last block starts at an even pc too, overlapping the one before (the same values); a
  // column after it (when it had to start one earlier) goes alone.
  const int64_t last = W - 16 - (pad + W) % 2;
  for (int64_t w = first;; w += 16) {
    if (w > last) w = last;
    const __m256 lo = _mm256_loadu_ps(src + w), hi = _mm256_loadu_ps(src + w + 8);
    const __m256 ev = _mm256_castpd_ps(_mm256_permute4x64_pd(
        _mm256_castps_pd(_mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0))), 0xd8));
    const __m256 od = _mm256_castpd_ps(_mm256_permute4x64_pd(
        _mm256_castps_pd(_mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1))), 0xd8));
    const int64_t j = (pad + w) / 2;
    _mm256_storeu_ps(even + j, ev);
    _mm256_storeu_ps(odd + j, od);
    if (w == last) break;
  }
  if (last + 16 < W) one(W - 1);
}

// The wide positions of the np pixels from p0 in base[0, tile), the last one repeated past np:
// one division per tile, then steps along the row (a division per pixel cost a fifth of the
// kernel's time on small layers).
void pixel_positions(int64_t p0, int np, int tile, const Geometry& q, int64_t* base) {
  int64_t oh = p0 / q.W_out, ow = p0 - oh * q.W_out;
  for (int i = 0; i < tile; ++i) {
    if (i >= np) {
      base[i] = base[std::max(np - 1, 0)];
      continue;
    }
    base[i] = oh * q.Wq + ow;
    if (++ow == q.W_out) ow = 0, ++oh;
  }
}

thread_local std::vector<float> tls_padded, tls_wide;
thread_local std::vector<int64_t> tls_offsets;

}  // namespace

bool direct_conv_applies(const Shape& x, const Shape& w, const Shape& y, const Conv2dGeometry& g) {
  if (g.stride.h > 4 || g.stride.w > 4 || !detail::use_avx2_fma()) return false;
  // A stride of at most 4, and phase planes at most about twice the output's size in each
  // direction: a padding or dilation far beyond the output (which a model file may declare) would
  // make the padded copy huge and the rows mostly dropped positions. im2col takes those.
  const Geometry q = geometry_of(x, w, y, g);
  return q.Hq <= 2 * q.H_out + 8 && q.Wq <= 2 * q.W_out + 8;
}

// Packs weight(oc, k) for C_out = groups * Cg channels of K taps each, in blocks of B channels.
template <class Weight>
void pack(int64_t C_out, int64_t groups, int64_t K, int B, Weight weight,
          std::vector<float>& packed) {
  const int64_t Cg = C_out / groups, blocks = (Cg + B - 1) / B;
  packed.assign(static_cast<std::size_t>(groups * blocks * K * B), 0.0f);
  for (int64_t gi = 0; gi < groups; ++gi) {
    for (int64_t oc = 0; oc < Cg; ++oc) {
      float* dst = packed.data() + (gi * blocks + oc / B) * K * B + oc % B;
      for (int64_t k = 0; k < K; ++k) dst[k * B] = weight(gi * Cg + oc, k);
    }
  }
}

int direct_conv_block(const Shape& x, const Shape& w, const Shape& y, const Conv2dGeometry& g) {
  const Geometry q = geometry_of(x, w, y, g);
  if (q.Cg % (2 * kVec) != 0) return kOc;
  const int64_t tile = kTileVecs * kVec, Qv = q.Qv(), P = q.H_out * q.W_out;
  const int64_t rows = Qv <= tile ? Qv : (Qv + tile - 1) / tile * tile;
  const int64_t pixels = P <= kPixels ? P : (P + kPixels - 1) / kPixels * kPixels;
  // Each pixel tile's outputs are written one by one: with few taps that costs more than the
  // dropped positions save (the first layers of the shipped models, 9 to 27 taps, measured 2x
  // slower; 144 taps, even).
  return pixels < rows && q.K() >= 64 ? 2 * kVec : kOc;
}

void direct_weights_transposed(const Tensor& w, int64_t groups, int block,
                               std::vector<float>& packed) {
  // w (G Cg, C_in, K_h, K_w) -> wt (G C_in, Cg, K_h, K_w), wt[g C_in + i][o][a][b] =
  // w[g Cg + o][i][K_h - 1 - a][K_w - 1 - b].
  const int64_t Cg = w.size(0) / groups, C_in = w.size(1), K_h = w.size(2), K_w = w.size(3);
  const int64_t taps = K_h * K_w;
  const float* src = w.data();
  pack(
      groups * C_in, groups, Cg * taps, block,
      [&](int64_t oc, int64_t k) {
        const int64_t gi = oc / C_in, i = oc % C_in, o = k / taps, tap = k % taps;
        return src[((gi * Cg + o) * C_in + i) * taps + (taps - 1 - tap)];
      },
      packed);
}

bool direct_conv_backward_geometry(const Shape& w, const Conv2dGeometry& g, Conv2dGeometry* gt,
                                   Shape* wt) {
  if (!g.stride.all(1)) return false;
  const int64_t reach_h = g.dilation.h * (w[2] - 1), reach_w = g.dilation.w * (w[3] - 1);
  *gt = g;
  gt->pad_top = reach_h - g.pad_top, gt->pad_bottom = reach_h - g.pad_bottom;
  gt->pad_left = reach_w - g.pad_left, gt->pad_right = reach_w - g.pad_right;
  *wt = {g.groups * w[1], w[0] / g.groups, w[2], w[3]};
  return gt->pad_top >= 0 && gt->pad_bottom >= 0 && gt->pad_left >= 0 && gt->pad_right >= 0;
}

const std::vector<float>& direct_weights_cached(const Tensor& w, int64_t groups, int block) {
  struct Entry {
    const float* data = nullptr;
    Shape shape;
    int64_t groups = 0;
    int block = 0;
    std::vector<float> weights, packed;
  };
  constexpr std::size_t kEntries = 16;  // a model's convolutions, reused round robin
  thread_local std::array<Entry, kEntries> cache;
  thread_local std::size_t next = 0;
  const auto bytes = static_cast<std::size_t>(w.numel()) * sizeof(float);
  for (Entry& e : cache) {
    if (e.data == w.data() && e.shape == w.shape() && e.groups == groups && e.block == block &&
        std::memcmp(e.weights.data(), w.data(), bytes) == 0) {
      return e.packed;
    }
  }
  Entry& e = cache[next];
  next = (next + 1) % kEntries;
  e.data = w.data();
  e.shape = w.shape();
  e.groups = groups;
  e.block = block;
  e.weights.assign(w.data(), w.data() + w.numel());
  const int64_t K = w.size(1) * w.size(2) * w.size(3);
  const float* src = w.data();
  pack(
      w.size(0), groups, K, block, [&](int64_t oc, int64_t k) { return src[oc * K + k]; },
      e.packed);
  return e.packed;
}

void direct_conv_image(const float* x_img, const Shape& x, const Shape& w, const Conv2dGeometry& g,
                       const Shape& y, const std::vector<float>& packed, const float* bias,
                       int64_t oc0, int64_t oc1, float* y_img) {
  if (oc1 <= oc0) return;
  const Geometry q = geometry_of(x, w, y, g);
  const int64_t K = q.K(), plane = q.plane(), group_in = q.C_in * plane, Qv = q.Qv();
  const int64_t P = q.H_out * q.W_out;
  // The tap offsets, in the weights' order (ic, kh, kw): tap (kh, kw) reads phase plane
  // (kh D_h mod S_h, kw D_w mod S_w), shifted by kh D_h / S_h rows and kw D_w / S_w columns.
  int64_t* off = scratch(tls_offsets, K);
  int64_t last = 0;  // the largest offset
  for (int64_t ic = 0, k = 0; ic < q.C_in; ++ic) {
    for (int64_t kh = 0; kh < q.K_h; ++kh) {
      const int64_t r = kh * g.dilation.h;
      for (int64_t kw = 0; kw < q.K_w; ++kw, ++k) {
        const int64_t c = kw * g.dilation.w;
        off[k] = ic * plane + ((r % q.S_h) * q.S_w + c % q.S_w) * q.phase() + r / q.S_h * q.Wq +
                 c / q.S_w;
        last = std::max(last, off[k]);
      }
    }
  }
  // The padded copy of the groups [g0, g1] that [oc0, oc1) reads, with zeros after the last for
  // the dropped positions of the last vectors (their loads run up to Qv - 1 + the last offset).
  const int64_t g0 = oc0 / q.Cg, g1 = (oc1 - 1) / q.Cg;
  const int64_t tail = std::max<int64_t>(0, Qv + last - group_in);
  float* padded = scratch(tls_padded, q.G * group_in + tail);
  for (int64_t c = g0 * q.C_in; c < (g1 + 1) * q.C_in; ++c) {
    float* dst = padded + c * plane;
    const float* src = x_img + c * q.H * q.W;
    if (q.S_h == 1 && q.S_w == 1) {  // rows copied whole between their padding
      std::fill(dst, dst + g.pad_top * q.Wp, 0.0f);
      for (int64_t h = 0; h < q.H; ++h) {
        pad_row(src + h * q.W, q.W, g.pad_left, q.Wp, dst + (g.pad_top + h) * q.Wp);
      }
      std::fill(dst + (g.pad_top + q.H) * q.Wp, dst + plane, 0.0f);
      continue;
    }
    // Zeros, then each input row's elements dealt to the phase planes of their padded column.
    std::fill(dst, dst + plane, 0.0f);
    for (int64_t h = 0; h < q.H; ++h) {
      const int64_t r = g.pad_top + h;
      float* phases = dst + (r % q.S_h) * q.S_w * q.phase() + r / q.S_h * q.Wq;
      if (q.S_w == 2) {  // the even and odd padded columns, 16 input columns at a time
        deal_pairs(src + h * q.W, q.W, g.pad_left, phases, phases + q.phase());
        continue;
      }
      for (int64_t b = 0; b < q.S_w; ++b) {
        // Padded columns j = b, b + S_w, ... inside the input: w = j - pad_left in [0, W).
        float* row = phases + b * q.phase();
        const int64_t j0 = b >= g.pad_left ? 0 : (g.pad_left - b + q.S_w - 1) / q.S_w;
        for (int64_t j = j0, w = b + j0 * q.S_w - g.pad_left; w < q.W; ++j, w += q.S_w) {
          row[j] = src[h * q.W + w];
        }
      }
    }
  }
  std::fill(padded + q.G * group_in, padded + q.G * group_in + tail, 0.0f);
  const int B = direct_conv_block(x, w, y, g);
  const int64_t blocks = (q.Cg + B - 1) / B;
  const bool wide512 = B != kOc && detail::use_avx512();
  float* wide = scratch(tls_wide, B == kOc ? kOc * Qv : 2 * kVec * kPixels512);
  int64_t base[kPixels512];
  for (int64_t oc = oc0; oc < oc1;) {
    const int64_t gi = oc / q.Cg, block = (oc - gi * q.Cg) / B;
    const int64_t first = gi * q.Cg + block * B;  // the block's first channel
    const int64_t end = std::min({first + B, (gi + 1) * q.Cg, oc1});
    // On AVX-512, the next block of the group too where this share holds some of it.
    const int64_t end2 = std::min({first + 2 * B, (gi + 1) * q.Cg, oc1});
    const bool pair = wide512 && end2 > first + B;
    float bias_block[4 * kVec] = {};
    for (int64_t j = 0; j < (pair ? 2 * B : B) && block * B + j < q.Cg; ++j) {
      bias_block[j] = bias ? bias[first + j] : 0.0f;
    }
    const float* in = padded + gi * group_in;
    const float* wp = packed.data() + (gi * blocks + block) * K * B;
    if (B == kOc) {
      block_positions(in, off, K, wp, bias_block, wide, Qv);
      for (int64_t c = oc; c < end; ++c) {
        const float* src = wide + (c - first) * Qv;
        float* dst = y_img + c * P;
        unwide_rows(src, q, dst);
      }
      oc = end;
      continue;
    }
    // Tiles of 6 pixels (12 on AVX-512 for one block), the last one moved back to end at P
    // (recomputing the same values).
    const int tile = wide512 && !pair ? kPixels512 : kPixels;
    const int c0 = static_cast<int>(oc - first), c1 = static_cast<int>(end - first);
    float* y_block = y_img + first * P;
    for (int64_t p0 = 0; p0 < P; p0 += tile) {
      // Under a tile's pixels in all, the last one repeated.
      const int np = static_cast<int>(std::min<int64_t>(tile, P));
      p0 = std::min(p0, P - np);
      pixel_positions(p0, np, tile, q, base);
      if (pair) {  // both blocks: this one whole (end = first + B), the next to end2
        block_pixels512x2(in, base, off, K, wp, wp + K * B, bias_block, wide);
        store_pixels(wide, c0, c1, np, y_block + p0, P);
        store_pixels(wide + 2 * kVec * kPixels, 0, static_cast<int>(end2 - first - B), np,
                     y_block + B * P + p0, P);
      } else if (wide512) {
        block_pixels512(in, base, off, K, wp, bias_block, wide);
        store_pixels(wide, c0, c1, std::min(np, kPixels), y_block + p0, P);
        if (np > kPixels) {
          store_pixels(wide + 2 * kVec * kPixels, c0, c1, np - kPixels, y_block + p0 + kPixels, P);
        }
      } else {
        block_pixels(in, base, off, K, wp, bias_block, wide);
        store_pixels(wide, c0, c1, np, y_block + p0, P);
      }
    }
    oc = pair ? end2 : end;
  }
}

}  // namespace cnn::fast
