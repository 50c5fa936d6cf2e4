// The explorer's backprop views (/api/gradient, /api/layer/dw-step) on every shipped model and on
// a model with every convolution option: the input gradient against a central finite difference
// of the objective, each layer's gradient against the layers after it run and differentiated on
// their own, each weight's step-through against the library's .grad and against a plain
// forward/backward pass of the test's own; and the refusals.
#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <memory>

#include "cnn/explore/api.h"
#include "cnn/models/registry.h"
#include "cnn/nn/grad_mode.h"
#include "cnn/nn/layers.h"
#include "cnn/nn/spec.h"
#include "cnn/ops/argmax.h"
#include "cnn/ops/cross_entropy.h"
#include "cnn/random.h"
#include "explorer_testing.h"
#include "testing.h"

namespace cnn::testing {
namespace {

using json = nlohmann::json;
using Leaves = std::vector<std::pair<std::string, std::shared_ptr<Module>>>;

struct Model {
  std::shared_ptr<Module> module;
  Shape input;
};

void leaves_of(const std::shared_ptr<Module>& m, const std::string& path, Leaves& out) {
  if (m->children().empty()) {
    out.emplace_back(path, m);
    return;
  }
  for (const auto& [name, child] : m->children()) {
    leaves_of(child, path.empty() ? name : path + "." + name, out);
  }
}

Leaves leaves_of(const Model& m) {
  Leaves out;
  leaves_of(m.module, "", out);
  return out;
}

// Batch norms with running statistics of their own and random affine maps (a new one's are the
// identity, which would hide a backward that ignores them), then evaluation mode, as the server
// holds a model. The statistics are those of random images, as training leaves them: activations
// of about unit size, so that the finite differences below see the gradients above float32's
// rounding (statistics drawn at random shrink or blow up each block's output, and with it the
// gradients, by orders of magnitude).
Model with_random_batch_norms(Model m, uint64_t seed) {
  Generator gen(seed);
  const Leaves leaves = leaves_of(m);
  const bool any = std::any_of(leaves.begin(), leaves.end(), [](const auto& l) {
    return dynamic_cast<const BatchNorm2d*>(l.second.get()) != nullptr;
  });
  if (any) {
    for (const auto& [path, leaf] : leaves) {
      auto* bn = dynamic_cast<BatchNorm2d*>(leaf.get());
      if (bn && bn->weight()) {
        uniform_(bn->weight()->value, 0.5f, 1.5f, gen);
        uniform_(bn->bias()->value, -0.3f, 0.3f, gen);
      }
    }
    Shape batch = {8};
    batch.insert(batch.end(), m.input.begin(), m.input.end());
    Tensor images(batch);
    uniform_(images, 0.0f, 1.0f, gen);
    m.module->train();
    NoGradGuard no_grad;
    // momentum 0.1: the running statistics are within 0.9^60 (0.2 %) of the batch's.
    for (int i = 0; i < 60; ++i) m.module->forward(images);
  }
  m.module->eval();
  return m;
}

Model shipped(const std::string& name) {
  Generator gen(17);
  BuiltModel b = build_model(shipped_model(name), gen, "models/" + name + ".json");
  return with_random_batch_norms({b.module, b.input}, 29);
}

Model described(const std::string& text) {
  Generator gen(5);
  BuiltModel b = build_model(json::parse(text), gen);
  return with_random_batch_norms({b.module, b.input}, 31);
}

// Asymmetric "same" padding (an even kernel: one row more below than above) with dilation and
// groups, stride 2 with dilation 2 and groups 2, an even "same" kernel again, no bias.
const char* const kEveryConvOption = R"({"input": [2, 13, 11], "layers": [
  {"type": "Conv2d", "out_channels": 4, "kernel_size": [4, 2], "padding": "same",
   "dilation": [1, 2], "groups": 2},
  {"type": "ReLU"},
  {"type": "Conv2d", "out_channels": 6, "kernel_size": 3, "stride": 2, "padding": [2, 1],
   "dilation": 2, "groups": 2, "bias": false},
  {"type": "Tanh"},
  {"type": "Conv2d", "out_channels": 4, "kernel_size": [2, 3], "padding": "same"},
  {"type": "Flatten"}, {"type": "Linear", "out_features": 3}]})";

// The layers a model file can declare that the shipped models do not hold, or not so: a batch
// norm without running statistics (in evaluation mode too it normalises with the batch's, and
// its backward goes through them), one without affine map, GELU both ways, Sigmoid, Identity,
// Keras's channels-last Flatten, and LogSoftmax last (its output is the "score").
const char* const kEveryOtherLayer = R"({"input": [2, 9, 8], "layers": [
  {"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1},
  {"type": "BatchNorm2d", "track_running_stats": false},
  {"type": "GELU"},
  {"type": "Conv2d", "out_channels": 6, "kernel_size": 2},
  {"type": "Sigmoid"}, {"type": "Identity"},
  {"type": "AvgPool2d", "kernel_size": 2, "ceil_mode": true},
  {"type": "BatchNorm2d", "affine": false},
  {"type": "GELU", "approximate": "tanh"},
  {"type": "Flatten", "channels_last": true},
  {"type": "Linear", "out_features": 5}, {"type": "LogSoftmax", "dim": 1}]})";

// ---- The test's own forward and backward pass, leaf by leaf ----

// Leaves [begin, end) run on y, one by one (the shipped models are chains of their leaves).
Tensor run(const Leaves& leaves, std::size_t begin, std::size_t end, Tensor y) {
  for (std::size_t k = begin; k < end; ++k) y = leaves[k].second->forward(y);
  return y;
}

// Leaves [begin, end)'s backward passes from d, last first: d objective / d (leaf begin's input).
Tensor back(const Leaves& leaves, std::size_t begin, std::size_t end, Tensor d) {
  for (std::size_t k = end; k-- > begin;) d = leaves[k].second->backward(d);
  return d;
}

// The objective of logits (1, classes), in double (the finite differences below would otherwise
// see the loss rounded to float, about 2e-7 of a loss of 2), and its gradient w.r.t. them.
std::pair<double, Tensor> objective(const Tensor& logits, int64_t cls, const std::string& of) {
  if (of == "score") {
    Tensor d(logits.shape());
    d[cls] = 1.0f;
    return {logits[cls], d};
  }
  const int64_t classes = logits.size(1);
  double top = logits[0];
  for (int64_t k = 1; k < classes; ++k) top = std::max(top, static_cast<double>(logits[k]));
  double sum = 0;
  for (int64_t k = 0; k < classes; ++k) sum += std::exp(logits[k] - top);
  const double loss = std::log(sum) + top - logits[cls];
  const CrossEntropyResult ce = cross_entropy_forward(logits, std::vector<int64_t>{cls});
  return {loss, cross_entropy_backward(ce.log_probs, std::vector<int64_t>{cls})};
}

// d objective / d (leaf k's output), from leaf k's output y_k: the leaves after it run and
// differentiated on their own.
Tensor gradient_after(const Leaves& leaves, std::size_t k, const Tensor& y_k, int64_t cls,
                      const std::string& of) {
  const Tensor logits = run(leaves, k + 1, leaves.size(), y_k);
  return back(leaves, k + 1, leaves.size(), objective(logits, cls, of).second);
}

// Each leaf's output for x, without gradients.
std::vector<Tensor> outputs_of(const Leaves& leaves, const Tensor& x) {
  NoGradGuard no_grad;
  std::vector<Tensor> out;
  Tensor y = x;
  for (const auto& [path, leaf] : leaves) out.push_back(y = leaf->forward(y));
  return out;
}

bool all_grads_zero(Module& m) {
  for (Parameter* p : m.parameters()) {
    for (float g : p->grad.to_vector()) {
      if (g != 0.0f) return false;
    }
  }
  return true;
}

// The elements of g (flattened) where |g| is largest, and a few spread over it.
std::vector<int64_t> probe_positions(const Tensor& g, int count) {
  std::vector<int64_t> order(static_cast<std::size_t>(g.numel()));
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  std::partial_sort(order.begin(), order.begin() + count, order.end(),
                    [&](int64_t a, int64_t b) { return std::fabs(g[a]) > std::fabs(g[b]); });
  std::vector<int64_t> out(order.begin(), order.begin() + count);
  for (int i = 1; i <= count; ++i) out.push_back(g.numel() * i / (count + 2));
  return out;
}

float max_abs(const Tensor& t) {
  float m = 0.0f;
  for (float v : t.to_vector()) m = std::max(m, std::fabs(v));
  return m;
}

// How far backprop's derivative g of f at x along element i is from finite differences of f.
// g is the slope at x itself; a difference is the mean slope over a step, and in a network of
// ReLUs and max pools the slope changes wherever a unit's input crosses 0 or a pool's winner
// changes: in the deeper models (vgg-bn, bn-gap), moving one pixel by 1e-3 crosses such kinks,
// enough to move a central difference by several percent of the gradient (measured), and a kink
// can lie within 1e-5 of x. Below a step of about 1e-4, float32's rounding of the objective (about
// 1e-8 of logits of 0.1 to 1; the loss is computed in double from the float logits) over the step
// takes over. So no one step fits every model and pixel: the differences are taken at steps
// from 2e-3 down to 6e-5, central and one-sided (a kink on one side leaves the other side's
// exact), and the closest one counts. Over 12 inputs, both objectives and 8 elements each, the
// closest was within 3.3e-3 of the map's largest gradient on every shipped model; a wrong gradient
// (another element's or channel's, a wrong sign or factor) is off by O(1) of it at every step.
double fd_mismatch(const std::function<double(const Tensor&)>& f, const Tensor& x, int64_t i,
                   double g) {
  const double f0 = f(x);
  double best = INFINITY;
  for (double h = 2e-3; h > 5e-5; h /= 2) {
    Tensor plus = x.clone(), minus = x.clone();
    plus[i] += static_cast<float>(h);
    minus[i] -= static_cast<float>(h);
    const double fp = f(plus), fm = f(minus);
    // The steps as float32 takes them.
    const double up = static_cast<double>(plus[i]) - x[i],
                 down = x[i] - static_cast<double>(minus[i]);
    for (double d : {(fp - fm) / (up + down), (fp - f0) / up, (f0 - fm) / down}) {
      best = std::min(best, std::fabs(d - g));
    }
  }
  return best;
}

// Of the largest gradient in the map: see fd_mismatch.
constexpr double kFdTolerance = 1e-2;

const char* const kObjectives[] = {"score", "loss"};

// The shipped models and kEveryOtherLayer.
std::vector<std::string> test_models() {
  std::vector<std::string> names = shipped_model_names();
  names.push_back("every other layer");
  return names;
}

Model test_model(const std::string& name) {
  return name == "every other layer" ? described(kEveryOtherLayer) : shipped(name);
}

TEST(ExplorerGradient, InputGradientIsAFiniteDifferenceOfTheObjective) {
  for (const std::string& name : test_models()) {
    SCOPED_TRACE(name);
    const Model m = test_model(name);
    const ExplorerApi api(m.module, m.input, json::object());
    for (uint64_t seed : {3, 4}) {
      const json pixels = random_pixels(m.input, seed);
      const Tensor x = batch_of(pixels, m.input);
      for (const char* of : kObjectives) {
        SCOPED_TRACE(std::string(of) + ", seed " + std::to_string(seed));
        const json r = api.gradient({{"pixels", pixels}, {"of", of}});
        Tensor logits;
        {
          NoGradGuard no_grad;
          logits = m.module->forward(x);
        }
        const int64_t pred = argmax(logits, 1)[0];
        EXPECT_EQ(r["prediction"], pred);
        EXPECT_EQ(r["class"], pred);
        EXPECT_EQ(r["of"], of);
        const int64_t cls = pred;
        const auto f = [&](const Tensor& in) {
          NoGradGuard no_grad;
          return objective(m.module->forward(in), cls, of).first;
        };
        EXPECT_NEAR(r["objective"].get<double>(), f(x), 1e-6 * (1 + std::fabs(f(x))));
        const Tensor g = tensor_of(r["input_gradient"], m.input);
        const float scale = max_abs(g);
        ASSERT_GT(scale, 0.0f);
        EXPECT_EQ(r["input_range"]["max"].get<float>(),
                  *std::max_element(g.data(), g.data() + g.numel()));
        for (int64_t i : probe_positions(g, 4)) {
          EXPECT_LE(fd_mismatch(f, x, i, g[i]), kFdTolerance * scale) << "pixel " << i;
        }
      }
    }
    EXPECT_TRUE(all_grads_zero(*m.module));
  }
}

TEST(ExplorerGradient, LayerGradientIsTheLayersAfterItDifferentiatedOnTheirOwn) {
  for (const std::string& name : test_models()) {
    SCOPED_TRACE(name);
    const Model m = test_model(name);
    const ExplorerApi api(m.module, m.input, json::object());
    const Leaves leaves = leaves_of(m);
    const json pixels = random_pixels(m.input, 7);
    const Tensor x = batch_of(pixels, m.input);
    const std::vector<Tensor> outputs = outputs_of(leaves, x);
    const int64_t pred = argmax(outputs.back(), 1)[0];
    const int64_t cls = (pred + 3) % outputs.back().size(1);  // not the default
    int checked = 0;
    for (std::size_t k = 0; k < leaves.size(); ++k) {
      if (outputs[k].dim() != 4) continue;
      const std::string& path = leaves[k].first;
      SCOPED_TRACE(path);
      const std::string of = kObjectives[k % 2];
      const json r =
          api.gradient({{"pixels", pixels}, {"layer", path}, {"class", cls}, {"of", of}});
      EXPECT_EQ(r["layer"], path);
      EXPECT_EQ(r["class"], cls);
      const Shape shape = outputs[k].shape();
      ASSERT_EQ(r["channels_shown"], shape[1]);  // far below the budget
      const Tensor got = tensor_of(r["layer_gradient"], shape);
      // The same layers' backward passes as the model's: the same floats.
      const Tensor want = gradient_after(leaves, k, outputs[k], cls, of);
      m.module->zero_grad();  // what gradient_after left
      ASSERT_EQ(got.to_vector(), want.to_vector());
      ASSERT_EQ(r["layer_ranges"].size(), static_cast<std::size_t>(shape[1]));
      const float* last = got.data() + (shape[1] - 1) * shape[2] * shape[3];
      EXPECT_EQ(r["layer_ranges"].back()["min"].get<float>(),
                *std::min_element(last, last + shape[2] * shape[3]));
      EXPECT_EQ(r["layer_range"]["max"].get<float>(),
                *std::max_element(got.data(), got.data() + got.numel()));
      // And a central difference through the layers after it, as for the input.
      const float scale = max_abs(got);
      ASSERT_GT(scale, 0.0f);
      const auto f = [&](const Tensor& y) {
        NoGradGuard no_grad;
        return objective(run(leaves, k + 1, leaves.size(), y), cls, of).first;
      };
      for (int64_t i : probe_positions(got, 2)) {
        EXPECT_LE(fd_mismatch(f, outputs[k], i, got[i]), kFdTolerance * scale) << "element " << i;
      }
      ++checked;
    }
    EXPECT_GT(checked, 2);
    EXPECT_TRUE(all_grads_zero(*m.module));
  }
}

// The taps a dw-step is checked at: the kernel's corners and middle, for the first and last
// output channel and the first and last input channel of its group.
std::vector<std::array<int64_t, 4>> taps(const Shape& w) {
  std::vector<std::array<int64_t, 4>> out;
  for (int64_t o : {int64_t{0}, w[0] - 1}) {
    for (int64_t i : {int64_t{0}, w[1] - 1}) {
      for (auto [r, c] : {std::pair<int64_t, int64_t>{0, 0},
                          {w[2] - 1, w[3] - 1},
                          {w[2] / 2, (w[3] - 1) / 2},
                          {w[2] - 1, 0}}) {
        out.push_back({o, i, r, c});
      }
    }
  }
  return out;
}

// Every Conv2d's dw-steps at taps(): the window is the layer's input read at rows x cols (0 where
// padded), the upstream its output's gradient, the products theirs, the total their sum and the
// library's .grad; and that .grad is what a plain forward/backward pass gives. Returns the number
// of steps checked.
int check_dw_steps(const Model& m, uint64_t seed) {
  const ExplorerApi api(m.module, m.input, json::object());
  const Leaves leaves = leaves_of(m);
  const json pixels = random_pixels(m.input, seed);
  const Tensor x = batch_of(pixels, m.input);
  const std::vector<Tensor> outputs = outputs_of(leaves, x);
  const int64_t classes = outputs.back().size(1);
  int checked = 0;
  for (std::size_t k = 0; k < leaves.size(); ++k) {
    auto* conv = dynamic_cast<Conv2d*>(leaves[k].second.get());
    if (!conv) continue;
    const std::string& path = leaves[k].first;
    SCOPED_TRACE(path);
    const Tensor in = k == 0 ? x : outputs[k - 1];
    const int64_t H = in.size(2), W = in.size(3);
    const Shape w = conv->weight().value.shape();
    const int64_t groups = conv->geometry().groups;
    const int64_t cls = static_cast<int64_t>(k) % classes;
    for (const char* of : kObjectives) {
      // The test's own pass: the whole model's forward (its fused training paths included) and
      // backward, and the layer's output gradient from the layers after it.
      m.module->zero_grad();
      const Tensor logits = m.module->forward(x);
      m.module->backward(objective(logits, cls, of).second);
      const Tensor dw = conv->weight().grad.clone();
      m.module->zero_grad();
      const Tensor dy = gradient_after(leaves, k, outputs[k], cls, of);
      m.module->zero_grad();
      const int64_t H_out = dy.size(2), W_out = dy.size(3);
      for (const auto& [o, i, r, c] : taps(w)) {
        SCOPED_TRACE(std::string(of) + " " + std::to_string(o) + ", " + std::to_string(i) + ", " +
                     std::to_string(r) + ", " + std::to_string(c));
        const json s = api.dw_step({{"pixels", pixels},
                                    {"layer", path},
                                    {"out_channel", o},
                                    {"in_channel", i},
                                    {"row", r},
                                    {"col", c},
                                    {"class", cls},
                                    {"of", of}});
        EXPECT_EQ(s["layer"], path);
        EXPECT_EQ(s["weight"], json({o, i, r, c}));
        EXPECT_EQ(s["class"], cls);
        EXPECT_EQ(s["of"], of);
        EXPECT_EQ(s["output_shape"], json({H_out, W_out}));
        const int64_t ic = o / (w[0] / groups) * w[1] + i;
        EXPECT_EQ(s["input_channel"], ic);
        const json& rows = s["rows"];
        const json& cols = s["cols"];
        EXPECT_EQ(rows.size(), static_cast<std::size_t>(H_out));
        EXPECT_EQ(cols.size(), static_cast<std::size_t>(W_out));
        const Conv2dGeometry& g = conv->geometry();
        double total = 0, magnitude = 0;
        for (int64_t y = 0; y < H_out; ++y) {
          const int64_t row = y * g.stride.h - g.pad_top + r * g.dilation.h;
          EXPECT_EQ(rows[y], row);
          for (int64_t xo = 0; xo < W_out; ++xo) {
            const int64_t col = xo * g.stride.w - g.pad_left + c * g.dilation.w;
            if (y == 0) {
              EXPECT_EQ(cols[xo], col);
            }
            const bool outside = row < 0 || row >= H || col < 0 || col >= W;
            EXPECT_EQ(s["padded"][y][xo], outside);
            const float v = outside ? 0.0f : in[(ic * H + row) * W + col];
            const float u = dy[(o * H_out + y) * W_out + xo];
            EXPECT_EQ(s["window"][y][xo].get<float>(), v);
            EXPECT_EQ(s["upstream"][y][xo].get<float>(), u);
            EXPECT_EQ(s["products"][y][xo].get<float>(), v * u);
            total += v * u;
            magnitude += std::fabs(v * u);
          }
        }
        const double value = s["value"].get<double>();
        // The library sums the products in float in its own order (im2col and SGEMM, blocked
        // kernels), the step in double: they differ by a few float roundings of the terms'
        // magnitude.
        const double tol = 1e-5 * (1 + magnitude);
        EXPECT_NEAR(s["total"].get<double>(), total, 1e-6 * (1 + magnitude));
        EXPECT_NEAR(s["total"].get<double>(), value, tol);
        // The same backward pass as the test's own (its fused ReLU and max pooling give the same
        // floats as the layers one by one).
        EXPECT_EQ(value, dw[((o * w[1] + i) * w[2] + r) * w[3] + c]);
        ++checked;
      }
    }
  }
  EXPECT_TRUE(all_grads_zero(*m.module));
  return checked;
}

TEST(ExplorerGradient, WeightStepsAreTheLibrarysWeightGradients) {
  for (const char* name : {"tutorial", "bn-gap", "dilated", "rgb-nested"}) {
    SCOPED_TRACE(name);
    EXPECT_GT(check_dw_steps(shipped(name), 13), 30);
  }
}

TEST(ExplorerGradient, WeightStepsWithEveryConvolutionOption) {
  const Model m = described(kEveryConvOption);
  // The first layer's "same" padding is one row above and two below.
  const auto* first = dynamic_cast<const Conv2d*>(leaves_of(m).front().second.get());
  ASSERT_EQ(first->geometry().pad_top, 1);
  ASSERT_EQ(first->geometry().pad_bottom, 2);
  EXPECT_EQ(check_dw_steps(m, 19), 3 * 2 * 16);
  const ExplorerApi api(m.module, m.input, json::object());
  const json s = api.dw_step({{"pixels", random_pixels(m.input, 2)},
                              {"layer", "2"},
                              {"out_channel", 5},
                              {"in_channel", 1},
                              {"row", 2},
                              {"col", 0}});
  EXPECT_EQ(s["of"], "loss");
  EXPECT_EQ(s["input_channel"], 3);  // group 1 of 2, its second channel
  EXPECT_EQ(s["stride"], json({2, 2}));
  EXPECT_EQ(s["dilation"], json({2, 2}));
  EXPECT_EQ(s["padding"], json({{"top", 2}, {"bottom", 2}, {"left", 1}, {"right", 1}}));
  EXPECT_EQ(s["groups"], 2);
}

TEST(ExplorerGradient, ObjectivesAndDefaults) {
  const Model m = shipped("tutorial");
  ExplorerApi api(m.module, m.input, json::object());
  auto test = std::make_shared<Dataset>();
  test->name = "mnist";
  test->count = 2;
  test->rows = test->cols = 28;
  test->num_classes = 10;
  test->labels = {3, 4};
  Generator gen(1);
  for (int i = 0; i < 2 * 28 * 28; ++i)
    test->pixels.push_back(static_cast<uint8_t>(gen.uniform() * 255));
  api.set_test_images(test);
  Tensor logits;
  {
    NoGradGuard no_grad;
    logits = m.module->forward(test->image_tensor(1));
  }
  const int64_t pred = argmax(logits, 1)[0];
  // "score" by default, of the prediction.
  json r = api.gradient({{"test_index", 1}});
  EXPECT_EQ(r["of"], "score");
  EXPECT_EQ(r["class"], pred);
  EXPECT_EQ(r["objective"].get<float>(), logits[pred]);
  // "loss" of a test image: against its label.
  r = api.gradient({{"test_index", 1}, {"of", "loss"}});
  EXPECT_EQ(r["class"], 4);
  EXPECT_NEAR(r["objective"].get<double>(), objective(logits, 4, "loss").first, 1e-6);
  // dw-step: "loss" by default.
  r = api.dw_step({{"test_index", 1},
                   {"layer", "conv1.0"},
                   {"out_channel", 0},
                   {"in_channel", 0},
                   {"row", 0},
                   {"col", 0}});
  EXPECT_EQ(r["of"], "loss");
  EXPECT_EQ(r["class"], 4);
  // Of pixels, the loss is against the prediction unless a class is given.
  const json px = random_pixels(m.input, 9);
  r = api.gradient({{"pixels", px}, {"of", "loss"}, {"class", 7}});
  EXPECT_EQ(r["class"], 7);
  EXPECT_EQ(api.gradient({{"pixels", px}, {"of", "loss"}})["class"], r["prediction"]);
}

TEST(ExplorerGradient, LeavesTheModelAsItWas) {
  const Model m = shipped("rgb-nested");
  // Training mode, one block in evaluation mode, and a gradient left by someone: the mode comes
  // back, module by module, and .grad is zero (it is the request's own inside the request).
  m.module->train();
  m.module->submodule("features.stage1").eval();
  for (Parameter* p : m.module->parameters()) p->grad.fill(0.5f);
  const ExplorerApi api(m.module, m.input, json::object());
  const json px = random_pixels(m.input, 5);
  const json a = api.gradient({{"pixels", px}, {"layer", "features.stem.1"}});
  EXPECT_TRUE(m.module->is_training());
  EXPECT_TRUE(m.module->submodule("features.stem.1").is_training());
  EXPECT_FALSE(m.module->submodule("features.stage1").is_training());
  EXPECT_FALSE(m.module->submodule("features.stage1.1").is_training());
  EXPECT_TRUE(m.module->submodule("head.2").is_training());
  EXPECT_TRUE(all_grads_zero(*m.module));
  // Evaluation mode whatever the mode was: the same answer again (and running statistics that
  // a training-mode pass would have moved are untouched).
  EXPECT_EQ(api.gradient({{"pixels", px}, {"layer", "features.stem.1"}}), a);
  m.module->eval();
  EXPECT_EQ(api.gradient({{"pixels", px}, {"layer", "features.stem.1"}}), a);
}

TEST(ExplorerGradient, AModelEndingInSoftmaxIsTakenOnItsLogits) {
  const Model m = described(R"({"input": [1, 6, 6], "layers": [
    {"type": "Conv2d", "out_channels": 2, "kernel_size": 3}, {"type": "SiLU"},
    {"type": "Flatten"}, {"type": "Linear", "out_features": 4}, {"type": "Softmax", "dim": 1}]})");
  const ExplorerApi api(m.module, m.input, json::object());
  const json px = random_pixels(m.input, 1);
  const json r = api.gradient({{"pixels", px}, {"class", 2}});
  const Leaves leaves = leaves_of(m);
  const std::vector<Tensor> outputs = outputs_of(leaves, batch_of(px, m.input));
  EXPECT_EQ(r["objective"].get<float>(), outputs[3][2]);  // the Linear's output: the logit
  const json loss = api.gradient({{"pixels", px}, {"class", 2}, {"of", "loss"}});
  EXPECT_NEAR(loss["objective"].get<double>(), objective(outputs[3], 2, "loss").first, 1e-6);
  // And the Softmax gives probabilities again afterwards.
  NoGradGuard no_grad;
  const Tensor p = m.module->forward(batch_of(px, m.input));
  EXPECT_NEAR(p[0] + p[1] + p[2] + p[3], 1.0f, 1e-6);
}

TEST(ExplorerGradient, Refusals) {
  const Model m = shipped("tutorial");
  const ExplorerApi api(m.module, m.input, json::object());
  const json px = random_pixels(m.input, 2)[0];
  const auto gradient = [&](json extra) {
    extra["pixels"] = px;
    return refusal([&] { return api.gradient(extra); });
  };
  const auto step = [&](json extra) {
    json q = {{"pixels", px},    {"layer", "conv2.0"}, {"out_channel", 0},
              {"in_channel", 0}, {"row", 0},           {"col", 0}};
    q.update(extra);
    return refusal([&] { return api.dw_step(q); });
  };
  auto [status, what] = gradient({{"layer", "conv9"}});
  EXPECT_EQ(status, 400);
  expect_contains(what, {"\"conv9\"", "not a layer", "conv1.0", "conv1.1", "classifier.4"});
  std::tie(status, what) = gradient({{"layer", "classifier.1"}});
  EXPECT_EQ(status, 422);
  expect_contains(what, {"classifier.1 (Linear)", "(32,)", "(C, H, W) maps"});
  std::tie(status, what) = gradient({{"layer", 3}});
  EXPECT_EQ(status, 400);
  expect_contains(what, {"'layer'", "got 3"});
  std::tie(status, what) = gradient({{"class", 10}});
  EXPECT_EQ(status, 400);
  expect_contains(what, {"'class'", "[0, 10)", "got 10"});
  std::tie(status, what) = gradient({{"class", -1}});
  EXPECT_EQ(status, 400);
  expect_contains(what, {"'class'", "[0, 10)", "got -1"});
  std::tie(status, what) = gradient({{"of", "logit"}});
  EXPECT_EQ(status, 400);
  expect_contains(what, {"'of'", "\"score\"", "\"loss\"", "got \"logit\""});
  std::tie(status, what) = step({{"layer", "conv9"}});
  EXPECT_EQ(status, 400);
  expect_contains(what, {"\"conv9\"", "not a layer", "its Conv2d layers are conv1.0, conv2.0"});
  std::tie(status, what) = step({{"layer", "conv1.2"}});
  EXPECT_EQ(status, 422);
  expect_contains(what, {"conv1.2 (MaxPool2d)", "Conv2d layers", "conv1.0, conv2.0"});
  std::tie(status, what) = step({{"out_channel", 32}});
  EXPECT_EQ(status, 400);
  expect_contains(what, {"'out_channel'", "[0, 32)", "conv2.0 (Conv2d)", "got 32"});
  std::tie(status, what) = step({{"in_channel", 16}});
  EXPECT_EQ(status, 400);
  expect_contains(what, {"'in_channel'", "[0, 16)", "within its group", "got 16"});
  std::tie(status, what) = step({{"row", 3}});
  EXPECT_EQ(status, 400);
  expect_contains(what, {"'row'", "[0, 3)", "kernel row", "got 3"});
  std::tie(status, what) = step({{"col", -1}});
  EXPECT_EQ(status, 400);
  expect_contains(what, {"'col'", "[0, 3)", "kernel column", "got -1"});
  std::tie(status, what) = step({{"class", 10}});
  EXPECT_EQ(status, 400);
  expect_contains(what, {"'class'", "[0, 10)"});
  std::tie(status, what) = step({{"of", 1}});
  EXPECT_EQ(status, 400);
  expect_contains(what, {"'of'", "got 1"});
  std::tie(status, what) = refusal([&] {
    return api.dw_step(
        {{"pixels", px}, {"out_channel", 0}, {"in_channel", 0}, {"row", 0}, {"col", 0}});
  });
  EXPECT_EQ(status, 400);
  expect_contains(what, {"missing field 'layer'"});
  // More output positions than the limit: conv1.0 has 26 x 26.
  ExplorerLimits small;
  small.max_taps = 600;
  const ExplorerApi tight(m.module, m.input, json::object(), small);
  std::tie(status, what) = refusal([&] {
    return tight.dw_step({{"pixels", px},
                          {"layer", "conv1.0"},
                          {"out_channel", 0},
                          {"in_channel", 0},
                          {"row", 0},
                          {"col", 0}});
  });
  EXPECT_EQ(status, 422);
  expect_contains(what, {"conv1.0 (Conv2d)", "676 output positions", "at most 600"});
  // Refused requests leave no gradient behind either.
  EXPECT_TRUE(all_grads_zero(*m.module));
}

TEST(ExplorerGradient, BoundsTheLayerGradient) {
  const Model m = shipped("tutorial");
  ExplorerLimits limits;
  limits.max_channels = 4;
  const ExplorerApi api(m.module, m.input, json::object(), limits);
  json r = api.gradient({{"pixels", random_pixels(m.input, 8)}, {"layer", "conv1.1"}});
  EXPECT_EQ(r["channels_shown"], 4);
  EXPECT_EQ(r["layer_gradient"].size(), 4u);
  EXPECT_EQ(r["layer_ranges"].size(), 16u);
  limits.max_map_values = 26 * 26 * 3;
  const ExplorerApi tight(m.module, m.input, json::object(), limits);
  r = tight.gradient({{"pixels", random_pixels(m.input, 8)}, {"layer", "conv1.1"}});
  EXPECT_EQ(r["channels_shown"], 3);
  EXPECT_EQ(r["layer_gradient"].size(), 3u);
  // The input gradient is the model's input, bounded by its size.
  EXPECT_EQ(r["input_gradient"].size(), 1u);
}

}  // namespace
}  // namespace cnn::testing
