// maxpool2d, fast CPU kernel for dilation 1 (the dispatcher in src/ops/maxpool2d.cpp sends
// dilated pools to the reference kernel): the window clipped to the input once per output, and
// the common 2x2 window unrolled.
#include "maxpool2d.h"

#include <algorithm>
#include <limits>

namespace cnn::fast {

namespace {
// As PyTorch: the first maximum wins; NaN wins and propagates. Branch-free: on real data the
// comparison is a coin toss, and mispredicted branches cost more than the selects.
inline void take(float v, int32_t i, float& best, int32_t& best_i) {
  const bool wins = (v > best) | (v != v);
  best = wins ? v : best;
  best_i = wins ? i : best_i;
}
}  // namespace

Tensor maxpool2d_forward(const Tensor& x, const Pool2dGeometry& g, const Shape& y_shape,
                         int32_t* indices) {
  Tensor y = Tensor::empty(y_shape);
  const int64_t planes = x.size(0) * x.size(1), H = x.size(2), W = x.size(3);
  const int64_t H_out = y_shape[2], W_out = y_shape[3];
  const int64_t K_h = g.kernel.h, K_w = g.kernel.w, S_h = g.stride.h, S_w = g.stride.w;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < planes; ++p) {
    const float* x_plane = x.data() + p * H * W;
    float* y_plane = y.data() + p * H_out * W_out;
    int32_t* idx_plane = indices + p * H_out * W_out;
    for (int64_t oh = 0; oh < H_out; ++oh) {
      const int64_t h_start = oh * S_h - g.padding.h;
      const int64_t h0 = std::max<int64_t>(h_start, 0), h1 = std::min(h_start + K_h, H);
      for (int64_t ow = 0; ow < W_out; ++ow) {
        const int64_t w_start = ow * S_w - g.padding.w;
        const int64_t w0 = std::max<int64_t>(w_start, 0), w1 = std::min(w_start + K_w, W);
        float best = -std::numeric_limits<float>::infinity();
        auto best_i = static_cast<int32_t>(h0 * W + w0);
        if (h1 - h0 == 2 && w1 - w0 == 2) {
          const auto i = static_cast<int32_t>(h0 * W + w0);
          const auto j = static_cast<int32_t>(i + W);
          take(x_plane[i], i, best, best_i);
          take(x_plane[i + 1], i + 1, best, best_i);
          take(x_plane[j], j, best, best_i);
          take(x_plane[j + 1], j + 1, best, best_i);
        } else {
          for (int64_t ih = h0; ih < h1; ++ih) {
            for (int64_t iw = w0; iw < w1; ++iw) {
              const auto i = static_cast<int32_t>(ih * W + iw);
              take(x_plane[i], i, best, best_i);
            }
          }
        }
        y_plane[oh * W_out + ow] = best;
        idx_plane[oh * W_out + ow] = best_i;
      }
    }
  }
  return y;
}

}  // namespace cnn::fast
