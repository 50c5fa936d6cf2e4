// maxpool2d, fast CPU kernel (dilation 1). Called by the dispatcher after its shape checks.
#pragma once

#include "cnn/ops/maxpool2d.h"

namespace cnn::fast {

// x: (N, C, H, W) -> y_shape; indices (one per output element) as cnn::maxpool2d_forward.
Tensor maxpool2d_forward(const Tensor& x, const Pool2dGeometry& g, const Shape& y_shape,
                         int32_t* indices);

// The same on raw planes, on the calling thread: x (planes, H, W) -> y (planes, H_out, W_out);
// indices may be null.
void maxpool2d_planes(const float* x, int64_t planes, int64_t H, int64_t W, const Pool2dGeometry& g,
                      int64_t H_out, int64_t W_out, float* y, int32_t* indices);

}  // namespace cnn::fast
