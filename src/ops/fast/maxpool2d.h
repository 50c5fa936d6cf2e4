// maxpool2d, fast CPU kernel (dilation 1). Called by the dispatcher after its shape checks.
#pragma once

#include "cnn/ops/maxpool2d.h"

namespace cnn::fast {

// Whether these kernels cover the case (the dispatcher runs the reference kernel otherwise).
inline bool maxpool2d_supports(const Pool2dGeometry& g) { return g.dilation.all(1); }

// x: (N, C, H, W) -> y_shape; indices (one per output element) as cnn::maxpool2d_forward.
Tensor maxpool2d_forward(const Tensor& x, const Pool2dGeometry& g, const Shape& y_shape,
                         int32_t* indices);

// The same on raw planes, on the calling thread: x (planes, H, W) -> y (planes, H_out, W_out);
// indices may be null. Reads g's top/left padding; windows past the bottom/right edge (padding or
// ceil_mode, as H_out and W_out say) are clipped to the input.
void maxpool2d_planes(const float* x, int64_t planes, int64_t H, int64_t W, const Pool2dGeometry& g,
                      int64_t H_out, int64_t W_out, float* y, int32_t* indices);

// The same for a 2x2 window with stride 2 and dilation 1 (top/left padding `pad`, 0 or 1; the
// bottom/right padding, 0 or 1, and ceil_mode show only in H_out and W_out: rows and columns past
// the input are -inf), without indices, for inference: each output row is the column-wise maximum
// of its two input rows (vectorised) followed by the maximum of neighbouring pairs. With relu the
// outputs are max(y, 0): ReLU and max-pooling commute, so a fused Conv2d -> ReLU -> MaxPool2d pools
// first and clamps a quarter of the values (the only difference: a window of -0.0 and negatives
// gives -0.0 where ReLU first would give +0.0, equal as values).
void maxpool2x2_planes(const float* x, int64_t planes, int64_t H, int64_t W, int64_t pad,
                       int64_t H_out, int64_t W_out, bool relu, float* y);

// The same with indices (training), as cnn::maxpool2d_forward gives them: PyTorch's choice on
// ties and NaN. With relu the outputs are max(y, 0) and the indices the pool's winners (the fused
// ReLU -> MaxPool2d, whose backward pass gates by the output).
void maxpool2x2_indices_planes(const float* x, int64_t planes, int64_t H, int64_t W, int64_t pad,
                               int64_t H_out, int64_t W_out, float* y, int32_t* indices,
                               bool relu = false);

}  // namespace cnn::fast
