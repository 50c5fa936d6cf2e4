#include "cnn/ops/fused.h"

#include <algorithm>

#include "check.h"
#include "cnn/error.h"
#include "cnn/kernels.h"
#include "cnn/ops/activation.h"
#include "cnn/ops/relu.h"
#include "cuda/ops.h"
#include "fast/conv2d.h"
#include "fast/maxpool2d.h"
#include "pool_backward.h"

namespace cnn {

Tensor conv2d_block_forward(const Tensor& x, const Tensor& w, const Tensor& b,
                            const Conv2dGeometry& g, const ConvEpilogue& after) {
  if (after.pool && !after.relu) {
    throw Error("conv2d_block_forward: a pool in the block needs the ReLU before it");
  }
  if (after.relu && after.activation != BlockActivation::None) {
    throw Error("conv2d_block_forward: a block has one activation, the ReLU or another");
  }
  const Pool2dGeometry* pool = after.pool;
  const bool fast = kernel_set() == KernelSet::Fast && fast::conv2d_supports(g) &&
                    (!pool || pool->dilation.all(1)) && x.device() == Device::CPU;
  if (!fast) {
    Tensor y = conv2d_forward(x, w, b, g);
    if (const BatchNormEval* bn = after.batchnorm) {
      Tensor mean = bn->running_mean, var = bn->running_var;
      y = batchnorm2d_forward(y, bn->weight, bn->bias, &mean, &var, /*training=*/false, 0.0,
                              bn->eps);
    }
    if (after.relu) y = relu_forward(y);
    switch (after.activation) {
      case BlockActivation::Tanh:
        return tanh_forward(y);
      case BlockActivation::Sigmoid:
        return sigmoid_forward(y);
      case BlockActivation::SiLU:
        return silu_forward(y);
      case BlockActivation::LeakyReLU:
        return leaky_relu_forward(y, after.negative_slope);
      case BlockActivation::None:
        break;
    }
    return pool ? maxpool2d_forward(y, *pool, nullptr) : y;
  }
  const Shape conv_shape = conv2d_output_shape(x.shape(), w.shape(), g);
  if (b.defined() && (b.dim() != 1 || b.size(0) != w.size(0))) {
    throw Error("expected a bias of shape (" + std::to_string(w.size(0)) + ",), got " +
                shape_str(b.shape()));
  }
  ChannelAffine affine;
  if (const BatchNormEval* bn = after.batchnorm) {
    affine =
        batchnorm2d_eval_affine(bn->weight, bn->bias, bn->running_mean, bn->running_var, bn->eps);
    if (affine.scale.size(0) != conv_shape[1]) {
      throw Error("conv2d_block_forward: the batch norm has " +
                  std::to_string(affine.scale.size(0)) + " channels, the convolution " +
                  std::to_string(conv_shape[1]));
    }
  }
  const Shape y_shape = pool ? maxpool2d_output_shape(conv_shape, *pool) : conv_shape;
  return fast::conv2d_block_forward(x, w, b, g, conv_shape,
                                    {after.batchnorm ? affine.scale.data() : nullptr,
                                     after.batchnorm ? affine.shift.data() : nullptr, after.relu,
                                     pool, after.activation, after.negative_slope},
                                    y_shape);
}

Tensor conv2d_relu_pool_forward(const Tensor& x, const Tensor& w, const Tensor& b,
                                const Conv2dGeometry& g, const Pool2dGeometry* pool) {
  return conv2d_block_forward(x, w, b, g, {nullptr, /*relu=*/true, pool});
}

Tensor relu_maxpool2d_forward(const Tensor& x, const Pool2dGeometry& g, Tensor* indices) {
  const Device device = detail::op_device("relu_maxpool2d", {{"input", x}});
  const bool fast = kernel_set() == KernelSet::Fast && device == Device::CPU && g.kernel.all(2) &&
                    g.stride.all(2) && g.dilation.all(1) && g.padding.h == g.padding.w &&
                    x.dim() == 4;
  if (!fast) return maxpool2d_forward(relu_forward(x), g, indices);
  check_pool2d_geometry(g);
  const Shape y_shape = maxpool2d_output_shape(x.shape(), g);  // throws for a bad x
  Tensor y = Tensor::empty(y_shape);
  const int64_t planes = x.size(0) * x.size(1), H = x.size(2), W = x.size(3);
  const int64_t H_out = y_shape[2], W_out = y_shape[3], plane_out = H_out * W_out;
  Tensor own;
  Tensor& kept = indices ? *indices : own;
  int32_t* idx = detail::reuse_or_empty(kept, y_shape, Device::CPU, Dtype::Int32).data_int();
#pragma omp parallel for schedule(static) if (planes * plane_out > 16384)
  for (int64_t p = 0; p < planes; ++p) {
    float* y_plane = y.data() + p * plane_out;
    fast::maxpool2x2_indices_planes(x.data() + p * H * W, 1, H, W, g.padding.h, H_out, W_out,
                                    y_plane, idx + p * plane_out, /*relu=*/true);
  }
  return y;
}

Tensor relu_maxpool2d_backward(const Shape& x_shape, const Tensor& y, const Tensor& dy,
                               const Tensor& indices, const Pool2dGeometry& g) {
  const Device device =
      detail::op_device("relu_maxpool2d_backward",
                        {{"output", y}, {"grad_output", dy}, {"indices", indices, Dtype::Int32}});
  if (device == Device::CUDA) {
    detail::check_pool_backward("relu_maxpool2d_backward", x_shape, dy, indices, &y);
    return cuda::maxpool2d_backward(x_shape, cuda::relu_backward(y, dy), indices, g);
  }
  return detail::scatter_to_winners("relu_maxpool2d_backward", x_shape, dy, indices, &y);
}

}  // namespace cnn
