// ONNX export (cnn/io/onnx.h): every model file in models/, the tutorial's model trained on
// MNIST, and models holding every layer type, exported at opsets 17, 13 and 11, checked by the
// ONNX checker and run in ONNX Runtime (onnxruntime-node, tests/peers/run_onnx.mjs) on real MNIST
// images in batches of 1 and more; names, attributes and errors read back from the bytes.
//
// ONNX Runtime runs in Node: `npm ci --prefix tests/peers --ignore-scripts` installs it
// (scripts/test.sh does). Without it these tests fail, saying so.
#ifndef ONNX_ML
#define ONNX_ML 1
#endif
#ifndef ONNX_NAMESPACE
#define ONNX_NAMESPACE onnx
#endif
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "onnx_export_models.h"
#include "testing.h"

namespace cnn::onnx_test {
namespace {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("cnn-onnx-export-" + std::to_string(::getpid()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// run_onnx.mjs's tensor file: a JSON line {"shape": [...]}, then little-endian float32.
void write_tensor(const std::string& path, const Tensor& t) {
  nlohmann::json header = {{"shape", t.shape()}};
  std::ofstream f(path, std::ios::binary);
  f << header.dump() << '\n';
  f.write(reinterpret_cast<const char*>(t.data()), static_cast<std::streamsize>(t.numel() * 4));
}

bool read_tensor(const std::string& path, Shape& shape, std::vector<float>& values) {
  const std::string bytes = read_bytes(path);
  const auto nl = bytes.find('\n');
  if (nl == std::string::npos) return false;
  shape = nlohmann::json::parse(bytes.substr(0, nl)).at("shape").get<Shape>();
  values.resize((bytes.size() - nl - 1) / 4);
  std::memcpy(values.data(), bytes.data() + nl + 1, values.size() * 4);
  return static_cast<int64_t>(values.size()) == shape_numel(shape);
}

std::string run_onnx_script() { return source_path("tests/peers/run_onnx.mjs"); }

// Empty when Node and onnxruntime-node are there, else what to do.
std::string peer_missing() {
  const std::string fix =
      "run `npm ci --prefix tests/peers --ignore-scripts --no-audit --no-fund` (scripts/test.sh "
      "does)";
  if (std::system("node --version > /dev/null 2>&1") != 0) {
    return "node is not on PATH: install Node.js (Debian's nodejs) and " + fix;
  }
  if (!fs::exists(source_path("tests/peers/node_modules/onnxruntime-node/package.json"))) {
    return "onnxruntime-node is not installed in tests/peers/node_modules: " + fix;
  }
  return "";
}

// The model's logits in ONNX Runtime for each input batch.
std::vector<std::vector<float>> run_in_onnx_runtime(const TempDir& dir, const std::string& onnx,
                                                    const std::vector<Tensor>& inputs,
                                                    const std::vector<Shape>& want_shapes) {
  const std::string model = dir.file("model.onnx");
  {
    std::ofstream f(model, std::ios::binary);
    f.write(onnx.data(), static_cast<std::streamsize>(onnx.size()));
  }
  std::string cmd = "node '" + run_onnx_script() + "' '" + model + "'";
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    write_tensor(dir.file("in" + std::to_string(i)), inputs[i]);
    std::remove(dir.file("out" + std::to_string(i)).c_str());
    cmd += " '" + dir.file("in" + std::to_string(i)) + "' '" + dir.file("out" + std::to_string(i)) +
           "'";
  }
  const std::string log = dir.file("log");
  const int rc = std::system((cmd + " > '" + log + "' 2>&1").c_str());
  EXPECT_EQ(rc, 0) << "ONNX Runtime failed: " << read_bytes(log);
  std::vector<std::vector<float>> outputs;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    Shape shape;
    std::vector<float> values;
    EXPECT_TRUE(read_tensor(dir.file("out" + std::to_string(i)), shape, values))
        << "no output from ONNX Runtime: " << read_bytes(log);
    EXPECT_EQ(shape, want_shapes[i]);
    outputs.push_back(values);
  }
  return outputs;
}

// Exports `c` at each opset, checks it, runs it on batches of 1 and `batch` and compares;
// prints the measured differences.
void expect_matches_onnx_runtime(const ExportCase& c, const std::vector<int>& opsets,
                                 int64_t batch) {
  SCOPED_TRACE(c.name);
  TempDir dir;
  const std::vector<Tensor> inputs = {input_batch(c, 1), input_batch(c, batch)};
  std::vector<std::vector<float>> want;
  std::vector<Shape> shapes;
  for (const auto& x : inputs) {
    want.push_back(cnn_logits(c, x));
    shapes.push_back(c.model->output_shape(x.shape()));
  }
  for (int opset : opsets) {
    SCOPED_TRACE("opset " + std::to_string(opset));
    const std::string bytes = export_onnx(*c.model, c.input, c.name, {opset, ""});
    onnx::ModelProto proto;
    ASSERT_TRUE(proto.ParseFromString(bytes));
    EXPECT_NO_THROW(onnx::checker::check_model(proto));
    const auto got = run_in_onnx_runtime(dir, bytes, inputs, shapes);
    ASSERT_EQ(got.size(), inputs.size());
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const double rel = max_rel_diff(got[i], want[i]);
      std::printf("[ORT] %-20s opset %2d batch %3lld: max |ort - cnn| / max |cnn| = %.3g\n",
                  c.name.c_str(), opset, static_cast<long long>(inputs[i].shape()[0]), rel);
      EXPECT_LE(rel, kOnnxRelTol) << "batch " << inputs[i].shape()[0];
    }
  }
}

TEST(OnnxExport, EveryModelFileMatchesOnnxRuntime) {
  const std::string missing = peer_missing();
  ASSERT_TRUE(missing.empty()) << missing;
  ASSERT_TRUE(fs::exists(source_path("data/mnist"))) << missing_mnist_message();
  const auto cases = model_file_cases();
  ASSERT_GE(cases.size(), 6u);
  for (const auto& c : cases) expect_matches_onnx_runtime(c, {17, 13, 11}, 16);
}

TEST(OnnxExport, TrainedTutorialModelMatchesOnnxRuntime) {
  const std::string missing = peer_missing();
  ASSERT_TRUE(missing.empty()) << missing;
  ASSERT_TRUE(fs::exists(source_path("data/mnist"))) << missing_mnist_message();
  const ExportCase c = trained_tutorial_case();
  // Trained: it classifies real digits (a random model gets about 10 %).
  {
    NoGradGuard no_grad;
    const Tensor x = mnist_batch(500, 1000);
    const Tensor y = c.model->forward(x);
    static const Dataset test = load_dataset("mnist", source_path("data/mnist"), "test");
    int64_t right = 0;
    for (int64_t i = 0; i < 500; ++i) {
      const float* row = y.data() + i * 10;
      right += std::max_element(row, row + 10) - row == test.labels[1000 + i];
    }
    EXPECT_GT(right, 400) << "the briefly trained tutorial model got " << right << " of 500";
  }
  expect_matches_onnx_runtime(c, {17, 13, 11}, 64);
}

TEST(OnnxExport, EveryLayerTypeMatchesOnnxRuntime) {
  const std::string missing = peer_missing();
  ASSERT_TRUE(missing.empty()) << missing;
  ASSERT_TRUE(fs::exists(source_path("data/mnist"))) << missing_mnist_message();
  auto cases = coverage_cases();
  cases.push_back(dilated_maxpool_case());
  cases.push_back(flat_input_case());
  // They hold every layer type a model file can declare.
  std::set<std::string> seen = {"Sequential"};
  for (const auto& c : cases) {
    std::function<void(const Module&)> walk = [&](const Module& m) {
      seen.insert(m.type_name());
      for (const auto& [n, child] : m.children()) walk(*child);
    };
    walk(*c.model);
  }
  for (const auto& t : layer_types()) EXPECT_TRUE(seen.count(t)) << t << " is not covered";
  for (const auto& c : cases) expect_matches_onnx_runtime(c, {17, 13, 11}, 9);
}

std::vector<std::string> node_names(const onnx::ModelProto& m) {
  std::vector<std::string> out;
  for (const auto& n : m.graph().node()) out.push_back(n.name() + ":" + n.op_type());
  return out;
}

const onnx::AttributeProto* attribute(const onnx::NodeProto& n, const std::string& name) {
  for (const auto& a : n.attribute()) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}

TEST(OnnxExport, NodesAreNamedByPathAndInitializersByStateDict) {
  auto cases = model_file_cases();
  auto it = std::find_if(cases.begin(), cases.end(),
                         [](const ExportCase& c) { return c.name == "rgb-nested"; });
  ASSERT_NE(it, cases.end());
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(export_onnx(*it->model, it->input, "rgb-nested")));
  const std::vector<std::string> want = {"features.stem.0:Conv",
                                         "features.stem.1:BatchNormalization",
                                         "features.stem.2:Sigmoid",
                                         "features.stem.2/Mul:Mul",
                                         "features.stage1.0:Conv",
                                         "features.stage1.1:BatchNormalization",
                                         "features.stage1.2:Sigmoid",
                                         "features.stage1.2/Mul:Mul",
                                         "features.stage1.3:Conv",
                                         "features.stage1.4:BatchNormalization",
                                         "features.stage1.5:Sigmoid",
                                         "features.stage1.5/Mul:Mul",
                                         "features.stage2.0:Conv",
                                         "features.stage2.1:BatchNormalization",
                                         "features.stage2.2:Sigmoid",
                                         "features.stage2.2/Mul:Mul",
                                         "head.0:GlobalAveragePool",
                                         "head.1:Flatten",
                                         "head.2:Dropout",
                                         "head.3:Gemm"};
  EXPECT_EQ(node_names(m), want);
  // SiLU: Mul(x, Sigmoid(x)).
  const auto& mul = m.graph().node(3);
  EXPECT_EQ(mul.input(0), m.graph().node(1).output(0));
  EXPECT_EQ(mul.input(1), m.graph().node(2).output(0));
  // Initializers: the state_dict less num_batches_tracked, in its order.
  std::vector<std::string> init, state;
  for (const auto& t : m.graph().initializer()) init.push_back(t.name());
  for (const auto& [name, t] : it->model->state_dict()) {
    if (name.find("num_batches_tracked") == std::string::npos) state.push_back(name);
  }
  // (Dropout's rate is a constant of its own, opset 12 on.)
  init.erase(std::remove(init.begin(), init.end(), "head.2/ratio"), init.end());
  EXPECT_EQ(init, state);
  // Values, bit for bit.
  const auto& w = m.graph().initializer(0);
  const Tensor cw = it->model->state_dict()[0].second;  // a copy: state_dict() is a temporary
  ASSERT_EQ(w.raw_data().size(), static_cast<std::size_t>(cw.numel()) * 4);
  EXPECT_EQ(std::memcmp(w.raw_data().data(), cw.data(), w.raw_data().size()), 0);
  // The graph's ends, the opset, the IR version and the producer.
  EXPECT_EQ(m.producer_name(), "cnn");
  EXPECT_EQ(m.ir_version(), 8);
  ASSERT_EQ(m.opset_import_size(), 1);
  EXPECT_EQ(m.opset_import(0).version(), 17);
  EXPECT_EQ(m.graph().name(), "rgb-nested");
  ASSERT_EQ(m.graph().input_size(), 1);
  const auto& in = m.graph().input(0);
  EXPECT_EQ(in.name(), "input");
  ASSERT_EQ(in.type().tensor_type().shape().dim_size(), 4);
  EXPECT_EQ(in.type().tensor_type().shape().dim(0).dim_param(), "batch");
  EXPECT_EQ(in.type().tensor_type().shape().dim(1).dim_value(), 3);
  EXPECT_EQ(in.type().tensor_type().shape().dim(3).dim_value(), 32);
  ASSERT_EQ(m.graph().output_size(), 1);
  const auto& out = m.graph().output(0);
  EXPECT_EQ(out.name(), "output");
  ASSERT_EQ(out.type().tensor_type().shape().dim_size(), 2);
  EXPECT_EQ(out.type().tensor_type().shape().dim(0).dim_param(), "batch");
  EXPECT_EQ(out.type().tensor_type().shape().dim(1).dim_value(), 10);
  EXPECT_EQ(m.graph().node(m.graph().node_size() - 1).output(0), "output");
  // BatchNormalization: PyTorch's momentum 0.1 is ONNX's 0.9.
  const auto* momentum = attribute(m.graph().node(1), "momentum");
  ASSERT_NE(momentum, nullptr);
  EXPECT_FLOAT_EQ(momentum->f(), 0.9f);
  EXPECT_EQ(attribute(m.graph().node(1), "training_mode"), nullptr);

  for (const auto& [opset, ir] : std::vector<std::pair<int, int>>{
           {11, 6}, {12, 7}, {13, 7}, {14, 7}, {15, 8}, {16, 8}, {17, 8}}) {
    onnx::ModelProto p;
    ASSERT_TRUE(p.ParseFromString(export_onnx(*it->model, it->input, "", {opset, ""})));
    EXPECT_EQ(p.ir_version(), ir) << "opset " << opset;
    EXPECT_EQ(p.opset_import(0).version(), opset);
  }
}

TEST(OnnxExport, GeluSiluAndChannelsLastFlattenPatterns) {
  const auto cases = coverage_cases();
  const ExportCase& c = cases[0];
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(export_onnx(*c.model, c.input)));
  const auto names = node_names(m);
  auto find = [&](const std::string& n) {
    return std::find(names.begin(), names.end(), n) - names.begin();
  };
  // GELU (exact), torch.onnx.export 1.13's pattern.
  const auto g = find("2:Div");
  ASSERT_LT(g, static_cast<long>(names.size()));
  const std::vector<std::string> gelu(names.begin() + g, names.begin() + g + 5);
  EXPECT_EQ(gelu, (std::vector<std::string>{"2:Div", "2/Erf:Erf", "2/Add:Add", "2/Mul:Mul",
                                            "2/Mul_1:Mul"}));
  const auto& div = m.graph().node(static_cast<int>(g));
  EXPECT_EQ(div.input(1), "2/sqrt_2");
  EXPECT_EQ(m.graph().node(static_cast<int>(g) + 3).input(0), div.input(0));  // Mul(x, ...)
  std::map<std::string, float> scalars;
  for (const auto& t : m.graph().initializer()) {
    if (t.dims_size() == 0 && t.data_type() == onnx::TensorProto::FLOAT) {
      float v;
      std::memcpy(&v, t.raw_data().data(), 4);
      scalars[t.name()] = v;
    }
  }
  EXPECT_EQ(scalars["2/sqrt_2"], 1.41421356f);
  EXPECT_EQ(scalars["2/one"], 1.0f);
  EXPECT_EQ(scalars["2/half"], 0.5f);
  // GELU (tanh).
  const auto t = find("8:Mul");
  ASSERT_LT(t, static_cast<long>(names.size()));
  const std::vector<std::string> tanh(names.begin() + t, names.begin() + t + 9);
  EXPECT_EQ(tanh, (std::vector<std::string>{"8:Mul", "8/Mul_1:Mul", "8/Mul_2:Mul", "8/Add:Add",
                                            "8/Mul_3:Mul", "8/Tanh:Tanh", "8/Add_1:Add",
                                            "8/Mul_4:Mul", "8/Mul_5:Mul"}));
  EXPECT_EQ(scalars["8/kappa"], 0.044715f);
  EXPECT_EQ(scalars["8/sqrt_2_over_pi"], 0.7978845608f);
  // SiLU.
  EXPECT_LT(find("4:Sigmoid") + 1, static_cast<long>(names.size()));
  EXPECT_EQ(names[find("4:Sigmoid") + 1], "4/Mul:Mul");
  // Flatten(channels_last=True): Transpose to NHWC, then Flatten.
  const auto f = find("head.2:Transpose");
  ASSERT_LT(f + 1, static_cast<long>(names.size()));
  EXPECT_EQ(names[f + 1], "head.2/Flatten:Flatten");
  const auto* perm = attribute(m.graph().node(static_cast<int>(f)), "perm");
  ASSERT_NE(perm, nullptr);
  EXPECT_EQ(std::vector<int64_t>(perm->ints().begin(), perm->ints().end()),
            (std::vector<int64_t>{0, 2, 3, 1}));
  // Identity and Dropout are written (Dropout with its rate, so that a model read back keeps
  // it); BatchNorm2d without affine gets ones and zeros.
  EXPECT_LT(find("head.0:Identity"), static_cast<long>(names.size()));
  EXPECT_LT(find("head.1:Dropout"), static_cast<long>(names.size()));
  EXPECT_EQ(m.graph().node(1).input(1), "1/ones");
  EXPECT_EQ(m.graph().node(1).input(2), "1/zeros");
  const auto* eps = attribute(m.graph().node(1), "epsilon");
  ASSERT_NE(eps, nullptr);
  EXPECT_FLOAT_EQ(eps->f(), 0.001f);
  EXPECT_FLOAT_EQ(attribute(m.graph().node(1), "momentum")->f(), 0.7f);
  // MaxPool2d's ceil_mode where it adds a window; AvgPool2d(count_include_pad=False) padded.
  const auto& maxpool = m.graph().node(static_cast<int>(find("5:MaxPool")));
  ASSERT_NE(attribute(maxpool, "ceil_mode"), nullptr);
  EXPECT_EQ(attribute(maxpool, "ceil_mode")->i(), 1);
  const auto avg = find("6:AveragePool");
  ASSERT_LT(avg, static_cast<long>(names.size()));
  EXPECT_EQ(attribute(m.graph().node(static_cast<int>(avg)), "count_include_pad")->i(), 0);
  const auto* pads = attribute(m.graph().node(static_cast<int>(avg)), "pads");
  EXPECT_EQ(std::vector<int64_t>(pads->ints().begin(), pads->ints().end()),
            (std::vector<int64_t>{1, 1, 0, 1}));

  // AvgPool2d(count_include_pad=True) with padding, as torch.onnx.export writes it: Pad, then
  // AveragePool without padding.
  onnx::ModelProto mb;
  ASSERT_TRUE(mb.ParseFromString(export_onnx(*cases[1].model, cases[1].input)));
  const auto nb = node_names(mb);
  const auto pad = std::find(nb.begin(), nb.end(), "4:Pad") - nb.begin();
  ASSERT_LT(pad + 1, static_cast<long>(nb.size()));
  EXPECT_EQ(nb[pad + 1], "4/AveragePool:AveragePool");
  EXPECT_EQ(mb.graph().node(static_cast<int>(pad)).input(1), "4/pads");
  bool found = false;
  for (const auto& t : mb.graph().initializer()) {
    if (t.name() != "4/pads") continue;
    found = true;
    ASSERT_EQ(t.data_type(), onnx::TensorProto::INT64);
    std::vector<int64_t> v(8);
    ASSERT_EQ(t.raw_data().size(), 64u);
    std::memcpy(v.data(), t.raw_data().data(), 64);
    EXPECT_EQ(v, (std::vector<int64_t>{0, 0, 1, 1, 0, 0, 0, 1}));
  }
  EXPECT_TRUE(found) << "no initializer 4/pads";
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(OnnxExport, OpsetOutsideTheRangeIsRefused) {
  auto cases = model_file_cases();
  const ExportCase& c = cases.front();
  for (int opset : {10, 18, 0}) {
    const std::string e = error_of([&] { export_onnx(*c.model, c.input, "", {opset, ""}); });
    EXPECT_NE(e.find("opset " + std::to_string(opset)), std::string::npos) << e;
    EXPECT_NE(e.find("11 to 17"), std::string::npos) << e;
  }
}

// A layer the library does not know.
class Doubler : public Module {
 public:
  std::string type_name() const override { return "Doubler"; }

 protected:
  Tensor forward_impl(const Tensor& x) override { return x; }
  Tensor backward_impl(const Tensor& dy) override { return dy; }
};

TEST(OnnxExport, LayerWithoutOnnxFormIsRefusedByName) {
  auto build = [](const char* layers) {
    return build_model(
        nlohmann::json::parse(std::string(R"({"input": [1, 28, 28], "layers": )") + layers + "}"));
  };
  struct Case {
    const char* layers;
    std::string want;
  };
  const std::vector<Case> refused = {
      {R"([{"type": "Conv2d", "out_channels": 2, "kernel_size": 3},
           {"type": "AdaptiveAvgPool2d", "output_size": 4}])",
       "layer 1 (AdaptiveAvgPool2d(output_size=4)): output size 4x4 does not divide"},
      {R"([{"type": "AvgPool2d", "kernel_size": 2, "divisor_override": 3}])",
       "layer 0 (AvgPool2d(kernel_size=2, stride=2, padding=0)): divisor_override"},
      {R"([{"type": "Sequential", "name": "b", "layers": [
             {"type": "BatchNorm2d", "track_running_stats": false}]}])",
       "layer b.0 (BatchNorm2d("},
      {R"([{"type": "Linear", "out_features": 3}])", "layer 0 (Linear("},
      {R"([{"type": "Flatten", "start_dim": 0}])", "start_dim 0"},
      {R"([{"type": "Softmax", "dim": 0}])", "batch dimension"},
      {R"([{"type": "Conv2d", "out_channels": 1, "kernel_size": 2},
           {"type": "AvgPool2d", "kernel_size": 2, "ceil_mode": true}])",
       "layer 1 (AvgPool2d(kernel_size=2, stride=2, padding=0)): ceil_mode"},
  };
  for (const auto& r : refused) {
    BuiltModel m = build(r.layers);
    m.module->eval();
    const std::string e = error_of([&] { export_onnx(*m.module, m.input); });
    EXPECT_NE(e.find(r.want), std::string::npos) << "got: " << e;
    EXPECT_EQ(e.rfind("ONNX export: ", 0), 0u) << e;
  }
  // Softmax over channels of an image: ONNX's op before opset 13 flattens at the axis.
  BuiltModel s = build(R"([{"type": "Softmax", "dim": 1}])");
  const std::string e = error_of([&] { export_onnx(*s.module, s.input, "", {12, ""}); });
  EXPECT_NE(e.find("layer 0 (Softmax(dim=1)): before opset 13"), std::string::npos) << e;
  EXPECT_NO_THROW(export_onnx(*s.module, s.input, "", {13, ""}));
  // A module of the caller's own.
  auto net = sequential(std::make_shared<Conv2d>(1, 2, 3), std::make_shared<Doubler>());
  const std::string d = error_of([&] { export_onnx(*net, {1, 28, 28}); });
  EXPECT_NE(d.find("layer 1 (Doubler()): a Doubler layer has no ONNX form"), std::string::npos)
      << d;
}

TEST(OnnxExport, ChainEndsAndLoneLayers) {
  // A model ending in Dropout: its node gives "output".
  auto ends = build_model(nlohmann::json::parse(R"({"input": [1, 8, 8], "layers": [
      {"type": "Conv2d", "out_channels": 2, "kernel_size": 3}, {"type": "Dropout"}]})"));
  ends.module->eval();
  onnx::ModelProto m;
  ASSERT_TRUE(m.ParseFromString(export_onnx(*ends.module, ends.input)));
  EXPECT_EQ(node_names(m), (std::vector<std::string>{"0:Conv", "1:Dropout"}));
  EXPECT_EQ(m.graph().node(1).output(0), "output");
  // A lone layer (not in a Sequential): its type names the node, its state_dict its weights.
  Conv2d conv(1, 3, 3);
  ASSERT_TRUE(m.ParseFromString(export_onnx(conv, {1, 8, 8})));
  EXPECT_EQ(node_names(m), (std::vector<std::string>{"Conv2d:Conv"}));
  EXPECT_EQ(m.graph().node(0).input(1), "weight");
  EXPECT_EQ(m.graph().node(0).input(2), "bias");
  const auto& dims = m.graph().output(0).type().tensor_type().shape();
  ASSERT_EQ(dims.dim_size(), 4);
  EXPECT_EQ(dims.dim(0).dim_param(), "batch");
  EXPECT_EQ(dims.dim(2).dim_value(), 6);
}

TEST(OnnxExport, WriteOnnxWritesTheExportedBytes) {
  auto cases = model_file_cases();
  const ExportCase& c = cases.front();
  TempDir dir;
  write_onnx(dir.file("m.onnx"), *c.model, c.input, c.name, {13, ""});
  EXPECT_EQ(read_bytes(dir.file("m.onnx")), export_onnx(*c.model, c.input, c.name, {13, ""}));
}

}  // namespace
}  // namespace cnn::onnx_test
