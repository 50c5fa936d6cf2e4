// ONNX import (cnn/io/onnx.h): a chain graph of the supported ops becomes a model description
// (cnn/nn/spec.h) and its state_dict.
//
// The file is untrusted: its size is checked before it is read, protobuf parses it under a byte
// limit, every count, dimension and tensor size is checked (overflow-safe) before anything is
// allocated, and every name a node reads must be a graph input, an initializer, a Constant's or an
// earlier node's output (ONNX requires nodes in topological order, so a cycle is a node reading a
// value no earlier node made). The graph is then walked from its one input: each step consumes the
// current value by one node (or one of the patterns below) and emits one layer. A value read by
// two nodes outside a pattern is a branch, refused.
//
// Patterns (the ones torch.onnx.export 1.13 writes, and cnn's exporter, src/io/onnx_export.cpp):
//   GELU        Div(x, sqrt 2) -> Erf -> Add(1) -> Mul(x, .) -> Mul(0.5) (either operand order)
//   SiLU        Sigmoid(x) -> Mul(x, sigmoid)
//   Flatten(channels_last)   Transpose(perm 0,2,3,1) -> Flatten(axis 1)
//   Linear      MatMul(x, W) [-> Add(., b)], Gemm
//   Flatten     Flatten(axis 1); Reshape(x, [0 | -1 | N, -1 | features]), the shape a constant or
//               torch's Shape -> Gather(0) -> Unsqueeze -> Concat([., -1]) of x
//   AvgPool2d(count_include_pad)   Pad(constant 0, spatial) -> AveragePool
//
// Names. Each layer's path comes from cnn's node names ("conv1.0", "conv1.0/Erf"), or torch's
// ("/conv1/conv1.0/Conv": the scope before the op), or its weights' initializer names
// ("conv1.0.weight"). When every layer has a path and the paths form a tree of contiguous groups,
// the description nests Sequentials by them, so the state_dict names are the file's; otherwise the
// layers are a flat list numbered as PyTorch numbers them.
#include <google/protobuf/io/coded_stream.h>
#include <onnx/onnx_pb.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>

#include "cnn/error.h"
#include "cnn/io/file.h"
#include "cnn/io/onnx.h"
#include "cnn/limits.h"
#include "cnn/nn/spec.h"

namespace cnn {

namespace {

using nlohmann::json;

const std::vector<std::string>& supported_ops() {
  static const std::vector<std::string> ops = {"AveragePool", "BatchNormalization",
                                               "Concat",      "Constant",
                                               "Conv",        "Div",
                                               "Dropout",     "Erf",
                                               "Flatten",     "Gather",
                                               "Gemm",        "GlobalAveragePool",
                                               "Identity",    "LeakyRelu",
                                               "LogSoftmax",  "MatMul",
                                               "MaxPool",     "Mul",
                                               "Add",         "Pad",
                                               "Relu",        "Reshape",
                                               "Shape",       "Sigmoid",
                                               "Softmax",     "Tanh",
                                               "Transpose",   "Unsqueeze"};
  return ops;
}

std::string ops_list() {
  std::vector<std::string> ops = supported_ops();
  std::sort(ops.begin(), ops.end());
  std::string s;
  for (const auto& op : ops) s += (s.empty() ? "" : ", ") + op;
  return s;
}

// A float that ONNX stores in float32 as the shortest decimal that reads back as it (0.1f is
// 0.1, not 0.100000001490116), so that a description read back equals the one written.
double shortest(float f) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, f);
  double d = 0;
  std::from_chars(buf, r.ptr, d);
  return d;
}

// A constant tensor of the file: float32 values or int64 values, and its shape.
struct Const {
  Shape shape;
  std::vector<float> f;
  std::vector<int64_t> i;
  bool is_float = true;
  int64_t numel() const { return is_float ? (int64_t)f.size() : (int64_t)i.size(); }
};

class Importer {
 public:
  Importer(const onnx::ModelProto& model, std::string source)
      : m_(model), g_(model.graph()), source_(std::move(source)) {}

  ImportedModel run();

 private:
  [[noreturn]] void fail(const std::string& what) const { throw Error(source_ + ": " + what); }
  [[noreturn]] void fail_node(const onnx::NodeProto& n, const std::string& what) const {
    throw Error(source_ + ": node '" + excerpt(n.name()) + "' (" + excerpt(n.op_type()) +
                "): " + what);
  }

  Const read_tensor(const onnx::TensorProto& t, const std::string& what) const;
  void check_model();
  void index_graph();
  const Const* constant(const std::string& name) const {
    auto it = consts_.find(name);
    return it == consts_.end() ? nullptr : &it->second;
  }
  const Const& need_const(const onnx::NodeProto& n, int input, const std::string& what) const;
  float scalar(const onnx::NodeProto& n, int input, const std::string& what) const;
  // The nodes that read `value` (Constant nodes and values never count).
  const std::vector<int>& readers(const std::string& value) const {
    static const std::vector<int> none;
    auto it = readers_.find(value);
    return it == readers_.end() ? none : it->second;
  }
  // The one node that reads `value` and nothing else reads it, or -1 at the graph's output.
  int sole_reader(const std::string& value) const;
  const onnx::NodeProto& node(int i) const { return g_.node(i); }

  // Attributes.
  const onnx::AttributeProto* attr(const onnx::NodeProto& n, const std::string& name) const;
  int64_t attr_int(const onnx::NodeProto& n, const std::string& name, int64_t def) const;
  float attr_float(const onnx::NodeProto& n, const std::string& name, float def) const;
  std::vector<int64_t> attr_ints(const onnx::NodeProto& n, const std::string& name,
                                 std::vector<int64_t> def) const;
  std::string attr_string(const onnx::NodeProto& n, const std::string& name,
                          const std::string& def) const;
  void only_attrs(const onnx::NodeProto& n, const std::set<std::string>& known) const;

  // The layers.
  void emit(const onnx::NodeProto& first, json layer, const std::string& weight_prefix,
            std::map<std::string, Tensor> weights = {});
  std::string layer_path(const onnx::NodeProto& n) const;
  json padding_json(const onnx::NodeProto& n, int64_t t, int64_t l, int64_t b, int64_t r) const;
  std::vector<int64_t> spatial_pads(const onnx::NodeProto& n, const Shape& kernel,
                                    const Shape& stride, const Shape& dilation) const;
  void step(int i);  // converts node i, which reads current_ (or the pattern it starts)
  void convert(const onnx::NodeProto& n);  // one node reading current_
  std::string out_of(const onnx::NodeProto& x) const;
  std::optional<std::vector<int64_t>> shape_value(const std::string& value, int depth = 0) const;
  json describe();

  const onnx::ModelProto& m_;
  const onnx::GraphProto& g_;
  std::string source_;
  int64_t opset_ = 0;
  std::map<std::string, Const> consts_;              // initializers and Constant outputs
  std::map<std::string, int> producer_;              // value -> node index
  std::map<std::string, std::vector<int>> readers_;  // value -> reading nodes
  std::string input_name_, output_name_;
  Shape shape_;     // the current value's shape, batch 1 included
  Shape shape_in_;  // the graph input's
  std::map<std::string, Tensor> state_;
  std::string current_;

  struct Layer {
    json config;
    std::string path;                       // from the file, or empty
    std::map<std::string, Tensor> weights;  // by parameter name ("weight")
  };
  std::vector<Layer> layers_;
  std::set<int> used_;  // nodes consumed
};

Const Importer::read_tensor(const onnx::TensorProto& t, const std::string& what) const {
  Const c;
  if (t.data_location() == onnx::TensorProto::EXTERNAL || t.external_data_size() > 0) {
    fail(what +
         " keeps its data in an external file: not supported (save the model with its "
         "weights inside)");
  }
  if (t.dims_size() > 8) fail(what + " has " + std::to_string(t.dims_size()) + " dimensions");
  int64_t n = 1;
  for (int64_t d : t.dims()) {
    if (d < 0) fail(what + " has a negative dimension " + std::to_string(d));
    c.shape.push_back(d);
  }
  try {
    n = checked_numel(c.shape, what);
  } catch (const Error& e) {
    fail(e.what());
  }
  if (n > limits::kMaxTensorElements) {
    fail(what + " declares " + std::to_string(n) + " elements, more than the limit (" +
         std::to_string(limits::kMaxTensorElements) + ", cnn/limits.h)");
  }
  const auto type = t.data_type();
  const std::string& raw = t.raw_data();
  if (type == onnx::TensorProto::FLOAT) {
    if (t.has_raw_data()) {
      if (raw.size() != static_cast<uint64_t>(n) * 4) {
        fail(what + " holds " + std::to_string(raw.size()) + " bytes; its shape " +
             shape_str(c.shape) + " needs " + std::to_string(n * 4));
      }
      c.f.resize(static_cast<std::size_t>(n));
      std::memcpy(c.f.data(), raw.data(), raw.size());
    } else {
      if (t.float_data_size() != n) {
        fail(what + " holds " + std::to_string(t.float_data_size()) + " floats; its shape " +
             shape_str(c.shape) + " needs " + std::to_string(n));
      }
      c.f.assign(t.float_data().begin(), t.float_data().end());
    }
    return c;
  }
  if (type == onnx::TensorProto::INT64) {
    c.is_float = false;
    if (n > (int64_t{1} << 20))
      fail(what + ": an int64 tensor of " + std::to_string(n) + " elements");
    if (t.has_raw_data()) {
      if (raw.size() != static_cast<uint64_t>(n) * 8) {
        fail(what + " holds " + std::to_string(raw.size()) + " bytes; its shape " +
             shape_str(c.shape) + " needs " + std::to_string(n * 8));
      }
      c.i.resize(static_cast<std::size_t>(n));
      std::memcpy(c.i.data(), raw.data(), raw.size());
    } else {
      if (t.int64_data_size() != n) {
        fail(what + " holds " + std::to_string(t.int64_data_size()) + " values; its shape " +
             shape_str(c.shape) + " needs " + std::to_string(n));
      }
      c.i.assign(t.int64_data().begin(), t.int64_data().end());
    }
    return c;
  }
  fail(what + " is of ONNX data type " + std::to_string(type) +
       "; only float32 weights (and int64 shapes) are supported");
}

void Importer::check_model() {
  if (!m_.has_graph()) fail("no graph: not an ONNX model");
  for (const auto& o : m_.opset_import()) {
    if (o.domain().empty() || o.domain() == "ai.onnx") opset_ = o.version();
  }
  if (opset_ == 0 && m_.opset_import_size() == 0) opset_ = 1;
  if (opset_ < 6 || opset_ > 17) {
    fail("ONNX opset " + std::to_string(opset_) +
         " is not supported (this build reads opsets 6 to 17; torch.onnx.export writes 11 to 17)");
  }
  const int64_t max_items = limits::kMaxLayers * 16;
  if (g_.node_size() > max_items || g_.initializer_size() > max_items ||
      g_.input_size() > max_items || g_.value_info_size() > max_items) {
    fail("the graph declares more than " + std::to_string(max_items) +
         " nodes, initializers or inputs (the limit: 16 x cnn/limits.h's kMaxLayers)");
  }
  if (g_.sparse_initializer_size() > 0) fail("sparse initializers are not supported");
}

void Importer::index_graph() {
  for (int k = 0; k < g_.initializer_size(); ++k) {
    const auto& t = g_.initializer(k);
    if (t.name().empty()) fail("initializer " + std::to_string(k) + " has no name");
    if (consts_.count(t.name())) fail("two initializers named '" + excerpt(t.name()) + "'");
    consts_[t.name()] = read_tensor(t, "initializer '" + excerpt(t.name()) + "'");
  }
  // The one input that is not an initializer, and the one output.
  std::vector<const onnx::ValueInfoProto*> inputs;
  for (const auto& in : g_.input()) {
    if (!consts_.count(in.name())) inputs.push_back(&in);
  }
  if (inputs.size() != 1) {
    fail("the graph has " + std::to_string(inputs.size()) +
         " inputs besides its initializers; a model here takes one (the images)");
  }
  if (g_.output_size() != 1) {
    fail("the graph has " + std::to_string(g_.output_size()) + " outputs; a model here has one");
  }
  input_name_ = inputs[0]->name();
  output_name_ = g_.output(0).name();
  const auto& type = inputs[0]->type();
  if (!type.has_tensor_type() || type.tensor_type().elem_type() != onnx::TensorProto::FLOAT) {
    fail("the input '" + excerpt(input_name_) + "' is not a float32 tensor");
  }
  if (!type.tensor_type().has_shape())
    fail("the input '" + excerpt(input_name_) + "' has no shape");
  const auto& dims = type.tensor_type().shape();
  if (dims.dim_size() != 2 && dims.dim_size() != 4) {
    fail("the input '" + excerpt(input_name_) + "' has " + std::to_string(dims.dim_size()) +
         " dimensions; a model here takes [N, C, H, W] images or [N, F] features");
  }
  shape_ = {1};
  for (int d = 1; d < dims.dim_size(); ++d) {
    const auto& dim = dims.dim(d);
    if (!dim.has_dim_value() || dim.dim_value() <= 0 || dim.dim_value() > (int64_t{1} << 24)) {
      fail("the input '" + excerpt(input_name_) + "' dimension " + std::to_string(d) +
           " must be a positive number (only the batch may be symbolic)");
    }
    shape_.push_back(dim.dim_value());
  }
  checked_numel(shape_, "the input's shape");
  shape_in_ = shape_;

  // Nodes in order: everything a node reads must exist before it.
  std::set<std::string> defined;
  for (const auto& [name, c] : consts_) defined.insert(name);
  defined.insert(input_name_);
  for (int k = 0; k < g_.node_size(); ++k) {
    const auto& n = g_.node(k);
    if (!n.domain().empty() && n.domain() != "ai.onnx") {
      fail_node(n, "an op of domain '" + excerpt(n.domain()) +
                       "' is not supported; supported: " + ops_list());
    }
    if (n.input_size() > 16 || n.output_size() > 16 || n.attribute_size() > 64) {
      fail_node(n, "too many inputs, outputs or attributes");
    }
    for (const auto& in : n.input()) {
      if (in.empty()) continue;  // an omitted optional input
      if (!defined.count(in)) {
        fail_node(n, "reads '" + excerpt(in) +
                         "', which no initializer, graph input or earlier node provides (a "
                         "missing value, or a cycle)");
      }
      if (n.op_type() != "Constant") readers_[in].push_back(k);
    }
    for (const auto& out : n.output()) {
      if (out.empty()) continue;
      if (defined.count(out)) fail_node(n, "writes '" + excerpt(out) + "', which already exists");
      defined.insert(out);
      producer_[out] = k;
    }
    if (n.op_type() == "Constant") {
      if (n.output_size() != 1) fail_node(n, "a Constant has one output");
      const onnx::AttributeProto* v = attr(n, "value");
      Const c;
      if (v && v->has_t()) {
        c = read_tensor(v->t(), "node '" + excerpt(n.name()) + "' (Constant)'s value");
      } else if (const auto* f = attr(n, "value_float")) {
        c.f = {f->f()};
      } else if (const auto* fs = attr(n, "value_floats")) {
        if (fs->floats_size() > (1 << 20)) fail_node(n, "too many values");
        c.f.assign(fs->floats().begin(), fs->floats().end());
        c.shape = {static_cast<int64_t>(c.f.size())};
      } else if (const auto* i = attr(n, "value_int")) {
        c.is_float = false;
        c.i = {i->i()};
      } else if (const auto* is = attr(n, "value_ints")) {
        if (is->ints_size() > (1 << 20)) fail_node(n, "too many values");
        c.is_float = false;
        c.i.assign(is->ints().begin(), is->ints().end());
        c.shape = {static_cast<int64_t>(c.i.size())};
      } else {
        fail_node(n, "a Constant without a float or int64 value is not supported");
      }
      consts_[n.output(0)] = std::move(c);
      used_.insert(k);
    }
  }
  if (!defined.count(output_name_))
    fail("the graph's output '" + excerpt(output_name_) + "' is never made");
}

const Const& Importer::need_const(const onnx::NodeProto& n, int input,
                                  const std::string& what) const {
  if (input >= n.input_size() || n.input(input).empty()) fail_node(n, "has no " + what);
  const Const* c = constant(n.input(input));
  if (!c) {
    fail_node(n, "its " + what + " '" + excerpt(n.input(input)) +
                     "' must be an initializer or a Constant (a computed one is not supported)");
  }
  return *c;
}

float Importer::scalar(const onnx::NodeProto& n, int input, const std::string& what) const {
  const Const& c = need_const(n, input, what);
  if (!c.is_float || c.f.size() != 1) fail_node(n, "its " + what + " must be one float");
  return c.f[0];
}

int Importer::sole_reader(const std::string& value) const {
  const auto& r = readers(value);
  if (value == output_name_) {
    if (!r.empty()) fail_node(node(r[0]), "reads the graph's output: a branching graph");
    return -1;
  }
  if (r.empty()) {
    auto it = producer_.find(value);
    fail(it != producer_.end()
             ? "node '" + excerpt(node(it->second).name()) + "' (" + node(it->second).op_type() +
                   ")'s output '" + excerpt(value) + "' goes nowhere: the graph's output is '" +
                   excerpt(output_name_) + "' (a branching graph)"
             : "the input '" + excerpt(value) + "' is never read");
  }
  if (r.size() > 1) {
    const auto& a = node(r[0]);
    const auto& b = node(r[1]);
    fail_node(b, "reads '" + excerpt(value) + "', which node '" + excerpt(a.name()) + "' (" +
                     a.op_type() +
                     ") reads too: a branching graph (a chain of layers is supported; supported: " +
                     ops_list() + ")");
  }
  return r[0];
}

const onnx::AttributeProto* Importer::attr(const onnx::NodeProto& n,
                                           const std::string& name) const {
  for (const auto& a : n.attribute()) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}

int64_t Importer::attr_int(const onnx::NodeProto& n, const std::string& name, int64_t def) const {
  const auto* a = attr(n, name);
  if (!a) return def;
  if (a->type() != onnx::AttributeProto::INT) fail_node(n, "attribute " + name + " is not an int");
  return a->i();
}

float Importer::attr_float(const onnx::NodeProto& n, const std::string& name, float def) const {
  const auto* a = attr(n, name);
  if (!a) return def;
  if (a->type() != onnx::AttributeProto::FLOAT)
    fail_node(n, "attribute " + name + " is not a float");
  if (!std::isfinite(a->f())) fail_node(n, "attribute " + name + " is not finite");
  return a->f();
}

std::vector<int64_t> Importer::attr_ints(const onnx::NodeProto& n, const std::string& name,
                                         std::vector<int64_t> def) const {
  const auto* a = attr(n, name);
  if (!a) return def;
  if (a->type() != onnx::AttributeProto::INTS) fail_node(n, "attribute " + name + " is not ints");
  if (a->ints_size() > 16) fail_node(n, "attribute " + name + " has too many values");
  return {a->ints().begin(), a->ints().end()};
}

std::string Importer::attr_string(const onnx::NodeProto& n, const std::string& name,
                                  const std::string& def) const {
  const auto* a = attr(n, name);
  if (!a) return def;
  if (a->type() != onnx::AttributeProto::STRING)
    fail_node(n, "attribute " + name + " is not a string");
  return a->s();
}

void Importer::only_attrs(const onnx::NodeProto& n, const std::set<std::string>& known) const {
  for (const auto& a : n.attribute()) {
    if (!known.count(a.name())) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      fail_node(n, "attribute '" + excerpt(a.name()) +
                       "' is not supported (supported: " + (list.empty() ? "none" : list) + ")");
    }
  }
}

// The layer's path in the model the file was written from, or empty.
std::string Importer::layer_path(const onnx::NodeProto& n) const {
  const std::string& name = n.name();
  std::string path;
  if (!name.empty() && name[0] == '/') {
    // torch: "/features/features.0/Conv": the scope before the op.
    const auto last = name.rfind('/');
    if (last == 0) return "";
    const auto before = name.rfind('/', last - 1);
    path = name.substr(before + 1, last - before - 1);
  } else if (m_.producer_name() == "cnn") {
    path = name.substr(0, name.find('/'));
  } else {
    return "";
  }
  if (path.empty() || path.size() > 256 || path.find_first_of(" /") != std::string::npos ||
      path.front() == '.' || path.back() == '.' || path.find("..") != std::string::npos) {
    return "";
  }
  return path;
}

void Importer::emit(const onnx::NodeProto& first, json layer, const std::string& weight_prefix,
                    std::map<std::string, Tensor> weights) {
  if (static_cast<int64_t>(layers_.size()) >= limits::kMaxLayers) {
    fail("more than " + std::to_string(limits::kMaxLayers) + " layers (cnn/limits.h)");
  }
  Layer l;
  l.path = layer_path(first);
  if (l.path.empty() && !weight_prefix.empty()) {
    // The weights' names: "conv1.0.weight" -> "conv1.0".
    const auto dot = weight_prefix.rfind('.');
    if (dot != std::string::npos && dot > 0) {
      std::string p = weight_prefix.substr(0, dot);
      if (p.find_first_of(" /:") == std::string::npos && p.find("..") == std::string::npos &&
          p.front() != '.' && p.size() <= 256) {
        l.path = p;
      }
    }
  }
  // The layer is built here too: its arguments are checked (naming the node) and the shape
  // flowing on is known for the next one.
  try {
    Generator gen(0);
    auto module = build_layer(layer, shape_, gen, "node '" + excerpt(first.name()) + "'");
    const auto state = module->state_dict();
    for (const auto& [name, t] : state) {
      auto it = weights.find(name);
      if (it == weights.end()) {
        if (name == "num_batches_tracked") {
          weights[name] = Tensor(t.shape());
          continue;
        }
        fail_node(first, "gives no " + name);
      }
      if (it->second.shape() != t.shape()) {
        fail_node(first, name + " has shape " + shape_str(it->second.shape()) +
                             "; the layer needs " + shape_str(t.shape()));
      }
    }
  } catch (const Error& e) {
    const std::string what = e.what();
    if (what.rfind(source_ + ": ", 0) == 0) throw;
    fail_node(first, what);
  }
  l.config = std::move(layer);
  l.weights = std::move(weights);
  layers_.push_back(std::move(l));
}

// An [h, w] argument as a model file writes it: one number when both are equal.
json pair_json(const std::vector<int64_t>& v) {
  if (v.size() == 2 && v[0] == v[1]) return v[0];
  return json(v);
}

Tensor tensor_of(const Const& c) {
  Tensor t(c.shape);
  std::copy(c.f.begin(), c.f.end(), t.data());
  return t;
}

json Importer::padding_json(const onnx::NodeProto& n, int64_t t, int64_t l, int64_t b,
                            int64_t r) const {
  for (int64_t p : {t, l, b, r}) {
    if (p < 0 || p > (int64_t{1} << 20)) fail_node(n, "pads must be in [0, 2^20]");
  }
  if (t == b && l == r) return pair_json({t, l});
  return json::array({json::array({t, b}), json::array({l, r})});
}

// [top, left, bottom, right] from pads or auto_pad.
std::vector<int64_t> Importer::spatial_pads(const onnx::NodeProto& n, const Shape& kernel,
                                            const Shape& stride, const Shape& dilation) const {
  const std::string auto_pad = attr_string(n, "auto_pad", "NOTSET");
  if (auto_pad == "NOTSET") {
    auto pads = attr_ints(n, "pads", {0, 0, 0, 0});
    if (pads.size() != 4) fail_node(n, "pads must have 4 values for a 2-D op");
    return pads;
  }
  if (auto_pad == "VALID") return {0, 0, 0, 0};
  if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    std::vector<int64_t> begin(2), end(2);
    for (int d = 0; d < 2; ++d) {
      const int64_t in = shape_[2 + d];
      const int64_t out = (in + stride[d] - 1) / stride[d];
      const int64_t total =
          std::max<int64_t>((out - 1) * stride[d] + (kernel[d] - 1) * dilation[d] + 1 - in, 0);
      const int64_t small = total / 2, big = total - small;
      begin[d] = auto_pad == "SAME_UPPER" ? small : big;
      end[d] = auto_pad == "SAME_UPPER" ? big : small;
    }
    return {begin[0], begin[1], end[0], end[1]};
  }
  fail_node(n, "auto_pad '" + excerpt(auto_pad) + "' is not supported");
}

// A [N, ...] int64 shape computed from the current value: a constant, or torch's Shape ->
// Gather -> Unsqueeze -> Concat. The batch is -2 (unknown).
std::optional<std::vector<int64_t>> Importer::shape_value(const std::string& value,
                                                          int depth) const {
  if (depth > 8) return std::nullopt;
  if (const Const* c = constant(value)) {
    if (c->is_float) return std::nullopt;
    return c->i;
  }
  auto it = producer_.find(value);
  if (it == producer_.end()) return std::nullopt;
  const auto& n = node(it->second);
  const std::string op = n.op_type();
  if (op == "Shape" && n.input_size() == 1 && n.input(0) == current_) {
    std::vector<int64_t> s(shape_.begin(), shape_.end());
    s[0] = -2;
    return s;
  }
  if (op == "Gather" && n.input_size() == 2) {
    auto data = shape_value(n.input(0), depth + 1);
    const Const* idx = constant(n.input(1));
    if (!data || !idx || idx->is_float || idx->i.size() != 1) return std::nullopt;
    int64_t k = idx->i[0];
    if (k < 0) k += static_cast<int64_t>(data->size());
    if (k < 0 || k >= static_cast<int64_t>(data->size())) return std::nullopt;
    return std::vector<int64_t>{(*data)[k]};
  }
  if (op == "Unsqueeze" && n.input_size() >= 1) return shape_value(n.input(0), depth + 1);
  if (op == "Concat") {
    std::vector<int64_t> s;
    for (const auto& in : n.input()) {
      auto part = shape_value(in, depth + 1);
      if (!part) return std::nullopt;
      s.insert(s.end(), part->begin(), part->end());
    }
    return s;
  }
  return std::nullopt;
}

// The output a node hands on: its first; any other it has must be unused.
std::string Importer::out_of(const onnx::NodeProto& x) const {
  if (x.output_size() < 1 || x.output(0).empty()) fail_node(x, "has no output");
  for (int k = 1; k < x.output_size(); ++k) {
    if (!x.output(k).empty() && (!readers(x.output(k)).empty() || x.output(k) == output_name_)) {
      fail_node(x, "its output " + std::to_string(k) + " is used: not supported");
    }
  }
  return x.output(0);
}

// Converts node i, which reads current_, and the nodes of the pattern it starts; sets current_
// to the value that flows on.
void Importer::step(int i) {
  used_.insert(i);
  // Two readers of current_: the GELU and SiLU patterns start here. (A Shape reading it is part
  // of the Reshape that follows: run() leaves it out.)
  std::vector<int> r;
  for (int k : readers(current_)) {
    if (node(k).op_type() != "Shape") r.push_back(k);
  }
  if (r.size() < 2) return convert(node(i));
  if (r.size() == 2) {
    const onnx::NodeProto& a = node(r[0]);
    const onnx::NodeProto& b = node(r[1]);
    if (a.op_type() == "Sigmoid" && b.op_type() == "Mul" && sole_reader(out_of(a)) == r[1] &&
        b.input_size() == 2 &&
        ((b.input(0) == current_ && b.input(1) == a.output(0)) ||
         (b.input(1) == current_ && b.input(0) == a.output(0)))) {
      used_.insert(r[0]);
      used_.insert(r[1]);
      only_attrs(a, {});
      emit(a, {{"type", "SiLU"}}, "");
      current_ = out_of(b);
      return;
    }
    if (a.op_type() == "Div" && b.op_type() == "Mul") {
      // Div(x, sqrt2) -> Erf -> Add(1) -> Mul(x, .) -> Mul(0.5)
      const float s2 = scalar(a, 1, "divisor");
      const int erf = sole_reader(out_of(a));
      const auto& e = node(erf);
      if (e.op_type() != "Erf" || std::abs(s2 - 1.41421356f) > 1e-5f) {
        fail_node(a,
                  "the value it reads is read by two nodes: a branching graph (GELU's pattern "
                  "Div(x, sqrt 2) -> Erf -> Add 1 -> Mul x -> Mul 0.5 aside)");
      }
      const int add = sole_reader(out_of(e));
      const auto& ad = node(add);
      if (ad.op_type() != "Add" || ad.input_size() != 2) fail_node(ad, "breaks GELU's pattern");
      const int one_at = ad.input(0) == e.output(0) ? 1 : 0;
      if (scalar(ad, one_at, "constant") != 1.0f) fail_node(ad, "breaks GELU's pattern (not + 1)");
      if (sole_reader(out_of(ad)) != r[1]) fail_node(b, "breaks GELU's pattern");
      const int half = sole_reader(out_of(b));
      const auto& h = node(half);
      if (h.op_type() != "Mul" || h.input_size() != 2) fail_node(h, "breaks GELU's pattern");
      const int half_at = h.input(0) == b.output(0) ? 1 : 0;
      if (scalar(h, half_at, "constant") != 0.5f) fail_node(h, "breaks GELU's pattern (not * 0.5)");
      for (int k : {r[0], r[1], erf, add, half}) used_.insert(k);
      emit(a, {{"type", "GELU"}}, "");
      current_ = out_of(h);
      return;
    }
    fail_node(b, "reads '" + excerpt(current_) + "', which node '" + excerpt(a.name()) + "' (" +
                     a.op_type() +
                     ") reads too: a branching graph (a chain of layers is supported, "
                     "with GELU's and SiLU's patterns; supported: " +
                     ops_list() + ")");
  }
  if (r.size() > 2) {
    fail_node(node(r[1]), "reads '" + excerpt(current_) + "' with " + std::to_string(r.size() - 1) +
                              " other nodes: a branching graph");
  }
}

void Importer::convert(const onnx::NodeProto& n) {
  const std::string& op = n.op_type();
  auto data_input_is_current = [&](const onnx::NodeProto& x) {
    if (x.input_size() < 1 || x.input(0) != current_) {
      fail_node(x, "does not read the chain's value '" + excerpt(current_) + "' first");
    }
  };
  const int64_t rank = static_cast<int64_t>(shape_.size());
  auto need_image = [&] {
    if (rank != 4)
      fail_node(n, "needs an image input [N, C, H, W]; the value is " + shape_str(shape_));
  };

  if (op == "Conv") {
    data_input_is_current(n);
    only_attrs(n, {"kernel_shape", "strides", "pads", "dilations", "group", "auto_pad"});
    need_image();
    const Const& w = need_const(n, 1, "weight");
    if (!w.is_float || w.shape.size() != 4) fail_node(n, "its weight must be a 4-D float tensor");
    const int64_t group = attr_int(n, "group", 1);
    if (group < 1 || shape_[1] % group != 0 || w.shape[1] * group != shape_[1]) {
      fail_node(n, "weight " + shape_str(w.shape) + " and group " + std::to_string(group) +
                       " do not fit an input of " + std::to_string(shape_[1]) + " channels");
    }
    const Shape kernel = {w.shape[2], w.shape[3]};
    if (attr_ints(n, "kernel_shape", kernel) !=
        std::vector<int64_t>(kernel.begin(), kernel.end())) {
      fail_node(n, "kernel_shape differs from the weight's");
    }
    const auto stride = attr_ints(n, "strides", {1, 1});
    const auto dilation = attr_ints(n, "dilations", {1, 1});
    if (stride.size() != 2 || dilation.size() != 2) fail_node(n, "a 2-D convolution only");
    const auto p = spatial_pads(n, kernel, {stride[0], stride[1]}, {dilation[0], dilation[1]});
    const bool bias = n.input_size() > 2 && !n.input(2).empty();
    std::map<std::string, Tensor> weights = {{"weight", tensor_of(w)}};
    if (bias) {
      const Const& b = need_const(n, 2, "bias");
      if (!b.is_float) fail_node(n, "its bias must be float");
      weights["bias"] = tensor_of(b);
    }
    emit(n,
         {{"type", "Conv2d"},
          {"in_channels", shape_[1]},
          {"out_channels", w.shape[0]},
          {"kernel_size", pair_json({kernel[0], kernel[1]})},
          {"stride", pair_json(stride)},
          {"padding", padding_json(n, p[0], p[1], p[2], p[3])},
          {"dilation", pair_json(dilation)},
          {"groups", group},
          {"bias", bias}},
         n.input(1), std::move(weights));
    current_ = out_of(n);
    return;
  }
  if (op == "BatchNormalization") {
    data_input_is_current(n);
    only_attrs(n,
               {"epsilon", "momentum", "training_mode", "spatial", "is_test", "consumed_inputs"});
    need_image();
    if (attr_int(n, "training_mode", 0) != 0) fail_node(n, "training_mode=1 is not supported");
    if (attr_int(n, "spatial", 1) != 1) fail_node(n, "spatial=0 is not supported");
    if (n.input_size() != 5) fail_node(n, "needs scale, B, mean and var");
    std::map<std::string, Tensor> weights;
    const char* names[] = {"weight", "bias", "running_mean", "running_var"};
    for (int k = 0; k < 4; ++k) {
      const Const& c = need_const(n, k + 1, names[k]);
      if (!c.is_float || c.shape != Shape{shape_[1]}) {
        fail_node(n, std::string(names[k]) + " must be " + std::to_string(shape_[1]) + " floats");
      }
      weights[names[k]] = tensor_of(c);
    }
    const double eps = shortest(attr_float(n, "epsilon", 1e-5f));
    const double momentum =
        shortest(static_cast<float>(1.0 - shortest(attr_float(n, "momentum", 0.9f))));
    emit(n,
         {{"type", "BatchNorm2d"},
          {"num_features", shape_[1]},
          {"eps", eps},
          {"momentum", momentum}},
         n.input(1), std::move(weights));
    current_ = out_of(n);
    return;
  }
  if (op == "Gemm") {
    data_input_is_current(n);
    only_attrs(n, {"alpha", "beta", "transA", "transB", "broadcast"});
    if (rank != 2) fail_node(n, "needs [N, features]; the value is " + shape_str(shape_));
    if (attr_int(n, "transA", 0) != 0) fail_node(n, "transA=1 is not supported");
    const Const& b = need_const(n, 1, "weight");
    if (!b.is_float || b.shape.size() != 2) fail_node(n, "its weight must be a 2-D float tensor");
    const bool trans = attr_int(n, "transB", 0) != 0;
    const int64_t in = trans ? b.shape[1] : b.shape[0], out = trans ? b.shape[0] : b.shape[1];
    if (in != shape_[1])
      fail_node(n, "weight " + shape_str(b.shape) + " does not fit " + std::to_string(shape_[1]) +
                       " features");
    const float alpha = attr_float(n, "alpha", 1.0f), beta = attr_float(n, "beta", 1.0f);
    Tensor w({out, in});
    for (int64_t o = 0; o < out; ++o)
      for (int64_t k = 0; k < in; ++k)
        w[o * in + k] = alpha * b.f[trans ? o * in + k : k * out + o];
    std::map<std::string, Tensor> weights = {{"weight", w}};
    const bool bias = n.input_size() > 2 && !n.input(2).empty();
    if (bias) {
      const Const& c = need_const(n, 2, "bias");
      if (!c.is_float || c.numel() != out || (c.shape.size() == 2 && c.shape[0] != 1)) {
        fail_node(n, "its bias must be " + std::to_string(out) + " floats");
      }
      Tensor bt({out});
      for (int64_t o = 0; o < out; ++o) bt[o] = beta * c.f[o];
      weights["bias"] = bt;
    }
    emit(n, {{"type", "Linear"}, {"in_features", in}, {"out_features", out}, {"bias", bias}},
         n.input(1), std::move(weights));
    current_ = out_of(n);
    return;
  }
  if (op == "MatMul") {
    only_attrs(n, {});
    if (n.input_size() != 2 || n.input(0) != current_)
      fail_node(n, "must read the chain's value first");
    if (rank != 2) fail_node(n, "needs [N, features]; the value is " + shape_str(shape_));
    // The weight: a constant, or the transpose of one (as older exports write a Linear).
    Const transposed;
    if (!constant(n.input(1))) {
      auto it = producer_.find(n.input(1));
      const onnx::NodeProto* t = it == producer_.end() ? nullptr : &node(it->second);
      const Const* src = t && t->op_type() == "Transpose" && t->input_size() == 1
                             ? constant(t->input(0))
                             : nullptr;
      if (src && src->is_float && src->shape.size() == 2 &&
          attr_ints(*t, "perm", {1, 0}) == std::vector<int64_t>{1, 0} &&
          readers(t->output(0)).size() == 1) {
        transposed.shape = {src->shape[1], src->shape[0]};
        transposed.f.resize(src->f.size());
        for (int64_t a = 0; a < src->shape[0]; ++a)
          for (int64_t c = 0; c < src->shape[1]; ++c)
            transposed.f[c * src->shape[0] + a] = src->f[a * src->shape[1] + c];
        used_.insert(it->second);
      }
    }
    const Const& b = transposed.f.empty() ? need_const(n, 1, "weight") : transposed;
    if (!b.is_float || b.shape.size() != 2 || b.shape[0] != shape_[1]) {
      fail_node(n, "its weight must be a [" + std::to_string(shape_[1]) + ", out] float tensor");
    }
    const int64_t in = b.shape[0], out = b.shape[1];
    Tensor w({out, in});
    for (int64_t o = 0; o < out; ++o)
      for (int64_t k = 0; k < in; ++k) w[o * in + k] = b.f[k * out + o];
    std::map<std::string, Tensor> weights = {{"weight", w}};
    std::string next = out_of(n);
    bool bias = false;
    const auto& rr = readers(next);
    if (rr.size() == 1 && node(rr[0]).op_type() == "Add") {
      const auto& add = node(rr[0]);
      const int at = add.input_size() == 2 && add.input(0) == next ? 1 : 0;
      const Const* c = add.input_size() == 2 ? constant(add.input(at)) : nullptr;
      if (c && c->is_float && c->numel() == out) {
        Tensor bt({out});
        std::copy(c->f.begin(), c->f.end(), bt.data());
        weights["bias"] = bt;
        bias = true;
        used_.insert(rr[0]);
        next = out_of(add);
      }
    }
    emit(n, {{"type", "Linear"}, {"in_features", in}, {"out_features", out}, {"bias", bias}},
         n.input(1), std::move(weights));
    current_ = next;
    return;
  }
  if (op == "Flatten") {
    data_input_is_current(n);
    only_attrs(n, {"axis"});
    if (attr_int(n, "axis", 1) != 1) fail_node(n, "only axis=1 is supported");
    emit(n, {{"type", "Flatten"}}, "");
    current_ = out_of(n);
    return;
  }
  if (op == "Transpose") {
    data_input_is_current(n);
    only_attrs(n, {"perm"});
    const auto perm = attr_ints(n, "perm", {});
    const int nf = sole_reader(out_of(n));
    if (perm != std::vector<int64_t>{0, 2, 3, 1} || nf < 0 || node(nf).op_type() != "Flatten" ||
        attr_int(node(nf), "axis", 1) != 1) {
      fail_node(n,
                "only Transpose(perm 0,2,3,1) then Flatten(axis 1) is supported (a channels-last "
                "Flatten)");
    }
    need_image();
    used_.insert(nf);
    emit(n, {{"type", "Flatten"}, {"channels_last", true}}, "");
    current_ = out_of(node(nf));
    return;
  }
  if (op == "Reshape") {
    only_attrs(n, {"allowzero"});
    if (n.input_size() != 2 || n.input(0) != current_)
      fail_node(n, "must read the chain's value first");
    const auto target = shape_value(n.input(1));
    const int64_t features = shape_numel(Shape(shape_.begin() + 1, shape_.end()));
    const bool flat =
        target && target->size() == 2 &&
        ((*target)[0] == 0 || (*target)[0] == -1 || (*target)[0] == -2 || (*target)[0] == 1) &&
        ((*target)[1] == -1 || (*target)[1] == features) &&
        !((*target)[0] == -1 && (*target)[1] == -1);
    if (!flat) {
      fail_node(n, "only a reshape to [batch, features] (a Flatten) is supported");
    }
    // The shape's own nodes (Shape, Gather, Unsqueeze, Concat) are part of it.
    std::function<void(const std::string&)> mark = [&](const std::string& v) {
      auto it = producer_.find(v);
      if (it == producer_.end() || node(it->second).op_type() == "Constant") return;
      used_.insert(it->second);
      const auto& p = node(it->second);
      if (p.op_type() == "Shape") return;
      for (const auto& in : p.input()) mark(in);
    };
    mark(n.input(1));
    emit(n, {{"type", "Flatten"}}, "");
    current_ = out_of(n);
    return;
  }
  if (op == "MaxPool" || op == "AveragePool") {
    data_input_is_current(n);
    need_image();
    if (op == "MaxPool") {
      only_attrs(n, {"kernel_shape", "strides", "pads", "dilations", "ceil_mode", "auto_pad",
                     "storage_order"});
      if (attr_int(n, "storage_order", 0) != 0) fail_node(n, "storage_order=1 is not supported");
    } else {
      only_attrs(n,
                 {"kernel_shape", "strides", "pads", "ceil_mode", "auto_pad", "count_include_pad"});
    }
    const auto kernel = attr_ints(n, "kernel_shape", {});
    if (kernel.size() != 2) fail_node(n, "kernel_shape must have 2 values");
    const auto stride = attr_ints(n, "strides", {1, 1});
    const auto dilation = attr_ints(n, "dilations", {1, 1});
    if (stride.size() != 2 || dilation.size() != 2) fail_node(n, "a 2-D pool only");
    const auto p =
        spatial_pads(n, {kernel[0], kernel[1]}, {stride[0], stride[1]}, {dilation[0], dilation[1]});
    json layer = {{"type", op == "MaxPool" ? "MaxPool2d" : "AvgPool2d"},
                  {"kernel_size", pair_json(kernel)},
                  {"padding", padding_json(n, p[0], p[1], p[2], p[3])},
                  {"ceil_mode", attr_int(n, "ceil_mode", 0) != 0}};
    // PyTorch's default stride is the kernel's size.
    if (stride != kernel) layer["stride"] = pair_json(stride);
    if (op == "MaxPool") {
      layer["dilation"] = pair_json(dilation);
    } else {
      layer["count_include_pad"] = attr_int(n, "count_include_pad", 0) != 0;
    }
    emit(n, layer, "");
    current_ = out_of(n);
    return;
  }
  if (op == "Pad") {
    // Zeros around the image, then an AveragePool that counts them: AvgPool2d(count_include_pad).
    data_input_is_current(n);
    only_attrs(n, {"mode", "pads", "value"});
    need_image();
    if (attr_string(n, "mode", "constant") != "constant") fail_node(n, "only mode 'constant'");
    std::vector<int64_t> pads;
    float value = attr_float(n, "value", 0.0f);
    if (opset_ < 11) {
      pads = attr_ints(n, "pads", {});
    } else {
      const Const& c = need_const(n, 1, "pads");
      if (c.is_float) fail_node(n, "pads must be int64");
      pads = c.i;
      if (n.input_size() > 2 && !n.input(2).empty()) value = scalar(n, 2, "constant value");
    }
    if (pads.size() != 8 || pads[0] || pads[1] || pads[4] || pads[5] || value != 0.0f) {
      fail_node(n, "only zero padding of the height and width is supported");
    }
    const int next = sole_reader(out_of(n));
    if (next < 0 || (node(next).op_type() != "AveragePool" && node(next).op_type() != "Conv")) {
      fail_node(n, "a Pad is supported before an AveragePool or a Conv only");
    }
    const auto& pool = node(next);
    const auto inner = attr_ints(pool, "pads", {0, 0, 0, 0});
    if (inner != std::vector<int64_t>{0, 0, 0, 0} ||
        attr_string(pool, "auto_pad", "NOTSET") != "NOTSET") {
      fail_node(pool, "padded twice (a Pad before it and its own pads)");
    }
    // Convert the next node as if its pads were the Pad's: a patched copy.
    onnx::NodeProto patched = pool;
    for (auto& a : *patched.mutable_attribute()) {
      if (a.name() == "count_include_pad") a.set_i(1);
    }
    bool has = false;
    for (auto& a : *patched.mutable_attribute()) {
      if (a.name() == "pads") has = true;
    }
    auto* pa = has ? nullptr : patched.add_attribute();
    if (pa) {
      pa->set_name("pads");
      pa->set_type(onnx::AttributeProto::INTS);
    }
    for (auto& a : *patched.mutable_attribute()) {
      if (a.name() == "pads") {
        a.clear_ints();
        for (int64_t v : {pads[2], pads[3], pads[6], pads[7]}) a.add_ints(v);
      }
    }
    if (pool.op_type() == "AveragePool" && !attr(pool, "count_include_pad")) {
      auto* c = patched.add_attribute();
      c->set_name("count_include_pad");
      c->set_type(onnx::AttributeProto::INT);
      c->set_i(1);
    }
    patched.set_input(0, current_);
    patched.set_name(n.name());  // the layer is named by its first node
    used_.insert(next);
    convert(patched);
    return;
  }
  if (op == "GlobalAveragePool") {
    data_input_is_current(n);
    only_attrs(n, {});
    need_image();
    emit(n, {{"type", "AdaptiveAvgPool2d"}, {"output_size", 1}}, "");
    current_ = out_of(n);
    return;
  }
  if (op == "Relu" || op == "Sigmoid" || op == "Tanh" || op == "Identity") {
    data_input_is_current(n);
    only_attrs(n, {});
    static const std::map<std::string, std::string> type = {
        {"Relu", "ReLU"}, {"Sigmoid", "Sigmoid"}, {"Tanh", "Tanh"}, {"Identity", "Identity"}};
    emit(n, {{"type", type.at(op)}}, "");
    current_ = out_of(n);
    return;
  }
  if (op == "LeakyRelu") {
    data_input_is_current(n);
    only_attrs(n, {"alpha"});
    emit(n, {{"type", "LeakyReLU"}, {"negative_slope", shortest(attr_float(n, "alpha", 0.01f))}},
         "");
    current_ = out_of(n);
    return;
  }
  if (op == "Softmax" || op == "LogSoftmax") {
    data_input_is_current(n);
    only_attrs(n, {"axis"});
    int64_t axis = attr_int(n, "axis", opset_ < 13 ? 1 : -1);
    if (axis < 0) axis += rank;
    if (axis <= 0 || axis >= rank)
      fail_node(n, "axis " + std::to_string(axis) + " is not a feature axis");
    if (opset_ < 13 && axis != rank - 1) {
      fail_node(n,
                "before opset 13 it flattens to 2-D at its axis: only the last axis is supported");
    }
    emit(n, {{"type", op}, {"dim", axis}}, "");
    current_ = out_of(n);
    return;
  }
  if (op == "Dropout") {
    data_input_is_current(n);
    only_attrs(n, {"ratio", "is_test", "seed"});
    float p = attr_float(n, "ratio", 0.5f);
    if (n.input_size() > 1 && !n.input(1).empty()) p = scalar(n, 1, "ratio");
    if (n.input_size() > 2 && !n.input(2).empty()) {
      const Const& t = need_const(n, 2, "training_mode");
      if (t.numel() != 1 || (t.is_float ? t.f[0] != 0.0f : t.i[0] != 0)) {
        fail_node(n, "training_mode must be false");
      }
    }
    if (!(p >= 0.0f && p < 1.0f)) fail_node(n, "ratio must be in [0, 1)");
    emit(n, {{"type", "Dropout"}, {"p", shortest(p)}}, "");
    current_ = out_of(n);
    return;
  }
  fail_node(n, "is not supported (supported: " + ops_list() + ")");
}

ImportedModel Importer::run() {
  check_model();
  index_graph();
  current_ = input_name_;
  for (int guard = 0; current_ != output_name_; ++guard) {
    if (guard > g_.node_size()) fail("the graph does not lead from its input to its output");
    std::vector<int> r;
    for (int k : readers(current_)) {
      if (node(k).op_type() != "Shape") r.push_back(k);
    }
    if (r.empty()) {
      fail("the value '" + excerpt(current_) + "' leads nowhere: the graph's output '" +
           excerpt(output_name_) + "' is not at the end of the chain from its input");
    }
    step(r[0]);
  }
  for (int k = 0; k < g_.node_size(); ++k) {
    if (!used_.count(k)) {
      fail_node(node(k),
                "is not on the chain from the input to the output (a branching graph; "
                "supported: " +
                    ops_list() + ")");
    }
  }
  // The description in the library's own words (every argument spelled as describe_model
  // spells it), so that a model written and read back is described the same.
  const json d = describe();
  Generator gen(0);
  const BuiltModel built = build_model(d, gen, source_);
  return {describe_model(*built.module, built.input), state_};
}

// A name a model description takes for a child.
bool good_name(const std::string& s) {
  return !s.empty() && s.size() <= 64 && s.find_first_of(". /") == std::string::npos;
}

json Importer::describe() {
  // The layers' paths as a tree of contiguous groups, if they make one.
  struct Node {
    std::string name;
    int layer = -1;  // a leaf: the index into layers_
    std::vector<Node> children;
  };
  Node root;
  bool nested = true;
  std::set<std::string> top_names;
  for (const auto& l : layers_) {
    if (!l.path.empty()) top_names.insert(l.path.substr(0, l.path.find('.')));
  }
  std::vector<std::string> paths(layers_.size());
  std::map<std::string, int> generated;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    paths[i] = layers_[i].path;
    if (paths[i].empty()) {
      // An op outside any module (torch's functional calls): named by its type at the top.
      std::string base = layers_[i].config["type"].get<std::string>();
      for (char& c : base) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      std::string name = base;
      while (top_names.count(name)) name = base + "_" + std::to_string(++generated[base]);
      top_names.insert(name);
      paths[i] = name;
    }
  }
  for (std::size_t i = 0; i < layers_.size() && nested; ++i) {
    Node* at = &root;
    std::size_t pos = 0;
    const std::string& p = paths[i];
    while (nested) {
      const auto dot = p.find('.', pos);
      const std::string part =
          p.substr(pos, dot == std::string::npos ? std::string::npos : dot - pos);
      const bool leaf = dot == std::string::npos;
      if (!good_name(part)) {
        nested = false;
        break;
      }
      for (std::size_t k = 0; k + 1 < at->children.size(); ++k) {
        if (at->children[k].name == part) nested = false;  // not contiguous
      }
      Node* last = at->children.empty() ? nullptr : &at->children.back();
      if (leaf) {
        if (last && last->name == part) {
          nested = false;  // two layers of one path, or a layer and a container
          break;
        }
        Node n;
        n.name = part;
        n.layer = static_cast<int>(i);
        at->children.push_back(std::move(n));
        break;
      }
      if (last && last->name == part) {
        if (last->layer >= 0) {
          nested = false;
          break;
        }
        at = last;
      } else {
        Node n;
        n.name = part;
        at->children.push_back(std::move(n));
        at = &at->children.back();
      }
      pos = dot + 1;
    }
  }
  std::function<json(const Node&, const std::string&, std::map<std::string, Tensor>&)> to_json =
      [&](const Node& n, const std::string& prefix, std::map<std::string, Tensor>& state) {
        json layers = json::array();
        for (std::size_t k = 0; k < n.children.size(); ++k) {
          const Node& c = n.children[k];
          json entry;
          if (c.layer >= 0) {
            entry = layers_[c.layer].config;
            for (const auto& [w, t] : layers_[c.layer].weights)
              state[prefix + c.name + "." + w] = t;
          } else {
            entry = {{"type", "Sequential"}, {"layers", to_json(c, prefix + c.name + ".", state)}};
          }
          if (c.name != std::to_string(k)) entry["name"] = c.name;
          layers.push_back(std::move(entry));
        }
        return layers;
      };
  if (!nested) {
    root.children.clear();
    for (std::size_t i = 0; i < layers_.size(); ++i) {
      Node n;
      n.name = std::to_string(i);
      n.layer = static_cast<int>(i);
      root.children.push_back(std::move(n));
    }
  }
  state_.clear();
  json d;
  if (m_.producer_name() == "cnn" && good_name(g_.name()) && g_.name() != "cnn")
    d["name"] = g_.name();
  Shape input(shape_in_.begin() + 1, shape_in_.end());
  d["input"] = input;
  d["layers"] = to_json(root, "", state_);
  return d;
}

}  // namespace

ImportedModel import_onnx_bytes(const std::string& bytes, const std::string& source) {
  if (bytes.size() > limits::kMaxOnnxBytes) {
    throw Error(source + ": " + std::to_string(bytes.size()) +
                " bytes, more than an ONNX file may have (" +
                std::to_string(limits::kMaxOnnxBytes) + ", cnn/limits.h)");
  }
  onnx::ModelProto model;
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                                            static_cast<int>(bytes.size()));
  in.SetTotalBytesLimit(static_cast<int>(limits::kMaxOnnxBytes));
  in.SetRecursionLimit(64);
  if (bytes.empty() || !model.ParseFromCodedStream(&in) || !in.ConsumedEntireMessage()) {
    throw Error(source +
                ": not an ONNX model (the protobuf does not parse: a truncated or "
                "corrupted file, or another format)");
  }
  Importer importer(model, source);
  ImportedModel out = importer.run();
  return out;
}

ImportedModel import_onnx(const std::string& path) {
  return import_onnx_bytes(read_file_bounded(path, limits::kMaxOnnxBytes, "an ONNX file"), path);
}

std::vector<std::string> onnx_import_ops() {
  std::vector<std::string> ops = supported_ops();
  std::sort(ops.begin(), ops.end());
  return ops;
}

}  // namespace cnn
