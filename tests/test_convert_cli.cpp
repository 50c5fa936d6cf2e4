// Models out and in again (issue 13's fourth check): every shipped model, written as ONNX and read
// back, is the same model: the same description, the same summary table, the same state_dict and
// bit for bit the same logits (the same layers run the same kernels on the same weights). And
// `cnn export` / `cnn import` / --weights FILE.onnx / train --init through the command line.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "cnn/io/checkpoint.h"
#include "cnn/io/onnx.h"
#include "cnn/models/registry.h"
#include "cnn/nn/spec.h"
#include "cnn/summary.h"
#include "run_cli.h"
#include "testing.h"

namespace cnn::testing {
namespace {

namespace fs = std::filesystem;

// Every parameter and buffer drawn at random (BatchNorm's running variance positive), so that a
// weight or statistic lost or swapped on the way shows in the logits.
void randomize_state(Module& model, Generator& gen) {
  std::map<std::string, Tensor> state;
  for (const auto& [name, t] : model.state_dict()) {
    Tensor r = t.clone();
    const bool count = name.ends_with("num_batches_tracked");
    for (int64_t i = 0; i < r.numel(); ++i) {
      const float u = static_cast<float>(gen.uniform());
      r[i] = count ? 7.0f : name.ends_with("running_var") ? 0.5f + u : 2.0f * u - 1.0f;
    }
    state[name] = r;
  }
  model.load_state_dict(state);
}

Tensor batch_for(const Shape& input, int64_t n, Generator& gen) {
  Shape shape = {n};
  shape.insert(shape.end(), input.begin(), input.end());
  return randn(shape, gen);
}

TEST(OnnxRoundTrip, EveryShippedModelComesBackTheSame) {
  for (const auto& name : shipped_model_names()) {
    for (int opset : {kOnnxMinExportOpset, 13, kOnnxMaxExportOpset}) {
      SCOPED_TRACE(name + " at opset " + std::to_string(opset));
      Generator gen(42);
      BuiltModel built = build_model(shipped_model(name), gen, name);
      randomize_state(*built.module, gen);
      built.module->eval();
      OnnxExportOptions options;
      options.opset = opset;
      const std::string bytes = export_onnx(*built.module, built.input, built.name, options);
      const ImportedModel imported = import_onnx_bytes(bytes, name + ".onnx");
      const LoadedModel back = load_imported(imported, name + ".onnx");

      // The description may spell an argument otherwise (stride 2 or the default, [3, 3] or 3):
      // the model it describes writes the same file again, byte for byte.
      EXPECT_EQ(export_onnx(*back.model, back.input, back.name, options), bytes);
      EXPECT_EQ(summary(*back.model, back.input), summary(*built.module, built.input));
      const auto want_state = built.module->state_dict();
      const auto got_state = back.model->state_dict();
      ASSERT_EQ(got_state.size(), want_state.size());
      for (std::size_t i = 0; i < want_state.size(); ++i) {
        EXPECT_EQ(got_state[i].first, want_state[i].first);
        // BatchNorm2d's count of batches is no part of ONNX's BatchNormalization: it comes back 0.
        if (want_state[i].first.ends_with("num_batches_tracked")) continue;
        EXPECT_TRUE(all_close(got_state[i].second, want_state[i].second, Tol{0, 0}))
            << want_state[i].first;
      }
      const Tensor x = batch_for(built.input, 3, gen);
      EXPECT_TRUE(all_close(back.model->forward(x), built.module->forward(x), Tol{0, 0}));
    }
  }
}

class ConvertCli : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = fresh_test_dir("convert_cli"); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

// A checkpoint of the tutorial's model with random weights, as `cnn import` would write one.
std::string tutorial_checkpoint(const std::string& path) {
  Generator gen(7);
  BuiltModel built = build_model(shipped_model("tutorial"), gen, "tutorial");
  randomize_state(*built.module, gen);
  write_model_checkpoint(path, *built.module, built.input);
  return path;
}

TEST_F(ConvertCli, ExportImportAndUseTheOnnxFileEverywhere) {
  const std::string ckpt = tutorial_checkpoint(path("tutorial.cnnt"));
  const std::string onnx = path("tutorial.onnx");
  Result r = run_cli("export --weights " + ckpt + " --onnx " + onnx + " --opset 13");
  ASSERT_EQ(r.code, 0) << r.out;
  expect_contains(r.out, {"wrote " + onnx, "opset 13", "input \"input\" [batch, 1, 28, 28]",
                          "output \"output\" [batch, 10]"});

  // The ONNX file is a model file and a weights file.
  const Result from_ckpt = run_cli("summary --weights " + ckpt);
  const Result from_onnx = run_cli("summary --weights " + onnx);
  ASSERT_EQ(from_onnx.code, 0) << from_onnx.out;
  EXPECT_EQ(from_onnx.out, from_ckpt.out);
  const Result as_model = run_cli("summary --model " + onnx);
  ASSERT_EQ(as_model.code, 0) << as_model.out;
  EXPECT_EQ(as_model.out, from_ckpt.out);

  r = run_cli("import " + onnx + " --out " + path("back.cnnt"));
  ASSERT_EQ(r.code, 0) << r.out;
  expect_contains(r.out,
                  {"Total params: 55,338" /* the tutorial's */, "wrote " + path("back.cnnt")});
  const LoadedModel a = load_checkpoint(ckpt), b = load_checkpoint(path("back.cnnt"));
  Generator gen(3);
  const Tensor x = batch_for(a.input, 4, gen);
  EXPECT_TRUE(all_close(b.model->forward(x), a.model->forward(x), Tol{0, 0}));
  EXPECT_EQ(b.meta["imported_from"]["format"], "onnx");

  // A second import does not replace the first unless asked.
  r = run_cli("import " + onnx + " --out " + path("back.cnnt"));
  EXPECT_EQ(r.code, 1);
  expect_contains(r.out, {"the file exists; pass --overwrite"});
  r = run_cli("import " + onnx + " --out " + path("back.cnnt") + " --overwrite --quiet");
  EXPECT_EQ(r.code, 0) << r.out;
}

TEST_F(ConvertCli, PredictsEvaluatesAndFineTunesAnOnnxFile) {
  const std::string mnist = std::string(CNN_SOURCE_DIR) + "/data/mnist";
  if (!fs::exists(mnist + "/t10k-images-idx3-ubyte") &&
      !fs::exists(mnist + "/t10k-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "data/mnist is not fetched (bash scripts/fetch-data.sh mnist)";
  }
  const std::string ckpt = tutorial_checkpoint(path("tutorial.cnnt"));
  const std::string onnx = path("tutorial.onnx");
  ASSERT_EQ(run_cli("export --weights " + ckpt + " --onnx " + onnx).code, 0);

  // The same answers from the checkpoint and from its ONNX file.
  const std::string data = " --data-dir " + mnist;
  const Result p1 = run_cli("predict --weights " + ckpt + " --index 7" + data);
  const Result p2 = run_cli("predict --weights " + onnx + " --index 7" + data);
  ASSERT_EQ(p2.code, 0) << p2.out;
  EXPECT_EQ(p2.out, p1.out);
  const Result e1 = run_cli("eval --weights " + ckpt + data);
  const Result e2 = run_cli("eval --weights " + onnx + data);
  ASSERT_EQ(e2.code, 0) << e2.out;
  EXPECT_EQ(e2.out, e1.out);

  // Fine-tuning: the ONNX file's model and weights, trained further.
  const Result t = run_cli("train --init " + onnx + data + " --max-steps 20 --epochs 1 --out " +
                           path("tuned.cnnt") + " --quiet");
  ASSERT_EQ(t.code, 0) << t.out;
  const LoadedModel start = load_checkpoint(ckpt), tuned = load_checkpoint(path("tuned.cnnt"));
  EXPECT_EQ(summary(*tuned.model, tuned.input), summary(*start.model, start.input));
  EXPECT_EQ(tuned.meta["global_step"], 20);
  // Twenty Adam steps move every weight from where the file left it, and by little.
  const auto s0 = start.model->state_dict(), s1 = tuned.model->state_dict();
  const Tensor& w0 = s0[0].second;
  const Tensor& w1 = s1[0].second;
  double moved = 0;
  for (int64_t i = 0; i < w0.numel(); ++i) moved = std::max<double>(moved, std::abs(w1[i] - w0[i]));
  EXPECT_GT(moved, 0.0);
  EXPECT_LT(moved, 20 * 1e-3 * 1.5);  // Adam moves a weight by at most about lr per step

  const Result both = run_cli("train --init " + onnx + " --model lenet5" + data);
  EXPECT_EQ(both.code, 1);
  expect_contains(both.out, {"--init", "brings its own model"});
}

TEST_F(ConvertCli, RefusesWhatItCannotDo) {
  const std::string ckpt = tutorial_checkpoint(path("tutorial.cnnt"));
  Result r = run_cli("export --weights " + ckpt + " --onnx " + path("x.onnx") + " --opset 10");
  EXPECT_EQ(r.code, 2);
  expect_contains(r.out, {"--opset", "10"});
  // Written beside the path and renamed over it: a device would be replaced, so it is refused.
  // (A pipe of the test's own stands for /dev/null, which a regression would replace.)
  ASSERT_EQ(mkfifo(path("pipe").c_str(), 0600), 0);
  r = run_cli("export --weights " + ckpt + " --onnx " + path("pipe"));
  EXPECT_EQ(r.code, 1);
  expect_contains(r.out, {"pipe: is not a regular file"});
  EXPECT_FALSE(fs::is_regular_file(path("pipe")));
  r = run_cli("export --weights " + path("missing.cnnt") + " --onnx " + path("x.onnx"));
  EXPECT_EQ(r.code, 1);
  expect_contains(r.out, {"missing.cnnt"});
  EXPECT_FALSE(fs::exists(path("x.onnx")));
  r = run_cli("import " + ckpt + " --out " + path("y.cnnt"));
  EXPECT_EQ(r.code, 1);
  expect_contains(r.out, {"not a file 'cnn import' reads"});
  { std::ofstream(path("junk.onnx")) << "not a protobuf at all"; }
  r = run_cli("import " + path("junk.onnx") + " --out " + path("y.cnnt"));
  EXPECT_EQ(r.code, 1);
  expect_contains(r.out, {"junk.onnx"});
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;  // one line
  EXPECT_FALSE(fs::exists(path("y.cnnt")));
  r = run_cli("eval --weights " + path("junk.onnx"));
  EXPECT_EQ(r.code, 1);
  expect_contains(r.out, {"junk.onnx"});
}

}  // namespace
}  // namespace cnn::testing
