// avgpool2d and adaptive_avgpool2d on CUDA.
//
// Forward: one thread per output element, with the CPU's window (avgpool2d.cpp: [o * S - P_begin,
// + K) clipped to the input, its padded length clipped to the input plus the end padding for
// count_include_pad), the CPU's divisor, and the CPU's summation order (rows, then columns,
// starting from 0.0f) followed by one division, so that the results agree bit for bit.
//
// Backward: a gather, so that no two threads write one element (no atomics, deterministic): one
// thread per input element visits, in ascending output order, every window that covers it and
// adds that window's dy / divisor. The CPU scatter adds the same quotients to a zeroed dx in the
// same output order, so the sums agree bit for bit too.
#include "cnn/error.h"
#include "launch.cuh"
#include "ops.h"

namespace cnn::cuda {

namespace {

struct Geom {
  int64_t kh, kw, sh, sw, ph, pw;  // top/left padding
  int64_t ph_end, pw_end;          // bottom/right padding
  bool count_include_pad;
  bool has_divisor;
  int64_t divisor;  // divisor_override, when has_divisor
};

Geom geom(const AvgPool2dGeometry& g) {
  const Size2 end = g.end_padding();
  return {g.kernel.h,
          g.kernel.w,
          g.stride.h,
          g.stride.w,
          g.padding.h,
          g.padding.w,
          end.h,
          end.w,
          g.count_include_pad,
          g.divisor_override.has_value(),
          g.divisor_override.value_or(1)};
}

// One window along one axis, as the CPU's window(): [lo, hi) clipped to the input, and the
// length clipped to the padded input.
struct Span {
  int64_t lo, hi, padded;
};
__device__ inline Span window(int64_t o, int64_t K, int64_t S, int64_t P_begin, int64_t P_end,
                              int64_t n) {
  const int64_t start = o * S - P_begin;
  const int64_t end = min(start + K, n + P_end);
  return {max(start, int64_t{0}), min(end, n), end - start};
}

// PyTorch's divide_factor, as the CPU's divisor().
__device__ inline int64_t divisor(const Geom& g, const Span& h, const Span& w) {
  if (g.has_divisor) return g.divisor;
  if (g.count_include_pad) return h.padded * w.padded;
  return (h.hi - h.lo) * (w.hi - w.lo);
}

// The outputs o in [0, n_out) whose window [o * S - P, o * S - P + K) contains input position in.
struct Range {
  int64_t lo, hi;  // [lo, hi)
};
__device__ inline Range covering(int64_t in, int64_t K, int64_t S, int64_t P, int64_t n_out) {
  const int64_t low = in + P - (K - 1);  // may be negative
  const int64_t lo = low <= 0 ? 0 : (low + S - 1) / S;
  const int64_t hi = min((in + P) / S + 1, n_out);
  return {lo, hi};
}

__global__ void avgpool_forward_kernel(const float* __restrict__ x, float* __restrict__ y,
                                       int64_t total, int64_t H, int64_t W, int64_t H_out,
                                       int64_t W_out, Geom g) {
  for (int64_t i = grid_first(); i < total; i += grid_stride()) {
    const int64_t ow = i % W_out;
    const int64_t oh = (i / W_out) % H_out;
    const int64_t p = i / (W_out * H_out);
    const Span h = window(oh, g.kh, g.sh, g.ph, g.ph_end, H);
    const Span w = window(ow, g.kw, g.sw, g.pw, g.pw_end, W);
    // A window wholly in the padding (possible only with ceil_mode) averages nothing: 0.
    if (h.lo >= h.hi || w.lo >= w.hi) {
      y[i] = 0.0f;
      continue;
    }
    const float* x_plane = x + p * H * W;
    float sum = 0.0f;
    for (int64_t ih = h.lo; ih < h.hi; ++ih) {
      for (int64_t iw = w.lo; iw < w.hi; ++iw) sum += x_plane[ih * W + iw];
    }
    y[i] = sum / static_cast<float>(divisor(g, h, w));
  }
}

__global__ void avgpool_backward_kernel(const float* __restrict__ dy, float* __restrict__ dx,
                                        int64_t total, int64_t H, int64_t W, int64_t H_out,
                                        int64_t W_out, Geom g) {
  for (int64_t i = grid_first(); i < total; i += grid_stride()) {
    const int64_t iw = i % W;
    const int64_t ih = (i / W) % H;
    const int64_t p = i / (W * H);
    const float* dy_plane = dy + p * H_out * W_out;
    const Range rh = covering(ih, g.kh, g.sh, g.ph, H_out);
    const Range rw = covering(iw, g.kw, g.sw, g.pw, W_out);
    float sum = 0.0f;
    for (int64_t oh = rh.lo; oh < rh.hi; ++oh) {
      const Span h = window(oh, g.kh, g.sh, g.ph, g.ph_end, H);
      for (int64_t ow = rw.lo; ow < rw.hi; ++ow) {
        const Span w = window(ow, g.kw, g.sw, g.pw, g.pw_end, W);
        sum += dy_plane[oh * W_out + ow] / static_cast<float>(divisor(g, h, w));
      }
    }
    dx[i] = sum;
  }
}

// Adaptive pooling's window along one axis: [floor(o n / n_out), ceil((o + 1) n / n_out)).
__device__ inline int64_t adaptive_start(int64_t o, int64_t n_out, int64_t n) {
  return (o * n) / n_out;
}
__device__ inline int64_t adaptive_end(int64_t o, int64_t n_out, int64_t n) {
  return ((o + 1) * n + n_out - 1) / n_out;
}

// The outputs whose adaptive window contains input position in: start(o) <= in holds exactly for
// o < ceil((in + 1) n_out / n), and end(o) > in exactly for o >= floor(in n_out / n).
__device__ inline Range adaptive_covering(int64_t in, int64_t n_out, int64_t n) {
  return {(in * n_out) / n, min(((in + 1) * n_out + n - 1) / n, n_out)};
}

__global__ void adaptive_forward_kernel(const float* __restrict__ x, float* __restrict__ y,
                                        int64_t total, int64_t H, int64_t W, int64_t H_out,
                                        int64_t W_out) {
  for (int64_t i = grid_first(); i < total; i += grid_stride()) {
    const int64_t ow = i % W_out;
    const int64_t oh = (i / W_out) % H_out;
    const int64_t p = i / (W_out * H_out);
    const int64_t h0 = adaptive_start(oh, H_out, H), h1 = adaptive_end(oh, H_out, H);
    const int64_t w0 = adaptive_start(ow, W_out, W), w1 = adaptive_end(ow, W_out, W);
    const float* x_plane = x + p * H * W;
    float sum = 0.0f;
    for (int64_t ih = h0; ih < h1; ++ih) {
      for (int64_t iw = w0; iw < w1; ++iw) sum += x_plane[ih * W + iw];
    }
    y[i] = sum / static_cast<float>((h1 - h0) * (w1 - w0));
  }
}

__global__ void adaptive_backward_kernel(const float* __restrict__ dy, float* __restrict__ dx,
                                         int64_t total, int64_t H, int64_t W, int64_t H_out,
                                         int64_t W_out) {
  for (int64_t i = grid_first(); i < total; i += grid_stride()) {
    const int64_t iw = i % W;
    const int64_t ih = (i / W) % H;
    const int64_t p = i / (W * H);
    const float* dy_plane = dy + p * H_out * W_out;
    const Range rh = adaptive_covering(ih, H_out, H);
    const Range rw = adaptive_covering(iw, W_out, W);
    float sum = 0.0f;
    for (int64_t oh = rh.lo; oh < rh.hi; ++oh) {
      const int64_t h0 = adaptive_start(oh, H_out, H), h1 = adaptive_end(oh, H_out, H);
      // The range is exact; the test only guards it.
      if (ih < h0 || ih >= h1) continue;
      for (int64_t ow = rw.lo; ow < rw.hi; ++ow) {
        const int64_t w0 = adaptive_start(ow, W_out, W), w1 = adaptive_end(ow, W_out, W);
        if (iw < w0 || iw >= w1) continue;
        sum += dy_plane[oh * W_out + ow] / static_cast<float>((h1 - h0) * (w1 - w0));
      }
    }
    dx[i] = sum;
  }
}

}  // namespace

Tensor avgpool2d_forward(const Tensor& x, const AvgPool2dGeometry& g, const Shape& y_shape) {
  Tensor y = Tensor::empty(y_shape, Device::CUDA);
  const int64_t total = y.numel();
  if (total == 0) return y;
  avgpool_forward_kernel<<<grid_for(total), kBlock>>>(x.data(), y.data(), total, x.size(2),
                                                      x.size(3), y_shape[2], y_shape[3], geom(g));
  check_launch("avgpool2d");
  return y;
}

Tensor avgpool2d_backward(const Shape& x_shape, const Tensor& dy, const AvgPool2dGeometry& g) {
  Tensor dx = Tensor::empty(x_shape, Device::CUDA);
  const int64_t total = dx.numel();
  if (total == 0) return dx;
  avgpool_backward_kernel<<<grid_for(total), kBlock>>>(dy.data(), dx.data(), total, x_shape[2],
                                                       x_shape[3], dy.size(2), dy.size(3), geom(g));
  check_launch("avgpool2d_backward");
  return dx;
}

Tensor adaptive_avgpool2d_forward(const Tensor& x, const Shape& y_shape) {
  Tensor y = Tensor::empty(y_shape, Device::CUDA);
  const int64_t total = y.numel();
  if (total == 0) return y;
  adaptive_forward_kernel<<<grid_for(total), kBlock>>>(x.data(), y.data(), total, x.size(2),
                                                       x.size(3), y_shape[2], y_shape[3]);
  check_launch("adaptive_avgpool2d");
  return y;
}

Tensor adaptive_avgpool2d_backward(const Shape& x_shape, const Tensor& dy) {
  Tensor dx = Tensor::empty(x_shape, Device::CUDA);
  const int64_t total = dx.numel();
  if (total == 0) return dx;
  adaptive_backward_kernel<<<grid_for(total), kBlock>>>(dy.data(), dx.data(), total, x_shape[2],
                                                        x_shape[3], dy.size(2), dy.size(3));
  check_launch("adaptive_avgpool2d_backward");
  return dx;
}

}  // namespace cnn::cuda
