// avgpool2d: PyTorch's nn.functional.avg_pool2d, and adaptive_avg_pool2d.
//
// avg_pool2d. x: (N, C, H, W) -> y: (N, C, H_out, W_out),
// H_out = floor_or_ceil((H + P_top + P_bottom - K_h) / S_h) + 1, as max_pool2d without dilation
// (PyTorch's P_top = P_bottom = P_h; they differ only for TensorFlow's "same"; with
// ceil_mode a last window that would start in the right/bottom padding is dropped). Padding counts
// as zeros. Each window's sum is divided by divisor_override if given, else by the window's size
// clipped to the padded input (K_h * K_w except for a ceil_mode window that runs past the padding)
// when count_include_pad, else by the number of input elements it covers.
//
// adaptive_avg_pool2d. x: (N, C, H, W) -> y: (N, C, H_out, W_out) for any output size: output
// row i averages input rows [floor(i H / H_out), ceil((i + 1) H / H_out)), and so for columns.
#pragma once

#include <cstdint>
#include <optional>

#include "cnn/size2.h"
#include "cnn/tensor.h"

namespace cnn {

struct AvgPool2dGeometry {
  AvgPool2dGeometry() = default;
  // {kernel, stride, padding, ceil_mode, count_include_pad, divisor_override} as before
  // padding_end was added (a constructor, so that such lists leave it unset without warnings).
  AvgPool2dGeometry(Size2 kernel_, Size2 stride_, Size2 padding_ = 0, bool ceil_mode_ = false,
                    bool count_include_pad_ = true,
                    std::optional<int64_t> divisor_override_ = std::nullopt,
                    std::optional<Size2> padding_end_ = std::nullopt)
      : kernel(kernel_),
        stride(stride_),
        padding(padding_),
        ceil_mode(ceil_mode_),
        count_include_pad(count_include_pad_),
        divisor_override(divisor_override_),
        padding_end(padding_end_) {}

  Size2 kernel, stride, padding = 0;  // padding: top/left, and bottom/right unless padding_end
  bool ceil_mode = false;
  bool count_include_pad = true;
  std::optional<int64_t> divisor_override;  // PyTorch's None: unset
  // The bottom (h) and right (w) padding where they differ from `padding`, as Pool2dGeometry's
  // (cnn/ops/maxpool2d.h). Unset (PyTorch): `padding`.
  std::optional<Size2> padding_end;

  Size2 end_padding() const { return padding_end.value_or(padding); }
};

// Validates the options alone (kernel, stride > 0; 0 <= padding <= kernel / 2; a divisor_override,
// if given, is not 0).
void check_avgpool2d_geometry(const AvgPool2dGeometry& g);

// Output shape; throws when x is not 4-D or the output would be empty.
Shape avgpool2d_output_shape(const Shape& x, const AvgPool2dGeometry& g);

Tensor avgpool2d_forward(const Tensor& x, const AvgPool2dGeometry& g);

// dy: (N, C, H_out, W_out) -> dx: (N, C, H, W), overwritten: each window's gradient spread over
// the input elements it covers, divided as the forward pass divided.
Tensor avgpool2d_backward(const Shape& x_shape, const Tensor& dy, const AvgPool2dGeometry& g);

// The input window of output (oh, ow) of an (H, W) plane as avgpool2d_forward averages it: rows
// [h0, h1) and columns [w0, w1) clipped to the input, and the divisor (PyTorch's divide_factor:
// the window clipped to the padded input with count_include_pad, else to the input, or
// divisor_override). For the explorer's drill-down, which writes one output's average out.
struct AvgPoolWindow {
  int64_t h0, h1, w0, w1, divisor;
};
AvgPoolWindow avgpool2d_window(const AvgPool2dGeometry& g, int64_t H, int64_t W, int64_t oh,
                               int64_t ow);
// The same for adaptive_avgpool2d_forward: rows [floor(oh H / H_out), ceil((oh + 1) H / H_out)),
// and so for columns; the divisor is the window's size.
AvgPoolWindow adaptive_avgpool2d_window(int64_t H, int64_t W, Size2 output_size, int64_t oh,
                                        int64_t ow);

// (N, C, output_size.h, output_size.w); throws when x is not 4-D, is empty or an output size is
// not positive.
Shape adaptive_avgpool2d_output_shape(const Shape& x, Size2 output_size);

Tensor adaptive_avgpool2d_forward(const Tensor& x, Size2 output_size);

// dy: (N, C, H_out, W_out) -> dx: (N, C, H, W), overwritten.
Tensor adaptive_avgpool2d_backward(const Shape& x_shape, const Tensor& dy);

}  // namespace cnn
