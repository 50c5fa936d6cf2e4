// Optimizers: SGD, Adam, AdamW. Scalar factors are computed in double as PyTorch computes them in
// Python, then applied in float32 as its kernels do.
#include <cmath>

#include "../core/parallel.h"
#include "cnn/error.h"
#include "cnn/optim/adam.h"
#include "cnn/optim/sgd.h"

namespace cnn {

namespace {

struct AdamScalars {
  float b1, one_b1, b2, one_b2, bc2_sqrt, eps, step_size, wd, decay;
};

// One Adam update of n elements, as PyTorch's single-tensor Adam computes it, operation by
// operation in float32. Mode: 0 no weight decay, 1 L2 (Adam), 2 decoupled (AdamW).
template <int Mode>
inline void adam_update(float* __restrict w, const float* __restrict g, float* __restrict m,
                        float* __restrict v, int64_t n, const AdamScalars& k) {
  for (int64_t j = 0; j < n; ++j) {
    float grad = g[j];
    if constexpr (Mode == 2) w[j] *= k.decay;
    if constexpr (Mode == 1) grad += k.wd * w[j];
    m[j] = m[j] * k.b1 + k.one_b1 * grad;
    v[j] = v[j] * k.b2 + k.one_b2 * grad * grad;
    const float denom = std::sqrt(v[j]) / k.bc2_sqrt + k.eps;
    w[j] += -k.step_size * (m[j] / denom);
  }
}

// Vectorised (element by element, so the same numbers at any width); built for AVX2 and for the
// baseline, chosen when the library loads.
__attribute__((target_clones("avx2", "default"))) void adam_span(float* w, const float* g, float* m,
                                                                 float* v, int64_t n,
                                                                 const AdamScalars& k, int mode) {
  if (mode == 2) return adam_update<2>(w, g, m, v, n, k);
  if (mode == 1) return adam_update<1>(w, g, m, v, n, k);
  adam_update<0>(w, g, m, v, n, k);
}
void require(bool ok, const std::string& message) {
  if (!ok) throw Error(message);
}
std::string num(double v) { return std::to_string(v); }
}  // namespace

Optimizer::Optimizer(std::vector<Parameter*> params) : params_(std::move(params)) {
  require(!params_.empty(), "optimizer got an empty parameter list");
}

void Optimizer::zero_grad() {
  for (Parameter* p : params_) p->grad.fill(0.0f);
}

SGD::SGD(std::vector<Parameter*> params, const SGDOptions& o)
    : Optimizer(std::move(params)), options_(o), buffers_(params_.size()) {
  require(o.lr() >= 0.0, "SGD: invalid learning rate: " + num(o.lr()));
  require(o.momentum() >= 0.0, "SGD: invalid momentum value: " + num(o.momentum()));
  require(o.weight_decay() >= 0.0, "SGD: invalid weight_decay value: " + num(o.weight_decay()));
  require(!o.nesterov() || (o.momentum() > 0.0 && o.dampening() == 0.0),
          "SGD: Nesterov momentum requires a momentum and zero dampening");
  lr_ = o.lr();
}

void SGD::step() {
  const auto wd = static_cast<float>(options_.weight_decay());
  const auto mom = static_cast<float>(options_.momentum());
  const auto damp = static_cast<float>(1.0 - options_.dampening());
  const auto lr = static_cast<float>(lr_);
  for (std::size_t i = 0; i < params_.size(); ++i) {
    Parameter& p = *params_[i];
    if (!p.requires_grad) continue;
    float* w = p.value.data();
    const float* g = p.grad.data();
    const int64_t n = p.value.numel();
    Tensor& buf = buffers_[i];
    const bool first = !buf.defined();
    if (mom != 0.0f && first) buf = Tensor(p.value.shape());
    for (int64_t j = 0; j < n; ++j) {
      float d = g[j];
      if (wd != 0.0f) d += wd * w[j];
      if (mom != 0.0f) {
        buf[j] = first ? d : buf[j] * mom + damp * d;
        d = options_.nesterov() ? d + mom * buf[j] : buf[j];
      }
      w[j] += -lr * d;
    }
  }
}

Adam::Adam(std::vector<Parameter*> params, const AdamOptions& options)
    : Adam(std::move(params), options, false) {}

Adam::Adam(std::vector<Parameter*> params, const AdamOptions& o, bool decoupled)
    : Optimizer(std::move(params)), options_(o), decoupled_weight_decay_(decoupled) {
  const char* name = decoupled ? "AdamW" : "Adam";
  require(o.lr() >= 0.0, std::string(name) + ": invalid learning rate: " + num(o.lr()));
  require(o.eps() >= 0.0, std::string(name) + ": invalid epsilon value: " + num(o.eps()));
  require(o.beta1() >= 0.0 && o.beta1() < 1.0,
          std::string(name) + ": invalid beta parameter at index 0: " + num(o.beta1()));
  require(o.beta2() >= 0.0 && o.beta2() < 1.0,
          std::string(name) + ": invalid beta parameter at index 1: " + num(o.beta2()));
  require(o.weight_decay() >= 0.0,
          std::string(name) + ": invalid weight_decay value: " + num(o.weight_decay()));
  lr_ = o.lr();
  for (Parameter* p : params_) {
    m_.emplace_back(p->value.shape());
    v_.emplace_back(p->value.shape());
  }
}

void Adam::step() {
  ++step_;
  const double b1 = options_.beta1(), b2 = options_.beta2();
  const double bias_correction1 = 1.0 - std::pow(b1, static_cast<double>(step_));
  const double bias_correction2 = 1.0 - std::pow(b2, static_cast<double>(step_));
  const auto step_size = static_cast<float>(lr_ / bias_correction1);
  const auto bc2_sqrt = static_cast<float>(std::sqrt(bias_correction2));
  const auto eps = static_cast<float>(options_.eps());
  const auto wd = static_cast<float>(options_.weight_decay());
  const auto decay = static_cast<float>(1.0 - lr_ * options_.weight_decay());
  const auto fb1 = static_cast<float>(b1), fb2 = static_cast<float>(b2);
  const auto one_b1 = static_cast<float>(1.0 - b1), one_b2 = static_cast<float>(1.0 - b2);
  for (std::size_t i = 0; i < params_.size(); ++i) {
    Parameter& p = *params_[i];
    if (!p.requires_grad) continue;
    float* w = p.value.data();
    const float* g = p.grad.data();
    float* m = m_[i].data();
    float* v = v_[i].data();
    const AdamScalars k{fb1, one_b1, fb2, one_b2, bc2_sqrt, eps, step_size, wd, decay};
    const int mode = decoupled_weight_decay_ ? 2 : wd != 0.0f ? 1 : 0;
    // Element by element, so the split across threads (large tensors only) changes nothing.
    detail::parallel_chunks(p.value.numel(), 1 << 14, [&](int64_t lo, int64_t hi) {
      adam_span(w + lo, g + lo, m + lo, v + lo, hi - lo, k, mode);
    });
  }
}

}  // namespace cnn
