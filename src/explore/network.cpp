// The explorer's network view: any model's layers in forward order, each one's output for the
// current input, and the drill-down that takes one output of a convolution or pooling layer
// apart (api.h). Every number is the library's: the layers' outputs come from one traced forward
// pass of the model, and each drill-down carries that pass's value beside its own arithmetic.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "cnn/error.h"
#include "cnn/explain/steps.h"
#include "cnn/explore/api.h"
#include "cnn/nn/layers.h"
#include "cnn/ops/argmax.h"
#include "cnn/ops/avgpool2d.h"
#include "cnn/ops/softmax.h"
#include "trace.h"

namespace cnn {

namespace {

using json = nlohmann::json;
using explore::drop_batch;
using explore::index_in;
using explore::Leaf;
using explore::number;
using explore::own_parameter;
using explore::range_json;
using explore::values_json;
using explore::Window;

using explore::bad;

// The layer's options as a model file declares them (Module::config()); a module that cannot
// describe itself is given by its type alone.
json description(const Module& m) {
  try {
    return m.config();
  } catch (const Error&) {
    return {{"type", m.type_name()}};
  }
}

// Whether layer_step takes this layer apart.
bool drillable(const Module& m) {
  return dynamic_cast<const Conv2d*>(&m) || dynamic_cast<const MaxPool2d*>(&m) ||
         dynamic_cast<const AvgPool2d*>(&m) || dynamic_cast<const AdaptiveAvgPool2d*>(&m);
}

// Refuses a drill-down of more than max_taps multiply-adds before any of it is computed.
void check_taps(const std::string& layer, int64_t taps, const ExplorerLimits& limits) {
  if (taps > limits.max_taps) {
    throw ApiError(422, "the drill-down of layer " + layer + " would write out " +
                            std::to_string(taps) + " taps; the explorer shows at most " +
                            std::to_string(limits.max_taps));
  }
}

// Plane c of a (C, H, W) tensor, read at a tap (pad where padded).
float read(const Tensor& in, int64_t c, const StepTap& t, float pad) {
  const int64_t H = in.size(1), W = in.size(2);
  return t.padded ? pad : in[(c * H + t.row) * W + t.col];
}

// Conv2d: the output at (c, row, col) as the sum over the input channels of its group of the
// window times the filter's slice, plus the bias.
json conv_step(const Conv2d& conv, const Tensor& in, int64_t c, int64_t row, int64_t col) {
  const Tensor& w = *own_parameter(conv, "weight");  // (C_out, C_in / groups, K_h, K_w)
  const Tensor* b = own_parameter(conv, "bias");
  const Conv2dGeometry& g = conv.geometry();
  const int64_t per_group = w.size(1), K_h = w.size(2), K_w = w.size(3);
  const int64_t group = c / (w.size(0) / g.groups), first = group * per_group;
  Window win{window_taps(in.size(1), in.size(2), Size2(K_h, K_w), g.stride, g.pad_top, g.pad_left,
                         g.dilation, row, col),
             K_h, K_w};
  json inputs = json::array();
  // Summed in double so that the total is the exact sum of the float products shown, rounded
  // once; the library's kernels sum in float in their own order.
  const float bias = b ? (*b)[c] : 0.0f;
  double total = bias;
  for (int64_t i = 0; i < per_group; ++i) {
    const int64_t ic = first + i;
    const auto weight = [&](const StepTap& t) {
      return w[((c * per_group + i) * K_h + t.kernel_row) * K_w + t.kernel_col];
    };
    double sum = 0.0;
    for (const StepTap& t : win.step.taps) sum += read(in, ic, t, 0.0f) * weight(t);
    total += sum;
    inputs.push_back(
        {{"channel", ic},
         {"window", win.grid([&](const StepTap& t) { return number(read(in, ic, t, 0.0f)); })},
         {"kernel", win.grid([&](const StepTap& t) { return number(weight(t)); })},
         {"products",
          win.grid([&](const StepTap& t) { return number(read(in, ic, t, 0.0f) * weight(t)); })},
         {"sum", number(static_cast<float>(sum))}});
  }
  json out = win.frame();
  out.update({{"kernel_size", {K_h, K_w}},
              {"stride", {g.stride.h, g.stride.w}},
              {"dilation", {g.dilation.h, g.dilation.w}},
              {"padding",
               {{"top", g.pad_top},
                {"bottom", g.pad_bottom},
                {"left", g.pad_left},
                {"right", g.pad_right}}},
              {"groups", g.groups},
              {"group", group},
              {"inputs", inputs},
              {"bias", b ? json(number(bias)) : json(nullptr)},
              {"total", number(static_cast<float>(total))}});
  return out;
}

// MaxPool2d: the window over input plane c and its first maximum (NaN wins, as PyTorch's).
json maxpool_step(const MaxPool2d& pool, const Tensor& in, int64_t c, int64_t row, int64_t col) {
  const Pool2dGeometry& g = pool.geometry();
  const float pad = -std::numeric_limits<float>::infinity();
  Window win{window_taps(in.size(1), in.size(2), g.kernel, g.stride, g.padding.h, g.padding.w,
                         g.dilation, row, col),
             g.kernel.h, g.kernel.w};
  const StepTap* best = nullptr;
  for (const StepTap& t : win.step.taps) {
    if (t.padded) continue;
    const float v = read(in, c, t, pad);
    if (!best || v > read(in, c, *best, pad) ||
        (std::isnan(v) && !std::isnan(read(in, c, *best, pad)))) {
      best = &t;
    }
  }
  json out = win.frame();
  out["window"] = win.grid([&](const StepTap& t) { return number(read(in, c, t, pad)); });
  out["kernel_size"] = {g.kernel.h, g.kernel.w};
  out["stride"] = {g.stride.h, g.stride.w};
  out["dilation"] = {g.dilation.h, g.dilation.w};
  out["ceil_mode"] = g.ceil_mode;
  // A window wholly in the padding cannot arise: PyTorch's output size keeps every window's
  // start inside the input or its left/top padding.
  out["winner"] = best ? json{{"kernel_row", best->kernel_row},
                              {"kernel_col", best->kernel_col},
                              {"row", best->row},
                              {"col", best->col}}
                       : json(nullptr);
  out["total"] = best ? number(read(in, c, *best, pad)) : json(nullptr);
  return out;
}

// An average over the window's input cells (the padding counts as zeros): "sum", "divisor",
// "total".
json average(const Window& win, const Tensor& in, int64_t c, int64_t divisor) {
  double sum = 0.0;
  for (const StepTap& t : win.step.taps) sum += read(in, c, t, 0.0f);
  json out = win.frame();
  out["window"] = win.grid([&](const StepTap& t) { return number(read(in, c, t, 0.0f)); });
  out["sum"] = number(static_cast<float>(sum));
  out["divisor"] = divisor;
  out["total"] =
      number(divisor == 0 ? 0.0f : static_cast<float>(sum / static_cast<double>(divisor)));
  return out;
}

// AvgPool2d: the window and divisor the op averages with (avgpool2d_window).
json avgpool_step(const AvgPool2d& pool, const Tensor& in, int64_t c, int64_t row, int64_t col) {
  const AvgPool2dGeometry& g = pool.geometry();
  const int64_t H = in.size(1), W = in.size(2);
  Window win{window_taps(H, W, g.kernel, g.stride, g.padding.h, g.padding.w, Size2(1), row, col),
             g.kernel.h, g.kernel.w};
  const AvgPoolWindow a = avgpool2d_window(g, H, W, row, col);
  json out = average(win, in, c, a.h1 > a.h0 && a.w1 > a.w0 ? a.divisor : 0);
  out["kernel_size"] = {g.kernel.h, g.kernel.w};
  out["stride"] = {g.stride.h, g.stride.w};
  out["ceil_mode"] = g.ceil_mode;
  out["count_include_pad"] = g.count_include_pad;
  out["divisor_override"] = g.divisor_override ? json(*g.divisor_override) : json(nullptr);
  return out;
}

// AdaptiveAvgPool2d: the window the op averages (adaptive_avgpool2d_window).
json adaptive_step(const Tensor& in, int64_t c, int64_t row, int64_t col, int64_t H_out,
                   int64_t W_out) {
  const int64_t H = in.size(1), W = in.size(2);
  const AvgPoolWindow a = adaptive_avgpool2d_window(H, W, Size2(H_out, W_out), row, col);
  // The window as a kernel of its size placed at (h0, w0): no padding, stride and dilation 1.
  Window win{
      window_taps(H, W, Size2(a.h1 - a.h0, a.w1 - a.w0), Size2(1), -a.h0, -a.w0, Size2(1), 0, 0),
      a.h1 - a.h0, a.w1 - a.w0};
  return average(win, in, c, a.divisor);
}

}  // namespace

json ExplorerApi::network(const json& request) const {
  const SelectedModel model = select_model(request);
  const Tensor x = explore::model_input(request, input_, test_.get());
  std::vector<Leaf> leaves;
  explore::collect_leaves(*model, "", leaves);
  const std::vector<Tensor> outputs =
      explore::traced_forward(*model, leaves, x, leaves.size(), "the network view");
  json layers = json::array();
  int64_t budget = limits_.max_map_values;
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    const Module& m = *leaves[i].module;
    const Tensor y = drop_batch(outputs[i]);
    const json range = range_json(y.data(), y.numel());
    json layer = {{"path", leaves[i].path},
                  {"type", m.type_name()},
                  {"layer", m.type_name() + "(" + m.extra_repr() + ")"},
                  {"description", description(m)},
                  {"output_shape", y.shape()},
                  {"range", range},
                  {"drill", drillable(m)}};
    if (y.dim() == 3) {
      const int64_t C = y.size(0), plane = y.size(1) * y.size(2);
      const int64_t shown =
          std::min({C, limits_.max_channels, budget / std::max<int64_t>(plane, 1)});
      budget -= shown * plane;
      layer.update(explore::channel_maps(y, shown));
      layer["channels_shown"] = shown;
      if (!range["min"].is_null()) {
        lo = std::min(lo, range["min"].get<float>());
        hi = std::max(hi, range["max"].get<float>());
      }
    } else if (y.dim() == 1) {
      const int64_t shown = std::min(y.numel(), budget);
      layer["maps"] = values_json(y.data(), shown);
      layer["values_shown"] = shown;
      budget -= shown;
    }
    layers.push_back(layer);
  }
  json out = {{"input", input_},
              {"layers", layers},
              {"range", lo <= hi ? json{{"min", lo}, {"max", hi}}
                                 : json{{"min", nullptr}, {"max", nullptr}}}};
  const Tensor& last = outputs.back();
  if (last.dim() == 2 && last.size(0) == 1) {
    out["logits"] = values_json(last.data(), last.numel());
    out["probabilities"] = values_json(softmax_forward(last, 1).data(), last.numel());
    out["prediction"] = argmax(last, 1)[0];
  }
  return out;
}

json ExplorerApi::layer_step(const json& request) const {
  const SelectedModel model = select_model(request);
  const Tensor x = explore::model_input(request, input_, test_.get());
  std::vector<Leaf> leaves;
  explore::collect_leaves(*model, "", leaves);
  if (!request.contains("layer") || !request["layer"].is_string()) {
    bad("'layer' must be the path of one of the model's layers, as /api/network lists them");
  }
  const std::string path = request["layer"].get<std::string>();
  const auto it =
      std::find_if(leaves.begin(), leaves.end(), [&](const Leaf& l) { return l.path == path; });
  if (it == leaves.end()) {
    std::string paths;
    for (const Leaf& l : leaves) paths += (paths.empty() ? "" : ", ") + l.path;
    bad("'layer' " + quote(request["layer"]) + " is not a layer of this model; its layers are " +
        paths);
  }
  const std::size_t i = static_cast<std::size_t>(it - leaves.begin());
  const Module& m = *it->module;
  const std::string name = path + " (" + m.type_name() + ")";
  if (!drillable(m)) {
    throw ApiError(422, "layer " + name +
                            " has no step-through; the drill-down covers convolution and pooling "
                            "layers (Conv2d, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d)");
  }
  const std::vector<Tensor> outputs =
      explore::traced_forward(*model, leaves, x, i + 1, "the drill-down");
  const Tensor in = drop_batch(i == 0 ? x : outputs[i - 1]);
  const Tensor y = drop_batch(outputs[i]);
  if (y.dim() != 3 || in.dim() != 3) {
    throw ApiError(422, "layer " + name + " gives an output of shape " + shape_str(y.shape()) +
                            "; the drill-down takes apart (C, H, W) maps");
  }
  const int64_t C = y.size(0), H_out = y.size(1), W_out = y.size(2);
  const int64_t c = index_in(request, "channel", C, "an output channel of layer " + name);
  const int64_t row = index_in(request, "row", H_out, "an output row of layer " + name);
  const int64_t col = index_in(request, "col", W_out, "an output column of layer " + name);
  json step;
  if (const auto* conv = dynamic_cast<const Conv2d*>(&m)) {
    const Tensor& w = *own_parameter(*conv, "weight");
    check_taps(name, w.size(1) * w.size(2) * w.size(3), limits_);
    step = conv_step(*conv, in, c, row, col);
  } else if (const auto* maxpool = dynamic_cast<const MaxPool2d*>(&m)) {
    check_taps(name, maxpool->geometry().kernel.h * maxpool->geometry().kernel.w, limits_);
    step = maxpool_step(*maxpool, in, c, row, col);
  } else if (const auto* avgpool = dynamic_cast<const AvgPool2d*>(&m)) {
    check_taps(name, avgpool->geometry().kernel.h * avgpool->geometry().kernel.w, limits_);
    step = avgpool_step(*avgpool, in, c, row, col);
  } else {
    // The largest adaptive window: ceil(H / H_out) + 1 rows, and so for columns.
    check_taps(name, (in.size(1) / H_out + 2) * (in.size(2) / W_out + 2), limits_);
    step = adaptive_step(in, c, row, col, H_out, W_out);
  }
  step.update({{"layer", path},
               {"type", m.type_name()},
               {"channel", c},
               {"row", row},
               {"col", col},
               {"input_shape", in.shape()},
               {"value", number(y[(c * H_out + row) * W_out + col])}});
  return step;
}

}  // namespace cnn
