// The layers, with PyTorch's constructor arguments, defaults, initialisation and printed form.
// Each is a thin module over the op of the same name in cnn/ops/.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cnn/nn/module.h"
#include "cnn/nn/options.h"
#include "cnn/ops/activation.h"
#include "cnn/ops/avgpool2d.h"
#include "cnn/ops/batchnorm2d.h"
#include "cnn/ops/fused.h"
#include "cnn/ops/maxpool2d.h"
#include "cnn/random.h"

namespace cnn {

// x: (N, C_in, H, W) -> (N, C_out, H_out, W_out). Weight (C_out, C_in / groups, K_h, K_w).
class Conv2d : public Module {
 public:
  explicit Conv2d(const Conv2dOptions& options, Generator& gen = default_generator());
  Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size)
      : Conv2d(Conv2dOptions(in_channels, out_channels, kernel_size)) {}
  std::string type_name() const override { return "Conv2d"; }
  std::string extra_repr() const override;
  nlohmann::json config() const override;
  Shape output_shape(const Shape& input) const override;
  // kaiming_uniform(a=sqrt(5)) weights and U(-1/sqrt(fan_in), 1/sqrt(fan_in)) bias, as PyTorch.
  void reset_parameters(Generator& gen = default_generator());
  const Conv2dOptions& options() const { return options_; }
  const Conv2dGeometry& geometry() const { return geometry_; }
  Parameter& weight() { return *weight_; }
  Parameter* bias() { return bias_; }

  // This layer and what follows it in a fused inference block (cnn/ops/fused.h: an evaluation
  // mode BatchNorm2d, a ReLU, a MaxPool2d) in one pass. For inference under NoGradGuard, where
  // Sequential uses it; errors name this layer as forward() does.
  Tensor forward_block(const Tensor& x, const ConvEpilogue& after);

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& dy) override;

 private:
  Conv2dOptions options_;
  Conv2dGeometry geometry_;
  const ConvEpilogue* block_ = nullptr;  // forward_impl runs the fused block with this epilogue
  Parameter* weight_ = nullptr;
  Parameter* bias_ = nullptr;
  Tensor x_;
};

// x: (..., in_features) -> (..., out_features). Weight (out_features, in_features).
class Linear : public Module {
 public:
  explicit Linear(const LinearOptions& options, Generator& gen = default_generator());
  Linear(int64_t in_features, int64_t out_features, bool bias = true)
      : Linear(LinearOptions(in_features, out_features).bias(bias)) {}
  std::string type_name() const override { return "Linear"; }
  std::string extra_repr() const override;
  nlohmann::json config() const override;
  Shape output_shape(const Shape& input) const override;
  void reset_parameters(Generator& gen = default_generator());
  const LinearOptions& options() const { return options_; }
  Parameter& weight() { return *weight_; }
  Parameter* bias() { return bias_; }

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& dy) override;

 private:
  LinearOptions options_;
  Parameter* weight_ = nullptr;
  Parameter* bias_ = nullptr;
  Tensor x_;
};

// x: (N, C, H, W) -> (N, C, H_out, W_out)
class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(const MaxPool2dOptions& options);
  std::string type_name() const override { return "MaxPool2d"; }
  std::string extra_repr() const override;
  nlohmann::json config() const override;
  Shape output_shape(const Shape& input) const override;
  const Pool2dGeometry& geometry() const { return geometry_; }

  // Training: the ReLU before this pool and the pool as one op (cnn/ops/fused.h), run by
  // Sequential; this module's backward() then returns the gradient of the ReLU's input.
  Tensor forward_after_relu(const Tensor& x);
  // Whether the last forward pass was forward_after_relu().
  bool fused_with_relu() const { return fused_; }

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& dy) override;

 private:
  MaxPool2dOptions options_;
  Pool2dGeometry geometry_;
  Shape x_shape_;
  Tensor indices_;  // Int32, the winners (cnn/ops/maxpool2d.h)
  bool relu_first_ = false, fused_ = false;
  Tensor y_;  // fused: the output, whose sign gates the ReLU's gradient
};

class ReLU : public Module {
 public:
  std::string type_name() const override { return "ReLU"; }
  nlohmann::json config() const override;

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& dy) override;

 private:
  Tensor y_;
};

// PyTorch's Flatten; with channels_last (beyond PyTorch), x: (N, C, H, W) -> (N, H * W * C) in
// H, W, C order, as Keras's Flatten orders the features of its channels-last tensors, so that a
// Dense layer's weights from Keras apply unchanged (cnn/nn/keras.h). channels_last needs a 4-D
// input and start_dim 1, end_dim -1, and copies; the plain one shares x's storage.
class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1, bool channels_last = false);
  bool channels_last() const { return channels_last_; }
  std::string type_name() const override { return "Flatten"; }
  std::string extra_repr() const override;
  nlohmann::json config() const override;
  Shape output_shape(const Shape& input) const override;

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& dy) override;

 private:
  int64_t start_dim_, end_dim_;
  bool channels_last_ = false;
  Shape x_shape_;
};

// Training: zeroes each element with probability p and scales the rest by 1 / (1 - p).
// Evaluation: the identity.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5, Generator& gen = default_generator());
  std::string type_name() const override { return "Dropout"; }
  std::string extra_repr() const override;
  nlohmann::json config() const override;
  double p() const { return p_; }
  // Replaces the random mask (for tests that must match another framework's draw).
  using MaskProvider = std::function<Tensor(const Shape&)>;
  void set_mask_provider(MaskProvider provider) { mask_provider_ = std::move(provider); }
  // Data-parallel training (the Trainer sets it each step): the input is the rows from `first`
  // of a global batch of global_count; the mask is drawn for the whole global batch and these
  // rows of it kept, so that every rank draws what one process would. global_count 0: unsharded.
  void set_batch_shard(int64_t first, int64_t global_count) {
    shard_first_ = first;
    shard_global_ = global_count;
  }

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& dy) override;

 private:
  double p_;
  Generator* gen_;
  MaskProvider mask_provider_;
  int64_t shard_first_ = 0, shard_global_ = 0;
  Tensor mask_;  // undefined after an evaluation-mode forward
};

class Softmax : public Module {
 public:
  explicit Softmax(int64_t dim) : dim_(dim) {}
  std::string type_name() const override { return "Softmax"; }
  std::string extra_repr() const override { return "dim=" + std::to_string(dim_); }
  nlohmann::json config() const override;
  Shape output_shape(const Shape& input) const override;
  int64_t dim() const { return dim_; }
  // While on, forward passes its input through and backward its gradient: a model ending in
  // Softmax is trained and evaluated on the logits (LogitsGuard, cnn/train/trainer.h).
  void set_pass_through(bool on) { pass_through_ = on; }
  bool pass_through() const { return pass_through_; }

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& dy) override;

 private:
  int64_t dim_;
  bool pass_through_ = false;
  Tensor y_;
};

class LogSoftmax : public Module {
 public:
  explicit LogSoftmax(int64_t dim) : dim_(dim) {}
  std::string type_name() const override { return "LogSoftmax"; }
  std::string extra_repr() const override { return "dim=" + std::to_string(dim_); }
  nlohmann::json config() const override;
  Shape output_shape(const Shape& input) const override;

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& dy) override;

 private:
  int64_t dim_;
  Tensor y_;
};

// ---- Activations (cnn/ops/activation.h), any shape -> the same shape ----

class Tanh : public Module {
 public:
  std::string type_name() const override { return "Tanh"; }
  nlohmann::json config() const override;

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& dy) override;

 private:
  Tensor y_;
};

class Sigmoid : public Module {
 public:
  std::string type_name() const override { return "Sigmoid"; }
  nlohmann::json config() const override;

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& dy) override;

 private:
  Tensor y_;
};

class LeakyReLU : public Module {
 public:
  explicit LeakyReLU(double negative_slope = 0.01) : negative_slope_(negative_slope) {}
  std::string type_name() const override { return "LeakyReLU"; }
  std::string extra_repr() const override;
  nlohmann::json config() const override;
  double negative_slope() const { return negative_slope_; }

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& dy) override;

 private:
  double negative_slope_;
  Tensor x_;
};

class GELU : public Module {
 public:
  explicit GELU(GeluApproximate approximate = GeluApproximate::None) : approximate_(approximate) {}
  // "none" or "tanh", as PyTorch's approximate=; throws on anything else.
  explicit GELU(const std::string& approximate) : GELU(gelu_approximate(approximate)) {}
  std::string type_name() const override { return "GELU"; }
  std::string extra_repr() const override;
  nlohmann::json config() const override;

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& dy) override;

 private:
  GeluApproximate approximate_;
  Tensor x_;
};

class SiLU : public Module {
 public:
  std::string type_name() const override { return "SiLU"; }
  nlohmann::json config() const override;

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& dy) override;

 private:
  Tensor x_;
};

// y = x; dx = dy.
class Identity : public Module {
 public:
  std::string type_name() const override { return "Identity"; }
  nlohmann::json config() const override;

 protected:
  Tensor forward_impl(const Tensor& x) override { return x; }
  Tensor backward_impl(const Tensor& dy) override { return dy; }
};

// ---- Average pooling (cnn/ops/avgpool2d.h) ----

struct AvgPool2dOptions {
  AvgPool2dOptions(Size2 kernel_size) : kernel_size_(kernel_size) {}  // NOLINT
  CNN_ARG(Size2, kernel_size, 0);
  // Unset means stride = kernel_size, as PyTorch's stride=None.
  CNN_ARG(std::optional<Size2>, stride, std::nullopt);
  // At most half the kernel; counts as zeros.
  CNN_ARG(Size2, padding, 0);
  CNN_ARG(bool, ceil_mode, false);
  // Whether the padding's zeros count in a window's divisor.
  CNN_ARG(bool, count_include_pad, true);
  // When set (not 0), every window's sum is divided by it instead.
  CNN_ARG(std::optional<int64_t>, divisor_override, std::nullopt);
  // Beyond PyTorch: the bottom (h) and right (w) padding where they differ from `padding` (then
  // the top and left only), as MaxPool2dOptions's.
  CNN_ARG(std::optional<Size2>, padding_end, std::nullopt);
};

// x: (N, C, H, W) -> (N, C, H_out, W_out)
class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(const AvgPool2dOptions& options);
  std::string type_name() const override { return "AvgPool2d"; }
  std::string extra_repr() const override;
  nlohmann::json config() const override;
  Shape output_shape(const Shape& input) const override;
  const AvgPool2dGeometry& geometry() const { return geometry_; }

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& dy) override;

 private:
  AvgPool2dOptions options_;
  AvgPool2dGeometry geometry_;
  Shape x_shape_;
};

// x: (N, C, H, W) -> (N, C, output_size.h, output_size.w), for any H and W.
class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(Size2 output_size);
  std::string type_name() const override { return "AdaptiveAvgPool2d"; }
  std::string extra_repr() const override { return "output_size=" + output_size_.str(); }
  nlohmann::json config() const override;
  Shape output_shape(const Shape& input) const override;

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& dy) override;

 private:
  Size2 output_size_;
  Shape x_shape_;
};

// ---- Batch normalisation (cnn/ops/batchnorm2d.h) ----

struct BatchNorm2dOptions {
  BatchNorm2dOptions(int64_t num_features) : num_features_(num_features) {}  // NOLINT
  // C, the channels of the input.
  CNN_ARG(int64_t, num_features, 0);
  // Added to the variance before its square root; positive.
  CNN_ARG(double, eps, 1e-5);
  // The running statistics' update weight, in [0, 1]. (PyTorch's momentum=None, a cumulative
  // average, is not supported.)
  CNN_ARG(double, momentum, 0.1);
  // Learnable per-channel weight (ones) and bias (zeros).
  CNN_ARG(bool, affine, true);
  // Keep running_mean, running_var and num_batches_tracked, and normalise with them in
  // evaluation mode; without, the batch's statistics are used in both modes.
  CNN_ARG(bool, track_running_stats, true);
};

class Communicator;  // cnn/dist/communicator.h

// x: (N, C, H, W) -> the same shape. Parameters weight, bias (C) when affine; buffers
// running_mean (C), running_var (C) and num_batches_tracked when track_running_stats, in
// PyTorch's order and by its names. Training mode normalises with the batch's statistics and
// updates the running ones (also under NoGradGuard, as PyTorch); evaluation mode normalises with
// the running ones.
class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(const BatchNorm2dOptions& options);
  explicit BatchNorm2d(int64_t num_features) : BatchNorm2d(BatchNorm2dOptions(num_features)) {}
  std::string type_name() const override { return "BatchNorm2d"; }
  std::string extra_repr() const override;
  nlohmann::json config() const override;
  Shape output_shape(const Shape& input) const override;
  // Running statistics to zeros and ones, num_batches_tracked to 0.
  void reset_running_stats();
  // The above, and weight to ones and bias to zeros, as PyTorch.
  void reset_parameters();
  const BatchNorm2dOptions& options() const { return options_; }
  Parameter* weight() { return weight_; }
  Parameter* bias() { return bias_; }
  Tensor* running_mean() { return running_mean_; }
  Tensor* running_var() { return running_var_; }
  Tensor* num_batches_tracked() { return num_batches_tracked_; }
  // What forward() computes now, as an affine map a fused block can apply (cnn/ops/fused.h):
  // in evaluation mode with running statistics; nullopt when it normalises with the batch's.
  std::optional<BatchNormEval> as_eval() const;

  // PyTorch's SyncBatchNorm: with a communicator of more than one rank, training mode normalises
  // with the statistics of the whole batch that the ranks' inputs are parts of, and updates the
  // running ones with them (the same on every rank). Null, the default (or one rank): this
  // process's input alone, as PyTorch's DistributedDataParallel without SyncBatchNorm.
  // Evaluation mode, the printed form, the model file and the state are unchanged.
  // Requires, with more than one rank: every rank calls forward() in training mode (one
  // allreduce_sum) and backward() (one more when input_grad) at the same steps, with parts of the
  // same H and W (an empty part, N = 0, takes part too); each rank's dy is the gradient of the
  // mean loss over its part; the parameter gradients are then summed over the ranks, each times
  // its part's share of the batch (Trainer::exchange). Ensures: that weighted sum of weight's,
  // bias's and every earlier layer's gradients is single-process BatchNorm2d's on the whole batch
  // (with equal parts, PyTorch's SyncBatchNorm under DistributedDataParallel's average).
  // CPU only. The communicator is not owned; it must outlive the layer's calls.
  void set_communicator(Communicator* comm) { comm_ = comm; }
  Communicator* communicator() const { return comm_; }

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& dy) override;

 private:
  Tensor backward_synced(const Tensor& dy);

  BatchNorm2dOptions options_;
  Parameter* weight_ = nullptr;
  Parameter* bias_ = nullptr;
  Tensor* running_mean_ = nullptr;
  Tensor* running_var_ = nullptr;
  // PyTorch's is an int64 tensor of shape []; here a float32 tensor of shape [] (one element),
  // as every tensor of this library is float32: it counts exactly up to 2^24 (16.7 million
  // training steps) and is saved and loaded under PyTorch's name and shape.
  Tensor* num_batches_tracked_ = nullptr;
  Tensor x_;
  BatchNorm2dSaved saved_;
  bool batch_stats_ = false;  // whether the last forward normalised with the batch's statistics
  Communicator* comm_ = nullptr;
  // Whether the last forward used the statistics over all the ranks, and this rank's share of
  // the values per channel then (its M / the sum of every rank's M).
  bool synced_ = false;
  double share_ = 0.0;
};

// A Size2 in a model file: 3 when given as one int, [3, 2] when given as a pair.
nlohmann::json size2_json(const Size2& s);
// Padding that differs per side in a model file: [[top, bottom], [left, right]].
nlohmann::json sides_json(const Size2& begin, const Size2& end);

// Python's repr of a float: the shortest text that reads back to the same double ("0.3").
std::string python_float(double v);

}  // namespace cnn
