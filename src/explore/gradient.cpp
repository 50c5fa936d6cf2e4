// The explorer's backprop views (api.h): the gradient of one objective (a class's logit or the
// loss) w.r.t. the input and any layer's output maps, and one convolution weight's gradient as the
// correlation of the layer's input with the gradient it receives. Every number comes from the
// library's own backward pass (Module::backward) on the loaded model in evaluation mode; the
// weight's step-through carries the library's .grad beside its own arithmetic.
#include <algorithm>
#include <functional>
#include <limits>

#include "cnn/error.h"
#include "cnn/explain/steps.h"
#include "cnn/explore/api.h"
#include "cnn/nn/layers.h"
#include "cnn/ops/argmax.h"
#include "cnn/ops/cross_entropy.h"
#include "cnn/train/trainer.h"
#include "trace.h"

namespace cnn {

namespace {

using json = nlohmann::json;
using explore::drop_batch;
using explore::index_in;
using explore::Leaf;
using explore::number;
using explore::range_json;

using explore::bad;

// Every module's training flag, put back when it ends (in pre-order: Module::train() sets a whole
// subtree, so a child's own mode is set again after its parent's).
class ModeRestore {
 public:
  explicit ModeRestore(Module& m) { save(m); }
  ~ModeRestore() {
    for (const auto& [m, training] : modes_) m->train(training);
  }
  ModeRestore(const ModeRestore&) = delete;
  ModeRestore& operator=(const ModeRestore&) = delete;

 private:
  void save(Module& m) {
    modes_.emplace_back(&m, m.is_training());
    for (const auto& [name, child] : m.children()) save(*child);
  }
  std::vector<std::pair<Module*, bool>> modes_;
};

// The parameters' .grad zeroed now and on every way out: the served model keeps no gradient of a
// request, and the next request's .grad is its own.
struct GradsZeroed {
  Module& m;
  explicit GradsZeroed(Module& module) : m(module) { m.zero_grad(); }
  ~GradsZeroed() { m.zero_grad(); }
  GradsZeroed(const GradsZeroed&) = delete;
  GradsZeroed& operator=(const GradsZeroed&) = delete;
};

// The leaf at request["layer"], or null when there is no "layer"; 400 for a path that is not a
// leaf, the message listing the leaves that the view takes (`listed`), `kind` ("Conv2d ") naming
// them.
const Leaf* requested_leaf(const json& request, const std::vector<Leaf>& leaves,
                           const std::function<bool(const Leaf&)>& listed,
                           const std::string& kind) {
  if (!request.contains("layer")) return nullptr;
  if (!request["layer"].is_string()) {
    bad("'layer' must be the path of a " + kind + "layer of this model, as /api/network lists " +
        "them; got " + quote(request["layer"]));
  }
  const std::string path = request["layer"].get<std::string>();
  const auto it =
      std::find_if(leaves.begin(), leaves.end(), [&](const Leaf& l) { return l.path == path; });
  if (it != leaves.end()) return &*it;
  std::string paths;
  for (const Leaf& l : leaves) {
    if (listed(l)) paths += (paths.empty() ? "" : ", ") + l.path;
  }
  bad("'layer' " + quote(request["layer"]) + " is not a layer of this model; its " + kind +
      "layers are " + (paths.empty() ? "none" : paths));
}

// What the backward pass starts from: "score" (the class's logit) or "loss" (the cross-entropy of
// the logits against the class).
std::string objective_kind(const json& request, const std::string& fallback) {
  if (!request.contains("of")) return fallback;
  const json& of = request["of"];
  if (!of.is_string() || (of != "score" && of != "loss")) {
    bad("'of' must be \"score\" (the class's logit) or \"loss\" (the cross-entropy of the logits "
        "against the class), got " +
        quote(of));
  }
  return of.get<std::string>();
}

// One forward and backward pass of the model on one input.
struct Backprop {
  std::vector<Tensor> outputs;  // each leaf's output, by its index in the leaves (batch of one)
  std::string of;
  int64_t cls = 0, prediction = 0;
  float objective = 0.0f;
  Tensor dx;       // d objective / d input: (1, C, H, W)
  Tensor watched;  // d objective / d the watched leaf's output (its dy), when one is watched
};

// Runs the model on x in evaluation mode with gradients (every leaf on its own), picks the class
// and objective from the request, and runs the model's backward from d objective / d logits. The
// leaf `watch` (may be null) has the gradient it receives kept; `check`, called after the forward
// pass, may refuse the request before the backward pass runs; `read` is called after it, while the
// parameters' .grad hold this pass's gradients (zeroed before and after). A model that ends in a
// Softmax over the classes is taken on its logits, as training takes it (LogitsGuard).
Backprop backprop(Module& model, const std::vector<Leaf>& leaves, const Tensor& x,
                  const json& request, const Dataset* test, const std::string& default_of,
                  const Module* watch, const std::function<void(const Backprop&)>& check,
                  const std::function<void()>& read) {
  Backprop b;
  b.of = objective_kind(request, default_of);
  const ModeRestore modes(model);
  const LogitsGuard logits_guard(model);
  const GradsZeroed zeroed(model);
  b.outputs = explore::traced_forward(model, leaves, x, leaves.size(), "the gradient view",
                                      /*for_backward=*/true);
  const Tensor& logits = b.outputs.back();
  if (logits.dim() != 2 || logits.size(0) != 1) {
    throw ApiError(422,
                   "the gradient view needs a model whose output is class scores "
                   "(N, classes); this model's output has shape " +
                       shape_str(logits.shape()));
  }
  const int64_t classes = logits.size(1);
  b.prediction = argmax(logits, 1)[0];
  if (request.contains("class")) {
    b.cls = index_in(request, "class", classes, "a class of this model");
  } else if (b.of == "loss" && request.contains("test_index") && test) {
    const int64_t i = request["test_index"].get<int64_t>();  // model_input checked it
    b.cls = test->labels[static_cast<std::size_t>(i)];
    if (b.cls >= classes) {
      throw ApiError(422, "test image " + std::to_string(i) + " is labelled " +
                              std::to_string(b.cls) + ", not a class of this model (" +
                              std::to_string(classes) + " classes); give 'class'");
    }
  } else {
    b.cls = b.prediction;
  }
  if (check) check(b);
  Tensor dlogits;
  if (b.of == "score") {
    b.objective = logits[b.cls];
    dlogits = Tensor({1, classes});
    dlogits[b.cls] = 1.0f;
  } else {
    const CrossEntropyResult ce = cross_entropy_forward(logits, std::vector<int64_t>{b.cls});
    b.objective = ce.loss;
    dlogits = cross_entropy_backward(ce.log_probs, std::vector<int64_t>{b.cls});
  }
  struct Unhook {
    ~Unhook() { Module::set_backward_hook({}); }
  } unhook;
  if (watch) {
    Module::set_backward_hook([&](const Module& leaf, const Tensor& dy) {
      if (&leaf == watch) b.watched = dy.clone();
    });
  }
  try {
    b.dx = model.backward(dlogits, /*input_grad=*/true);
  } catch (const Error& e) {
    throw ApiError(422, std::string("the backward pass of this model failed: ") + e.what());
  }
  if (read) read();
  return b;
}

// {"class", "of", "objective", "prediction"}
json head(const Backprop& b) {
  return {{"class", b.cls},
          {"of", b.of},
          {"objective", number(b.objective)},
          {"prediction", b.prediction}};
}

std::string layer_name(const Leaf& l) { return l.path + " (" + l.module->type_name() + ")"; }

// The gradient the watched leaf received, without its batch dimension.
Tensor received(const Backprop& b, const Leaf& layer) {
  if (!b.watched.defined()) {
    throw ApiError(422, "layer " + layer_name(layer) +
                            " received no gradient: the model's backward pass does not run it");
  }
  return drop_batch(b.watched);
}

}  // namespace

json ExplorerApi::gradient(const json& request) const {
  const SelectedModel model = select_model(request);
  const Tensor x = explore::model_input(request, input_, test_.get());
  std::vector<Leaf> leaves;
  explore::collect_leaves(*model, "", leaves);
  const Leaf* layer = requested_leaf(
      request, leaves, [](const Leaf&) { return true; }, "");
  const std::size_t li = layer ? static_cast<std::size_t>(layer - leaves.data()) : 0;
  const auto check = [&](const Backprop& b) {
    if (layer && b.outputs[li].dim() != 4) {
      throw ApiError(422, "layer " + layer_name(*layer) + " gives an output of shape " +
                              shape_str(drop_batch(b.outputs[li]).shape()) +
                              "; the layer gradient is drawn for (C, H, W) maps");
    }
  };
  const Backprop b = backprop(*model, leaves, x, request, test_.get(), "score",
                              layer ? layer->module : nullptr, check, nullptr);
  const Tensor dx = drop_batch(b.dx);
  json out = head(b);
  out["input_gradient"] = explore::channel_maps(dx, dx.size(0))["maps"];
  out["input_range"] = range_json(dx.data(), dx.numel());
  if (layer) {
    const Tensor dy = received(b, *layer);
    const int64_t C = dy.size(0), plane = dy.size(1) * dy.size(2);
    const int64_t shown =
        std::min({C, limits_.max_channels, limits_.max_map_values / std::max<int64_t>(plane, 1)});
    const json maps = explore::channel_maps(dy, shown);
    out["layer"] = layer->path;
    out["layer_gradient"] = maps["maps"];
    out["layer_ranges"] = maps["map_ranges"];
    out["layer_range"] = range_json(dy.data(), dy.numel());
    out["channels_shown"] = shown;
  }
  return out;
}

json ExplorerApi::dw_step(const json& request) const {
  const SelectedModel model = select_model(request);
  const Tensor x = explore::model_input(request, input_, test_.get());
  std::vector<Leaf> leaves;
  explore::collect_leaves(*model, "", leaves);
  const auto is_conv = [](const Leaf& l) { return dynamic_cast<const Conv2d*>(l.module); };
  if (!request.contains("layer")) {
    bad("missing field 'layer' (the path of a Conv2d layer, as /api/network lists them)");
  }
  const Leaf* layer = requested_leaf(request, leaves, is_conv, "Conv2d ");
  const std::string name = layer_name(*layer);
  const auto* conv = dynamic_cast<const Conv2d*>(layer->module);
  if (!conv) {
    std::string convs;
    for (const Leaf& l : leaves) {
      if (is_conv(l)) convs += (convs.empty() ? "" : ", ") + l.path;
    }
    throw ApiError(422, "layer " + name +
                            " has no weight gradient to take apart; the step-through covers "
                            "Conv2d layers (this model's: " +
                            (convs.empty() ? "none" : convs) + ")");
  }
  const Parameter* weight = nullptr;
  for (const auto& [n, p] : conv->own_parameters()) {
    if (n == "weight") weight = p.get();
  }
  const Tensor& w = weight->value;  // (C_out, C_in / groups, K_h, K_w)
  const int64_t C_out = w.size(0), per_group = w.size(1), K_h = w.size(2), K_w = w.size(3);
  const int64_t o = index_in(request, "out_channel", C_out, "an output channel of layer " + name);
  const int64_t i =
      index_in(request, "in_channel", per_group,
               "an input channel of layer " + name + " within its group: the weight's dimension 1");
  const int64_t r = index_in(request, "row", K_h, "a kernel row of layer " + name);
  const int64_t c = index_in(request, "col", K_w, "a kernel column of layer " + name);
  const std::size_t li = static_cast<std::size_t>(layer - leaves.data());
  const auto check = [&](const Backprop& b) {
    const Tensor& y = b.outputs[li];
    const int64_t positions = y.size(2) * y.size(3);
    if (positions > limits_.max_taps) {
      throw ApiError(422, "the weight gradient of layer " + name + " sums over " +
                              std::to_string(positions) +
                              " output positions; the explorer writes out at most " +
                              std::to_string(limits_.max_taps));
    }
  };
  const int64_t at = ((o * per_group + i) * K_h + r) * K_w + c;
  float value = 0.0f;
  const Backprop b = backprop(*model, leaves, x, request, test_.get(), "loss", conv, check,
                              [&] { value = weight->grad[at]; });
  const Tensor in = drop_batch(li == 0 ? x : b.outputs[li - 1]);  // (C_in, H, W)
  const Tensor dy = received(b, *layer);                          // (C_out, H_out, W_out)
  const Conv2dGeometry& g = conv->geometry();
  const int64_t H = in.size(1), W = in.size(2), H_out = dy.size(1), W_out = dy.size(2);
  const int64_t ic = o / (C_out / g.groups) * per_group + i;
  // dw[o][i][r][c] = sum over (y, x) of in[ic][y S_h - P_top + r D_h][x S_w - P_left + c D_w]
  // dy[o][y][x]: a window of H_out x W_out taps over the input at "output" (r, c), with the
  // convolution's stride and dilation swapped (window_taps: the same padding rule as the forward
  // drill-down).
  const explore::Window win{
      window_taps(H, W, Size2(H_out, W_out), g.dilation, g.pad_top, g.pad_left, g.stride, r, c),
      H_out, W_out};
  const auto input = [&](const StepTap& t) {
    return t.padded ? 0.0f : in[(ic * H + t.row) * W + t.col];
  };
  // The tap's (kernel_row, kernel_col) is the output position (y, x).
  const auto upstream = [&](const StepTap& t) {
    return dy[(o * H_out + t.kernel_row) * W_out + t.kernel_col];
  };
  // Summed in double: the exact sum of the float products shown, rounded once; the library's
  // kernels sum in float in their own order.
  double total = 0.0;
  for (const StepTap& t : win.step.taps) total += input(t) * upstream(t);
  json out = win.frame();
  out.update(head(b));
  out.update(
      {{"layer", layer->path},
       {"weight", {o, i, r, c}},
       {"input_channel", ic},
       {"input_shape", in.shape()},
       {"output_shape", {H_out, W_out}},
       {"kernel_size", {K_h, K_w}},
       {"stride", {g.stride.h, g.stride.w}},
       {"dilation", {g.dilation.h, g.dilation.w}},
       {"padding",
        {{"top", g.pad_top},
         {"bottom", g.pad_bottom},
         {"left", g.pad_left},
         {"right", g.pad_right}}},
       {"groups", g.groups},
       {"window", win.grid([&](const StepTap& t) { return number(input(t)); })},
       {"upstream", win.grid([&](const StepTap& t) { return number(upstream(t)); })},
       {"products", win.grid([&](const StepTap& t) { return number(input(t) * upstream(t)); })},
       {"total", number(static_cast<float>(total))},
       {"value", number(value)}});
  return out;
}

}  // namespace cnn
