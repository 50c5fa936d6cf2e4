// flatten: merges dimensions start_dim..end_dim (negative counts from the end), PyTorch's
// torch.flatten. (N, C, H, W) with (1, -1) -> (N, C * H * W), in C, H, W order.
#pragma once

#include "cnn/tensor.h"

namespace cnn {

Shape flatten_output_shape(const Shape& x, int64_t start_dim, int64_t end_dim);
// Shares x's storage. The backward pass is dy.reshape(x.shape()).
Tensor flatten_forward(const Tensor& x, int64_t start_dim, int64_t end_dim);

}  // namespace cnn
