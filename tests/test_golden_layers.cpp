// The layers beside the tutorial's against PyTorch 1.13 (fixtures from tools/gen_fixtures.py):
// Tanh, Sigmoid, LeakyReLU, GELU, SiLU, Identity, AvgPool2d, AdaptiveAvgPool2d and BatchNorm2d,
// each op's output and gradients for every stored parameter set, the modules over them, their
// printed form, and BatchNorm2d's state_dict and model files.
#include <limits>
#include <optional>

#include "cnn/nn/spec.h"
#include "testing.h"

namespace cnn::testing {
namespace {

using nlohmann::json;

Size2 size2(const json& j) { return Size2(j.at(0).get<int64_t>(), j.at(1).get<int64_t>()); }

// Runs every case of an element-wise op: forward(x, option) -> y, backward(x, y, dy, option) -> dx.
template <class Forward, class Backward>
void check_elementwise(const std::string& name, Forward forward, Backward backward) {
  const Archive a = read_archive(fixture(name));
  const auto& cases = a.meta.at("cases");
  ASSERT_GE(cases.size(), 6u);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const std::string k = case_name(static_cast<int>(i));
    SCOPED_TRACE(name + " case " + std::to_string(i) + ": " + cases[i].dump());
    const json& opt = cases[i]["option"];
    const Tensor& x = a.get(k + "x");
    const Tensor y = forward(x, opt);
    EXPECT_TRUE(all_close(y, a.get(k + "y"), kGolden)) << "y";
    EXPECT_TRUE(all_close(backward(x, y, a.get(k + "dy"), opt), a.get(k + "dx"), kGolden)) << "dx";
  }
}

TEST(Golden, Tanh) {
  check_elementwise(
      "tanh", [](const Tensor& x, const json&) { return tanh_forward(x); },
      [](const Tensor&, const Tensor& y, const Tensor& dy, const json&) {
        return tanh_backward(y, dy);
      });
}

TEST(Golden, Sigmoid) {
  check_elementwise(
      "sigmoid", [](const Tensor& x, const json&) { return sigmoid_forward(x); },
      [](const Tensor&, const Tensor& y, const Tensor& dy, const json&) {
        return sigmoid_backward(y, dy);
      });
}

TEST(Golden, LeakyReLU) {
  check_elementwise(
      "leaky_relu",
      [](const Tensor& x, const json& a) { return leaky_relu_forward(x, a.get<float>()); },
      [](const Tensor& x, const Tensor&, const Tensor& dy, const json& a) {
        return leaky_relu_backward(x, dy, a.get<float>());
      });
}

TEST(Golden, GELU) {
  check_elementwise(
      "gelu", [](const Tensor& x, const json& a) { return gelu_forward(x, gelu_approximate(a)); },
      [](const Tensor& x, const Tensor&, const Tensor& dy, const json& a) {
        return gelu_backward(x, dy, gelu_approximate(a));
      });
}

TEST(Golden, SiLU) {
  check_elementwise(
      "silu", [](const Tensor& x, const json&) { return silu_forward(x); },
      [](const Tensor& x, const Tensor&, const Tensor& dy, const json&) {
        return silu_backward(x, dy);
      });
}

// The modules give their ops' numbers, from PyTorch's fixtures (case 1 of each), and keep only
// what backward needs.
TEST(Golden, ActivationModulesMatchFixtures) {
  struct Case {
    const char* fixture;
    std::function<std::shared_ptr<Module>(const json& option)> make;
  };
  const std::vector<Case> cases = {
      {"tanh", [](const json&) { return std::make_shared<Tanh>(); }},
      {"sigmoid", [](const json&) { return std::make_shared<Sigmoid>(); }},
      {"leaky_relu", [](const json& o) { return std::make_shared<LeakyReLU>(o.get<double>()); }},
      {"gelu", [](const json& o) { return std::make_shared<GELU>(o.get<std::string>()); }},
      {"silu", [](const json&) { return std::make_shared<SiLU>(); }},
      {"identity", [](const json&) { return std::make_shared<Identity>(); }},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.fixture);
    const Archive a = read_archive(fixture(c.fixture));
    ASSERT_GE(a.meta.at("cases").size(), 6u);
    for (const int i : {0, 1}) {
      const std::string k = case_name(i);
      auto m = c.make(a.meta["cases"][i]["option"]);
      EXPECT_TRUE(all_close(m->forward(a.get(k + "x")), a.get(k + "y"), kGolden));
      EXPECT_TRUE(all_close(m->backward(a.get(k + "dy")), a.get(k + "dx"), kGolden));
    }
  }
}

AvgPool2dGeometry avgpool_geometry(const json& c) {
  AvgPool2dGeometry g;
  g.kernel = size2(c["kernel"]);
  g.stride = size2(c["stride"]);
  g.padding = size2(c["padding"]);
  g.ceil_mode = c["ceil_mode"].get<bool>();
  g.count_include_pad = c["count_include_pad"].get<bool>();
  if (!c["divisor_override"].is_null()) g.divisor_override = c["divisor_override"].get<int64_t>();
  return g;
}

TEST(Golden, AvgPool2d) {
  const Archive a = read_archive(fixture("avgpool2d"));
  const auto& cases = a.meta.at("cases");
  ASSERT_GE(cases.size(), 6u);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const std::string k = case_name(static_cast<int>(i));
    SCOPED_TRACE("avgpool2d case " + std::to_string(i) + ": " + c.dump());
    const AvgPool2dGeometry g = avgpool_geometry(c);
    const Tensor& x = a.get(k + "x");
    EXPECT_TRUE(all_close(avgpool2d_forward(x, g), a.get(k + "y"), kGolden)) << "y";
    EXPECT_TRUE(
        all_close(avgpool2d_backward(x.shape(), a.get(k + "dy"), g), a.get(k + "dx"), kGolden))
        << "dx";
    // The module, built with the same options, gives the same numbers.
    AvgPool2dOptions o(g.kernel);
    o.stride(g.stride).padding(g.padding).ceil_mode(g.ceil_mode);
    o.count_include_pad(g.count_include_pad).divisor_override(g.divisor_override);
    AvgPool2d pool(o);
    EXPECT_EQ(pool.output_shape(x.shape()), a.get(k + "y").shape());
    EXPECT_TRUE(all_close(pool.forward(x), a.get(k + "y"), kGolden));
    EXPECT_TRUE(all_close(pool.backward(a.get(k + "dy")), a.get(k + "dx"), kGolden));
  }
}

TEST(Golden, AdaptiveAvgPool2d) {
  const Archive a = read_archive(fixture("adaptive_avgpool2d"));
  const auto& cases = a.meta.at("cases");
  ASSERT_GE(cases.size(), 6u);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const std::string k = case_name(static_cast<int>(i));
    SCOPED_TRACE("adaptive_avgpool2d case " + std::to_string(i) + ": " + cases[i].dump());
    const Size2 out = size2(cases[i]["output_size"]);
    const Tensor& x = a.get(k + "x");
    EXPECT_TRUE(all_close(adaptive_avgpool2d_forward(x, out), a.get(k + "y"), kGolden)) << "y";
    EXPECT_TRUE(all_close(adaptive_avgpool2d_backward(x.shape(), a.get(k + "dy")), a.get(k + "dx"),
                          kGolden))
        << "dx";
    AdaptiveAvgPool2d pool(out);
    EXPECT_EQ(pool.output_shape(x.shape()), a.get(k + "y").shape());
    EXPECT_TRUE(all_close(pool.forward(x), a.get(k + "y"), kGolden));
    EXPECT_TRUE(all_close(pool.backward(a.get(k + "dy")), a.get(k + "dx"), kGolden));
  }
}

// The state_dict entries of a BatchNorm2d case stored under prefix ("0/before/").
// num_batches_tracked has PyTorch's shape [] here, but tools/archive.py writes a shape-[] array
// as [1] (np.ascontiguousarray gives 0-d arrays one dimension): it is read back as [].
std::map<std::string, Tensor> state_from(const Archive& a, const std::string& prefix) {
  std::map<std::string, Tensor> state;
  for (const auto& [name, t] : a.tensors) {
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string key = name.substr(prefix.size());
    state[key] = key == "num_batches_tracked" ? t.reshape(Shape{}) : t;
  }
  return state;
}

TEST(Golden, BatchNorm2d) {
  const Archive a = read_archive(fixture("batchnorm2d"));
  const auto& cases = a.meta.at("cases");
  ASSERT_GE(cases.size(), 6u);
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const std::string k = case_name(static_cast<int>(i));
    SCOPED_TRACE("batchnorm2d case " + std::to_string(i) + ": " + c.dump());
    const Tensor& x = a.get(k + "x");
    const bool affine = c["affine"].get<bool>(), track = c["track_running_stats"].get<bool>();
    BatchNorm2d bn(BatchNorm2dOptions(x.size(1))
                       .eps(c["eps"].get<double>())
                       .momentum(c["momentum"].get<double>())
                       .affine(affine)
                       .track_running_stats(track));
    bn.load_state_dict(state_from(a, k + "before/"));  // strict: PyTorch's keys, all of them
    bn.train(c["training"].get<bool>());
    EXPECT_TRUE(all_close(bn.forward(x), a.get(k + "y"), kGolden)) << "y";
    EXPECT_TRUE(all_close(bn.backward(a.get(k + "dy")), a.get(k + "dx"), kGolden)) << "dx";
    if (affine) {
      EXPECT_TRUE(all_close(bn.weight()->grad, a.get(k + "dw"), kGolden)) << "dweight";
      EXPECT_TRUE(all_close(bn.bias()->grad, a.get(k + "db"), kGolden)) << "dbias";
    }
    // The running statistics and the step count after the step, under PyTorch's names.
    const auto after = state_from(a, k + "after/");
    const auto state = bn.state_dict();
    ASSERT_EQ(state.size(), after.size());
    for (const auto& [name, t] : state) {
      ASSERT_TRUE(after.count(name)) << name;
      EXPECT_TRUE(all_close(t, after.at(name), kGolden)) << name;
    }
  }
}

TEST(Golden, BatchNorm2dOpMatchesModule) {
  // The op called directly: training with running statistics (case 0), then evaluation (case 3).
  const Archive a = read_archive(fixture("batchnorm2d"));
  for (const int i : {0, 3}) {
    const std::string k = case_name(i);
    const auto& c = a.meta.at("cases")[i];
    SCOPED_TRACE("batchnorm2d case " + std::to_string(i));
    ASSERT_TRUE(c["affine"].get<bool>() && c["track_running_stats"].get<bool>());
    const bool training = c["training"].get<bool>();
    const Tensor& x = a.get(k + "x");
    const Tensor& w = a.get(k + "before/weight");
    Tensor rm = a.get(k + "before/running_mean").clone();
    Tensor rv = a.get(k + "before/running_var").clone();
    BatchNorm2dSaved saved;
    const Tensor y =
        batchnorm2d_forward(x, w, a.get(k + "before/bias"), &rm, &rv, training,
                            c["momentum"].get<double>(), c["eps"].get<double>(), &saved);
    EXPECT_TRUE(all_close(y, a.get(k + "y"), kGolden));
    EXPECT_TRUE(all_close(rm, a.get(k + "after/running_mean"), kGolden));
    EXPECT_TRUE(all_close(rv, a.get(k + "after/running_var"), kGolden));
    Tensor dx = Tensor::full(x.shape(), std::numeric_limits<float>::quiet_NaN());
    Tensor dw({x.size(1)}), db({x.size(1)});
    batchnorm2d_backward(x, a.get(k + "dy"), w, saved, training, &dx, &dw, &db);
    EXPECT_TRUE(all_close(dx, a.get(k + "dx"), kGolden));
    EXPECT_TRUE(all_close(dw, a.get(k + "dw"), kGolden));
    EXPECT_TRUE(all_close(db, a.get(k + "db"), kGolden));
  }
}

// ---- printed form, config, model files ----

TEST(NewLayers, ReprAsPyTorch) {
  // The text PyTorch 1.13 prints for the same constructor calls.
  EXPECT_EQ(Tanh().repr(), "Tanh()");
  EXPECT_EQ(Sigmoid().repr(), "Sigmoid()");
  EXPECT_EQ(LeakyReLU().repr(), "LeakyReLU(negative_slope=0.01)");
  EXPECT_EQ(LeakyReLU(0.2).repr(), "LeakyReLU(negative_slope=0.2)");
  EXPECT_EQ(GELU().repr(), "GELU(approximate='none')");
  EXPECT_EQ(GELU("tanh").repr(), "GELU(approximate='tanh')");
  EXPECT_EQ(SiLU().repr(), "SiLU()");
  EXPECT_EQ(Identity().repr(), "Identity()");
  EXPECT_EQ(AvgPool2d(AvgPool2dOptions(3)).repr(), "AvgPool2d(kernel_size=3, stride=3, padding=0)");
  EXPECT_EQ(AvgPool2d(AvgPool2dOptions(Size2(3, 2))
                          .stride(1)
                          .padding(Size2(1, 0))
                          .ceil_mode(true)
                          .count_include_pad(false)
                          .divisor_override(5))
                .repr(),
            "AvgPool2d(kernel_size=(3, 2), stride=1, padding=(1, 0))");
  EXPECT_EQ(AdaptiveAvgPool2d(3).repr(), "AdaptiveAvgPool2d(output_size=3)");
  EXPECT_EQ(AdaptiveAvgPool2d(Size2(5, 7)).repr(), "AdaptiveAvgPool2d(output_size=(5, 7))");
  EXPECT_EQ(BatchNorm2d(16).repr(),
            "BatchNorm2d(16, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)");
  EXPECT_EQ(
      BatchNorm2d(
          BatchNorm2dOptions(3).eps(1e-3).momentum(0.5).affine(false).track_running_stats(false))
          .repr(),
      "BatchNorm2d(3, eps=0.001, momentum=0.5, affine=False, track_running_stats=False)");
}

TEST(NewLayers, BatchNorm2dStateDictNamesArePyTorchs) {
  // PyTorch: list(nn.BatchNorm2d(3).state_dict()), and with affine / track_running_stats off.
  auto names = [](const Module& m) {
    std::vector<std::string> out;
    for (const auto& [name, t] : m.state_dict()) out.push_back(name);
    return out;
  };
  BatchNorm2d bn(3);
  EXPECT_EQ(names(bn), (std::vector<std::string>{"weight", "bias", "running_mean", "running_var",
                                                 "num_batches_tracked"}));
  EXPECT_EQ(names(BatchNorm2d(BatchNorm2dOptions(3).affine(false))),
            (std::vector<std::string>{"running_mean", "running_var", "num_batches_tracked"}));
  EXPECT_EQ(names(BatchNorm2d(BatchNorm2dOptions(3).track_running_stats(false))),
            (std::vector<std::string>{"weight", "bias"}));
  EXPECT_EQ(bn.num_parameters(), 6);
  EXPECT_EQ(bn.num_batches_tracked()->shape(), Shape{});  // PyTorch's shape []
  // Initial values: weight 1, bias 0, running_mean 0, running_var 1, no batches.
  EXPECT_TRUE(all_close(bn.weight()->value, Tensor::full({3}, 1.0f), Tol{0, 0}));
  EXPECT_TRUE(all_close(bn.bias()->value, Tensor({3}), Tol{0, 0}));
  EXPECT_TRUE(all_close(*bn.running_mean(), Tensor({3}), Tol{0, 0}));
  EXPECT_TRUE(all_close(*bn.running_var(), Tensor::full({3}, 1.0f), Tol{0, 0}));
  EXPECT_EQ((*bn.num_batches_tracked())[0], 0.0f);

  // In a model, the keys PyTorch gives nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), ...).
  auto model = sequential(std::make_shared<Conv2d>(1, 4, 3), std::make_shared<BatchNorm2d>(4),
                          std::make_shared<ReLU>());
  EXPECT_EQ(names(*model),
            (std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                                      "1.running_var", "1.num_batches_tracked"}));
  // Training steps count, also under NoGradGuard (PyTorch updates running statistics whenever
  // the module is in training mode); evaluation steps do not.
  Generator gen(5);
  const Tensor x = randn({2, 1, 6, 6}, gen);
  model->forward(x);
  {
    NoGradGuard no_grad;
    model->forward(x);
  }
  model->eval();
  model->forward(x);
  EXPECT_EQ(model->state_dict().back().second[0], 2.0f);
}

TEST(NewLayers, BatchNorm2dModelFileBuildsAndRoundTrips) {
  const json description = json::parse(R"({
    "name": "bn-net", "input": [3, 17, 15],
    "layers": [
      {"type": "Conv2d", "out_channels": 8, "kernel_size": 3, "bias": false},
      {"type": "BatchNorm2d"},
      {"type": "LeakyReLU", "negative_slope": 0.1},
      {"type": "AvgPool2d", "kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": true,
       "count_include_pad": false},
      {"type": "Conv2d", "out_channels": 6, "kernel_size": [2, 3]},
      {"type": "BatchNorm2d", "num_features": 6, "eps": 0.001, "momentum": 0.3,
       "affine": false},
      {"type": "GELU", "approximate": "tanh"},
      {"type": "AdaptiveAvgPool2d", "output_size": [2, 3]},
      {"type": "SiLU"},
      {"type": "Flatten"},
      {"type": "Identity"},
      {"type": "Linear", "out_features": 5},
      {"type": "Tanh"},
      {"type": "Sigmoid"}]})");
  Generator gen(3);
  const BuiltModel m = build_model(description, gen, "bn-net.json");
  EXPECT_EQ(m.output, Shape{5});
  EXPECT_EQ(m.module->submodule("1").repr(),
            "BatchNorm2d(8, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)");
  EXPECT_EQ(m.module->submodule("5").repr(),
            "BatchNorm2d(6, eps=0.001, momentum=0.3, affine=False, track_running_stats=True)");
  EXPECT_EQ(m.module->submodule("3").repr(), "AvgPool2d(kernel_size=3, stride=2, padding=1)");
  // Conv2d 8*3*3*3, BatchNorm2d 2*8, Conv2d 6*8*2*3 + 6, Linear 6*2*3*5 + 5.
  EXPECT_EQ(m.parameters, 216 + 16 + 294 + 185);
  EXPECT_EQ(m.module->num_parameters(), m.parameters);
  // The output shapes found by arithmetic are the ones a forward pass gives.
  Shape shape = {4, 3, 17, 15};
  Tensor y = randn(shape, gen);
  for (std::size_t i = 0; i < m.module->size(); ++i) {
    shape = (*m.module)[i].output_shape(shape);
    y = (*m.module)[i].forward(y);
    EXPECT_EQ(y.shape(), shape) << "layer " << i;
  }
  // config() describes each layer so that building it again gives the same model.
  const json described = describe_model(*m.module, m.input);
  const BuiltModel again = build_model(described, gen, "described");
  EXPECT_EQ(again.module->repr(), m.module->repr());
  EXPECT_EQ(describe_model(*again.module, again.input), described);
  EXPECT_EQ(described["layers"][3]["divisor_override"], nullptr);
  EXPECT_EQ(described["layers"][3]["stride"], 2);
  EXPECT_EQ(described["layers"][1]["num_features"], 8);
  // The state_dict carries over, buffers included.
  again.module->load_state_dict([&] {
    std::map<std::string, Tensor> s;
    for (const auto& [k, t] : m.module->state_dict()) s[k] = t;
    return s;
  }());
  m.module->eval();
  again.module->eval();
  const Tensor x = randn({2, 3, 17, 15}, gen);
  EXPECT_TRUE(all_close(again.module->forward(x), m.module->forward(x), Tol{0, 0}));
}

TEST(NewLayers, FactoryRefusesBadArguments) {
  auto build = [](const std::string& layer) {
    Generator gen(1);
    build_model(json::parse(R"({"input": [3, 8, 8], "layers": [)" + layer + "]}"), gen, "m.json");
  };
  expect_error([&] { build(R"({"type": "BatchNorm2d", "num_features": 4})"); },
               {"m.json", "layer 0 (BatchNorm2d)", "num_features is 4 but the input has 3"});
  expect_error([&] { build(R"({"type": "BatchNorm2d", "eps": 0})"); }, {"'eps' must be positive"});
  expect_error([&] { build(R"({"type": "BatchNorm2d", "momentum": 1.5})"); },
               {"'momentum' must be in [0.0, 1.0]"});
  expect_error([&] { build(R"({"type": "BatchNorm2d", "affine": 1})"); },
               {"'affine' must be true or false"});
  expect_error([&] { build(R"({"type": "Flatten"}, {"type": "BatchNorm2d"})"); },
               {"layer 1 (BatchNorm2d)", "needs an input of shape [C, H, W]"});
  expect_error([&] { build(R"({"type": "AvgPool2d", "kernel_size": 3, "padding": 2})"); },
               {"layer 0 (AvgPool2d)", "pad should be at most half of kernel size"});
  expect_error([&] { build(R"({"type": "AvgPool2d", "kernel_size": 0})"); },
               {"'kernel_size' must be at least 1"});
  expect_error([&] { build(R"({"type": "AvgPool2d", "kernel_size": 2, "stride": 0})"); },
               {"'stride' must be at least 1"});
  expect_error([&] { build(R"({"type": "AvgPool2d", "kernel_size": 2, "divisor_override": 0})"); },
               {"'divisor_override' must not be 0"});
  expect_error([&] { build(R"({"type": "AvgPool2d", "kernel_size": 9})"); },
               {"layer 0 (AvgPool2d)", "too small"});
  expect_error([&] { build(R"({"type": "AvgPool2d", "kernel_size": 2, "dilation": 2})"); },
               {"unknown argument 'dilation'"});
  expect_error([&] { build(R"({"type": "AdaptiveAvgPool2d", "output_size": [2, 0]})"); },
               {"'output_size' must be at least 1"});
  expect_error([&] { build(R"({"type": "AdaptiveAvgPool2d"})"); },
               {"missing argument 'output_size'"});
  expect_error([&] { build(R"({"type": "GELU", "approximate": "tan"})"); },
               {"'approximate' must be one of none, tanh", "did you mean 'tanh'"});
  expect_error([&] { build(R"({"type": "LeakyReLU", "negative_slope": "x"})"); },
               {"'negative_slope' must be a number"});
  expect_error([&] { build(R"({"type": "Tanh", "inplace": true})"); }, {"it takes none"});
}

TEST(NewLayers, ModuleErrors) {
  expect_error([] { BatchNorm2d(0); }, {"num_features must be positive"});
  expect_error([] { BatchNorm2d(BatchNorm2dOptions(3).eps(0)); }, {"eps must be positive"});
  expect_error([] { BatchNorm2d(BatchNorm2dOptions(3).momentum(-0.1)); },
               {"momentum must be in [0, 1]"});
  BatchNorm2d bn(3);
  expect_error(
      [&] {
        bn.forward(Tensor({2, 4, 3, 3}));
      },
      {"BatchNorm2d(3, eps=1e-05", "expected 3 channels", "(2, 4, 3, 3)"});
  expect_error([&] { bn.forward(Tensor({2, 3, 3})); }, {"expected 4D input"});
  // PyTorch: "Expected more than 1 value per channel when training".
  expect_error([&] { bn.forward(Tensor({1, 3, 1, 1})); }, {"more than 1 value per channel"});
  EXPECT_EQ((*bn.num_batches_tracked())[0], 0.0f);  // a failed step is not counted
  bn.eval();
  EXPECT_NO_THROW(bn.forward(Tensor({1, 3, 1, 1})));
  expect_error([] { AvgPool2d(AvgPool2dOptions(2).padding(2)); },
               {"AvgPool2d(kernel_size=2, stride=2, padding=2)", "pad should be at most half"});
  expect_error([] { AvgPool2d(AvgPool2dOptions(2).divisor_override(0)); },
               {"divisor must be not zero"});
  expect_error([] { AdaptiveAvgPool2d(Size2(0, 2)); }, {"output_size must be positive"});
  expect_error([] { GELU("exact"); }, {"approximate argument must be either none or tanh"});
  expect_error(
      [] {
        tanh_backward(Tensor({2, 3}), Tensor({3, 2}));
      },
      {"tanh_backward", "(3, 2)", "(2, 3)"});
  Tanh t;
  expect_error([&] { t.backward(Tensor({2})); }, {"backward() called before forward()"});
}

// avgpool2d runs 2x2 / stride-2 windows that lie wholly inside the input through a vectorised
// row loop. It adds the same four values in the same order and divides by the same divisor as
// PyTorch's loop (written out here), so the results must be equal bit for bit, on every border
// case: padding on one side or both, ceil_mode's partial windows, count_include_pad on and off,
// a divisor override, odd and even sizes.
TEST(GoldenLayers, AvgPool2x2EqualsTheWindowLoop) {
  Generator gen(5);
  for (const int64_t H : {4, 7, 12}) {
    for (const int64_t W : {5, 8, 17, 28}) {
      for (const int64_t pad : {0, 1}) {
        for (const bool ceil : {false, true}) {
          for (const bool include : {false, true}) {
            for (const std::optional<int64_t> override :
                 {std::optional<int64_t>(), std::optional<int64_t>(3)}) {
              const AvgPool2dGeometry g(Size2(2), Size2(2), Size2(pad), ceil, include, override);
              const Tensor x = randn({2, 3, H, W}, gen);
              const Tensor y = avgpool2d_forward(x, g);
              const int64_t H_out = y.size(2), W_out = y.size(3);
              for (int64_t p = 0; p < 6; ++p) {
                for (int64_t oh = 0; oh < H_out; ++oh) {
                  for (int64_t ow = 0; ow < W_out; ++ow) {
                    const int64_t h0 = oh * 2 - pad, w0 = ow * 2 - pad;
                    const int64_t h1 = std::min(h0 + 2, H + pad), w1 = std::min(w0 + 2, W + pad);
                    const int64_t hl = std::max<int64_t>(h0, 0), wl = std::max<int64_t>(w0, 0);
                    const int64_t hh = std::min(h1, H), wh = std::min(w1, W);
                    float want = 0.0f;
                    if (hl < hh && wl < wh) {
                      float sum = 0.0f;
                      for (int64_t ih = hl; ih < hh; ++ih) {
                        for (int64_t iw = wl; iw < wh; ++iw) sum += x.data()[(p * H + ih) * W + iw];
                      }
                      const int64_t d = override  ? *override
                                        : include ? (h1 - h0) * (w1 - w0)
                                                  : (hh - hl) * (wh - wl);
                      want = sum / static_cast<float>(d);
                    }
                    ASSERT_EQ(y.data()[(p * H_out + oh) * W_out + ow], want)
                        << "H=" << H << " W=" << W << " pad=" << pad << " ceil=" << ceil
                        << " include=" << include << " at (" << p << ", " << oh << ", " << ow
                        << ")";
                  }
                }
              }
            }
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace cnn::testing
