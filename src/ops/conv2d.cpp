// conv2d: option resolution, shape checks, and the one dispatch point to the kernels
// (cuda/conv2d.cu for tensors on CUDA; reference/conv2d.cpp and fast/conv2d.cpp on the CPU).
#include "cnn/ops/conv2d.h"

#include "check.h"
#include "cnn/error.h"
#include "cnn/kernels.h"
#include "cuda/ops.h"
#include "fast/conv2d.h"
#include "reference/conv2d.h"

namespace cnn {

Conv2dPadding::Conv2dPadding(const std::string& m) {
  if (m == "valid") {
    this->mode = Mode::Valid;
  } else if (m == "same") {
    this->mode = Mode::Same;
  } else {
    throw Error("Conv2d: invalid padding string '" + m + "', should be one of {'valid', 'same'}");
  }
}

Conv2dPadding Conv2dPadding::sides(int64_t top, int64_t bottom, int64_t left, int64_t right) {
  Conv2dPadding p(Size2(top, left));
  p.end = Size2(bottom, right);
  return p;
}

std::string Conv2dPadding::str() const {
  switch (mode) {
    case Mode::Valid:
      return "valid";
    case Mode::Same:
      return "same";
    default:
      if (!per_side()) return size.str();
      return "((" + std::to_string(size.h) + ", " + std::to_string(end->h) + "), (" +
             std::to_string(size.w) + ", " + std::to_string(end->w) + "))";
  }
}

Conv2dGeometry conv2d_geometry(Size2 kernel, Size2 stride, const Conv2dPadding& padding,
                               Size2 dilation, int64_t groups) {
  if (kernel.h <= 0 || kernel.w <= 0) {
    throw Error("kernel_size must be positive, got " + kernel.pair_str());
  }
  if (stride.h <= 0 || stride.w <= 0) {
    throw Error("non-positive stride is not supported, got stride=" + stride.pair_str());
  }
  if (dilation.h <= 0 || dilation.w <= 0) {
    throw Error("dilation should be greater than zero, got dilation=" + dilation.pair_str());
  }
  if (groups <= 0) throw Error("groups must be a positive integer, got " + std::to_string(groups));
  Conv2dGeometry g;
  g.stride = stride;
  g.dilation = dilation;
  g.groups = groups;
  switch (padding.mode) {
    case Conv2dPadding::Mode::Valid:
      break;
    case Conv2dPadding::Mode::Same: {
      if (!stride.all(1)) {
        throw Error("padding='same' is not supported for strided convolutions (stride=" +
                    stride.pair_str() + ")");
      }
      const int64_t total_h = dilation.h * (kernel.h - 1), total_w = dilation.w * (kernel.w - 1);
      g.pad_top = total_h / 2;
      g.pad_bottom = total_h - g.pad_top;
      g.pad_left = total_w / 2;
      g.pad_right = total_w - g.pad_left;
      break;
    }
    case Conv2dPadding::Mode::Explicit: {
      const Size2 end = padding.end.value_or(padding.size);
      if (padding.size.h < 0 || padding.size.w < 0 || end.h < 0 || end.w < 0) {
        throw Error("negative padding is not supported, got padding=" +
                    (padding.per_side() ? padding.str() : padding.size.pair_str()));
      }
      g.pad_top = padding.size.h;
      g.pad_left = padding.size.w;
      g.pad_bottom = end.h;
      g.pad_right = end.w;
      break;
    }
  }
  return g;
}

Shape conv2d_output_shape(const Shape& x, const Shape& w, const Conv2dGeometry& g) {
  if (x.size() != 4) {
    throw Error("expected a 4-D input (N, C_in, H, W), got shape " + shape_str(x));
  }
  if (w.size() != 4) {
    throw Error("expected a 4-D weight (C_out, C_in / groups, K_h, K_w), got shape " +
                shape_str(w));
  }
  if (w[0] % g.groups != 0) {
    throw Error("out_channels (" + std::to_string(w[0]) + ") must be divisible by groups (" +
                std::to_string(g.groups) + ")");
  }
  if (x[1] != w[1] * g.groups) {
    throw Error("expected input with " + std::to_string(w[1] * g.groups) + " channels (weight " +
                shape_str(w) + ", groups=" + std::to_string(g.groups) + "), got input of shape " +
                shape_str(x) + " with " + std::to_string(x[1]) + " channels");
  }
  const int64_t padded_h = x[2] + g.pad_top + g.pad_bottom;
  const int64_t padded_w = x[3] + g.pad_left + g.pad_right;
  const int64_t eff_h = g.dilation.h * (w[2] - 1) + 1, eff_w = g.dilation.w * (w[3] - 1) + 1;
  if (padded_h < eff_h || padded_w < eff_w) {
    throw Error("input of shape " + shape_str(x) +
                " is too small: padded input size per channel (" + std::to_string(padded_h) +
                " x " + std::to_string(padded_w) + ") is smaller than the dilated kernel size (" +
                std::to_string(eff_h) + " x " + std::to_string(eff_w) + ")");
  }
  return {x[0], w[0], (padded_h - eff_h) / g.stride.h + 1, (padded_w - eff_w) / g.stride.w + 1};
}

namespace {

void check_bias(const Tensor& b, int64_t c_out) {
  if (b.defined() && (b.dim() != 1 || b.size(0) != c_out)) {
    throw Error("expected a bias of shape (" + std::to_string(c_out) + ",), got " +
                shape_str(b.shape()));
  }
}

}  // namespace

Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dGeometry& g,
                      Tensor* columns) {
  const Device device = detail::op_device("conv2d", {{"input", x}, {"weight", w}, {"bias", b}});
  const Shape y_shape = conv2d_output_shape(x.shape(), w.shape(), g);
  check_bias(b, w.size(0));
  if (device == Device::CUDA) {
    if (columns) *columns = Tensor();
    return cuda::conv2d_forward(x, w, b, g, y_shape);
  }
  if (kernel_set() == KernelSet::Fast && fast::conv2d_supports(g)) {
    return fast::conv2d_forward(x, w, b, g, y_shape, columns);
  }
  if (columns) *columns = Tensor();
  return reference::conv2d_forward(x, w, b, g, y_shape);
}

void conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy, const Conv2dGeometry& g,
                     Tensor* dx, Tensor* dw, Tensor* db, const Tensor* columns) {
  const Tensor none;
  const Device device = detail::op_device("conv2d_backward", {{"input", x},
                                                              {"weight", w},
                                                              {"grad_output", dy},
                                                              {"dx", dx ? *dx : none},
                                                              {"dw", dw ? *dw : none},
                                                              {"db", db ? *db : none}});
  const Shape y_shape = conv2d_output_shape(x.shape(), w.shape(), g);
  if (dy.shape() != y_shape) {
    throw Error("conv2d_backward: expected grad_output of shape " + shape_str(y_shape) + ", got " +
                shape_str(dy.shape()));
  }
  if (dw && dw->shape() != w.shape()) {
    throw Error("conv2d_backward: dw has shape " + shape_str(dw->shape()) + ", expected " +
                shape_str(w.shape()));
  }
  if (db) check_bias(*db, w.size(0));
  // Every kernel overwrites dx.
  if (dx) detail::reuse_or_empty(*dx, x.shape(), device);
  if (device == Device::CUDA) {
    cuda::conv2d_backward(x, w, dy, g, dx, dw, db);
  } else if (kernel_set() == KernelSet::Fast && fast::conv2d_supports(g)) {
    fast::conv2d_backward(x, w, dy, g, dx, dw, db, columns);
  } else {
    reference::conv2d_backward(x, w, dy, g, dx, dw, db);
  }
}

}  // namespace cnn
