// Keras models in (cnn/io/keras_model.h): each Keras layer's config is read into the layer of
// cnn/nn/keras.h that declares it, whose build() appends the library's layers (TensorFlow's "same"
// padding, Flatten in (H, W, C) order, BatchNormalization's momentum) to a Sequential named after
// the Keras layer; the model's description is those Sequentials' own. TF.js weights are then read
// by the Keras weight names, checked against the shapes the built model expects and transposed
// from channels-last to PyTorch's layout.
#include "cnn/io/keras_model.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>

#include "cnn/error.h"
#include "cnn/io/file.h"
#include "cnn/io/json.h"
#include "cnn/limits.h"
#include "cnn/nn/keras.h"
#include "cnn/nn/layers.h"
#include "cnn/nn/spec.h"

namespace cnn {

namespace {

using nlohmann::json;

std::string quote(const json& v) {
  return excerpt(v.dump(-1, ' ', false, json::error_handler_t::replace));
}

std::string list_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// The Sequential's topology in a to_json() document or a TF.js model.json: the object whose
// class_name is "Sequential".
const json& topology(const json& doc, const std::string& source) {
  const json* t = &doc;
  if (t->is_object() && t->contains("modelTopology")) t = &(*t)["modelTopology"];
  if (t->is_object() && t->contains("model_config")) t = &(*t)["model_config"];
  if (!t->is_object() || !t->contains("class_name") || !(*t)["class_name"].is_string()) {
    throw Error(source + ": not a Keras model (no \"class_name\" in its topology)");
  }
  const std::string cls = (*t)["class_name"];
  if (cls != "Sequential") {
    throw Error(source + ": Keras model of class '" + excerpt(cls) +
                "': only Sequential models are supported");
  }
  return *t;
}

// An object's "config", or an empty object.
const json& config_of(const json& o) {
  static const json empty = json::object();
  return o.contains("config") ? o["config"] : empty;
}

// Keras's layers of a Sequential's config: {"layers": [...]} (Keras 2.2.3+, TF.js) or the list
// itself (older Keras 2).
const json& layer_list(const json& topo, const std::string& source) {
  const json& c = config_of(topo);
  if (c.is_array()) return c;
  if (c.is_object() && c.contains("layers") && c["layers"].is_array()) return c["layers"];
  throw Error(source + ": the Sequential's \"config\" has no \"layers\" array");
}

// Reads one Keras layer's config. Keys Keras writes that do not change what the trained layer
// computes (initializers, regularizers, constraints, trainable, dtype) are ignored.
class KerasArgs {
 public:
  explicit KerasArgs(const json& c) : c_(c) {}
  bool has(const std::string& k) const { return c_.contains(k) && !c_[k].is_null(); }
  int64_t integer(const std::string& k, int64_t fallback, int64_t lo, int64_t hi) const {
    if (!has(k)) return fallback;
    return check_int(k, c_[k], lo, hi);
  }
  Size2 size2(const std::string& k, Size2 fallback, int64_t lo = 1,
              int64_t hi = int64_t{1} << 20) const {
    if (!has(k)) return fallback;
    const json& v = c_[k];
    if (v.is_array()) {
      if (v.size() == 1) return Size2(check_int(k, v[0], lo, hi));
      if (v.size() != 2) throw Error("'" + k + "' must be an integer or a pair, got " + quote(v));
      return Size2(check_int(k, v[0], lo, hi), check_int(k, v[1], lo, hi));
    }
    return Size2(check_int(k, v, lo, hi));
  }
  std::optional<Size2> optional_size2(const std::string& k) const {
    if (!has(k)) return std::nullopt;
    return size2(k, Size2(1));
  }
  bool boolean(const std::string& k, bool fallback) const {
    if (!has(k)) return fallback;
    if (!c_[k].is_boolean()) throw Error("'" + k + "' must be true or false, got " + quote(c_[k]));
    return c_[k].get<bool>();
  }
  double number(const std::string& k, double fallback) const {
    if (!has(k)) return fallback;
    if (!c_[k].is_number()) throw Error("'" + k + "' must be a number, got " + quote(c_[k]));
    return c_[k].get<double>();
  }
  std::string string(const std::string& k, const std::string& fallback) const {
    if (!has(k)) return fallback;
    if (!c_[k].is_string()) throw Error("'" + k + "' must be a string, got " + quote(c_[k]));
    return excerpt(c_[k].get<std::string>());
  }
  // data_format: channels_last (or absent: Keras's default, image_data_format()).
  void channels_last() const {
    const std::string f = string("data_format", "channels_last");
    if (f != "channels_last") {
      throw Error("data_format '" + f + "' is not supported (channels_last only)");
    }
  }
  // Options that would change what the layer computes, refused unless absent, null or `ok`.
  void refuse_unless(const std::string& k, const json& ok) const {
    if (has(k) && c_[k] != ok) throw Error("'" + k + "' " + quote(c_[k]) + " is not supported");
  }

 private:
  static int64_t check_int(const std::string& k, const json& v, int64_t lo, int64_t hi) {
    if (!v.is_number_integer() ||
        (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))) {
      throw Error("'" + k + "' must be an integer, got " + quote(v));
    }
    const int64_t x = v.get<int64_t>();
    if (x < lo || x > hi) {
      throw Error("'" + k + "' must be in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                  "], got " + std::to_string(x));
    }
    return x;
  }
  const json& c_;
};

int64_t checked_product(std::initializer_list<int64_t> factors, int64_t limit,
                        const std::string& what) {
  int64_t p = 1;
  for (const int64_t f : factors) {
    if (f < 0 || (f != 0 && p > limit / f)) {
      throw Error(what + " is more than the limit of " + std::to_string(limit) + " (cnn/limits.h)");
    }
    p *= f;
  }
  return p;
}

// One Keras layer converted: its keras.h declaration and the parameters it will allocate (counted
// before build() allocates them).
struct Declared {
  keras::AnyLayer layer;
  int64_t parameters = 0;
};

Declared declare(const std::string& cls, const KerasArgs& a, const Shape& in) {
  const auto activation = [&] { return a.string("activation", "linear"); };
  if (cls == "Conv2D") {
    a.channels_last();
    const int64_t filters = a.integer("filters", -1, 1, limits::kMaxActivationElements);
    if (filters < 0) throw Error("missing 'filters'");
    if (!a.has("kernel_size")) throw Error("missing 'kernel_size'");
    const Size2 k = a.size2("kernel_size", Size2(1));
    const int64_t groups = a.integer("groups", 1, 1, limits::kMaxActivationElements);
    const bool bias = a.boolean("use_bias", true);
    const int64_t in_c = in.size() == 4 ? in[1] : 1;
    const int64_t params =
        checked_product({filters, in_c / groups, k.h, k.w}, limits::kMaxParameters, "the kernel");
    keras::Conv2D c(filters, k, a.size2("strides", Size2(1)), a.string("padding", "valid"),
                    activation());
    c.dilation_rate(a.size2("dilation_rate", Size2(1))).groups(groups).use_bias(bias);
    return {c, params + (bias ? filters : 0)};
  }
  if (cls == "Dense") {
    const int64_t units = a.integer("units", -1, 1, limits::kMaxParameters);
    if (units < 0) throw Error("missing 'units'");
    const bool bias = a.boolean("use_bias", true);
    const int64_t params =
        checked_product({in.back(), units}, limits::kMaxParameters, "the kernel");
    return {keras::Dense(units, activation(), bias), params + (bias ? units : 0)};
  }
  if (cls == "MaxPooling2D" || cls == "AveragePooling2D") {
    a.channels_last();
    const Size2 pool = a.size2("pool_size", Size2(2));
    const std::optional<Size2> strides = a.optional_size2("strides");
    const std::string padding = a.string("padding", "valid");
    if (cls == "MaxPooling2D") return {keras::MaxPooling2D(pool, strides, padding)};
    return {keras::AveragePooling2D(pool, strides, padding)};
  }
  if (cls == "GlobalAveragePooling2D") {
    a.channels_last();
    a.refuse_unless("keepdims", false);
    return {keras::GlobalAveragePooling2D()};
  }
  if (cls == "Flatten") {
    a.channels_last();
    return {keras::Flatten()};
  }
  if (cls == "Dropout") {
    a.refuse_unless("noise_shape", json());
    const double rate = a.number("rate", -1.0);
    if (!(rate >= 0.0 && rate < 1.0)) throw Error("'rate' must be in [0, 1)");
    return {keras::Dropout(rate)};
  }
  if (cls == "BatchNormalization") {
    int64_t axis = -1;
    if (a.has("axis")) {
      // Keras 2.x writes an int; TF.js and some Keras 2 versions a one-element list.
      const Size2 ax = a.size2("axis", Size2(-1), -4, 4);
      if (ax.h != ax.w) throw Error("'axis' must be one axis (-1 or 3)");
      axis = ax.h;
    }
    a.refuse_unless("renorm", false);
    a.refuse_unless("virtual_batch_size", json());
    a.refuse_unless("adjustment", json());
    const double eps = a.number("epsilon", 1e-3);
    if (!(eps > 0.0)) throw Error("'epsilon' must be positive");
    const bool center = a.boolean("center", true), scale = a.boolean("scale", true);
    const int64_t c = in.size() == 4 ? in[1] : 0;
    return {keras::BatchNormalization(axis, a.number("momentum", 0.99), eps, center, scale),
            center ? 2 * c : 0};
  }
  if (cls == "Activation") {
    if (!a.has("activation")) throw Error("missing 'activation'");
    return {keras::Activation(activation())};
  }
  if (cls == "LeakyReLU") {
    // Keras 2's alpha, Keras 3's negative_slope; 0.3 by default in both.
    return {keras::LeakyReLU(a.number("negative_slope", a.number("alpha", 0.3)))};
  }
  if (cls == "ZeroPadding2D") {
    a.channels_last();
    return {keras::ZeroPadding2D(a.size2("padding", Size2(1), 0))};
  }
  throw Error("layer class '" + excerpt(cls) +
              "' is not supported (InputLayer, Conv2D, MaxPooling2D, AveragePooling2D, "
              "GlobalAveragePooling2D, Flatten, Dense, Dropout, BatchNormalization, Activation, "
              "LeakyReLU, ZeroPadding2D)");
}

// The (H, W, C) or (F,) sample shape of a batch_input_shape / batch_shape ([null, ...]).
std::vector<int64_t> input_of(const json& c) {
  const json& s = c.contains("batch_input_shape") ? c["batch_input_shape"] : c["batch_shape"];
  if (!s.is_array() || s.size() < 2 || s.size() > 4) {
    throw Error("the input shape must be [null, H, W, C] or [null, F], got " + quote(s));
  }
  std::vector<int64_t> shape;
  int64_t n = 1;
  for (std::size_t i = 1; i < s.size(); ++i) {
    if (!s[i].is_number_integer() || s[i].get<int64_t>() <= 0 ||
        (s[i].is_number_unsigned() && s[i].get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))) {
      throw Error("the input shape must hold positive integers after the batch, got " + quote(s));
    }
    const int64_t x = s[i].get<int64_t>();
    if (x > limits::kMaxActivationElements / n) {
      throw Error("the input shape " + quote(s) + " has more than " +
                  std::to_string(limits::kMaxActivationElements) + " elements (cnn/limits.h)");
    }
    n *= x;
    shape.push_back(x);
  }
  return shape;
}

// A converted layer: where its weights go.
struct LayerInfo {
  std::string name, cls;
  bool has_modules = false;  // a child of that name exists in the description
};

struct Converted {
  json description;
  std::vector<LayerInfo> layers;
  BuiltModel built;  // the description built by build_model, its checks passed
};

Converted convert(const json& doc, const std::string& source) {
  const json& topo = topology(doc, source);
  const json& list = layer_list(topo, source);
  if (list.empty()) throw Error(source + ": the Sequential has no layers");
  if (list.size() > static_cast<std::size_t>(limits::kMaxLayers)) {
    throw Error(source + ": more than " + std::to_string(limits::kMaxLayers) +
                " layers (the limit, cnn/limits.h)");
  }
  Converted out;
  std::optional<std::vector<int64_t>> input;
  std::set<std::string> names;
  Generator gen(0);  // the weights built here are thrown away: only the description is kept
  Shape shape;
  std::optional<Size2> pending;
  bool non_negative = false;
  int64_t parameters = 0;
  json children = json::array();
  const auto set_input = [&](const json& c) {
    input = input_of(c);
    shape = {1};
    const Shape cf = keras::channels_first(*input);
    shape.insert(shape.end(), cf.begin(), cf.end());
  };
  // A Sequential built by model.build(shape) without an InputLayer says it here (Keras 2.x).
  if (const json& top = config_of(topo);
      top.is_object() && top.contains("build_input_shape") && !top["build_input_shape"].is_null()) {
    try {
      set_input(json{{"batch_input_shape", top["build_input_shape"]}});
    } catch (const Error& e) {
      throw Error(source + ": build_input_shape: " + e.what());
    }
  }
  for (std::size_t i = 0; i < list.size(); ++i) {
    const json& l = list[i];
    std::string cls = "?", name = "layer" + std::to_string(i);
    const auto where = [&] {
      return source + ": keras layer " + std::to_string(i) + " '" + name + "' (" + cls + "): ";
    };
    try {
      if (!l.is_object() || !l.contains("class_name") || !l["class_name"].is_string() ||
          (l.contains("config") && !l["config"].is_object())) {
        throw Error("a layer must be {\"class_name\": ..., \"config\": {...}}, got " + quote(l));
      }
      cls = excerpt(l["class_name"].get<std::string>());
      const json& c = config_of(l);
      if (c.contains("name") && c["name"].is_string()) name = c["name"].get<std::string>();
      if (name.empty() || name.size() > 64 || name.find_first_of(". /") != std::string::npos ||
          excerpt(name) != name) {
        name = excerpt(name);
        throw Error("the layer's name must be 1 to 64 characters without dots, spaces or '/'");
      }
      if (!names.insert(name).second) throw Error("two layers are named '" + name + "'");
      if (i == 0 || cls == "InputLayer") {
        if (c.contains("batch_input_shape") || c.contains("batch_shape")) {
          if (i > 0 && input) throw Error("only the first layer may declare the input");
          set_input(c);
        } else if (cls == "InputLayer") {
          throw Error("an InputLayer needs batch_input_shape");
        }
      }
      if (!input) {
        throw Error(
            "the model's input shape is not declared (the first layer's batch_input_shape)");
      }
      if (cls == "InputLayer") {
        if (i > 0 && !children.empty()) throw Error("an InputLayer must come first");
        out.layers.push_back({name, cls, false});
        continue;
      }
      const KerasArgs args(c);
      Declared d = declare(cls, args, shape);
      if (d.parameters > limits::kMaxParameters - parameters) {
        throw Error("this layer would bring the model to more than " +
                    std::to_string(limits::kMaxParameters) + " parameters (cnn/limits.h)");
      }
      parameters += d.parameters;
      auto child = std::make_shared<Sequential>();
      keras::BuildState s{*child, shape, gen, pending, non_negative};
      d.layer->build(s);
      shape = s.shape;
      pending = s.pending_padding;
      non_negative = s.non_negative;
      out.layers.push_back({name, cls, child->size() > 0});
      if (child->size() > 0) {
        json config = child->config();
        config.erase("name");
        json entry = {{"type", "Sequential"}, {"name", name}, {"layers", config["layers"]}};
        children.push_back(std::move(entry));
      }
    } catch (const Error& e) {
      throw Error(where() + e.what());
    }
  }
  if (pending) throw Error(source + ": a ZeroPadding2D ends the model");
  if (children.empty()) throw Error(source + ": the model has no layers besides its input");
  json& d = out.description;
  d = json::object();
  const json& c = config_of(topo);
  if (c.is_object() && c.contains("name") && c["name"].is_string() &&
      c["name"].get<std::string>().size() <= 64) {
    d["name"] = c["name"];
  }
  d["input"] = keras::channels_first(*input);
  d["layers"] = std::move(children);
  // The model factory's own checks (the sizes of activations and of im2col, cnn/limits.h), so
  // that a description returned always builds.
  out.built = build_model(d, gen, source);
  return out;
}

// ---- TF.js weights ----

std::string read_text(const std::string& path) {
  return read_file_bounded(path, limits::kMaxModelFileBytes, "a model.json");
}

// Keras's weight of a layer and where it goes in the state_dict.
struct Target {
  std::string state;  // "conv2d.0.weight"
  std::string layer, cls;
  bool filled = false;
};

// The Keras weight names ("conv2d/kernel") of each converted layer, mapped to state_dict names.
std::map<std::string, Target> targets(const Converted& conv) {
  std::map<std::string, Target> t;
  for (const LayerInfo& l : conv.layers) {
    if (!l.has_modules) continue;
    const std::string p = l.name + ".0.";
    std::vector<std::pair<std::string, std::string>> w;
    if (l.cls == "Conv2D" || l.cls == "Dense") {
      w = {{"kernel", "weight"}, {"bias", "bias"}};
    } else if (l.cls == "BatchNormalization") {
      w = {{"gamma", "weight"},
           {"beta", "bias"},
           {"moving_mean", "running_mean"},
           {"moving_variance", "running_var"}};
    }
    for (const auto& [keras_name, state] : w) {
      t[l.name + "/" + keras_name] = {p + state, l.name, l.cls, false};
    }
  }
  return t;
}

std::string plain_name(const std::string& weight) {  // "conv2d/kernel:0" -> "conv2d/kernel"
  if (weight.size() > 2 && weight.compare(weight.size() - 2, 2, ":0") == 0) {
    return weight.substr(0, weight.size() - 2);
  }
  return weight;
}

// Keras's shape of a library tensor: a Conv2d weight (O, I, KH, KW) is Keras's (KH, KW, I, O), a
// Linear weight (O, I) Keras's (I, O).
std::vector<int64_t> keras_shape(const Shape& s) {
  if (s.size() == 4) return {s[2], s[3], s[1], s[0]};
  if (s.size() == 2) return {s[1], s[0]};
  return s;
}

// Copies Keras's float32 elements (little-endian, row-major in Keras's shape) into t.
void transpose_into(Tensor& t, const unsigned char* bytes) {
  const Shape& s = t.shape();
  std::vector<float> v(static_cast<std::size_t>(t.numel()));
  std::memcpy(v.data(), bytes, v.size() * sizeof(float));
  float* out = t.data();
  if (s.size() == 4) {
    const int64_t O = s[0], I = s[1], KH = s[2], KW = s[3];
    for (int64_t kh = 0; kh < KH; ++kh)
      for (int64_t kw = 0; kw < KW; ++kw)
        for (int64_t i = 0; i < I; ++i)
          for (int64_t o = 0; o < O; ++o)
            out[((o * I + i) * KH + kh) * KW + kw] =
                v[static_cast<std::size_t>(((kh * KW + kw) * I + i) * O + o)];
  } else if (s.size() == 2) {
    const int64_t O = s[0], I = s[1];
    for (int64_t i = 0; i < I; ++i)
      for (int64_t o = 0; o < O; ++o) out[o * I + i] = v[static_cast<std::size_t>(i * O + o)];
  } else {
    std::copy(v.begin(), v.end(), out);
  }
}

bool plain_file_name(const std::string& p) {
  return !p.empty() && p != "." && p != ".." && p.size() <= 255 &&
         p.find_first_of(std::string("/\\\0", 3)) == std::string::npos;
}

}  // namespace

bool is_keras_json(const nlohmann::json& doc) {
  if (!doc.is_object()) return false;
  if (doc.contains("modelTopology") || doc.contains("weightsManifest")) return true;
  if (doc.contains("layers") || doc.contains("input")) return false;  // a description
  return doc.contains("class_name") && doc.contains("config") &&
         (doc.contains("keras_version") || doc.contains("backend") ||
          doc["class_name"] == "Sequential");
}

nlohmann::json keras_to_description(const nlohmann::json& doc, const std::string& source) {
  return convert(doc, source).description;
}

ImportedModel import_tfjs(const std::string& path) {
  const json doc = parse_json(read_text(path), path);
  if (!doc.is_object()) throw Error(path + ": not a TF.js model.json (not a JSON object)");
  if (doc.contains("format") && doc["format"] != "layers-model") {
    throw Error(path + ": TF.js format " + quote(doc["format"]) +
                " is not supported (layers-model only)");
  }
  if (!doc.contains("modelTopology")) {
    if (doc.contains("class_name")) {
      // Keras's model.to_json(): the architecture alone.
      throw Error(path +
                  ": a Keras architecture (model.to_json()) holds no weights: train it with "
                  "'cnn train --model " +
                  path + "', or give a TF.js model.json");
    }
    throw Error(path + ": not a TF.js model.json (no \"modelTopology\")");
  }
  if (!doc.contains("weightsManifest") || !doc["weightsManifest"].is_array()) {
    throw Error(path + ": no \"weightsManifest\" array");
  }
  const Converted conv = convert(doc, path);
  std::map<std::string, Tensor> state;
  for (auto& [name, t] : conv.built.module->state_dict()) state[name] = Tensor(t.shape());
  std::map<std::string, Target> want = targets(conv);
  std::erase_if(want, [&](const auto& kv) { return !state.count(kv.second.state); });
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  const std::string file = std::filesystem::path(path).filename().string();

  for (const json& group : doc["weightsManifest"]) {
    if (!group.is_object() || !group.contains("paths") || !group["paths"].is_array() ||
        !group.contains("weights") || !group["weights"].is_array()) {
      throw Error(path +
                  ": a weights manifest group must be {\"paths\": [...], \"weights\": [...]}");
    }
    // The shards: plain file names beside model.json, read as one buffer.
    std::vector<std::string> shards;
    uint64_t holds = 0;
    std::string shard_list;
    for (const json& p : group["paths"]) {
      if (!p.is_string() || !plain_file_name(p.get<std::string>())) {
        throw Error(path + ": weight shard path " + quote(p) +
                    " must be a plain file name in the model's directory");
      }
      const std::string name = p.get<std::string>();
      std::error_code ec;
      const auto size = std::filesystem::file_size(dir / name, ec);
      if (ec || !std::filesystem::is_regular_file(dir / name, ec)) {
        throw Error(path + ": weight shard '" + excerpt(name) +
                    "' is missing (no such file beside " + file + ")");
      }
      holds += size;
      shards.push_back(name);
      shard_list += (shard_list.empty() ? "" : ", ") + excerpt(name);
    }
    // The weights: names known, shapes the layers', float32; offsets in order.
    struct Spec {
      Target* target;
      uint64_t offset;
    };
    std::vector<Spec> specs;
    uint64_t declared = 0;
    for (const json& w : group["weights"]) {
      if (!w.is_object() || !w.contains("name") || !w["name"].is_string() || !w.contains("shape") ||
          !w["shape"].is_array()) {
        throw Error(path + ": a weight must be {\"name\", \"shape\", \"dtype\"}, got " + quote(w));
      }
      const std::string wname = plain_name(w["name"].get<std::string>());
      const auto it = want.find(wname);
      if (it == want.end()) {
        std::string known;
        for (const auto& [k, v] : want) known += (known.empty() ? "" : ", ") + k;
        throw Error(path + ": weight '" + excerpt(wname) + "' belongs to no layer of the model (" +
                    (known.empty() ? "it has no weights" : "its weights: " + known) + ")");
      }
      Target& t = it->second;
      const std::string where =
          path + ": keras layer '" + t.layer + "' (" + t.cls + "): weight '" + wname + "': ";
      if (t.filled) throw Error(where + "given twice in the weights manifest");
      if (w.contains("quantization")) throw Error(where + "quantized weights are not supported");
      const std::string dtype = w.value("dtype", json("float32")).is_string()
                                    ? w.value("dtype", std::string("float32"))
                                    : std::string("?");
      if (dtype != "float32") {
        throw Error(where + "dtype " + quote(w.value("dtype", json())) +
                    " is not supported (float32 only)");
      }
      std::vector<int64_t> shape;
      int64_t n = 1;
      for (const json& d : w["shape"]) {
        if (!d.is_number_integer() || d.get<int64_t>() < 0 ||
            (d.is_number_unsigned() && d.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) ||
            w["shape"].size() > 8) {
          throw Error(where + "shape " + quote(w["shape"]) + " is not a list of sizes");
        }
        const int64_t x = d.get<int64_t>();
        if (x != 0 && n > limits::kMaxTensorElements / x) {
          throw Error(where + "shape " + quote(w["shape"]) + " has more than " +
                      std::to_string(limits::kMaxTensorElements) +
                      " elements, the limit (cnn/limits.h)");
        }
        n *= x;
        shape.push_back(x);
      }
      const std::vector<int64_t> expected = keras_shape(state.at(t.state).shape());
      if (shape != expected) {
        throw Error(where + "shape " + list_str(shape) + ", the layer expects " +
                    list_str(expected));
      }
      t.filled = true;
      specs.push_back({&t, declared});
      declared += static_cast<uint64_t>(n) * 4;
      if (declared > limits::kMaxArchiveBytes) {
        throw Error(path + ": the weights manifest declares more than " +
                    std::to_string(limits::kMaxArchiveBytes) + " bytes (cnn/limits.h)");
      }
    }
    if (declared != holds) {
      throw Error(path + ": weights manifest declares " + std::to_string(declared) + " bytes in " +
                  shard_list + ", the file" + (shards.size() > 1 ? "s hold " : " holds ") +
                  std::to_string(holds));
    }
    std::vector<unsigned char> data(static_cast<std::size_t>(declared));
    std::size_t at = 0;
    for (const std::string& s : shards) {
      std::ifstream in(dir / s, std::ios::binary);
      const auto want_bytes = std::filesystem::file_size(dir / s);
      in.read(reinterpret_cast<char*>(data.data() + at), static_cast<std::streamsize>(want_bytes));
      if (static_cast<uint64_t>(in.gcount()) != want_bytes) {
        throw Error(path + ": cannot read weight shard '" + excerpt(s) + "'");
      }
      at += static_cast<std::size_t>(want_bytes);
    }
    for (const Spec& sp : specs) {
      transpose_into(state.at(sp.target->state), data.data() + sp.offset);
    }
  }
  for (const auto& [wname, t] : want) {
    if (!t.filled) {
      throw Error(path + ": keras layer '" + t.layer + "' (" + t.cls + "): weight '" + wname +
                  "' is missing from the weights manifest");
    }
  }
  // What Keras does not store: BatchNorm2d's count of batches (0: the momentum is a number, so it
  // is never read).
  for (auto& [name, t] : state) {
    const std::string suffix = ".num_batches_tracked";
    if (name.size() > suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      t.fill(0.0f);
    }
  }
  return {conv.description, std::move(state)};
}

}  // namespace cnn
