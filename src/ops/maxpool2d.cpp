// maxpool2d: shape checks, the reference forward kernel, the dispatch to the fast one
// (fast/maxpool2d.cpp) or to CUDA (cuda/maxpool2d.cu), and the backward scatter.
#include "cnn/ops/maxpool2d.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "check.h"
#include "cnn/error.h"
#include "cnn/kernels.h"
#include "cuda/ops.h"
#include "fast/maxpool2d.h"
#include "pool_backward.h"

namespace cnn {

void check_pool2d_geometry(const Pool2dGeometry& g) {
  if (g.kernel.h <= 0 || g.kernel.w <= 0) {
    throw Error("kernel_size should be greater than zero, got " + g.kernel.pair_str());
  }
  if (g.stride.h <= 0 || g.stride.w <= 0) {
    throw Error("stride should be greater than zero, got " + g.stride.pair_str());
  }
  if (g.dilation.h <= 0 || g.dilation.w <= 0) {
    throw Error("dilation should be greater than zero, got " + g.dilation.pair_str());
  }
  const Size2 end = g.end_padding();
  const std::string shown =
      g.symmetric() ? g.padding.pair_str() : pool2d_padding_str(g.padding, g.padding_end);
  if (g.padding.h < 0 || g.padding.w < 0 || end.h < 0 || end.w < 0) {
    throw Error("padding must be non-negative, got " + shown);
  }
  if (std::max(g.padding.h, end.h) > g.kernel.h / 2 ||
      std::max(g.padding.w, end.w) > g.kernel.w / 2) {
    throw Error("pad should be at most half of kernel size, but got padding=" + shown +
                " for kernel_size=" + g.kernel.pair_str());
  }
}

int64_t pool_output_size(int64_t in, int64_t k, int64_t pad_begin, int64_t pad_end, int64_t stride,
                         int64_t dilation, bool ceil_mode) {
  const int64_t span =
      in + pad_begin + pad_end - dilation * (k - 1) - 1 + (ceil_mode ? stride - 1 : 0);
  // Floor division (span can be negative for a too small input).
  int64_t out = (span >= 0 ? span / stride : -((-span + stride - 1) / stride)) + 1;
  // The last window must start inside the input or its left padding.
  if (ceil_mode && (out - 1) * stride >= in + pad_begin) --out;
  return out;
}

std::string pool2d_padding_str(Size2 padding, const std::optional<Size2>& padding_end) {
  if (!padding_end || *padding_end == padding) return padding.str();
  const auto pair = [](int64_t a, int64_t b) {
    return "(" + std::to_string(a) + ", " + std::to_string(b) + ")";
  };
  return "(" + pair(padding.h, padding_end->h) + ", " + pair(padding.w, padding_end->w) + ")";
}

Shape maxpool2d_output_shape(const Shape& x, const Pool2dGeometry& g) {
  check_pool2d_geometry(g);
  if (x.size() != 4) {
    throw Error("expected a 4-D input (N, C, H, W), got shape " + shape_str(x));
  }
  const Size2 end = g.end_padding();
  const int64_t H_out =
      pool_output_size(x[2], g.kernel.h, g.padding.h, end.h, g.stride.h, g.dilation.h, g.ceil_mode);
  const int64_t W_out =
      pool_output_size(x[3], g.kernel.w, g.padding.w, end.w, g.stride.w, g.dilation.w, g.ceil_mode);
  if (H_out < 1 || W_out < 1) {
    throw Error("input of shape " + shape_str(x) + " is too small: calculated output size (" +
                std::to_string(H_out) + " x " + std::to_string(W_out) + ") must be at least 1 x 1");
  }
  return {x[0], x[1], H_out, W_out};
}

namespace {

// The reference kernel: every option, PyTorch's loop structure (start at the first tap inside
// the input, step by the dilation). The bottom/right padding needs nothing here: a window that
// runs past the input is clipped to it, as it is in ceil_mode.
Tensor reference_forward(const Tensor& x, const Pool2dGeometry& g, const Shape& y_shape,
                         int32_t* indices) {
  Tensor y = Tensor::empty(y_shape);
  const int64_t planes = x.size(0) * x.size(1), H = x.size(2), W = x.size(3);
  const int64_t H_out = y_shape[2], W_out = y_shape[3];
#pragma omp parallel for schedule(static) if (planes * H * W > 32768)
  for (int64_t p = 0; p < planes; ++p) {
    const float* x_plane = x.data() + p * H * W;
    float* y_plane = y.data() + p * H_out * W_out;
    // Without indices (inference), each row's go to a scratch row that is thrown away.
    std::vector<int32_t> scratch(indices ? 0 : static_cast<std::size_t>(W_out));
    int32_t* idx_plane = indices ? indices + p * H_out * W_out : scratch.data();
    for (int64_t oh = 0; oh < H_out; ++oh) {
      int64_t h0 = oh * g.stride.h - g.padding.h;
      const int64_t h1 = std::min(h0 + (g.kernel.h - 1) * g.dilation.h + 1, H);
      while (h0 < 0) h0 += g.dilation.h;
      for (int64_t ow = 0; ow < W_out; ++ow) {
        int64_t w0 = ow * g.stride.w - g.padding.w;
        const int64_t w1 = std::min(w0 + (g.kernel.w - 1) * g.dilation.w + 1, W);
        while (w0 < 0) w0 += g.dilation.w;
        // As PyTorch: the first maximum wins, and NaN propagates.
        int64_t best_i = h0 * W + w0;
        float best = -std::numeric_limits<float>::infinity();
        for (int64_t ih = h0; ih < h1; ih += g.dilation.h) {
          for (int64_t iw = w0; iw < w1; iw += g.dilation.w) {
            const float v = x_plane[ih * W + iw];
            if (v > best || std::isnan(v)) {
              best = v;
              best_i = ih * W + iw;
            }
          }
        }
        y_plane[oh * W_out + ow] = best;
        idx_plane[indices ? oh * W_out + ow : ow] = static_cast<int32_t>(best_i);
      }
    }
  }
  return y;
}

}  // namespace

Tensor maxpool2d_forward(const Tensor& x, const Pool2dGeometry& g, Tensor* indices) {
  const Device device = detail::op_device("maxpool2d", {{"input", x}});
  const Shape y_shape = maxpool2d_output_shape(x.shape(), g);
  if (device == Device::CUDA) return cuda::maxpool2d_forward(x, g, y_shape, indices);
  int32_t* idx = nullptr;
  if (indices)
    idx = detail::reuse_or_empty(*indices, y_shape, Device::CPU, Dtype::Int32).data_int();
  if (kernel_set() == KernelSet::Fast && fast::maxpool2d_supports(g)) {
    return fast::maxpool2d_forward(x, g, y_shape, idx);
  }
  return reference_forward(x, g, y_shape, idx);
}

void detail::check_pool_backward(const char* op, const Shape& x_shape, const Tensor& dy,
                                 const Tensor& indices, const Tensor* gate) {
  if (x_shape.size() != 4 || dy.dim() != 4 || dy.size(0) != x_shape[0] ||
      dy.size(1) != x_shape[1] || !indices.defined() || indices.numel() != dy.numel() ||
      (gate && gate->shape() != dy.shape())) {
    throw Error(std::string(op) + ": grad_output of shape " + shape_str(dy.shape()) +
                " does not match input shape " + shape_str(x_shape) +
                (gate ? ", output shape " + shape_str(gate->shape()) : std::string()) + " and " +
                std::to_string(indices.defined() ? indices.numel() : 0) + " saved indices");
  }
}

Tensor detail::scatter_to_winners(const char* op, const Shape& x_shape, const Tensor& dy,
                                  const Tensor& indices, const Tensor* gate) {
  check_pool_backward(op, x_shape, dy, indices, gate);
  Tensor dx = Tensor::empty(x_shape);  // each plane is zeroed by the thread that fills it
  const int64_t planes = x_shape[0] * x_shape[1], in_plane = x_shape[2] * x_shape[3];
  const int64_t out_plane = dy.size(2) * dy.size(3);
#pragma omp parallel for schedule(static) if (planes * in_plane > 32768)
  for (int64_t p = 0; p < planes; ++p) {
    float* dx_plane = dx.data() + p * in_plane;
    std::fill(dx_plane, dx_plane + in_plane, 0.0f);
    const float* dy_plane = dy.data() + p * out_plane;
    const int32_t* idx = indices.data_int() + p * out_plane;
    // A winner outside the plane: a dilated window with no tap inside the input (its output is
    // -inf, as PyTorch's); no element gets its gradient.
    auto inside = [in_plane](int32_t i) { return i >= 0 && i < in_plane; };
    if (gate) {
      const float* g_plane = gate->data() + p * out_plane;
      for (int64_t i = 0; i < out_plane; ++i) {
        if (!(g_plane[i] <= 0.0f) && inside(idx[i])) dx_plane[idx[i]] += dy_plane[i];
      }
    } else {
      for (int64_t i = 0; i < out_plane; ++i) {
        if (inside(idx[i])) dx_plane[idx[i]] += dy_plane[i];
      }
    }
  }
  return dx;
}

Tensor maxpool2d_backward(const Shape& x_shape, const Tensor& dy, const Tensor& indices,
                          const Pool2dGeometry& g) {
  const Device device = detail::op_device(
      "maxpool2d_backward", {{"grad_output", dy}, {"indices", indices, Dtype::Int32}});
  if (device == Device::CUDA) {
    detail::check_pool_backward("maxpool2d_backward", x_shape, dy, indices, nullptr);
    return cuda::maxpool2d_backward(x_shape, dy, indices, g);
  }
  return detail::scatter_to_winners("maxpool2d_backward", x_shape, dy, indices);
}

}  // namespace cnn
