// What the explorer's model endpoints share (inside.cpp, network.cpp, gradient.cpp): a model's
// leaves in the order its containers hold them, one forward pass keeping each leaf's output, a
// leaf's parameters, the model's input read from a request, a window's taps as grids, and how a
// float is written into a response. Internal to src/explore.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cnn/data/dataset.h"
#include "cnn/explain/steps.h"
#include "cnn/nn/module.h"
#include "cnn/tensor.h"

namespace cnn::explore {

// A malformed request: throws ApiError 400 with the message.
[[noreturn]] void bad(const std::string& message);

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
// that `view` ("the inside view") follows the layers in that order. With `for_backward` the pass
// keeps what each layer's backward needs (gradients on); either way every leaf runs on its own,
// none fused with the next (the forward hook turns fusion off), so each leaf's backward runs too.
std::vector<Tensor> traced_forward(Module& model, const std::vector<Leaf>& leaves, const Tensor& x,
                                   std::size_t needed, const std::string& view,
                                   bool for_backward = false);

// A leaf's own parameter by name ("weight", "bias"), or null (Conv2d::weight() is not const).
const Tensor* own_parameter(const Module& m, const std::string& name);

// (1, ...) -> (...): one sample's tensor without its batch dimension.
Tensor drop_batch(const Tensor& t);

// request[name]: an integer in [0, hi), else ApiError 400 whose message gives the valid range and
// `what` it indexes ("an output channel of layer conv1.0 (Conv2d)").
int64_t index_in(const nlohmann::json& request, const std::string& name, int64_t hi,
                 const std::string& what);

// The input of one sample as a (1, C, H, W) batch, for a model taking `input` (C, H, W):
// request["pixels"] ([C][H][W], or H x W for a one-channel model, values in [0, 1]) or
// request["test_index"] (an image of `test`, which may be null). ApiError 400 for a malformed
// input (the message says what the model takes and what came), 422 for a model whose input is not
// an image, no test images, or test images of another shape.
Tensor model_input(const nlohmann::json& request, const Shape& input, const Dataset* test);

// {"min", "max"} of n values from p, over the finite ones (null when none is: the maps write
// NaN as null and infinities as strings, so the page can see them without a range built on them).
nlohmann::json range_json(const float* p, int64_t n);
// n values from p, each as number() writes it.
nlohmann::json values_json(const float* p, int64_t n);
// A (C, H, W) tensor's first `shown` channels as [C][H][W] values, and "map_ranges", one range
// per channel (all C): {"maps", "map_ranges"}.
nlohmann::json channel_maps(const Tensor& t, int64_t shown);

// A window as grids over its taps: "rows" and "cols" (the input rows and columns it reads,
// outside the plane where padded), "padded" (K_h x K_w booleans), and any grid of the taps.
struct Window {
  Step step;
  int64_t K_h = 0, K_w = 0;

  nlohmann::json grid(const std::function<nlohmann::json(const StepTap&)>& cell) const;
  nlohmann::json frame() const;
};

// A float as a response writes it: JSON has no infinity, so +-inf are the strings "inf" and
// "-inf"; NaN is written as null (what nlohmann's dump() writes for it).
nlohmann::json number(float v);

}  // namespace cnn::explore
