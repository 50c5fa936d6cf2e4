// The `cnn` command end to end on a tiny dataset the test writes: the printed formats, the
// figures, and a one-line error with a non-zero exit for every kind of bad input, leaving
// existing files untouched.
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include "cnn/data/idx.h"
#include "cnn/io/checkpoint.h"
#include "cnn/tensor.h"
#include "run_cli.h"
#include "serve_process.h"
#include "testing.h"

namespace cnn::testing {

std::string encode_rgba_png(int64_t w, int64_t h,
                            const std::vector<uint8_t>& rgba);  // test_data.cpp

namespace {

namespace fs = std::filesystem;

Result run(const std::string& args, const std::string& prefix = "") {
  return run_cli(args, prefix);
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

class Cli : public ::testing::Test {
 protected:
  static fs::path root;
  static void SetUpTestSuite() {
    // One directory per process: CTest runs each test in its own process, two at a time.
    root = fs::path(::testing::TempDir()) / ("cnn_cli_" + std::to_string(getpid()));
    fs::remove_all(root);
    make_data(root / "data", 64, 32);
    const Result r = run("train --data-dir " + (root / "data").string() +
                         " --max-steps 3 --batch-size 16 --out " + (root / "model.cnnt").string() +
                         " --json " + (root / "train.json").string());
    ASSERT_EQ(r.code, 0) << r.out;
  }
  static void TearDownTestSuite() { fs::remove_all(root); }
  static void make_data(const fs::path& dir, int64_t train, int64_t test) {
    fs::create_directories(dir);
    for (auto [prefix, n] : {std::pair<std::string, int64_t>{"train", train}, {"t10k", test}}) {
      IdxImages img{n, 28, 28, std::vector<uint8_t>(static_cast<std::size_t>(n * 784), 0)};
      std::vector<uint8_t> labels(static_cast<std::size_t>(n));
      for (int64_t i = 0; i < n; ++i) {
        labels[i] = static_cast<uint8_t>(i % 10);
        // A bar whose position encodes the label.
        for (int64_t y = 4; y < 24; ++y) {
          for (int64_t x = 2 + 2 * labels[i]; x < 5 + 2 * labels[i]; ++x)
            img.pixels[i * 784 + y * 28 + x] = 255;
        }
      }
      write_idx_images((dir / (prefix + "-images-idx3-ubyte")).string(), img);
      write_idx_labels((dir / (prefix + "-labels-idx1-ubyte")).string(), labels);
    }
  }
  // A bad input: one line "cnn: error: ..." naming what, a non-zero exit.
  static void expect_one_line_error(const Result& r, const std::vector<std::string>& fragments) {
    EXPECT_NE(r.code, 0) << r.out;
    EXPECT_EQ(r.out.rfind("cnn: error: ", 0), 0u) << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
    for (const auto& f : fragments)
      EXPECT_NE(r.out.find(f), std::string::npos) << "'" << f << "' not in: " << r.out;
  }
  std::string model() const { return (root / "model.cnnt").string(); }
  std::string data() const { return (root / "data").string(); }
  // A copy of the tiny dataset to break.
  std::string broken_data(const std::string& name) const {
    const fs::path dir = root / ("broken_" + name);
    fs::remove_all(dir);
    fs::create_directories(dir);
    for (const auto& e : fs::directory_iterator(root / "data"))
      fs::copy(e.path(), dir / e.path().filename());
    return dir.string();
  }
};
fs::path Cli::root;

TEST_F(Cli, TrainWritesCheckpointAndJson) {
  const auto j = nlohmann::json::parse(slurp((root / "train.json").string()));
  EXPECT_EQ(j["dataset"], "mnist");
  EXPECT_EQ(j["epochs"].size(), 1u);
  EXPECT_TRUE(j.contains("final_test_accuracy"));
  EXPECT_GT(j["images_per_second"].get<double>(), 0);
  const LoadedModel m = load_checkpoint(model());
  EXPECT_EQ(m.meta["architecture"]["name"], "tutorial");
  EXPECT_EQ(m.meta["global_step"], 3);
  EXPECT_EQ(m.meta["history"].size(), 1u);
}

// --augment reaches the trainer (recorded in the checkpoint with its generator's state); a
// misspelt part is a command-line error naming the option.
TEST_F(Cli, TrainAugmentsWhenAsked) {
  const std::string out = (root / "augmented.cnnt").string();
  const Result r = run("train --data-dir " + data() +
                       " --augment shift=2,rotate=5 --max-steps 2 "
                       "--quiet --out " +
                       out);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("augment shift=2,rotate=5"), std::string::npos) << r.out;
  const LoadedModel m = load_checkpoint(out);
  EXPECT_EQ(m.meta["train_options"]["augment"]["shift"], 2);
  EXPECT_EQ(m.meta["train_options"]["augment"]["rotate"], 5.0);
  EXPECT_TRUE(m.meta["rng"].contains("augment"));
  const Result bad = run("train --data-dir " + data() + " --augment shfit=2");
  EXPECT_EQ(bad.code, 2) << bad.out;
  expect_one_line_error(bad,
                        {"--augment", "unknown augmentation 'shfit'", "did you mean 'shift'?"});
}

TEST_F(Cli, HelpForEveryCommand) {
  for (const char* cmd : {"", "summary", "train", "eval", "predict", "visualize"}) {
    const Result r = run(std::string(cmd) + " --help");
    EXPECT_EQ(r.code, 0) << cmd;
    EXPECT_NE(r.out.find("Usage:"), std::string::npos) << cmd;
  }
  EXPECT_NE(run("train --help").out.find("--epochs"), std::string::npos);
}

// --device names one of the two backends; asking for CUDA where there is none is a one-line
// error that says why, before any work (the checkpoint stays as it was).
TEST_F(Cli, DeviceOptionRefusesWhatItCannotRun) {
  for (const char* cmd : {"train", "eval", "predict", "bench"}) {
    EXPECT_NE(run(std::string(cmd) + " --help").out.find("--device"), std::string::npos) << cmd;
  }
  expect_one_line_error(run("train --device gpu --data-dir " + data()),
                        {"--device", "must be one of cpu, cuda", "'gpu'"});
  if (device_available(Device::CUDA)) GTEST_SKIP() << "this machine has a CUDA device";
  const std::string before = slurp(model());
  // Either "no CUDA device: ..." (built with CUDA, no GPU here) or "this build has no CUDA
  // backend" (built without nvcc, as the sanitizer build is).
  const std::vector<std::string> why = {"--device cuda: ", "no CUDA"};
  expect_one_line_error(
      run("train --device cuda --max-steps 1 --data-dir " + data() + " --out " + model()), why);
  expect_one_line_error(run("eval --device cuda --weights " + model() + " --data-dir " + data()),
                        why);
  EXPECT_EQ(slurp(model()), before);
}

TEST_F(Cli, SummaryPrintsTheTable) {
  const Result r = run("summary");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("Total params: 55,338"), std::string::npos) << r.out;
}

TEST_F(Cli, PredictPrintsTheTutorialsFormat) {
  const Result r = run("predict --weights " + model() + " --data-dir " + data() + " --index 3");
  ASSERT_EQ(r.code, 0) << r.out;
  const std::string num = R"(-?\d+\.\d{3})";
  const std::regex want("Logits: (" + num + ", ){9}" + num + "\n" +
                        R"( Probs:  (\d\.\d{3}, ){9}\d\.\d{3})" + "\n  Pred:  \\d\n  True:  3\n");
  EXPECT_TRUE(std::regex_match(r.out, want)) << r.out;
}

TEST_F(Cli, PredictAnImageFileHasNoTrueLine) {
  const std::string png = (root / "digit.png").string();
  RgbImage img(40, 40);
  for (int64_t y = 5; y < 35; ++y) img.set(20, y, {0, 0, 0});
  write_png(png, img);
  const Result r = run("predict --weights " + model() + " --image " + png);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("  Pred:  "), std::string::npos);
  EXPECT_EQ(r.out.find("True"), std::string::npos);
}

// A figure `cnn visualize` wrote: at least this big, and not blank.
struct WantPicture {
  std::string file;
  int64_t min_w, min_h;
  std::size_t min_colours;  // below the title; the test digit is black and white
};

void expect_pictures(const std::string& out, const Result& r,
                     const std::vector<WantPicture>& want) {
  // Listed as written, in the order the header says: input, every conv's maps, every conv's
  // filters.
  std::string listed;
  for (const WantPicture& w : want) listed += "wrote " + out + "/" + w.file + "\n";
  EXPECT_EQ(r.out, listed);
  for (const WantPicture& w : want) {
    SCOPED_TRACE(w.file);
    const RgbImage img = read_rgb_image(out + "/" + w.file);
    EXPECT_GE(img.width, w.min_w);
    EXPECT_GE(img.height, w.min_h);
    // Not blank: the pictures below the title hold many colours (black and white and the frame
    // for the digit).
    std::set<std::array<uint8_t, 3>> colours;
    for (int64_t y = 40; y < img.height; ++y) {
      for (int64_t x = 0; x < img.width; ++x) colours.insert(img.get(x, y));
    }
    EXPECT_GE(colours.size(), w.min_colours);
  }
}

TEST_F(Cli, VisualizeWritesFiveReadablePictures) {
  const std::string out = (root / "figures").string();
  const Result r =
      run("visualize --weights " + model() + " --data-dir " + data() + " --index 0 --out " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  // The notebook's: 16 maps of 14x14 in a 4x4 grid 10 times, 32 of 7x7 in a 4x8 grid 16 times,
  // 3x3 filters 32 times.
  expect_pictures(out, r,
                  {{"input.png", 280, 280, 3},
                   {"conv1_maps.png", 4 * 140, 4 * 140, 16},
                   {"conv2_maps.png", 8 * 112, 4 * 112, 16},
                   {"conv1_filters.png", 4 * 96, 4 * 96, 16},
                   {"conv2_filters.png", 8 * 96, 4 * 96, 16}});
}

// Any model's figures: one pair per Conv2d layer, whatever follows each, laid out by the same
// rules (a grid as square as the count allows, maps about 140 px, at most 16 times).
TEST_F(Cli, VisualizeAModelThatIsNotTheTutorial) {
  const std::string file = (root / "three_convs.json").string();
  std::ofstream(file) << R"({"name": "three-convs", "input": [1, 28, 28], "layers": [
      {"type": "Conv2d", "out_channels": 4, "kernel_size": 3, "padding": 1},
      {"type": "ReLU"},
      {"type": "Conv2d", "out_channels": 6, "kernel_size": 3},
      {"type": "ReLU"},
      {"type": "MaxPool2d", "kernel_size": 2},
      {"type": "Conv2d", "out_channels": 8, "kernel_size": 3, "stride": 2},
      {"type": "Flatten"},
      {"type": "Linear", "out_features": 10}]})";
  const std::string weights = (root / "three_convs.cnnt").string();
  const Result trained =
      run("train --model " + file + " --epochs 1 --max-steps 2 --quiet --data-dir " + data() +
          " --out " + weights + " --overwrite");
  ASSERT_EQ(trained.code, 0) << trained.out;
  const std::string out = (root / "three_convs_figures").string();
  const Result r =
      run("visualize --weights " + weights + " --data-dir " + data() + " --index 3 --out " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  // conv1: 4 maps of 28x28 after its ReLU (2x2 grid, 5 times); conv2: 6 of 13x13 after ReLU and
  // pooling (2x3, 10 times); conv3: 8 of 6x6, nothing after it that keeps 4-D (2x4, 16 times).
  expect_pictures(out, r,
                  {{"input.png", 280, 280, 3},
                   {"conv1_maps.png", 2 * 140, 2 * 140, 16},
                   {"conv2_maps.png", 3 * 130, 2 * 130, 16},
                   {"conv3_maps.png", 4 * 96, 2 * 96, 16},
                   {"conv1_filters.png", 2 * 96, 2 * 96, 16},
                   {"conv2_filters.png", 3 * 96, 2 * 96, 16},
                   {"conv3_filters.png", 4 * 96, 2 * 96, 16}});
  // The picture of conv3's maps is 2 rows of 6x6 maps 16 times and no more (an 8 px margin, a
  // 32 px title, 4 px between the rows).
  EXPECT_EQ(read_rgb_image(out + "/conv3_maps.png").height, 2 * 8 + 32 + 2 * 6 * 16 + 4);
  // predict reads the same checkpoint.
  const Result p = run("predict --weights " + weights + " --data-dir " + data() + " --index 3");
  ASSERT_EQ(p.code, 0) << p.out;
  EXPECT_NE(p.out.find("  True:  3\n"), std::string::npos) << p.out;
}

// A model whose input is not the data's is refused by name before anything is drawn or computed.
TEST_F(Cli, AModelOfAnotherInputIsRefused) {
  Generator gen(0);
  const BuiltModel built = build_model(nlohmann::json::parse(R"({"input": [1, 32, 32], "layers": [
      {"type": "Conv2d", "out_channels": 2, "kernel_size": 3}, {"type": "Flatten"},
      {"type": "Linear", "out_features": 10}]})"),
                                       gen);
  Archive a;
  a.meta = {{"format", kCheckpointFormat},
            {"version", kCheckpointVersion},
            {"architecture", describe_model(*built.module, built.input)},
            {"dataset", {{"name", "mnist"}}}};
  for (const auto& [name, t] : built.module->state_dict()) a.add("model/" + name, t);
  const std::string weights = (root / "input32.cnnt").string();
  write_archive(weights, a);
  const std::string out = (root / "input32_figures").string();
  expect_one_line_error(
      run("visualize --weights " + weights + " --data-dir " + data() + " --index 0 --out " + out),
      {weights, "the model takes inputs of shape (1, 32, 32); mnist's images are (1, 28, 28)"});
  EXPECT_FALSE(fs::exists(out + "/input.png"));
  expect_one_line_error(
      run("predict --weights " + weights + " --data-dir " + data() + " --index 0"),
      {weights, "the model takes inputs of shape (1, 32, 32)", "(1, 28, 28)"});
  const std::string png = (root / "digit32.png").string();
  RgbImage img(40, 40);
  for (int64_t y = 5; y < 35; ++y) img.set(20, y, {0, 0, 0});
  write_png(png, img);
  expect_one_line_error(
      run("predict --weights " + weights + " --image " + png),
      {weights, "(1, 32, 32)", png + " is prepared as an MNIST digit, (1, 28, 28)"});
}

TEST_F(Cli, EvalPrintsAccuracyAndConfusion) {
  const std::string json = (root / "eval.json").string();
  const Result r = run("eval --weights " + model() + " --data-dir " + data() + " --json " + json);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("accuracy"), std::string::npos);
  EXPECT_NE(r.out.find("confusion matrix"), std::string::npos);
  const auto j = nlohmann::json::parse(slurp(json));
  EXPECT_EQ(j["count"], 32);
  int64_t total = 0;
  for (const auto& row : j["confusion"]) {
    for (const auto& v : row) total += v.get<int64_t>();
  }
  EXPECT_EQ(total, 32);
}

TEST_F(Cli, MissingDataDirectoryLeavesCheckpointUntouched) {
  const std::string before = slurp(model());
  const Result r =
      run("train --data-dir " + (root / "nowhere").string() + " --overwrite --out " + model());
  expect_one_line_error(r, {(root / "nowhere").string(), "data directory not found"});
  EXPECT_EQ(slurp(model()), before);
}

TEST_F(Cli, TruncatedIdx) {
  const std::string dir = broken_data("truncated");
  fs::resize_file(dir + "/train-images-idx3-ubyte", 5000);
  expect_one_line_error(run("train --data-dir " + dir + " --out " + dir + "/m.cnnt"),
                        {"train-images-idx3-ubyte", "truncated"});
  EXPECT_FALSE(fs::exists(dir + "/m.cnnt"));
}

TEST_F(Cli, CorruptedGzipIdx) {
  const std::string dir = broken_data("gzip");
  const std::string raw = slurp(dir + "/t10k-labels-idx1-ubyte");
  fs::remove(dir + "/t10k-labels-idx1-ubyte");
  std::string gz = slurp(data() + "/t10k-labels-idx1-ubyte");
  {
    gzFile f = gzopen((dir + "/t10k-labels-idx1-ubyte.gz").c_str(), "wb");
    gzwrite(f, raw.data(), static_cast<unsigned>(raw.size()));
    gzclose(f);
  }
  std::string bytes = slurp(dir + "/t10k-labels-idx1-ubyte.gz");
  bytes.resize(bytes.size() - 12);  // cut the stream and its trailer
  std::ofstream(dir + "/t10k-labels-idx1-ubyte.gz", std::ios::binary | std::ios::trunc) << bytes;
  expect_one_line_error(run("eval --weights " + model() + " --data-dir " + dir),
                        {"t10k-labels-idx1-ubyte.gz"});
}

TEST_F(Cli, WrongMagic) {
  const std::string dir = broken_data("magic");
  fs::copy_file(dir + "/t10k-labels-idx1-ubyte", dir + "/t10k-images-idx3-ubyte",
                fs::copy_options::overwrite_existing);
  expect_one_line_error(run("eval --weights " + model() + " --data-dir " + dir),
                        {"t10k-images-idx3-ubyte", "wrong magic number"});
}

TEST_F(Cli, LabelImageCountMismatch) {
  const std::string dir = broken_data("count");
  write_idx_labels(dir + "/t10k-labels-idx1-ubyte", std::vector<uint8_t>(31, 0));
  expect_one_line_error(run("eval --weights " + model() + " --data-dir " + dir),
                        {"t10k-labels-idx1-ubyte", "31 labels", "32 images"});
}

TEST_F(Cli, LabelOutOfRange) {
  const std::string dir = broken_data("label");
  std::vector<uint8_t> labels(32, 0);
  labels[5] = 200;
  write_idx_labels(dir + "/t10k-labels-idx1-ubyte", labels);
  expect_one_line_error(run("eval --weights " + model() + " --data-dir " + dir),
                        {"t10k-labels-idx1-ubyte", "label 200 at index 5"});
}

TEST_F(Cli, TruncatedAndCorruptedCheckpoints) {
  const std::string bytes = slurp(model());
  const std::string truncated = (root / "truncated.cnnt").string();
  std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() / 3);
  const std::string json = (root / "keep.json").string();
  std::ofstream(json) << "{\"keep\": true}\n";
  expect_one_line_error(
      run("eval --weights " + truncated + " --data-dir " + data() + " --json " + json),
      {truncated});
  EXPECT_EQ(slurp(json), "{\"keep\": true}\n");

  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x10;
  const std::string corrupted = (root / "corrupted.cnnt").string();
  std::ofstream(corrupted, std::ios::binary) << flipped;
  expect_one_line_error(
      run("predict --weights " + corrupted + " --data-dir " + data() + " --index 0"),
      {corrupted, "checksum mismatch"});
}

TEST_F(Cli, CheckpointOfAnotherArchitecture) {
  // A checkpoint describes its model: the name is only a label (any model loads, whatever it is
  // called), and a layer this build does not know is refused by its place and type.
  Archive renamed = read_archive(model());
  renamed.meta["architecture"]["name"] = "resnet18";
  const std::string named = (root / "named.cnnt").string();
  write_archive(named, renamed);
  const Result ok = run("predict --weights " + named + " --data-dir " + data() + " --index 0");
  EXPECT_EQ(ok.code, 0) << ok.out;
  EXPECT_NE(ok.out.find("  True:  0\n"), std::string::npos) << ok.out;
  EXPECT_EQ(run("visualize --weights " + named + " --data-dir " + data() + " --index 0 --out " +
                (root / "named_figures").string())
                .code,
            0);

  Archive a = read_archive(model());
  a.meta["architecture"]["layers"][0]["layers"][0]["type"] = "ResNetBlock";
  const std::string other = (root / "other.cnnt").string();
  write_archive(other, a);
  expect_one_line_error(run("predict --weights " + other + " --data-dir " + data() + " --index 0"),
                        {other, "layer conv1.0", "unknown layer type 'ResNetBlock'"});
  expect_one_line_error(run("visualize --weights " + other + " --data-dir " + data() +
                            " --index 0 --out " + (root / "other_figures").string()),
                        {other, "unknown layer type 'ResNetBlock'"});

  // The right name, but weights of another shape.
  Archive b = read_archive(model());
  for (auto& [name, t] : b.tensors) {
    if (name == "model/conv1.0.weight") t = Tensor({8, 1, 5, 5});
  }
  const std::string reshaped = (root / "reshaped.cnnt").string();
  write_archive(reshaped, b);
  expect_one_line_error(run("eval --weights " + reshaped + " --data-dir " + data()),
                        {reshaped, "size mismatch for conv1.0.weight"});

  const std::string not_ckpt = (root / "not_ckpt.cnnt").string();
  write_archive(not_ckpt, Archive{});
  expect_one_line_error(run("eval --weights " + not_ckpt + " --data-dir " + data()),
                        {not_ckpt, "not a cnn checkpoint"});
}

TEST_F(Cli, UnreadableImage) {
  const std::string bad = (root / "bad.png").string();
  std::ofstream(bad) << "this is not a picture";
  expect_one_line_error(run("predict --weights " + model() + " --image " + bad),
                        {bad, "cannot read image"});
  expect_one_line_error(
      run("predict --weights " + model() + " --image " + (root / "missing.png").string()),
      {"missing.png", "no such file"});
  // A folder is many pictures; one with none is named as such.
  fs::create_directories(root / "no_pictures");
  expect_one_line_error(
      run("predict --weights " + model() + " --image " + (root / "no_pictures").string() + "/"),
      {"--image", "no pictures"});
}

TEST_F(Cli, BlankImageNamesTheFile) {
  const std::string blank = (root / "blank.png").string();
  write_png(blank, RgbImage(20, 20));
  expect_one_line_error(run("predict --weights " + model() + " --image " + blank),
                        {blank + ": ", "blank"});
}

TEST_F(Cli, PredictsADigitOnATransparentBackground) {
  // Black strokes at alpha 255 on black at alpha 0, as drawing apps save them: read without the
  // alpha channel this is a blank picture.
  const int64_t w = 40, h = 40;
  std::vector<uint8_t> rgba(static_cast<std::size_t>(w * h * 4), 0);
  for (int64_t y = 5; y < 35; ++y) {
    for (int64_t x = 18; x < 22; ++x) rgba[(y * w + x) * 4 + 3] = 255;
  }
  const std::string png = (root / "transparent.png").string();
  std::ofstream(png, std::ios::binary) << encode_rgba_png(w, h, rgba);
  const Result r = run("predict --weights " + model() + " --image " + png);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("  Pred:  "), std::string::npos) << r.out;
}

TEST_F(Cli, ImpossibleOptions) {
  EXPECT_NE(run("train --epochs 0").code, 0);
  EXPECT_NE(run("train --optimizer rmsprop").code, 0);
  EXPECT_NE(run("predict --weights " + model()).code, 0);
  EXPECT_NE(run("frobnicate").code, 0);
}

// Every impossible value is refused with a sentence before any work: the data directory given is
// missing, so a message about it would mean the value got through.
TEST_F(Cli, OptionValuesAreCheckedFirst) {
  const std::string nowhere = " --data-dir " + (root / "nowhere").string();
  const std::string weights = " --weights " + model();
  struct Case {
    std::string args;
    std::vector<std::string> fragments;
  };
  for (const Case& c : std::vector<Case>{
           {"train --epochs 0" + nowhere, {"--epochs must be a positive integer, got 0"}},
           {"train --max-steps -5" + nowhere, {"--max-steps must be a positive integer, got -5"}},
           {"train --max-steps 0" + nowhere, {"--max-steps must be a positive integer, got 0"}},
           {"train --batch-size 2.5" + nowhere,
            {"--batch-size must be a positive integer, got 2.5"}},
           {"train --lr abc" + nowhere, {"--lr must be a positive number, got 'abc'"}},
           {"train --lr -1e-3" + nowhere, {"--lr must be a positive number"}},
           {"train --momentum 1.5" + nowhere, {"--momentum must be a number from 0 to 1, got 1.5"}},
           {"train --weight-decay -1" + nowhere, {"--weight-decay must be a number >= 0"}},
           {"train --seed -1" + nowhere, {"--seed must be a non-negative integer, got -1"}},
           {"train --threads -2" + nowhere, {"--threads must be an integer from 0 to 4096"}},
           {"train --log-every 0" + nowhere, {"--log-every must be a positive integer"}},
           {"train --comm-timeout 0" + nowhere, {"--comm-timeout must be a positive number"}},
           {"train --comm-timeout soon" + nowhere,
            {"--comm-timeout must be a positive number, got 'soon'"}},
           {"train --sync-batchnorm --resume " + model() + nowhere,
            {"--sync-batchnorm: a resumed run keeps the options of its checkpoint"}},
           {"train --optimizer adamm" + nowhere,
            {"--optimizer must be one of adam, adamw, sgd", "did you mean 'adam'?"}},
           {"train --dataset mnsit" + nowhere,
            {"--dataset must be mnist, fashion-mnist or an image folder", "did you mean 'mnist'?"}},
           {"train" + nowhere + " --epochs", {"--epochs needs a value"}},
           {"train --epochs 2 --epochs 3" + nowhere, {"--epochs takes one value"}},
           {"eval --split dev" + weights + nowhere,
            {"--split must be one of train, test, got 'dev'"}},
           {"predict --index -1" + weights + nowhere,
            {"--index must be a non-negative integer, got -1"}},
           {"predict --index 1 --image x.png" + weights,
            {"--index and --image cannot be given together"}},
           {"visualize --index 1.5" + weights + nowhere,
            {"--index must be a non-negative integer"}},
           {"bench --seconds 0", {"--seconds must be a positive number, got 0"}},
           {"bench --kernels fats", {"did you mean 'fast'?"}},
           {"serve --port 70000", {"--port must be an integer from 0 to 65535, got 70000"}},
           {"summary --num-classes 0",
            {"--num-classes must be an integer from 1 to 100000, got 0"}},
           {"eval" + nowhere, {"--weights is required"}},
       }) {
    SCOPED_TRACE(c.args);
    expect_one_line_error(run(c.args), c.fragments);
  }
}

TEST_F(Cli, UnknownCommandsAndOptionsSuggestTheNearest) {
  expect_one_line_error(run("trian"), {"unknown command 'trian'; did you mean 'train'?"});
  expect_one_line_error(run("evl --weights x"), {"unknown command 'evl'; did you mean 'eval'?"});
  expect_one_line_error(run("frobnicate"),
                        {"unknown command 'frobnicate'", "summary, train, eval"});
  expect_one_line_error(run(""), {"a command is required"});
  expect_one_line_error(run("train --epoch 3"),
                        {"unknown option '--epoch'", "did you mean '--epochs'?"});
  expect_one_line_error(run("train --max-step=3"),
                        {"unknown option '--max-step'", "did you mean '--max-steps'?"});
  expect_one_line_error(run("predict --wieghts m.cnnt"),
                        {"unknown option '--wieghts'", "did you mean '--weights'?"});
  expect_one_line_error(run("train --frobnicate"),
                        {"unknown option '--frobnicate'", "cnn train --help"});
  expect_one_line_error(run("train 3"), {"unexpected argument", "3"});
  expect_one_line_error(run("--verison"),
                        {"unknown option '--verison'", "did you mean '--version'?"});
}

TEST_F(Cli, MaxStepsLogCountsWhatRuns) {
  // 64 images in batches of 16: 4 steps an epoch.
  const std::string base = "train --data-dir " + data() + " --batch-size 16 --overwrite --out " +
                           (root / "steps.cnnt").string();
  Result r = run(base + " --epochs 5 --max-steps 3");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("3 steps (of epoch 1)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("epoch 1/1  step 3/3"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("epoch 1/1  train loss"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("5 epochs"), std::string::npos) << r.out;
  r = run(base + " --epochs 5 --max-steps 6");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("6 steps (1 epoch and 2 steps)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("epoch 1/2  step 4/4"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("epoch 2/2  step 2/2"), std::string::npos) << r.out;
  r = run(base + " --epochs 1");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("batch 16, 1 epoch\n"), std::string::npos) << r.out;
  r = run(base + " --epochs 5 --max-steps 8");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("batch 16, 2 epochs\n"), std::string::npos) << r.out;
}

// Without --out a run takes the first free numbered name: another run's checkpoint stays.
TEST_F(Cli, DefaultCheckpointIsNeverReplaced) {
  const fs::path cwd = root / "workdir";
  fs::create_directories(cwd);
  const std::string args = "train --data-dir " + data() + " --batch-size 16 --max-steps 2";
  const std::string in_cwd = "cd " + cwd.string() + " && ";
  Result r = run(args, in_cwd);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.rfind("checkpoint: checkpoints/mnist-tutorial.cnnt\n", 0), 0u) << r.out;
  const std::string first = slurp((cwd / "checkpoints/mnist-tutorial.cnnt").string());
  ASSERT_FALSE(first.empty());
  r = run(args + " --seed 1", in_cwd);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.rfind("checkpoint: checkpoints/mnist-tutorial-2.cnnt\n", 0), 0u) << r.out;
  EXPECT_EQ(slurp((cwd / "checkpoints/mnist-tutorial.cnnt").string()), first);
  EXPECT_TRUE(fs::exists(cwd / "checkpoints/mnist-tutorial-2.cnnt"));
  r = run(args, in_cwd);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out.rfind("checkpoint: checkpoints/mnist-tutorial-3.cnnt\n", 0), 0u) << r.out;
}

TEST_F(Cli, ExistingOutputNeedsOverwrite) {
  const std::string keep = (root / "keep.cnnt").string(),
                    json = (root / "keep-train.json").string();
  fs::copy_file(model(), keep, fs::copy_options::overwrite_existing);
  std::ofstream(json) << "{}\n";
  const std::string before = slurp(keep);
  // Refused before the data are read: the data directory does not exist.
  expect_one_line_error(run("train --data-dir " + (root / "nowhere").string() + " --out " + keep),
                        {"--out " + keep, "exists", "--overwrite"});
  EXPECT_EQ(slurp(keep), before);
  const std::string fresh = (root / "fresh.cnnt").string();
  expect_one_line_error(
      run("train --data-dir " + data() + " --max-steps 1 --out " + fresh + " --json " + json),
      {"--json " + json, "exists", "--overwrite"});
  EXPECT_FALSE(fs::exists(fresh));
  EXPECT_EQ(slurp(json), "{}\n");
  const Result r =
      run("train --data-dir " + data() + " --batch-size 16 --max-steps 1 --overwrite --out " +
          keep + " --json " + json);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(load_checkpoint(keep).meta["global_step"], 1);
  EXPECT_EQ(nlohmann::json::parse(slurp(json))["checkpoint"], keep);
}

// An output that cannot be written is found before the data are read (the data directory given
// does not exist) and named.
TEST_F(Cli, UnwritableOutputsAreFoundFirst) {
  const std::string nowhere = " --data-dir " + (root / "nowhere").string();
  const fs::path dir = root / "a_directory";
  fs::create_directories(dir);
  const fs::path file = root / "a_file";
  std::ofstream(file) << "x";
  expect_one_line_error(run("train --out " + dir.string() + nowhere),
                        {"--out " + dir.string(), "is a directory"});
  expect_one_line_error(run("train --out " + dir.string() + "/" + nowhere), {"is a directory"});
  expect_one_line_error(
      run("train --out " + (file / "m.cnnt").string() + nowhere),
      {"--out " + (file / "m.cnnt").string(), file.string() + " is not a directory"});
  expect_one_line_error(
      run("train --out " + (root / "new.cnnt").string() + " --json " + dir.string() + nowhere),
      {"--json " + dir.string(), "is a directory"});
  expect_one_line_error(run("eval --weights " + model() + " --json " + dir.string() + nowhere),
                        {"--json " + dir.string(), "is a directory"});
  expect_one_line_error(run("bench --seconds 0.01 --json " + (file / "b.json").string()),
                        {"is not a directory"});
  expect_one_line_error(
      run("visualize --weights " + model() + " --index 0 --out " + file.string() + nowhere),
      {"--out " + file.string(), "is not a directory"});
  EXPECT_FALSE(fs::exists(root / "new.cnnt"));
  if (geteuid() != 0) {  // root writes anywhere whatever the permissions
    const fs::path ro = root / "read_only";
    fs::create_directories(ro);
    fs::permissions(ro, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read |
                            fs::perms::group_exec | fs::perms::others_read |
                            fs::perms::others_exec);
    expect_one_line_error(run("train --out " + (ro / "m.cnnt").string() + nowhere),
                          {"--out " + (ro / "m.cnnt").string(), "cannot write in " + ro.string(),
                           "permission denied"});
    expect_one_line_error(
        run("train --out " + (ro / "sub/m.cnnt").string() + nowhere),
        {"cannot create directory " + (ro / "sub").string(), "permission denied"});
    expect_one_line_error(
        run("visualize --weights " + model() + " --index 0 --out " + ro.string() + nowhere),
        {"--out " + ro.string(), "permission denied"});
    fs::permissions(ro, fs::perms::owner_all);
  }
}

TEST_F(Cli, IndexBeyondTheSplit) {
  expect_one_line_error(
      run("predict --weights " + model() + " --data-dir " + data() + " --index 32"),
      {"--index 32 is out of range", "the test split of mnist has 32 images (0 to 31)"});
}

// cpp-httplib's default SO_REUSEPORT let a second `cnn serve` bind the same port and silently
// take half the connections.
TEST_F(Cli, ServeRefusesAPortInUse) {
  ServeProcess first({"--data-dir", data()});
  const std::string port = std::to_string(first.port());
  // If it wrongly starts, it serves until killed: the timeout keeps the test from hanging.
  const Result r = run("serve --port " + port + " --data-dir " + data(), "timeout -s KILL 10 ");
  expect_one_line_error(r, {"port " + port + " is in use", "127.0.0.1"});
}

}  // namespace
}  // namespace cnn::testing
