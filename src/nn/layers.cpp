#include "cnn/nn/layers.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "cnn/error.h"
#include "cnn/nn/grad_mode.h"
#include "cnn/ops/conv2d.h"
#include "cnn/ops/dropout.h"
#include "cnn/ops/flatten.h"
#include "cnn/ops/fused.h"
#include "cnn/ops/linear.h"
#include "cnn/ops/relu.h"
#include "cnn/ops/softmax.h"

namespace cnn {

namespace {

// Runs a constructor's validation so that its error names the layer being built.
template <class F>
void validate(const Module& m, F&& check) {
  try {
    check();
  } catch (Error& e) {
    e.set_layer(m.type_name() + "(" + m.extra_repr() + ")");
    throw;
  }
}

Tensor require_cached(const Tensor& t, const char* layer) {
  if (!t.defined()) throw Error(std::string(layer) + ": backward() called before forward()");
  return t;
}

std::string py_bool(bool b) { return b ? "True" : "False"; }

}  // namespace

std::string python_float(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string sci(buf, res.ptr);  // "-3.5e-01"
  const bool neg = sci[0] == '-';
  if (neg) sci.erase(0, 1);
  const std::size_t e_pos = sci.find('e');
  std::string digits = sci.substr(0, e_pos);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  const int exp = std::stoi(sci.substr(e_pos + 1));
  std::string out;
  if (exp < -4 || exp >= 16) {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    out += (exp < 0 ? "e-" : "e+") + std::string(std::abs(exp) < 10 ? "0" : "") +
           std::to_string(std::abs(exp));
  } else if (exp < 0) {
    out = "0." + std::string(static_cast<std::size_t>(-exp - 1), '0') + digits;
  } else {
    const auto int_len = static_cast<std::size_t>(exp + 1);
    if (digits.size() <= int_len) {
      out = digits + std::string(int_len - digits.size(), '0') + ".0";
    } else {
      out = digits.substr(0, int_len) + "." + digits.substr(int_len);
    }
  }
  return neg ? "-" + out : out;
}

// ---- Conv2d ----

Conv2d::Conv2d(const Conv2dOptions& options, Generator& gen) : options_(options) {
  validate(*this, [&] {
    if (options.in_channels() <= 0 || options.out_channels() <= 0) {
      throw Error("in_channels and out_channels must be positive");
    }
    if (options.groups() <= 0) throw Error("groups must be a positive integer");
    if (options.in_channels() % options.groups() != 0) {
      throw Error("in_channels must be divisible by groups");
    }
    if (options.out_channels() % options.groups() != 0) {
      throw Error("out_channels must be divisible by groups");
    }
    geometry_ = conv2d_geometry(options.kernel_size(), options.stride(), options.padding(),
                                options.dilation(), options.groups());
  });
  const Size2 k = options.kernel_size();
  weight_ = &register_parameter(
      "weight",
      Tensor({options.out_channels(), options.in_channels() / options.groups(), k.h, k.w}));
  if (options.bias()) bias_ = &register_parameter("bias", Tensor({options.out_channels()}));
  reset_parameters(gen);
}

void Conv2d::reset_parameters(Generator& gen) {
  const Shape& w = weight_->value.shape();
  const float bound = 1.0f / std::sqrt(static_cast<float>(w[1] * w[2] * w[3]));
  uniform_(weight_->value, -bound, bound, gen);
  if (bias_) uniform_(bias_->value, -bound, bound, gen);
}

std::string Conv2d::extra_repr() const {
  const auto& o = options_;
  std::string s = std::to_string(o.in_channels()) + ", " + std::to_string(o.out_channels()) +
                  ", kernel_size=" + o.kernel_size().pair_str() +
                  ", stride=" + o.stride().pair_str();
  const auto& p = o.padding();
  if (p.mode != Conv2dPadding::Mode::Explicit) {
    s += ", padding=" + p.str();
  } else if (!p.size.all(0)) {
    s += ", padding=" + p.size.pair_str();
  }
  if (!o.dilation().all(1)) s += ", dilation=" + o.dilation().pair_str();
  if (o.groups() != 1) s += ", groups=" + std::to_string(o.groups());
  if (!o.bias()) s += ", bias=False";
  return s;
}

Tensor Conv2d::forward_block(const Tensor& x, const Pool2dGeometry* pool) {
  block_ = true;
  block_pool_ = pool;
  struct Reset {
    Conv2d& c;
    ~Reset() { c.block_ = false; }
  } reset{*this};
  return forward(x);
}

Tensor Conv2d::forward_impl(const Tensor& x) {
  if (block_) {
    x_ = Tensor();
    return conv2d_relu_pool_forward(x, weight_->value, bias_ ? bias_->value : Tensor(), geometry_,
                                    block_pool_);
  }
  // Training keeps the input only: the backward pass rebuilds each image's im2col matrix in a
  // cache-resident buffer, which measured 10 to 20 % faster per training step than keeping the
  // forward pass's matrices (a workspace of several MB written, then read back, per layer).
  x_ = grad_enabled() ? x : Tensor();
  return conv2d_forward(x, weight_->value, bias_ ? bias_->value : Tensor(), geometry_);
}

Tensor Conv2d::backward_impl(const Tensor& dy) {
  Tensor dx;
  conv2d_backward(require_cached(x_, "Conv2d"), weight_->value, dy, geometry_,
                  input_grad() ? &dx : nullptr, &weight_->grad, bias_ ? &bias_->grad : nullptr);
  return dx;
}

// ---- Linear ----

Linear::Linear(const LinearOptions& options, Generator& gen) : options_(options) {
  validate(*this, [&] {
    if (options.in_features() <= 0 || options.out_features() <= 0) {
      throw Error("in_features and out_features must be positive");
    }
  });
  weight_ = &register_parameter("weight", Tensor({options.out_features(), options.in_features()}));
  if (options.bias()) bias_ = &register_parameter("bias", Tensor({options.out_features()}));
  reset_parameters(gen);
}

void Linear::reset_parameters(Generator& gen) {
  const float bound = 1.0f / std::sqrt(static_cast<float>(options_.in_features()));
  uniform_(weight_->value, -bound, bound, gen);
  if (bias_) uniform_(bias_->value, -bound, bound, gen);
}

std::string Linear::extra_repr() const {
  return "in_features=" + std::to_string(options_.in_features()) +
         ", out_features=" + std::to_string(options_.out_features()) +
         ", bias=" + py_bool(options_.bias());
}

Tensor Linear::forward_impl(const Tensor& x) {
  x_ = grad_enabled() ? x : Tensor();
  return linear_forward(x, weight_->value, bias_ ? bias_->value : Tensor());
}

Tensor Linear::backward_impl(const Tensor& dy) {
  Tensor dx;
  linear_backward(require_cached(x_, "Linear"), weight_->value, dy, input_grad() ? &dx : nullptr,
                  &weight_->grad, bias_ ? &bias_->grad : nullptr);
  return dx;
}

// ---- MaxPool2d ----

MaxPool2d::MaxPool2d(const MaxPool2dOptions& options) : options_(options) {
  geometry_.kernel = options.kernel_size();
  geometry_.stride = options.stride().value_or(options.kernel_size());
  geometry_.padding = options.padding();
  geometry_.dilation = options.dilation();
  geometry_.ceil_mode = options.ceil_mode();
  validate(*this, [&] { check_pool2d_geometry(geometry_); });
}

std::string MaxPool2d::extra_repr() const {
  return "kernel_size=" + geometry_.kernel.str() + ", stride=" + geometry_.stride.str() +
         ", padding=" + geometry_.padding.str() + ", dilation=" + geometry_.dilation.str() +
         ", ceil_mode=" + py_bool(geometry_.ceil_mode);
}

Tensor MaxPool2d::forward_after_relu(const Tensor& x) {
  relu_first_ = true;
  struct Reset {
    MaxPool2d& p;
    ~Reset() { p.relu_first_ = false; }
  } reset{*this};
  return forward(x);
}

Tensor MaxPool2d::forward_impl(const Tensor& x) {
  fused_ = relu_first_ && grad_enabled();
  y_ = Tensor();
  if (!grad_enabled()) {
    x_shape_.clear();
    indices_.clear();
    const Tensor& in = relu_first_ ? relu_forward(x) : x;
    return maxpool2d_forward(in, geometry_, nullptr);
  }
  x_shape_ = x.shape();
  if (fused_) {
    y_ = relu_maxpool2d_forward(x, geometry_, &indices_);
    return y_;
  }
  return maxpool2d_forward(x, geometry_, &indices_);
}

Tensor MaxPool2d::backward_impl(const Tensor& dy) {
  if (x_shape_.empty()) throw Error("backward() called before forward()");
  if (fused_) return relu_maxpool2d_backward(x_shape_, y_, dy, indices_);
  return maxpool2d_backward(x_shape_, dy, indices_);
}

// ---- ReLU, Flatten ----

Tensor ReLU::forward_impl(const Tensor& x) {
  Tensor y = relu_forward(x);
  y_ = grad_enabled() ? y : Tensor();
  return y;
}
Tensor ReLU::backward_impl(const Tensor& dy) {
  return relu_backward(require_cached(y_, "ReLU"), dy);
}

std::string Flatten::extra_repr() const {
  return "start_dim=" + std::to_string(start_dim_) + ", end_dim=" + std::to_string(end_dim_);
}

Tensor Flatten::forward_impl(const Tensor& x) {
  x_shape_ = x.shape();
  return flatten_forward(x, start_dim_, end_dim_);
}

Tensor Flatten::backward_impl(const Tensor& dy) {
  if (x_shape_.empty()) throw Error("backward() called before forward()");
  return dy.reshape(x_shape_);
}

// ---- Dropout ----

Dropout::Dropout(double p, Generator& gen) : p_(p), gen_(&gen) {
  validate(*this, [&] {
    if (!(p >= 0.0 && p <= 1.0)) {
      throw Error("dropout probability has to be between 0 and 1, but got " + python_float(p));
    }
  });
}

std::string Dropout::extra_repr() const { return "p=" + python_float(p_) + ", inplace=False"; }

Tensor Dropout::forward_impl(const Tensor& x) {
  if (!is_training()) {
    mask_ = Tensor();
    return x;
  }
  mask_ = mask_provider_ ? mask_provider_(x.shape())
                         : dropout_mask(x.shape(), static_cast<float>(p_), *gen_);
  return dropout_forward(x, mask_, static_cast<float>(p_));
}

Tensor Dropout::backward_impl(const Tensor& dy) {
  if (!mask_.defined()) return dy;  // evaluation mode: the identity
  return dropout_backward(dy, mask_, static_cast<float>(p_));
}

// ---- Softmax, LogSoftmax ----

Tensor Softmax::forward_impl(const Tensor& x) {
  Tensor y = softmax_forward(x, dim_);
  y_ = grad_enabled() ? y : Tensor();
  return y;
}
Tensor Softmax::backward_impl(const Tensor& dy) {
  return softmax_backward(require_cached(y_, "Softmax"), dy, dim_);
}
Tensor LogSoftmax::forward_impl(const Tensor& x) {
  Tensor y = log_softmax_forward(x, dim_);
  y_ = grad_enabled() ? y : Tensor();
  return y;
}
Tensor LogSoftmax::backward_impl(const Tensor& dy) {
  return log_softmax_backward(require_cached(y_, "LogSoftmax"), dy, dim_);
}

}  // namespace cnn
