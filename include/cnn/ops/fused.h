// Fused inference blocks: the tutorial's Conv2d -> ReLU -> MaxPool2d (or Conv2d -> ReLU) run
// image by image, so the convolution's output stays in the cache and is never stored whole.
// Nothing is kept for a backward pass: Sequential uses this only under NoGradGuard, where the
// result is the same as running the three layers one after the other.
//
// x: (N, C_in, H, W) -> (N, C_out, H_pool, W_pool), or (N, C_out, H_out, W_out) without a pool
#pragma once

#include "cnn/ops/conv2d.h"
#include "cnn/ops/maxpool2d.h"

namespace cnn {

// pool: null for Conv2d -> ReLU alone.
Tensor conv2d_relu_pool_forward(const Tensor& x, const Tensor& w, const Tensor& b,
                                const Conv2dGeometry& g, const Pool2dGeometry* pool);

}  // namespace cnn
