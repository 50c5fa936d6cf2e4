// The model factory: one table of layer types, each with its PyTorch argument names and a
// builder that reads them, infers what the flowing shape decides, checks what the layer will
// allocate against cnn/limits.h and constructs it.
#include "cnn/nn/spec.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include "cnn/error.h"
#include "cnn/io/file.h"
#include "cnn/io/json.h"
#include "cnn/io/keras_model.h"
#include "cnn/limits.h"
#include "cnn/models/registry.h"
#include "cnn/nn/layers.h"
#include "cnn/suggest.h"

namespace cnn {

namespace {

using nlohmann::json;

std::string shape_text(const Shape& s) {  // one sample's shape, batch dimension dropped
  std::string out = "[";
  for (std::size_t i = 1; i < s.size(); ++i) out += (i > 1 ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// " (did you mean 'kernel_size'?)" when a candidate is close, else "".
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  const std::string near = nearest(word, candidates);
  return near.empty() ? "" : " (did you mean '" + near + "'?)";
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// What a build has used so far, and where it is: errors read
// "SOURCE: layer conv1.0 (Conv2d): <what>".
struct Context {
  std::string source;
  Generator* gen = nullptr;
  int64_t parameters = 0;
  int64_t layers = 0;
  int depth = 0;

  [[noreturn]] void fail(const std::string& path, const std::string& type,
                         const std::string& what) const {
    std::string where = source + ": ";
    if (!path.empty() || !type.empty()) {
      where += "layer " + (path.empty() ? std::string("(the model)") : path);
      if (!type.empty()) where += " (" + type + ")";
      where += ": ";
    }
    throw Error(where + what);
  }
};

// One layer's config being read: typed access by PyTorch's argument names; every key read is
// marked, and finish() refuses the rest with the nearest valid name.
class Args {
 public:
  Args(const json& config, std::string path, std::string type, std::vector<std::string> allowed,
       Context& ctx)
      : c_(config),
        path_(std::move(path)),
        type_(std::move(type)),
        allowed_(std::move(allowed)),
        ctx_(ctx) {}

  [[noreturn]] void fail(const std::string& what) const { ctx_.fail(path_, type_, what); }
  const std::string& path() const { return path_; }
  Context& ctx() { return ctx_; }
  bool has(const std::string& key) const { return c_.contains(key) && !c_[key].is_null(); }
  // Given as null (PyTorch's None), which for most arguments means the default.
  bool is_null(const std::string& key) const { return c_.contains(key) && c_[key].is_null(); }

  // An integer in [lo, hi]; `fallback` when absent.
  std::optional<int64_t> integer(const std::string& key, std::optional<int64_t> fallback,
                                 int64_t lo, int64_t hi = INT64_MAX) {
    if (!has(key)) return fallback;
    const json& v = c_[key];
    const int64_t x = as_int(key, v);
    check_range(key, x, lo, hi);
    return x;
  }
  int64_t required_integer(const std::string& key, int64_t lo, int64_t hi = INT64_MAX) {
    if (!has(key)) fail("missing argument '" + key + "' (an integer)");
    return *integer(key, std::nullopt, lo, hi);
  }
  // An int or an [h, w] pair, each in [lo, hi]; Size2 remembers which, to print as PyTorch does.
  std::optional<Size2> size2(const std::string& key, std::optional<Size2> fallback, int64_t lo,
                             int64_t hi = int64_t{1} << 20) {
    if (!has(key)) return fallback;
    const json& v = c_[key];
    if (v.is_array()) {
      if (v.size() != 2) {
        fail("'" + key + "' must be an integer or a pair [h, w], got " + quote(v));
      }
      const int64_t h = as_int(key, v[0]), w = as_int(key, v[1]);
      check_range(key, h, lo, hi);
      check_range(key, w, lo, hi);
      return Size2(h, w);
    }
    const int64_t x = as_int(key, v);
    check_range(key, x, lo, hi);
    return Size2(x);
  }
  Size2 required_size2(const std::string& key, int64_t lo) {
    if (!has(key)) fail("missing argument '" + key + "' (an integer or a pair [h, w])");
    return *size2(key, std::nullopt, lo);
  }
  bool boolean(const std::string& key, bool fallback) {
    if (!has(key)) return fallback;
    const json& v = c_[key];
    if (!v.is_boolean()) fail("'" + key + "' must be true or false, got " + quote(v));
    return v.get<bool>();
  }
  double number(const std::string& key, double fallback, double lo, double hi) {
    if (!has(key)) return fallback;
    const json& v = c_[key];
    if (!v.is_number()) fail("'" + key + "' must be a number, got " + quote(v));
    const double x = v.get<double>();
    if (!(x >= lo && x <= hi)) {
      fail("'" + key + "' must be in [" + python_float(lo) + ", " + python_float(hi) + "], got " +
           quote(v));
    }
    return x;
  }
  // A string among `choices`.
  std::optional<std::string> choice(const std::string& key,
                                    const std::vector<std::string>& choices) {
    if (!has(key)) return std::nullopt;
    const json& v = c_[key];
    if (!v.is_string()) fail("'" + key + "' must be one of " + join(choices) + ", got " + quote(v));
    const std::string s = v.get<std::string>();
    if (std::find(choices.begin(), choices.end(), s) == choices.end()) {
      fail("'" + key + "' must be one of " + join(choices) + ", got " + quote(v) +
           did_you_mean(s, choices));
    }
    return s;
  }
  const json& raw(const std::string& key) const { return c_[key]; }

  // Refuses every key that is not the type's argument (nor "type" / "name").
  void finish() const {
    for (const auto& [key, value] : c_.items()) {
      if (key == "type" || key == "name") continue;
      if (std::find(allowed_.begin(), allowed_.end(), key) == allowed_.end()) {
        fail("unknown argument '" + excerpt(key) + "'" + did_you_mean(key, allowed_) +
             (allowed_.empty() ? "; it takes none" : "; it takes " + join(allowed_)));
      }
    }
  }

  static std::string quote(const json& v) {
    return excerpt(v.dump(-1, ' ', false, json::error_handler_t::replace));
  }

 private:
  int64_t as_int(const std::string& key, const json& v) const {
    if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
      fail("'" + key + "' is out of range: " + quote(v));
    }
    if (!v.is_number_integer()) fail("'" + key + "' must be an integer, got " + quote(v));
    return v.get<int64_t>();
  }
  void check_range(const std::string& key, int64_t x, int64_t lo, int64_t hi) const {
    if (x < lo)
      fail("'" + key + "' must be at least " + std::to_string(lo) + ", got " + std::to_string(x));
    if (x > hi) {
      fail("'" + key + "' is " + std::to_string(x) + ", more than the limit of " +
           std::to_string(hi));
    }
  }

  const json& c_;
  std::string path_, type_;
  std::vector<std::string> allowed_;
  Context& ctx_;
};

// ---- the checks every builder shares ----

// The input must be (N, C, H, W).
void need_image(Args& a, const Shape& in) {
  if (in.size() != 4) {
    a.fail("needs an input of shape [C, H, W]; the shape flowing in is " + shape_text(in) +
           (in.size() == 2 ? " (after a Flatten?)" : ""));
  }
}

// Counts `n` more parameters against the model's budget, before they are allocated.
void add_parameters(Args& a, int64_t n) {
  Context& ctx = a.ctx();
  if (n > limits::kMaxParameters - ctx.parameters) {
    a.fail("this layer would bring the model to more than " +
           std::to_string(limits::kMaxParameters) + " parameters, the limit (cnn/limits.h)");
  }
  ctx.parameters += n;
}

int64_t product(Args& a, std::initializer_list<int64_t> factors, const std::string& what) {
  int64_t p = 1;
  for (const int64_t f : factors) {
    if (f != 0 && p > INT64_MAX / f) a.fail(what + " overflows");
    p *= f;
  }
  return p;
}

// The in_channels / in_features / num_features a layer declares, or the one flowing in.
int64_t inferred(Args& a, const std::string& key, int64_t flowing, const std::string& what) {
  const auto declared = a.integer(key, std::nullopt, 1);
  if (declared && *declared != flowing) {
    a.fail(key + " is " + std::to_string(*declared) + " but the input has " +
           std::to_string(flowing) + " " + what + " (omit " + key + " to take it from the input)");
  }
  return flowing;
}

// ---- the layer types ----

using Builder = std::function<std::shared_ptr<Module>(Args&, const Shape&)>;

struct LayerType {
  std::vector<std::string> args;
  Builder build;
};

std::shared_ptr<Module> build_any(const json& config, Shape& shape, Context& ctx,
                                  const std::string& path);

// A padding: an int or an [h, w] pair (the same on both sides of an axis, PyTorch's), or
// [[top, bottom], [left, right]] (cnn/nn/keras.h's TensorFlow "same"): {top/left, bottom/right
// when they differ}.
struct SidePadding {
  Size2 begin;
  std::optional<Size2> end;
};
SidePadding read_padding(Args& a) {
  if (!a.has("padding")) return {Size2(0), std::nullopt};
  const json& v = a.raw("padding");
  if (!(v.is_array() && v.size() == 2 && v[0].is_array())) {
    return {*a.size2("padding", Size2(0), 0), std::nullopt};
  }
  int64_t side[2][2];
  for (int axis = 0; axis < 2; ++axis) {
    const json& pair = v[static_cast<std::size_t>(axis)];
    if (!pair.is_array() || pair.size() != 2 || !pair[0].is_number_integer() ||
        !pair[1].is_number_integer()) {
      a.fail("'padding' must be an integer, a pair [h, w] or [[top, bottom], [left, right]], got " +
             Args::quote(v));
    }
    for (int i = 0; i < 2; ++i) {
      side[axis][i] = pair[static_cast<std::size_t>(i)].get<int64_t>();
      if (side[axis][i] < 0 || side[axis][i] > (int64_t{1} << 20)) {
        a.fail("'padding' must be in [0, " + std::to_string(int64_t{1} << 20) +
               "] on every side, got " + Args::quote(v));
      }
    }
  }
  return {Size2(side[0][0], side[1][0]), Size2(side[0][1], side[1][1])};
}

std::shared_ptr<Module> build_conv2d(Args& a, const Shape& in) {
  need_image(a, in);
  const int64_t in_channels = inferred(a, "in_channels", in[1], "channels");
  const int64_t out_channels =
      a.required_integer("out_channels", 1, limits::kMaxActivationElements);
  const Size2 kernel = a.required_size2("kernel_size", 1);
  const Size2 stride = *a.size2("stride", Size2(1), 1);
  const Size2 dilation = *a.size2("dilation", Size2(1), 1);
  const int64_t groups = *a.integer("groups", 1, 1, limits::kMaxActivationElements);
  const bool bias = a.boolean("bias", true);
  Conv2dPadding padding(0);
  if (a.has("padding") && a.raw("padding").is_string()) {
    padding = Conv2dPadding(*a.choice("padding", {"same", "valid"}));
  } else {
    const SidePadding p = read_padding(a);
    padding = Conv2dPadding(p.begin);
    padding.end = p.end;
  }
  if (const auto mode = a.choice("padding_mode", {"zeros"}); mode && *mode != "zeros") {
    a.fail("padding_mode '" + *mode + "' is not supported");
  }
  if (in_channels % groups != 0) {
    a.fail("in_channels (" + std::to_string(in_channels) + ") must be divisible by groups (" +
           std::to_string(groups) + ")");
  }
  if (out_channels % groups != 0) {
    a.fail("out_channels (" + std::to_string(out_channels) + ") must be divisible by groups (" +
           std::to_string(groups) + ")");
  }
  const int64_t weights =
      product(a, {out_channels, in_channels / groups, kernel.h, kernel.w}, "the weight's size");
  add_parameters(a, weights + (bias ? out_channels : 0));
  // (The unfolded input's size is checked in build_any, once the output's size is known.)
  return std::make_shared<Conv2d>(Conv2dOptions(in_channels, out_channels, kernel)
                                      .stride(stride)
                                      .padding(padding)
                                      .dilation(dilation)
                                      .groups(groups)
                                      .bias(bias),
                                  *a.ctx().gen);
}

std::shared_ptr<Module> build_linear(Args& a, const Shape& in) {
  if (in.size() < 2)
    a.fail("needs an input with features; the shape flowing in is " + shape_text(in));
  const int64_t in_features = inferred(a, "in_features", in.back(), "features");
  const int64_t out_features = a.required_integer("out_features", 1, limits::kMaxParameters);
  const bool bias = a.boolean("bias", true);
  add_parameters(
      a, product(a, {in_features, out_features}, "the weight's size") + (bias ? out_features : 0));
  return std::make_shared<Linear>(LinearOptions(in_features, out_features).bias(bias),
                                  *a.ctx().gen);
}

std::shared_ptr<Module> build_maxpool2d(Args& a, const Shape& in) {
  need_image(a, in);
  MaxPool2dOptions o(a.required_size2("kernel_size", 1));
  if (a.has("stride")) o.stride(*a.size2("stride", std::nullopt, 1));
  const SidePadding padding = read_padding(a);
  o.padding(padding.begin).padding_end(padding.end);
  o.dilation(*a.size2("dilation", Size2(1), 1));
  o.ceil_mode(a.boolean("ceil_mode", false));
  if (a.boolean("return_indices", false)) a.fail("return_indices=true is not supported");
  return std::make_shared<MaxPool2d>(o);
}

std::shared_ptr<Module> build_relu(Args& a, const Shape&) {
  a.boolean("inplace", false);  // accepted as PyTorch's; the result is the same
  return std::make_shared<ReLU>();
}

std::shared_ptr<Module> build_flatten(Args& a, const Shape&) {
  const int64_t start = *a.integer("start_dim", 1, -64, 64);
  const int64_t end = *a.integer("end_dim", -1, -64, 64);
  // channels_last (cnn/nn/keras.h): features in H, W, C order, as Keras flattens.
  return std::make_shared<Flatten>(start, end, a.boolean("channels_last", false));
}

std::shared_ptr<Module> build_dropout(Args& a, const Shape&) {
  a.boolean("inplace", false);
  return std::make_shared<Dropout>(a.number("p", 0.5, 0.0, 1.0), *a.ctx().gen);
}

std::shared_ptr<Module> build_softmax(Args& a, const Shape&) {
  return std::make_shared<Softmax>(a.required_integer("dim", -64, 64));
}

std::shared_ptr<Module> build_log_softmax(Args& a, const Shape&) {
  return std::make_shared<LogSoftmax>(a.required_integer("dim", -64, 64));
}

std::shared_ptr<Module> build_tanh(Args&, const Shape&) { return std::make_shared<Tanh>(); }

std::shared_ptr<Module> build_sigmoid(Args&, const Shape&) { return std::make_shared<Sigmoid>(); }

std::shared_ptr<Module> build_leaky_relu(Args& a, const Shape&) {
  a.boolean("inplace", false);  // accepted as PyTorch's; the result is the same
  return std::make_shared<LeakyReLU>(a.number("negative_slope", 0.01, -HUGE_VAL, HUGE_VAL));
}

std::shared_ptr<Module> build_gelu(Args& a, const Shape&) {
  return std::make_shared<GELU>(a.choice("approximate", {"none", "tanh"}).value_or("none"));
}

std::shared_ptr<Module> build_silu(Args& a, const Shape&) {
  a.boolean("inplace", false);
  return std::make_shared<SiLU>();
}

std::shared_ptr<Module> build_identity(Args&, const Shape&) { return std::make_shared<Identity>(); }

std::shared_ptr<Module> build_avgpool2d(Args& a, const Shape& in) {
  need_image(a, in);
  AvgPool2dOptions o(a.required_size2("kernel_size", 1));
  if (a.has("stride")) o.stride(*a.size2("stride", std::nullopt, 1));
  const SidePadding padding = read_padding(a);
  o.padding(padding.begin).padding_end(padding.end);
  o.ceil_mode(a.boolean("ceil_mode", false));
  o.count_include_pad(a.boolean("count_include_pad", true));
  if (a.has("divisor_override")) {
    const int64_t d = *a.integer("divisor_override", std::nullopt, INT32_MIN, INT32_MAX);
    if (d == 0) a.fail("'divisor_override' must not be 0");
    o.divisor_override(d);
  }
  // (padding <= kernel_size / 2 is the layer's own check, PyTorch's message.)
  return std::make_shared<AvgPool2d>(o);
}

std::shared_ptr<Module> build_adaptive_avgpool2d(Args& a, const Shape& in) {
  need_image(a, in);
  return std::make_shared<AdaptiveAvgPool2d>(a.required_size2("output_size", 1));
}

std::shared_ptr<Module> build_batchnorm2d(Args& a, const Shape& in) {
  need_image(a, in);
  const int64_t num_features = inferred(a, "num_features", in[1], "channels");
  const double eps = a.number("eps", 1e-5, -HUGE_VAL, HUGE_VAL);
  if (!(eps > 0.0)) a.fail("'eps' must be positive, got " + python_float(eps));
  if (a.is_null("momentum")) {
    a.fail(
        "momentum null (PyTorch's None: a cumulative moving average) is not supported; give "
        "a number in [0, 1] (PyTorch's default is 0.1)");
  }
  const double momentum = a.number("momentum", 0.1, 0.0, 1.0);
  const bool affine = a.boolean("affine", true);
  const bool track = a.boolean("track_running_stats", true);
  add_parameters(a, affine ? product(a, {2, num_features}, "the parameters' size") : 0);
  return std::make_shared<BatchNorm2d>(BatchNorm2dOptions(num_features)
                                           .eps(eps)
                                           .momentum(momentum)
                                           .affine(affine)
                                           .track_running_stats(track));
}

const std::map<std::string, LayerType>& types() {
  static const std::map<std::string, LayerType> table = {
      {"Conv2d",
       {{"in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
         "bias", "padding_mode"},
        build_conv2d}},
      {"Linear", {{"in_features", "out_features", "bias"}, build_linear}},
      {"MaxPool2d",
       {{"kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"},
        build_maxpool2d}},
      {"ReLU", {{"inplace"}, build_relu}},
      {"Flatten", {{"start_dim", "end_dim", "channels_last"}, build_flatten}},
      {"Dropout", {{"p", "inplace"}, build_dropout}},
      {"Softmax", {{"dim"}, build_softmax}},
      {"LogSoftmax", {{"dim"}, build_log_softmax}},
      {"Tanh", {{}, build_tanh}},
      {"Sigmoid", {{}, build_sigmoid}},
      {"LeakyReLU", {{"negative_slope", "inplace"}, build_leaky_relu}},
      {"GELU", {{"approximate"}, build_gelu}},
      {"SiLU", {{"inplace"}, build_silu}},
      {"Identity", {{}, build_identity}},
      {"AvgPool2d",
       {{"kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"},
        build_avgpool2d}},
      {"AdaptiveAvgPool2d", {{"output_size"}, build_adaptive_avgpool2d}},
      {"BatchNorm2d",
       {{"num_features", "eps", "momentum", "affine", "track_running_stats"}, build_batchnorm2d}},
      {"Sequential", {{"layers"}, nullptr}},  // built by build_sequential
  };
  return table;
}

std::vector<std::string> type_names() {
  std::vector<std::string> names;
  for (const auto& [name, t] : types()) names.push_back(name);
  return names;
}

std::string child_path(const std::string& parent, const std::string& name) {
  return parent.empty() ? name : parent + "." + name;
}

// The children of a Sequential (or the model's top level) from a "layers" array.
void build_children(Sequential& seq, const json& layers, Shape& shape, Context& ctx,
                    const std::string& path, const std::string& type) {
  if (!layers.is_array()) {
    ctx.fail(path, type, "\"layers\" must be an array of layers, got " + Args::quote(layers));
  }
  if (++ctx.depth > limits::kMaxModelDepth) {
    ctx.fail(path, type,
             "containers nested deeper than " + std::to_string(limits::kMaxModelDepth) +
                 " levels (the limit, cnn/limits.h)");
  }
  std::set<std::string> names;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const json& child = layers[i];
    std::string name = std::to_string(i);
    if (child.is_object() && child.contains("name") && !child["name"].is_null()) {
      const json& n = child["name"];
      if (!n.is_string() || n.get<std::string>().empty() ||
          n.get<std::string>().find_first_of(". ") != std::string::npos) {
        ctx.fail(
            child_path(path, name), "",
            "\"name\" must be a non-empty string without dots or spaces, got " + Args::quote(n));
      }
      name = n.get<std::string>();
      if (name.size() > 64)
        ctx.fail(child_path(path, std::to_string(i)), "", "\"name\" is longer than 64 characters");
    }
    if (!names.insert(name).second) {
      ctx.fail(child_path(path, name), "", "two layers are named '" + name + "'");
    }
    seq.push_back(name, build_any(child, shape, ctx, child_path(path, name)));
  }
  --ctx.depth;
}

std::shared_ptr<Module> build_any(const json& config, Shape& shape, Context& ctx,
                                  const std::string& path) {
  if (!config.is_object()) {
    ctx.fail(path, "",
             "a layer must be an object {\"type\": ..., ...}, got " + Args::quote(config));
  }
  if (!config.contains("type") || !config["type"].is_string()) {
    ctx.fail(path, "",
             "a layer needs a \"type\" (a PyTorch class name: " + join(type_names()) + ")" +
                 (config.contains("type") ? ", got " + Args::quote(config["type"]) : ""));
  }
  const std::string type = config["type"];
  const auto it = types().find(type);
  if (it == types().end()) {
    ctx.fail(path, "",
             "unknown layer type '" + excerpt(type) + "'" + did_you_mean(type, type_names()) +
                 "; the types are " + join(type_names()));
  }
  if (++ctx.layers > limits::kMaxLayers) {
    ctx.fail(
        path, type,
        "more than " + std::to_string(limits::kMaxLayers) + " layers (the limit, cnn/limits.h)");
  }
  Args args(config, path, type, it->second.args, ctx);
  args.finish();
  if (type == "Sequential") {
    if (!config.contains("layers")) ctx.fail(path, type, "missing \"layers\" (an array of layers)");
    auto seq = std::make_shared<Sequential>();
    build_children(*seq, config["layers"], shape, ctx, path, type);
    return seq;
  }
  std::shared_ptr<Module> layer;
  try {
    layer = it->second.build(args, shape);
    shape = layer->output_shape(shape);
  } catch (const Error& e) {
    if (std::string_view(e.what()).rfind(ctx.source + ": ", 0) == 0) throw;  // ctx.fail's
    // The layer's own checks (PyTorch's messages): say where it is and what flowed in.
    ctx.fail(path, type, e.detail() + " (the shape flowing in is " + shape_text(shape) + ")");
  }
  int64_t out = 1;
  for (std::size_t i = 1; i < shape.size(); ++i) out = checked_mul(out, shape[i], "output size");
  if (out > limits::kMaxActivationElements) {
    ctx.fail(path, type,
             "its output " + shape_text(shape) + " has " + std::to_string(out) +
                 " elements an image, more than the limit of " +
                 std::to_string(limits::kMaxActivationElements) + " (cnn/limits.h)");
  }
  if (out == 0) ctx.fail(path, type, "its output " + shape_text(shape) + " is empty");
  if (const auto* conv = dynamic_cast<const Conv2d*>(layer.get())) {
    // The unfolded input of one image: (C_in / groups) x K_h x K_w per output pixel.
    const auto& o = conv->options();
    const int64_t cols = checked_mul(
        checked_mul(o.in_channels() / o.groups(),
                    checked_mul(o.kernel_size().h, o.kernel_size().w, "im2col"), "im2col"),
        checked_mul(shape[2], shape[3], "im2col"), "im2col");
    if (cols > limits::kMaxActivationElements) {
      ctx.fail(path, type,
               "unfolding one image's input takes " + std::to_string(cols) +
                   " elements, more than the limit of " +
                   std::to_string(limits::kMaxActivationElements) + " (cnn/limits.h)");
    }
  }
  return layer;
}

// The input shape of a description, [C, H, W] or [F], each positive, with batch 1 in front.
Shape read_input(const json& d, Context& ctx) {
  if (!d.contains("input")) {
    ctx.fail("", "", "missing \"input\": one sample's shape, [channels, height, width]");
  }
  const json& in = d["input"];
  if (!in.is_array() || in.empty() || in.size() > 3) {
    ctx.fail("", "",
             "\"input\" must be [channels, height, width] (or [features]), got " + Args::quote(in));
  }
  Shape shape = {1};
  int64_t n = 1;
  for (const json& v : in) {
    if (!v.is_number_integer() || v.get<int64_t>() <= 0 ||
        (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))) {
      ctx.fail("", "", "\"input\" must hold positive integers, got " + Args::quote(in));
    }
    const int64_t x = v.get<int64_t>();
    if (x > limits::kMaxActivationElements / n) {
      ctx.fail("", "",
               "\"input\" " + Args::quote(in) + " has more than " +
                   std::to_string(limits::kMaxActivationElements) +
                   " elements, the limit (cnn/limits.h)");
    }
    n *= x;
    shape.push_back(x);
  }
  return shape;
}

}  // namespace

std::vector<std::string> layer_types() {
  auto names = type_names();
  return names;
}

std::shared_ptr<Module> build_layer(const nlohmann::json& config, Shape& input, Generator& gen,
                                    const std::string& source) {
  Context ctx{source, &gen};
  return build_any(config, input, ctx, "");
}

BuiltModel build_model(const nlohmann::json& description, Generator& gen,
                       const std::string& source) {
  Context ctx{source, &gen};
  if (!description.is_object()) {
    ctx.fail("", "",
             "a model is an object {\"input\": [C, H, W], \"layers\": [...]}, got " +
                 Args::quote(description));
  }
  // A version-1 checkpoint's architecture: the tutorial by name, with its number of classes.
  if (!description.contains("layers") && description.contains("name") &&
      description["name"] == "tutorial") {
    json d = shipped_model("tutorial");
    const json n = description.value("num_classes", json(10));
    if (!n.is_number_integer() || n.get<int64_t>() <= 0 ||
        (n.is_number_unsigned() && n.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))) {
      ctx.fail("", "", "num_classes must be a positive integer, got " + Args::quote(n));
    }
    if (n.get<int64_t>() > limits::kMaxClasses) {
      ctx.fail("", "",
               "num_classes " + std::to_string(n.get<int64_t>()) + " is more than the limit of " +
                   std::to_string(limits::kMaxClasses) + " (cnn/limits.h)");
    }
    d["layers"].back()["layers"].back()["out_features"] = n;
    return build_model(d, gen, source);
  }
  for (const auto& [key, value] : description.items()) {
    if (key != "name" && key != "input" && key != "layers") {
      ctx.fail("", "",
               "unknown key '" + excerpt(key) + "'" +
                   did_you_mean(key, {"name", "input", "layers"}) +
                   "; a model has \"name\", \"input\" and \"layers\"");
    }
  }
  BuiltModel m;
  if (description.contains("name")) {
    const json& n = description["name"];
    if (!n.is_string() || n.get<std::string>().size() > 64) {
      ctx.fail("", "", "\"name\" must be a string of at most 64 characters, got " + Args::quote(n));
    }
    m.name = n.get<std::string>();
  }
  Shape shape = read_input(description, ctx);
  m.input.assign(shape.begin() + 1, shape.end());
  if (!description.contains("layers")) {
    ctx.fail("", "", "missing \"layers\": the model's layers, [{\"type\": \"Conv2d\", ...}, ...]");
  }
  m.module = std::make_shared<Sequential>();
  m.module->set_name(m.name);
  build_children(*m.module, description["layers"], shape, ctx, "", "");
  if (m.module->size() == 0) ctx.fail("", "", "\"layers\" is empty");
  m.output.assign(shape.begin() + 1, shape.end());
  m.parameters = ctx.parameters;
  return m;
}

nlohmann::json describe_model(const Module& model, const Shape& input) {
  json c = model.config();
  json d = json::object();
  if (c["type"] == "Sequential") {
    if (c.contains("name")) d["name"] = c["name"];
    d["input"] = input;
    d["layers"] = c["layers"];
  } else {
    d["input"] = input;
    d["layers"] = json::array({c});
  }
  return d;
}

nlohmann::json read_model_file(const std::string& path) {
  const std::string text = read_file_bounded(path, limits::kMaxModelFileBytes, "a model file");
  json doc = parse_json(text, path);
  // A Keras model's JSON (to_json(), or a TF.js model.json) declares the same things in Keras's
  // terms: it becomes the library's description (cnn/io/keras_model.h).
  if (is_keras_json(doc)) return keras_to_description(doc, path);
  return doc;
}

}  // namespace cnn
