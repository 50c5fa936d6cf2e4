// linear: y = x w^T + b, PyTorch's nn.functional.linear.
//
// x: (..., in_features), w: (out_features, in_features), b: (out_features) or undefined
//   -> y: (..., out_features)
#pragma once

#include "cnn/tensor.h"

namespace cnn {

Shape linear_output_shape(const Shape& x, const Shape& w);
Tensor linear_forward(const Tensor& x, const Tensor& w, const Tensor& b);
// dy: (..., out_features). Overwrites *dx; accumulates into *dw and *db. Any may be null.
void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor* dw,
                     Tensor* db);

}  // namespace cnn
