// conv2d, reference CPU kernels: direct loops over the taps, the oracle every faster kernel is
// tested against. Every option (stride, padding, dilation, groups). Parallel over outputs that no
// other thread writes, so the sums run in the same order at any thread count.
#include "conv2d.h"

#include <algorithm>

#include "../window.h"

namespace cnn::reference {

namespace {

// The dimensions every loop below needs, read once.
struct Dims {
  int64_t N, C_in, H, W, C_out, K_h, K_w, H_out, W_out, cin_g, cout_g;
};
Dims dims_of(const Shape& x, const Shape& w, const Shape& y, int64_t groups) {
  return {x[0], x[1], x[2], x[3], w[0], w[2], w[3], y[2], y[3], w[1], w[0] / groups};
}

}  // namespace

Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dGeometry& g,
                      const Shape& y_shape) {
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
  const Shape& y_shape = dy.shape();
  if (dx) dx->fill(0.0f);
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
                for (int64_t ow = rw.lo; ow < rw.hi; ++ow)
                  row_sum += dy_row[ow] * x_row[ow * S_w + off_w];
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
                for (int64_t ow = rw.lo; ow < rw.hi; ++ow)
                  dx_row[ow * S_w + off_w] += wv * dy_row[ow];
              }
            }
          }
        }
      }
    }
  }
}

}  // namespace cnn::reference
