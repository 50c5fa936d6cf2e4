// maxpool2d on CUDA.
//
// Forward: one thread per output element, walking its window exactly as the CPU reference kernel
// (maxpool2d.cpp): the window starts at o * S - P, its taps step by the dilation from the first
// one inside the input and stop at the input's edge (padded cells are -inf, so they are simply
// skipped; the bottom/right padding only sets the output size), and the comparison
// `v > best || isnan(v)` makes the first maximum win and NaN win, as PyTorch.
//
// Backward: a gather rather than the CPU's scatter, so that no two threads write one element (no
// atomics, deterministic): one thread per input element visits, in ascending output order, every
// window whose span covers it and adds the gradient of those whose saved winner is this element.
// Starting from 0 and adding in that order is the order in which the CPU's scatter adds them, so
// the sums agree bit for bit. (A geometry with a window that has no tap inside the input takes
// the CPU's per-plane scatter instead: see maxpool_backward_scatter_kernel.)
#include <algorithm>

#include "../check.h"
#include "cnn/error.h"
#include "launch.cuh"
#include "ops.h"

namespace cnn::cuda {

namespace {

// The geometry as plain integers for the kernels (the top/left padding only: the kernels never
// read the bottom/right one).
struct Geom {
  int64_t kh, kw, sh, sw, ph, pw, dh, dw;
};

Geom geom(const Pool2dGeometry& g) {
  return {g.kernel.h,  g.kernel.w,  g.stride.h,   g.stride.w,
          g.padding.h, g.padding.w, g.dilation.h, g.dilation.w};
}

__global__ void maxpool_forward_kernel(const float* __restrict__ x, float* __restrict__ y,
                                       int32_t* __restrict__ indices, int64_t total, int64_t H,
                                       int64_t W, int64_t H_out, int64_t W_out, Geom g) {
  for (int64_t i = grid_first(); i < total; i += grid_stride()) {
    const int64_t ow = i % W_out;
    const int64_t oh = (i / W_out) % H_out;
    const int64_t p = i / (W_out * H_out);
    const float* x_plane = x + p * H * W;
    int64_t h0 = oh * g.sh - g.ph;
    const int64_t h1 = min(h0 + (g.kh - 1) * g.dh + 1, H);
    while (h0 < 0) h0 += g.dh;
    int64_t w0 = ow * g.sw - g.pw;
    const int64_t w1 = min(w0 + (g.kw - 1) * g.dw + 1, W);
    while (w0 < 0) w0 += g.dw;
    int64_t best_i = h0 * W + w0;
    float best = -INFINITY;
    for (int64_t ih = h0; ih < h1; ih += g.dh) {
      for (int64_t iw = w0; iw < w1; iw += g.dw) {
        const float v = x_plane[ih * W + iw];
        if (v > best || isnan(v)) {
          best = v;
          best_i = ih * W + iw;
        }
      }
    }
    y[i] = best;
    if (indices) indices[i] = static_cast<int32_t>(best_i);
  }
}

// The output positions o (in [0, n_out)) whose window [o * S - P, o * S - P + (K - 1) * D]
// contains input position in: o * S <= in + P and o * S >= in + P - (K - 1) * D.
struct Range {
  int64_t lo, hi;  // inclusive lo, exclusive hi
};
__device__ inline Range covering(int64_t in, int64_t K, int64_t S, int64_t P, int64_t D,
                                 int64_t n_out) {
  const int64_t low = in + P - (K - 1) * D;  // may be negative
  const int64_t lo = low <= 0 ? 0 : (low + S - 1) / S;
  const int64_t hi = min((in + P) / S + 1, n_out);  // in + P >= 0
  return {lo, hi};
}

__global__ void maxpool_backward_kernel(const float* __restrict__ dy,
                                        const int32_t* __restrict__ indices, float* __restrict__ dx,
                                        int64_t total, int64_t H, int64_t W, int64_t H_out,
                                        int64_t W_out, Geom g) {
  for (int64_t i = grid_first(); i < total; i += grid_stride()) {
    const int64_t iw = i % W;
    const int64_t ih = (i / W) % H;
    const int64_t p = i / (W * H);
    const int32_t self = static_cast<int32_t>(ih * W + iw);
    const float* dy_plane = dy + p * H_out * W_out;
    const int32_t* idx_plane = indices + p * H_out * W_out;
    const Range rh = covering(ih, g.kh, g.sh, g.ph, g.dh, H_out);
    const Range rw = covering(iw, g.kw, g.sw, g.pw, g.dw, W_out);
    float sum = 0.0f;
    for (int64_t oh = rh.lo; oh < rh.hi; ++oh) {
      for (int64_t ow = rw.lo; ow < rw.hi; ++ow) {
        const int64_t o = oh * W_out + ow;
        if (idx_plane[o] == self) sum += dy_plane[o];
      }
    }
    dx[i] = sum;
  }
}

// The CPU's scatter, one thread per plane: each window's gradient added to its saved winner in
// ascending output order, winners outside the plane skipped. Used only when some window has no tap
// inside the input (possible with dilation and small inputs): such a window's saved index is
// h0 * W + w0 past the input's edge, which can still name an element of the plane that the window
// does not cover (w0 >= W with h0 + 1 < H), and the CPU (as PyTorch) adds its gradient there; the
// gather, visiting only covering windows, would miss it.
__global__ void maxpool_backward_scatter_kernel(const float* __restrict__ dy,
                                                const int32_t* __restrict__ indices,
                                                float* __restrict__ dx, int64_t planes,
                                                int64_t in_plane, int64_t out_plane) {
  for (int64_t p = grid_first(); p < planes; p += grid_stride()) {
    float* dx_plane = dx + p * in_plane;
    for (int64_t i = 0; i < in_plane; ++i) dx_plane[i] = 0.0f;
    const float* dy_plane = dy + p * out_plane;
    const int32_t* idx_plane = indices + p * out_plane;
    for (int64_t o = 0; o < out_plane; ++o) {
      const int32_t at = idx_plane[o];
      if (at >= 0 && at < in_plane) dx_plane[at] += dy_plane[o];
    }
  }
}

// Whether some output position along one axis has a window with no tap inside [0, n), walked as
// the forward kernel walks it.
bool has_empty_window(int64_t n, int64_t n_out, int64_t K, int64_t S, int64_t P, int64_t D) {
  for (int64_t o = 0; o < n_out; ++o) {
    int64_t lo = o * S - P;
    const int64_t hi = std::min(lo + (K - 1) * D + 1, n);
    while (lo < 0) lo += D;
    if (lo >= hi) return true;
  }
  return false;
}

}  // namespace

Tensor maxpool2d_forward(const Tensor& x, const Pool2dGeometry& g, const Shape& y_shape,
                         Tensor* indices) {
  Tensor y = Tensor::empty(y_shape, Device::CUDA);
  int32_t* idx = nullptr;
  if (indices) {
    idx = detail::reuse_or_empty(*indices, y_shape, Device::CUDA, Dtype::Int32).data_int();
  }
  const int64_t total = y.numel();
  if (total == 0) return y;
  maxpool_forward_kernel<<<grid_for(total), kBlock>>>(x.data(), y.data(), idx, total, x.size(2),
                                                      x.size(3), y_shape[2], y_shape[3], geom(g));
  check_launch("maxpool2d");
  return y;
}

Tensor maxpool2d_backward(const Shape& x_shape, const Tensor& dy, const Tensor& indices,
                          const Pool2dGeometry& g) {
  Tensor dx = Tensor::empty(x_shape, Device::CUDA);
  const int64_t total = dx.numel();
  if (total == 0) return dx;
  if (has_empty_window(x_shape[2], dy.size(2), g.kernel.h, g.stride.h, g.padding.h, g.dilation.h) ||
      has_empty_window(x_shape[3], dy.size(3), g.kernel.w, g.stride.w, g.padding.w, g.dilation.w)) {
    const int64_t planes = x_shape[0] * x_shape[1];
    maxpool_backward_scatter_kernel<<<grid_for(planes), kBlock>>>(
        dy.data(), indices.data_int(), dx.data(), planes, x_shape[2] * x_shape[3],
        dy.size(2) * dy.size(3));
    check_launch("maxpool2d_backward");
    return dx;
  }
  maxpool_backward_kernel<<<grid_for(total), kBlock>>>(dy.data(), indices.data_int(), dx.data(),
                                                       total, x_shape[2], x_shape[3], dy.size(2),
                                                       dy.size(3), geom(g));
  check_launch("maxpool2d_backward");
  return dx;
}

}  // namespace cnn::cuda
