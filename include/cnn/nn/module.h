// Module: the base of every layer and model, after PyTorch's nn.Module.
//
// Each module caches what its backward pass needs during forward(); backward(dy) returns dx and
// accumulates into its parameters' .grad (as PyTorch's autograd accumulates; zero_grad() clears
// them). Children are named and ordered, so parameter names follow PyTorch's state_dict
// ("conv1.0.weight", "classifier.4.bias").
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "cnn/tensor.h"

namespace cnn {

struct Parameter {
  Tensor value;
  Tensor grad;  // same shape as value, zero until a backward pass accumulates into it
  bool requires_grad = true;
};

// The parameter arena (Module::pack_parameters): every parameter's values in one contiguous block
// and every gradient in another, so that one call sums all the gradients across processes
// (cnn/dist/communicator.h) and one transfer moves them between devices. Each parameter starts
// at a 64-byte aligned offset (16 floats), in named_parameters() order; the gaps hold zeros. The
// modules' Parameter tensors are views into the blocks (Tensor::view).
struct ParameterArena {
  Tensor values;                 // 1-D
  Tensor grads;                  // 1-D, as long as values
  std::vector<int64_t> offsets;  // where each parameter starts, in named_parameters() order
};

class Module {
 public:
  virtual ~Module() = default;
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Runs the layer. An error thrown inside names this module's place in the model and its repr.
  Tensor forward(const Tensor& x);
  Tensor operator()(const Tensor& x) { return forward(x); }
  // dy: gradient of the loss w.r.t. the last forward() output -> dx. Needs a prior forward().
  // With input_grad false (the input is data, as for a model's first layer) dx is not computed
  // and an undefined tensor is returned; parameter gradients are accumulated either way.
  Tensor backward(const Tensor& dy, bool input_grad = true);

  // "Conv2d", "Sequential", "CNN": the name PyTorch prints.
  virtual std::string type_name() const = 0;
  // What PyTorch prints between the parentheses of a leaf: "1, 16, kernel_size=(3, 3), ...".
  virtual std::string extra_repr() const { return ""; }
  // The module printed as PyTorch prints it, children indented.
  std::string repr() const;

  // The module as a model file declares it (cnn/nn/spec.h): {"type": <PyTorch class name>,
  // <constructor arguments by PyTorch's names>}; a container's children under "layers". Building
  // a module from its config (build_layer) gives the same module. Throws for a module that
  // cannot describe itself (a custom C++ module that does not override it).
  virtual nlohmann::json config() const;
  // The shape of this module's output for an input of shape `input` (batch dimension included),
  // found by arithmetic, without running anything. Throws naming what cannot flow (a kernel
  // larger than its input, channels that do not match). The default: the input's shape.
  virtual Shape output_shape(const Shape& input) const { return input; }

  // Moves every parameter, gradient and buffer, in this module and below, to device (the
  // optimizer is made after the move, so that its state is there too). Inputs must then be on
  // the same device: every op checks.
  void to(Device device);
  Device device() const { return device_; }

  void train(bool mode = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  std::vector<std::pair<std::string, Parameter*>> named_parameters();
  std::vector<Parameter*> parameters();
  // Parameters owned by this module itself, not its children.
  const std::vector<std::pair<std::string, std::unique_ptr<Parameter>>>& own_parameters() const {
    return params_;
  }
  int64_t num_parameters() const;
  void zero_grad();

  // Moves every parameter of this module and below into one arena (values and gradients copied
  // in; the Parameter objects stay, their tensors become views), on the module's device. A
  // packed module returns its arena as it is. The Trainer packs the model it trains; results are
  // bit for bit those of an unpacked module.
  const ParameterArena& pack_parameters();
  // The arena, or null when this module was not packed (or a parameter was added since).
  const ParameterArena* parameter_arena() const;

  // Buffers: state that is not trained (BatchNorm2d's running statistics), saved and loaded with
  // the parameters, by PyTorch's names.
  std::vector<std::pair<std::string, Tensor*>> named_buffers();

  // Ordered as PyTorch orders a state_dict: each module's parameters, then its buffers, then its
  // children's. Tensors share storage with the parameters and buffers.
  std::vector<std::pair<std::string, Tensor>> state_dict() const;
  // Copies values in. With strict, missing or unexpected keys are an error; a shape mismatch
  // always is. Nothing is copied unless every check passes.
  void load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);

  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const {
    return children_;
  }
  // The child at a dotted path ("conv1.0"); throws if there is none.
  Module& submodule(const std::string& path);

  // Called after every leaf module's forward with its output (torchsummary's hook). One per
  // thread; pass {} to remove.
  using ForwardHook = std::function<void(const Module& leaf, const Tensor& output)>;
  static void set_forward_hook(ForwardHook hook);
  // Runs one forward pass of a zero sample of shape input (no batch dimension; batch 1) in
  // evaluation mode, calling hook after each leaf; the module's mode is restored.
  void trace_leaves(const Shape& input, const ForwardHook& hook);
  // Called in every leaf module's backward() with the gradient it receives (dy: the gradient of
  // the loss w.r.t. its last forward() output), before its own backward runs. One per thread, as
  // the forward hook (a backward pass on another thread, a training run's, does not call it);
  // pass {} to remove. Unset, it costs one test of an empty std::function per leaf. A ReLU that
  // ran fused with the MaxPool2d after it (training without a forward hook) is not called: its
  // gradient goes through the pool's backward; set a forward hook for the forward pass to see it.
  using BackwardHook = std::function<void(const Module& leaf, const Tensor& dy)>;
  static void set_backward_hook(BackwardHook hook);

 protected:
  virtual Tensor forward_impl(const Tensor& x) = 0;
  virtual Tensor backward_impl(const Tensor& dy) = 0;
  // Inside backward_impl: whether the caller wants dx.
  bool input_grad() const { return input_grad_; }

  Parameter& register_parameter(std::string name, Tensor value);
  Tensor& register_buffer(std::string name, Tensor value);
  template <class M>
  std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> module) {
    module->name_in_parent_ = name;
    children_.emplace_back(std::move(name), module);
    return module;
  }

 private:
  void collect_parameters(const std::string& prefix,
                          std::vector<std::pair<std::string, Parameter*>>& out) const;
  void collect_state(const std::string& prefix,
                     std::vector<std::pair<std::string, Tensor*>>& out) const;
  void repr_into(std::string& out, int indent) const;
  // to(): this module's and its children's buffers (and their parameters unless `params` is
  // false: the arena moved them).
  void move_to(Device device, bool params);

  bool training_ = true;
  bool input_grad_ = true;
  Device device_ = Device::CPU;
  std::string name_in_parent_;
  std::vector<std::pair<std::string, std::unique_ptr<Parameter>>> params_;
  std::vector<std::pair<std::string, std::unique_ptr<Tensor>>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  std::shared_ptr<ParameterArena> arena_;  // set by pack_parameters() on the module packed
};

// A chain of modules, run in order; backward runs them in reverse. Children are named "0", "1"...
class Sequential : public Module {
 public:
  Sequential() = default;
  Sequential(std::initializer_list<std::shared_ptr<Module>> modules) {
    for (auto& m : modules) push_back(m);
  }
  // Appends a child named by its position ("0", "1", ...), as PyTorch numbers them.
  void push_back(std::shared_ptr<Module> module) {
    register_module(std::to_string(children().size()), std::move(module));
  }
  // Appends a named child (PyTorch's Sequential(OrderedDict(...))); the name must be new.
  void push_back(const std::string& name, std::shared_ptr<Module> module);
  std::size_t size() const { return children().size(); }
  Module& operator[](std::size_t i) const { return *children().at(i).second; }
  std::string type_name() const override { return "Sequential"; }
  // {"type": "Sequential", "layers": [...]}: each child's config, with "name" where the child's
  // name is not its position; and this model's name, if it has one.
  nlohmann::json config() const override;
  Shape output_shape(const Shape& input) const override;
  // A model's name (a Keras model's name, a model file's "name"); empty by default.
  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }

 protected:
  Tensor forward_impl(const Tensor& x) override;
  Tensor backward_impl(const Tensor& dy) override;

 private:
  std::string name_;
};

// The config of a module whose forward runs its children in order, as a Sequential's.
nlohmann::json sequential_config(const Module& m);

// sequential(std::make_shared<Conv2d>(...), std::make_shared<ReLU>()) -> a shared Sequential.
// C++ evaluates a call's arguments in an unspecified order (GCC: right to left), so layers that
// draw their initial weights from a generator are best made in statements of their own first,
// to draw in the order they are declared (as PyTorch and a model file do).
template <class... Ms>
std::shared_ptr<Sequential> sequential(std::shared_ptr<Ms>... modules) {
  auto s = std::make_shared<Sequential>();
  (s->push_back(std::move(modules)), ...);
  return s;
}

}  // namespace cnn
