// conv2d, reference CPU kernels. Called by the dispatcher after its shape checks.
#pragma once

#include "cnn/ops/conv2d.h"

namespace cnn::reference {

// x: (N, C_in, H, W), w: (C_out, C_in / groups, K_h, K_w), b: (C_out) or undefined -> y_shape
Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dGeometry& g,
                      const Shape& y_shape);
// Overwrites *dx (already shaped like x); accumulates into *dw and *db; any may be null.
void conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy, const Conv2dGeometry& g,
                     Tensor* dx, Tensor* dw, Tensor* db);

}  // namespace cnn::reference
