// Keras-style declarations (cnn/nn/keras.h): each Keras layer appends the library's layers for the
// shape flowing into it, with Keras's padding, flattening order and initialisation. References:
// Keras 2.x (tf.keras) and Keras 3 sources, keras/layers/convolutional, pooling, core, and
// TensorFlow's padding rule (tensorflow/core/framework/kernel_shape_util.cc,
// GetWindowedOutputSizeVerbose: "SAME" gives out = ceil(in / stride) and
// pad_before = total / 2, the rest after).
#include "cnn/nn/keras.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "cnn/error.h"
#include "cnn/nn/layers.h"
#include "cnn/suggest.h"

namespace cnn::keras {

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

std::string sample_shape(const Shape& s) {  // the batch dimension dropped
  std::string out = "(";
  for (std::size_t i = 1; i < s.size(); ++i) out += (i > 1 ? ", " : "") + std::to_string(s[i]);
  return out + ")";
}

// Appends a module, checking that the flowing shape goes through it.
void add(BuildState& s, std::shared_ptr<Module> m) {
  s.shape = m->output_shape(s.shape);
  s.model.push_back(std::move(m));
  s.non_negative = false;
}

void need_image(const BuildState& s, const std::string& what) {
  if (s.shape.size() != 4) {
    throw Error(what + " needs an image input (H, W, C); the shape flowing in is " +
                sample_shape(s.shape) + " (features: after a Flatten or Dense?)");
  }
}

// Keras's activation names. The Keras ones not here are refused by name, so that a model that
// asks for one is never built with something else.
const std::map<std::string, std::function<std::shared_ptr<Module>()>>& activation_table() {
  static const std::map<std::string, std::function<std::shared_ptr<Module>()>> table = {
      {"relu", []() -> std::shared_ptr<Module> { return std::make_shared<ReLU>(); }},
      {"tanh", []() -> std::shared_ptr<Module> { return std::make_shared<Tanh>(); }},
      {"sigmoid", []() -> std::shared_ptr<Module> { return std::make_shared<Sigmoid>(); }},
      // Keras's softmax runs over the last axis: the channels of NHWC, the features of (N, F);
      // dim 1 of NCHW and of (N, F).
      {"softmax", []() -> std::shared_ptr<Module> { return std::make_shared<Softmax>(1); }},
      {"log_softmax", []() -> std::shared_ptr<Module> { return std::make_shared<LogSoftmax>(1); }},
      // keras.activations.gelu(x, approximate=False) in Keras 2.4+ and 3: the erf form.
      {"gelu", []() -> std::shared_ptr<Module> { return std::make_shared<GELU>("none"); }},
      {"swish", []() -> std::shared_ptr<Module> { return std::make_shared<SiLU>(); }},
      {"silu", []() -> std::shared_ptr<Module> { return std::make_shared<SiLU>(); }},
      // Keras 3's keras.activations.leaky_relu(x, negative_slope=0.2).
      {"leaky_relu",
       []() -> std::shared_ptr<Module> { return std::make_shared<cnn::LeakyReLU>(0.2); }},
  };
  return table;
}

void add_activation(BuildState& s, const std::string& name) {
  if (name.empty() || name == "linear") return;
  const auto& table = activation_table();
  const auto it = table.find(name);
  if (it == table.end()) {
    static const std::vector<std::string> keras_only = {
        "elu",  "selu",      "softplus",   "softsign", "exponential", "hard_sigmoid", "relu6",
        "mish", "hard_silu", "hard_swish", "celu",     "glu",         "log_sigmoid",  "sparsemax"};
    std::vector<std::string> names = activations();
    if (std::find(keras_only.begin(), keras_only.end(), name) != keras_only.end()) {
      throw Error("activation '" + name + "' (Keras has it) is not supported; it takes " +
                  join(names));
    }
    const std::string near = nearest(name, names);
    throw Error("unknown activation '" + name + "'" +
                (near.empty() ? "" : " (did you mean '" + near + "'?)") + "; it takes " +
                join(names));
  }
  add(s, it->second());
  s.non_negative = name == "relu" || name == "sigmoid";
}

// "valid" or "same", else an error naming the layer's argument.
bool is_same(const std::string& padding) {
  if (padding == "same") return true;
  if (padding == "valid") return false;
  throw Error("padding must be 'valid' or 'same', got '" + padding + "'");
}

// The pending ZeroPadding2D, taken by a layer that folds it (or refused by one that cannot).
std::optional<Size2> take_padding(BuildState& s) {
  auto p = s.pending_padding;
  s.pending_padding.reset();
  return p;
}

}  // namespace

Size2 size2_of(std::initializer_list<int64_t> v) {
  if (v.size() == 1) return Size2(*v.begin());
  if (v.size() == 2) return Size2(*v.begin(), *(v.begin() + 1));
  throw Error("a size must be one integer or two (h, w), got " + std::to_string(v.size()));
}

std::vector<std::string> activations() {
  std::vector<std::string> names = {"linear"};
  for (const auto& [name, make] : activation_table()) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

Shape channels_first(const std::vector<int64_t>& shape) {
  for (const int64_t d : shape) {
    if (d <= 0) throw Error("an input shape's sizes must be positive");
  }
  if (shape.size() == 3) return {shape[2], shape[0], shape[1]};
  if (shape.size() == 1) return {shape[0]};
  throw Error("the input shape must be (H, W, C) for images or (F,) for features, got " +
              std::to_string(shape.size()) + " dimensions");
}

SamePadding same_padding(int64_t in, int64_t kernel, int64_t stride, int64_t dilation) {
  const int64_t out = (in + stride - 1) / stride;
  const int64_t total = std::max<int64_t>((out - 1) * stride + (kernel - 1) * dilation + 1 - in, 0);
  return {total / 2, total - total / 2};
}

void glorot_uniform_(Tensor& weight, Generator& gen) {
  const Shape& w = weight.shape();
  int64_t fan_in = 0, fan_out = 0;
  if (w.size() == 4) {  // Conv2d (C_out, C_in / groups, K_h, K_w); Keras's kernel is (K_h, K_w,
                        // C_in / groups, C_out)
    const int64_t field = w[2] * w[3];
    fan_in = w[1] * field;
    fan_out = w[0] * field;
  } else if (w.size() == 2) {  // Linear (out, in); Keras's kernel is (in, out)
    fan_in = w[1];
    fan_out = w[0];
  } else {
    throw Error("glorot_uniform_: expected a 2-D or 4-D weight, got " + shape_str(w));
  }
  const auto limit = static_cast<float>(std::sqrt(6.0 / static_cast<double>(fan_in + fan_out)));
  uniform_(weight, -limit, limit, gen);
}

Input::Input(std::vector<int64_t> shape) { input_shape_ = std::move(shape); }

// ---- Conv2D ----

Conv2D::Conv2D(int64_t filters, Size2 kernel_size, Size2 strides, std::string padding,
               std::string activation)
    : filters_(filters),
      kernel_(kernel_size),
      strides_(strides),
      padding_(std::move(padding)),
      activation_(std::move(activation)) {}

void Conv2D::build(BuildState& s) const {
  need_image(s, "Conv2D");
  const bool same = is_same(padding_);
  const std::optional<Size2> zero = take_padding(s);
  if (zero && same)
    throw Error("ZeroPadding2D before a Conv2D with padding='same' is not supported");
  Conv2dPadding padding(zero.value_or(Size2(0)));
  if (same && strides_.all(1)) {
    padding = Conv2dPadding("same");  // TensorFlow's and PyTorch's agree with stride 1
  } else if (same) {
    const SamePadding h = same_padding(s.shape[2], kernel_.h, strides_.h, dilation_.h);
    const SamePadding w = same_padding(s.shape[3], kernel_.w, strides_.w, dilation_.w);
    padding =
        (h.before == h.after && w.before == w.after)
            ? Conv2dPadding(h.before == w.before ? Size2(h.before) : Size2(h.before, w.before))
            : Conv2dPadding::sides(h.before, h.after, w.before, w.after);
  }
  auto conv = std::make_shared<Conv2d>(Conv2dOptions(s.shape[1], filters_, kernel_)
                                           .stride(strides_)
                                           .padding(padding)
                                           .dilation(dilation_)
                                           .groups(groups_)
                                           .bias(use_bias_),
                                       s.gen);
  glorot_uniform_(conv->weight().value, s.gen);
  if (conv->bias()) conv->bias()->value.fill(0.0f);
  add(s, conv);
  add_activation(s, activation_);
}

// ---- pooling ----

MaxPooling2D::MaxPooling2D(Size2 pool_size, std::optional<Size2> strides, std::string padding)
    : pool_(pool_size), strides_(strides), padding_(std::move(padding)) {}

AveragePooling2D::AveragePooling2D(Size2 pool_size, std::optional<Size2> strides,
                                   std::string padding)
    : pool_(pool_size), strides_(strides), padding_(std::move(padding)) {}

namespace {

// The pool's padding: {top/left, bottom/right if they differ}.
struct PoolPadding {
  Size2 begin = 0;
  std::optional<Size2> end;
};
PoolPadding pool_padding(const BuildState& s, Size2 pool, Size2 stride, const std::string& mode) {
  if (!is_same(mode)) return {};
  const SamePadding h = same_padding(s.shape[2], pool.h, stride.h);
  const SamePadding w = same_padding(s.shape[3], pool.w, stride.w);
  PoolPadding p;
  p.begin = h.before == w.before ? Size2(h.before) : Size2(h.before, w.before);
  if (h.after != h.before || w.after != w.before) p.end = Size2(h.after, w.after);
  return p;
}

}  // namespace

void MaxPooling2D::build(BuildState& s) const {
  need_image(s, "MaxPooling2D");
  const Size2 stride = strides_.value_or(pool_);
  const bool non_negative = s.non_negative;
  PoolPadding p = pool_padding(s, pool_, stride, padding_);
  if (const auto zero = take_padding(s)) {
    if (p.end || !p.begin.all(0)) {
      throw Error("ZeroPadding2D before a MaxPooling2D with padding='same' is not supported");
    }
    if (!non_negative) {
      throw Error(
          "ZeroPadding2D before MaxPooling2D folds into the pool's padding only after a "
          "'relu' or 'sigmoid' activation (whose outputs the zeros never exceed)");
    }
    p.begin = *zero;
  }
  add(s, std::make_shared<MaxPool2d>(
             MaxPool2dOptions(pool_).stride(stride).padding(p.begin).padding_end(p.end)));
  s.non_negative = non_negative;  // max pooling keeps a sign
}

void AveragePooling2D::build(BuildState& s) const {
  need_image(s, "AveragePooling2D");
  if (take_padding(s)) throw Error("ZeroPadding2D before AveragePooling2D is not supported");
  const Size2 stride = strides_.value_or(pool_);
  const PoolPadding p = pool_padding(s, pool_, stride, padding_);
  const bool non_negative = s.non_negative;
  add(s, std::make_shared<AvgPool2d>(AvgPool2dOptions(pool_)
                                         .stride(stride)
                                         .padding(p.begin)
                                         .padding_end(p.end)
                                         .count_include_pad(false)));
  s.non_negative = non_negative;
}

void GlobalAveragePooling2D::build(BuildState& s) const {
  need_image(s, "GlobalAveragePooling2D");
  if (take_padding(s)) throw Error("ZeroPadding2D before GlobalAveragePooling2D is not supported");
  const bool non_negative = s.non_negative;
  add(s, std::make_shared<AdaptiveAvgPool2d>(Size2(1)));
  add(s, std::make_shared<cnn::Flatten>());  // (N, C, 1, 1): the orders agree
  s.non_negative = non_negative;
}

void ZeroPadding2D::build(BuildState& s) const {
  need_image(s, "ZeroPadding2D");
  if (padding_.h < 0 || padding_.w < 0) throw Error("padding must be non-negative");
  if (s.pending_padding) throw Error("two ZeroPadding2D in a row are not supported");
  s.pending_padding = padding_;  // folded by the next layer (keras.h)
}

// ---- Flatten, Dense, Dropout, BatchNormalization, activations ----

void Flatten::build(BuildState& s) const {
  add(s, std::make_shared<cnn::Flatten>(1, -1, /*channels_last=*/s.shape.size() == 4));
}

Dense::Dense(int64_t units, std::string activation, bool use_bias)
    : units_(units), activation_(std::move(activation)), use_bias_(use_bias) {}

void Dense::build(BuildState& s) const {
  if (s.shape.size() != 2) {
    throw Error("Dense needs features (N, F); the shape flowing in is " + sample_shape(s.shape) +
                " (Keras applies Dense to the channels of an image: add Flatten() first)");
  }
  if (units_ <= 0) throw Error("units must be positive, got " + std::to_string(units_));
  auto linear = std::make_shared<Linear>(LinearOptions(s.shape[1], units_).bias(use_bias_), s.gen);
  glorot_uniform_(linear->weight().value, s.gen);
  if (linear->bias()) linear->bias()->value.fill(0.0f);
  add(s, linear);
  add_activation(s, activation_);
}

void Dropout::build(BuildState& s) const {
  const bool non_negative = s.non_negative;
  add(s, std::make_shared<cnn::Dropout>(rate_, s.gen));
  s.non_negative = non_negative;
}

BatchNormalization::BatchNormalization(int64_t axis, double momentum, double epsilon, bool center,
                                       bool scale)
    : axis_(axis), momentum_(momentum), epsilon_(epsilon), center_(center), scale_(scale) {}

void BatchNormalization::build(BuildState& s) const {
  need_image(s, "BatchNormalization");
  if (axis_ != -1 && axis_ != 3) {
    throw Error("axis must be -1 or 3 (the channels of (N, H, W, C)), got " +
                std::to_string(axis_));
  }
  if (center_ != scale_) {
    throw Error("center and scale must both be true or both false (BatchNorm2d's affine)");
  }
  if (!(momentum_ >= 0.0 && momentum_ <= 1.0)) throw Error("momentum must be in [0, 1]");
  add(s,
      std::make_shared<BatchNorm2d>(
          BatchNorm2dOptions(s.shape[1]).eps(epsilon_).momentum(1.0 - momentum_).affine(center_)));
}

void Activation::build(BuildState& s) const { add_activation(s, name_); }

void LeakyReLU::build(BuildState& s) const { add(s, std::make_shared<cnn::LeakyReLU>(slope_)); }

// ---- the model ----

BuiltModel build(const std::vector<AnyLayer>& layers, Generator& gen, const std::string& name) {
  if (layers.empty()) throw Error("keras::Sequential: no layers");
  const auto& declared = layers.front()->declared_input();
  if (!declared) {
    throw Error(
        "keras::Sequential: the first layer must be Input({H, W, C}) or declare "
        "input_shape({H, W, C})");
  }
  BuiltModel built;
  built.module = std::make_shared<cnn::Sequential>();
  built.module->set_name(name);
  built.input = channels_first(*declared);
  Shape batch1 = {1};
  batch1.insert(batch1.end(), built.input.begin(), built.input.end());
  BuildState s{*built.module, batch1, gen, std::nullopt, false};
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const Layer& layer = *layers[i];
    try {
      if (i > 0 && layer.declared_input())
        throw Error("only the first layer may declare the input");
      layer.build(s);
    } catch (const Error& e) {
      throw Error("keras layer " + std::to_string(i) + " (" + layer.class_name() +
                  "): " + e.what());
    }
  }
  if (s.pending_padding) {
    throw Error("keras::Sequential: a ZeroPadding2D ends the model (it folds into the next layer)");
  }
  built.output.assign(s.shape.begin() + 1, s.shape.end());
  built.name = name;
  built.parameters = built.module->num_parameters();
  return built;
}

std::shared_ptr<cnn::Sequential> Sequential(const std::vector<AnyLayer>& layers, Generator& gen) {
  return build(layers, gen).module;
}

}  // namespace cnn::keras
