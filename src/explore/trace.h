// What the explorer's model endpoints share (inside.cpp, network.cpp): a model's leaves in the
// order its containers hold them, one forward pass keeping each leaf's output, a leaf's
// parameters, and how a float is written into a response. Internal to src/explore.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cnn/nn/module.h"
#include "cnn/tensor.h"

namespace cnn::explore {

// A leaf with its dotted path ("conv1.0"; "(the model)" for a model that is one leaf) and, where
// the caller fills it in, the shape flowing out of it (batch dimension included).
struct Leaf {
  std::string path;
  const Module* module = nullptr;
  Shape output;
};

// The leaves under m in the order its containers hold them (a Sequential's forward order).
void collect_leaves(const Module& m, const std::string& path, std::vector<Leaf>& out);

// Runs the model on x in evaluation mode without gradients, keeping each leaf's output (by its
// index in leaves); the model's own forward pass is what runs, so these are the model's own
// numbers. The first `needed` leaves must run, in the order held; otherwise ApiError 422 saying
// that `view` ("the inside view") follows the layers in that order.
std::vector<Tensor> traced_forward(Module& model, const std::vector<Leaf>& leaves, const Tensor& x,
                                   std::size_t needed, const std::string& view);

// A leaf's own parameter by name ("weight", "bias"), or null (Conv2d::weight() is not const).
const Tensor* own_parameter(const Module& m, const std::string& name);

// (1, ...) -> (...): one sample's tensor without its batch dimension.
Tensor drop_batch(const Tensor& t);

// A float as a response writes it: JSON has no infinity, so +-inf are the strings "inf" and
// "-inf"; NaN is written as null (what nlohmann's dump() writes for it).
nlohmann::json number(float v);

}  // namespace cnn::explore
