// relu: y = max(x, 0), any shape.
#pragma once

#include "cnn/tensor.h"

namespace cnn {

Tensor relu_forward(const Tensor& x);
// y: the forward output, dy: same shape -> dx = dy where y > 0, else 0 (PyTorch's gradient at 0
// is 0).
Tensor relu_backward(const Tensor& y, const Tensor& dy);

}  // namespace cnn
