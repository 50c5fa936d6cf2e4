// conv2d forward and backward: the reference CPU kernels (direct loops, the oracle every faster
// kernel is tested against) behind the shape checks.
#include "cnn/ops/conv2d.h"

#include <cstring>
#include <vector>

#include "cnn/error.h"
#include "window.h"

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

std::string Conv2dPadding::str() const {
  switch (mode) {
    case Mode::Valid: return "valid";
    case Mode::Same: return "same";
    default: return size.str();
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
    case Conv2dPadding::Mode::Valid: break;
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
    case Conv2dPadding::Mode::Explicit:
      if (padding.size.h < 0 || padding.size.w < 0) {
        throw Error("negative padding is not supported, got padding=" + padding.size.pair_str());
      }
      g.pad_top = g.pad_bottom = padding.size.h;
      g.pad_left = g.pad_right = padding.size.w;
      break;
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
    throw Error("expected input with " + std::to_string(w[1] * g.groups) +
                " channels (weight " + shape_str(w) + ", groups=" + std::to_string(g.groups) +
                "), got input of shape " + shape_str(x) + " with " + std::to_string(x[1]) +
                " channels");
  }
  const int64_t padded_h = x[2] + g.pad_top + g.pad_bottom;
  const int64_t padded_w = x[3] + g.pad_left + g.pad_right;
  const int64_t eff_h = g.dilation.h * (w[2] - 1) + 1, eff_w = g.dilation.w * (w[3] - 1) + 1;
  if (padded_h < eff_h || padded_w < eff_w) {
    throw Error("input of shape " + shape_str(x) + " is too small: padded input size per channel (" +
                std::to_string(padded_h) + " x " + std::to_string(padded_w) +
                ") is smaller than the dilated kernel size (" + std::to_string(eff_h) + " x " +
                std::to_string(eff_w) + ")");
  }
  return {x[0], w[0], (padded_h - eff_h) / g.stride.h + 1, (padded_w - eff_w) / g.stride.w + 1};
}

namespace {

void check_cpu(const Tensor& t, const char* name) {
  if (t.defined() && t.device() != Device::CPU) {
    throw Error(std::string("conv2d: ") + name + " is on " + to_string(t.device()) +
                ", expected cpu");
  }
}

void check_bias(const Tensor& b, int64_t c_out) {
  if (b.defined() && (b.dim() != 1 || b.size(0) != c_out)) {
    throw Error("expected a bias of shape (" + std::to_string(c_out) + ",), got " +
                shape_str(b.shape()));
  }
}

// The dimensions every loop below needs, read once.
struct Dims {
  int64_t N, C_in, H, W, C_out, K_h, K_w, H_out, W_out, cin_g, cout_g;
};
Dims dims_of(const Shape& x, const Shape& w, const Shape& y, int64_t groups) {
  return {x[0], x[1], x[2], x[3], w[0], w[2], w[3], y[2], y[3], w[1], w[0] / groups};
}

}  // namespace

Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dGeometry& g) {
  check_cpu(x, "input");
  check_cpu(w, "weight");
  check_cpu(b, "bias");
  const Shape y_shape = conv2d_output_shape(x.shape(), w.shape(), g);
  check_bias(b, w.size(0));
  Tensor y(y_shape);
  const Dims d = dims_of(x.shape(), w.shape(), y_shape, g.groups);
  const int64_t S_h = g.stride.h, S_w = g.stride.w;
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < d.N; ++n) {
    for (int64_t oc = 0; oc < d.C_out; ++oc) {
      const int64_t grp = oc / d.cout_g;
      float* y_plane = y.data() + (n * d.C_out + oc) * d.H_out * d.W_out;
      const float bias = b.defined() ? b[oc] : 0.0f;
      std::fill(y_plane, y_plane + d.H_out * d.W_out, bias);
      for (int64_t icg = 0; icg < d.cin_g; ++icg) {
        const float* x_plane = x.data() + (n * d.C_in + grp * d.cin_g + icg) * d.H * d.W;
        const float* w_k = w.data() + (oc * d.cin_g + icg) * d.K_h * d.K_w;
        for (int64_t kh = 0; kh < d.K_h; ++kh) {
          const int64_t off_h = kh * g.dilation.h - g.pad_top;
          const auto rh = detail::tap_range(off_h, S_h, d.H, d.H_out);
          for (int64_t kw = 0; kw < d.K_w; ++kw) {
            const int64_t off_w = kw * g.dilation.w - g.pad_left;
            const auto rw = detail::tap_range(off_w, S_w, d.W, d.W_out);
            const float wv = w_k[kh * d.K_w + kw];
            for (int64_t oh = rh.lo; oh < rh.hi; ++oh) {
              float* y_row = y_plane + oh * d.W_out;
              const float* x_row = x_plane + (oh * S_h + off_h) * d.W;
              for (int64_t ow = rw.lo; ow < rw.hi; ++ow) y_row[ow] += wv * x_row[ow * S_w + off_w];
            }
          }
        }
      }
    }
  }
  return y;
}

void conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy, const Conv2dGeometry& g,
                     Tensor* dx, Tensor* dw, Tensor* db) {
  check_cpu(x, "input");
  check_cpu(w, "weight");
  check_cpu(dy, "grad_output");
  const Shape y_shape = conv2d_output_shape(x.shape(), w.shape(), g);
  if (dy.shape() != y_shape) {
    throw Error("conv2d_backward: expected grad_output of shape " + shape_str(y_shape) + ", got " +
                shape_str(dy.shape()));
  }
  if (dx && dx->shape() != x.shape()) *dx = Tensor(x.shape());
  if (dx) dx->fill(0.0f);
  if (dw && dw->shape() != w.shape()) {
    throw Error("conv2d_backward: dw has shape " + shape_str(dw->shape()) + ", expected " +
                shape_str(w.shape()));
  }
  if (db) check_bias(*db, w.size(0));
  const Dims d = dims_of(x.shape(), w.shape(), y_shape, g.groups);
  const int64_t S_h = g.stride.h, S_w = g.stride.w, plane_out = d.H_out * d.W_out;

  // Two passes, each parallel over an index whose outputs no other thread writes (dw and db per
  // output channel, dx per image), so the sums run in the same order at any thread count.
  if (dw || db) {
#pragma omp parallel for schedule(static)
    for (int64_t oc = 0; oc < d.C_out; ++oc) {
      const int64_t grp = oc / d.cout_g;
      if (db) {
        double sum = 0.0;
        for (int64_t n = 0; n < d.N; ++n) {
          const float* dy_plane = dy.data() + (n * d.C_out + oc) * plane_out;
          for (int64_t i = 0; i < plane_out; ++i) sum += dy_plane[i];
        }
        (*db)[oc] += static_cast<float>(sum);
      }
      if (!dw) continue;
      for (int64_t icg = 0; icg < d.cin_g; ++icg) {
        float* dw_k = dw->data() + (oc * d.cin_g + icg) * d.K_h * d.K_w;
        for (int64_t kh = 0; kh < d.K_h; ++kh) {
          const int64_t off_h = kh * g.dilation.h - g.pad_top;
          const auto rh = detail::tap_range(off_h, S_h, d.H, d.H_out);
          for (int64_t kw = 0; kw < d.K_w; ++kw) {
            const int64_t off_w = kw * g.dilation.w - g.pad_left;
            const auto rw = detail::tap_range(off_w, S_w, d.W, d.W_out);
            double dw_sum = 0.0;
            for (int64_t n = 0; n < d.N; ++n) {
              const float* x_plane = x.data() + (n * d.C_in + grp * d.cin_g + icg) * d.H * d.W;
              const float* dy_plane = dy.data() + (n * d.C_out + oc) * plane_out;
              for (int64_t oh = rh.lo; oh < rh.hi; ++oh) {
                const float* dy_row = dy_plane + oh * d.W_out;
                const float* x_row = x_plane + (oh * S_h + off_h) * d.W;
                float row_sum = 0.0f;
                for (int64_t ow = rw.lo; ow < rw.hi; ++ow) row_sum += dy_row[ow] * x_row[ow * S_w + off_w];
                dw_sum += row_sum;
              }
            }
            dw_k[kh * d.K_w + kw] += static_cast<float>(dw_sum);
          }
        }
      }
    }
  }
  if (dx) {
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < d.N; ++n) {
      for (int64_t oc = 0; oc < d.C_out; ++oc) {
        const int64_t grp = oc / d.cout_g;
        const float* dy_plane = dy.data() + (n * d.C_out + oc) * plane_out;
        for (int64_t icg = 0; icg < d.cin_g; ++icg) {
          const float* w_k = w.data() + (oc * d.cin_g + icg) * d.K_h * d.K_w;
          float* dx_plane = dx->data() + (n * d.C_in + grp * d.cin_g + icg) * d.H * d.W;
          for (int64_t kh = 0; kh < d.K_h; ++kh) {
            const int64_t off_h = kh * g.dilation.h - g.pad_top;
            const auto rh = detail::tap_range(off_h, S_h, d.H, d.H_out);
            for (int64_t kw = 0; kw < d.K_w; ++kw) {
              const int64_t off_w = kw * g.dilation.w - g.pad_left;
              const auto rw = detail::tap_range(off_w, S_w, d.W, d.W_out);
              const float wv = w_k[kh * d.K_w + kw];
              for (int64_t oh = rh.lo; oh < rh.hi; ++oh) {
                const float* dy_row = dy_plane + oh * d.W_out;
                float* dx_row = dx_plane + (oh * S_h + off_h) * d.W;
                for (int64_t ow = rw.lo; ow < rw.hi; ++ow) dx_row[ow * S_w + off_w] += wv * dy_row[ow];
              }
            }
          }
        }
      }
    }
  }
}

}  // namespace cnn
