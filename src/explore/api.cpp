#include "cnn/explore/api.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "cnn/error.h"
#include "cnn/explain/steps.h"
#include "cnn/io/json.h"
#include "cnn/limits.h"
#include "cnn/models/registry.h"
#include "cnn/nn/grad_mode.h"
#include "cnn/nn/layers.h"
#include "cnn/nn/spec.h"
#include "cnn/ops/conv2d.h"
#include "cnn/ops/flatten.h"
#include "cnn/ops/linear.h"
#include "cnn/ops/maxpool2d.h"
#include "cnn/summary.h"
#include "trace.h"

namespace cnn {

namespace {

using json = nlohmann::json;

using explore::bad;

const json& field(const json& request, const char* name) {
  if (!request.is_object()) bad("the request body must be a JSON object");
  if (!request.contains(name)) bad(std::string("missing field '") + name + "'");
  return request.at(name);
}

int64_t integer(const json& j, const std::string& what, int64_t lo, int64_t hi) {
  if (!j.is_number_integer()) bad("'" + what + "' must be an integer, got " + quote(j));
  // nlohmann keeps a number above INT64_MAX as unsigned; get<int64_t>() would wrap it
  // (18446744073709551615 to -1) into the range.
  const bool too_big =
      j.is_number_unsigned() &&
      j.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  const auto v = too_big ? int64_t{0} : j.get<int64_t>();
  if (too_big || v < lo || v > hi) {
    bad("'" + what + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
        ", got " + quote(j));
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
    bad(std::string("'") + name + "' must be an integer or [h, w] pair, got " + quote(j));
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
  if (!j.is_number()) bad(std::string("'") + name + "' must be a number, got " + quote(j));
  return j.get<double>();
}

// request[name], true or false; absent: false.
bool boolean(const json& request, const char* name) {
  if (!request.contains(name)) return false;
  const json& j = request.at(name);
  if (!j.is_boolean()) bad(std::string("'") + name + "' must be true or false, got " + quote(j));
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
            ", column " + std::to_string(c) + ": " + quote(row[c]));
      }
      t[r * cols + c] = row[c].get<float>();
    }
  }
  return t;
}

using explore::number;

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

// Refuses a step-through bigger than the budget before any of it is computed.
void check_taps(int64_t positions, int64_t taps_per_position, const ExplorerLimits& limits) {
  const int64_t taps = positions * taps_per_position;
  if (taps > limits.max_taps) {
    throw ApiError(
        422, "this step-through would write out " + std::to_string(taps) + " multiply-adds (" +
                 std::to_string(positions) + " outputs x " + std::to_string(taps_per_position) +
                 " taps); the explorer shows at most " + std::to_string(limits.max_taps) +
                 " (a smaller image, kernel or padding, or a larger stride)");
  }
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

// Appends j to out as dump() writes it (compact), stopping once out holds more than room bytes:
// each level adds a byte, so the recursion is at most room + 1 deep whatever the value's depth.
void render(const json& j, std::string& out, std::size_t room) {
  if (out.size() > room) return;
  if (!j.is_array() && !j.is_object()) {
    out += j.dump(-1, ' ', false, json::error_handler_t::replace);
    return;
  }
  out += j.is_array() ? '[' : '{';
  bool first = true;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (out.size() > room) return;
    if (!first) out += ',';
    first = false;
    if (j.is_object()) {
      out += json(it.key()).dump(-1, ' ', false, json::error_handler_t::replace) + ':';
    }
    render(*it, out, room);
  }
  out += j.is_array() ? ']' : '}';
}

// The parameters a layer will hold, from its options, before it is built (0 for what the
// layer's constructor refuses anyway).
int64_t conv_params(int64_t c_in, int64_t c_out, Size2 k) {
  const auto pos = [](int64_t v) { return std::max<int64_t>(v, 0); };
  return pos(c_out) * pos(c_in) * pos(k.h) * pos(k.w) + pos(c_out);
}

// A layer's output shape from its input shape (batched), by the op's shape arithmetic; a
// refusal names the layer as Module::forward would.
template <class F>
Shape output_shape(const Module& mod, F&& f) {
  try {
    return f();
  } catch (Error& e) {
    e.set_layer(mod.type_name() + "(" + mod.extra_repr() + ")");
    throw;
  }
}

}  // namespace

json parse_request(std::string_view body) {
  try {
    return parse_json(body, "request body");
  } catch (const Error& e) {
    throw ApiError(400, e.what());
  }
}

std::string quote(const json& value) {
  std::string out;
  render(value, out, limits::kExcerpt);
  if (out.size() <= limits::kExcerpt) return excerpt(out);
  out.resize(limits::kExcerpt);
  return excerpt(out) + "\xE2\x80\xA6";  // "…": cut
}

namespace {

// meta["architecture"]["input"] when it is a shape; else the tutorial's.
Shape declared_input(const json& meta) {
  if (meta.is_object() && meta.contains("architecture") && meta["architecture"].is_object()) {
    const json& input = meta["architecture"].value("input", json());
    if (input.is_array() && !input.empty() &&
        std::all_of(input.begin(), input.end(),
                    [](const json& d) { return d.is_number_integer() && d.get<int64_t>() > 0; })) {
      return input.get<Shape>();
    }
  }
  return {1, 28, 28};
}

}  // namespace

ExplorerApi::ExplorerApi(std::shared_ptr<Module> model, nlohmann::json meta, ExplorerLimits limits)
    // meta is copied, not moved: the order in which arguments are evaluated is unspecified.
    : ExplorerApi(std::move(model), declared_input(meta), meta, limits) {}

ExplorerApi::ExplorerApi(std::shared_ptr<Module> model, Shape input, nlohmann::json meta,
                         ExplorerLimits limits)
    : model_(std::move(model)), input_(std::move(input)), meta_(std::move(meta)), limits_(limits) {
  if (!model_) {
    BuiltModel built = build_model(tutorial_architecture(10));
    model_ = std::move(built.module);
    input_ = std::move(built.input);
  }
}

json ExplorerApi::conv2d_steps(const json& request) const {
  const Tensor image = grid(field(request, "image"), "image", limits_.max_grid);
  const Tensor kernel = grid(field(request, "kernel"), "kernel", limits_.max_kernel);
  const int64_t m = limits_.max_option;
  const Size2 stride = size2(request, "stride", 1, -m, m);
  const Size2 padding = size2(request, "padding", 0, -m, m);
  const Size2 dilation = size2(request, "dilation", 1, -m, m);
  Shape out;
  try {
    out = conv2d_output_shape({1, 1, image.size(0), image.size(1)},
                              {1, 1, kernel.size(0), kernel.size(1)},
                              conv2d_geometry(Size2(kernel.size(0), kernel.size(1)), stride,
                                              Conv2dPadding(padding), dilation, 1));
  } catch (const Error&) {
    // An impossible configuration: conv2d_steps gives the library's error below.
  }
  if (!out.empty()) check_taps(out[2] * out[3], kernel.numel(), limits_);
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
  Shape out;
  try {
    out = maxpool2d_output_shape({1, 1, image.size(0), image.size(1)}, g);
  } catch (const Error&) {
    // An impossible configuration: maxpool2d_steps gives the library's error below.
  }
  if (!out.empty()) check_taps(out[2] * out[3], g.kernel.h * g.kernel.w, limits_);
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
    // Each layer takes its input size from the one before, as the page edits it. The shapes come
    // from the ops' shape arithmetic: no layer is run, so the cost of a request is the parameters
    // it builds, counted from the options and refused above the budget before anything is built.
    json rows = json::array();
    int64_t total = 0;
    Shape shape = in;
    const int64_t m = limits_.max_option;
    for (std::size_t i = 0; i < layers.size(); ++i) {
      const std::string where = "layer " + std::to_string(i + 1);
      Shape batched = {1};
      batched.insert(batched.end(), shape.begin(), shape.end());
      std::shared_ptr<Module> mod;
      try {
        const json& l = layers[i];
        if (!l.is_object() || !l.contains("type") || !l["type"].is_string()) {
          bad(where + " needs a 'type'");
        }
        const std::string type = l["type"];
        Generator scratch(0);
        // The parameters the layer will hold, refused before it allocates them.
        const auto budget = [&](int64_t params) {
          if (total + params > limits_.max_params) {
            throw ApiError(422, "the layers would hold " + std::to_string(total + params) +
                                    " parameters; the explorer builds at most " +
                                    std::to_string(limits_.max_params));
          }
        };
        if (type == "Conv2d") {
          if (shape.size() != 3)
            throw Error("Conv2d needs an image input (C, H, W), got " + shape_str(shape));
          const int64_t out = integer(field(l, "out_channels"), "out_channels",
                                      -limits_.max_channels, limits_.max_channels);
          const Size2 k = size2(l, "kernel_size", 3, -limits_.max_kernel, limits_.max_kernel);
          const Size2 stride = size2(l, "stride", 1, -m, m);
          const Size2 padding = size2(l, "padding", 0, -m, m);
          const Size2 dilation = size2(l, "dilation", 1, -m, m);
          budget(conv_params(shape[0], out, k));
          auto conv = std::make_shared<Conv2d>(Conv2dOptions(shape[0], out, k)
                                                   .stride(stride)
                                                   .padding(Conv2dPadding(padding))
                                                   .dilation(dilation),
                                               scratch);
          shape = output_shape(*conv, [&] {
            return conv2d_output_shape(batched, conv->weight().value.shape(), conv->geometry());
          });
          mod = conv;
        } else if (type == "MaxPool2d") {
          const Size2 k = size2(l, "kernel_size", 2, -limits_.max_kernel, limits_.max_kernel);
          auto pool = std::make_shared<MaxPool2d>(MaxPool2dOptions(k)
                                                      .stride(size2(l, "stride", k, -m, m))
                                                      .padding(size2(l, "padding", 0, -m, m))
                                                      .dilation(size2(l, "dilation", 1, -m, m))
                                                      .ceil_mode(boolean(l, "ceil_mode")));
          shape = output_shape(*pool,
                               [&] { return maxpool2d_output_shape(batched, pool->geometry()); });
          mod = pool;
        } else if (type == "ReLU") {
          mod = std::make_shared<ReLU>();
          shape = batched;
        } else if (type == "Flatten") {
          mod = std::make_shared<Flatten>(1, -1);
          shape = output_shape(*mod, [&] { return flatten_output_shape(batched, 1, -1); });
        } else if (type == "Linear") {
          const int64_t out = integer(field(l, "out_features"), "out_features",
                                      -limits_.max_channels, limits_.max_channels);
          budget(conv_params(shape.back(), out, Size2(1)));
          auto linear = std::make_shared<Linear>(LinearOptions(shape.back(), out), scratch);
          shape = output_shape(*linear, [&] {
            return linear_output_shape(batched, linear->weight().value.shape());
          });
          mod = linear;
        } else if (type == "Dropout") {
          mod = std::make_shared<Dropout>(real(l, "p", 0.5));
          shape = batched;
        } else {
          bad(where + ": unknown type '" + type +
              "' (Conv2d, ReLU, MaxPool2d, Flatten, Linear, Dropout)");
        }
      } catch (Error& e) {
        // Name the layer as the page numbers it, whether its options or its input are wrong.
        e.prepend_path(where);
        throw;
      } catch (const ApiError& e) {
        const std::string message = e.what();
        if (message.rfind(where + " ", 0) == 0 || message.rfind(where + ":", 0) == 0)
          throw;  // named
        throw ApiError(e.status, where + ": " + message);
      }
      int64_t params = 0;
      for (const auto& [name, p] : mod->own_parameters()) params += p->value.numel();
      total += params;
      Shape shown = shape;
      shown[0] = -1;
      rows.push_back({{"name", mod->type_name() + "-" + std::to_string(i + 1)},
                      {"layer", mod->type_name() + "(" + mod->extra_repr() + ")"},
                      {"output_shape", shown},
                      {"params", params}});
      shape.erase(shape.begin());  // the next layer's input, without the batch
    }
    return json{{"rows", rows}, {"total_params", total}};
  });
}

json ExplorerApi::model() const {
  const std::lock_guard<std::mutex> lock(model_mutex_);
  json out = {{"summary", summary(*model_, input_)}, {"repr", model_->repr()}, {"input", input_}};
  const bool trained = meta_.is_object() && !meta_.empty();
  out["trained"] = trained;
  out["history"] = trained ? meta_.value("history", json::array()) : json::array();
  if (trained && meta_.contains("dataset")) out["dataset"] = meta_["dataset"];
  return out;
}

namespace {

// request[name], a number in [lo, hi] ((lo, hi] when open_lo); absent: the fallback.
double number_in(const json& request, const char* name, double lo, double hi, bool open_lo,
                 double fallback) {
  if (!request.contains(name)) return fallback;
  const json& j = request.at(name);
  const double v = j.is_number() ? j.get<double>() : std::nan("");
  if (!(open_lo ? v > lo : v >= lo) || !(v <= hi)) {
    bad(std::string("'") + name + "' must be a number in " + (open_lo ? "(" : "[") +
        format_number(static_cast<float>(lo)) + ", " + format_number(static_cast<float>(hi)) +
        "], got " + quote(j));
  }
  return v;
}

// What "start" (and "step", creating a run) take.
const std::vector<std::string> kRunFields = {"steps", "batch_size", "optimizer",
                                             "lr",    "seed",       "pace"};

// Refuses a field the action does not take: a misspelt "batchsize" would otherwise be a run
// with the default batch.
void only_fields(const json& request, const std::string& action,
                 const std::vector<std::string>& fields) {
  for (auto it = request.begin(); it != request.end(); ++it) {
    if (it.key() == "action" || std::find(fields.begin(), fields.end(), it.key()) != fields.end())
      continue;
    std::string list;
    for (const auto& f : fields) list += (list.empty() ? "" : ", ") + f;
    bad(quote(json(it.key())) + " is not a field of action '" + action + "'" +
        (list.empty() ? " (it takes none)" : " (its fields: " + list + ")"));
  }
}

// "pace": 0 (flat out) or [limits.min_pace, limits.max_pace] steps per second.
double pace_in(const json& request, const TrainingLimits& limits, double fallback) {
  const double pace = number_in(request, "pace", 0.0, limits.max_pace, false, fallback);
  if (pace > 0 && pace < limits.min_pace) {
    bad("'pace' must be 0 (as fast as possible) or between " + format_number(limits.min_pace) +
        " and " + format_number(limits.max_pace) + " steps per second, got " +
        quote(request["pace"]));
  }
  return pace;
}

TrainingConfig run_config(const json& request, const TrainingLimits& limits) {
  TrainingConfig c;
  if (request.contains("steps")) c.steps = integer(request["steps"], "steps", 1, limits.max_steps);
  if (request.contains("batch_size"))
    c.batch_size = integer(request["batch_size"], "batch_size", 1, limits.max_batch);
  if (request.contains("optimizer")) {
    const json& o = request["optimizer"];
    if (!o.is_string() || (o != "adam" && o != "sgd"))
      bad("'optimizer' must be \"adam\" or \"sgd\", got " + quote(o));
    c.optimizer = o.get<std::string>();
  }
  c.lr = number_in(request, "lr", 0.0, limits.max_lr, true, default_lr(c.optimizer));
  if (request.contains("seed")) {
    c.seed = static_cast<uint64_t>(
        integer(request["seed"], "seed", 0, std::numeric_limits<int64_t>::max()));
  }
  c.pace = pace_in(request, limits, c.pace);
  return c;
}

[[noreturn]] void conflict(const std::string& message) { throw ApiError(409, message); }

}  // namespace

ExplorerApi::SelectedModel ExplorerApi::select_model(const json& request) const {
  SelectedModel selected;
  const json* name = request.is_object() && request.contains("model") ? &request["model"] : nullptr;
  if (name && *name == "training") {
    selected.run_ = current_run();
    if (!selected.run_) throw ApiError(422, "no training run: start one with POST /api/train");
    selected.hold_ = std::make_unique<TrainingRun::ModelHold>(*selected.run_);
    selected.model_ = &selected.hold_->model();
    return selected;
  }
  if (name && *name != "served") {
    bad("'model' must be \"training\" (the live training run's model) or \"served\" (the "
        "default), got " +
        quote(*name));
  }
  selected.served_ = std::unique_lock<std::mutex>(model_mutex_);
  selected.model_ = model_.get();
  return selected;
}

std::shared_ptr<TrainingRun> ExplorerApi::current_run() const {
  const std::lock_guard<std::mutex> lock(run_mutex_);
  return run_;
}

std::shared_ptr<TrainingRun> ExplorerApi::new_run(const TrainingConfig& config, bool paused) {
  const std::string data_hint =
      " (cnn serve --dataset picks the data: mnist, fashion-mnist, or an image folder DIR, its "
      "images resized to the model's input; --data-dir where the IDX files are)";
  if (!train_) {
    if (!load_train_) throw ApiError(422, "no training images to train on" + data_hint);
    try {
      train_ = load_train_();
    } catch (const Error& e) {
      throw ApiError(422, std::string("cannot load the training images: ") + e.what() + data_hint);
    }
    if (!train_) throw ApiError(422, "no training images to train on" + data_hint);
  }
  // The served model describes itself (Module::config): the run builds a fresh one of it.
  json description;
  {
    const std::lock_guard<std::mutex> lock(model_mutex_);
    try {
      description = describe_model(*model_, input_);
    } catch (const Error& e) {
      throw ApiError(422, std::string("cannot train this model here: ") + e.what());
    }
  }
  try {
    return std::make_shared<TrainingRun>(description, train_, test_, config, paused,
                                         limits_.training);
  } catch (const Error& e) {
    throw ApiError(422, std::string("cannot train this model here: ") + e.what() + data_hint);
  }
}

json ExplorerApi::train(const json& request) {
  const std::lock_guard<std::mutex> lock(train_mutex_);
  const json& a = field(request, "action");
  const std::string actions = "start, pause, resume, step, set or reset";
  if (!a.is_string()) bad("'action' must be one of " + actions + ", got " + quote(a));
  const std::string action = a.get<std::string>();
  std::shared_ptr<TrainingRun> run = current_run();
  const auto replace = [&](std::shared_ptr<TrainingRun> next) {
    std::shared_ptr<TrainingRun> old;
    {
      const std::lock_guard<std::mutex> l(run_mutex_);
      old = std::exchange(run_, next);
    }
    run = std::move(next);
    // The old run's thread is joined here, outside run_mutex_ (after a step under way).
  };
  const auto no_run = [] { conflict("no training run: start one (action \"start\")"); };
  const auto ended = [&] {
    const TrainingRun::State s = run->state();
    return s == TrainingRun::State::Done || s == TrainingRun::State::Failed;
  };
  const auto over = [&] {
    const json state = run->to_json(std::numeric_limits<int64_t>::max());
    conflict(state["state"] == "done"
                 ? "the run is done (" + state["step"].dump() + " of " + state["steps"].dump() +
                       " steps): start a new one (action \"start\")"
                 : "the run failed (" + state.value("error", std::string()) +
                       "): start a new one (action \"start\")");
  };
  if (action == "start") {
    only_fields(request, action, kRunFields);
    const TrainingConfig config = run_config(request, limits_.training);
    if (run && run->state() == TrainingRun::State::Running) {
      conflict("a run is running: pause or reset it first (action \"pause\" or \"reset\")");
    }
    replace(new_run(config, false));
  } else if (action == "pause" || action == "resume") {
    only_fields(request, action, {});
    if (!run) no_run();
    if (ended()) over();
    action == "pause" ? run->pause() : run->resume();
  } else if (action == "step") {
    only_fields(request, action, kRunFields);
    if (!run) {
      replace(new_run(run_config(request, limits_.training), true));
    } else {
      for (const auto& f : kRunFields) {
        if (request.contains(f)) {
          bad("'" + f +
              "': a step continues the run with the settings it started with; start a new run "
              "to change them (action \"set\" changes lr and pace)");
        }
      }
      if (ended()) over();
      if (run->state() == TrainingRun::State::Running) {
        conflict("the run is running: pause it first (action \"pause\"), then step it");
      }
    }
    try {
      run->step();
    } catch (const Error& e) {
      conflict(e.what());
    }
  } else if (action == "set") {
    only_fields(request, action, {"lr", "pace"});
    if (!request.contains("lr") && !request.contains("pace"))
      bad("action 'set' takes 'lr' or 'pace' (or both)");
    const double nan = std::nan("");
    const double lr = number_in(request, "lr", 0.0, limits_.training.max_lr, true, nan);
    const double pace = pace_in(request, limits_.training, nan);
    if (!run) no_run();
    if (!std::isnan(lr)) run->set_lr(lr);
    if (!std::isnan(pace)) run->set_pace(pace);
  } else if (action == "reset") {
    only_fields(request, action, {});
    replace(nullptr);
  } else {
    bad("'action' must be one of " + actions + ", got " + quote(a));
  }
  return run ? run->to_json() : training(json::object());
}

json ExplorerApi::training(const json& request) const {
  if (!request.is_object()) bad("the request must be a JSON object");
  const int64_t since = request.contains("since") ? integer(request["since"], "since", 0,
                                                            std::numeric_limits<int64_t>::max())
                                                  : 0;
  if (const std::shared_ptr<TrainingRun> run = current_run()) return run->to_json(since);
  const TrainingConfig d;
  return {{"state", "none"},
          {"step", 0},
          {"steps", d.steps},
          {"lr", default_lr(d.optimizer)},
          {"batch_size", d.batch_size},
          {"optimizer", d.optimizer},
          {"seed", d.seed},
          {"pace", d.pace},
          {"history", json::array()},
          {"evals", json::array()},
          {"filters", nullptr},
          {"model", nullptr}};
}

}  // namespace cnn
