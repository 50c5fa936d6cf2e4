#include "trace.h"

#include <cmath>

#include "cnn/explore/api.h"
#include "cnn/nn/grad_mode.h"

namespace cnn::explore {

void collect_leaves(const Module& m, const std::string& path, std::vector<Leaf>& out) {
  if (m.children().empty()) {
    out.push_back({path.empty() ? "(the model)" : path, &m, {}});
    return;
  }
  for (const auto& [name, child] : m.children()) {
    collect_leaves(*child, path.empty() ? name : path + "." + name, out);
  }
}

std::vector<Tensor> traced_forward(Module& model, const std::vector<Leaf>& leaves, const Tensor& x,
                                   std::size_t needed, const std::string& view) {
  std::vector<Tensor> outputs(leaves.size());
  std::size_t next = 0;  // leaves run in the order collected; a model that runs them otherwise
  bool in_order = true;  // cannot be shown leaf by leaf
  struct Unhook {
    ~Unhook() { Module::set_forward_hook({}); }
  } unhook;
  Module::set_forward_hook([&](const Module& leaf, const Tensor& y) {
    if (next < leaves.size() && leaves[next].module == &leaf) {
      outputs[next++] = y;
    } else {
      in_order = false;
    }
  });
  NoGradGuard no_grad;
  model.eval();
  model.forward(x);
  if (!in_order || next < needed) {
    throw ApiError(422, view +
                            " follows the model's layers in the order they are held; "
                            "this model's forward pass runs them in another order");
  }
  return outputs;
}

const Tensor* own_parameter(const Module& m, const std::string& name) {
  for (const auto& [n, p] : m.own_parameters()) {
    if (n == name) return &p->value;
  }
  return nullptr;
}

Tensor drop_batch(const Tensor& t) {
  return t.reshape(Shape(t.shape().begin() + 1, t.shape().end()));
}

nlohmann::json number(float v) {
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  return v;
}

}  // namespace cnn::explore
