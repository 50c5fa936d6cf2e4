// The op table: every op's cases written once, as data, after ggml's test-backend-ops. Each case
// is an op, its options and input shapes, and a small adapter that runs the op's public forward
// and backward functions on named tensors. tests/test_op_table.cpp runs every case in every mode
// (PyTorch's fixtures under each kernel set, the fast kernels against the reference ones, finite
// differences); bench/op_table_bench.cpp times every case's forward and backward passes.
// docs/TESTING.md says how to add an op or a backend.
//
// Nothing here depends on GoogleTest, so that the benchmark can include it.
#pragma once

#include <algorithm>
#include <any>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cnn/cnn.h"
#include "cnn/ops/activation.h"
#include "cnn/ops/avgpool2d.h"
#include "cnn/ops/batchnorm2d.h"

namespace cnn::op_table {

using Tensors = std::map<std::string, Tensor>;

struct OpInput {
  std::string name;  // x, w, b, mask, targets, running_mean, ...
  Shape shape;
  // Whether backward returns its gradient, under "d" + name.
  bool differentiable = true;
  // The step of the central differences for this input: 0.1 where the output is linear in it
  // (exact up to rounding), smaller where it is curved or has kinks.
  double fd_step = 0.1;
  // Its name in a fixture set, and its gradient's (tools/gen_fixtures.py's names).
  std::string fixture_name, fixture_grad;
  // A random value for the random modes; unset: uniform in [offset - scale, offset + scale).
  std::function<Tensor(const Shape&, Generator&)> random;
  float scale = 1.0f, offset = 0.0f;
};

// What forward returns: "y", the output that backward differentiates, and any other outputs
// (BatchNorm2d's updated running statistics); `saved` holds what the backward pass needs beyond
// the inputs and outputs (pooling indices, batch statistics).
struct Forward {
  Tensors out;
  std::any saved;
  const Tensor& y() const { return out.at("y"); }
};

struct OpCase {
  std::string op;    // the op's name: conv2d, maxpool2d, ...
  std::string name;  // the test's name: conv2d_k3_s2_p1_g2 (unique in the table)
  // The options, with tools/gen_fixtures.py's keys and values where the op has a fixture: a case
  // taken from a fixture must agree with the fixture's record of them (the golden test checks).
  nlohmann::json options = nlohmann::json::object();
  std::vector<OpInput> inputs;
  // Outputs compared with a fixture set, and their names there.
  std::map<std::string, std::string> fixture_outputs{{"y", "y"}};
  // in: one tensor per input -> outputs. Must not modify its inputs (it runs many times).
  std::function<Forward(const Tensors& in)> forward;
  // dy: y's shape -> "d" + name for every differentiable input. Outputs the op overwrites are
  // handed to it filled with NaN, gradients it accumulates into filled with 0.
  std::function<Tensors(const Tensors& in, const Forward& fwd, const Tensor& dy)> backward;
  // False where the fast kernels sum the same products in another order than the reference
  // kernels; true where both kernel sets run the same code or only select elements (max-pooling).
  bool exact_across_kernel_sets = true;
  // The fixture set it comes from (tests/fixtures/<fixture>.cnnt, set fixture_set), if any.
  std::string fixture;
  int fixture_set = -1;

  OpCase from_fixture(const std::string& file, int set) const {
    OpCase c = *this;
    c.fixture = file;
    c.fixture_set = set;
    return c;
  }
};

// ---- helpers for the adapters ----

// Adapters make what they hand to an op on the device of its inputs (the CUDA mode runs every
// case with its inputs on CUDA, tests/test_cuda_ops.cpp).
inline Tensor nan_tensor(const Shape& shape, Device device = Device::CPU) {
  return Tensor::full(shape, std::numeric_limits<float>::quiet_NaN(), device);
}

inline Tensor get_or_undefined(const Tensors& in, const std::string& name) {
  const auto it = in.find(name);
  return it == in.end() ? Tensor() : it->second;
}

// Class indices stored as floats (fixtures) -> an Int32 tensor on the same device.
inline Tensor to_indices(const Tensor& t) {
  std::vector<int32_t> out;
  for (float v : t.to_vector()) out.push_back(static_cast<int32_t>(v));
  return Tensor::from_ints({static_cast<int64_t>(out.size())}, out, t.device());
}

inline OpInput input(std::string name, Shape shape, double fd_step = 0.1) {
  OpInput in;
  in.fixture_name = name;
  in.fixture_grad = "d" + name;
  in.name = std::move(name);
  in.shape = std::move(shape);
  in.fd_step = fd_step;
  return in;
}

inline OpInput constant_input(std::string name, Shape shape,
                              std::function<Tensor(const Shape&, Generator&)> random) {
  OpInput in = input(std::move(name), std::move(shape));
  in.differentiable = false;
  in.random = std::move(random);
  return in;
}

inline Tensor random_value(const OpInput& in, Generator& gen) {
  if (in.random) return in.random(in.shape, gen);
  Tensor t(in.shape);
  uniform_(t, in.offset - in.scale, in.offset + in.scale, gen);
  return t;
}

inline Tensors random_inputs(const OpCase& c, Generator& gen) {
  Tensors in;
  for (const OpInput& i : c.inputs) in[i.name] = random_value(i, gen);
  return in;
}

// Uniform values at least 0.1 from 0: finite differences never straddle a kink at 0.
inline Tensor away_from_zero(const Shape& shape, Generator& gen) {
  Tensor t(shape);
  for (float& v : t) {
    const float u = gen.uniform(0.1f, 1.0f);
    v = gen.below(2) ? u : -u;
  }
  return t;
}

// Distinct values 0.01 apart in random order: a step of 1e-3 never changes a window's winner.
inline Tensor distinct_values(const Shape& shape, Generator& gen) {
  Tensor t(shape);
  const int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i) t[i] = 0.01f * static_cast<float>(i - n / 2);
  for (int64_t i = n - 1; i > 0; --i) {
    std::swap(t[i], t[static_cast<int64_t>(gen.below(static_cast<uint64_t>(i + 1)))]);
  }
  return t;
}

// Test names allow letters, digits and '_': 3 -> "3", (3, 2) -> "3x2", -0.5 -> "m0p5".
inline std::string size_name(Size2 s) {
  return s.h == s.w ? std::to_string(s.h) : std::to_string(s.h) + "x" + std::to_string(s.w);
}
inline std::string number_name(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  std::string s;
  for (const char* ch = buf; *ch; ++ch) {
    if (*ch == '-') s += 'm';
    if (*ch == '.') s += 'p';
    if (std::isalnum(static_cast<unsigned char>(*ch))) s += *ch;
  }
  return s;
}
inline nlohmann::json pair_json(Size2 s) { return nlohmann::json::array({s.h, s.w}); }

// One input x -> y with y = forward(x), dx = backward(x, y, dy): the element-wise ops, softmax.
inline OpCase unary(
    const std::string& op, Shape x, double fd_step, std::function<Tensor(const Tensor& x)> forward,
    std::function<Tensor(const Tensor& x, const Tensor& y, const Tensor& dy)> backward) {
  OpCase c;
  c.op = c.name = op;
  c.inputs = {input("x", std::move(x), fd_step)};
  c.forward = [forward](const Tensors& in) { return Forward{{{"y", forward(in.at("x"))}}, {}}; };
  c.backward = [backward](const Tensors& in, const Forward& f, const Tensor& dy) {
    return Tensors{{"dx", backward(in.at("x"), f.y(), dy)}};
  };
  return c;
}

// ---- the adapters, one per op ----

// x: (N, C_in, H, W), w: (C_out, C_in / groups, K_h, K_w), b: (C_out) if bias.
inline OpCase conv2d(Shape x, int64_t c_out, Size2 k, Size2 s, Conv2dPadding p, Size2 d,
                     int64_t groups, bool bias) {
  OpCase c;
  c.op = "conv2d";
  const bool explicit_padding = p.mode == Conv2dPadding::Mode::Explicit;
  // ((top, bottom), (left, right)) where the sides differ (beyond PyTorch: no fixture has it).
  const Size2 end = p.end.value_or(p.size);
  const std::string padding_name =
      !explicit_padding ? p.str()
      : p.per_side()    ? std::to_string(p.size.h) + "_" + std::to_string(end.h) + "_" +
                           std::to_string(p.size.w) + "_" + std::to_string(end.w)
                     : size_name(p.size);
  const nlohmann::json padding_json =
      !explicit_padding ? nlohmann::json(p.str())
      : p.per_side()    ? nlohmann::json::array(
                              {pair_json(Size2(p.size.h, end.h)), pair_json(Size2(p.size.w, end.w))})
                     : pair_json(p.size);
  c.name = "conv2d_k" + size_name(k) + "_s" + size_name(s) + "_p" + padding_name +
           (d.all(1) ? "" : "_d" + size_name(d)) +
           (groups == 1 ? "" : "_g" + std::to_string(groups)) + (bias ? "" : "_nobias");
  c.options = {{"kernel", pair_json(k)},   {"stride", pair_json(s)}, {"padding", padding_json},
               {"dilation", pair_json(d)}, {"groups", groups},       {"bias", bias}};
  const Conv2dGeometry g = conv2d_geometry(k, s, p, d, groups);
  const int64_t c_in = x[1];
  c.inputs = {input("x", std::move(x)), input("w", {c_out, c_in / groups, k.h, k.w})};
  if (bias) c.inputs.push_back(input("b", {c_out}));
  c.forward = [g](const Tensors& in) {
    return Forward{{{"y", conv2d_forward(in.at("x"), in.at("w"), get_or_undefined(in, "b"), g)}},
                   {}};
  };
  c.backward = [g, bias](const Tensors& in, const Forward&, const Tensor& dy) {
    const Tensor &x = in.at("x"), &w = in.at("w");
    Tensor dx = nan_tensor(x.shape(), x.device()), dw(w.shape(), w.device()),
           db = bias ? Tensor({w.size(0)}, w.device()) : Tensor();
    conv2d_backward(x, w, dy, g, &dx, &dw, bias ? &db : nullptr);
    Tensors grads{{"dx", dx}, {"dw", dw}};
    if (bias) grads["db"] = db;
    return grads;
  };
  c.exact_across_kernel_sets = false;
  return c;
}

// x: (..., in_features), w: (out_features, in_features), b: (out_features) if bias.
inline OpCase linear(Shape x, int64_t out, bool bias) {
  OpCase c;
  c.op = "linear";
  const int64_t in_features = x.back();
  c.name = "linear_in" + std::to_string(in_features) + "_out" + std::to_string(out) +
           (bias ? "" : "_nobias");
  c.options = {{"bias", bias}};
  c.inputs = {input("x", std::move(x)), input("w", {out, in_features})};
  if (bias) c.inputs.push_back(input("b", {out}));
  c.forward = [](const Tensors& in) {
    return Forward{{{"y", linear_forward(in.at("x"), in.at("w"), get_or_undefined(in, "b"))}}, {}};
  };
  c.backward = [bias](const Tensors& in, const Forward&, const Tensor& dy) {
    const Tensor &x = in.at("x"), &w = in.at("w");
    Tensor dx = nan_tensor(x.shape(), x.device()), dw(w.shape(), w.device()),
           db = bias ? Tensor({w.size(0)}, w.device()) : Tensor();
    linear_backward(x, w, dy, &dx, &dw, bias ? &db : nullptr);
    Tensors grads{{"dx", dx}, {"dw", dw}};
    if (bias) grads["db"] = db;
    return grads;
  };
  c.exact_across_kernel_sets = false;
  return c;
}

// x: (N, C, H, W). Random inputs are distinct (see distinct_values), finite differences step 1e-3.
// padding_end: the bottom and right padding where they differ (beyond PyTorch: TensorFlow's
// "same"; no fixture has it).
inline OpCase maxpool2d(Shape x, Size2 k, Size2 s, Size2 p, Size2 d, bool ceil_mode,
                        std::optional<Size2> padding_end = std::nullopt) {
  OpCase c;
  c.op = "maxpool2d";
  c.name = "maxpool2d_k" + size_name(k) + "_s" + size_name(s) + "_p" + size_name(p) +
           (padding_end ? "_end" + size_name(*padding_end) : "") +
           (d.all(1) ? "" : "_d" + size_name(d)) + (ceil_mode ? "_ceil" : "");
  c.options = {{"kernel", pair_json(k)},
               {"stride", pair_json(s)},
               {"padding", pair_json(p)},
               {"dilation", pair_json(d)},
               {"ceil_mode", ceil_mode}};
  if (padding_end) c.options["padding_end"] = pair_json(*padding_end);
  const Pool2dGeometry g(k, s, p, d, ceil_mode, padding_end);
  c.inputs = {input("x", std::move(x), 1e-3)};
  c.inputs[0].random = distinct_values;
  c.forward = [g](const Tensors& in) {
    Tensor indices;
    Tensor y = maxpool2d_forward(in.at("x"), g, &indices);
    return Forward{{{"y", y}}, std::move(indices)};
  };
  c.backward = [g](const Tensors& in, const Forward& f, const Tensor& dy) {
    const auto& indices = std::any_cast<const Tensor&>(f.saved);
    return Tensors{{"dx", maxpool2d_backward(in.at("x").shape(), dy, indices, g)}};
  };
  return c;
}

inline OpCase avgpool2d(Shape x, Size2 k, Size2 s, Size2 p, bool ceil_mode, bool count_include_pad,
                        std::optional<int64_t> divisor_override) {
  OpCase c;
  c.op = "avgpool2d";
  c.name = "avgpool2d_k" + size_name(k) + "_s" + size_name(s) + "_p" + size_name(p) +
           (ceil_mode ? "_ceil" : "") + (count_include_pad ? "" : "_exclude_pad") +
           (divisor_override ? "_div" + std::to_string(*divisor_override) : "");
  c.options = {{"kernel", pair_json(k)},
               {"stride", pair_json(s)},
               {"padding", pair_json(p)},
               {"ceil_mode", ceil_mode},
               {"count_include_pad", count_include_pad},
               {"divisor_override",
                divisor_override ? nlohmann::json(*divisor_override) : nlohmann::json(nullptr)}};
  const AvgPool2dGeometry g(k, s, p, ceil_mode, count_include_pad, divisor_override);
  c.inputs = {input("x", std::move(x))};
  c.forward = [g](const Tensors& in) {
    return Forward{{{"y", avgpool2d_forward(in.at("x"), g)}}, {}};
  };
  c.backward = [g](const Tensors& in, const Forward&, const Tensor& dy) {
    return Tensors{{"dx", avgpool2d_backward(in.at("x").shape(), dy, g)}};
  };
  return c;
}

inline OpCase adaptive_avgpool2d(Shape x, Size2 out) {
  OpCase c;
  c.op = "adaptive_avgpool2d";
  c.name = "adaptive_avgpool2d_out" + size_name(out);
  c.options = {{"output_size", pair_json(out)}};
  c.inputs = {input("x", std::move(x))};
  c.forward = [out](const Tensors& in) {
    return Forward{{{"y", adaptive_avgpool2d_forward(in.at("x"), out)}}, {}};
  };
  c.backward = [](const Tensors& in, const Forward&, const Tensor& dy) {
    return Tensors{{"dx", adaptive_avgpool2d_backward(in.at("x").shape(), dy)}};
  };
  return c;
}

// x: (N, C, H, W) ~ 2 U(-1, 1) + offset. Without running statistics (track_running_stats=False)
// the batch's statistics are used in evaluation too, as the BatchNorm2d module does.
inline OpCase batchnorm2d(Shape x, double eps, double momentum, bool affine, bool track,
                          bool training, float offset = 0.0f) {
  OpCase c;
  c.op = "batchnorm2d";
  c.name = std::string("batchnorm2d_") + (training ? "train" : "eval") +
           (affine ? "" : "_noaffine") + (track ? "" : "_nostats") +
           (momentum == 0.1 ? "" : "_momentum" + number_name(momentum)) +
           (eps == 1e-5 ? "" : "_eps" + number_name(eps));
  c.options = {{"eps", eps},
               {"momentum", momentum},
               {"affine", affine},
               {"track_running_stats", track},
               {"training", training}};
  const int64_t channels = x[1];
  c.inputs = {input("x", std::move(x), 1e-2)};
  c.inputs[0].scale = 2.0f;
  c.inputs[0].offset = offset;
  if (affine) {
    c.inputs.push_back(input("w", {channels}));
    c.inputs.back().fixture_name = "before/weight";
    c.inputs.back().offset = 1.0f;
    c.inputs.back().scale = 0.5f;
    c.inputs.push_back(input("b", {channels}));
    c.inputs.back().fixture_name = "before/bias";
  }
  if (track) {
    auto positive = [](const Shape& shape, Generator& gen) {
      Tensor t(shape);
      uniform_(t, 0.5f, 1.5f, gen);
      return t;
    };
    auto any = [](const Shape& shape, Generator& gen) {
      Tensor t(shape);
      uniform_(t, -1.0f, 1.0f, gen);
      return t;
    };
    c.inputs.push_back(constant_input("running_mean", {channels}, any));
    c.inputs.back().fixture_name = "before/running_mean";
    c.inputs.push_back(constant_input("running_var", {channels}, positive));
    c.inputs.back().fixture_name = "before/running_var";
    c.fixture_outputs["running_mean"] = "after/running_mean";
    c.fixture_outputs["running_var"] = "after/running_var";
  }
  const bool batch_stats = training || !track;
  c.forward = [=](const Tensors& in) {
    Forward f;
    Tensor mean, var;  // copies: the running statistics are updated in place
    if (track) {
      mean = in.at("running_mean").clone();
      var = in.at("running_var").clone();
    }
    BatchNorm2dSaved saved;
    f.out["y"] = batchnorm2d_forward(in.at("x"), get_or_undefined(in, "w"),
                                     get_or_undefined(in, "b"), track ? &mean : nullptr,
                                     track ? &var : nullptr, batch_stats, momentum, eps, &saved);
    if (track) {
      f.out["running_mean"] = mean;
      f.out["running_var"] = var;
    }
    f.saved = saved;
    return f;
  };
  c.backward = [=](const Tensors& in, const Forward& f, const Tensor& dy) {
    const Tensor& x = in.at("x");
    Tensor dx = nan_tensor(x.shape(), x.device()), dw({channels}, x.device()),
           db({channels}, x.device());
    batchnorm2d_backward(x, dy, get_or_undefined(in, "w"),
                         std::any_cast<const BatchNorm2dSaved&>(f.saved), batch_stats, &dx,
                         affine ? &dw : nullptr, affine ? &db : nullptr);
    Tensors grads{{"dx", dx}};
    if (affine) {
      grads["dw"] = dw;
      grads["db"] = db;
    }
    return grads;
  };
  return c;
}

inline OpCase relu(Shape x) {
  OpCase c = unary(
      "relu", std::move(x), 1e-2, [](const Tensor& x) { return relu_forward(x); },
      [](const Tensor&, const Tensor& y, const Tensor& dy) { return relu_backward(y, dy); });
  c.options = {{"option", 0}};
  c.inputs[0].random = away_from_zero;
  return c;
}

// The activations of cnn/ops/activation.h; x ~ scale U(-1, 1) (the fixtures: scale N(0, 1)).
inline OpCase activation(
    const std::string& op, Shape x, double scale, nlohmann::json option, double fd_step,
    std::function<Tensor(const Tensor& x)> forward,
    std::function<Tensor(const Tensor& x, const Tensor& y, const Tensor& dy)> backward) {
  OpCase c = unary(op, std::move(x), fd_step, std::move(forward), std::move(backward));
  c.options = {{"option", option}, {"scale", scale}};
  c.inputs[0].scale = static_cast<float>(scale);
  return c;
}

inline OpCase tanh_op(Shape x, double scale) {
  return activation(
      "tanh", std::move(x), scale, nullptr, 1e-3, [](const Tensor& x) { return tanh_forward(x); },
      [](const Tensor&, const Tensor& y, const Tensor& dy) { return tanh_backward(y, dy); });
}

inline OpCase sigmoid(Shape x, double scale) {
  return activation(
      "sigmoid", std::move(x), scale, nullptr, 1e-3,
      [](const Tensor& x) { return sigmoid_forward(x); },
      [](const Tensor&, const Tensor& y, const Tensor& dy) { return sigmoid_backward(y, dy); });
}

inline OpCase silu(Shape x, double scale) {
  return activation(
      "silu", std::move(x), scale, nullptr, 1e-3, [](const Tensor& x) { return silu_forward(x); },
      [](const Tensor& x, const Tensor&, const Tensor& dy) { return silu_backward(x, dy); });
}

// Identity has no op function: its module is the public API.
inline OpCase identity(Shape x, double scale) {
  return activation(
      "identity", std::move(x), scale, nullptr, 0.1,
      [](const Tensor& x) { return Identity().forward(x).clone(); },
      [](const Tensor& x, const Tensor&, const Tensor& dy) {
        Identity id;
        id.forward(x);
        return id.backward(dy).clone();
      });
}

// Random inputs away from the kink at 0.
inline OpCase leaky_relu(Shape x, double slope, double scale) {
  const float a = static_cast<float>(slope);
  OpCase c = activation(
      "leaky_relu", std::move(x), scale, slope, 1e-2,
      [a](const Tensor& x) { return leaky_relu_forward(x, a); },
      [a](const Tensor& x, const Tensor&, const Tensor& dy) {
        return leaky_relu_backward(x, dy, a);
      });
  c.name += "_slope" + number_name(slope);
  c.inputs[0].random = [scale](const Shape& shape, Generator& gen) {
    Tensor t = away_from_zero(shape, gen);
    for (float& v : t) v *= static_cast<float>(scale);
    return t;
  };
  return c;
}

inline OpCase gelu(Shape x, const std::string& approximate, double scale) {
  const GeluApproximate a = gelu_approximate(approximate);
  OpCase c = activation(
      "gelu", std::move(x), scale, approximate, 1e-3,
      [a](const Tensor& x) { return gelu_forward(x, a); },
      [a](const Tensor& x, const Tensor&, const Tensor& dy) { return gelu_backward(x, dy, a); });
  c.name += "_" + approximate;
  return c;
}

// The backward pass is dy.reshape(x.shape()), as the Flatten module's.
inline OpCase flatten(Shape x, int64_t start_dim, int64_t end_dim) {
  OpCase c = unary(
      "flatten", std::move(x), 0.1,
      [=](const Tensor& x) { return flatten_forward(x, start_dim, end_dim); },
      [](const Tensor& x, const Tensor&, const Tensor& dy) { return dy.reshape(x.shape()); });
  c.name += "_" + number_name(static_cast<double>(start_dim)) + "_" +
            number_name(static_cast<double>(end_dim));
  c.options = {{"option", {start_dim, end_dim}}};
  return c;
}

// x ~ scale U(-1, 1) (softmax_large's logits: scale 300).
inline OpCase softmax(Shape x, int64_t dim, double scale = 1.0) {
  OpCase c = unary(
      "softmax", std::move(x), 1e-3, [dim](const Tensor& x) { return softmax_forward(x, dim); },
      [dim](const Tensor&, const Tensor& y, const Tensor& dy) {
        return softmax_backward(y, dy, dim);
      });
  c.name += "_dim" + number_name(static_cast<double>(dim)) +
            (scale == 1.0 ? "" : "_scale" + number_name(scale));
  c.options = {{"option", dim}, {"scale", scale}};
  c.inputs[0].scale = static_cast<float>(scale);
  return c;
}

inline OpCase log_softmax(Shape x, int64_t dim, double scale = 1.0) {
  OpCase c = unary(
      "log_softmax", std::move(x), 1e-3,
      [dim](const Tensor& x) { return log_softmax_forward(x, dim); },
      [dim](const Tensor&, const Tensor& y, const Tensor& dy) {
        return log_softmax_backward(y, dy, dim);
      });
  c.name += "_dim" + number_name(static_cast<double>(dim)) +
            (scale == 1.0 ? "" : "_scale" + number_name(scale));
  c.options = {{"option", dim}, {"scale", scale}};
  c.inputs[0].scale = static_cast<float>(scale);
  return c;
}

// x and mask (1 = keep, 0 = drop): dropout_mask's, x away from 0 as in the fixtures.
inline OpCase dropout(Shape x, double p_) {
  const float p = static_cast<float>(p_);
  OpCase c;
  c.op = "dropout";
  c.name = "dropout_p" + number_name(p_);
  c.options = {{"p", p_}};
  Shape mask_shape = x;
  c.inputs = {input("x", std::move(x)),
              constant_input("mask", std::move(mask_shape), [p](const Shape& s, Generator& gen) {
                return dropout_mask(s, p, gen);
              })};
  c.inputs[0].offset = 1.0f;
  c.inputs[0].scale = 0.5f;
  c.forward = [p](const Tensors& in) {
    return Forward{{{"y", dropout_forward(in.at("x"), in.at("mask"), p)}}, {}};
  };
  c.backward = [p](const Tensors& in, const Forward&, const Tensor& dy) {
    return Tensors{{"dx", dropout_backward(dy, in.at("mask"), p)}};
  };
  return c;
}

// logits: (N, C) ~ scale U(-1, 1), targets: N class indices (as floats) -> y: the loss, (1).
inline OpCase cross_entropy(int64_t n, int64_t classes, double scale = 1.0) {
  OpCase c;
  c.op = "cross_entropy";
  c.name = "cross_entropy_n" + std::to_string(n) + "_c" + std::to_string(classes) +
           (scale == 1.0 ? "" : "_scale" + number_name(scale));
  c.inputs = {input("logits", {n, classes}, 1e-2),
              constant_input("targets", {n}, [classes](const Shape& s, Generator& gen) {
                Tensor t(s);
                for (float& v : t)
                  v = static_cast<float>(gen.below(static_cast<uint64_t>(classes)));
                return t;
              })};
  c.inputs[0].scale = static_cast<float>(scale);
  c.fixture_outputs = {{"y", "loss"}};
  c.forward = [](const Tensors& in) {
    CrossEntropyResult r = cross_entropy_forward(in.at("logits"), to_indices(in.at("targets")));
    return Forward{{{"y", Tensor::from({1}, {r.loss}, r.log_probs.device())}}, r.log_probs};
  };
  c.backward = [](const Tensors& in, const Forward& f, const Tensor& dy) {
    return Tensors{
        {"dlogits", cross_entropy_backward(std::any_cast<const Tensor&>(f.saved),
                                           to_indices(in.at("targets")), dy.to_vector()[0])}};
  };
  return c;
}

// ---- the table ----

// Appends the input's shape to every name that occurs more than once, then a counter to any
// that still does, so that every test has its own name.
inline std::vector<OpCase> with_unique_names(std::vector<OpCase> cases) {
  auto count = [&](const std::string& name) {
    return std::count_if(cases.begin(), cases.end(),
                         [&](const OpCase& c) { return c.name == name; });
  };
  std::vector<std::string> names;
  for (const OpCase& c : cases) {
    std::string name = c.name;
    if (count(c.name) > 1) {
      name += "_";
      for (std::size_t i = 0; i < c.inputs[0].shape.size(); ++i) {
        name += (i ? "x" : "") + std::to_string(c.inputs[0].shape[i]);
      }
    }
    names.push_back(name);
  }
  std::set<std::string> seen;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    std::string name = names[i];
    for (int k = 2; seen.count(name); ++k) name = names[i] + "_" + std::to_string(k);
    seen.insert(name);
    cases[i].name = name;
  }
  return cases;
}

}  // namespace cnn::op_table
