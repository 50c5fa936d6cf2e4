// linear, reference CPU kernels. Called by the dispatcher after its shape checks.
#pragma once

#include "cnn/ops/linear.h"

namespace cnn::reference {

// x: (..., in), w: (out, in), b: (out) or undefined -> y_shape (..., out)
Tensor linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Shape& y_shape);
// Overwrites *dx (already shaped like x); accumulates into *dw and *db; any may be null.
void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor* dw,
                     Tensor* db);

}  // namespace cnn::reference
