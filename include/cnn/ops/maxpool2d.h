// maxpool2d: PyTorch's nn.functional.max_pool2d. Padding is -inf (a padded cell never wins);
// padding must be at most half the kernel; with ceil_mode a last window that would start in the
// right/bottom padding is dropped.
//
// x: (N, C, H, W) -> y: (N, C, H_out, W_out),
// H_out = floor_or_ceil((H + 2 P_h - D_h * (K_h - 1) - 1) / S_h) + 1.
#pragma once

#include <cstdint>
#include <vector>

#include "cnn/size2.h"
#include "cnn/tensor.h"

namespace cnn {

struct Pool2dGeometry {
  Size2 kernel, stride, padding = 0, dilation = 1;
  bool ceil_mode = false;
};

// Validates the options alone (kernel, stride, dilation > 0; 0 <= padding <= kernel / 2).
void check_pool2d_geometry(const Pool2dGeometry& g);

// One spatial output size, PyTorch's pooling_output_shape.
int64_t pool_output_size(int64_t in, int64_t k, int64_t pad, int64_t stride, int64_t dilation,
                         bool ceil_mode);

// Output shape; throws when x is not 4-D or the output would be empty.
Shape maxpool2d_output_shape(const Shape& x, const Pool2dGeometry& g);

// indices, if not null (it may be, for inference), receives for every output element the position h
// * W + w of the winning input element in its (n, c) plane, as PyTorch's return_indices gives.
Tensor maxpool2d_forward(const Tensor& x, const Pool2dGeometry& g,
                         std::vector<int32_t>* indices = nullptr);

// dy: (N, C, H_out, W_out) -> dx: (N, C, H, W), overwritten. Routes each gradient to the
// element that won its window.
Tensor maxpool2d_backward(const Shape& x_shape, const Tensor& dy,
                          const std::vector<int32_t>& indices);

}  // namespace cnn
