// Model files and the spec layer (cnn/nn/spec.h): the tutorial from models/tutorial.json is the
// hard-wired TutorialCNN (summary byte for byte, the same initial weights from the same seed, the
// same logits from the same weights); every module's config() builds the same module again;
// checkpoints store the model's own description; hostile model files are one clear error each,
// before anything big is allocated.
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cnn/data/idx.h"
#include "cnn/models/registry.h"
#include "cnn/nn/grad_mode.h"
#include "cnn/nn/spec.h"
#include "cnn/train/trainer.h"
#include "run_cli.h"
#include "testing.h"

namespace cnn::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

void expect_has(const std::string& msg, const std::vector<std::string>& fragments) {
  for (const auto& f : fragments)
    EXPECT_NE(msg.find(f), std::string::npos) << msg << "\n  lacks: " << f;
}

class ModelFiles : public ::testing::Test {
 protected:
  fs::path dir;
  void SetUp() override {
    dir = fs::path(::testing::TempDir()) /
          ("cnn_models_" + std::to_string(getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  std::string write(const std::string& name, const std::string& text) const {
    const std::string p = (dir / name).string();
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
  // MNIST-shaped IDX files of n train and m test images (digits i % 10, blank pictures).
  static void make_data(const fs::path& d, int64_t n, int64_t m) {
    fs::create_directories(d);
    for (auto [prefix, count] : {std::pair<std::string, int64_t>{"train", n}, {"t10k", m}}) {
      IdxImages img{count, 28, 28, std::vector<uint8_t>(static_cast<std::size_t>(count * 784), 0)};
      std::vector<uint8_t> labels(static_cast<std::size_t>(count));
      for (int64_t i = 0; i < count; ++i) {
        labels[static_cast<std::size_t>(i)] = static_cast<uint8_t>(i % 10);
        img.pixels[static_cast<std::size_t>(i * 784 + i % 784)] = 255;
      }
      write_idx_images((d / (prefix + "-images-idx3-ubyte")).string(), img);
      write_idx_labels((d / (prefix + "-labels-idx1-ubyte")).string(), labels);
    }
  }
  // The error building a description gives, as a model file named bad.json would.
  std::string build_error(const json& d) const {
    return error_of([&] {
      Generator g(0);
      build_model(d, g, "bad.json");
    });
  }
};

json tiny(json layers) { return {{"input", {1, 8, 8}}, {"layers", std::move(layers)}}; }

// ---- the tutorial, declared and hard-wired ----

TEST_F(ModelFiles, TutorialFileIsTheHardWiredModel) {
  manual_seed(7);
  TutorialCNN wired;
  manual_seed(7);
  const BuiltModel built = build_model(shipped_model("tutorial"), default_generator());
  EXPECT_EQ(built.name, "tutorial");
  EXPECT_EQ(built.input, (Shape{1, 28, 28}));
  EXPECT_EQ(built.output, (Shape{10}));
  EXPECT_EQ(built.parameters, 55338);
  EXPECT_EQ(summary(*built.module, built.input), summary(wired, {1, 28, 28}));
  // The same draws in the same order: the same initial weights, name for name.
  const auto a = wired.state_dict(), b = built.module->state_dict();
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_TRUE(all_close(a[i].second, b[i].second, Tol{0, 0})) << a[i].first;
  }
  // The same logits from the same weights, in evaluation and (with dropout's draws) training.
  Tensor x({4, 1, 28, 28});
  Generator g(3);
  uniform_(x, 0.0f, 1.0f, g);
  wired.eval();
  built.module->eval();
  EXPECT_TRUE(all_close(wired.forward(x), built.module->forward(x), Tol{0, 0}));
  wired.train();
  built.module->train();
  manual_seed(11);
  const Tensor ya = wired.forward(x);
  manual_seed(11);
  const Tensor yb = built.module->forward(x);
  EXPECT_TRUE(all_close(ya, yb, Tol{0, 0}));
}

TEST_F(ModelFiles, TutorialConfigIsItsFile) {
  // TutorialCNN describes itself as models/tutorial.json declares it (with every argument).
  const json described = describe_model(TutorialCNN(), {1, 28, 28});
  Generator g(0);
  const BuiltModel again = build_model(described, g);
  EXPECT_EQ(again.module->repr(), build_model(shipped_model("tutorial"), g).module->repr());
  EXPECT_EQ(described["name"], "tutorial");
  EXPECT_EQ(described["layers"][0]["name"], "conv1");
}

TEST_F(ModelFiles, EveryConfigBuildsTheSameModuleAgain) {
  const json d = tiny({{{"type", "Conv2d"},
                        {"out_channels", 6},
                        {"kernel_size", {3, 2}},
                        {"stride", 2},
                        {"padding", {1, 0}},
                        {"dilation", {1, 2}},
                        {"bias", false}},
                       {{"type", "Conv2d"},
                        {"out_channels", 6},
                        {"kernel_size", 1},
                        {"groups", 3},
                        {"padding", "same"}},
                       {{"type", "ReLU"}},
                       {{"type", "MaxPool2d"}, {"kernel_size", 2}, {"ceil_mode", true}},
                       {{"type", "Sequential"},
                        {"name", "head"},
                        {"layers",
                         {{{"type", "Flatten"}},
                          {{"type", "Dropout"}, {"p", 0.25}},
                          {{"type", "Linear"}, {"out_features", 5}},
                          {{"type", "LogSoftmax"}, {"dim", 1}}}}}});
  Generator g(0);
  const BuiltModel a = build_model(d, g);
  const json described = describe_model(*a.module, a.input);
  const BuiltModel b = build_model(described, g);
  EXPECT_EQ(a.module->repr(), b.module->repr());
  EXPECT_EQ(describe_model(*b.module, b.input), described);
  std::vector<std::string> names;
  for (const auto& [n, t] : b.module->state_dict()) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"0.weight", "1.weight", "1.bias", "head.2.weight",
                                             "head.2.bias"}));
  // in_channels and in_features were inferred from the shapes flowing in.
  EXPECT_EQ(described["layers"][1]["in_channels"], 6);
  EXPECT_EQ(described["layers"][4]["layers"][2]["in_features"], 6 * 2 * 2);
  EXPECT_EQ(a.output, (Shape{5}));
}

TEST_F(ModelFiles, CheckpointsStoreTheModelsOwnDescription) {
  // A model file trained by the command line loads back from the checkpoint alone.
  const std::string model = write("three-convs.json", R"({
    "name": "three-convs", "input": [1, 28, 28],
    "layers": [
      {"type": "Conv2d", "out_channels": 4, "kernel_size": [5, 3], "padding": [2, 1]},
      {"type": "ReLU"},
      {"type": "MaxPool2d", "kernel_size": 2},
      {"type": "Conv2d", "out_channels": 8, "kernel_size": 3, "dilation": 2, "groups": 2},
      {"type": "ReLU"},
      {"type": "Flatten"},
      {"type": "Linear", "out_features": 10}]})");
  const std::string ckpt = (dir / "m.cnnt").string();
  make_data(dir / "data", 48, 16);
  const Result r = run_cli("train --model " + model + " --epochs 1 --max-steps 3 --quiet --out " +
                           ckpt + " --data-dir " + (dir / "data").string());
  ASSERT_EQ(r.code, 0) << r.out;
  const Result e = run_cli("eval --weights " + ckpt + " --data-dir " + (dir / "data").string());
  EXPECT_EQ(e.code, 0) << e.out;
  EXPECT_NE(r.out.find("training three-convs"), std::string::npos) << r.out;
  const LoadedModel loaded = load_checkpoint(ckpt);
  EXPECT_EQ(loaded.name, "three-convs");
  EXPECT_EQ(loaded.input, (Shape{1, 28, 28}));
  EXPECT_EQ(loaded.output, (Shape{10}));
  EXPECT_EQ(loaded.meta["version"], 2);
  EXPECT_EQ(loaded.model->submodule("3").repr(),
            "Conv2d(4, 8, kernel_size=(3, 3), stride=(1, 1), dilation=(2, 2), groups=2)");
}

TEST_F(ModelFiles, ShippedModelsAndPathsAreFound) {
  const auto names = shipped_model_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "tutorial"), names.end());
  for (const auto& n : names) {
    SCOPED_TRACE(n);
    Generator g(0);
    const BuiltModel m = build_model(shipped_model(n), g, "models/" + n + ".json");
    EXPECT_FALSE(m.input.empty());
  }
  expect_has(error_of([] { find_model("tutorail"); }), {"no model named 'tutorail'", "tutorial"});
  expect_has(error_of([&] { find_model((dir / "none.json").string()); }),
             {"none.json", "no such file"});
}

// ---- hostile model files: one clear error each ----

TEST_F(ModelFiles, UnknownTypesAndArgumentsNameTheNearest) {
  expect_has(build_error(tiny({{{"type", "Conv2D"}, {"out_channels", 2}, {"kernel_size", 3}}})),
             {"bad.json", "layer 0", "unknown layer type 'Conv2D'", "did you mean 'Conv2d'"});
  expect_has(build_error(tiny({{{"type", "Conv2d"}, {"out_channels", 2}, {"kernal_size", 3}}})),
             {"bad.json", "layer 0 (Conv2d)", "unknown argument 'kernal_size'",
              "did you mean 'kernel_size'"});
  expect_has(build_error(tiny({{{"kind", "ReLU"}}})), {"bad.json", "layer 0", "needs a \"type\""});
  expect_has(build_error(tiny({{{"type", "Sequential"},
                                {"name", "block"},
                                {"layers", {{{"type", "ReLU"}, {"slope", 1}}}}}})),
             {"bad.json", "layer block.0 (ReLU)", "unknown argument 'slope'"});
}

TEST_F(ModelFiles, MismatchedChannelsAndFeaturesAreErrors) {
  expect_has(
      build_error(tiny(
          {{{"type", "Conv2d"}, {"in_channels", 3}, {"out_channels", 2}, {"kernel_size", 3}}})),
      {"bad.json", "layer 0 (Conv2d)", "in_channels is 3 but the input has 1 channels"});
  expect_has(build_error(tiny({{{"type", "Flatten"}},
                               {{"type", "Linear"}, {"in_features", 10}, {"out_features", 2}}})),
             {"layer 1 (Linear)", "in_features is 10 but the input has 64 features"});
  expect_has(build_error(tiny({{{"type", "Flatten"}},
                               {{"type", "Conv2d"}, {"out_channels", 2}, {"kernel_size", 3}}})),
             {"layer 1 (Conv2d)", "needs an input of shape [C, H, W]", "[64]"});
  expect_has(build_error(tiny(
                 {{{"type", "Conv2d"}, {"out_channels", 3}, {"kernel_size", 3}, {"groups", 2}}})),
             {"layer 0 (Conv2d)", "divisible by groups"});
}

TEST_F(ModelFiles, KernelLargerThanItsInputIsAnError) {
  expect_has(build_error(tiny({{{"type", "Conv2d"}, {"out_channels", 2}, {"kernel_size", 9}}})),
             {"bad.json", "layer 0 (Conv2d)", "smaller than the dilated kernel size (9 x 9)",
              "[1, 8, 8]"});
  expect_has(build_error(tiny({{{"type", "MaxPool2d"}, {"kernel_size", 2}},
                               {{"type", "MaxPool2d"}, {"kernel_size", 2}},
                               {{"type", "MaxPool2d"}, {"kernel_size", 2}},
                               {{"type", "MaxPool2d"}, {"kernel_size", 2}}})),
             {"layer 3 (MaxPool2d)", "[1, 1, 1]"});
}

TEST_F(ModelFiles, NegativeAndEnormousSizesAreRefusedBeforeAllocating) {
  expect_has(build_error(tiny({{{"type", "Conv2d"}, {"out_channels", -4}, {"kernel_size", 3}}})),
             {"layer 0 (Conv2d)", "'out_channels' must be at least 1, got -4"});
  expect_has(build_error(tiny({{{"type", "Conv2d"}, {"out_channels", 4}, {"kernel_size", 0}}})),
             {"'kernel_size' must be at least 1"});
  // 2^40 outputs of a Linear: refused by the parameter budget, not by a failed allocation.
  expect_has(build_error(tiny({{{"type", "Flatten"}},
                               {{"type", "Linear"}, {"out_features", int64_t{1} << 40}}})),
             {"layer 1 (Linear)", "more than the limit"});
  expect_has(build_error(tiny({{{"type", "Flatten"}},
                               {{"type", "Linear"}, {"out_features", int64_t{1} << 26}}})),
             {"layer 1 (Linear)", "parameters, the limit"});
  expect_has(
      build_error(tiny({{{"type", "Conv2d"}, {"out_channels", 1 << 21}, {"kernel_size", 1}}})),
      {"layer 0 (Conv2d)", "elements an image, more than the limit"});
  expect_has(build_error({{"input", {1, 1 << 20, 1 << 20}}, {"layers", {{{"type", "ReLU"}}}}}),
             {"bad.json", "\"input\"", "the limit"});
  expect_has(build_error(tiny({{{"type", "Conv2d"},
                                {"out_channels", 2},
                                {"kernel_size", json::parse("18446744073709551615")}}})),
             {"'kernel_size' is out of range"});
  // The whole check runs in a child whose address space may grow by 64 MiB only.
  const json huge =
      tiny({{{"type", "Flatten"}}, {{"type", "Linear"}, {"out_features", int64_t{1} << 26}}});
  EXPECT_EXIT(exit_after_capped(
                  [&] {
                    Generator g(0);
                    build_model(huge, g, "bad.json");
                  },
                  64L << 20),
              ::testing::ExitedWithCode(0), "limit");
}

TEST_F(ModelFiles, WrongValueTypesAreErrors) {
  expect_has(build_error(tiny({{{"type", "Conv2d"}, {"out_channels", "4"}, {"kernel_size", 3}}})),
             {"'out_channels' must be an integer, got \"4\""});
  expect_has(build_error(tiny({{{"type", "Conv2d"}, {"out_channels", 4}, {"kernel_size", 2.5}}})),
             {"'kernel_size' must be an integer, got 2.5"});
  expect_has(
      build_error(tiny({{{"type", "Conv2d"}, {"out_channels", 4}, {"kernel_size", {1, 2, 3}}}})),
      {"'kernel_size' must be an integer or a pair [h, w]"});
  expect_has(
      build_error(tiny(
          {{{"type", "Conv2d"}, {"out_channels", 4}, {"kernel_size", 3}, {"padding", "full"}}})),
      {"'padding' must be one of same, valid, got \"full\""});
  expect_has(build_error(tiny({{{"type", "Linear"}, {"out_features", 2}, {"bias", 1}}})),
             {"'bias' must be true or false, got 1"});
  expect_has(build_error(tiny({{{"type", "Dropout"}, {"p", 1.5}}})), {"'p' must be in [0.0, 1.0]"});
  expect_has(build_error(tiny({{{"type", "BatchNorm2d"}, {"momentum", nullptr}}})),
             {"layer 0 (BatchNorm2d)", "momentum null", "not supported"});
  expect_has(build_error(tiny(json::array({3}))), {"a layer must be an object"});
  expect_has(build_error(tiny("conv")), {"\"layers\" must be an array"});
  expect_has(build_error({{"input", {1, -8, 8}}, {"layers", json::array()}}),
             {"\"input\" must hold positive integers"});
  expect_has(build_error({{"input", "28x28"}, {"layers", json::array()}}),
             {"\"input\" must be [channels, height, width]"});
  expect_has(build_error({{"input", {1, 8, 8}}, {"layers", json::array()}, {"layer", 1}}),
             {"unknown key 'layer'", "did you mean 'layers'"});
  expect_has(
      build_error(tiny({{{"type", "ReLU"}, {"name", "a"}}, {{"type", "ReLU"}, {"name", "a"}}})),
      {"two layers are named 'a'"});
  expect_has(build_error(tiny({{{"type", "ReLU"}, {"name", "a.b"}}})), {"without dots"});
}

TEST_F(ModelFiles, MissingLayersOrInputAreErrors) {
  expect_has(build_error({{"input", {1, 8, 8}}}), {"bad.json", "missing \"layers\""});
  expect_has(build_error({{"layers", json::array()}}), {"bad.json", "missing \"input\""});
  expect_has(build_error(tiny(json::array())), {"\"layers\" is empty"});
  expect_has(build_error(tiny({{{"type", "Sequential"}}})), {"missing \"layers\""});
  expect_has(build_error(json::array()), {"a model is an object"});
}

TEST_F(ModelFiles, DeepNestingIsRefusedWithoutRecursingIntoIt) {
  // Thousands of '[' : the file's JSON depth is checked before it is parsed.
  const std::string deep =
      write("deep.json", "{\"input\": [1, 8, 8], \"layers\": " + std::string(100000, '[') +
                             std::string(100000, ']') + "}");
  expect_has(error_of([&] { read_model_file(deep); }), {"deep.json", "nested deeper than 64"});
  // Sequential in Sequential, 20 levels: within the JSON depth, refused by the model's.
  json layer = {{"type", "ReLU"}};
  for (int i = 0; i < 20; ++i) layer = {{"type", "Sequential"}, {"layers", {layer}}};
  expect_has(build_error(tiny({layer})), {"nested deeper than 16 levels"});
  // 5000 layers in one list: refused by the layer count.
  expect_has(build_error(tiny(json::array())), {"empty"});
  json many = json::array();
  for (int i = 0; i < 5000; ++i) many.push_back({{"type", "ReLU"}});
  expect_has(build_error(tiny(many)), {"layer 4096 (ReLU)", "more than 4096 layers"});
}

TEST_F(ModelFiles, FilesThatAreNotJsonAreErrors) {
  const std::string text = write("notes.json", "Conv2d(1, 16, 3)\n");
  expect_has(error_of([&] { read_model_file(text); }), {"notes.json", "malformed JSON"});
  const std::string empty = write("empty.json", "");
  expect_has(error_of([&] { read_model_file(empty); }), {"empty.json", "malformed JSON"});
  expect_has(error_of([&] { read_model_file(dir.string()); }), {"is a directory"});
}

TEST_F(ModelFiles, TheCommandLineGivesOneLine) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"typo.json",
       R"({"input": [1, 28, 28], "layers": [{"type": "Conv2d", "out_channels": 4, "kernal_size": 3}]})"},
      {"text.json", "not json"},
      {"channels.json",
       R"({"input": [1, 28, 28], "layers": [{"type": "Conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": 3}]})"},
      {"nolayers.json", R"({"input": [1, 28, 28]})"},
      {"deep.json", "{\"input\": [1, 28, 28], \"layers\": " + std::string(5000, '[') +
                        std::string(5000, ']') + "}"},
  };
  for (const auto& [name, text] : cases) {
    SCOPED_TRACE(name);
    const std::string p = write(name, text);
    for (const std::string& cmd :
         std::vector<std::string>{"summary", "train --out " + (dir / "x.cnnt").string()}) {
      const Result r = run_cli(cmd + " --model " + p);
      EXPECT_NE(r.code, 0) << r.out;
      EXPECT_EQ(r.out.rfind("cnn: error: " + p + ": ", 0), 0u) << r.out;
      EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
      EXPECT_LT(r.out.size(), 600u) << r.out;
    }
  }
  // Nothing was written for a refused model.
  EXPECT_FALSE(fs::exists(dir / "x.cnnt"));
}

}  // namespace
}  // namespace cnn::testing

namespace cnn::testing {
namespace {

// RGB pictures of 10 classes: one of five colours, in horizontal or vertical stripes, on noise.
Dataset stripes(int64_t count, uint64_t seed) {
  static const uint8_t colours[5][3] = {
      {230, 40, 40}, {40, 200, 60}, {50, 80, 230}, {230, 210, 40}, {200, 60, 210}};
  Dataset d;
  d.name = "stripes";
  d.split = "generated";
  d.count = count;
  d.channels = 3;
  d.rows = d.cols = 32;
  d.num_classes = 10;
  for (int c = 0; c < 10; ++c) d.class_names.push_back(std::to_string(c));
  d.pixels.resize(static_cast<std::size_t>(count * 3 * 32 * 32));
  d.labels.resize(static_cast<std::size_t>(count));
  Generator g(seed);
  Tensor noise({count * 3 * 32 * 32});
  uniform_(noise, 0.0f, 60.0f, g);
  for (int64_t i = 0; i < count; ++i) {
    const auto label = static_cast<uint8_t>(i % 10);
    d.labels[static_cast<std::size_t>(i)] = label;
    const bool vertical = label >= 5;
    const int64_t phase = i % 4;
    for (int64_t ch = 0; ch < 3; ++ch) {
      for (int64_t y = 0; y < 32; ++y) {
        for (int64_t x = 0; x < 32; ++x) {
          const int64_t k = ((i * 3 + ch) * 32 + y) * 32 + x;
          const bool on = (((vertical ? x : y) + phase) / 4) % 2 == 0;
          const float v = (on ? colours[label % 5][ch] * 0.75f : 0.0f) + noise[k];
          d.pixels[static_cast<std::size_t>(k)] = static_cast<uint8_t>(std::min(v, 255.0f));
        }
      }
    }
  }
  return d;
}

// The shipped nested RGB model (BatchNorm2d, grouped and strided convolutions, global average
// pooling) trains on RGB data the test makes, and its checkpoint gives the same figures back.
TEST(ModelFilesRgb, NestedRgbModelTrainsOnGeneratedPictures) {
  const Dataset train = stripes(800, 1), test = stripes(200, 2);
  manual_seed(0);
  const BuiltModel m =
      build_model(shipped_model("rgb-nested"), default_generator(), "models/rgb-nested.json");
  ASSERT_EQ(m.input, train.image_shape());
  TrainOptions o;
  o.epochs = 3;
  o.batch_size = 32;
  o.lr = 3e-3;
  Trainer trainer(m.module, train, &test, o);
  const auto& history = trainer.fit();
  // Ten classes, chance 10 %: colour and orientation are plain to see, and the model reaches
  // 100 % on this machine; 90 % leaves room for other kernels' rounding.
  EXPECT_GT(history.back().test_accuracy, 0.9) << history.back().test_loss;
  // The figure the README quotes.
  std::printf("rgb-nested, 3 epochs: test accuracy %.4f on %lld pictures\n",
              history.back().test_accuracy, static_cast<long long>(test.count));
  const std::string path =
      (fs::path(::testing::TempDir()) / ("rgb_" + std::to_string(getpid()) + ".cnnt")).string();
  trainer.save_checkpoint(path);
  const LoadedModel loaded = load_checkpoint(path);
  fs::remove(path);
  EXPECT_EQ(loaded.input, (Shape{3, 32, 32}));
  const EvalResult again = evaluate(*loaded.model, test);
  EXPECT_DOUBLE_EQ(again.accuracy, history.back().test_accuracy);
  EXPECT_NEAR(again.loss, history.back().test_loss, 1e-9);
  // The running statistics travelled with the weights, named as PyTorch names them.
  const auto state = loaded.model->state_dict();
  EXPECT_TRUE(std::any_of(state.begin(), state.end(), [](const auto& e) {
    return e.first == "features.stage1.1.running_var";
  }));
}

// A model ending in Softmax (the Keras habit) trains with the loss on the Softmax's input, and
// gives probabilities afterwards.
TEST(ModelFilesRgb, AModelEndingInSoftmaxTrainsOnItsLogits) {
  const Dataset train = stripes(300, 3);
  nlohmann::json d = shipped_model("rgb-nested");
  d["layers"].push_back({{"type", "Softmax"}, {"dim", 1}});
  manual_seed(0);
  const BuiltModel with = build_model(d, default_generator());
  manual_seed(0);
  const BuiltModel without = build_model(shipped_model("rgb-nested"), default_generator());
  TrainOptions o;
  o.epochs = 1;
  o.batch_size = 50;
  o.lr = 3e-3;
  Trainer a(with.module, train, nullptr, o), b(without.module, train, nullptr, o);
  manual_seed(5);
  const double loss_with = a.fit().back().train_loss;
  manual_seed(5);
  const double loss_without = b.fit().back().train_loss;
  // The same computation: the cross-entropy of the same logits, step for step.
  EXPECT_DOUBLE_EQ(loss_with, loss_without);
  with.module->eval();
  NoGradGuard no_grad;
  const Tensor p = with.module->forward(train.image_tensor(0));
  float sum = 0;
  for (float v : p) {
    EXPECT_GE(v, 0.0f);
    sum += v;
  }
  EXPECT_NEAR(sum, 1.0f, 1e-5);
}

}  // namespace
}  // namespace cnn::testing
