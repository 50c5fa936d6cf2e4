// The Keras-style API (cnn/nn/keras.h): the tutorial's Keras example, the tutorial's model declared
// in Keras style against cnn::TutorialCNN, TensorFlow's "same" padding with stride 2 against
// PyTorch (tools/gen_keras_fixtures.py), the channels-last Flatten, and gradients of pools whose
// padding differs per side.
#include "testing.h"

namespace cnn::testing {
namespace {

namespace k = cnn::keras;
using nlohmann::json;

// Keras's "same" on both kernel sets: the padding is the geometry's, the kernels the usual ones.
struct KernelSetGuard {
  KernelSet saved = kernel_set();
  explicit KernelSetGuard(KernelSet set) { set_kernel_set(set); }
  ~KernelSetGuard() { set_kernel_set(saved); }
};

Tensor forward_eval(Module& m, const Tensor& x) {
  m.eval();
  NoGradGuard no_grad;
  return m.forward(x);
}

// (a) The tutorial's Keras example (its last section), on MNIST's 28x28x1 input:
//   Conv2D(filters=16, kernel_size=(3, 3), strides=(1, 1), activation="relu")
//   MaxPool2D(pool_size=(2, 2), strides=(1, 1))
// Keras's model.summary() gives conv2d (Conv2D) (None, 26, 26, 16) 160 and max_pooling2d
// (MaxPooling2D) (None, 25, 25, 16) 0, 160 parameters in all: 16 * (3 * 3 * 1) weights + 16
// biases. Here the same in torchsummary's NCHW rows, the activation a row of its own.
TEST(Keras, TutorialKerasExample) {
  const BuiltModel m =
      k::build({k::Input({28, 28, 1}), k::Conv2D(16, {3, 3}).strides({1, 1}).activation("relu"),
                k::MaxPool2D({2, 2}).strides({1, 1})});
  EXPECT_EQ(m.parameters, 160);
  EXPECT_EQ(m.input, (Shape{1, 28, 28}));
  EXPECT_EQ(m.output, (Shape{16, 25, 25}));  // Keras's (25, 25, 16), channels first
  const std::string table = summary(*m.module, m.input);
  EXPECT_NE(table.find("Conv2d-1           [-1, 16, 26, 26]             160"), std::string::npos)
      << table;
  EXPECT_NE(table.find("ReLU-2           [-1, 16, 26, 26]               0"), std::string::npos);
  EXPECT_NE(table.find("MaxPool2d-3           [-1, 16, 25, 25]               0"),
            std::string::npos);
  EXPECT_NE(table.find("Total params: 160"), std::string::npos);
  EXPECT_EQ(m.module->repr(),
            "Sequential(\n"
            "  (0): Conv2d(1, 16, kernel_size=(3, 3), stride=(1, 1))\n"
            "  (1): ReLU()\n"
            "  (2): MaxPool2d(kernel_size=(2, 2), stride=(1, 1), padding=0, dilation=1, "
            "ceil_mode=False)\n"
            ")");
  // The positional form of the brief: filters, kernel_size, strides, padding, activation.
  const BuiltModel positional = k::build(
      {k::Input({28, 28, 1}), k::Conv2D(16, 3, 1, "valid", "relu"), k::MaxPooling2D(2, Size2(1))});
  EXPECT_EQ(positional.output, m.output);
  EXPECT_EQ(positional.parameters, 160);
}

// The tutorial's model in Keras style. PyTorch's MaxPool2d(2, stride=2, padding=1) pads with -inf;
// Keras's pools pad only for "same" (26 -> 13, not 14), so the Keras model pads with
// ZeroPadding2D(1): after a ReLU its zeros never exceed a window's maximum, and it folds into the
// pool's padding (keras.h).
std::vector<k::AnyLayer> keras_tutorial() {
  return {k::Input({28, 28, 1}),
          k::Conv2D(16, 3, 1, "valid", "relu"),
          k::ZeroPadding2D(1),
          k::MaxPooling2D(2),
          k::Conv2D(32, 3, 1, "valid", "relu"),
          k::ZeroPadding2D(1),
          k::MaxPooling2D(2),
          k::Flatten(),
          k::Dense(32, "relu"),
          k::Dropout(0.3),
          k::Dense(10)};
}

// (b) The same summary as the PyTorch-style model, and from the same weights the same logits.
TEST(Keras, TutorialModelMatchesPyTorchStyle) {
  TutorialCNN torch_model;
  const std::shared_ptr<Sequential> keras_model = k::Sequential(keras_tutorial());
  EXPECT_EQ(summary(*keras_model, {1, 28, 28}), summary(torch_model, {1, 28, 28}));
  EXPECT_EQ(keras_model->num_parameters(), 55338);
  EXPECT_EQ((*keras_model)[6].repr(), "Flatten(start_dim=1, end_dim=-1, channels_last=True)");

  // The weights, by position; the first Dense's columns permuted from the PyTorch model's
  // (C, H, W) feature order to the Keras model's (H, W, C).
  const auto torch_state = torch_model.state_dict();
  const auto keras_state = keras_model->state_dict();
  ASSERT_EQ(torch_state.size(), keras_state.size());
  std::map<std::string, Tensor> load;
  for (std::size_t i = 0; i < torch_state.size(); ++i) {
    ASSERT_EQ(torch_state[i].second.shape(), keras_state[i].second.shape());
    load[keras_state[i].first] = torch_state[i].second.clone();
  }
  const Tensor w = torch_model.classifier->state_dict()[0].second;  // (32, 32 * 7 * 7)
  Tensor permuted(w.shape());
  const int64_t C = 32, HW = 49;
  for (int64_t o = 0; o < 32; ++o) {
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t i = 0; i < HW; ++i)
        permuted[o * C * HW + i * C + c] = w[o * C * HW + c * HW + i];
    }
  }
  ASSERT_TRUE(load.count("7.weight"));
  load["7.weight"] = permuted;
  keras_model->load_state_dict(load);

  Generator gen(7);
  const Tensor x = randn({3, 1, 28, 28}, gen);
  for (const KernelSet set : {KernelSet::Reference, KernelSet::Fast}) {
    KernelSetGuard guard(set);
    EXPECT_TRUE(
        all_close(forward_eval(*keras_model, x), forward_eval(torch_model, x), kFastVsReference));
  }
  // Loaded unpermuted, the logits differ: the Flatten order matters.
  load["7.weight"] = w.clone();
  keras_model->load_state_dict(load);
  EXPECT_FALSE(
      all_close(forward_eval(*keras_model, x), forward_eval(torch_model, x), kFastVsReference));
}

// The model describes itself (channels_last, per-side padding) and builds again from that.
TEST(Keras, DescribesItselfAndRoundTrips) {
  const BuiltModel m =
      k::build({k::Input({9, 8, 3}), k::Conv2D(4, 3).strides(2).padding("same"),
                k::MaxPooling2D(2, std::nullopt, "same"), k::AveragePooling2D(3, Size2(2), "same"),
                k::Flatten(), k::Dense(5, "softmax")});
  // 9 x 8 -> conv (pads (1, 1), (0, 1)) 5 x 4 -> max (pads (0, 1), (0, 0)) 3 x 2 -> avg 3x3 /2
  // (pads (1, 1), (0, 1)) 2 x 1.
  EXPECT_EQ(m.output, (Shape{5}));
  EXPECT_EQ(m.module->output_shape({1, 3, 9, 8}), (Shape{1, 5}));
  EXPECT_EQ((*m.module)[0].repr(),
            "Conv2d(3, 4, kernel_size=(3, 3), stride=(2, 2), padding=((1, 1), (0, 1)))");
  EXPECT_EQ((*m.module)[1].repr(),
            "MaxPool2d(kernel_size=2, stride=2, padding=((0, 1), (0, 0)), dilation=1, "
            "ceil_mode=False)");
  EXPECT_EQ((*m.module)[2].repr(), "AvgPool2d(kernel_size=3, stride=2, padding=((1, 1), (0, 1)))");
  const json d = describe_model(*m.module, m.input);
  EXPECT_EQ(d["layers"][0]["padding"], json::parse("[[1, 1], [0, 1]]"));
  EXPECT_EQ(d["layers"][1]["padding"], json::parse("[[0, 1], [0, 0]]"));
  EXPECT_EQ(d["layers"][2]["count_include_pad"], false);
  EXPECT_EQ(d["layers"][3]["channels_last"], true);
  const BuiltModel again = build_model(d);
  EXPECT_EQ(describe_model(*again.module, again.input), d);
  EXPECT_EQ(again.module->repr(), m.module->repr());
  std::map<std::string, Tensor> state;
  for (const auto& [name, t] : m.module->state_dict()) state[name] = t.clone();
  again.module->load_state_dict(state);
  Generator gen(3);
  const Tensor x = randn({2, 3, 9, 8}, gen);
  EXPECT_TRUE(all_close(forward_eval(*again.module, x), forward_eval(*m.module, x), kGolden));
}

// Keras's initialisers: glorot_uniform kernels within sqrt(6 / (fan_in + fan_out)), zero biases;
// BatchNormalization's momentum and epsilon translated.
TEST(Keras, Initialisation) {
  Generator gen(11);
  const BuiltModel m = k::build({k::Input({10, 10, 3}), k::Conv2D(8, 3), k::BatchNormalization(),
                                 k::Activation("relu"), k::Flatten(), k::Dense(6)},
                                gen);
  const auto state = m.module->state_dict();
  auto check = [&](const std::string& name, double limit) {
    const auto it =
        std::find_if(state.begin(), state.end(), [&](const auto& p) { return p.first == name; });
    ASSERT_NE(it, state.end()) << name;
    float lo = 0, hi = 0;
    for (float v : it->second) lo = std::min(lo, v), hi = std::max(hi, v);
    EXPECT_LE(hi, limit) << name;
    EXPECT_GE(lo, -limit) << name;
    EXPECT_GT(hi, 0.8 * limit) << name << ": not spread over the range";
    EXPECT_LT(lo, -0.8 * limit) << name;
  };
  check("0.weight", std::sqrt(6.0 / (3 * 9 + 8 * 9)));
  check("4.weight", std::sqrt(6.0 / (8 * 8 * 8 + 6)));
  for (const auto& [name, t] : state) {
    if (name == "0.bias" || name == "4.bias" || name == "1.bias" || name == "1.running_mean") {
      for (float v : t) EXPECT_EQ(v, 0.0f) << name;
    }
    if (name == "1.weight" || name == "1.running_var") {
      for (float v : t) EXPECT_EQ(v, 1.0f) << name;
    }
  }
  EXPECT_EQ((*m.module)[1].repr(),
            "BatchNorm2d(8, eps=0.001, momentum=0.010000000000000009, affine=True, "
            "track_running_stats=True)");
}

TEST(Keras, Activations) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"relu", "ReLU()"},
      {"tanh", "Tanh()"},
      {"sigmoid", "Sigmoid()"},
      {"softmax", "Softmax(dim=1)"},
      {"log_softmax", "LogSoftmax(dim=1)"},
      {"gelu", "GELU(approximate='none')"},
      {"swish", "SiLU()"},
      {"silu", "SiLU()"},
      {"leaky_relu", "LeakyReLU(negative_slope=0.2)"}};
  for (const auto& [name, repr] : cases) {
    const BuiltModel m = k::build({k::Input({4}), k::Dense(3, name)});
    ASSERT_EQ(m.module->size(), 2u) << name;
    EXPECT_EQ((*m.module)[1].repr(), repr) << name;
  }
  EXPECT_EQ(k::build({k::Input({4}), k::Dense(3, "linear")}).module->size(), 1u);
  expect_error(
      [] {
        k::build({k::Input({4}), k::Dense(3, "elu")});
      },
      {"keras layer 1 (Dense)", "activation 'elu' (Keras has it) is not supported"});
  expect_error(
      [] {
        k::build({k::Input({4}), k::Dense(3, "rleu")});
      },
      {"unknown activation 'rleu'", "did you mean 'relu'"});
}

TEST(Keras, Errors) {
  expect_error([] { k::build({k::Conv2D(4, 3)}); }, {"Input({H, W, C})"});
  expect_error(
      [] {
        k::build({k::Input({8, 8, 1}), k::Dense(3)});
      },
      {"keras layer 1 (Dense)", "add Flatten() first"});
  expect_error(
      [] {
        k::build({k::Input({8, 8, 1}), k::Conv2D(4, 3).padding("full")});
      },
      {"keras layer 1 (Conv2D)", "'valid' or 'same'"});
  expect_error(
      [] {
        k::build({k::Input({2, 2, 1}), k::Conv2D(4, 3)});
      },
      {"keras layer 1 (Conv2D)", "too small"});
  expect_error(
      [] {
        k::build({k::Input({8, 8, 1}), k::ZeroPadding2D(1), k::MaxPooling2D(2)});
      },
      {"keras layer 2 (MaxPooling2D)", "'relu' or 'sigmoid'"});
  expect_error(
      [] {
        k::build({k::Input({8, 8, 1}), k::BatchNormalization(1)});
      },
      {"axis must be -1 or 3"});
}

// A ZeroPadding2D before a Conv2D is the convolution's own padding.
TEST(Keras, ZeroPaddingFoldsIntoConv) {
  const BuiltModel m = k::build({k::Input({6, 7, 2}), k::ZeroPadding2D({1, 2}), k::Conv2D(3, 3)});
  EXPECT_EQ((*m.module)[0].repr(),
            "Conv2d(2, 3, kernel_size=(3, 3), stride=(1, 1), padding=(1, 2))");
  EXPECT_EQ(m.output, (Shape{3, 6, 9}));
}

// (c) TensorFlow's "same" with stride > 1, odd and even sizes, against PyTorch padding explicitly
// on the bottom/right (tools/gen_keras_fixtures.py): outputs and gradients, both kernel sets.
TEST(Keras, SamePaddingAgainstPyTorch) {
  const Archive a = read_archive(fixture("keras_same"));
  const auto& cases = a.meta.at("cases");
  ASSERT_EQ(cases.size(), 10u);
  for (const KernelSet set : {KernelSet::Reference, KernelSet::Fast}) {
    KernelSetGuard guard(set);
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const json& c = cases[i];
      const std::string key = case_name(static_cast<int>(i));
      SCOPED_TRACE("keras_same case " + std::to_string(i) + ": " + c.dump());
      const Tensor& x = a.get(key + "x");
      const Size2 kernel(c["kernel"][0].get<int64_t>(), c["kernel"][1].get<int64_t>());
      const Size2 stride(c["stride"][0].get<int64_t>(), c["stride"][1].get<int64_t>());
      const std::string op = c["op"];
      std::vector<k::AnyLayer> layers = {k::Input({x.size(2), x.size(3), x.size(1)})};
      if (op == "conv") {
        const Size2 d(c["dilation"][0].get<int64_t>(), c["dilation"][1].get<int64_t>());
        layers.push_back(
            k::Conv2D(c["out_channels"].get<int64_t>(), kernel, stride, "same").dilation_rate(d));
      } else if (op == "max") {
        layers.push_back(k::MaxPooling2D(kernel, stride, "same"));
      } else {
        layers.push_back(k::AveragePooling2D(kernel, stride, "same"));
      }
      const BuiltModel m = k::build(layers);
      ASSERT_EQ(m.module->size(), 1u);
      // The geometry that the layer resolved is the one PyTorch padded with.
      const json padding = (*m.module)[0].config()["padding"];
      if (op == "conv" || padding.is_array()) {
        const json sides = c["padding"];
        if (sides[0][0] == sides[0][1] && sides[1][0] == sides[1][1]) {
          EXPECT_TRUE(padding == sides[0][0] || padding == json::array({sides[0][0], sides[1][0]}))
              << padding;
        } else {
          EXPECT_EQ(padding, sides);
        }
      }
      Module& layer = *m.module;
      if (op == "conv") {
        std::map<std::string, Tensor> state = {{"0.weight", a.get(key + "w").clone()},
                                               {"0.bias", a.get(key + "b").clone()}};
        layer.load_state_dict(state);
      }
      layer.train();
      layer.zero_grad();
      const Tensor y = layer.forward(x);
      EXPECT_TRUE(all_close(y, a.get(key + "y"), kGolden));
      const Tensor dx = layer.backward(a.get(key + "dy"));
      EXPECT_TRUE(all_close(dx, a.get(key + "dx"), kGolden));
      if (op == "conv") {
        const auto params = layer.named_parameters();
        EXPECT_TRUE(all_close(params[0].second->grad, a.get(key + "dw"), kGolden));
        EXPECT_TRUE(all_close(params[1].second->grad, a.get(key + "db"), kGolden));
      }
      EXPECT_TRUE(all_close(forward_eval(layer, x), a.get(key + "y"), kGolden));
    }
  }
}

// The same padding rule by hand: TensorFlow's out = ceil(in / stride) and the odd cell after.
TEST(Keras, SamePaddingRule) {
  EXPECT_EQ(k::same_padding(28, 2, 2).before, 0);
  EXPECT_EQ(k::same_padding(28, 2, 2).after, 0);
  EXPECT_EQ(k::same_padding(27, 2, 2).after, 1);  // 14 outputs: one row of padding at the bottom
  EXPECT_EQ(k::same_padding(7, 3, 2).before, 1);  // 4 outputs: total 2
  EXPECT_EQ(k::same_padding(7, 3, 2).after, 1);
  EXPECT_EQ(k::same_padding(8, 3, 2).before, 0);  // 4 outputs: total 1, after
  EXPECT_EQ(k::same_padding(8, 3, 2).after, 1);
  EXPECT_EQ(k::same_padding(5, 1, 3).after, 0);      // stride past the kernel: never negative
  EXPECT_EQ(k::same_padding(9, 3, 2, 2).before, 2);  // effective kernel 5: total 4
}

// A max pool padded at the bottom/right pads with -inf: an all -1 input stays -1 (hand-computed).
TEST(Keras, MaxPoolSamePadsWithMinusInfinity) {
  const BuiltModel m = k::build({k::Input({5, 5, 1}), k::MaxPooling2D(2, std::nullopt, "same")});
  for (const KernelSet set : {KernelSet::Reference, KernelSet::Fast}) {
    KernelSetGuard guard(set);
    const Tensor y = forward_eval(*m.module, Tensor::full({1, 1, 5, 5}, -1.0f));
    ASSERT_EQ(y.shape(), (Shape{1, 1, 3, 3}));
    for (float v : y) EXPECT_EQ(v, -1.0f);
  }
}

// (d) Gradients of pools whose padding differs per side, by central differences, through the ops
// (both kernel sets) and through the fused ReLU -> MaxPool2d of a training Sequential.
TEST(Keras, AsymmetricPoolGradients) {
  Generator gen(5);
  for (const KernelSet set : {KernelSet::Reference, KernelSet::Fast}) {
    KernelSetGuard guard(set);
    for (const auto& [kernel, stride, top_left, bottom_right] :
         std::vector<std::tuple<Size2, Size2, Size2, Size2>>{{2, 2, 0, 1},
                                                             {3, 2, Size2(1, 0), Size2(1, 1)},
                                                             {Size2(3, 2), Size2(3, 2), 0, 1},
                                                             {3, 1, 0, Size2(1, 0)}}) {
      SCOPED_TRACE("kernel " + kernel.pair_str() + " stride " + stride.pair_str());
      Tensor x = randn({2, 2, 7, 6}, gen);
      Pool2dGeometry g;
      g.kernel = kernel;
      g.stride = stride;
      g.padding = top_left;
      g.padding_end = bottom_right;
      Tensor indices;
      const Tensor y = maxpool2d_forward(x, g, &indices);
      const Tensor dy = randn(y.shape(), gen);
      EXPECT_TRUE(gradcheck([&] { return maxpool2d_forward(x, g); }, x,
                            maxpool2d_backward(x.shape(), dy, indices, g), dy, 1e-3));

      AvgPool2dGeometry ga;
      ga.kernel = kernel;
      ga.stride = stride;
      ga.padding = top_left;
      ga.padding_end = bottom_right;
      for (const bool include : {false, true}) {
        ga.count_include_pad = include;
        const Tensor ya = avgpool2d_forward(x, ga);
        const Tensor dya = randn(ya.shape(), gen);
        EXPECT_TRUE(gradcheck([&] { return avgpool2d_forward(x, ga); }, x,
                              avgpool2d_backward(x.shape(), dya, ga), dya, 1e-3));
      }
    }
    // ReLU -> MaxPool2d "same" in training: the fused op's gradient.
    const BuiltModel m = k::build(
        {k::Input({7, 7, 2}), k::Activation("relu"), k::MaxPooling2D(2, std::nullopt, "same")});
    m.module->train();
    Tensor x = randn({2, 2, 7, 7}, gen);
    const Tensor y = m.module->forward(x);
    const Tensor dy = randn(y.shape(), gen);
    const Tensor dx = m.module->backward(dy);
    EXPECT_TRUE(gradcheck([&] { return forward_eval(*m.module, x); }, x, dx, dy, 1e-3));
  }
}

// The channels-last Flatten: (N, C, H, W) -> (N, H * W * C), and its gradient back.
TEST(Keras, ChannelsLastFlatten) {
  cnn::Flatten f(1, -1, true);
  Tensor x({2, 3, 2, 2});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(i);
  f.train();
  const Tensor y = f.forward(x);
  ASSERT_EQ(y.shape(), (Shape{2, 12}));
  // Sample 0: x[c, h, w] = c * 4 + h * 2 + w; y[(h * 2 + w) * 3 + c].
  const std::vector<float> want = {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11};
  for (int64_t i = 0; i < 12; ++i) EXPECT_EQ(y[i], want[static_cast<std::size_t>(i)]);
  EXPECT_EQ(y[12], 12.0f);
  const Tensor dx = f.backward(y);
  EXPECT_TRUE(all_close(dx, x, Tol{0, 0}));
  expect_error([] { cnn::Flatten(2, -1, true); }, {"channels_last", "start_dim=1"});
  expect_error([&] { f.forward(Tensor({2, 12})); }, {"4-D"});
}

}  // namespace
}  // namespace cnn::testing
