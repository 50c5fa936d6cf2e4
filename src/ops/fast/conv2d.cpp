// conv2d, fast CPU kernels: im2col + SGEMM per image (Winograd F(2x2, 3x3) for the forward pass
// of batches where it applies on AVX-512, winograd.h; else the direct convolution on AVX2,
// direct_conv.h), the batch split across threads, who take images as they finish (each image's
// numbers are its own whatever the thread), thread-local buffers reused from step to step; a
// grouped convolution as one product per group and image.
// docs/KERNELS.md explains each choice and its measurement.
#include "conv2d.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "../../core/cpu.h"
#include "../relu_kernel.h"
#include "../window.h"
#include "direct_conv.h"
#include "gemm.h"
#include "maxpool2d.h"
#include "scratch.h"
#include "vmath.h"
#include "winograd.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace cnn::fast {

namespace {

// C_in and C_out are one group's channels (all of them when groups == 1): a grouped convolution
// is G convolutions side by side, group i reading input channels [i C_in, (i + 1) C_in) and
// writing output channels [i C_out, (i + 1) C_out) with its rows of the weights.
struct Dims {
  int64_t N, C_in, H, W, C_out, K_h, K_w, H_out, W_out, G;
  int64_t rows() const { return C_in * K_h * K_w; }  // of a group's column matrix
  int64_t cols() const { return H_out * W_out; }
  int64_t in_image() const { return G * C_in * H * W; }  // floats per image
  int64_t in_group() const { return C_in * H * W; }
  int64_t out_channels() const { return G * C_out; }
};

Dims dims_of(const Shape& x, const Shape& w, const Shape& y) {
  const int64_t G = x[1] / w[1];
  return {x[0], w[1], x[2], x[3], w[0] / G, w[2], w[3], y[2], y[3], G};
}

int thread_id() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

int omp_threads() {
#ifdef _OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}

int max_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// x_img: (C_in, H, W) -> col: (C_in * K_h * K_w, H_out * W_out); padded taps are 0.
// Built for AVX2 and for the baseline, chosen when the library loads (as col2im).
__attribute__((target_clones("avx2", "default"))) void im2col_any(const float* x_img, const Dims& d,
                                                                  const Conv2dGeometry& g,
                                                                  float* col) {
  const int64_t P = d.cols();
  for (int64_t ic = 0; ic < d.C_in; ++ic) {
    const float* x_plane = x_img + ic * d.H * d.W;
    for (int64_t kh = 0; kh < d.K_h; ++kh) {
      const int64_t off_h = kh * g.dilation.h - g.pad_top;
      const auto rh = detail::tap_range(off_h, g.stride.h, d.H, d.H_out);
      for (int64_t kw = 0; kw < d.K_w; ++kw) {
        const int64_t off_w = kw * g.dilation.w - g.pad_left;
        const auto rw = detail::tap_range(off_w, g.stride.w, d.W, d.W_out);
        float* row = col + ((ic * d.K_h + kh) * d.K_w + kw) * P;
        // Rows are short (12 to 26 floats here): plain loops beat memcpy/memset calls.
        for (int64_t i = 0; i < rh.lo * d.W_out; ++i) row[i] = 0.0f;
        for (int64_t oh = rh.lo; oh < rh.hi; ++oh) {
          float* out = row + oh * d.W_out;
          const float* in = x_plane + (oh * g.stride.h + off_h) * d.W + off_w;
          for (int64_t ow = 0; ow < rw.lo; ++ow) out[ow] = 0.0f;
          if (g.stride.w == 1) {
            for (int64_t ow = rw.lo; ow < rw.hi; ++ow) out[ow] = in[ow];
          } else {
            for (int64_t ow = rw.lo; ow < rw.hi; ++ow) out[ow] = in[ow * g.stride.w];
          }
          for (int64_t ow = rw.hi; ow < d.W_out; ++ow) out[ow] = 0.0f;
        }
        for (int64_t i = rh.hi * d.W_out; i < P; ++i) row[i] = 0.0f;
      }
    }
  }
}

// The adjoint of im2col: dx_img (C_in, H, W) += the column gradients at the taps they came from.
__attribute__((target_clones("avx2", "default"))) void col2im_any(const float* col, const Dims& d,
                                                                  const Conv2dGeometry& g,
                                                                  float* dx_img) {
  const int64_t P = d.cols();
  for (int64_t ic = 0; ic < d.C_in; ++ic) {
    float* dx_plane = dx_img + ic * d.H * d.W;
    for (int64_t kh = 0; kh < d.K_h; ++kh) {
      const int64_t off_h = kh * g.dilation.h - g.pad_top;
      const auto rh = detail::tap_range(off_h, g.stride.h, d.H, d.H_out);
      for (int64_t kw = 0; kw < d.K_w; ++kw) {
        const int64_t off_w = kw * g.dilation.w - g.pad_left;
        const auto rw = detail::tap_range(off_w, g.stride.w, d.W, d.W_out);
        const float* row = col + ((ic * d.K_h + kh) * d.K_w + kw) * P;
        for (int64_t oh = rh.lo; oh < rh.hi; ++oh) {
          const float* in = row + oh * d.W_out;
          float* out = dx_plane + (oh * g.stride.h + off_h) * d.W + off_w;
          for (int64_t ow = rw.lo; ow < rw.hi; ++ow) out[ow * g.stride.w] += in[ow];
        }
      }
    }
  }
}

// With stride 1 along the width, each output row of a tap's column row is one contiguous run of
// an input row with zeros around it (the padding). AVX-512 moves it 16 floats at a time, masked:
// lanes outside the run read nothing (masked loads do not touch memory) and are stored as 0, so
// a row costs one or two instructions rather than a loop (4x faster than the loops above for the
// tutorial's 12-float rows).
__attribute__((target("avx512f"))) void im2col_stride1_avx512(const float* x_img, const Dims& d,
                                                              const Conv2dGeometry& g, float* col) {
  // Local copies: the masked stores may alias anything, so fields of d would be reloaded.
  const int64_t H = d.H, W = d.W, W_out = d.W_out, P = d.cols(), S_h = g.stride.h;
  for (int64_t ic = 0; ic < d.C_in; ++ic) {
    const float* x_plane = x_img + ic * H * W;
    for (int64_t kh = 0; kh < d.K_h; ++kh) {
      const int64_t off_h = kh * g.dilation.h - g.pad_top;
      const auto rh = detail::tap_range(off_h, S_h, H, d.H_out);
      for (int64_t kw = 0; kw < d.K_w; ++kw) {
        const int64_t off_w = kw * g.dilation.w - g.pad_left;
        const auto rw = detail::tap_range(off_w, 1, W, W_out);
        float* row = col + ((ic * d.K_h + kh) * d.K_w + kw) * P;
        for (int64_t i = 0; i < rh.lo * W_out; ++i) row[i] = 0.0f;
        for (int64_t i = rh.hi * W_out; i < P; ++i) row[i] = 0.0f;
        // Lanes c0 + j of every row: stored if < W_out, loaded if inside [rw.lo, rw.hi).
        for (int64_t c0 = 0; c0 < W_out; c0 += 16) {
          const int64_t n_out = std::min<int64_t>(16, W_out - c0);
          const int64_t lo = std::clamp<int64_t>(rw.lo - c0, 0, 16);
          const int64_t hi = std::clamp<int64_t>(rw.hi - c0, lo, 16);
          const auto store = static_cast<__mmask16>((1u << n_out) - 1u);
          const auto load = static_cast<__mmask16>(((1u << hi) - 1u) & ~((1u << lo) - 1u));
          float* out = row + rh.lo * W_out + c0;
          const float* in = x_plane + (rh.lo * S_h + off_h) * W + off_w + c0;
          for (int64_t oh = rh.lo; oh < rh.hi; ++oh, out += W_out, in += S_h * W) {
            _mm512_mask_storeu_ps(out, store, _mm512_maskz_loadu_ps(load, in));
          }
        }
      }
    }
  }
}

// The adjoint, for stride 1 in both directions: each 16-float piece of an input row gathers its
// K_h x K_w contributions from the column rows in a register and is stored once. (Adding each tap's
// run into the row in turn, as col2im_any does, makes every masked load wait for the overlapping
// masked store of the tap before it: three times slower.)
__attribute__((target("avx512f"))) void col2im_stride1_avx512(const float* col, const Dims& d,
                                                              const Conv2dGeometry& g,
                                                              float* dx_img, bool overwrite) {
  const int64_t H = d.H, W = d.W, H_out = d.H_out, W_out = d.W_out, P = d.cols();
  const int64_t K_h = d.K_h, K_w = d.K_w, chunks = (W + 15) / 16;
  // masks[kw * chunks + c]: lanes j of piece c whose column c * 16 + j - off_w is an output column.
  thread_local std::vector<__mmask16> masks;
  masks.resize(static_cast<std::size_t>(K_w * chunks));
  for (int64_t kw = 0; kw < K_w; ++kw) {
    const int64_t off_w = kw * g.dilation.w - g.pad_left;
    for (int64_t c = 0; c < chunks; ++c) {
      unsigned m = 0;
      for (int64_t j = 0; j < 16; ++j) {
        const int64_t iw = c * 16 + j, ow = iw - off_w;
        if (iw < W && ow >= 0 && ow < W_out) m |= 1u << j;
      }
      masks[static_cast<std::size_t>(kw * chunks + c)] = static_cast<__mmask16>(m);
    }
  }
  for (int64_t ic = 0; ic < d.C_in; ++ic) {
    float* dx_plane = dx_img + ic * H * W;
    const float* col_ic = col + ic * K_h * K_w * P;
    for (int64_t ih = 0; ih < H; ++ih) {
      for (int64_t c = 0; c < chunks; ++c) {
        __m512 acc = _mm512_setzero_ps();
        for (int64_t kh = 0; kh < K_h; ++kh) {
          const int64_t oh = ih - (kh * g.dilation.h - g.pad_top);
          if (oh < 0 || oh >= H_out) continue;
          for (int64_t kw = 0; kw < K_w; ++kw) {
            const int64_t off_w = kw * g.dilation.w - g.pad_left;
            const float* run = col_ic + (kh * K_w + kw) * P + oh * W_out + c * 16 - off_w;
            acc = _mm512_add_ps(
                acc, _mm512_maskz_loadu_ps(masks[static_cast<std::size_t>(kw * chunks + c)], run));
          }
        }
        const auto in_row = static_cast<__mmask16>((1u << std::min<int64_t>(16, W - c * 16)) - 1u);
        float* out = dx_plane + ih * W + c * 16;
        if (!overwrite) acc = _mm512_add_ps(_mm512_maskz_loadu_ps(in_row, out), acc);
        _mm512_mask_storeu_ps(out, in_row, acc);
      }
    }
  }
}

void im2col(const float* x_img, const Dims& d, const Conv2dGeometry& g, float* col) {
  if (g.stride.w == 1 && detail::use_avx512()) return im2col_stride1_avx512(x_img, d, g, col);
  im2col_any(x_img, d, g, col);
}

// dx_img = (overwrite) or += the column gradients at the taps they came from.
void col2im(const float* col, const Dims& d, const Conv2dGeometry& g, float* dx_img,
            bool overwrite) {
  if (g.stride.all(1) && detail::use_avx512())
    return col2im_stride1_avx512(col, d, g, dx_img, overwrite);
  if (overwrite) std::fill(dx_img, dx_img + d.C_in * d.H * d.W, 0.0f);
  col2im_any(col, d, g, dx_img);
}

thread_local std::vector<float> tls_col, tls_dcol, tls_dyt;

// A batch norm in evaluation mode on one plane, in place: v * scale + shift, batchnorm2d_forward's
// expression compiled for the same (baseline) target, so rounded the same way: a fused block
// equals the layers bit for bit (tests/test_modules.cpp checks it).
void batchnorm_plane(float* __restrict v, int64_t n, float scale, float shift) {
  for (int64_t i = 0; i < n; ++i) v[i] = v[i] * scale + shift;
}

// An activation in place on n floats, as its op computes it (cnn/ops/activation.h): the same
// span functions (which read each block before writing it, so may work in place), the same
// leaky-ReLU expression.
void activate(float* v, int64_t n, BlockActivation a, float slope) {
  switch (a) {
    case BlockActivation::Tanh:
      return tanh_span(v, v, n);
    case BlockActivation::Sigmoid:
      return sigmoid_span(v, v, n);
    case BlockActivation::SiLU:
      return silu_span(v, v, n);
    case BlockActivation::LeakyReLU:
      for (int64_t i = 0; i < n; ++i) v[i] = v[i] > 0.0f ? v[i] : v[i] * slope;
      return;
    case BlockActivation::None:
      return;
  }
}

// a (rows, cols) -> at (cols, rows), in tiles of 16 columns: each tile's rows are read in
// order and its output rows stay in the L1 cache while they are filled.
void transpose(const float* __restrict a, int64_t rows, int64_t cols, float* __restrict at) {
  constexpr int64_t kTile = 16;
  for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
    const int64_t c1 = std::min(cols, c0 + kTile);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = c0; c < c1; ++c) at[c * rows + r] = a[r * cols + c];
    }
  }
}

// The sum of n floats in 16 independent lanes (one running sum would wait on the adder's latency
// for every element), each lane short enough for float to hold it, added up in double.
__attribute__((target_clones("avx2", "default"))) double sum_of(const float* __restrict v,
                                                                int64_t n) {
  constexpr int kLanes = 16;
  float lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) lanes[j] += v[i + j];
  }
  double sum = 0.0;
  for (; i < n; ++i) sum += v[i];
  for (float l : lanes) sum += l;
  return sum;
}

// The bias rides in the product as one more column of the weights and one more row of ones in
// the column matrix: w1 (C_out, K + 1) col1 (K + 1, P) = w col + b. It saves filling the output
// with the bias before the product (and reading it back in), and in the backward pass the same
// product gives the bias gradient with the weight gradient (the ones row's sums).
const float* weights_with_bias(const Tensor& w, const Tensor& b, int64_t K,
                               std::vector<float>& buf) {
  const int64_t C_out = w.size(0);
  // The buffer only grows: resizing it between layers of different sizes would zero it each time.
  float* w1 = scratch(buf, C_out * (K + 1));
  for (int64_t oc = 0; oc < C_out; ++oc) {
    std::copy(w.data() + oc * K, w.data() + (oc + 1) * K, w1 + oc * (K + 1));
    w1[oc * (K + 1) + K] = b[oc];
  }
  return w1;
}

// Every image's im2col matrix per group into *columns, (N, G * K1, P), with a ones row when there
// is a bias (conv2d_forward's workspace).
void fill_columns(const Tensor& x, const Dims& d, const Conv2dGeometry& g, bool bias,
                  Tensor* columns) {
  const int64_t K = d.rows(), K1 = K + (bias ? 1 : 0), P = d.cols(), G = d.G;
  if (columns->shape() != Shape{d.N, G * K1, P}) *columns = Tensor::empty({d.N, G * K1, P});
#pragma omp parallel for schedule(static) collapse(2) if (d.N * G > 1)
  for (int64_t n = 0; n < d.N; ++n) {
    for (int64_t gi = 0; gi < G; ++gi) {
      float* col = columns->data() + (n * G + gi) * K1 * P;
      im2col(x.data() + n * d.in_image() + gi * d.in_group(), d, g, col);
      std::fill(col + K * P, col + K1 * P, 1.0f);
    }
  }
}

}  // namespace

Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dGeometry& g,
                      const Shape& y_shape, Tensor* columns) {
  Tensor y = Tensor::empty(y_shape);  // the SGEMM overwrites it (beta 0)
  const Dims d = dims_of(x.shape(), w.shape(), y_shape);
  // 3x3, stride 1: Winograd where it applies (winograd.h). The im2col matrices, if the caller
  // wants them, are built for the backward pass only: y is the same with or without them.
  if (winograd_applies(x.shape(), w.shape(), g, y_shape)) {
    if (columns) fill_columns(x, d, g, b.defined(), columns);
    // The calling thread's, read by all: a thread_local named inside the region would be each's
    // own.
    const std::vector<float>& U = winograd_weights_cached(w);
    const float* bias = b.defined() ? b.data() : nullptr;
    const int64_t P = d.cols();
    // One image with enough work (batch-1 latency): the threads share it by output channels.
    if (d.N == 1 && d.C_out * P * d.rows() >= (1 << 16)) {
      const int64_t unit = winograd_channel_unit(w.shape(), y_shape);
      const int64_t units = (d.C_out + unit - 1) / unit;
#pragma omp parallel
      {
        const int t = thread_id(), T = omp_threads();
        const int64_t oc0 = std::min(d.C_out, units * t / T * unit);
        const int64_t oc1 = std::min(d.C_out, units * (t + 1) / T * unit);
        if (oc1 > oc0) winograd_image(x.data(), x.shape(), g, y_shape, U, bias, oc0, oc1, y.data());
      }
      return y;
    }
#pragma omp parallel for schedule(dynamic) if (d.N > 1)
    for (int64_t n = 0; n < d.N; ++n) {
      winograd_image(x.data() + n * d.in_image(), x.shape(), g, y_shape, U, bias, 0, d.C_out,
                     y.data() + n * d.C_out * P);
    }
    return y;
  }
  // Else on AVX2: the direct convolution, likewise.
  if (direct_conv_applies(x.shape(), w.shape(), y_shape, g)) {
    if (columns) fill_columns(x, d, g, b.defined(), columns);
    const int block = direct_conv_block(x.shape(), w.shape(), y_shape, g);
    const std::vector<float>& packed = direct_weights_cached(w, d.G, block);
    const float* bias = b.defined() ? b.data() : nullptr;
    const int64_t C_out = d.out_channels(), P = d.cols();
    // One image with enough work (batch-1 latency): the threads share it by output channels, in
    // whole blocks of the kernel's (at least eights).
    if (d.N == 1 && C_out * P * d.rows() >= (1 << 16)) {
      const int64_t unit = std::max(8, block), units = (C_out + unit - 1) / unit;
#pragma omp parallel
      {
        const int t = thread_id(), T = omp_threads();
        direct_conv_image(x.data(), x.shape(), w.shape(), g, y_shape, packed, bias,
                          std::min(C_out, units * t / T * unit),
                          std::min(C_out, units * (t + 1) / T * unit), y.data());
      }
      return y;
    }
#pragma omp parallel for schedule(dynamic) if (d.N > 1)
    for (int64_t n = 0; n < d.N; ++n) {
      direct_conv_image(x.data() + n * d.in_image(), x.shape(), w.shape(), g, y_shape, packed, bias,
                        0, C_out, y.data() + n * C_out * P);
    }
    return y;
  }
  const int64_t K = d.rows(), K1 = K + (b.defined() ? 1 : 0), P = d.cols();
  thread_local std::vector<float> w1;
  const float* w_used = b.defined() ? weights_with_bias(w, b, K, w1) : w.data();
  const int64_t G = d.G;
  if (columns && columns->shape() != Shape{d.N, G * K1, P}) {
    *columns = Tensor::empty({d.N, G * K1, P});
  }
  // Threads only pay off with work to share: a single image runs on the calling thread.
#pragma omp parallel for schedule(dynamic) collapse(2) if (d.N * G > 1)
  for (int64_t n = 0; n < d.N; ++n) {
    for (int64_t gi = 0; gi < G; ++gi) {
      float* col = columns ? columns->data() + (n * G + gi) * K1 * P : scratch(tls_col, K1 * P);
      im2col(x.data() + n * d.in_image() + gi * d.in_group(), d, g, col);
      std::fill(col + K * P, col + K1 * P, 1.0f);
      // y_img's group (C_out, P) = w1's group (C_out, K1) col (K1, P)
      sgemm(false, false, d.C_out, P, K1, 1.0f, w_used + gi * d.C_out * K1, K1, col, P, 0.0f,
            y.data() + (n * G + gi) * d.C_out * P, P);
    }
  }
  return y;
}

void conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy, const Conv2dGeometry& g,
                     Tensor* dx, Tensor* dw, Tensor* db, const Tensor* columns) {
  const Dims d = dims_of(x.shape(), w.shape(), dy.shape());
  const int64_t K = d.rows(), P = d.cols();
  // The forward pass's columns, with the ones row when it had a bias: the weight gradient's
  // product then also sums dy for the bias gradient, in its last row.
  const int64_t G = d.G;
  const bool cached = columns && columns->dim() == 3 && columns->size(0) == d.N &&
                      columns->size(2) == P &&
                      (columns->size(1) == G * K || columns->size(1) == G * (K + 1));
  // Without them, the rebuilt matrices get the ones row too when both gradients are wanted.
  const int64_t K1 = cached ? columns->size(1) / G : K + (dw && db ? 1 : 0);
  const bool db_from_product = dw && db && K1 == K + 1;
  // Stride 1 on AVX2: the input gradient by the direct convolution of dy (direct_conv.h), where
  // it measured faster than the product and col2im (build/cnn_conv_layers --compare): not for
  // one or two input channels (its blocks of 4 output channels would be mostly empty), nor for
  // inputs under 10x10 (the shipped models' 7x7 layers: 0.8x with its tiles of pixels, 0.7x
  // with its rows).
  // Where that convolution is one Winograd takes (3x3, channels enough), Winograd: the weights
  // transposed and turned, then transformed, at every call (they change at every step).
  Conv2dGeometry gt;
  Shape wt_shape;
  const bool transposable = dx && direct_conv_backward_geometry(w.shape(), g, &gt, &wt_shape);
  // Neither for inputs under 10x10 (vgg-bn's 7x7: Winograd 0.8x there, its weights'
  // transform a large part of so small a convolution), nor through the AVX-512 variant (the
  // tutorial's conv2 measured no faster with it: docs/KERNELS.md).
  const bool winograd_dx = transposable && G == 1 && d.H * d.W >= 100 &&
                           winograd_applies(dy.shape(), wt_shape, gt, x.shape()) &&
                           !winograd_avx512(wt_shape, x.shape());
  const bool direct_dx = transposable && !winograd_dx && d.C_in >= 3 && d.H * d.W >= 100 &&
                         direct_conv_applies(dy.shape(), wt_shape, x.shape(), gt);
  thread_local std::vector<float> wt_buffer;
  if (winograd_dx) {
    thread_local Tensor turned;
    if (turned.shape() != wt_shape) turned = Tensor::empty(wt_shape);
    // turned[i][o][a][b] = w[o][i][2 - a][2 - b]
    for (int64_t o = 0; o < d.C_out; ++o) {
      for (int64_t i = 0; i < d.C_in; ++i) {
        const float* from = w.data() + (o * d.C_in + i) * 9;
        float* to = turned.data() + (i * d.C_out + o) * 9;
        for (int tap = 0; tap < 9; ++tap) to[tap] = from[8 - tap];
      }
    }
    winograd_weights(turned, 0, d.C_in, wt_buffer);
  } else if (direct_dx) {
    direct_weights_transposed(w, G, direct_conv_block(dy.shape(), wt_shape, x.shape(), gt),
                              wt_buffer);
  }
  // The calling thread's, read by all: a thread_local named inside the region would be each's own.
  const std::vector<float>& wt_packed = wt_buffer;
  // Partial sums of the weight gradient over fixed chunks of the (image, group) pairs, added in
  // chunk order afterwards: the threads take chunks as they finish (a core slowed by another
  // tenant of the machine no longer holds up the other), and the result depends on the number of
  // threads only, never on which thread took which chunk.
  // OpenBLAS runs small products on kernels that skip its packing step, except a product whose
  // second operand is transposed (ours: dw = dy col^T) with an output over 1,200 elements (its
  // small-matrix rule), which costs half as much again. There we form dy^T explicitly and
  // accumulate dw^T = col dy^T, a plain product.
  const bool via_transpose = d.C_out * K1 > 1200;
  const int64_t items = d.N * G, chunks = std::min<int64_t>(items, 4 * max_threads());
  // Each chunk's part holds every group's, one after the other.
  const int64_t part_size = G * K1 * d.C_out;
  std::vector<float> dw_parts(dw ? static_cast<std::size_t>(chunks * part_size) : 0, 0.0f);
#pragma omp parallel for schedule(dynamic) if (items > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    float* dw_chunk = dw ? dw_parts.data() + c * part_size : nullptr;
    for (int64_t item = items * c / chunks; item < items * (c + 1) / chunks; ++item) {
      const int64_t n = item / G, gi = item % G;
      float* dw_mine = dw ? dw_chunk + gi * K1 * d.C_out : nullptr;
      const float* dy_img = dy.data() + (n * G + gi) * d.C_out * P;
      if (dw) {
        const float* col;
        if (cached) {
          col = columns->data() + (n * G + gi) * K1 * P;
        } else {
          float* built = scratch(tls_col, K1 * P);
          im2col(x.data() + n * d.in_image() + gi * d.in_group(), d, g, built);
          std::fill(built + K * P, built + K1 * P, 1.0f);
          col = built;
        }
        if (via_transpose) {
          float* dyt = scratch(tls_dyt, P * d.C_out);
          transpose(dy_img, d.C_out, P, dyt);
          // dw^T (K1, C_out) += col (K1, P) dy_img^T (P, C_out)
          sgemm(false, false, K1, d.C_out, P, 1.0f, col, P, dyt, d.C_out, 1.0f, dw_mine, d.C_out);
        } else {
          // dw (C_out, K1) += dy_img (C_out, P) col^T (P, K1)
          sgemm(false, true, d.C_out, K1, P, 1.0f, dy_img, P, col, P, 1.0f, dw_mine, K1);
        }
      }
      if (winograd_dx) {
        winograd_image(dy_img, dy.shape(), gt, x.shape(), wt_packed, nullptr, 0, d.C_in,
                       dx->data() + n * d.in_image());
      } else if (direct_dx) {
        direct_conv_image(dy.data() + n * G * d.C_out * P, dy.shape(), wt_shape, gt, x.shape(),
                          wt_packed, nullptr, gi * d.C_in, (gi + 1) * d.C_in,
                          dx->data() + n * d.in_image());
      } else if (dx) {
        float* dcol = scratch(tls_dcol, K * P);
        // dcol (K, P) = w^T (K, C_out) dy_img (C_out, P)
        sgemm(true, false, K, P, d.C_out, 1.0f, w.data() + gi * d.C_out * K, K, dy_img, P, 0.0f,
              dcol, P);
        col2im(dcol, d, g, dx->data() + n * d.in_image() + gi * d.in_group(), /*overwrite=*/true);
      }
    }
  }
  if (dw) {
    // Element (oc, k) of the (C_out, K1) product, stored transposed or not.
    auto at = [&](const float* part, int64_t oc, int64_t k) {
      return via_transpose ? part[k * d.C_out + oc] : part[oc * K1 + k];
    };
    float* out = dw->data();
    for (int64_t c = 0; c < chunks; ++c) {
      for (int64_t gi = 0; gi < G; ++gi) {
        const float* part = dw_parts.data() + c * part_size + gi * K1 * d.C_out;
        for (int64_t oc = 0; oc < d.C_out; ++oc) {
          const int64_t row = gi * d.C_out + oc;
          for (int64_t k = 0; k < K; ++k) out[row * K + k] += at(part, oc, k);
          if (db_from_product) (*db)[row] += at(part, oc, K);
        }
      }
    }
  }
  if (db && !db_from_product) {
#pragma omp parallel for schedule(static) if (d.N * P > 16384)
    for (int64_t oc = 0; oc < d.out_channels(); ++oc) {
      double sum = 0.0;
      for (int64_t n = 0; n < d.N; ++n) {
        sum += sum_of(dy.data() + (n * d.out_channels() + oc) * P, P);
      }
      (*db)[oc] += static_cast<float>(sum);
    }
  }
}

Tensor conv2d_block_forward(const Tensor& x, const Tensor& w, const Tensor& b,
                            const Conv2dGeometry& g, const Shape& conv_shape, const Epilogue& after,
                            const Shape& y_shape) {
  const Pool2dGeometry* pool = after.pool;
  Tensor y = Tensor::empty(y_shape);
  const Dims d = dims_of(x.shape(), w.shape(), conv_shape);
  const int64_t K = d.rows(), K1 = K + (b.defined() ? 1 : 0), P = d.cols();
  const int64_t out_img = shape_numel(y_shape) / d.N, out_plane = y_shape[2] * y_shape[3];
  const bool two_by_two = pool && pool->kernel.all(2) && pool->stride.all(2) &&
                          pool->dilation.all(1) && pool->padding.h == pool->padding.w;
  // As conv2d_forward: the same algorithm for the same shapes, so the same numbers.
  const bool winograd = winograd_applies(x.shape(), w.shape(), g, conv_shape);
  const bool direct = !winograd && direct_conv_applies(x.shape(), w.shape(), conv_shape, g);
  thread_local std::vector<float> w1;
  const float* w_used = winograd || direct ? nullptr
                        : b.defined()      ? weights_with_bias(w, b, K, w1)
                                           : w.data();
  // The calling thread's, read by all: a thread_local named inside the region would be each's own.
  static const std::vector<float> none;
  const int direct_block = direct ? direct_conv_block(x.shape(), w.shape(), conv_shape, g) : 0;
  const std::vector<float>& U = winograd ? winograd_weights_cached(w)
                                : direct ? direct_weights_cached(w, d.G, direct_block)
                                         : none;
  const int64_t C_out = d.out_channels();  // all groups'
  const bool share_image = d.N < max_threads() && C_out * P * K1 >= (1 << 16);
  // Output channels [oc0, oc1) of image n: convolution, ReLU, pool.
  auto block = [&](int64_t n, int64_t oc0, int64_t oc1) {
    const float* x_img = x.data() + n * d.in_image();
    float* y_img = y.data() + n * out_img;
    // Without a pool the block's output is the convolution's: written in place.
    float* conv = pool ? scratch(tls_dcol, C_out * P) : y_img;
    if (winograd) {
      winograd_image(x_img, x.shape(), g, conv_shape, U, b.defined() ? b.data() : nullptr, oc0, oc1,
                     conv);
    } else if (direct) {
      direct_conv_image(x_img, x.shape(), w.shape(), g, conv_shape, U,
                        b.defined() ? b.data() : nullptr, oc0, oc1, conv);
    } else {
      float* col = scratch(tls_col, K1 * P);
      // The channels [lo, hi) of [oc0, oc1) in each group, from that group's column matrix.
      for (int64_t gi = oc0 / d.C_out; gi < d.G && gi * d.C_out < oc1; ++gi) {
        const int64_t lo = std::max(oc0, gi * d.C_out), hi = std::min(oc1, (gi + 1) * d.C_out);
        im2col(x_img + gi * d.in_group(), d, g, col);
        std::fill(col + K * P, col + K1 * P, 1.0f);
        sgemm(false, false, hi - lo, P, K1, 1.0f, w_used + lo * K1, K1, col, P, 0.0f, conv + lo * P,
              P);
      }
    }
    if (after.scale) {
      for (int64_t oc = oc0; oc < oc1; ++oc) {
        batchnorm_plane(conv + oc * P, P, after.scale[oc], after.shift[oc]);
      }
    }
    if (after.activation != BlockActivation::None) {
      activate(conv + oc0 * P, (oc1 - oc0) * P, after.activation, after.negative_slope);
      return;
    }
    if (!after.relu) return;
    if (two_by_two) {
      maxpool2x2_planes(conv + oc0 * P, oc1 - oc0, d.H_out, d.W_out, pool->padding.h, y_shape[2],
                        y_shape[3], /*relu=*/true, y_img + oc0 * out_plane);
      return;
    }
    detail::relu_span(conv + oc0 * P, conv + oc0 * P, (oc1 - oc0) * P);
    if (pool) {
      maxpool2d_planes(conv + oc0 * P, oc1 - oc0, d.H_out, d.W_out, *pool, y_shape[2], y_shape[3],
                       y_img + oc0 * out_plane, nullptr);
    }
  };
  // One image with enough work (batch-1 latency): the threads share it by output channels, each
  // building the whole column matrix or transformed input in its own cache (sharing them cost
  // more in traffic between the cores than it saved). Both of the tutorial's convolutions
  // qualify (108 k and 668 k multiply-adds). The shares are whole sixteens of channels for
  // Winograd (its numbers stay those of conv2d_forward), whole blocks of the direct kernel's (its
  // outputs are each computed alone: the same numbers too), whole eights for the SGEMM, whose
  // kernels may sum a share of the rows in another order than the whole product (differences of
  // a few units in the last place); the last share takes any rest.
  if (share_image) {
    const int64_t unit = winograd ? winograd_channel_unit(w.shape(), conv_shape)
                         : direct ? std::max(8, direct_block)
                                  : 8;
    const int64_t units = std::max<int64_t>(1, C_out / unit);
    for (int64_t n = 0; n < d.N; ++n) {
#pragma omp parallel
      {
        const int t = thread_id(), T = omp_threads();
        const int64_t oc0 = std::min(C_out, units * t / T * unit);
        const int64_t oc1 = t + 1 == T ? C_out : std::min(C_out, units * (t + 1) / T * unit);
        if (oc1 > oc0) block(n, oc0, oc1);
      }
    }
    return y;
  }
#pragma omp parallel for schedule(dynamic) if (d.N > 1)
  for (int64_t n = 0; n < d.N; ++n) block(n, 0, C_out);
  return y;
}

}  // namespace cnn::fast
