// The layers, with PyTorch's constructor arguments, defaults, initialisation and printed form.
// Each is a thin module over the op of the same name in cnn/ops/.
#pragma once

#include <functional>
#include <vector>

#include "cnn/nn/module.h"
#include "cnn/nn/options.h"
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
  // kaiming_uniform(a=sqrt(5)) weights and U(-1/sqrt(fan_in), 1/sqrt(fan_in)) bias, as PyTorch.
  void reset_parameters(Generator& gen = default_generator());
  const Conv2dOptions& options() const { return options_; }
  const Conv2dGeometry& geometry() const { return geometry_; }
  Parameter& weight() { return *weight_; }
  Parameter* bias() { return bias_; }

  // This layer, then ReLU, then pool if given, in one pass (cnn/ops/fused.h). For inference
  // under NoGradGuard, where Sequential uses it; errors name this layer as forward() does.
  Tensor forward_block(const Tensor& x, const Pool2dGeometry* pool);

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& dy) override;

 private:
  Conv2dOptions options_;
  Conv2dGeometry geometry_;
  bool block_ = false;  // forward_impl runs the fused block
  const Pool2dGeometry* block_pool_ = nullptr;
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
  std::vector<int32_t> indices_;
  bool relu_first_ = false, fused_ = false;
  Tensor y_;  // fused: the output, whose sign gates the ReLU's gradient
};

class ReLU : public Module {
 public:
  std::string type_name() const override { return "ReLU"; }

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& dy) override;

 private:
  Tensor y_;
};

class Flatten : public Module {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1)
      : start_dim_(start_dim), end_dim_(end_dim) {}
  std::string type_name() const override { return "Flatten"; }
  std::string extra_repr() const override;

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& dy) override;

 private:
  int64_t start_dim_, end_dim_;
  Shape x_shape_;
};

// Training: zeroes each element with probability p and scales the rest by 1 / (1 - p).
// Evaluation: the identity.
class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5, Generator& gen = default_generator());
  std::string type_name() const override { return "Dropout"; }
  std::string extra_repr() const override;
  double p() const { return p_; }
  // Replaces the random mask (for tests that must match another framework's draw).
  using MaskProvider = std::function<Tensor(const Shape&)>;
  void set_mask_provider(MaskProvider provider) { mask_provider_ = std::move(provider); }

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& dy) override;

 private:
  double p_;
  Generator* gen_;
  MaskProvider mask_provider_;
  Tensor mask_;  // undefined after an evaluation-mode forward
};

class Softmax : public Module {
 public:
  explicit Softmax(int64_t dim) : dim_(dim) {}
  std::string type_name() const override { return "Softmax"; }
  std::string extra_repr() const override { return "dim=" + std::to_string(dim_); }

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& dy) override;

 private:
  int64_t dim_;
  Tensor y_;
};

class LogSoftmax : public Module {
 public:
  explicit LogSoftmax(int64_t dim) : dim_(dim) {}
  std::string type_name() const override { return "LogSoftmax"; }
  std::string extra_repr() const override { return "dim=" + std::to_string(dim_); }

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& dy) override;

 private:
  int64_t dim_;
  Tensor y_;
};

// Python's repr of a float: the shortest text that reads back to the same double ("0.3").
std::string python_float(double v);

}  // namespace cnn
