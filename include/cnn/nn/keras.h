// Keras-style declarations of the library's layers, as the tutorial's last section declares a
// model (tf.keras.layers.Conv2D(filters=16, kernel_size=(3, 3), activation="relu")):
//
//   using namespace cnn::keras;
//   auto model = Sequential({Input({28, 28, 1}),  // Keras's channels-last shape (H, W, C)
//                            Conv2D(16, 3, 1, "valid", "relu"),
//                            MaxPooling2D(2), Flatten(), Dense(10, "softmax")});
//
// Each layer takes Keras's positional arguments in Keras's order (Conv2D skips data_format,
// channels_last only, so its fifth is the activation) and every named one through a chainable
// setter of Keras's name: Conv2D(16, 3).strides(2).padding("same").activation("relu"). The result
// is an ordinary cnn::Sequential of the library's layers (Conv2D(activation="relu") becomes Conv2d
// + ReLU), numbered as a PyTorch nn.Sequential's children, so summary(), training, checkpoints and
// model files (describe_model) work as for any model. It takes NCHW tensors, (N, C, H, W), as
// every model of the library does, and computes what the Keras model computes on the same data in
// NHWC. Where Keras's semantics differ from PyTorch's, the layers built keep Keras's:
//
// - padding="same" is TensorFlow's: out = ceil(in / stride), total padding
//   max((out - 1) * stride + (k - 1) * dilation + 1 - in, 0) per axis, the odd one at the bottom /
//   right. With stride 1 it is PyTorch's padding="same"; with stride > 1 it depends on the input's
//   size and may differ per side: Conv2d then takes ((top, bottom), (left, right)) padding
//   (Conv2dPadding::sides), the pools padding_end. Max pooling pads with -inf (padding never
//   wins), average pooling divides by the cells inside the input (count_include_pad=False).
// - Flatten orders the features (H, W, C), as Keras flattens its channels-last tensors: a 4-D
//   input becomes Flatten(channels_last=True), so that a Dense kernel from Keras applies as it is
//   (transposed: Keras's kernel is (in, out), Linear's weight (out, in)).
// - Initialisation: glorot_uniform kernels, U(-l, l) with l = sqrt(6 / (fan_in + fan_out)) (for
//   a convolution fan_in = C_in / groups * K_h * K_w, fan_out = C_out * K_h * K_w), zero biases;
//   BatchNormalization's gamma 1, beta 0, moving mean 0, moving variance 1 (PyTorch's too).
// - BatchNormalization(momentum=0.99, epsilon=1e-3): Keras's momentum weighs the old moving
//   statistic, PyTorch's the new one: BatchNorm2d(momentum = 1 - 0.99 = 0.01, eps = 1e-3).
//   (Keras updates the moving variance with the batch's biased variance, PyTorch's BatchNorm2d,
//   and so this one, with the unbiased one: the moving variances differ by a factor n / (n - 1),
//   n = N * H * W, after training; the outputs in training mode do not.)
// - ZeroPadding2D(p) folds into the layer after it: into a Conv2D's padding (the same zeros), or
//   into a MaxPooling2D's padding after a ReLU or sigmoid activation, whose outputs are never below
//   the zeros, so -inf padding gives the same maxima (and, through the activation, the same
//   gradients). Anywhere else it is refused: the library has no padding layer.
//
// Activations, by Keras's names (an activation= argument or Activation(name)): "linear" (or ""),
// "relu", "tanh", "sigmoid", "softmax" and "log_softmax" (over the channels / features, Keras's
// last axis: dim 1 here), "gelu" (exact, erf: keras.activations.gelu's approximate=False in Keras
// 2 and 3), "swish" / "silu", "leaky_relu" (Keras 3's, negative_slope 0.2). Keras's others (elu,
// selu, softplus, softsign, exponential, hard_sigmoid, relu6, mish, ...) are refused by name.
//
// Errors name the Keras layer ("keras layer 2 (MaxPooling2D): ...") and what was expected.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "cnn/nn/module.h"
#include "cnn/nn/spec.h"
#include "cnn/random.h"
#include "cnn/size2.h"

namespace cnn::keras {

// {3} or {3, 2} as a Size2; throws for another length.
Size2 size2_of(std::initializer_list<int64_t> v);

// What a layer sees while a model is built: the model so far and the shape flowing in.
struct BuildState {
  cnn::Sequential& model;
  Shape shape;  // (1, C, H, W) or (1, F)
  Generator& gen;
  std::optional<Size2> pending_padding;  // a ZeroPadding2D waiting for the next layer
  bool non_negative = false;             // the last layer's outputs are >= 0 (ReLU, sigmoid)
};

// A Keras layer as declared; Sequential() turns it into the library's layers once the shape
// flowing into it is known.
class Layer {
 public:
  virtual ~Layer() = default;
  virtual std::string class_name() const = 0;  // Keras's: "Conv2D"
  // Appends this layer's modules to s.model for the input s.shape and sets s.shape to its output.
  virtual void build(BuildState& s) const = 0;
  // Keras's input_shape= (channels-last), if this layer declares the model's input.
  const std::optional<std::vector<int64_t>>& declared_input() const { return input_shape_; }

 protected:
  std::optional<std::vector<int64_t>> input_shape_;
};

// Any layer, by value, so that Sequential({Conv2D(...), Dense(...)}) takes a braced list.
class AnyLayer {
 public:
  template <class L, std::enable_if_t<std::is_base_of_v<Layer, L>, int> = 0>
  AnyLayer(const L& layer) : layer_(std::make_shared<L>(layer)) {}  // NOLINT: implicit by design
  const Layer& operator*() const { return *layer_; }
  const Layer* operator->() const { return layer_.get(); }

 private:
  std::shared_ptr<const Layer> layer_;
};

// Declares the model's input: one sample's shape, channels last, (H, W, C) for an image or (F,)
// for features, as keras.Input(shape=...). The model takes (N, C, H, W) tensors.
class Input : public Layer {
 public:
  Input(std::vector<int64_t> shape);  // NOLINT: Input({28, 28, 1})
  std::string class_name() const override { return "InputLayer"; }
  void build(BuildState&) const override {}
};

// Keras's input_shape= argument of a first layer, for every layer below.
#define CNN_KERAS_INPUT_SHAPE(Class)                   \
  Class& input_shape(std::vector<int64_t> shape_hwc) { \
    input_shape_ = std::move(shape_hwc);               \
    return *this;                                      \
  }

// Conv2D(filters, kernel_size, strides=1, padding="valid", activation=None); setters for every
// argument, and dilation_rate (1), groups (1), use_bias (true). x: (N, C_in, H, W) -> (N, filters,
// H_out, W_out). Conv2d with glorot_uniform weights and zero bias, then the activation's layer.
class Conv2D : public Layer {
 public:
  Conv2D(int64_t filters, Size2 kernel_size, Size2 strides = 1, std::string padding = "valid",
         std::string activation = "");
  std::string class_name() const override { return "Conv2D"; }
  void build(BuildState& s) const override;
  Conv2D& strides(Size2 v) {
    strides_ = v;
    return *this;
  }
  Conv2D& padding(std::string v) {
    padding_ = std::move(v);
    return *this;
  }
  Conv2D& dilation_rate(Size2 v) {
    dilation_ = v;
    return *this;
  }
  Conv2D& groups(int64_t v) {
    groups_ = v;
    return *this;
  }
  Conv2D& activation(std::string v) {
    activation_ = std::move(v);
    return *this;
  }
  Conv2D& use_bias(bool v) {
    use_bias_ = v;
    return *this;
  }
  CNN_KERAS_INPUT_SHAPE(Conv2D)

 private:
  int64_t filters_;
  Size2 kernel_, strides_, dilation_ = 1;
  std::string padding_, activation_;
  int64_t groups_ = 1;
  bool use_bias_ = true;
};

// MaxPooling2D(pool_size=2, strides=None (= pool_size), padding="valid"). MaxPool2d.
class MaxPooling2D : public Layer {
 public:
  MaxPooling2D(Size2 pool_size = 2, std::optional<Size2> strides = std::nullopt,  // NOLINT
               std::string padding = "valid");
  // MaxPooling2D({2, 2}): without it, {2, 2} would also read as MaxPooling2D(2, 2), copied.
  MaxPooling2D(std::initializer_list<int64_t> pool_size) : MaxPooling2D(size2_of(pool_size)) {}
  std::string class_name() const override { return "MaxPooling2D"; }
  void build(BuildState& s) const override;
  MaxPooling2D& strides(Size2 v) {
    strides_ = v;
    return *this;
  }
  MaxPooling2D& padding(std::string v) {
    padding_ = std::move(v);
    return *this;
  }
  CNN_KERAS_INPUT_SHAPE(MaxPooling2D)

 private:
  Size2 pool_;
  std::optional<Size2> strides_;
  std::string padding_;
};
using MaxPool2D = MaxPooling2D;

// AveragePooling2D(pool_size=2, strides=None, padding="valid"). AvgPool2d with
// count_include_pad=False: a "same" window averages the cells inside the input, as Keras's.
class AveragePooling2D : public Layer {
 public:
  AveragePooling2D(Size2 pool_size = 2, std::optional<Size2> strides = std::nullopt,  // NOLINT
                   std::string padding = "valid");
  AveragePooling2D(std::initializer_list<int64_t> pool_size)  // as MaxPooling2D's
      : AveragePooling2D(size2_of(pool_size)) {}
  std::string class_name() const override { return "AveragePooling2D"; }
  void build(BuildState& s) const override;
  AveragePooling2D& strides(Size2 v) {
    strides_ = v;
    return *this;
  }
  AveragePooling2D& padding(std::string v) {
    padding_ = std::move(v);
    return *this;
  }
  CNN_KERAS_INPUT_SHAPE(AveragePooling2D)

 private:
  Size2 pool_;
  std::optional<Size2> strides_;
  std::string padding_;
};
using AvgPool2D = AveragePooling2D;

// GlobalAveragePooling2D(): (N, C, H, W) -> (N, C). AdaptiveAvgPool2d(1) + Flatten.
class GlobalAveragePooling2D : public Layer {
 public:
  std::string class_name() const override { return "GlobalAveragePooling2D"; }
  void build(BuildState& s) const override;
};

// ZeroPadding2D(padding): an int, an (h, w) pair; folded into the next layer (above).
class ZeroPadding2D : public Layer {
 public:
  ZeroPadding2D(Size2 padding = 1) : padding_(padding) {}  // NOLINT
  std::string class_name() const override { return "ZeroPadding2D"; }
  void build(BuildState& s) const override;

 private:
  Size2 padding_;
};

// Flatten(): (N, C, H, W) -> (N, H * W * C) in Keras's (H, W, C) order; (N, F) stays.
class Flatten : public Layer {
 public:
  std::string class_name() const override { return "Flatten"; }
  void build(BuildState& s) const override;
  CNN_KERAS_INPUT_SHAPE(Flatten)
};

// Dense(units, activation=None, use_bias=True): (N, F) -> (N, units). Linear with glorot_uniform
// weights and zero bias, then the activation's layer. (Keras applies Dense to the last axis of
// any input; here the input must be (N, F): Flatten first.)
class Dense : public Layer {
 public:
  Dense(int64_t units, std::string activation = "", bool use_bias = true);
  std::string class_name() const override { return "Dense"; }
  void build(BuildState& s) const override;
  Dense& activation(std::string v) {
    activation_ = std::move(v);
    return *this;
  }
  Dense& use_bias(bool v) {
    use_bias_ = v;
    return *this;
  }
  CNN_KERAS_INPUT_SHAPE(Dense)

 private:
  int64_t units_;
  std::string activation_;
  bool use_bias_;
};

// Dropout(rate): Dropout(p=rate), the same inverted dropout.
class Dropout : public Layer {
 public:
  explicit Dropout(double rate) : rate_(rate) {}
  std::string class_name() const override { return "Dropout"; }
  void build(BuildState& s) const override;

 private:
  double rate_;
};

// BatchNormalization(axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True) of a 4-D
// input's channels (axis -1 or 3 of Keras's NHWC). BatchNorm2d(eps=epsilon, momentum=1 -
// momentum, affine=center); center and scale must agree (BatchNorm2d's affine has both or none).
class BatchNormalization : public Layer {
 public:
  BatchNormalization(int64_t axis = -1, double momentum = 0.99, double epsilon = 1e-3,  // NOLINT
                     bool center = true, bool scale = true);
  std::string class_name() const override { return "BatchNormalization"; }
  void build(BuildState& s) const override;
  BatchNormalization& momentum(double v) {
    momentum_ = v;
    return *this;
  }
  BatchNormalization& epsilon(double v) {
    epsilon_ = v;
    return *this;
  }
  BatchNormalization& center(bool v) {
    center_ = v;
    return *this;
  }
  BatchNormalization& scale(bool v) {
    scale_ = v;
    return *this;
  }

 private:
  int64_t axis_;
  double momentum_, epsilon_;
  bool center_, scale_;
};

// Activation(name): the activation's layer (the list above; "linear" adds nothing).
class Activation : public Layer {
 public:
  explicit Activation(std::string name) : name_(std::move(name)) {}
  std::string class_name() const override { return "Activation"; }
  void build(BuildState& s) const override;

 private:
  std::string name_;
};

// LeakyReLU(negative_slope=0.3): the layer's default (Keras 2's alpha=0.3, Keras 3's
// negative_slope=0.3), unlike the activation "leaky_relu"'s 0.2.
class LeakyReLU : public Layer {
 public:
  explicit LeakyReLU(double negative_slope = 0.3) : slope_(negative_slope) {}
  std::string class_name() const override { return "LeakyReLU"; }
  void build(BuildState& s) const override;

 private:
  double slope_;
};

#undef CNN_KERAS_INPUT_SHAPE

// The activations accepted by name, sorted.
std::vector<std::string> activations();

// Builds the model: the input from the first layer (Input, or a layer's input_shape), then each
// layer's modules, weights drawn from gen in the declared order. The result is in training mode,
// as a new Keras or PyTorch model. Throws naming the Keras layer for a shape that cannot flow, an
// unknown activation or argument value.
BuiltModel build(const std::vector<AnyLayer>& layers, Generator& gen = default_generator(),
                 const std::string& name = "");

// build(layers, gen).module: an ordinary cnn::Sequential.
std::shared_ptr<cnn::Sequential> Sequential(const std::vector<AnyLayer>& layers,
                                            Generator& gen = default_generator());

// Keras's channels-last sample shape (H, W, C) or (F,) -> the library's (C, H, W) or (F).
Shape channels_first(const std::vector<int64_t>& shape_hwc);

// TensorFlow's "same" padding along one axis: {before, after}.
struct SamePadding {
  int64_t before, after;
};
SamePadding same_padding(int64_t in, int64_t kernel, int64_t stride, int64_t dilation = 1);

// Keras's glorot_uniform for a Conv2d weight (C_out, C_in / groups, K_h, K_w) or a Linear weight
// (out, in), in place.
void glorot_uniform_(Tensor& weight, Generator& gen = default_generator());

}  // namespace cnn::keras
