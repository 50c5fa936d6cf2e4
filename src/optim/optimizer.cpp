// Optimizers: SGD, Adam, AdamW. Scalar factors are computed in double as PyTorch computes them in
// Python, then applied in float32 by the update ops (cnn/ops/optim.h), where the parameters live.
#include <cmath>

#include "cnn/error.h"
#include "cnn/ops/optim.h"
#include "cnn/optim/adam.h"
#include "cnn/optim/sgd.h"

namespace cnn {

namespace {

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
  SgdStep k{};
  k.lr = static_cast<float>(lr_);
  k.weight_decay = static_cast<float>(options_.weight_decay());
  k.momentum = static_cast<float>(options_.momentum());
  k.dampening_complement = static_cast<float>(1.0 - options_.dampening());
  k.nesterov = options_.nesterov();
  for (std::size_t i = 0; i < params_.size(); ++i) {
    Parameter& p = *params_[i];
    if (!p.requires_grad) continue;
    Tensor& buf = buffers_[i];
    k.first = !buf.defined();
    if (k.momentum != 0.0f && k.first) buf = Tensor(p.value.shape(), p.value.device());
    sgd_step(p.value, p.grad, k.momentum != 0.0f ? &buf : nullptr, k);
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
    m_.emplace_back(p->value.shape(), p->value.device());
    v_.emplace_back(p->value.shape(), p->value.device());
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
  const AdamStep k{static_cast<float>(b1),
                   static_cast<float>(1.0 - b1),
                   static_cast<float>(b2),
                   static_cast<float>(1.0 - b2),
                   bc2_sqrt,
                   eps,
                   step_size,
                   wd,
                   decay,
                   decoupled_weight_decay_ ? 2
                   : wd != 0.0f            ? 1
                                           : 0};
  for (std::size_t i = 0; i < params_.size(); ++i) {
    Parameter& p = *params_[i];
    if (p.requires_grad) adam_step(p.value, p.grad, m_[i], v_[i], k);
  }
}

}  // namespace cnn
