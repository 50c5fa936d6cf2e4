// ONNX export (cnn/io/onnx.h): the model's leaves, in order, as a chain of ONNX nodes built with
// the ONNX project's protobuf classes, checked by onnx::checker and by strict shape inference
// against the library's own shape arithmetic before it is serialized.
//
// Names. Input "input" [batch, C, H, W] (or [batch, F]), output "output" [batch, ...], "batch"
// a dim_param. A layer's first node is named by the layer's path in the model, the state_dict
// prefix ("conv1.0", "features.stem.2"); the others "<path>/<Op>", then "<path>/<Op>_1" for the
// next of the same op, as torch.onnx.export numbers them, the first node counting (GELU tanh's
// Muls: "<path>", "<path>/Mul_1", ...). A node's output is "<node name>_output_0",
// except the last one's, "output". Weights are initializers named by their state_dict names
// ("conv1.0.weight", "block1.1.running_mean"); num_batches_tracked is not written. Constants are
// initializers named "<path>/<what>" (float32 scalars of shape [] unless said).
//
// Layer -> nodes (x is the layer's input):
//   Conv2d            Conv(x, W[, B]) kernel_shape, strides, pads [top, left, bottom, right],
//                     dilations, group ("same" and per-side padding resolved to numbers)
//   Linear            Gemm(x, W[, B]) transB=1 (alpha, beta 1): a 2-D input only
//   MaxPool2d         MaxPool kernel_shape, strides, pads, dilations (written when not 1),
//                     ceil_mode=1 only where it changes the output size and ONNX's rule gives the
//                     library's size
//   AvgPool2d         AveragePool kernel_shape, strides, pads [0, 0, 0, 0]; with padding and
//                     count_include_pad=False: pads [top, left, bottom, right],
//                     count_include_pad=0; with padding and count_include_pad=True, as
//                     torch.onnx.export writes it: Pad(x, "<path>/pads" = int64 [0, 0, top, left,
//                     0, 0, bottom, right]) mode="constant" (node "<path>"), then AveragePool with
//                     pads 0
//                     ("<path>/AveragePool"). ceil_mode that changes the output size and
//                     divisor_override are refused.
//   AdaptiveAvgPool2d GlobalAveragePool for output 1x1; AveragePool(kernel = stride = input /
//                     output) when the input divides evenly; else refused
//   BatchNorm2d       BatchNormalization(x, weight, bias, running_mean, running_var) epsilon,
//                     momentum = 1 - PyTorch's momentum (as torch.onnx writes it); no
//                     training_mode. Without affine, scale and B are "<path>/ones", "<path>/zeros".
//                     Without track_running_stats (batch statistics in evaluation) refused.
//   ReLU, Sigmoid, Tanh, Identity   Relu, Sigmoid, Tanh, Identity
//   LeakyReLU         LeakyRelu alpha
//   Softmax, LogSoftmax   Softmax / LogSoftmax axis = dim (made non-negative); before opset 13
//                     ONNX's op flattens to 2-D at `axis`, the same only when dim is the last axis:
//                     anything else is refused there
//   Dropout           Dropout: ratio = p (an attribute before opset 12, then the initializer
//                     "<path>/ratio"); no training_mode: the identity in inference
//   Flatten           start_dim 1, end_dim last: Flatten axis=1. Other spans (start_dim >= 1):
//                     Reshape(x, "<path>/shape") with an int64 shape [0, kept..., -1, kept...].
//
// The patterns an importer matches (exactly these node sequences, constants as initializers):
//   GELU (exact)      Div(x, "<path>/sqrt_2" = 1.4142135f)      node "<path>"
//                     Erf(div)                                   node "<path>/Erf"
//                     Add(erf, "<path>/one" = 1.0f)              node "<path>/Add"
//                     Mul(x, add)                                node "<path>/Mul"
//                     Mul(mul, "<path>/half" = 0.5f)             node "<path>/Mul_1"
//                     (torch.onnx.export 1.13's nn.GELU at opsets 11 to 17, its Constant nodes
//                     replaced by initializers)
//   GELU (tanh)       Mul(x, x) "<path>"; Mul(x, x*x) "<path>/Mul_1";
//                     Mul("<path>/kappa" = 0.044715f, x^3) "<path>/Mul_2";
//                     Add(x, k x^3) "<path>/Add"; Mul("<path>/sqrt_2_over_pi" = 0.7978846f, add)
//                     "<path>/Mul_3"; Tanh "<path>/Tanh"; Add("<path>/one", tanh) "<path>/Add_1";
//                     Mul(x, add_1) "<path>/Mul_4"; Mul(mul_4, "<path>/half") "<path>/Mul_5"
//                     (torch 1.13's nn.GELU(approximate="tanh"), the same order of inputs)
//   SiLU              Sigmoid(x) "<path>"; Mul(x, sigmoid) "<path>/Mul" (torch 1.13's nn.SiLU)
//   Flatten(channels_last=True)
//                     Transpose(x) perm=[0, 2, 3, 1] "<path>"; Flatten(axis=1) "<path>/Flatten"
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <cstring>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cnn/error.h"
#include "cnn/io/file.h"
#include "cnn/io/onnx.h"
#include "cnn/nn/layers.h"

namespace cnn {
namespace {

// The IR version that goes with an opset (onnx/helper.py's VERSION_TABLE: ONNX 1.6 wrote IR 6
// with opset 11, 1.7 to 1.9 IR 7 with opsets 12 to 14, 1.10 to 1.12 IR 8 with opsets 15 to 17).
int64_t ir_version_for(int opset) {
  if (opset <= 11) return 6;
  if (opset <= 14) return 7;
  return 8;
}

// Thrown inside one layer's export; the caller adds the layer's path and repr.
struct LayerError {
  std::string message;
};

[[noreturn]] void refuse(const std::string& message) { throw LayerError{message}; }

class GraphBuilder {
 public:
  GraphBuilder(onnx::GraphProto& graph, const std::map<std::string, Tensor>& state, int opset)
      : g_(graph), state_(state), opset_(opset) {}

  int opset() const { return opset_; }
  const std::string& current() const { return current_; }
  void set_current(std::string v) { current_ = std::move(v); }
  // The index of the node whose output is current(), or -1 when it is the graph's input.
  int last_producer() const { return last_producer_; }

  // Starts a layer: its first node is named `path`, the others "<path>/<Op>".
  void begin_layer(const std::string& path) {
    path_ = path;
    first_ = true;
    op_counts_.clear();
  }

  // Adds a node of op `op` reading `inputs`; returns its output's name.
  std::string node(const std::string& op, const std::vector<std::string>& inputs) {
    std::string name;
    // Numbered as torch.onnx.export numbers a module's nodes ("Mul", "Mul_1", ...), the first
    // node counting too though it is named by the path alone.
    const int k = op_counts_[op]++;
    if (first_) {
      name = path_;
      first_ = false;
    } else {
      name = path_ + "/" + op + (k == 0 ? "" : "_" + std::to_string(k));
    }
    onnx::NodeProto* n = g_.add_node();
    n->set_name(name);
    n->set_op_type(op);
    for (const auto& in : inputs) n->add_input(in);
    const std::string out = name + "_output_0";
    n->add_output(out);
    last_producer_ = g_.node_size() - 1;
    return out;
  }
  // The same, reading current() first, and making the output current().
  std::string chain(const std::string& op, std::vector<std::string> more = {}) {
    more.insert(more.begin(), current_);
    current_ = node(op, more);
    return current_;
  }

  onnx::NodeProto& last_node() { return *g_.mutable_node(last_producer_); }

  static void attr(onnx::NodeProto& n, const std::string& name, int64_t v) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INT);
    a->set_i(v);
  }
  static void attr(onnx::NodeProto& n, const std::string& name, float v) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::FLOAT);
    a->set_f(v);
  }
  static void attr(onnx::NodeProto& n, const std::string& name, const std::vector<int64_t>& v) {
    auto* a = n.add_attribute();
    a->set_name(name);
    a->set_type(onnx::AttributeProto::INTS);
    for (int64_t x : v) a->add_ints(x);
  }

  // The state_dict entry `name` as an initializer (once); returns its name.
  std::string weight(const std::string& name) {
    auto it = state_.find(name);
    if (it == state_.end()) refuse("its state_dict has no entry " + name);
    if (written_.insert(name).second) add_float(name, it->second.shape(), it->second.data());
    return name;
  }
  // A float32 constant "<path>/<what>" of shape `shape`.
  std::string constant(const std::string& what, const std::vector<float>& values,
                       const Shape& shape = {}) {
    const std::string name = path_ + "/" + what;
    if (written_.insert(name).second) add_float(name, shape, values.data());
    return name;
  }
  std::string constant_int64(const std::string& what, const std::vector<int64_t>& values) {
    const std::string name = path_ + "/" + what;
    if (written_.insert(name).second) {
      onnx::TensorProto* t = g_.add_initializer();
      t->set_name(name);
      t->set_data_type(onnx::TensorProto::INT64);
      t->add_dims(static_cast<int64_t>(values.size()));
      // Little-endian, as ONNX's raw_data is (this library builds for x86-64 and AArch64 only).
      t->set_raw_data(std::string(reinterpret_cast<const char*>(values.data()),
                                  values.size() * sizeof(int64_t)));
    }
    return name;
  }

 private:
  void add_float(const std::string& name, const Shape& shape, const float* data) {
    onnx::TensorProto* t = g_.add_initializer();
    t->set_name(name);
    t->set_data_type(onnx::TensorProto::FLOAT);
    int64_t n = 1;
    for (int64_t d : shape) {
      t->add_dims(d);
      n *= d;
    }
    t->set_raw_data(
        std::string(reinterpret_cast<const char*>(data), static_cast<std::size_t>(n) * 4));
  }

  onnx::GraphProto& g_;
  const std::map<std::string, Tensor>& state_;
  int opset_;
  std::string current_ = "input";
  int last_producer_ = -1;
  std::string path_;
  bool first_ = true;
  std::map<std::string, int> op_counts_;
  std::set<std::string> written_;
};

std::vector<int64_t> pads_of(int64_t top, int64_t left, int64_t bottom, int64_t right) {
  return {top, left, bottom, right};
}

// ONNX's pooling output size for one dimension (the operators' documented formula).
int64_t onnx_pool_out(int64_t in, int64_t pad_total, int64_t k, int64_t s, int64_t d, bool ceil) {
  const int64_t span = in + pad_total - ((k - 1) * d + 1);
  if (span < 0) return 0;
  return (ceil ? (span + s - 1) / s : span / s) + 1;
}

// Writes one leaf. `in` is the shape flowing in (batch 1), `out` the leaf's output shape.
// `path` names its nodes, `prefix` its state_dict entries ("conv1.0." or "" for a lone layer).
void export_leaf(GraphBuilder& b, Module& m, const std::string& path, const std::string& prefix,
                 const Shape& in, const Shape& out) {
  const std::string type = m.type_name();
  const int64_t rank = static_cast<int64_t>(in.size());
  b.begin_layer(path);
  if (type == "Conv2d") {
    auto& conv = dynamic_cast<Conv2d&>(m);
    const auto& g = conv.geometry();
    const Shape& w = conv.weight().value.shape();
    std::vector<std::string> inputs = {b.weight(prefix + "weight")};
    if (conv.bias()) inputs.push_back(b.weight(prefix + "bias"));
    b.chain("Conv", inputs);
    auto& n = b.last_node();
    GraphBuilder::attr(n, "dilations", std::vector<int64_t>{g.dilation.h, g.dilation.w});
    GraphBuilder::attr(n, "group", g.groups);
    GraphBuilder::attr(n, "kernel_shape", std::vector<int64_t>{w[2], w[3]});
    GraphBuilder::attr(n, "pads", pads_of(g.pad_top, g.pad_left, g.pad_bottom, g.pad_right));
    GraphBuilder::attr(n, "strides", std::vector<int64_t>{g.stride.h, g.stride.w});
  } else if (type == "Linear") {
    auto& lin = dynamic_cast<Linear&>(m);
    if (rank != 2) {
      refuse("Gemm takes a 2-D input (N, in_features), this layer gets " + shape_str(in) +
             " (put a Flatten before it)");
    }
    std::vector<std::string> inputs = {b.weight(prefix + "weight")};
    if (lin.bias()) inputs.push_back(b.weight(prefix + "bias"));
    b.chain("Gemm", inputs);
    auto& n = b.last_node();
    GraphBuilder::attr(n, "alpha", 1.0f);
    GraphBuilder::attr(n, "beta", 1.0f);
    GraphBuilder::attr(n, "transB", int64_t{1});
  } else if (type == "MaxPool2d") {
    const auto& g = dynamic_cast<MaxPool2d&>(m).geometry();
    const Size2 end = g.padding_end.value_or(g.padding);
    bool ceil = false;
    if (g.ceil_mode) {
      // PyTorch drops a last window that would start in the bottom/right padding; ONNX's
      // ceil_mode keeps it. Written only where it matters and the two agree.
      const int64_t fh =
          onnx_pool_out(in[2], g.padding.h + end.h, g.kernel.h, g.stride.h, g.dilation.h, false);
      const int64_t fw =
          onnx_pool_out(in[3], g.padding.w + end.w, g.kernel.w, g.stride.w, g.dilation.w, false);
      if (fh != out[2] || fw != out[3]) {
        const int64_t ch =
            onnx_pool_out(in[2], g.padding.h + end.h, g.kernel.h, g.stride.h, g.dilation.h, true);
        const int64_t cw =
            onnx_pool_out(in[3], g.padding.w + end.w, g.kernel.w, g.stride.w, g.dilation.w, true);
        if (ch != out[2] || cw != out[3]) {
          refuse("ceil_mode gives " + shape_str(out) + " here but ONNX's ceil_mode would give " +
                 std::to_string(ch) + "x" + std::to_string(cw) + " (a window in the padding)");
        }
        ceil = true;
      }
    }
    b.chain("MaxPool");
    auto& n = b.last_node();
    if (ceil) GraphBuilder::attr(n, "ceil_mode", int64_t{1});
    if (!g.dilation.all(1)) {
      GraphBuilder::attr(n, "dilations", std::vector<int64_t>{g.dilation.h, g.dilation.w});
    }
    GraphBuilder::attr(n, "kernel_shape", std::vector<int64_t>{g.kernel.h, g.kernel.w});
    GraphBuilder::attr(n, "pads", pads_of(g.padding.h, g.padding.w, end.h, end.w));
    GraphBuilder::attr(n, "strides", std::vector<int64_t>{g.stride.h, g.stride.w});
  } else if (type == "AvgPool2d") {
    const auto& g = dynamic_cast<AvgPool2d&>(m).geometry();
    if (g.divisor_override) refuse("divisor_override has no ONNX form (AveragePool)");
    const Size2 end = g.padding_end.value_or(g.padding);
    const int64_t fh = onnx_pool_out(in[2], g.padding.h + end.h, g.kernel.h, g.stride.h, 1, false);
    const int64_t fw = onnx_pool_out(in[3], g.padding.w + end.w, g.kernel.w, g.stride.w, 1, false);
    if (fh != out[2] || fw != out[3]) {
      refuse(
          "ceil_mode adds a partial window here, whose divisor ONNX's AveragePool counts "
          "otherwise than PyTorch");
    }
    const bool padded = !g.padding.all(0) || !end.all(0);
    if (padded && g.count_include_pad) {
      // The zeros padded explicitly, then every window is whole (PyTorch's divisor is then the
      // kernel's area): torch.onnx.export's pattern. OpenCV dnn 4.6 does not honour
      // AveragePool's count_include_pad=1 (measured: 26 % off on padded windows), and runs this.
      b.chain("Pad",
              {b.constant_int64("pads", {0, 0, g.padding.h, g.padding.w, 0, 0, end.h, end.w})});
      auto* mode = b.last_node().add_attribute();
      mode->set_name("mode");
      mode->set_type(onnx::AttributeProto::STRING);
      mode->set_s("constant");
    }
    b.chain("AveragePool");
    auto& n = b.last_node();
    if (padded && !g.count_include_pad) GraphBuilder::attr(n, "count_include_pad", int64_t{0});
    GraphBuilder::attr(n, "kernel_shape", std::vector<int64_t>{g.kernel.h, g.kernel.w});
    GraphBuilder::attr(n, "pads",
                       padded && !g.count_include_pad
                           ? pads_of(g.padding.h, g.padding.w, end.h, end.w)
                           : pads_of(0, 0, 0, 0));
    GraphBuilder::attr(n, "strides", std::vector<int64_t>{g.stride.h, g.stride.w});
  } else if (type == "AdaptiveAvgPool2d") {
    const int64_t oh = out[2], ow = out[3];
    if (oh == 1 && ow == 1) {
      b.chain("GlobalAveragePool");
    } else if (in[2] % oh == 0 && in[3] % ow == 0) {
      b.chain("AveragePool");
      auto& n = b.last_node();
      const std::vector<int64_t> k = {in[2] / oh, in[3] / ow};
      GraphBuilder::attr(n, "kernel_shape", k);
      GraphBuilder::attr(n, "strides", k);
    } else {
      refuse("output size " + std::to_string(oh) + "x" + std::to_string(ow) +
             " does not divide the input's " + std::to_string(in[2]) + "x" + std::to_string(in[3]) +
             ": its windows overlap unevenly, which no ONNX op pools");
    }
  } else if (type == "BatchNorm2d") {
    auto& bn = dynamic_cast<BatchNorm2d&>(m);
    const auto& o = bn.options();
    if (!o.track_running_stats()) {
      refuse(
          "without track_running_stats it normalises with each batch's statistics in "
          "evaluation mode too, which ONNX's BatchNormalization does not");
    }
    const int64_t c = o.num_features();
    std::string scale, bias;
    if (o.affine()) {
      scale = b.weight(prefix + "weight");
      bias = b.weight(prefix + "bias");
    } else {
      scale = b.constant("ones", std::vector<float>(c, 1.0f), {c});
      bias = b.constant("zeros", std::vector<float>(c, 0.0f), {c});
    }
    b.chain("BatchNormalization",
            {scale, bias, b.weight(prefix + "running_mean"), b.weight(prefix + "running_var")});
    auto& n = b.last_node();
    GraphBuilder::attr(n, "epsilon", static_cast<float>(o.eps()));
    GraphBuilder::attr(n, "momentum", static_cast<float>(1.0 - o.momentum()));
  } else if (type == "ReLU") {
    b.chain("Relu");
  } else if (type == "Sigmoid") {
    b.chain("Sigmoid");
  } else if (type == "Tanh") {
    b.chain("Tanh");
  } else if (type == "Identity") {
    b.chain("Identity");
  } else if (type == "LeakyReLU") {
    b.chain("LeakyRelu");
    GraphBuilder::attr(b.last_node(), "alpha",
                       static_cast<float>(dynamic_cast<LeakyReLU&>(m).negative_slope()));
  } else if (type == "Softmax" || type == "LogSoftmax") {
    int64_t dim = m.config().at("dim").get<int64_t>();
    if (dim < 0) dim += rank;
    if (dim == 0) refuse("dim 0 is the batch dimension: ONNX has no softmax across samples here");
    if (b.opset() < 13 && dim != rank - 1) {
      refuse("before opset 13 ONNX's " + std::string(type == "Softmax" ? "Softmax" : "LogSoftmax") +
             " flattens the input to 2-D at its axis: dim " + std::to_string(dim) + " of a " +
             std::to_string(rank) + "-D input needs opset 13 or later");
    }
    b.chain(type);
    GraphBuilder::attr(b.last_node(), "axis", dim);
  } else if (type == "Dropout") {
    // The identity in inference, but written (where torch.onnx.export in eval mode leaves it out)
    // so that a model read back has the layer and its rate: the same model to train further.
    const float p = static_cast<float>(m.config().value("p", 0.5));
    if (b.opset() < 12) {
      b.chain("Dropout");
      GraphBuilder::attr(b.last_node(), "ratio", p);
    } else {
      b.chain("Dropout", {b.constant("ratio", {p})});
    }
  } else if (type == "Flatten") {
    const auto c = m.config();
    const bool channels_last = c.value("channels_last", false);
    int64_t start = c.at("start_dim").get<int64_t>(), end = c.at("end_dim").get<int64_t>();
    if (start < 0) start += rank;
    if (end < 0) end += rank;
    if (channels_last) {
      b.chain("Transpose");
      GraphBuilder::attr(b.last_node(), "perm", std::vector<int64_t>{0, 2, 3, 1});
      b.chain("Flatten");
      GraphBuilder::attr(b.last_node(), "axis", int64_t{1});
    } else if (start == 1 && end == rank - 1) {
      b.chain("Flatten");
      GraphBuilder::attr(b.last_node(), "axis", int64_t{1});
    } else if (start >= 1 && end >= start) {
      std::vector<int64_t> shape = {0};
      for (int64_t d = 1; d < start; ++d) shape.push_back(in[d]);
      shape.push_back(-1);
      for (int64_t d = end + 1; d < rank; ++d) shape.push_back(in[d]);
      b.chain("Reshape", {b.constant_int64("shape", shape)});
    } else {
      refuse("start_dim 0 flattens the batch dimension into the features");
    }
  } else if (type == "GELU") {
    const std::string approximate = m.config().at("approximate").get<std::string>();
    const std::string x = b.current();
    if (approximate == "none") {
      b.chain("Div", {b.constant("sqrt_2", {1.41421356237309504880f})});
      b.chain("Erf");
      b.chain("Add", {b.constant("one", {1.0f})});
      b.set_current(b.node("Mul", {x, b.current()}));
      b.chain("Mul", {b.constant("half", {0.5f})});
    } else if (approximate == "tanh") {
      const std::string x2 = b.node("Mul", {x, x});
      const std::string x3 = b.node("Mul", {x, x2});
      const std::string kx3 = b.node("Mul", {b.constant("kappa", {0.044715f}), x3});
      const std::string inner = b.node("Add", {x, kx3});
      const std::string scaled =
          b.node("Mul", {b.constant("sqrt_2_over_pi", {0.79788456080286535588f}), inner});
      const std::string t = b.node("Tanh", {scaled});
      const std::string t1 = b.node("Add", {b.constant("one", {1.0f}), t});
      const std::string xt = b.node("Mul", {x, t1});
      b.set_current(b.node("Mul", {xt, b.constant("half", {0.5f})}));
    } else {
      refuse("approximate='" + approximate + "' has no ONNX form");
    }
  } else if (type == "SiLU") {
    const std::string x = b.current();
    const std::string s = b.node("Sigmoid", {x});
    b.set_current(b.node("Mul", {x, s}));
  } else {
    refuse("a " + type + " layer has no ONNX form (the layers that have: Conv2d, Linear, " +
           "MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, BatchNorm2d, ReLU, LeakyReLU, Sigmoid, Tanh, "
           "GELU, SiLU, Softmax, LogSoftmax, Flatten, Dropout, Identity)");
  }
}

struct Leaf {
  Module* module;
  std::string path;
};

void collect_leaves(Module& m, const std::string& path, std::vector<Leaf>& out) {
  if (m.children().empty()) {
    out.push_back({&m, path});
    return;
  }
  // A container is written as the chain of its children, which is what a Sequential (and a
  // model describing itself as one, as TutorialCNN does) runs.
  std::string container_type = m.type_name();
  if (!dynamic_cast<const Sequential*>(&m)) {
    try {
      container_type = m.config().at("type").get<std::string>();
    } catch (const std::exception&) {
    }
  }
  if (container_type != "Sequential") {
    throw Error("ONNX export: layer " + (path.empty() ? std::string("(the model)") : path) + " (" +
                m.type_name() +
                "): a container that does not run its children in order (as a Sequential) has "
                "no ONNX form here");
  }
  for (const auto& [name, child] : m.children()) {
    collect_leaves(*child, path.empty() ? name : path + "." + name, out);
  }
}

void set_shape(onnx::ValueInfoProto& v, const Shape& shape) {
  auto* t = v.mutable_type()->mutable_tensor_type();
  t->set_elem_type(onnx::TensorProto::FLOAT);
  auto* s = t->mutable_shape();
  for (std::size_t i = 0; i < shape.size(); ++i) {
    auto* d = s->add_dim();
    if (i == 0) {
      d->set_dim_param("batch");
    } else {
      d->set_dim_value(shape[i]);
    }
  }
}

std::string layer_label(const Leaf& leaf) {
  return "layer " + (leaf.path.empty() ? std::string("(the model)") : leaf.path) + " (" +
         leaf.module->type_name() + "(" + leaf.module->extra_repr() + "))";
}

// Whether an inferred shape is `want`, every dimension known and equal.
bool shape_matches(const onnx::TypeProto& type, const Shape& want, std::string& got) {
  if (!type.has_tensor_type() || !type.tensor_type().has_shape()) {
    got = "no shape";
    return false;
  }
  const auto& s = type.tensor_type().shape();
  got = "[";
  bool ok = s.dim_size() == static_cast<int>(want.size());
  for (int i = 0; i < s.dim_size(); ++i) {
    const auto& d = s.dim(i);
    got += (i ? ", " : "") + (d.has_dim_value() ? std::to_string(d.dim_value())
                                                : (d.has_dim_param() ? d.dim_param() : "?"));
    if (ok && (!d.has_dim_value() || d.dim_value() != want[i])) ok = false;
  }
  got += "]";
  return ok;
}

}  // namespace

std::string export_onnx(const Module& model_in, const Shape& input, const std::string& name,
                        const OnnxExportOptions& options) {
  if (options.opset < kOnnxMinExportOpset || options.opset > kOnnxMaxExportOpset) {
    throw Error("ONNX export: opset " + std::to_string(options.opset) +
                " is not supported: cnn writes opsets " + std::to_string(kOnnxMinExportOpset) +
                " to " + std::to_string(kOnnxMaxExportOpset));
  }
  if (input.empty() || (input.size() != 1 && input.size() != 3)) {
    throw Error("ONNX export: the input of one sample must be [C, H, W] or [F], got " +
                shape_str(input));
  }
  // Walking the model needs the leaves' own accessors; nothing is modified.
  Module& model = const_cast<Module&>(model_in);
  std::vector<Leaf> leaves;
  collect_leaves(model, "", leaves);

  std::map<std::string, Tensor> state;
  for (const auto& [k, t] : model.state_dict()) state.emplace(k, t.cpu());  // from any device

  onnx::ModelProto proto;
  proto.set_ir_version(ir_version_for(options.opset));
  proto.set_producer_name("cnn");
  proto.set_producer_version("1");
  auto* op = proto.add_opset_import();
  op->set_domain("");
  op->set_version(options.opset);
  onnx::GraphProto& graph = *proto.mutable_graph();
  std::string graph_name = options.model_name.empty() ? name : options.model_name;
  if (graph_name.empty()) {
    if (const auto* seq = dynamic_cast<const Sequential*>(&model_in)) graph_name = seq->name();
  }
  graph.set_name(graph_name.empty() ? "cnn" : graph_name);

  Shape shape = {1};
  shape.insert(shape.end(), input.begin(), input.end());
  set_shape(*graph.add_input(), shape);
  graph.mutable_input(0)->set_name("input");

  GraphBuilder b(graph, state, options.opset);
  // Each layer's output value and its shape, for the check after shape inference.
  std::vector<std::pair<std::string, std::pair<Shape, std::size_t>>> expected;
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    const Leaf& leaf = leaves[i];
    Shape out;
    const int nodes_before = graph.node_size();
    try {
      out = leaf.module->output_shape(shape);
      export_leaf(b, *leaf.module, leaf.path.empty() ? leaf.module->type_name() : leaf.path,
                  leaf.path.empty() ? "" : leaf.path + ".", shape, out);
    } catch (const LayerError& e) {
      throw Error("ONNX export: " + layer_label(leaf) + ": " + e.message);
    } catch (const std::exception& e) {
      throw Error("ONNX export: " + layer_label(leaf) + ": " + e.what());
    }
    shape = out;
    // Each layer's output has its shape checked.
    if (graph.node_size() > nodes_before) expected.push_back({b.current(), {shape, i}});
  }
  // The last value becomes "output" (an Identity when no node was written at all).
  if (b.last_producer() < 0) {
    b.begin_layer("Identity");
    b.chain("Identity");
  }
  const std::string last = b.current();
  onnx::NodeProto& producer = b.last_node();
  for (int i = 0; i < producer.output_size(); ++i) {
    if (producer.output(i) == last) producer.set_output(i, "output");
  }
  for (auto& e : expected) {
    if (e.first == last) e.first = "output";
  }
  onnx::ValueInfoProto& output = *graph.add_output();
  output.set_name("output");

  // Strict shape inference on a copy whose batch is 1 and whose output's shape is left open, so
  // that every dimension ONNX infers for each layer's output is known and compared with what the
  // library computes, not merged into it.
  onnx::ModelProto inferred = proto;
  inferred.mutable_graph()
      ->mutable_input(0)
      ->mutable_type()
      ->mutable_tensor_type()
      ->mutable_shape()
      ->mutable_dim(0)
      ->set_dim_value(1);
  inferred.mutable_graph()->mutable_output(0)->mutable_type()->mutable_tensor_type()->set_elem_type(
      onnx::TensorProto::FLOAT);
  const onnx::ShapeInferenceOptions strict(/*check_type=*/true, /*error_mode=*/1);
  try {
    onnx::shape_inference::InferShapes(inferred, onnx::OpSchemaRegistry::Instance(), strict);
  } catch (const std::exception& e) {
    throw Error(std::string("ONNX export: ONNX's checker or shape inference refused the graph (a "
                            "bug of cnn's): ") +
                e.what());
  }
  std::map<std::string, const onnx::TypeProto*> types;
  for (const auto& v : inferred.graph().value_info()) types[v.name()] = &v.type();
  for (const auto& v : inferred.graph().output()) types[v.name()] = &v.type();
  for (const auto& [value, want] : expected) {
    auto it = types.find(value);
    std::string got = "no shape";
    if (it != types.end() && shape_matches(*it->second, want.first, got)) continue;
    throw Error("ONNX export: " + layer_label(leaves[want.second]) +
                ": ONNX's shape inference gives its output " + got + " where cnn computes " +
                shape_str(want.first) + " (a bug of cnn's)");
  }
  // The model itself, with its dynamic batch and declared output: checked, and inferred strictly
  // (an inferred output shape that contradicts the declared one throws).
  set_shape(output, shape);
  try {
    onnx::checker::check_model(proto);
    onnx::ModelProto dynamic = proto;
    onnx::shape_inference::InferShapes(dynamic, onnx::OpSchemaRegistry::Instance(), strict);
  } catch (const std::exception& e) {
    throw Error(std::string("ONNX export: ONNX's checker or shape inference refused the model (a "
                            "bug of cnn's): ") +
                e.what());
  }
  std::string bytes;
  if (!proto.SerializeToString(&bytes)) throw Error("ONNX export: serializing the model failed");
  return bytes;
}

void write_onnx(const std::string& path, const Module& model, const Shape& input,
                const std::string& name, const OnnxExportOptions& options) {
  write_file_atomically(path, export_onnx(model, input, name, options));
}

}  // namespace cnn
