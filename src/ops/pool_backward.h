// The backward pass of max-pooling, shared by maxpool2d_backward and the fused
// ReLU -> MaxPool2d (src/ops/fused.cpp).
#pragma once

#include <vector>

#include "cnn/tensor.h"

namespace cnn::detail {

// dx (x_shape) = 0, then each output's gradient dy added at its winner's index (as
// maxpool2d_forward gave them). With gate (the pooled output after a ReLU), only where the gate
// is positive or NaN, as relu_backward lets a gradient through. Throws, naming op, when the
// shapes do not match.
// Host tensors only.
Tensor scatter_to_winners(const char* op, const Shape& x_shape, const Tensor& dy,
                          const Tensor& indices, const Tensor* gate = nullptr);
// The shape check of both (throws as above).
void check_pool_backward(const char* op, const Shape& x_shape, const Tensor& dy,
                         const Tensor& indices, const Tensor* gate);

}  // namespace cnn::detail
