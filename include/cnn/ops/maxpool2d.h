// maxpool2d: PyTorch's nn.functional.max_pool2d. Padding is -inf (a padded cell never wins);
// padding must be at most half the kernel; with ceil_mode a last window that would start in the
// right/bottom padding is dropped.
//
// x: (N, C, H, W) -> y: (N, C, H_out, W_out),
// H_out = floor_or_ceil((H + P_top + P_bottom - D_h * (K_h - 1) - 1) / S_h) + 1, likewise W_out
// (PyTorch's P_top = P_bottom = P_h; they differ only for TensorFlow's "same", cnn/nn/keras.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "cnn/size2.h"
#include "cnn/tensor.h"

namespace cnn {

struct Pool2dGeometry {
  Pool2dGeometry() = default;
  // Pool2dGeometry{kernel, stride, padding, dilation, ceil_mode} as before padding_end was added
  // (a constructor rather than an aggregate, so that such lists leave it unset without warnings).
  Pool2dGeometry(Size2 kernel_, Size2 stride_, Size2 padding_ = 0, Size2 dilation_ = 1,
                 bool ceil_mode_ = false, std::optional<Size2> padding_end_ = std::nullopt)
      : kernel(kernel_),
        stride(stride_),
        padding(padding_),
        dilation(dilation_),
        ceil_mode(ceil_mode_),
        padding_end(padding_end_) {}

  // padding: the top (h) and left (w) padding, and the bottom and right too unless padding_end
  // is set.
  Size2 kernel, stride, padding = 0, dilation = 1;
  bool ceil_mode = false;
  // The bottom (h) and right (w) padding where they differ from the top and left: TensorFlow's
  // "same" puts an odd total's extra row and column there. Unset (PyTorch): `padding`. The
  // kernels read only the top/left padding; the bottom/right padding sets the output's size, and
  // windows are clipped to the input as at any edge.
  std::optional<Size2> padding_end;

  Size2 end_padding() const { return padding_end.value_or(padding); }
  // Whether every side has the same padding as its opposite (PyTorch's pools).
  bool symmetric() const { return !padding_end || (*padding_end == padding); }
};

// Validates the options alone (kernel, stride, dilation > 0; 0 <= padding <= kernel / 2 on every
// side).
void check_pool2d_geometry(const Pool2dGeometry& g);

// One spatial output size, PyTorch's pooling_output_shape, with the padding before and after the
// input (pad_begin, pad_end; PyTorch's is the same on both sides).
int64_t pool_output_size(int64_t in, int64_t k, int64_t pad_begin, int64_t pad_end, int64_t stride,
                         int64_t dilation, bool ceil_mode);
inline int64_t pool_output_size(int64_t in, int64_t k, int64_t pad, int64_t stride,
                                int64_t dilation, bool ceil_mode) {
  return pool_output_size(in, k, pad, pad, stride, dilation, ceil_mode);
}

// "1", "(1, 2)" (PyTorch's form) or, where the sides differ, "((0, 1), (0, 1))": ((top, bottom),
// (left, right)), as Keras's ZeroPadding2D writes it.
std::string pool2d_padding_str(Size2 padding, const std::optional<Size2>& padding_end);

// Output shape; throws when x is not 4-D or the output would be empty.
Shape maxpool2d_output_shape(const Shape& x, const Pool2dGeometry& g);

// indices, if not null (it may be, for inference), receives an Int32 tensor of y's shape, on x's
// device: for every output element the position h * W + w of the winning input element in its
// (n, c) plane, as PyTorch's return_indices gives.
Tensor maxpool2d_forward(const Tensor& x, const Pool2dGeometry& g, Tensor* indices = nullptr);

// dy: (N, C, H_out, W_out) -> dx: (N, C, H, W), overwritten. Routes each gradient to the
// element that won its window. g: the forward pass's (the CUDA kernel gathers each input
// element's gradient from the windows that cover it).
Tensor maxpool2d_backward(const Shape& x_shape, const Tensor& dy, const Tensor& indices,
                          const Pool2dGeometry& g);

}  // namespace cnn
