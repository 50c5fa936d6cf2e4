// The training-curves figure: its size, both series in both panels (told apart by their exact
// colours), curves that run the way the data does, one epoch, non-finite values, the errors, the
// 1-2-5 ticks and the PNG file it writes.
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "cnn/error.h"
#include "cnn/viz/curves.h"
#include "testing.h"

namespace cnn::testing {
namespace {

namespace fs = std::filesystem;

constexpr std::array<uint8_t, 3> kBlue = {31, 119, 180}, kOrange = {255, 127, 14};

// A made-up 5-epoch run: loss falls, accuracy rises, the held-out set lags behind.
std::vector<CurvePoint> five_epochs() {
  return {{1, 0.90, 0.72, 0.60, 0.81},
          {2, 0.50, 0.85, 0.45, 0.86},
          {3, 0.35, 0.90, 0.38, 0.88},
          {4, 0.28, 0.92, 0.36, 0.89},
          {5, 0.25, 0.93, 0.35, 0.89}};
}

// Pixels of exactly colour c in columns [x0, x1) below the header. The header (the top 20%: the
// title, the y label and the legend, whose line samples are in the series' colours) is left out,
// so that a count says what the plot itself holds.
int64_t count(const RgbImage& img, std::array<uint8_t, 3> c, int64_t x0, int64_t x1) {
  int64_t n = 0;
  for (int64_t y = img.height / 5; y < img.height; ++y) {
    for (int64_t x = x0; x < x1; ++x) n += img.get(x, y) == c;
  }
  return n;
}
int64_t left(const RgbImage& img, std::array<uint8_t, 3> c) {
  return count(img, c, 0, img.width / 2);
}
int64_t right(const RgbImage& img, std::array<uint8_t, 3> c) {
  return count(img, c, img.width / 2, img.width);
}

// The column of the highest pixel of colour c in columns [x0, x1) below the header.
int64_t column_of_top(const RgbImage& img, std::array<uint8_t, 3> c, int64_t x0, int64_t x1) {
  for (int64_t y = img.height / 5; y < img.height; ++y) {
    for (int64_t x = x0; x < x1; ++x) {
      if (img.get(x, y) == c) return x;
    }
  }
  return -1;
}

// Five dots of radius 3.5 are about 5 * 38 pixels; lines across a panel add several hundred.
constexpr int64_t kLinesAndDots = 400;

TEST(Curves, HasTheRequestedSize) {
  const RgbImage img = render_training_curves(five_epochs());
  EXPECT_EQ(img.width, 1000);
  EXPECT_EQ(img.height, 420);
  EXPECT_EQ(img.rgb.size(), 1000u * 420u * 3u);
  CurveOptions small;
  small.width = 640, small.height = 300;
  const RgbImage s = render_training_curves(five_epochs(), small);
  EXPECT_EQ(s.width, 640);
  EXPECT_EQ(s.height, 300);
  EXPECT_GT(left(s, kBlue), kLinesAndDots / 2);
}

TEST(Curves, DrawsBothSeriesInBothPanels) {
  const RgbImage img = render_training_curves(five_epochs());
  EXPECT_GT(left(img, kBlue), kLinesAndDots);
  EXPECT_GT(left(img, kOrange), kLinesAndDots);
  EXPECT_GT(right(img, kBlue), kLinesAndDots);
  EXPECT_GT(right(img, kOrange), kLinesAndDots);
  // Text, axes and grid: dark and light pixels that are neither white nor a series colour.
  int64_t dark = 0;
  for (std::size_t i = 0; i < img.rgb.size(); i += 3) {
    dark += img.rgb[i] < 80 && img.rgb[i + 1] < 80 && img.rgb[i + 2] < 80;
  }
  EXPECT_GT(dark, 4000);
}

TEST(Curves, WithoutHeldOutValuesDrawsTrainOnly) {
  std::vector<CurvePoint> points = five_epochs();
  for (CurvePoint& p : points) p.val_loss.reset(), p.val_accuracy.reset();
  const RgbImage img = render_training_curves(points);
  EXPECT_EQ(count(img, kOrange, 0, img.width), 0);
  EXPECT_GT(left(img, kBlue), kLinesAndDots);
  EXPECT_GT(right(img, kBlue), kLinesAndDots);
  // The legend too: no orange anywhere, header included.
  int64_t orange = 0;
  for (int64_t y = 0; y < img.height; ++y) {
    for (int64_t x = 0; x < img.width; ++x) orange += img.get(x, y) == kOrange;
  }
  EXPECT_EQ(orange, 0);
}

TEST(Curves, RunTheWayTheDataDoes) {
  // Loss falls: its highest point is at the first epoch, on the left of its panel. Accuracy
  // rises: its highest point is at the last epoch, on the right of its panel.
  const RgbImage img = render_training_curves(five_epochs());
  const int64_t half = img.width / 2;
  const int64_t loss_top = column_of_top(img, kBlue, 0, half);
  const int64_t acc_top = column_of_top(img, kBlue, half, img.width);
  ASSERT_GE(loss_top, 0);
  ASSERT_GE(acc_top, 0);
  EXPECT_LT(loss_top, half / 3);
  EXPECT_GT(acc_top, half + 2 * half / 3);
}

TEST(Curves, OneEpochIsADot) {
  const std::vector<CurvePoint> one = {{1, 0.7, 0.8, 0.6, 0.85}};
  const RgbImage img = render_training_curves(one);
  for (auto c : {kBlue, kOrange}) {
    EXPECT_GT(left(img, c), 20);
    EXPECT_GT(right(img, c), 20);
    EXPECT_LT(left(img, c), 80);  // a dot, no line
    EXPECT_LT(right(img, c), 80);
  }
}

TEST(Curves, SkipsNonFiniteValues) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<CurvePoint> points = five_epochs();
  for (CurvePoint& p : points) p.train_loss = nan;  // diverged from the start
  points[2].val_loss = inf;
  points[3].val_accuracy = nan;
  const RgbImage img = render_training_curves(points);
  EXPECT_EQ(left(img, kBlue), 0);
  EXPECT_GT(left(img, kOrange), 100);
  EXPECT_GT(right(img, kBlue), kLinesAndDots);
  EXPECT_GT(right(img, kOrange), kLinesAndDots / 2);
}

TEST(Curves, NoPointsIsAnError) {
  try {
    render_training_curves({});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no epochs to draw"), std::string::npos) << e.what();
  }
  const std::string path =
      ::testing::TempDir() + "cnn_curves_empty_" + std::to_string(getpid()) + ".png";
  EXPECT_THROW(write_training_curves(path, {}), Error);
  EXPECT_FALSE(fs::exists(path));
}

TEST(Curves, AccuracyInPercentIsAnError) {
  std::vector<CurvePoint> points = five_epochs();
  points[1].val_accuracy = 86.0;
  CurveOptions options;
  options.held_out_label = "test";
  try {
    render_training_curves(points, options);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("test accuracy of epoch 2 is 86"), std::string::npos)
        << e.what();
  }
}

TEST(Curves, TooSmallIsAnError) {
  CurveOptions options;
  options.width = 100;
  EXPECT_THROW(render_training_curves(five_epochs(), options), Error);
}

TEST(Curves, WritesAPng) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("cnn_curves_" + std::to_string(getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "curves.png").string();
  CurveOptions options;
  options.width = 900, options.height = 400;
  write_training_curves(path, five_epochs(), options);
  ASSERT_TRUE(fs::exists(path));
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GE(bytes.size(), 33u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(bytes.substr(12, 4), "IHDR");
  const auto be32 = [&](std::size_t at) {
    return uint32_t{uint8_t(bytes[at])} << 24 | uint32_t{uint8_t(bytes[at + 1])} << 16 |
           uint32_t{uint8_t(bytes[at + 2])} << 8 | uint32_t{uint8_t(bytes[at + 3])};
  };
  EXPECT_EQ(be32(16), 900u);
  EXPECT_EQ(be32(20), 400u);
  // And the pixels are the rendered ones, losslessly.
  const RgbImage back = read_rgb_image(path);
  EXPECT_TRUE(back.rgb == render_training_curves(five_epochs(), options).rgb);
  // Written atomically: nothing but the picture is left in the folder.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
  fs::remove_all(dir);
}

TEST(Curves, NiceTicksFollowOneTwoFive) {
  using V = std::vector<double>;
  const auto near = [](const V& got, const V& want) {
    if (got.size() != want.size()) return false;
    for (std::size_t i = 0; i < got.size(); ++i) {
      if (std::abs(got[i] - want[i]) > 1e-9) return false;
    }
    return true;
  };
  EXPECT_TRUE(near(nice_ticks(0, 1, 7), V{0, 0.2, 0.4, 0.6, 0.8, 1.0}));
  EXPECT_TRUE(near(nice_ticks(0, 100, 7), V{0, 20, 40, 60, 80, 100}));
  EXPECT_TRUE(near(nice_ticks(97.3, 99.6, 7), V{97.5, 98, 98.5, 99, 99.5}));
  EXPECT_TRUE(near(nice_ticks(0.21, 0.93, 7), V{0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9}));
  EXPECT_TRUE(near(nice_ticks(0.84, 5.16, 10, true), V{1, 2, 3, 4, 5}));
  EXPECT_TRUE(near(nice_ticks(0.5, 1.5, 10, true), V{1}));
  EXPECT_TRUE(near(nice_ticks(-0.3, 0.3, 7), V{-0.3, -0.2, -0.1, 0, 0.1, 0.2, 0.3}));
  EXPECT_TRUE(near(nice_ticks(0, 100, 10, true), V{0, 20, 40, 60, 80, 100}));
  EXPECT_TRUE(nice_ticks(1, 0, 7).empty());
}

}  // namespace
}  // namespace cnn::testing
