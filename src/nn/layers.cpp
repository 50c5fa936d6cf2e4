#include "cnn/nn/layers.h"

#include <algorithm>
#include <charconv>
#include <cmath>

#include "cnn/dist/communicator.h"
#include "cnn/error.h"
#include "cnn/nn/grad_mode.h"
#include "cnn/ops/activation.h"
#include "cnn/ops/avgpool2d.h"
#include "cnn/ops/batchnorm2d.h"
#include "cnn/ops/conv2d.h"
#include "cnn/ops/dropout.h"
#include "cnn/ops/flatten.h"
#include "cnn/ops/fused.h"
#include "cnn/ops/linear.h"
#include "cnn/ops/maxpool2d.h"
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

nlohmann::json size2_json(const Size2& s) {
  return s.scalar ? nlohmann::json(s.h) : nlohmann::json::array({s.h, s.w});
}

nlohmann::json sides_json(const Size2& begin, const Size2& end) {
  return nlohmann::json::array(
      {nlohmann::json::array({begin.h, end.h}), nlohmann::json::array({begin.w, end.w})});
}

namespace {

// A pool's padding in a config: PyTorch's int or pair, or [[top, bottom], [left, right]].
nlohmann::json pool_padding_json(const Size2& padding, const std::optional<Size2>& end) {
  return !end || *end == padding ? size2_json(padding) : sides_json(padding, *end);
}

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
  if (p.mode != Conv2dPadding::Mode::Explicit || p.per_side()) {
    s += ", padding=" + p.str();
  } else if (!p.size.all(0)) {
    s += ", padding=" + p.size.pair_str();
  }
  if (!o.dilation().all(1)) s += ", dilation=" + o.dilation().pair_str();
  if (o.groups() != 1) s += ", groups=" + std::to_string(o.groups());
  if (!o.bias()) s += ", bias=False";
  return s;
}

nlohmann::json Conv2d::config() const {
  const auto& o = options_;
  const auto& p = o.padding();
  nlohmann::json padding = p.per_side() ? sides_json(p.size, *p.end) : size2_json(p.size);
  if (p.mode == Conv2dPadding::Mode::Same) padding = "same";
  if (p.mode == Conv2dPadding::Mode::Valid) padding = "valid";
  return {{"type", "Conv2d"},
          {"in_channels", o.in_channels()},
          {"out_channels", o.out_channels()},
          {"kernel_size", size2_json(o.kernel_size())},
          {"stride", size2_json(o.stride())},
          {"padding", padding},
          {"dilation", size2_json(o.dilation())},
          {"groups", o.groups()},
          {"bias", o.bias()}};
}

Shape Conv2d::output_shape(const Shape& input) const {
  return conv2d_output_shape(input, weight_->value.shape(), geometry_);
}

Tensor Conv2d::forward_block(const Tensor& x, const ConvEpilogue& after) {
  block_ = &after;
  struct Reset {
    Conv2d& c;
    ~Reset() { c.block_ = nullptr; }
  } reset{*this};
  return forward(x);
}

Tensor Conv2d::forward_impl(const Tensor& x) {
  if (block_) {
    x_ = Tensor();
    return conv2d_block_forward(x, weight_->value, bias_ ? bias_->value : Tensor(), geometry_,
                                *block_);
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

nlohmann::json Linear::config() const {
  return {{"type", "Linear"},
          {"in_features", options_.in_features()},
          {"out_features", options_.out_features()},
          {"bias", options_.bias()}};
}

Shape Linear::output_shape(const Shape& input) const {
  return linear_output_shape(input, weight_->value.shape());
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
  geometry_.padding_end = options.padding_end();
  geometry_.dilation = options.dilation();
  geometry_.ceil_mode = options.ceil_mode();
  validate(*this, [&] { check_pool2d_geometry(geometry_); });
}

std::string MaxPool2d::extra_repr() const {
  return "kernel_size=" + geometry_.kernel.str() + ", stride=" + geometry_.stride.str() +
         ", padding=" + pool2d_padding_str(geometry_.padding, geometry_.padding_end) +
         ", dilation=" + geometry_.dilation.str() + ", ceil_mode=" + py_bool(geometry_.ceil_mode);
}

nlohmann::json MaxPool2d::config() const {
  nlohmann::json c = {{"type", "MaxPool2d"}, {"kernel_size", size2_json(geometry_.kernel)}};
  c["stride"] = options_.stride() ? size2_json(*options_.stride()) : nlohmann::json(nullptr);
  c["padding"] = pool_padding_json(geometry_.padding, geometry_.padding_end);
  c["dilation"] = size2_json(geometry_.dilation);
  c["ceil_mode"] = geometry_.ceil_mode;
  return c;
}

Shape MaxPool2d::output_shape(const Shape& input) const {
  return maxpool2d_output_shape(input, geometry_);
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
    indices_ = Tensor();
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
  if (fused_) return relu_maxpool2d_backward(x_shape_, y_, dy, indices_, geometry_);
  return maxpool2d_backward(x_shape_, dy, indices_, geometry_);
}

// ---- ReLU, Flatten ----

nlohmann::json ReLU::config() const { return {{"type", "ReLU"}}; }

Tensor ReLU::forward_impl(const Tensor& x) {
  Tensor y = relu_forward(x);
  y_ = grad_enabled() ? y : Tensor();
  return y;
}
Tensor ReLU::backward_impl(const Tensor& dy) {
  return relu_backward(require_cached(y_, "ReLU"), dy);
}

Flatten::Flatten(int64_t start_dim, int64_t end_dim, bool channels_last)
    : start_dim_(start_dim), end_dim_(end_dim), channels_last_(channels_last) {
  validate(*this, [&] {
    if (channels_last && (start_dim != 1 || (end_dim != -1 && end_dim != 3))) {
      throw Error("channels_last flattens (N, C, H, W) whole: it needs start_dim=1, end_dim=-1");
    }
  });
}

std::string Flatten::extra_repr() const {
  return "start_dim=" + std::to_string(start_dim_) + ", end_dim=" + std::to_string(end_dim_) +
         (channels_last_ ? ", channels_last=True" : "");
}

nlohmann::json Flatten::config() const {
  nlohmann::json c = {{"type", "Flatten"}, {"start_dim", start_dim_}, {"end_dim", end_dim_}};
  if (channels_last_) c["channels_last"] = true;  // PyTorch's Flatten has no such argument
  return c;
}

namespace {

void need_nchw(const Shape& x) {
  if (x.size() != 4) {
    throw Error("channels_last flattens a 4-D input (N, C, H, W), got shape " + shape_str(x));
  }
}

// (N, C, H, W) -> (N, H, W, C) when forward, back when not; y has x's element count.
void permute_channels(const float* x, float* y, const Shape& nchw, bool forward) {
  const int64_t N = nchw[0], C = nchw[1], HW = nchw[2] * nchw[3];
  for (int64_t n = 0; n < N; ++n) {
    const float* xn = x + n * C * HW;
    float* yn = y + n * C * HW;
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t i = 0; i < HW; ++i) {
        if (forward) {
          yn[i * C + c] = xn[c * HW + i];
        } else {
          yn[c * HW + i] = xn[i * C + c];
        }
      }
    }
  }
}

}  // namespace

Shape Flatten::output_shape(const Shape& input) const {
  if (channels_last_) need_nchw(input);
  return flatten_output_shape(input, start_dim_, end_dim_);
}

Tensor Flatten::forward_impl(const Tensor& x) {
  x_shape_ = x.shape();
  if (!channels_last_) return flatten_forward(x, start_dim_, end_dim_);
  need_nchw(x.shape());
  // (On CUDA through the host: Keras's channels-last Flatten is for imported models' inference.)
  const Tensor in = x.cpu();
  Tensor y = Tensor::empty(flatten_output_shape(x.shape(), start_dim_, end_dim_));
  permute_channels(in.data(), y.data(), x.shape(), /*forward=*/true);
  return y.to(x.device());
}

Tensor Flatten::backward_impl(const Tensor& dy) {
  if (x_shape_.empty()) throw Error("backward() called before forward()");
  if (!channels_last_) return dy.reshape(x_shape_);
  if (dy.numel() != shape_numel(x_shape_)) {
    throw Error("Flatten: grad_output of shape " + shape_str(dy.shape()) +
                " does not match the input shape " + shape_str(x_shape_));
  }
  const Tensor in = dy.cpu();
  Tensor dx = Tensor::empty(x_shape_);
  permute_channels(in.data(), dx.data(), x_shape_, /*forward=*/false);
  return dx.to(dy.device());
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

nlohmann::json Dropout::config() const { return {{"type", "Dropout"}, {"p", p_}}; }

Tensor Dropout::forward_impl(const Tensor& x) {
  if (!is_training()) {
    mask_ = Tensor();
    return x;
  }
  if (mask_provider_) {
    mask_ = mask_provider_(x.shape()).to(x.device());
  } else if (shard_global_ > 0 && x.dim() > 0 && x.size(0) > 0 && x.size(0) != shard_global_) {
    if (shard_first_ < 0 || shard_first_ + x.size(0) > shard_global_) {
      throw Error("Dropout: rows " + std::to_string(shard_first_) + " to " +
                  std::to_string(shard_first_ + x.size(0)) + " are not within a batch of " +
                  std::to_string(shard_global_));
    }
    Shape whole = x.shape();
    whole[0] = shard_global_;
    const Tensor all = dropout_mask(whole, static_cast<float>(p_), *gen_);
    mask_ = all.view(shard_first_ * (x.numel() / x.size(0)), x.shape()).to(x.device());
  } else {
    mask_ = dropout_mask(x.shape(), static_cast<float>(p_), *gen_, x.device());
  }
  return dropout_forward(x, mask_, static_cast<float>(p_));
}

Tensor Dropout::backward_impl(const Tensor& dy) {
  if (!mask_.defined()) return dy;  // evaluation mode: the identity
  return dropout_backward(dy, mask_, static_cast<float>(p_));
}

// ---- Softmax, LogSoftmax ----

namespace {
Shape softmax_output_shape(const Shape& input, int64_t dim) {
  const auto rank = static_cast<int64_t>(input.size());
  if (dim < -std::max<int64_t>(rank, 1) || dim >= std::max<int64_t>(rank, 1)) {
    throw Error("Dimension out of range (expected to be in range of [" +
                std::to_string(-std::max<int64_t>(rank, 1)) + ", " +
                std::to_string(std::max<int64_t>(rank, 1) - 1) + "], but got " +
                std::to_string(dim) + ")");
  }
  return input;
}
}  // namespace

nlohmann::json Softmax::config() const { return {{"type", "Softmax"}, {"dim", dim_}}; }
Shape Softmax::output_shape(const Shape& input) const { return softmax_output_shape(input, dim_); }
nlohmann::json LogSoftmax::config() const { return {{"type", "LogSoftmax"}, {"dim", dim_}}; }
Shape LogSoftmax::output_shape(const Shape& input) const {
  return softmax_output_shape(input, dim_);
}

Tensor Softmax::forward_impl(const Tensor& x) {
  if (pass_through_) {
    y_ = Tensor();
    return x;
  }
  Tensor y = softmax_forward(x, dim_);
  y_ = grad_enabled() ? y : Tensor();
  return y;
}
Tensor Softmax::backward_impl(const Tensor& dy) {
  if (pass_through_) return dy;
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

// ---- Tanh, Sigmoid, LeakyReLU, GELU, SiLU, Identity ----

nlohmann::json Tanh::config() const { return {{"type", "Tanh"}}; }
Tensor Tanh::forward_impl(const Tensor& x) {
  Tensor y = tanh_forward(x);
  y_ = grad_enabled() ? y : Tensor();
  return y;
}
Tensor Tanh::backward_impl(const Tensor& dy) {
  return tanh_backward(require_cached(y_, "Tanh"), dy);
}

nlohmann::json Sigmoid::config() const { return {{"type", "Sigmoid"}}; }
Tensor Sigmoid::forward_impl(const Tensor& x) {
  Tensor y = sigmoid_forward(x);
  y_ = grad_enabled() ? y : Tensor();
  return y;
}
Tensor Sigmoid::backward_impl(const Tensor& dy) {
  return sigmoid_backward(require_cached(y_, "Sigmoid"), dy);
}

std::string LeakyReLU::extra_repr() const {
  return "negative_slope=" + python_float(negative_slope_);
}
nlohmann::json LeakyReLU::config() const {
  return {{"type", "LeakyReLU"}, {"negative_slope", negative_slope_}};
}
Tensor LeakyReLU::forward_impl(const Tensor& x) {
  x_ = grad_enabled() ? x : Tensor();
  return leaky_relu_forward(x, static_cast<float>(negative_slope_));
}
Tensor LeakyReLU::backward_impl(const Tensor& dy) {
  return leaky_relu_backward(require_cached(x_, "LeakyReLU"), dy,
                             static_cast<float>(negative_slope_));
}

std::string GELU::extra_repr() const { return "approximate='" + to_string(approximate_) + "'"; }
nlohmann::json GELU::config() const {
  return {{"type", "GELU"}, {"approximate", to_string(approximate_)}};
}
Tensor GELU::forward_impl(const Tensor& x) {
  x_ = grad_enabled() ? x : Tensor();
  return gelu_forward(x, approximate_);
}
Tensor GELU::backward_impl(const Tensor& dy) {
  return gelu_backward(require_cached(x_, "GELU"), dy, approximate_);
}

nlohmann::json SiLU::config() const { return {{"type", "SiLU"}}; }
Tensor SiLU::forward_impl(const Tensor& x) {
  x_ = grad_enabled() ? x : Tensor();
  return silu_forward(x);
}
Tensor SiLU::backward_impl(const Tensor& dy) {
  return silu_backward(require_cached(x_, "SiLU"), dy);
}

nlohmann::json Identity::config() const { return {{"type", "Identity"}}; }

// ---- AvgPool2d, AdaptiveAvgPool2d ----

AvgPool2d::AvgPool2d(const AvgPool2dOptions& options) : options_(options) {
  geometry_.kernel = options.kernel_size();
  geometry_.stride = options.stride().value_or(options.kernel_size());
  geometry_.padding = options.padding();
  geometry_.padding_end = options.padding_end();
  geometry_.ceil_mode = options.ceil_mode();
  geometry_.count_include_pad = options.count_include_pad();
  geometry_.divisor_override = options.divisor_override();
  validate(*this, [&] { check_avgpool2d_geometry(geometry_); });
}

std::string AvgPool2d::extra_repr() const {
  // PyTorch prints only these three (stride is the kernel's when not given).
  return "kernel_size=" + geometry_.kernel.str() + ", stride=" + geometry_.stride.str() +
         ", padding=" + pool2d_padding_str(geometry_.padding, geometry_.padding_end);
}

nlohmann::json AvgPool2d::config() const {
  nlohmann::json c = {{"type", "AvgPool2d"}, {"kernel_size", size2_json(geometry_.kernel)}};
  c["stride"] = options_.stride() ? size2_json(*options_.stride()) : nlohmann::json(nullptr);
  c["padding"] = pool_padding_json(geometry_.padding, geometry_.padding_end);
  c["ceil_mode"] = geometry_.ceil_mode;
  c["count_include_pad"] = geometry_.count_include_pad;
  c["divisor_override"] = geometry_.divisor_override ? nlohmann::json(*geometry_.divisor_override)
                                                     : nlohmann::json(nullptr);
  return c;
}

Shape AvgPool2d::output_shape(const Shape& input) const {
  return avgpool2d_output_shape(input, geometry_);
}

Tensor AvgPool2d::forward_impl(const Tensor& x) {
  x_shape_ = grad_enabled() ? x.shape() : Shape();
  return avgpool2d_forward(x, geometry_);
}

Tensor AvgPool2d::backward_impl(const Tensor& dy) {
  if (x_shape_.empty()) throw Error("backward() called before forward()");
  return avgpool2d_backward(x_shape_, dy, geometry_);
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(Size2 output_size) : output_size_(output_size) {
  validate(*this, [&] {
    if (output_size.h <= 0 || output_size.w <= 0) {
      throw Error("output_size must be positive, got " + output_size.pair_str());
    }
  });
}

nlohmann::json AdaptiveAvgPool2d::config() const {
  return {{"type", "AdaptiveAvgPool2d"}, {"output_size", size2_json(output_size_)}};
}

Shape AdaptiveAvgPool2d::output_shape(const Shape& input) const {
  return adaptive_avgpool2d_output_shape(input, output_size_);
}

Tensor AdaptiveAvgPool2d::forward_impl(const Tensor& x) {
  x_shape_ = grad_enabled() ? x.shape() : Shape();
  return adaptive_avgpool2d_forward(x, output_size_);
}

Tensor AdaptiveAvgPool2d::backward_impl(const Tensor& dy) {
  if (x_shape_.empty()) throw Error("backward() called before forward()");
  return adaptive_avgpool2d_backward(x_shape_, dy);
}

// ---- BatchNorm2d ----

BatchNorm2d::BatchNorm2d(const BatchNorm2dOptions& options) : options_(options) {
  validate(*this, [&] {
    if (options.num_features() <= 0) {
      throw Error("num_features must be positive, got " + std::to_string(options.num_features()));
    }
    if (!(options.eps() > 0.0))
      throw Error("eps must be positive, got " + python_float(options.eps()));
    if (!(options.momentum() >= 0.0 && options.momentum() <= 1.0)) {
      throw Error("momentum must be in [0, 1], got " + python_float(options.momentum()));
    }
  });
  const int64_t C = options.num_features();
  if (options.affine()) {
    weight_ = &register_parameter("weight", Tensor({C}));
    bias_ = &register_parameter("bias", Tensor({C}));
  }
  if (options.track_running_stats()) {
    running_mean_ = &register_buffer("running_mean", Tensor({C}));
    running_var_ = &register_buffer("running_var", Tensor({C}));
    num_batches_tracked_ = &register_buffer("num_batches_tracked", Tensor(Shape{}));
  }
  reset_parameters();
}

void BatchNorm2d::reset_running_stats() {
  if (!running_mean_) return;
  running_mean_->fill(0.0f);
  running_var_->fill(1.0f);
  num_batches_tracked_->fill(0.0f);
}

void BatchNorm2d::reset_parameters() {
  reset_running_stats();
  if (weight_) {
    weight_->value.fill(1.0f);
    bias_->value.fill(0.0f);
  }
}

std::string BatchNorm2d::extra_repr() const {
  const auto& o = options_;
  return std::to_string(o.num_features()) + ", eps=" + python_float(o.eps()) +
         ", momentum=" + python_float(o.momentum()) + ", affine=" + py_bool(o.affine()) +
         ", track_running_stats=" + py_bool(o.track_running_stats());
}

nlohmann::json BatchNorm2d::config() const {
  const auto& o = options_;
  return {{"type", "BatchNorm2d"}, {"num_features", o.num_features()},
          {"eps", o.eps()},        {"momentum", o.momentum()},
          {"affine", o.affine()},  {"track_running_stats", o.track_running_stats()}};
}

Shape BatchNorm2d::output_shape(const Shape& input) const {
  if (input.size() != 4) {
    throw Error("expected 4D input (N, C, H, W), got " + std::to_string(input.size()) +
                "D input of shape " + shape_str(input));
  }
  if (input[1] != options_.num_features()) {
    throw Error("expected " + std::to_string(options_.num_features()) +
                " channels (num_features), got input of shape " + shape_str(input));
  }
  return input;
}

std::optional<BatchNormEval> BatchNorm2d::as_eval() const {
  if (is_training() || !running_mean_) return std::nullopt;
  return BatchNormEval{weight_ ? weight_->value : Tensor(), bias_ ? bias_->value : Tensor(),
                       *running_mean_, *running_var_, options_.eps()};
}

Tensor BatchNorm2d::forward_impl(const Tensor& x) {
  output_shape(x.shape());
  // PyTorch normalises with the batch's statistics in training mode, and in evaluation mode too
  // when it keeps no running statistics; SyncBatchNorm synchronises in training mode only.
  const bool batch_stats = is_training() || !running_mean_;
  const bool update = is_training() && running_mean_;
  const bool sync = is_training() && comm_ && comm_->size() > 1;
  const Tensor weight = weight_ ? weight_->value : Tensor(), bias = bias_ ? bias_->value : Tensor();
  BatchNorm2dSaved saved;
  Tensor y;
  if (sync) {
    if (x.is_cuda())
      throw Error(
          "SyncBatchNorm on CUDA is not supported yet: train on the CPU, or without statistics "
          "synchronised over the ranks");
    // One allreduce of [sum(x) (C), sum(x^2) (C), M]: the whole batch's sums.
    std::vector<double> sums = batchnorm2d_stat_sums(x);
    const double local_count = sums.back();
    comm_->allreduce_sum(sums.data(), static_cast<int64_t>(sums.size()));
    y = batchnorm2d_forward_from_sums(x, weight, bias, sums, running_mean_, running_var_,
                                      options_.momentum(), options_.eps(), &saved);
    share_ = local_count / sums.back();
  } else {
    y = batchnorm2d_forward(x, weight, bias, running_mean_, running_var_, batch_stats,
                            options_.momentum(), options_.eps(), &saved);
  }
  synced_ = sync;
  if (update) {
    if (num_batches_tracked_->is_cuda()) {
      Tensor count = num_batches_tracked_->cpu();
      count[0] += 1.0f;
      num_batches_tracked_->copy_(count);
    } else {
      (*num_batches_tracked_)[0] += 1.0f;
    }
  }
  batch_stats_ = batch_stats;
  x_ = grad_enabled() ? x : Tensor();
  saved_ = grad_enabled() ? saved : BatchNorm2dSaved{};
  return y;
}

Tensor BatchNorm2d::backward_impl(const Tensor& dy) {
  if (synced_) return backward_synced(dy);
  Tensor dx;
  batchnorm2d_backward(require_cached(x_, "BatchNorm2d"), dy, weight_ ? weight_->value : Tensor(),
                       saved_, batch_stats_, input_grad() ? &dx : nullptr,
                       weight_ ? &weight_->grad : nullptr, bias_ ? &bias_->grad : nullptr);
  return dx;
}

// Rank r holds M_r of a channel's M = sum_q M_q values, a share s_r = M_r / M of them (its share of
// the batch's items too: every part has the same H and W). Let L be the mean loss over the whole
// batch and g = dL/dy. Rank r's loss is the mean over its part alone, so its dy_r = g / s_r, and
// the Trainer gives every parameter the gradient sum_q s_q grad_q. Single-process BatchNorm2d on
// the whole batch gives, with sums over all M values,
//   dx = weight invstd (g - sum(g) / M - xhat sum(g xhat) / M).
// An earlier layer's gradient is linear in the dx it receives, so after the weighting it is the
// whole batch's when rank r returns dx / s_r on its part:
//   dx_r = weight invstd (dy_r - sum(g) / (s_r M) - xhat sum(g xhat) / (s_r M)),
// where sum(g) = sum_q s_q sum_{part q}(dy_q), and likewise sum(g xhat): each rank adds its
// part's sums times its share, one allreduce adds the ranks', and s_r M = M_r. (With equal parts,
// s_q = 1 / size, this is PyTorch's SyncBatchNorm under DistributedDataParallel's average:
// dx_r = weight invstd (dy_r - sum_q sum(dy_q) / M - ...).) weight's and bias's gradients are this
// part's sums of dy_r xhat and dy_r: weighted by s_r and summed they are sum(g xhat) and sum(g),
// the whole batch's.
Tensor BatchNorm2d::backward_synced(const Tensor& dy) {
  const Tensor& x = require_cached(x_, "BatchNorm2d");
  std::vector<double> sums = batchnorm2d_backward_reduce(
      x, dy, saved_, weight_ ? &weight_->grad : nullptr, bias_ ? &bias_->grad : nullptr);
  // Every rank has the same layers and the same input_grad, so all skip the allreduce together.
  if (!input_grad()) return Tensor();
  for (double& s : sums) s *= share_;
  comm_->allreduce_sum(sums.data(), static_cast<int64_t>(sums.size()));
  const double local_count = static_cast<double>(x.numel() / x.size(1));
  return batchnorm2d_backward_elemt(x, dy, weight_ ? weight_->value : Tensor(), saved_, sums,
                                    local_count);
}

}  // namespace cnn
