// ONNX import (issue 13's second and fifth checks): models built and trained in PyTorch, exported
// by torch.onnx.export (tools/gen_onnx_fixtures.py writes them and PyTorch's outputs), give
// PyTorch's outputs here; the tutorial's model trained in PyTorch classifies exactly as many MNIST
// test images right as PyTorch does; ONNX's own conformance cases (../shared/onnx-conformance)
// run where they are present; and every kind of hostile file gets its one-line error.
//
// Tolerance: the same float32 arithmetic in another order (PyTorch's kernels against this
// library's im2col + SGEMM, Winograd, BatchNorm folded by torch into the Conv's weights), so the
// outputs agree to a few float32 roundings of the largest value: max |cnn - torch| <= 1e-5 x
// max |torch| (the issue's bound).
#include <onnx/onnx_pb.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "cnn/data/dataset.h"
#include "cnn/io/archive.h"
#include "cnn/io/checkpoint.h"
#include "cnn/io/onnx.h"
#include "cnn/nn/grad_mode.h"
#include "cnn/nn/spec.h"
#include "cnn/train/trainer.h"
#include "testing.h"

namespace cnn::testing {
namespace {

namespace fs = std::filesystem;

std::string onnx_fixture(const std::string& name) {
  return std::string(CNN_FIXTURE_DIR) + "/onnx/" + name;
}

// max |got - want| / max |want|
double relative_error(const Tensor& got, const Tensor& want) {
  EXPECT_EQ(got.shape(), want.shape());
  if (got.shape() != want.shape()) return INFINITY;
  double diff = 0, scale = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    diff = std::max(diff, std::abs(double(got[i]) - double(want[i])));
    scale = std::max(scale, std::abs(double(want[i])));
  }
  return diff / std::max(scale, 1e-30);
}

TEST(OnnxImport, PyTorchModelsGivePyTorchsOutputs) {
  // Each covers ops of its own: see tools/gen_onnx_fixtures.py.
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"bn_kept", {"BatchNorm2d", "MaxPool2d", "LeakyReLU", "AvgPool2d", "Softmax"}},
      {"bn_folded", {"Conv2d", "Linear"}},
      {"activations_op11", {"GELU", "SiLU", "Tanh", "Sigmoid", "AdaptiveAvgPool2d", "LogSoftmax"}},
      {"activations_op15", {"GELU", "SiLU"}},
      {"activations_op17", {"GELU", "SiLU"}},
      {"matmul_reshape", {"Flatten", "Linear", "Softmax"}},
  };
  for (const auto& [name, types] : cases) {
    SCOPED_TRACE(name);
    const Archive a = read_archive(onnx_fixture(name + ".cnnt"));
    const LoadedModel m = load_model(onnx_fixture(name + ".onnx"));
    const std::string arch = m.meta["architecture"].dump();
    for (const auto& t : types) EXPECT_NE(arch.find("\"" + t + "\""), std::string::npos) << t;
    NoGradGuard no_grad;
    const double err = relative_error(m.model->forward(a.get("input")), a.get("output"));
    EXPECT_LE(err, 1e-5);
    std::printf("  %-18s max |cnn - torch| / max |torch| = %.2e\n", name.c_str(), err);
  }
}

TEST(OnnxImport, KeepsPyTorchsNames) {
  // torch's node names ("/classifier/classifier.4/Gemm") and weights ("conv1.0.weight") give the
  // PyTorch model's own state_dict names: the tutorial's Dropout (classifier.3), which the export
  // leaves out, leaves its number free.
  const ImportedModel m = import_onnx(onnx_fixture("tutorial_trained.onnx"));
  std::vector<std::string> names;
  for (const auto& [name, t] : m.state) names.push_back(name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"classifier.1.bias", "classifier.1.weight",
                                      "classifier.4.bias", "classifier.4.weight", "conv1.0.bias",
                                      "conv1.0.weight", "conv2.0.bias", "conv2.0.weight"}));
}

TEST(OnnxImport, TrainedTutorialReachesPyTorchsAccuracy) {
  const std::string mnist = std::string(CNN_SOURCE_DIR) + "/data/mnist";
  if (!fs::exists(mnist + "/t10k-images-idx3-ubyte") &&
      !fs::exists(mnist + "/t10k-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "data/mnist is not fetched (bash scripts/fetch-data.sh mnist)";
  }
  const Archive a = read_archive(onnx_fixture("tutorial_trained.cnnt"));
  const int64_t torch_correct = a.meta.at("correct").get<int64_t>();
  const LoadedModel m = load_model(onnx_fixture("tutorial_trained.onnx"));
  const Dataset test = load_dataset("mnist", mnist, "test");
  const EvalResult r = evaluate(*m.model, test);
  const auto correct = static_cast<int64_t>(std::llround(r.accuracy * r.count));
  std::printf("  PyTorch: %lld of 10000 right; cnn, the imported model: %lld\n",
              (long long)torch_correct, (long long)correct);
  EXPECT_EQ(correct, torch_correct);
  Tensor first({100, 1, 28, 28});
  for (int64_t i = 0; i < 100; ++i) {
    const Tensor t = test.image_tensor(i);
    std::copy(t.begin(), t.end(), first.data() + i * 784);
  }
  NoGradGuard no_grad;
  EXPECT_LE(relative_error(m.model->forward(first), a.get("logits_first_100")), 1e-5);
}

// ONNX's own conformance data: PyTorch modules converted by the ONNX project (opset 6).
Tensor read_tensor_pb(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  onnx::TensorProto t;
  if (!t.ParseFromString(bytes)) throw Error(path + ": not a TensorProto");
  Shape shape(t.dims().begin(), t.dims().end());
  Tensor out(shape);
  if (t.has_raw_data()) {
    std::memcpy(out.data(), t.raw_data().data(), t.raw_data().size());
  } else {
    std::copy(t.float_data().begin(), t.float_data().end(), out.data());
  }
  return out;
}

TEST(OnnxImport, OnnxConformanceCases) {
  const fs::path dir = fs::path(CNN_SOURCE_DIR) / ".." / "shared" / "onnx-conformance";
  if (!fs::exists(dir)) {
    GTEST_SKIP() << dir
                 << " is not on this machine (the conformance data is read where it is, "
                    "never copied into the project)";
  }
  // What the library cannot hold, refused by name (every case not here must import and match):
  // a model's input is [N, C, H, W] images or [N, F] features, so the cases on 3-D inputs (a
  // MaxPool1d, LeakyReLU on [N, A, B]) are refused, and so is addmm, whose weights are graph
  // inputs rather than initializers.
  const std::map<std::string, std::string> refused = {
      {"test_operator_maxpool", "has 3 dimensions"},
      {"test_LeakyReLU", "has 3 dimensions"},
      {"test_LeakyReLU_with_negval", "has 3 dimensions"},
      {"test_operator_addmm", "3 inputs besides its initializers"},
  };
  int passed = 0, total = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_directory()) continue;
    const std::string name = entry.path().filename().string();
    SCOPED_TRACE(name);
    ++total;
    const auto want_refusal = refused.find(name);
    try {
      const LoadedModel m = load_model((entry.path() / "model.onnx").string());
      const Tensor x = read_tensor_pb((entry.path() / "test_data_set_0" / "input_0.pb").string());
      const Tensor y = read_tensor_pb((entry.path() / "test_data_set_0" / "output_0.pb").string());
      NoGradGuard no_grad;
      const double err = relative_error(m.model->forward(x), y);
      EXPECT_EQ(want_refusal, refused.end()) << "imported, though expected to be refused";
      EXPECT_LE(err, 1e-5);
      std::printf("  %-44s %.2e\n", name.c_str(), err);
      if (err <= 1e-5) ++passed;
    } catch (const Error& e) {
      std::printf("  %-44s refused: %s\n", name.c_str(), e.what());
      EXPECT_NE(want_refusal, refused.end()) << e.what();
      if (want_refusal != refused.end()) {
        EXPECT_NE(std::string(e.what()).find(want_refusal->second), std::string::npos) << e.what();
      }
    }
  }
  std::printf("  %d of %d conformance cases match ONNX's outputs within 1e-5\n", passed, total);
  EXPECT_EQ(passed + static_cast<int>(refused.size()), total);
}

// Hostile files, each made from a valid export of a small model.
class HostileOnnx : public ::testing::Test {
 protected:
  void SetUp() override {
    auto built = build_model(nlohmann::json::parse(R"({"input": [1, 6, 6], "layers": [
        {"type": "Conv2d", "out_channels": 2, "kernel_size": 3}, {"type": "ReLU"},
        {"type": "Flatten"}, {"type": "Linear", "out_features": 3}]})"));
    built.module->eval();
    bytes_ = export_onnx(*built.module, built.input);
    ASSERT_TRUE(model_.ParseFromString(bytes_));
  }
  // The error import gives, which must be one line naming the file.
  std::string error_of(const std::string& bytes) {
    try {
      import_onnx_bytes(bytes, "hostile.onnx");
    } catch (const Error& e) {
      const std::string what = e.what();
      EXPECT_EQ(what.find('\n'), std::string::npos) << what;
      EXPECT_EQ(what.rfind("hostile.onnx: ", 0), 0u) << what;
      return what;
    }
    ADD_FAILURE() << "imported";
    return "";
  }
  std::string error_of(const onnx::ModelProto& m) { return error_of(m.SerializeAsString()); }
  onnx::NodeProto& node(const std::string& op) {
    for (auto& n : *model_.mutable_graph()->mutable_node()) {
      if (n.op_type() == op) return n;
    }
    throw Error("no " + op);
  }
  onnx::TensorProto& initializer(const std::string& name) {
    for (auto& t : *model_.mutable_graph()->mutable_initializer()) {
      if (t.name() == name) return t;
    }
    throw Error("no " + name);
  }
  std::string bytes_;
  onnx::ModelProto model_;
};

TEST_F(HostileOnnx, ValidFileImports) { EXPECT_NO_THROW(import_onnx_bytes(bytes_, "ok.onnx")); }

TEST_F(HostileOnnx, Truncated) {
  for (std::size_t keep : {std::size_t{0}, std::size_t{7}, bytes_.size() / 2, bytes_.size() - 1}) {
    expect_contains(error_of(bytes_.substr(0, keep)), {"not an ONNX model"});
  }
  expect_contains(error_of(std::string("\x89PNG\r\n\x1a\n garbage")), {"not an ONNX model"});
}

TEST_F(HostileOnnx, AbsurdDimensions) {
  auto& w = initializer("0.weight");
  w.set_dims(0, int64_t{1} << 40);
  w.set_dims(1, int64_t{1} << 40);
  expect_contains(error_of(model_), {"initializer '0.weight'"});
  w.set_dims(0, -3);
  expect_contains(error_of(model_), {"negative dimension -3"});
}

TEST_F(HostileOnnx, AbsurdCounts) {
  auto& g = *model_.mutable_graph();
  for (int i = 0; i < 70000; ++i) {
    auto* n = g.add_node();
    n->set_op_type("Identity");
    n->add_input("output");
    n->add_output("x" + std::to_string(i));
  }
  expect_contains(error_of(model_), {"more than 65536 nodes"});
}

TEST_F(HostileOnnx, InitializerSizeIsNotItsShape) {
  auto& w = initializer("0.weight");
  w.set_raw_data(w.raw_data().substr(0, 20));
  expect_contains(error_of(model_),
                  {"initializer '0.weight' holds 20 bytes; its shape (2, 1, 3, 3) needs 72"});
}

TEST_F(HostileOnnx, MissingInput) {
  node("Relu").set_input(0, "nowhere");
  expect_contains(error_of(model_), {"node '1' (Relu): reads 'nowhere', which no initializer"});
  // The graph's own input missing.
  model_.mutable_graph()->mutable_input(0)->set_name("renamed");
  expect_contains(error_of(model_), {"reads 'input'"});
}

TEST_F(HostileOnnx, Cycle) {
  // The Conv reads the ReLU's output, which comes after it.
  node("Conv").set_input(0, node("Relu").output(0));
  expect_contains(error_of(model_), {"(Conv): reads '1_output_0'", "a cycle"});
}

TEST_F(HostileOnnx, UnsupportedOp) {
  node("Relu").set_op_type("Resize");
  expect_contains(error_of(model_),
                  {"node '1' (Resize): is not supported (supported: ", "Conv", "MaxPool"});
}

TEST_F(HostileOnnx, BranchingGraph) {
  // A residual: Add(conv, relu(conv)), the Add's output the graph's.
  auto& g = *model_.mutable_graph();
  const std::string conv = node("Conv").output(0), relu = node("Relu").output(0);
  auto* add = g.add_node();
  add->set_name("residual");
  add->set_op_type("Add");
  add->add_input(conv);
  add->add_input(relu);
  add->add_output("sum");
  expect_contains(error_of(model_), {"'" + conv + "'", "a branching graph"});
}

TEST_F(HostileOnnx, ExternalDataAndOtherTypes) {
  auto& w = initializer("0.weight");
  w.set_data_location(onnx::TensorProto::EXTERNAL);
  expect_contains(error_of(model_), {"external file"});
  w.set_data_location(onnx::TensorProto::DEFAULT);
  w.set_data_type(onnx::TensorProto::DOUBLE);
  expect_contains(error_of(model_), {"only float32"});
}

TEST_F(HostileOnnx, OpsetAndInputs) {
  model_.mutable_opset_import(0)->set_version(5);
  expect_contains(error_of(model_), {"opset 5 is not supported"});
  model_.mutable_opset_import(0)->set_version(13);
  *model_.mutable_graph()->add_input() = model_.graph().input(0);
  model_.mutable_graph()->mutable_input(1)->set_name("second");
  expect_contains(error_of(model_), {"2 inputs"});
}

TEST_F(HostileOnnx, FilesOnDisk) {
  const fs::path dir = fresh_test_dir("hostile_onnx");
  expect_error([&] { import_onnx((dir / "missing.onnx").string()); },
               {"missing.onnx", "cannot open"});
  expect_error([&] { import_onnx(dir.string()); }, {"is a directory"});
}

}  // namespace
}  // namespace cnn::testing
