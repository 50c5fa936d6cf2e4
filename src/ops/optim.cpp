// The optimizers' element-wise updates (cnn/ops/optim.h): on the host, one loop each, vectorised
// element by element (the same numbers at any vector width or thread split); on CUDA,
// cuda/optim.cu with the same operations in the same order.
#include "cnn/ops/optim.h"

#include <cmath>

#include "../core/parallel.h"
#include "check.h"
#include "cnn/error.h"
#include "cuda/ops.h"

namespace cnn {

namespace {

template <int Mode>
inline void adam_update(float* __restrict w, const float* __restrict g, float* __restrict m,
                        float* __restrict v, int64_t n, const AdamStep& k) {
  for (int64_t j = 0; j < n; ++j) {
    float grad = g[j];
    if constexpr (Mode == 2) w[j] *= k.decay;
    if constexpr (Mode == 1) grad += k.weight_decay * w[j];
    m[j] = m[j] * k.beta1 + k.one_minus_beta1 * grad;
    v[j] = v[j] * k.beta2 + k.one_minus_beta2 * grad * grad;
    const float denom = std::sqrt(v[j]) / k.bias_correction2_sqrt + k.eps;
    w[j] += -k.step_size * (m[j] / denom);
  }
}

// Built for AVX2 and for the baseline, chosen when the library loads.
__attribute__((target_clones("avx2", "default"))) void adam_span(float* w, const float* g, float* m,
                                                                 float* v, int64_t n,
                                                                 const AdamStep& k) {
  if (k.mode == 2) return adam_update<2>(w, g, m, v, n, k);
  if (k.mode == 1) return adam_update<1>(w, g, m, v, n, k);
  adam_update<0>(w, g, m, v, n, k);
}

void check_same_shape(const char* op, const char* name, const Tensor& t, const Tensor& w) {
  if (t.shape() != w.shape()) {
    throw Error(std::string(op) + ": " + name + " of shape " + shape_str(t.shape()) +
                " does not match the parameter's shape " + shape_str(w.shape()));
  }
}

}  // namespace

void adam_step(Tensor& w, const Tensor& g, Tensor& m, Tensor& v, const AdamStep& k) {
  const Device device = detail::op_device(
      "adam_step", {{"param", w}, {"grad", g}, {"exp_avg", m}, {"exp_avg_sq", v}});
  check_same_shape("adam_step", "grad", g, w);
  check_same_shape("adam_step", "exp_avg", m, w);
  check_same_shape("adam_step", "exp_avg_sq", v, w);
  if (device == Device::CUDA) return cuda::adam_step(w, g, m, v, k);
  float* pw = w.data();
  const float* pg = g.data();
  float* pm = m.data();
  float* pv = v.data();
  detail::parallel_chunks(w.numel(), 1 << 14, [&](int64_t lo, int64_t hi) {
    adam_span(pw + lo, pg + lo, pm + lo, pv + lo, hi - lo, k);
  });
}

void sgd_step(Tensor& w, const Tensor& g, Tensor* buf, const SgdStep& k) {
  const Tensor none;
  const Device device = detail::op_device(
      "sgd_step", {{"param", w}, {"grad", g}, {"momentum_buffer", buf ? *buf : none}});
  check_same_shape("sgd_step", "grad", g, w);
  if (buf) check_same_shape("sgd_step", "momentum_buffer", *buf, w);
  if (device == Device::CUDA) return cuda::sgd_step(w, g, buf, k);
  float* pw = w.data();
  const float* pg = g.data();
  float* pb = buf ? buf->data() : nullptr;
  for (int64_t j = 0; j < w.numel(); ++j) {
    float d = pg[j];
    if (k.weight_decay != 0.0f) d += k.weight_decay * pw[j];
    if (pb) {
      pb[j] = k.first ? d : pb[j] * k.momentum + k.dampening_complement * d;
      d = k.nesterov ? d + k.momentum * pb[j] : pb[j];
    }
    pw[j] += -k.lr * d;
  }
}

}  // namespace cnn
