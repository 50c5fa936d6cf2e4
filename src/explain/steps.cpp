#include "cnn/explain/steps.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include "cnn/error.h"
#include "cnn/ops/conv2d.h"

namespace cnn {

std::string format_number(float v) {
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  if (std::isnan(v)) return "nan";
  if (v == std::round(v) && std::fabs(v) < 1e9f) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(v));
    return buf;
  }
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.4f", static_cast<double>(v));
  std::string s = buf;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s == "-0" ? "0" : s;
}

namespace {

void check_plane(const Tensor& t, const char* what) {
  if (t.dim() != 2 || t.size(0) < 1 || t.size(1) < 1) {
    throw Error(std::string(what) + " must be a non-empty 2-D grid (H, W), got shape " +
                shape_str(t.shape()));
  }
}

Tensor as_nchw(const Tensor& plane) { return plane.reshape({1, 1, plane.size(0), plane.size(1)}); }

// Walks the output of a sliding window over an (H, W) image row by row: for each output
// position, a Step with its value from `output` and its window's taps (window_taps). add_tap
// fills in the numbers.
template <class AddTap>
std::vector<Step> walk_windows(const Tensor& output, int64_t H, int64_t W, Size2 kernel,
                               Size2 stride, int64_t pad_top, int64_t pad_left, Size2 dilation,
                               AddTap&& add_tap) {
  std::vector<Step> steps;
  const int64_t H_out = output.size(0), W_out = output.size(1);
  for (int64_t oh = 0; oh < H_out; ++oh) {
    for (int64_t ow = 0; ow < W_out; ++ow) {
      Step s = window_taps(H, W, kernel, stride, pad_top, pad_left, dilation, oh, ow);
      s.value = output[oh * W_out + ow];
      // add_tap sees the taps before it as s.taps, as the expression and winner are built.
      std::vector<StepTap> taps = std::move(s.taps);
      s.taps.clear();
      for (StepTap& t : taps) {
        add_tap(s, t);
        s.taps.push_back(t);
      }
      steps.push_back(std::move(s));
    }
  }
  return steps;
}

}  // namespace

Step window_taps(int64_t H, int64_t W, Size2 kernel, Size2 stride, int64_t pad_top,
                 int64_t pad_left, Size2 dilation, int64_t out_row, int64_t out_col) {
  Step s;
  s.out_row = out_row;
  s.out_col = out_col;
  s.taps.reserve(static_cast<std::size_t>(kernel.h * kernel.w));
  for (int64_t kh = 0; kh < kernel.h; ++kh) {
    for (int64_t kw = 0; kw < kernel.w; ++kw) {
      StepTap t;
      t.row = out_row * stride.h - pad_top + kh * dilation.h;
      t.col = out_col * stride.w - pad_left + kw * dilation.w;
      t.kernel_row = kh;
      t.kernel_col = kw;
      // With ceil_mode a pool window may also reach past the bottom/right edge.
      t.padded = t.row < 0 || t.row >= H || t.col < 0 || t.col >= W;
      s.taps.push_back(t);
    }
  }
  return s;
}

StepThrough conv2d_steps(const Tensor& image, const Tensor& kernel, Size2 stride, Size2 padding,
                         Size2 dilation, std::optional<float> bias) {
  check_plane(image, "the image");
  check_plane(kernel, "the kernel");
  const Size2 k(kernel.size(0), kernel.size(1));
  const Conv2dGeometry g = conv2d_geometry(k, stride, Conv2dPadding(padding), dilation, 1);
  const Tensor y = conv2d_forward(as_nchw(image), as_nchw(kernel),
                                  bias ? Tensor::from({1}, {*bias}) : Tensor(), g);
  const int64_t H = image.size(0), W = image.size(1);
  StepThrough st;
  st.output = y.reshape({y.size(2), y.size(3)});
  st.steps = walk_windows(
      st.output, H, W, k, stride, g.pad_top, g.pad_left, dilation, [&](Step& s, StepTap& t) {
        t.input = t.padded ? 0.0f : image[t.row * W + t.col];
        t.weight = kernel[t.kernel_row * k.w + t.kernel_col];
        if (!s.expression.empty()) s.expression += " + ";
        s.expression += format_number(t.input) + " x " + format_number(t.weight);
      });
  for (Step& s : st.steps) {
    if (bias) s.expression += " + " + format_number(*bias);
    s.expression += " = " + format_number(s.value);
  }
  return st;
}

StepThrough maxpool2d_steps(const Tensor& image, const Pool2dGeometry& g) {
  check_plane(image, "the image");
  Tensor indices;
  const Tensor y = maxpool2d_forward(as_nchw(image), g, &indices);
  const int64_t H = image.size(0), W = image.size(1), W_out = y.size(3);
  StepThrough st;
  st.output = y.reshape({y.size(2), W_out});
  st.steps = walk_windows(st.output, H, W, g.kernel, g.stride, g.padding.h, g.padding.w, g.dilation,
                          [&](Step& s, StepTap& t) {
                            t.input = t.padded ? -std::numeric_limits<float>::infinity()
                                               : image[t.row * W + t.col];
                            const int32_t win = indices.data_int()[s.out_row * W_out + s.out_col];
                            if (!t.padded && t.row * W + t.col == win && s.winner < 0) {
                              s.winner = static_cast<int64_t>(s.taps.size());
                            }
                            if (!s.expression.empty()) s.expression += ", ";
                            s.expression += format_number(t.input);
                          });
  for (Step& s : st.steps) s.expression = "max(" + s.expression + ") = " + format_number(s.value);
  return st;
}

}  // namespace cnn
