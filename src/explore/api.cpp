#include "cnn/explore/api.h"

#include <cmath>

#include "cnn/error.h"
#include "cnn/explain/steps.h"
#include "cnn/models/registry.h"
#include "cnn/nn/grad_mode.h"
#include "cnn/nn/layers.h"
#include "cnn/summary.h"

namespace cnn {

namespace {

using json = nlohmann::json;

[[noreturn]] void bad(const std::string& message) { throw ApiError(400, message); }

const json& field(const json& request, const char* name) {
  if (!request.is_object()) bad("the request body must be a JSON object");
  if (!request.contains(name)) bad(std::string("missing field '") + name + "'");
  return request.at(name);
}

int64_t integer(const json& j, const std::string& what, int64_t lo, int64_t hi) {
  if (!j.is_number_integer()) bad("'" + what + "' must be an integer, got " + j.dump());
  const auto v = j.get<int64_t>();
  if (v < lo || v > hi) {
    bad("'" + what + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
        ", got " + std::to_string(v));
  }
  return v;
}

// An int or an [h, w] pair; absent: the fallback. The range is wide on purpose: a stride of 0 or
// a negative padding reaches the library, whose error the page shows. Anything else present is
// refused, null included: JSON has no NaN, so a number the page could not read arrives as null
// (or, from the explorer, as the text typed), and computing with the default instead would show
// a figure for options the user did not give. Leaving the field out is how to ask for the default.
Size2 size2(const json& request, const char* name, Size2 fallback, int64_t lo, int64_t hi) {
  if (!request.contains(name)) return fallback;
  const json& j = request.at(name);
  const auto refuse = [&] {
    bad(std::string("'") + name + "' must be an integer or [h, w] pair, got " + j.dump());
  };
  if (j.is_array()) {
    if (j.size() != 2 || !j[0].is_number_integer() || !j[1].is_number_integer()) refuse();
    return Size2(integer(j[0], name, lo, hi), integer(j[1], name, lo, hi));
  }
  if (!j.is_number_integer()) refuse();
  return Size2(integer(j, name, lo, hi));
}

// request[name], a number; absent: the fallback (null and text refused, as for size2).
double real(const json& request, const char* name, double fallback) {
  if (!request.contains(name)) return fallback;
  const json& j = request.at(name);
  if (!j.is_number()) bad(std::string("'") + name + "' must be a number, got " + j.dump());
  return j.get<double>();
}

// request[name], true or false; absent: false.
bool boolean(const json& request, const char* name) {
  if (!request.contains(name)) return false;
  const json& j = request.at(name);
  if (!j.is_boolean()) bad(std::string("'") + name + "' must be true or false, got " + j.dump());
  return j.get<bool>();
}

// A 2-D grid of numbers, rectangular, within the limits.
Tensor grid(const json& j, const char* name, int64_t max_side) {
  if (!j.is_array() || j.empty())
    bad(std::string("'") + name + "' must be a non-empty 2-D array of numbers");
  const auto rows = static_cast<int64_t>(j.size());
  if (!j[0].is_array() || j[0].empty())
    bad(std::string("'") + name + "' must be a non-empty 2-D array of numbers");
  const auto cols = static_cast<int64_t>(j[0].size());
  if (rows > max_side || cols > max_side) {
    bad(std::string("'") + name + "' is " + std::to_string(rows) + "x" + std::to_string(cols) +
        ", at most " + std::to_string(max_side) + "x" + std::to_string(max_side) + " is allowed");
  }
  Tensor t({rows, cols});
  for (int64_t r = 0; r < rows; ++r) {
    const json& row = j[r];
    if (!row.is_array() || static_cast<int64_t>(row.size()) != cols) {
      bad(std::string("'") + name + "' must be rectangular: row " + std::to_string(r) + " differs");
    }
    for (int64_t c = 0; c < cols; ++c) {
      if (!row[c].is_number()) {
        bad(std::string("'") + name + "' holds a non-number at row " + std::to_string(r) +
            ", column " + std::to_string(c) + ": " + row[c].dump());
      }
      t[r * cols + c] = row[c].get<float>();
    }
  }
  return t;
}

json number(float v) {
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  return v;
}

json grid_json(const Tensor& t) {
  json out = json::array();
  for (int64_t r = 0; r < t.size(0); ++r) {
    json row = json::array();
    for (int64_t c = 0; c < t.size(1); ++c) row.push_back(number(t[r * t.size(1) + c]));
    out.push_back(row);
  }
  return out;
}

json steps_json(const StepThrough& st) {
  json steps = json::array();
  for (const Step& s : st.steps) {
    json taps = json::array();
    for (const StepTap& t : s.taps) {
      taps.push_back({{"row", t.row},
                      {"col", t.col},
                      {"kernel_row", t.kernel_row},
                      {"kernel_col", t.kernel_col},
                      {"padded", t.padded},
                      {"input", number(t.input)},
                      {"weight", t.weight}});
    }
    json step = {{"out_row", s.out_row},
                 {"out_col", s.out_col},
                 {"value", number(s.value)},
                 {"expression", s.expression},
                 {"taps", taps}};
    if (s.winner >= 0) step["winner"] = s.winner;
    steps.push_back(step);
  }
  return {{"output", grid_json(st.output)}, {"steps", steps}};
}

// Runs f, turning the library's errors into 422 with its message.
template <class F>
json library(F&& f) {
  try {
    return f();
  } catch (const Error& e) {
    throw ApiError(422, e.what());
  }
}

}  // namespace

ExplorerApi::ExplorerApi(std::shared_ptr<Module> model, nlohmann::json meta, ExplorerLimits limits)
    : model_(std::move(model)), meta_(std::move(meta)), limits_(limits) {
  if (!model_) model_ = build_model(tutorial_architecture(10));
}

json ExplorerApi::conv2d_steps(const json& request) const {
  const Tensor image = grid(field(request, "image"), "image", limits_.max_grid);
  const Tensor kernel = grid(field(request, "kernel"), "kernel", limits_.max_kernel);
  const int64_t m = limits_.max_option;
  const Size2 stride = size2(request, "stride", 1, -m, m);
  const Size2 padding = size2(request, "padding", 0, -m, m);
  const Size2 dilation = size2(request, "dilation", 1, -m, m);
  return library(
      [&] { return steps_json(cnn::conv2d_steps(image, kernel, stride, padding, dilation)); });
}

json ExplorerApi::maxpool2d_steps(const json& request) const {
  const Tensor image = grid(field(request, "image"), "image", limits_.max_grid);
  const int64_t m = limits_.max_option;
  Pool2dGeometry g;
  if (!request.is_object() || !request.contains("kernel_size")) bad("missing field 'kernel_size'");
  g.kernel = size2(request, "kernel_size", Size2(0), -limits_.max_kernel, limits_.max_kernel);
  g.stride = size2(request, "stride", g.kernel, -m, m);
  g.padding = size2(request, "padding", 0, -m, m);
  g.dilation = size2(request, "dilation", 1, -m, m);
  g.ceil_mode = boolean(request, "ceil_mode");
  return library([&] { return steps_json(cnn::maxpool2d_steps(image, g)); });
}

json ExplorerApi::shapes(const json& request) const {
  const json& input = field(request, "input");
  if (!input.is_array() || input.size() != 3) bad("'input' must be [C, H, W]");
  const Shape in = {integer(input[0], "input C", 1, limits_.max_channels),
                    integer(input[1], "input H", 1, limits_.max_input_side),
                    integer(input[2], "input W", 1, limits_.max_input_side)};
  const json& layers = field(request, "layers");
  if (!layers.is_array()) bad("'layers' must be an array");
  if (static_cast<int64_t>(layers.size()) > limits_.max_layers) {
    bad("at most " + std::to_string(limits_.max_layers) + " layers");
  }
  return library([&] {
    // Build the stack, each layer taking its input size from the one before, as the page edits it.
    Sequential seq;
    Shape shape = in;
    const int64_t m = limits_.max_option;
    for (std::size_t i = 0; i < layers.size(); ++i) {
      std::shared_ptr<Module> mod;
      try {
        const json& l = layers[i];
        if (!l.is_object() || !l.contains("type") || !l["type"].is_string()) {
          bad("layer " + std::to_string(i + 1) + " needs a 'type'");
        }
        const std::string type = l["type"];
        Generator scratch(0);
        if (type == "Conv2d") {
          if (shape.size() != 3)
            throw Error("Conv2d needs an image input (C, H, W), got " + shape_str(shape));
          const int64_t out = integer(field(l, "out_channels"), "out_channels",
                                      -limits_.max_channels, limits_.max_channels);
          mod = std::make_shared<Conv2d>(
              Conv2dOptions(shape[0], out,
                            size2(l, "kernel_size", 3, -limits_.max_kernel, limits_.max_kernel))
                  .stride(size2(l, "stride", 1, -m, m))
                  .padding(Conv2dPadding(size2(l, "padding", 0, -m, m)))
                  .dilation(size2(l, "dilation", 1, -m, m)),
              scratch);
        } else if (type == "MaxPool2d") {
          const Size2 k = size2(l, "kernel_size", 2, -limits_.max_kernel, limits_.max_kernel);
          mod = std::make_shared<MaxPool2d>(MaxPool2dOptions(k)
                                                .stride(size2(l, "stride", k, -m, m))
                                                .padding(size2(l, "padding", 0, -m, m))
                                                .dilation(size2(l, "dilation", 1, -m, m))
                                                .ceil_mode(boolean(l, "ceil_mode")));
        } else if (type == "ReLU") {
          mod = std::make_shared<ReLU>();
        } else if (type == "Flatten") {
          mod = std::make_shared<Flatten>(1, -1);
        } else if (type == "Linear") {
          const int64_t out = integer(field(l, "out_features"), "out_features",
                                      -limits_.max_channels, limits_.max_channels);
          mod = std::make_shared<Linear>(LinearOptions(shape.back(), out), scratch);
        } else if (type == "Dropout") {
          mod = std::make_shared<Dropout>(real(l, "p", 0.5));
        } else {
          bad("layer " + std::to_string(i + 1) + ": unknown type '" + type +
              "' (Conv2d, ReLU, MaxPool2d, Flatten, Linear, Dropout)");
        }
        // The output shape of what is built so far: the next layer's input.
        Shape batched = {1};
        batched.insert(batched.end(), shape.begin(), shape.end());
        NoGradGuard no_grad;
        mod->eval();
        const Tensor y = mod->forward(Tensor(batched));
        shape.assign(y.shape().begin() + 1, y.shape().end());
      } catch (Error& e) {
        // Name the layer as the page numbers it, whether its options or its input are wrong.
        e.prepend_path("layer " + std::to_string(i + 1));
        throw;
      } catch (const ApiError& e) {
        const std::string where = "layer " + std::to_string(i + 1);
        const std::string message = e.what();
        if (message.rfind(where + " ", 0) == 0 || message.rfind(where + ":", 0) == 0)
          throw;  // named
        throw ApiError(e.status, where + ": " + message);
      }
      seq.push_back(mod);
    }
    json rows = json::array();
    int64_t total = 0;
    seq.trace_leaves(in, [&](const Module& leaf, const Tensor& y) {
      int64_t params = 0;
      for (const auto& [name, p] : leaf.own_parameters()) params += p->value.numel();
      total += params;
      Shape s = y.shape();
      s[0] = -1;
      rows.push_back({{"name", leaf.type_name() + "-" + std::to_string(rows.size() + 1)},
                      {"layer", leaf.type_name() + "(" + leaf.extra_repr() + ")"},
                      {"output_shape", s},
                      {"params", params}});
    });
    return json{{"rows", rows}, {"total_params", total}};
  });
}

json ExplorerApi::model() const {
  const std::lock_guard<std::mutex> lock(model_mutex_);
  json out = {{"summary", summary(*model_, {1, 28, 28})}, {"repr", model_->repr()}};
  const bool trained = meta_.is_object() && !meta_.empty();
  out["trained"] = trained;
  out["history"] = trained ? meta_.value("history", json::array()) : json::array();
  if (trained && meta_.contains("dataset")) out["dataset"] = meta_["dataset"];
  return out;
}

}  // namespace cnn
