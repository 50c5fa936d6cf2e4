// conv2d: 2-D cross-correlation (the kernel is not flipped), PyTorch's nn.functional.conv2d.
//
// x: (N, C_in, H, W), w: (C_out, C_in / groups, K_h, K_w), b: (C_out) or undefined
//   -> y: (N, C_out, H_out, W_out)
// H_out = floor((H + P_top + P_bottom - D_h * (K_h - 1) - 1) / S_h) + 1, likewise W_out.
#pragma once

#include <optional>
#include <string>

#include "cnn/size2.h"
#include "cnn/tensor.h"

namespace cnn {

// padding: an int, an (h, w) pair, or "valid" / "same" (PyTorch's rules: "same" refuses stride > 1
// and, for an even effective kernel, puts the extra zero on the bottom/right); or, beyond
// PyTorch, a different padding on each side, ((top, bottom), (left, right)) as Keras's
// ZeroPadding2D writes it: TensorFlow's "same" with stride > 1 (cnn/nn/keras.h) needs it.
struct Conv2dPadding {
  enum class Mode { Explicit, Valid, Same };
  Mode mode = Mode::Explicit;
  Size2 size = 0;  // Explicit: top (h) and left (w), and bottom and right unless `end` is set
  std::optional<Size2> end;  // Explicit: bottom (h) and right (w) where they differ from `size`

  Conv2dPadding(int64_t p = 0) : size(p) {}  // NOLINT
  Conv2dPadding(int64_t h, int64_t w) : size(h, w) {}
  Conv2dPadding(Size2 s) : size(s) {}  // NOLINT
  // "valid" or "same"; anything else throws. (An array reference, so that a literal 0 still
  // means zero padding rather than a null string.)
  template <std::size_t N>
  Conv2dPadding(const char (&mode)[N]) : Conv2dPadding(std::string(mode)) {}  // NOLINT
  Conv2dPadding(const std::string& mode);                                     // NOLINT
  // ((top, bottom), (left, right)).
  static Conv2dPadding sides(int64_t top, int64_t bottom, int64_t left, int64_t right);
  // Whether it is explicit with a side that differs from its opposite.
  bool per_side() const { return mode == Mode::Explicit && end && !(*end == size); }
  std::string str() const;  // "1", "(1, 2)", "same", "((0, 1), (0, 1))"
};

// The geometry of one convolution with every option resolved to numbers.
struct Conv2dGeometry {
  Size2 stride = 1, dilation = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int64_t groups = 1;
};

// Validates the options (stride, dilation > 0, padding >= 0 on every side, "same" with stride 1)
// and resolves
// the padding for a kernel of size k. Throws cnn::Error naming what is wrong.
Conv2dGeometry conv2d_geometry(Size2 kernel, Size2 stride, const Conv2dPadding& padding,
                               Size2 dilation, int64_t groups);

// Output shape for input shape x and weight shape w; throws when x is not 4-D, has the wrong
// number of channels, or the (dilated) kernel is larger than the padded input.
Shape conv2d_output_shape(const Shape& x, const Shape& w, const Conv2dGeometry& g);

// columns, if not null: a workspace the fast kernels fill with each image's im2col matrix, so
// that conv2d_backward with the same workspace need not build them again (the reference kernels
// leave it undefined). Pass the same tensor to both, untouched in between. The Conv2d layer does
// not: with the AVX-512 im2col, rebuilding each matrix in a cache-resident buffer measured 10 to
// 20 % faster per training step than writing a workspace of several MB and reading it back.
Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dGeometry& g,
                      Tensor* columns = nullptr);

// dy: (N, C_out, H_out, W_out). Overwrites *dx (shape of x); accumulates into *dw and *db, as
// PyTorch accumulates .grad. Any of dx, dw, db may be null to skip that gradient.
void conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy, const Conv2dGeometry& g,
                     Tensor* dx, Tensor* dw, Tensor* db, const Tensor* columns = nullptr);

}  // namespace cnn
