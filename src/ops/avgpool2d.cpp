// avgpool2d and adaptive_avgpool2d: shape checks and one kernel each way, PyTorch's loops
// (aten/src/ATen/native/cpu/AvgPoolKernel.cpp, AdaptiveAvgPoolKernel.cpp), planes split across
// threads.
#include "cnn/ops/avgpool2d.h"

#include <algorithm>
#include <string>

#include "check.h"
#include "cnn/error.h"
#include "cnn/ops/maxpool2d.h"
#include "cuda/ops.h"

namespace cnn {

namespace {

// One output window of avg_pool2d along one axis: [lo, hi) clipped to the input, and its length
// clipped to the padded input (the count_include_pad divisor's factor).
struct Span {
  int64_t lo, hi, padded;
};
Span window(int64_t o, int64_t K, int64_t S, int64_t P_begin, int64_t P_end, int64_t n) {
  const int64_t start = o * S - P_begin;
  const int64_t end = std::min(start + K, n + P_end);
  return {std::max<int64_t>(start, 0), std::min(end, n), end - start};
}

// n averages of 2x2 windows wholly inside the input, the first at r0 (rows r0, r0 + W): each sum
// in the order of the general loop (row by row), divided by d. A loop the compiler vectorises.
__attribute__((target_clones("avx2", "default"))) void pool_rows_2x2(const float* __restrict r0,
                                                                     int64_t W, int64_t n, float d,
                                                                     float* __restrict y) {
  const float* r1 = r0 + W;
  for (int64_t i = 0; i < n; ++i) {
    float sum = r0[2 * i] + r0[2 * i + 1];
    sum += r1[2 * i];
    sum += r1[2 * i + 1];
    y[i] = sum / d;
  }
}

// PyTorch's divide_factor.
int64_t divisor(const AvgPool2dGeometry& g, const Span& h, const Span& w) {
  if (g.divisor_override) return *g.divisor_override;
  if (g.count_include_pad) return h.padded * w.padded;
  return (h.hi - h.lo) * (w.hi - w.lo);
}

// Adaptive pooling's window along one axis: [floor(o n / n_out), ceil((o + 1) n / n_out)).
int64_t adaptive_start(int64_t o, int64_t n_out, int64_t n) { return (o * n) / n_out; }
int64_t adaptive_end(int64_t o, int64_t n_out, int64_t n) {
  return ((o + 1) * n + n_out - 1) / n_out;
}

void check_grad_shape(const char* op, const Shape& x_shape, const Tensor& dy, const Shape& want) {
  if (x_shape.size() != 4 || dy.shape() != want) {
    throw Error(std::string(op) + ": grad_output of shape " + shape_str(dy.shape()) +
                " does not match the output shape " + shape_str(want) + " of input shape " +
                shape_str(x_shape));
  }
}

}  // namespace

AvgPoolWindow avgpool2d_window(const AvgPool2dGeometry& g, int64_t H, int64_t W, int64_t oh,
                               int64_t ow) {
  const Size2 end = g.end_padding();
  const Span h = window(oh, g.kernel.h, g.stride.h, g.padding.h, end.h, H);
  const Span w = window(ow, g.kernel.w, g.stride.w, g.padding.w, end.w, W);
  return {h.lo, h.hi, w.lo, w.hi, divisor(g, h, w)};
}

AvgPoolWindow adaptive_avgpool2d_window(int64_t H, int64_t W, Size2 output_size, int64_t oh,
                                        int64_t ow) {
  const int64_t h0 = adaptive_start(oh, output_size.h, H), h1 = adaptive_end(oh, output_size.h, H);
  const int64_t w0 = adaptive_start(ow, output_size.w, W), w1 = adaptive_end(ow, output_size.w, W);
  return {h0, h1, w0, w1, (h1 - h0) * (w1 - w0)};
}

void check_avgpool2d_geometry(const AvgPool2dGeometry& g) {
  Pool2dGeometry p;
  p.kernel = g.kernel;
  p.stride = g.stride;
  p.padding = g.padding;
  p.padding_end = g.padding_end;
  check_pool2d_geometry(p);
  if (g.divisor_override && *g.divisor_override == 0) throw Error("divisor must be not zero");
}

Shape avgpool2d_output_shape(const Shape& x, const AvgPool2dGeometry& g) {
  check_avgpool2d_geometry(g);
  if (x.size() != 4) {
    throw Error("expected a 4-D input (N, C, H, W), got shape " + shape_str(x));
  }
  const Size2 end = g.end_padding();
  const int64_t H_out =
      pool_output_size(x[2], g.kernel.h, g.padding.h, end.h, g.stride.h, 1, g.ceil_mode);
  const int64_t W_out =
      pool_output_size(x[3], g.kernel.w, g.padding.w, end.w, g.stride.w, 1, g.ceil_mode);
  if (H_out < 1 || W_out < 1) {
    throw Error("input of shape " + shape_str(x) + " is too small: calculated output size (" +
                std::to_string(H_out) + " x " + std::to_string(W_out) + ") must be at least 1 x 1");
  }
  return {x[0], x[1], H_out, W_out};
}

Tensor avgpool2d_forward(const Tensor& x, const AvgPool2dGeometry& g) {
  const Device device = detail::op_device("avgpool2d", {{"input", x}});
  const Shape y_shape = avgpool2d_output_shape(x.shape(), g);
  if (device == Device::CUDA) return cuda::avgpool2d_forward(x, g, y_shape);
  Tensor y = Tensor::empty(y_shape);
  const int64_t planes = x.size(0) * x.size(1), H = x.size(2), W = x.size(3);
  const int64_t H_out = y_shape[2], W_out = y_shape[3];
  const Size2 end = g.end_padding();
  const bool two_by_two = g.kernel.all(2) && g.stride.all(2);
  // One output: PyTorch's sum over the window, row by row, divided once.
  auto average = [&](const float* x_plane, const Span& h, int64_t ow) {
    const Span w = window(ow, g.kernel.w, g.stride.w, g.padding.w, end.w, W);
    // A window wholly in the padding (possible only with ceil_mode) averages nothing: 0.
    if (h.lo >= h.hi || w.lo >= w.hi) return 0.0f;
    float sum = 0.0f;
    for (int64_t ih = h.lo; ih < h.hi; ++ih) {
      for (int64_t iw = w.lo; iw < w.hi; ++iw) sum += x_plane[ih * W + iw];
    }
    return sum / static_cast<float>(divisor(g, h, w));
  };
#pragma omp parallel for schedule(static) if (planes * H * W > 32768)
  for (int64_t p = 0; p < planes; ++p) {
    const float* x_plane = x.data() + p * H * W;
    float* y_plane = y.data() + p * H_out * W_out;
    for (int64_t oh = 0; oh < H_out; ++oh) {
      const Span h = window(oh, g.kernel.h, g.stride.h, g.padding.h, end.h, H);
      float* y_row = y_plane + oh * W_out;
      int64_t ow = 0;
      if (two_by_two && h.hi - h.lo == 2) {
        // The windows [lo, hi) lie wholly inside the input's columns: one divisor for all.
        const int64_t lo = (g.padding.w + 1) / 2;
        const int64_t hi = std::min(W_out, (W + g.padding.w) / 2);
        if (lo < hi) {
          for (; ow < lo; ++ow) y_row[ow] = average(x_plane, h, ow);
          const Span w = window(lo, 2, 2, g.padding.w, end.w, W);
          const float d = static_cast<float>(divisor(g, h, w));
          pool_rows_2x2(x_plane + h.lo * W + w.lo, W, hi - lo, d, y_row + lo);
          ow = hi;
        }
      }
      for (; ow < W_out; ++ow) y_row[ow] = average(x_plane, h, ow);
    }
  }
  return y;
}

Tensor avgpool2d_backward(const Shape& x_shape, const Tensor& dy, const AvgPool2dGeometry& g) {
  const Device device = detail::op_device("avgpool2d_backward", {{"grad_output", dy}});
  check_grad_shape("avgpool2d_backward", x_shape, dy, avgpool2d_output_shape(x_shape, g));
  if (device == Device::CUDA) return cuda::avgpool2d_backward(x_shape, dy, g);
  Tensor dx = Tensor::empty(x_shape);  // each plane is zeroed by the thread that fills it
  const int64_t planes = x_shape[0] * x_shape[1], H = x_shape[2], W = x_shape[3];
  const int64_t H_out = dy.size(2), W_out = dy.size(3);
  const Size2 end = g.end_padding();
#pragma omp parallel for schedule(static) if (planes * H * W > 32768)
  for (int64_t p = 0; p < planes; ++p) {
    float* dx_plane = dx.data() + p * H * W;
    std::fill(dx_plane, dx_plane + H * W, 0.0f);
    const float* dy_plane = dy.data() + p * H_out * W_out;
    for (int64_t oh = 0; oh < H_out; ++oh) {
      const Span h = window(oh, g.kernel.h, g.stride.h, g.padding.h, end.h, H);
      for (int64_t ow = 0; ow < W_out; ++ow) {
        const Span w = window(ow, g.kernel.w, g.stride.w, g.padding.w, end.w, W);
        if (h.lo >= h.hi || w.lo >= w.hi) continue;
        const float d = dy_plane[oh * W_out + ow] / static_cast<float>(divisor(g, h, w));
        for (int64_t ih = h.lo; ih < h.hi; ++ih) {
          for (int64_t iw = w.lo; iw < w.hi; ++iw) dx_plane[ih * W + iw] += d;
        }
      }
    }
  }
  return dx;
}

Shape adaptive_avgpool2d_output_shape(const Shape& x, Size2 output_size) {
  if (output_size.h <= 0 || output_size.w <= 0) {
    throw Error("output_size must be positive, got " + output_size.pair_str());
  }
  if (x.size() != 4) {
    throw Error("expected a 4-D input (N, C, H, W), got shape " + shape_str(x));
  }
  if (x[2] <= 0 || x[3] <= 0) {
    throw Error("expected an input with non-zero height and width, got shape " + shape_str(x));
  }
  return {x[0], x[1], output_size.h, output_size.w};
}

Tensor adaptive_avgpool2d_forward(const Tensor& x, Size2 output_size) {
  const Device device = detail::op_device("adaptive_avgpool2d", {{"input", x}});
  const Shape y_shape = adaptive_avgpool2d_output_shape(x.shape(), output_size);
  if (device == Device::CUDA) return cuda::adaptive_avgpool2d_forward(x, y_shape);
  Tensor y = Tensor::empty(y_shape);
  const int64_t planes = x.size(0) * x.size(1), H = x.size(2), W = x.size(3);
  const int64_t H_out = y_shape[2], W_out = y_shape[3];
#pragma omp parallel for schedule(static) if (planes * H * W > 32768)
  for (int64_t p = 0; p < planes; ++p) {
    const float* x_plane = x.data() + p * H * W;
    float* y_plane = y.data() + p * H_out * W_out;
    for (int64_t oh = 0; oh < H_out; ++oh) {
      const int64_t h0 = adaptive_start(oh, H_out, H), h1 = adaptive_end(oh, H_out, H);
      for (int64_t ow = 0; ow < W_out; ++ow) {
        const int64_t w0 = adaptive_start(ow, W_out, W), w1 = adaptive_end(ow, W_out, W);
        float sum = 0.0f;
        for (int64_t ih = h0; ih < h1; ++ih) {
          for (int64_t iw = w0; iw < w1; ++iw) sum += x_plane[ih * W + iw];
        }
        y_plane[oh * W_out + ow] = sum / static_cast<float>((h1 - h0) * (w1 - w0));
      }
    }
  }
  return y;
}

Tensor adaptive_avgpool2d_backward(const Shape& x_shape, const Tensor& dy) {
  const Device device = detail::op_device("adaptive_avgpool2d_backward", {{"grad_output", dy}});
  if (dy.dim() != 4) {
    throw Error("adaptive_avgpool2d_backward: grad_output of shape " + shape_str(dy.shape()) +
                " is not 4-D");
  }
  const Size2 out(dy.size(2), dy.size(3));
  check_grad_shape("adaptive_avgpool2d_backward", x_shape, dy,
                   adaptive_avgpool2d_output_shape(x_shape, out));
  if (device == Device::CUDA) return cuda::adaptive_avgpool2d_backward(x_shape, dy);
  Tensor dx = Tensor::empty(x_shape);
  const int64_t planes = x_shape[0] * x_shape[1], H = x_shape[2], W = x_shape[3];
  const int64_t H_out = out.h, W_out = out.w;
#pragma omp parallel for schedule(static) if (planes * H * W > 32768)
  for (int64_t p = 0; p < planes; ++p) {
    float* dx_plane = dx.data() + p * H * W;
    std::fill(dx_plane, dx_plane + H * W, 0.0f);
    const float* dy_plane = dy.data() + p * H_out * W_out;
    for (int64_t oh = 0; oh < H_out; ++oh) {
      const int64_t h0 = adaptive_start(oh, H_out, H), h1 = adaptive_end(oh, H_out, H);
      for (int64_t ow = 0; ow < W_out; ++ow) {
        const int64_t w0 = adaptive_start(ow, W_out, W), w1 = adaptive_end(ow, W_out, W);
        const float d = dy_plane[oh * W_out + ow] / static_cast<float>((h1 - h0) * (w1 - w0));
        for (int64_t ih = h0; ih < h1; ++ih) {
          for (int64_t iw = w0; iw < w1; ++iw) dx_plane[ih * W + iw] += d;
        }
      }
    }
  }
  return dx;
}

}  // namespace cnn
