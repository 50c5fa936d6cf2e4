#include "cnn/ops/fused.h"

#include <algorithm>

#include "cnn/error.h"
#include "cnn/kernels.h"
#include "cnn/ops/relu.h"
#include "fast/conv2d.h"
#include "fast/maxpool2d.h"

namespace cnn {

Tensor conv2d_relu_pool_forward(const Tensor& x, const Tensor& w, const Tensor& b,
                                const Conv2dGeometry& g, const Pool2dGeometry* pool) {
  const bool fast = kernel_set() == KernelSet::Fast && g.groups == 1 &&
                    (!pool || pool->dilation.all(1)) && x.device() == Device::CPU;
  if (!fast) {
    const Tensor y = relu_forward(conv2d_forward(x, w, b, g));
    return pool ? maxpool2d_forward(y, *pool, nullptr) : y;
  }
  const Shape conv_shape = conv2d_output_shape(x.shape(), w.shape(), g);
  if (b.defined() && (b.dim() != 1 || b.size(0) != w.size(0))) {
    throw Error("expected a bias of shape (" + std::to_string(w.size(0)) + ",), got " +
                shape_str(b.shape()));
  }
  const Shape y_shape = pool ? maxpool2d_output_shape(conv_shape, *pool) : conv_shape;
  return fast::conv2d_relu_pool_forward(x, w, b, g, conv_shape, pool, y_shape);
}

Tensor relu_maxpool2d_forward(const Tensor& x, const Pool2dGeometry& g,
                              std::vector<int32_t>* indices) {
  const bool fast = kernel_set() == KernelSet::Fast && x.device() == Device::CPU &&
                    g.kernel.all(2) && g.stride.all(2) && g.dilation.all(1) &&
                    g.padding.h == g.padding.w && x.dim() == 4;
  if (!fast) return maxpool2d_forward(relu_forward(x), g, indices);
  check_pool2d_geometry(g);
  const Shape y_shape = maxpool2d_output_shape(x.shape(), g);  // throws for a bad x
  Tensor y = Tensor::empty(y_shape);
  const int64_t planes = x.size(0) * x.size(1), H = x.size(2), W = x.size(3);
  const int64_t H_out = y_shape[2], W_out = y_shape[3], plane_out = H_out * W_out;
  std::vector<int32_t> own;
  std::vector<int32_t>& kept = indices ? *indices : own;
  kept.resize(static_cast<std::size_t>(planes * plane_out));
  int32_t* idx = kept.data();
#pragma omp parallel for schedule(static) if (planes * plane_out > 16384)
  for (int64_t p = 0; p < planes; ++p) {
    float* y_plane = y.data() + p * plane_out;
    fast::maxpool2x2_indices_planes(x.data() + p * H * W, 1, H, W, g.padding.h, H_out, W_out,
                                    y_plane, idx + p * plane_out);
    for (int64_t i = 0; i < plane_out; ++i) y_plane[i] = y_plane[i] < 0.0f ? 0.0f : y_plane[i];
  }
  return y;
}

Tensor relu_maxpool2d_backward(const Shape& x_shape, const Tensor& y, const Tensor& dy,
                               const std::vector<int32_t>& indices) {
  if (x_shape.size() != 4 || dy.dim() != 4 || y.shape() != dy.shape() || dy.size(0) != x_shape[0] ||
      dy.size(1) != x_shape[1] || static_cast<int64_t>(indices.size()) != dy.numel()) {
    throw Error("relu_maxpool2d_backward: grad_output of shape " + shape_str(dy.shape()) +
                " does not match output " + shape_str(y.shape()) + ", input shape " +
                shape_str(x_shape) + " and " + std::to_string(indices.size()) + " saved indices");
  }
  Tensor dx = Tensor::empty(x_shape);  // each plane is zeroed by the thread that fills it
  const int64_t planes = x_shape[0] * x_shape[1], in_plane = x_shape[2] * x_shape[3];
  const int64_t out_plane = dy.size(2) * dy.size(3);
#pragma omp parallel for schedule(static) if (planes * in_plane > 32768)
  for (int64_t p = 0; p < planes; ++p) {
    float* dx_plane = dx.data() + p * in_plane;
    std::fill(dx_plane, dx_plane + in_plane, 0.0f);
    const float* dy_plane = dy.data() + p * out_plane;
    const float* y_plane = y.data() + p * out_plane;
    const int32_t* idx = indices.data() + p * out_plane;
    for (int64_t i = 0; i < out_plane; ++i) {
      if (!(y_plane[i] <= 0.0f)) dx_plane[idx[i]] += dy_plane[i];
    }
  }
  return dx;
}

}  // namespace cnn
