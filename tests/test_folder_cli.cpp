// Image folders through the command line (issue 12's first check): digits the test draws and
// writes as PNG files, a share of them coloured, one corrupt file; trained, validated, evaluated
// and predicted with the folders' class names; and an RGB model from models/ on an RGB folder.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "cnn/data/idx.h"
#include "cnn/io/checkpoint.h"
#include "cnn/random.h"
#include "cnn/viz/image.h"
#include "run_cli.h"
#include "testing.h"

namespace cnn::testing {
namespace {

namespace fs = std::filesystem;

const std::vector<std::string> kClasses = {"bar", "cross", "frame", "slash"};

// A 28x28 picture of class c, white strokes on black as MNIST's, jittered by a pixel or two;
// coloured strokes when colour is set.
RgbImage picture(int c, Generator& gen, bool colour) {
  RgbImage img(28, 28);
  for (int64_t y = 0; y < 28; ++y)
    for (int64_t x = 0; x < 28; ++x) img.set(x, y, {0, 0, 0});
  const std::array<uint8_t, 3> ink =
      colour ? std::array<uint8_t, 3>{255, static_cast<uint8_t>(100 + gen.below(100)), 40}
             : std::array<uint8_t, 3>{255, 255, 255};
  const auto dx = static_cast<int64_t>(gen.below(3)) - 1,
             dy = static_cast<int64_t>(gen.below(3)) - 1;
  auto dot = [&](int64_t x, int64_t y) {
    x += dx;
    y += dy;
    if (x >= 0 && x < 28 && y >= 0 && y < 28) img.set(x, y, ink);
  };
  for (int64_t i = 6; i < 22; ++i) {
    for (int64_t w = 0; w < 2; ++w) {
      if (c == 0) dot(13 + w, i);                                                // a vertical bar
      if (c == 1) dot(13 + w, i), dot(i, 13 + w);                                // a cross
      if (c == 2) dot(6 + w, i), dot(20 + w, i), dot(i, 6 + w), dot(i, 20 + w);  // a frame
      if (c == 3) dot(i + w, 27 - i);                                            // a slash
    }
  }
  return img;
}

struct FolderCli : ::testing::Test {
  fs::path dir;
  void SetUp() override {
    dir = fresh_test_dir("cnn_folder_cli");
    Generator gen(1);
    for (const auto& [split, n] : {std::pair<std::string, int>{"train", 60}, {"test", 15}}) {
      for (int c = 0; c < 4; ++c) {
        const fs::path d = dir / "shapes" / split / kClasses[c];
        fs::create_directories(d);
        for (int i = 0; i < n; ++i) {
          write_png((d / ("img" + std::to_string(i) + ".png")).string(),
                    picture(c, gen, i % 3 == 0));  // every third one coloured
        }
      }
    }
    // The corrupt file: a PNG cut short.
    const std::string good = (dir / "shapes/train/bar/img1.png").string();
    std::string bytes;
    {
      std::ifstream f(good, std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(f), {});
    }
    std::ofstream(dir / "shapes/train/cross/broken.png", std::ios::binary)
        << bytes.substr(0, bytes.size() / 2);
  }
  void TearDown() override { fs::remove_all(dir); }
  std::string path(const std::string& p) const { return (dir / p).string(); }
  std::string common() const {
    return " --threads 1 --quiet --cache-dir " + path("cache") + " --seed 2";
  }
};

TEST_F(FolderCli, TrainsValidatesEvaluatesAndPredictsWithClassNames) {
  const std::string shapes = path("shapes"), out = path("shapes.cnnt");
  // The corrupt file stops the run by name, unless told to skip it.
  const Result stop = run_cli("train --dataset " + shapes + " --epochs 1" + common());
  EXPECT_NE(stop.code, 0);
  expect_contains(stop.out, {"broken.png"});
  const Result r = run_cli("train --dataset " + shapes + " --bad-images skip --epochs 6 " +
                           "--val-split 0.2 --lr 3e-3 --out " + out + common());
  ASSERT_EQ(r.code, 0) << r.out;
  expect_contains(r.out, {"1 bad images skipped (first: cross/broken.png)",
                          "192 train / 48 validation images", "test accuracy"});
  const LoadedModel m = load_checkpoint(out);
  EXPECT_EQ(m.meta["dataset"]["class_names"], kClasses);
  // The test split was read with the training split's classes, and the shapes are learnt.
  const Result e = run_cli("eval --weights " + out + " --cache-dir " + path("cache"));
  ASSERT_EQ(e.code, 0) << e.out;
  expect_contains(e.out, {"test: 60 images", "frame", "slash"});
  const double accuracy = std::stod(e.out.substr(e.out.find("accuracy ") + 9));
  EXPECT_GT(accuracy, 0.8) << e.out;  // chance: 0.25
  const Result p = run_cli("predict --weights " + out + " --index 20");
  ASSERT_EQ(p.code, 0) << p.out;
  expect_contains(p.out, {"Pred:", "True:  1 (cross)"});
  // Many pictures at once, batched: a folder and a file, top-2 each, as JSON.
  const std::string json = path("predictions.json");
  const Result many =
      run_cli("predict --weights " + out + " --image " + path("shapes/test/frame") + " --image " +
              path("shapes/test/slash/img0.png") + " --top-k 2 --json " + json);
  ASSERT_EQ(many.code, 0) << many.out;
  expect_contains(many.out, {"16 pictures classified"});
  const auto j = nlohmann::json::parse(std::ifstream(json));
  ASSERT_EQ(j["count"], 16);
  int right = 0;
  for (const auto& p : j["predictions"]) {
    ASSERT_EQ(p["top"].size(), 2u);
    EXPECT_GE(p["top"][0]["probability"], p["top"][1]["probability"]);
    const std::string want =
        p["file"].get<std::string>().find("slash") != std::string::npos ? "slash" : "frame";
    right += p["top"][0]["name"] == want;
  }
  EXPECT_GE(right, 12) << j.dump();
  // Text: one line a picture, its classes by name.
  const Result text = run_cli("predict --weights " + out + " --image " + path("shapes/test/bar"));
  ASSERT_EQ(text.code, 0) << text.out;
  EXPECT_EQ(std::count(text.out.begin(), text.out.end(), '\n'), 15) << text.out;
  expect_contains(text.out, {"img0.png  bar "});
  // A bad picture among them is named.
  const Result bad = run_cli("predict --weights " + out + " --image " + path("shapes/train/cross"));
  EXPECT_EQ(bad.code, 1);
  expect_contains(bad.out, {"broken.png"});
  // The curves were drawn beside the checkpoint.
  EXPECT_GT(fs::file_size(path("shapes-curves.png")), 1000u);
}

TEST_F(FolderCli, AnRgbModelTrainsOnAnRgbFolder) {
  // Ten classes (rgb-nested's outputs) of colour pictures: class c is a bar at column 2c + 4 in
  // a colour of its own.
  Generator gen(3);
  for (const auto& [split, n] : {std::pair<std::string, int>{"train", 6}, {"test", 2}}) {
    for (int c = 0; c < 10; ++c) {
      const fs::path d = dir / "rgb" / split / ("c" + std::to_string(c));
      fs::create_directories(d);
      for (int i = 0; i < n; ++i) {
        RgbImage img(28, 28, {0, 0, 0});
        for (int64_t y = 4; y < 24; ++y) {
          img.set(2 * c + 4, y,
                  {static_cast<uint8_t>(25 * c), 200, static_cast<uint8_t>(gen.below(256))});
        }
        write_png((d / ("p" + std::to_string(i) + ".png")).string(), img);
      }
    }
  }
  const std::string out = path("rgb.cnnt");
  // rgb-nested takes (3, 32, 32): the 28x28 pictures are resized.
  const Result r = run_cli("train --dataset " + path("rgb") + " --model rgb-nested --epochs 1 " +
                           "--max-steps 3 --batch-size 16 --out " + out + common());
  ASSERT_EQ(r.code, 0) << r.out;
  const LoadedModel m = load_checkpoint(out);
  EXPECT_EQ(m.input, (Shape{3, 32, 32}));
  EXPECT_EQ(m.meta["dataset"]["channels"], 3);
  EXPECT_EQ(m.meta["dataset"]["class_names"][9], "c9");
  // A second run reads the folder from the cache; normalised per channel by its own figures.
  const Result again = run_cli("train --dataset " + path("rgb") + " --model rgb-nested " +
                               "--max-steps 1 --normalize --out " + path("rgb2.cnnt") + common());
  ASSERT_EQ(again.code, 0) << again.out;
  expect_contains(again.out,
                  {"60 images in 10 classes, from the cache", "normalising with the training"});
  const LoadedModel n = load_checkpoint(path("rgb2.cnnt"));
  EXPECT_EQ(n.meta["train_options"]["normalize"]["mean"].size(), 3u);
  const Result p = run_cli("predict --weights " + path("rgb2.cnnt") + " --image " +
                           path("rgb/test/c3") + " --top-k 1");
  ASSERT_EQ(p.code, 0) << p.out;
  expect_contains(p.out, {"p0.png  c"});
}

// Real MNIST digits written out as PNG files (every third one tinted orange, so RGB), classes
// named by folder, one corrupt file: trained, validated, evaluated and predicted by name.
TEST_F(FolderCli, MnistDigitsAsPictures) {
  const std::string mnist = std::string(CNN_FIXTURE_DIR) + "/../../data/mnist";
  if (!fs::exists(mnist + "/t10k-images-idx3-ubyte")) {
    GTEST_SKIP() << "data/mnist is not fetched (bash scripts/fetch-data.sh mnist)";
  }
  const IdxImages images = read_idx_images(mnist + "/t10k-images-idx3-ubyte");
  const std::vector<uint8_t> labels = read_idx_labels(mnist + "/t10k-labels-idx1-ubyte");
  const std::vector<std::string> names = {"zero", "one", "two",   "three", "four",
                                          "five", "six", "seven", "eight", "nine"};
  std::vector<int> written(10, 0);
  for (int64_t i = 0; i < images.count; ++i) {
    const int c = labels[i];
    if (written[c] >= 100) continue;
    const std::string split = written[c] < 80 ? "train" : "test";
    RgbImage img(28, 28);
    const bool tint = i % 3 == 0;
    for (int64_t y = 0; y < 28; ++y) {
      for (int64_t x = 0; x < 28; ++x) {
        const uint8_t v = images.pixels[i * 784 + y * 28 + x];
        img.set(x, y,
                {v, static_cast<uint8_t>(tint ? v * 2 / 3 : v),
                 static_cast<uint8_t>(tint ? v / 4 : v)});
      }
    }
    const fs::path d = dir / "digits" / split / names[c];
    fs::create_directories(d);
    write_png((d / (std::to_string(i) + ".png")).string(), img);
    ++written[c];
  }
  std::ofstream(dir / "digits/train/seven/corrupt.png", std::ios::binary) << "\x89PNG\r\n";
  const std::string out = path("digits.cnnt");
  const Result r = run_cli("train --dataset " + path("digits") + " --bad-images skip --epochs 10 " +
                           "--batch-size 32 --lr 2e-3 --val-split 0.1 --out " + out + common());
  ASSERT_EQ(r.code, 0) << r.out;
  expect_contains(r.out, {"1 bad images skipped (first: seven/corrupt.png)",
                          "720 train / 80 validation images"});
  const Result e = run_cli("eval --weights " + out + " --cache-dir " + path("cache"));
  ASSERT_EQ(e.code, 0) << e.out;
  expect_contains(e.out, {"test: 200 images", "eight"});
  // 800 digits, 10 epochs: well above chance (10 %); the full training set reaches 98 %.
  const double accuracy = std::stod(e.out.substr(e.out.find("accuracy ") + 9));
  std::printf("MNIST digits as PNG files, 720 for training: test accuracy %.3f\n", accuracy);
  EXPECT_GT(accuracy, 0.7) << e.out;
  const Result p =
      run_cli("predict --weights " + out + " --image " + path("digits/test/three") + " --top-k 1");
  ASSERT_EQ(p.code, 0) << p.out;
  int threes = 0;
  for (std::size_t at = p.out.find("  three "); at != std::string::npos;
       at = p.out.find("  three ", at + 1)) {
    ++threes;
  }
  EXPECT_GE(threes, 12) << p.out;  // of 20
}

TEST_F(FolderCli, AFolderWithoutTestNeedsAValidationSplit) {
  const std::string train_only = path("shapes/train");
  const Result r = run_cli("train --dataset " + train_only + " --bad-images skip" + common());
  EXPECT_EQ(r.code, 1);
  expect_contains(r.out, {"no test/ folder", "--val-split"});
  const Result bad = run_cli("train --dataset " + path("nowhere"));
  EXPECT_EQ(bad.code, 2);
  expect_contains(bad.out, {"--dataset", "image folder"});
}

}  // namespace
}  // namespace cnn::testing
