// Fused blocks of layers, which Sequential runs in place of the layers one after the other.
#pragma once

#include "cnn/ops/batchnorm2d.h"
#include "cnn/ops/conv2d.h"
#include "cnn/ops/maxpool2d.h"

namespace cnn {

// A BatchNorm2d in evaluation mode: its parameters and running statistics (shared, not copied).
struct BatchNormEval {
  Tensor weight, bias;  // (C) or undefined (affine=False)
  Tensor running_mean, running_var;
  double eps = 1e-5;
};

// An element-wise activation other than the ReLU in a fused block, computed as its op computes
// it (cnn/ops/activation.h): tanh, sigmoid and SiLU through the same vectorised spans, the leaky
// ReLU with the same expression. The same numbers, bit for bit.
enum class BlockActivation { None, Tanh, Sigmoid, SiLU, LeakyReLU };

// What runs after the convolution in a fused inference block, in this order; each is optional.
struct ConvEpilogue {
  const BatchNormEval* batchnorm = nullptr;
  bool relu = false;
  const Pool2dGeometry* pool = nullptr;  // MaxPool2d, only after a ReLU
  // In place of the ReLU (not with it, and with no pool after it).
  BlockActivation activation = BlockActivation::None;
  float negative_slope = 0.01f;  // the leaky ReLU's
};

// Inference: Conv2d [-> BatchNorm2d (evaluation)] [-> ReLU [-> MaxPool2d] | -> Tanh, Sigmoid,
// SiLU or LeakyReLU] image by image, so
// the convolution's output stays in the cache and is never stored whole; the same numbers, bit
// for bit, as the layers one after the other (the normalisation is applied to the convolution's
// output exactly as batchnorm2d_forward applies it, not folded into the weights, which would
// round differently), except where threads share one image by output channels: there a share
// of the product's rows may be summed in another order (the last places). Nothing is kept for a
// backward pass: Sequential uses this under NoGradGuard only.
Tensor conv2d_block_forward(const Tensor& x, const Tensor& w, const Tensor& b,
                            const Conv2dGeometry& g, const ConvEpilogue& after);

// Inference: the tutorial's Conv2d -> ReLU -> MaxPool2d (or Conv2d -> ReLU) run image by image,
// so the convolution's output stays in the cache and is never stored whole. Nothing is kept for
// a backward pass: Sequential uses this only under NoGradGuard, where the result is the same as
// running the three layers one after the other.
// x: (N, C_in, H, W) -> (N, C_out, H_pool, W_pool), or (N, C_out, H_out, W_out) without a pool.
// pool: null for Conv2d -> ReLU alone.
Tensor conv2d_relu_pool_forward(const Tensor& x, const Tensor& w, const Tensor& b,
                                const Conv2dGeometry& g, const Pool2dGeometry* pool);

// Training: ReLU -> MaxPool2d as one op, y = maxpool2d(relu(x)), without the ReLU's full-size
// output. ReLU and max-pooling commute, so a 2x2 / stride-2 pool on the fast kernels pools x and
// clamps the pooled values; other pools run the two ops. indices: as maxpool2d_forward's on
// relu(x), except in windows whose output is 0, where the gradient is 0 either way.
Tensor relu_maxpool2d_forward(const Tensor& x, const Pool2dGeometry& g, Tensor* indices);

// dx = relu_backward(maxpool2d_backward(dy)): each window's gradient goes to its winner where
// the output y is positive (or NaN, as relu_backward lets it through); 0 everywhere else.
Tensor relu_maxpool2d_backward(const Shape& x_shape, const Tensor& y, const Tensor& dy,
                               const Tensor& indices, const Pool2dGeometry& g);

}  // namespace cnn
