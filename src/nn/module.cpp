#include "cnn/nn/module.h"

#include <algorithm>
#include <iterator>
#include <set>

#include "cnn/error.h"
#include "cnn/nn/grad_mode.h"
#include "cnn/nn/layers.h"

namespace cnn {

namespace {
thread_local Module::ForwardHook tls_forward_hook;
thread_local Module::BackwardHook tls_backward_hook;
thread_local bool tls_grad_enabled = true;
}  // namespace

bool grad_enabled() { return tls_grad_enabled; }
NoGradGuard::NoGradGuard() : previous_(tls_grad_enabled) { tls_grad_enabled = false; }
NoGradGuard::~NoGradGuard() { tls_grad_enabled = previous_; }

void Module::set_forward_hook(ForwardHook hook) { tls_forward_hook = std::move(hook); }
void Module::set_backward_hook(BackwardHook hook) { tls_backward_hook = std::move(hook); }

void Module::trace_leaves(const Shape& input, const ForwardHook& hook) {
  struct Restore {
    Module& m;
    bool was_training;
    ~Restore() {
      set_forward_hook({});
      m.train(was_training);
    }
  } restore{*this, is_training()};
  eval();
  set_forward_hook(hook);
  Shape batched = {1};
  batched.insert(batched.end(), input.begin(), input.end());
  forward(Tensor(batched, device_));
}

Tensor Module::forward(const Tensor& x) {
  try {
    Tensor y = forward_impl(x);
    if (children_.empty() && tls_forward_hook) tls_forward_hook(*this, y);
    return y;
  } catch (Error& e) {
    if (children_.empty()) e.set_layer(type_name() + "(" + extra_repr() + ")");
    if (!name_in_parent_.empty()) e.prepend_path(name_in_parent_);
    throw;
  }
}

Tensor Module::backward(const Tensor& dy, bool input_grad) {
  try {
    input_grad_ = input_grad;
    if (children_.empty() && tls_backward_hook) tls_backward_hook(*this, dy);
    Tensor dx = backward_impl(dy);
    return input_grad ? dx : Tensor();
  } catch (Error& e) {
    if (children_.empty()) e.set_layer(type_name() + "(" + extra_repr() + ")");
    if (!name_in_parent_.empty()) e.prepend_path(name_in_parent_);
    throw;
  }
}

std::string Module::repr() const {
  std::string out;
  repr_into(out, 0);
  return out;
}

void Module::repr_into(std::string& out, int indent) const {
  out += type_name() + "(";
  if (children_.empty()) {
    out += extra_repr() + ")";
    return;
  }
  const std::string pad(static_cast<std::size_t>(indent) + 2, ' ');
  out += "\n";
  for (const auto& [name, child] : children_) {
    out += pad + "(" + name + "): ";
    child->repr_into(out, indent + 2);
    out += "\n";
  }
  out += std::string(static_cast<std::size_t>(indent), ' ') + ")";
}

void Module::train(bool mode) {
  training_ = mode;
  for (auto& [name, child] : children_) child->train(mode);
}

nlohmann::json Module::config() const {
  throw Error(type_name() +
              " cannot describe itself as a model file (a C++ module that does not "
              "override Module::config())");
}

Tensor& Module::register_buffer(std::string name, Tensor value) {
  buffers_.emplace_back(std::move(name), std::make_unique<Tensor>(std::move(value)));
  return *buffers_.back().second;
}

void Module::collect_state(const std::string& prefix,
                           std::vector<std::pair<std::string, Tensor*>>& out) const {
  for (const auto& [name, p] : params_) out.emplace_back(prefix + name, &p->value);
  for (const auto& [name, b] : buffers_) out.emplace_back(prefix + name, b.get());
  for (const auto& [name, child] : children_) child->collect_state(prefix + name + ".", out);
}

std::vector<std::pair<std::string, Tensor*>> Module::named_buffers() {
  std::vector<std::pair<std::string, Tensor*>> all, out;
  collect_state("", all);
  std::set<const Tensor*> params;
  for (auto& [name, p] : named_parameters()) params.insert(&p->value);
  for (auto& entry : all) {
    if (!params.count(entry.second)) out.push_back(entry);
  }
  return out;
}

Parameter& Module::register_parameter(std::string name, Tensor value) {
  auto p = std::make_unique<Parameter>();
  p->grad = Tensor(value.shape());
  p->value = std::move(value);
  params_.emplace_back(std::move(name), std::move(p));
  return *params_.back().second;
}

void Module::collect_parameters(const std::string& prefix,
                                std::vector<std::pair<std::string, Parameter*>>& out) const {
  for (const auto& [name, p] : params_) out.emplace_back(prefix + name, p.get());
  for (const auto& [name, child] : children_) child->collect_parameters(prefix + name + ".", out);
}

std::vector<std::pair<std::string, Parameter*>> Module::named_parameters() {
  std::vector<std::pair<std::string, Parameter*>> out;
  collect_parameters("", out);
  return out;
}

std::vector<Parameter*> Module::parameters() {
  std::vector<Parameter*> out;
  for (auto& [name, p] : named_parameters()) out.push_back(p);
  return out;
}

int64_t Module::num_parameters() const {
  std::vector<std::pair<std::string, Parameter*>> all;
  collect_parameters("", all);
  int64_t n = 0;
  for (auto& [name, p] : all) n += p->value.numel();
  return n;
}

void Module::zero_grad() {
  if (const ParameterArena* arena = parameter_arena()) {
    Tensor grads = arena->grads;  // one fill of the block, its gaps included
    grads.fill(0.0f);
    return;
  }
  for (auto& [name, p] : named_parameters()) p->grad.fill(0.0f);
}

std::vector<std::pair<std::string, Tensor>> Module::state_dict() const {
  std::vector<std::pair<std::string, Tensor*>> all;
  collect_state("", all);
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [name, t] : all) out.emplace_back(name, *t);
  return out;
}

void Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  std::vector<std::pair<std::string, Tensor*>> entries;
  collect_state("", entries);
  std::vector<std::string> missing, mismatched;
  std::set<std::string> known;
  for (auto& [name, t] : entries) {
    known.insert(name);
    auto it = state.find(name);
    if (it == state.end()) {
      missing.push_back(name);
    } else if (it->second.shape() != t->shape()) {
      mismatched.push_back("size mismatch for " + name + ": copying a param with shape " +
                           shape_str(it->second.shape()) +
                           " from checkpoint, the shape in current model is " +
                           shape_str(t->shape()));
    }
  }
  std::vector<std::string> unexpected;
  for (auto& [name, t] : state) {
    if (!known.count(name)) unexpected.push_back(name);
  }
  std::string msg;
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (auto& x : v) s += (s.empty() ? "\"" : ", \"") + x + "\"";
    return s;
  };
  if (strict && !missing.empty()) msg += "Missing key(s) in state_dict: " + join(missing) + ". ";
  if (strict && !unexpected.empty()) {
    msg += "Unexpected key(s) in state_dict: " + join(unexpected) + ". ";
  }
  for (auto& m : mismatched) msg += m + ". ";
  if (!msg.empty()) {
    msg.pop_back();
    throw Error("Error(s) in loading state_dict for " + type_name() + ": " + msg);
  }
  for (auto& [name, t] : entries) {
    auto it = state.find(name);
    if (it != state.end()) t->copy_(it->second);  // from any device to this module's
  }
}

void Module::to(Device device) {
  const ParameterArena* arena = parameter_arena();
  if (arena && arena->values.device() == device) {
    move_to(device, false);  // the blocks are there already: the arena stays as it is
  } else if (arena) {
    // One transfer per block; the parameters become views into the moved blocks.
    auto moved = std::make_shared<ParameterArena>(
        ParameterArena{arena->values.to(device), arena->grads.to(device), arena->offsets});
    auto named = named_parameters();
    for (std::size_t i = 0; i < named.size(); ++i) {
      Parameter& p = *named[i].second;
      p.value = moved->values.view(moved->offsets[i], p.value.shape());
      p.grad = moved->grads.view(moved->offsets[i], p.grad.shape());
    }
    arena_ = std::move(moved);
    move_to(device, false);
  } else {
    move_to(device, true);
  }
}

void Module::move_to(Device device, bool params) {
  if (params) {
    for (auto& [name, p] : params_) {
      p->value = p->value.to(device);
      p->grad = p->grad.to(device);
    }
  }
  for (auto& [name, b] : buffers_) *b = b->to(device);
  for (auto& [name, child] : children_) child->move_to(device, params);
  device_ = device;
}

const ParameterArena* Module::parameter_arena() const {
  if (!arena_) return nullptr;
  std::vector<std::pair<std::string, Parameter*>> named;
  collect_parameters("", named);
  if (named.size() != arena_->offsets.size()) return nullptr;
  for (std::size_t i = 0; i < named.size(); ++i) {
    const Parameter& p = *named[i].second;
    if (p.value.data() != arena_->values.data() + arena_->offsets[i] ||
        p.grad.data() != arena_->grads.data() + arena_->offsets[i]) {
      return nullptr;  // a parameter was added or replaced since
    }
  }
  return arena_.get();
}

const ParameterArena& Module::pack_parameters() {
  if (const ParameterArena* arena = parameter_arena()) return *arena;
  constexpr int64_t kAlign = static_cast<int64_t>(Tensor::kAlignment / sizeof(float));
  auto named = named_parameters();
  auto arena = std::make_shared<ParameterArena>();
  int64_t total = 0;
  for (auto& [name, p] : named) {
    arena->offsets.push_back(total);
    total += (p->value.numel() + kAlign - 1) / kAlign * kAlign;
  }
  arena->values = Tensor({total}, device_);
  arena->grads = Tensor({total}, device_);
  for (std::size_t i = 0; i < named.size(); ++i) {
    Parameter& p = *named[i].second;
    Tensor value = arena->values.view(arena->offsets[i], p.value.shape());
    Tensor grad = arena->grads.view(arena->offsets[i], p.grad.shape());
    value.copy_(p.value);
    grad.copy_(p.grad);
    p.value = std::move(value);
    p.grad = std::move(grad);
  }
  arena_ = std::move(arena);
  return *arena_;
}

Module& Module::submodule(const std::string& path) {
  Module* m = this;
  std::size_t start = 0;
  while (start <= path.size()) {
    const std::size_t dot = std::min(path.find('.', start), path.size());
    const std::string part = path.substr(start, dot - start);
    auto it = std::find_if(m->children_.begin(), m->children_.end(),
                           [&](const auto& c) { return c.first == part; });
    if (it == m->children_.end()) {
      throw Error(type_name() + " has no submodule '" + path + "'");
    }
    m = it->second.get();
    start = dot + 1;
  }
  return *m;
}

void Sequential::push_back(const std::string& name, std::shared_ptr<Module> module) {
  for (const auto& [existing, child] : children()) {
    if (existing == name) throw Error("Sequential: a child named '" + name + "' exists already");
  }
  register_module(name, std::move(module));
}

nlohmann::json sequential_config(const Module& m) {
  nlohmann::json layers = nlohmann::json::array();
  std::size_t i = 0;
  for (const auto& [name, child] : m.children()) {
    nlohmann::json c = child->config();
    if (name != std::to_string(i)) {
      // "name" after "type", before the arguments, as a model file writes it.
      nlohmann::json named = {{"type", c["type"]}, {"name", name}};
      for (auto& [k, v] : c.items()) {
        if (k != "type" && k != "name") named[k] = v;
      }
      c = std::move(named);
    } else {
      c.erase("name");
    }
    layers.push_back(std::move(c));
    ++i;
  }
  return {{"type", "Sequential"}, {"layers", std::move(layers)}};
}

nlohmann::json Sequential::config() const {
  nlohmann::json c = sequential_config(*this);
  if (!name_.empty()) c["name"] = name_;
  return c;
}

Shape Sequential::output_shape(const Shape& input) const {
  Shape s = input;
  for (const auto& [name, child] : children()) {
    try {
      s = child->output_shape(s);
    } catch (Error& e) {
      if (child->children().empty())
        e.set_layer(child->type_name() + "(" + child->extra_repr() + ")");
      e.prepend_path(name);
      throw;
    }
  }
  return s;
}

Tensor Sequential::forward_impl(const Tensor& x) {
  Tensor y = x;
  const auto& kids = children();
  for (std::size_t i = 0; i < kids.size(); ++i) {
    // Inference: a Conv2d [-> BatchNorm2d] [-> ReLU [-> MaxPool2d] | -> Tanh, Sigmoid, SiLU or
    // LeakyReLU] run with something after
    // the convolution runs fused, image by image (the same numbers, nothing kept). With gradients
    // on, every layer runs on its own and keeps what it needs; so it does while a forward hook
    // watches each leaf (summary() under a NoGradGuard).
    auto* conv =
        grad_enabled() || tls_forward_hook ? nullptr : dynamic_cast<Conv2d*>(kids[i].second.get());
    if (conv) {
      auto kid = [&](std::size_t j) { return j < kids.size() ? kids[j].second.get() : nullptr; };
      std::size_t j = i + 1;
      std::optional<BatchNormEval> bn;
      // (A batch norm of another width is left to fail as itself.)
      if (const auto* norm = dynamic_cast<const BatchNorm2d*>(kid(j));
          norm && norm->options().num_features() == conv->options().out_channels()) {
        if ((bn = norm->as_eval())) ++j;
      }
      ConvEpilogue after;
      after.batchnorm = bn ? &*bn : nullptr;
      if (dynamic_cast<const ReLU*>(kid(j))) {
        after.relu = true;
        if (const auto* pool = dynamic_cast<const MaxPool2d*>(kid(++j))) {
          after.pool = &pool->geometry();
          ++j;
        }
      } else if (dynamic_cast<const Tanh*>(kid(j))) {
        after.activation = BlockActivation::Tanh, ++j;
      } else if (dynamic_cast<const Sigmoid*>(kid(j))) {
        after.activation = BlockActivation::Sigmoid, ++j;
      } else if (dynamic_cast<const SiLU*>(kid(j))) {
        after.activation = BlockActivation::SiLU, ++j;
      } else if (const auto* leaky = dynamic_cast<const LeakyReLU*>(kid(j))) {
        after.activation = BlockActivation::LeakyReLU, ++j;
        after.negative_slope = static_cast<float>(leaky->negative_slope());
      }
      if (j > i + 1) {
        y = conv->forward_block(y, after);
        i = j - 1;
        continue;
      }
    }
    // Training: a ReLU -> MaxPool2d pair runs as one op (cnn/ops/fused.h): the same output and
    // gradients, without the ReLU's full-size output. Not while a forward hook watches each leaf.
    auto* relu =
        grad_enabled() && !tls_forward_hook ? dynamic_cast<ReLU*>(kids[i].second.get()) : nullptr;
    auto* pool =
        relu && i + 1 < kids.size() ? dynamic_cast<MaxPool2d*>(kids[i + 1].second.get()) : nullptr;
    if (pool) {
      y = pool->forward_after_relu(y);
      ++i;
      continue;
    }
    y = kids[i].second->forward(y);
  }
  return y;
}

Tensor Sequential::backward_impl(const Tensor& dy) {
  Tensor d = dy;
  for (auto it = children().rbegin(); it != children().rend(); ++it) {
    // A pool fused with the ReLU before it gives the ReLU's input gradient: skip the ReLU.
    const auto* pool = dynamic_cast<const MaxPool2d*>(it->second.get());
    const bool with_relu = pool && pool->fused_with_relu() && std::next(it) != children().rend();
    const bool first = std::next(it, with_relu ? 2 : 1) == children().rend();
    d = it->second->backward(d, first ? input_grad() : true);
    if (with_relu) ++it;
  }
  return d;
}

}  // namespace cnn
