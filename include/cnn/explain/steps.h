// Step-throughs of one-channel convolution and max pooling, for learners: every output element
// with the input cells its window covers (padded cells and dilated taps marked), the
// multiply-adds written out, and the value, which is taken from the library's own conv2d and
// maxpool2d so that what a learner reads is what the model computes.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cnn/ops/maxpool2d.h"
#include "cnn/size2.h"
#include "cnn/tensor.h"

namespace cnn {

struct StepTap {
  int64_t row = 0, col = 0;  // input position; outside [0, H) x [0, W) when padded
  int64_t kernel_row = 0, kernel_col = 0;
  bool padded = false;
  float input = 0.0f;   // 0 (convolution) or -inf (pooling) when padded
  float weight = 0.0f;  // convolution only
};

struct Step {
  int64_t out_row = 0, out_col = 0;
  std::vector<StepTap> taps;  // row-major over the kernel
  float value = 0.0f;         // from the library's op
  int64_t winner = -1;        // pooling: the tap that won (first maximum)
  std::string expression;     // "9 x 1 + 3 x 0 + 6 x 1 + 2 x 1 = 17", "max(3, 7, 1, 2) = 7"
};

struct StepThrough {
  Tensor output;            // (H_out, W_out)
  std::vector<Step> steps;  // row by row
};

// image: (H, W), kernel: (K_h, K_w). Throws cnn::Error for an impossible configuration, with
// the library's own message.
// With a bias, the expression ends "... + b = value" (the model's layers have one).
StepThrough conv2d_steps(const Tensor& image, const Tensor& kernel, Size2 stride, Size2 padding,
                         Size2 dilation, std::optional<float> bias = std::nullopt);
StepThrough maxpool2d_steps(const Tensor& image, const Pool2dGeometry& geometry);

// The window of one output position (out_row, out_col) over an (H, W) plane, for a drill-down
// that takes apart a single output of a large layer without walking every position: tap
// (k_h, k_w) reads input row out_row * S_h - pad_top + k_h * D_h (and so for columns), marked
// padded outside [0, H) x [0, W). The taps' input and weight are left 0 for the caller to fill;
// value, winner and expression are left empty.
Step window_taps(int64_t H, int64_t W, Size2 kernel, Size2 stride, int64_t pad_top,
                 int64_t pad_left, Size2 dilation, int64_t out_row, int64_t out_col);

// How the step-throughs write a number: integers without a decimal point, others with up to
// four decimals ("17", "-0.5", "0.3333"), -inf as "-inf".
std::string format_number(float v);

}  // namespace cnn
