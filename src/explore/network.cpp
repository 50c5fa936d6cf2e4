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
using explore::Leaf;
using explore::number;
using explore::own_parameter;

[[noreturn]] void bad(const std::string& message) { throw ApiError(400, message); }

// request[name]: an integer in [0, hi); the message gives the valid range.
int64_t index_in(const json& request, const std::string& name, int64_t hi,
                 const std::string& what) {
  if (!request.contains(name)) bad("missing field '" + name + "' (" + what + ")");
  const json& j = request[name];
  // Above INT64_MAX nlohmann keeps it unsigned, and get<int64_t>() would wrap it.
  const bool ok = j.is_number_integer() &&
                  !(j.is_number_unsigned() && j.get<uint64_t>() >= static_cast<uint64_t>(hi));
  const int64_t v = ok ? j.get<int64_t>() : -1;
  if (v < 0 || v >= hi) {
    bad("'" + name + "' must be an integer in [0, " + std::to_string(hi) + ") (" + what +
        "), got " + quote(j));
  }
  return v;
}

// The input of one sample as a (1, C, H, W) batch: "pixels" ([C][H][W], or H x W for a
// one-channel model, values in [0, 1]) or "test_index" (an image of the test split).
Tensor network_input(const json& request, const Shape& input, const Dataset* test) {
  if (!request.is_object()) bad("the request body must be a JSON object");
  const bool has_pixels = request.contains("pixels"), has_index = request.contains("test_index");
  if (has_pixels == has_index) {
    bad("give the input as either 'pixels' (values in [0, 1]) or 'test_index' (a test image), "
        "not " +
        std::string(has_pixels ? "both" : "neither"));
  }
  if (input.size() != 3) {
    throw ApiError(422,
                   "the network view draws image inputs (C, H, W); this model takes inputs "
                   "of shape " +
                       shape_str(input));
  }
  const int64_t C = input[0], H = input[1], W = input[2];
  if (has_index) {
    if (!test) {
      throw ApiError(422, "no test images: start the server with --data-dir DIR (MNIST's files)");
    }
    const int64_t i = index_in(request, "test_index", test->count, "an image of the test split");
    if (test->image_shape() != input) {
      throw ApiError(422, "the test images of " + test->name + " have shape " +
                              shape_str(test->image_shape()) +
                              "; this model takes inputs of shape " + shape_str(input));
    }
    return test->image_tensor(i);
  }
  const json& j = request["pixels"];
  const std::string expected =
      "'pixels' must be the model's input, [C][H][W] = [" + std::to_string(C) + "][" +
      std::to_string(H) + "][" + std::to_string(W) + "]" +
      (C == 1 ? " (or " + std::to_string(H) + "x" + std::to_string(W) + ")" : "") +
      " values in [0, 1]";
  // The array's dimensions, read along its first elements, and refused before anything is
  // copied if they are not the model's.
  std::vector<std::size_t> dims;
  for (const json* a = &j; a->is_array(); a = &(*a)[0]) {
    dims.push_back(a->size());
    if (a->empty() || dims.size() > 3) break;
  }
  std::string got;
  for (std::size_t d : dims) got += (got.empty() ? "" : "x") + std::to_string(d);
  const bool gray = dims.size() == 2 && C == 1;
  if (!gray && dims.size() != 3) {
    bad(expected + "; got " +
        (dims.empty() ? "a non-array " + quote(j)
                      : "a " + std::to_string(dims.size()) + "-D array of size " + got));
  }
  const std::vector<std::size_t> want =
      gray ? std::vector<std::size_t>{static_cast<std::size_t>(H), static_cast<std::size_t>(W)}
           : std::vector<std::size_t>{static_cast<std::size_t>(C), static_cast<std::size_t>(H),
                                      static_cast<std::size_t>(W)};
  if (dims != want) bad(expected + "; got an array of size " + got);
  Tensor x({1, C, H, W});
  for (int64_t c = 0; c < C; ++c) {
    const json& planes = gray ? j : j[static_cast<std::size_t>(c)];
    for (int64_t y = 0; y < H; ++y) {
      const json& row = planes[static_cast<std::size_t>(y)];
      const std::string where =
          (gray ? "" : "channel " + std::to_string(c) + ", ") + "row " + std::to_string(y);
      if (!row.is_array() || static_cast<int64_t>(row.size()) != W) {
        bad(expected + "; " + where + " is not " + std::to_string(W) + " values");
      }
      for (int64_t col = 0; col < W; ++col) {
        const json& v = row[static_cast<std::size_t>(col)];
        const float f = v.is_number() ? v.get<float>() : -1.0f;
        if (!(f >= 0.0f && f <= 1.0f)) {
          bad(expected + "; " + where + ", column " + std::to_string(col) + " holds " + quote(v));
        }
        x[(c * H + y) * W + col] = f;
      }
    }
  }
  return x;
}

// {"min", "max"} of n values from p, over the finite ones (null when none is: the maps write
// NaN as null and infinities as strings, so the page can see them without a range built on them).
json range_json(const float* p, int64_t n) {
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  for (int64_t i = 0; i < n; ++i) {
    if (std::isfinite(p[i])) {
      lo = std::min(lo, p[i]);
      hi = std::max(hi, p[i]);
    }
  }
  if (lo > hi) return {{"min", nullptr}, {"max", nullptr}};
  return {{"min", lo}, {"max", hi}};
}

json values_json(const float* p, int64_t n) {
  json out = json::array();
  for (int64_t i = 0; i < n; ++i) out.push_back(number(p[i]));
  return out;
}

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

// A window as grids over the kernel's taps: "rows" and "cols" (the input rows and columns it
// reads, outside the plane where padded), "padded" (K_h x K_w booleans) and "window" (the input
// values; `pad` where padded: 0 for convolution and average pooling, -inf for max pooling).
struct Window {
  Step step;
  int64_t K_h = 0, K_w = 0;

  json grid(const std::function<json(const StepTap&)>& cell) const {
    json rows = json::array();
    for (int64_t kh = 0; kh < K_h; ++kh) {
      json row = json::array();
      for (int64_t kw = 0; kw < K_w; ++kw) row.push_back(cell(step.taps[kh * K_w + kw]));
      rows.push_back(row);
    }
    return rows;
  }
  json frame() const {
    json rows = json::array(), cols = json::array();
    for (int64_t kh = 0; kh < K_h; ++kh) rows.push_back(step.taps[kh * K_w].row);
    for (int64_t kw = 0; kw < K_w; ++kw) cols.push_back(step.taps[kw].col);
    return {{"rows", rows},
            {"cols", cols},
            {"padded", grid([](const StepTap& t) { return json(t.padded); })}};
  }
};

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
  const std::lock_guard<std::mutex> lock(model_mutex_);
  const Tensor x = network_input(request, input_, test_.get());
  std::vector<Leaf> leaves;
  explore::collect_leaves(*model_, "", leaves);
  const std::vector<Tensor> outputs =
      explore::traced_forward(*model_, leaves, x, leaves.size(), "the network view");
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
      json maps = json::array(), ranges = json::array();
      for (int64_t c = 0; c < C; ++c) {
        ranges.push_back(range_json(y.data() + c * plane, plane));
        if (c >= shown) continue;
        json map = json::array();
        for (int64_t r = 0; r < y.size(1); ++r) {
          map.push_back(values_json(y.data() + c * plane + r * y.size(2), y.size(2)));
        }
        maps.push_back(map);
      }
      budget -= shown * plane;
      layer["maps"] = maps;
      layer["map_ranges"] = ranges;
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
  const std::lock_guard<std::mutex> lock(model_mutex_);
  const Tensor x = network_input(request, input_, test_.get());
  std::vector<Leaf> leaves;
  explore::collect_leaves(*model_, "", leaves);
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
      explore::traced_forward(*model_, leaves, x, i + 1, "the drill-down");
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
