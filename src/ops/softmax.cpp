// softmax, log_softmax and argmax: reference CPU kernels over one dimension (cuda/softmax.cu and
// cuda/argmax.cu on CUDA).
#include "cnn/ops/softmax.h"

#include <cmath>
#include <limits>

#include "check.h"
#include "cnn/error.h"
#include "cnn/ops/argmax.h"
#include "cuda/ops.h"
#include "reduce_dim.h"

namespace cnn {

namespace {

template <bool kLog>
Tensor softmax_impl(const Tensor& x, int64_t dim, const char* what) {
  const Device device = detail::op_device(what, {{"input", x}});
  const auto v = detail::dim_view(x.shape(), dim, what);
  if (device == Device::CUDA) return cuda::softmax_forward(x, wrap_dim(dim, x.dim(), what), kLog);
  Tensor y = Tensor::empty(x.shape());
  for (int64_t o = 0; o < v.outer; ++o) {
    for (int64_t i = 0; i < v.inner; ++i) {
      const float* in = x.data() + o * v.size * v.inner + i;
      float* out = y.data() + o * v.size * v.inner + i;
      float max = -std::numeric_limits<float>::infinity();
      for (int64_t k = 0; k < v.size; ++k) max = std::max(max, in[k * v.inner]);
      double sum = 0.0;
      for (int64_t k = 0; k < v.size; ++k) sum += std::exp(double(in[k * v.inner]) - max);
      if (kLog) {
        const double log_sum = std::log(sum);
        for (int64_t k = 0; k < v.size; ++k) {
          out[k * v.inner] = static_cast<float>(double(in[k * v.inner]) - max - log_sum);
        }
      } else {
        for (int64_t k = 0; k < v.size; ++k) {
          out[k * v.inner] = static_cast<float>(std::exp(double(in[k * v.inner]) - max) / sum);
        }
      }
    }
  }
  return y;
}

template <bool kLog>
Tensor softmax_backward_impl(const Tensor& y, const Tensor& dy, int64_t dim, const char* what) {
  const Device device = detail::op_device(what, {{"output", y}, {"grad_output", dy}});
  if (y.shape() != dy.shape()) {
    throw Error(std::string(what) + ": grad_output of shape " + shape_str(dy.shape()) +
                " does not match output shape " + shape_str(y.shape()));
  }
  const auto v = detail::dim_view(y.shape(), dim, what);
  if (device == Device::CUDA) {
    return cuda::softmax_backward(y, dy, wrap_dim(dim, y.dim(), what), kLog);
  }
  Tensor dx = Tensor::empty(y.shape());
  for (int64_t o = 0; o < v.outer; ++o) {
    for (int64_t i = 0; i < v.inner; ++i) {
      const int64_t base = o * v.size * v.inner + i;
      double sum = 0.0;
      for (int64_t k = 0; k < v.size; ++k) {
        const int64_t j = base + k * v.inner;
        sum += kLog ? double(dy[j]) : double(dy[j]) * y[j];
      }
      for (int64_t k = 0; k < v.size; ++k) {
        const int64_t j = base + k * v.inner;
        dx[j] = kLog ? static_cast<float>(dy[j] - std::exp(double(y[j])) * sum)
                     : static_cast<float>(y[j] * (dy[j] - sum));
      }
    }
  }
  return dx;
}

}  // namespace

Tensor softmax_forward(const Tensor& x, int64_t dim) {
  return softmax_impl<false>(x, dim, "softmax");
}
Tensor softmax_backward(const Tensor& y, const Tensor& dy, int64_t dim) {
  return softmax_backward_impl<false>(y, dy, dim, "softmax_backward");
}
Tensor log_softmax_forward(const Tensor& x, int64_t dim) {
  return softmax_impl<true>(x, dim, "log_softmax");
}
Tensor log_softmax_backward(const Tensor& y, const Tensor& dy, int64_t dim) {
  return softmax_backward_impl<true>(y, dy, dim, "log_softmax_backward");
}

std::vector<int64_t> argmax(const Tensor& x, int64_t dim) {
  const Device device = detail::op_device("argmax", {{"input", x}});
  const auto v = detail::dim_view(x.shape(), dim, "argmax");
  if (v.size == 0) throw Error("argmax: cannot take the argmax of an empty dimension");
  if (device == Device::CUDA) {
    // Rows of logits (the common case) on the device, one index each back; anything else on
    // the host.
    if (x.dim() != 2 || v.inner != 1) return argmax(x.cpu(), dim);
    const std::vector<int32_t> rows = cuda::argmax_rows(x).to_int_vector();
    return {rows.begin(), rows.end()};
  }
  std::vector<int64_t> out(static_cast<std::size_t>(v.outer * v.inner));
  for (int64_t o = 0; o < v.outer; ++o) {
    for (int64_t i = 0; i < v.inner; ++i) {
      const float* in = x.data() + o * v.size * v.inner + i;
      int64_t best = 0;
      for (int64_t k = 1; k < v.size; ++k) {
        const float cur = in[k * v.inner], top = in[best * v.inner];
        if (std::isnan(top)) break;
        if (cur > top || std::isnan(cur)) best = k;
      }
      out[o * v.inner + i] = best;
    }
  }
  return out;
}

}  // namespace cnn
