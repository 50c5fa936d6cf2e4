// maxpool2d, fast CPU kernel (dilation 1). Called by the dispatcher after its shape checks.
#pragma once

#include "cnn/ops/maxpool2d.h"

namespace cnn::fast {

// x: (N, C, H, W) -> y_shape; indices (one per output element) as cnn::maxpool2d_forward.
Tensor maxpool2d_forward(const Tensor& x, const Pool2dGeometry& g, const Shape& y_shape,
                         int32_t* indices);

}  // namespace cnn::fast
