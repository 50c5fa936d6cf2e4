// Option builders in the style of PyTorch's C++ frontend:
//   Conv2d(Conv2dOptions(1, 16, 3).stride(2).padding(1))
#pragma once

#include <optional>

#include "cnn/ops/conv2d.h"
#include "cnn/size2.h"

// Declares a chainable setter `name(value)` and a getter `name()` for an option with a default.
#define CNN_ARG(T, name, default_value)     \
 public:                                    \
  auto name(const T& v)->decltype(*this) {  \
    name##_ = v;                            \
    return *this;                           \
  }                                         \
  const T& name() const { return name##_; } \
                                            \
 private:                                   \
  T name##_ = default_value

namespace cnn {

struct Conv2dOptions {
  Conv2dOptions(int64_t in_channels, int64_t out_channels, Size2 kernel_size)
      : in_channels_(in_channels), out_channels_(out_channels), kernel_size_(kernel_size) {}
  CNN_ARG(int64_t, in_channels, 0);
  CNN_ARG(int64_t, out_channels, 0);
  CNN_ARG(Size2, kernel_size, 0);
  CNN_ARG(Size2, stride, 1);
  CNN_ARG(Conv2dPadding, padding, 0);
  CNN_ARG(Size2, dilation, 1);
  CNN_ARG(int64_t, groups, 1);
  CNN_ARG(bool, bias, true);
};

struct MaxPool2dOptions {
  MaxPool2dOptions(Size2 kernel_size) : kernel_size_(kernel_size) {}  // NOLINT
  CNN_ARG(Size2, kernel_size, 0);
  // Unset means stride = kernel_size, as PyTorch's stride=None.
  CNN_ARG(std::optional<Size2>, stride, std::nullopt);
  // The top and left padding, and the bottom and right unless padding_end is set; -inf, at most
  // half the kernel.
  CNN_ARG(Size2, padding, 0);
  CNN_ARG(Size2, dilation, 1);
  CNN_ARG(bool, ceil_mode, false);
  // Beyond PyTorch: the bottom (h) and right (w) padding where they differ from the top and left
  // (TensorFlow's "same", cnn/nn/keras.h). Printed and described as ((top, bottom), (left, right)).
  CNN_ARG(std::optional<Size2>, padding_end, std::nullopt);
};

struct LinearOptions {
  LinearOptions(int64_t in_features, int64_t out_features)
      : in_features_(in_features), out_features_(out_features) {}
  CNN_ARG(int64_t, in_features, 0);
  CNN_ARG(int64_t, out_features, 0);
  CNN_ARG(bool, bias, true);
};

}  // namespace cnn
