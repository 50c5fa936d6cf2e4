// Data augmentation (cnn/data/augment.h): the option's parser, each transformation against its
// definition, and the loader's use of it (seeded, the order untouched, off changes nothing).
#include <cmath>
#include <set>

#include "cnn/data/augment.h"
#include "cnn/data/dataset.h"
#include "cnn/error.h"
#include "cnn/train/trainer.h"
#include "testing.h"

namespace cnn::testing {
namespace {

std::string parse_error(const std::string& spec) {
  try {
    Augment::parse(spec);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Augment, ParsesAndPrintsBack) {
  const Augment a = Augment::parse(" shift=2, rotate=12.5 ,hflip");
  EXPECT_EQ(a.shift, 2);
  EXPECT_DOUBLE_EQ(a.rotate, 12.5);
  EXPECT_TRUE(a.hflip);
  EXPECT_EQ(a.str(), "shift=2,rotate=12.5,hflip");
  EXPECT_EQ(Augment::parse(a.str()).str(), a.str());
  EXPECT_FALSE(Augment::parse("none").enabled());
  EXPECT_EQ(Augment::parse("none").str(), "none");
  EXPECT_FALSE(Augment::parse("shift=0").enabled());
  const Augment r = Augment::from_json(a.to_json());
  EXPECT_EQ(r.shift, 2);
  EXPECT_DOUBLE_EQ(r.rotate, 12.5);
  EXPECT_TRUE(r.hflip);
}

TEST(Augment, BadSpecsNameThePart) {
  EXPECT_NE(parse_error("shfit=2").find("unknown augmentation 'shfit'"), std::string::npos);
  EXPECT_NE(parse_error("shfit=2").find("did you mean 'shift'?"), std::string::npos);
  EXPECT_NE(parse_error("shift=1.5").find("whole number of pixels"), std::string::npos);
  EXPECT_NE(parse_error("shift=-1").find("whole number of pixels in [0, 64]"), std::string::npos);
  EXPECT_NE(parse_error("shift=100000000000").find("[0, 64]"), std::string::npos);
  EXPECT_NE(parse_error("shift").find("needs a value"), std::string::npos);
  EXPECT_NE(parse_error("shift=two").find("'two' is not a number"), std::string::npos);
  EXPECT_NE(parse_error("shift=2x").find("'2x' is not a number"), std::string::npos);
  EXPECT_NE(parse_error("rotate=nan").find("not a number"), std::string::npos);
  EXPECT_NE(parse_error("rotate=181").find("[0, 180]"), std::string::npos);
  EXPECT_NE(parse_error("hflip=1").find("takes no value"), std::string::npos);
  EXPECT_NE(parse_error("").find("empty"), std::string::npos);
}

// A 3-channel 5x7 picture with every pixel distinct.
std::vector<uint8_t> picture(int64_t c, int64_t h, int64_t w) {
  std::vector<uint8_t> p(static_cast<std::size_t>(c * h * w));
  for (std::size_t i = 0; i < p.size(); ++i) p[i] = static_cast<uint8_t>(1 + (i * 37) % 250);
  return p;
}

TEST(Augment, WholePixelShiftsAndFlipsMoveEveryChannelAlike) {
  const int64_t C = 3, H = 5, W = 7;
  const auto src = picture(C, H, W);
  std::vector<float> dst(src.size());
  for (bool flip : {false, true}) {
    for (int64_t dy = -2; dy <= 2; ++dy) {
      for (int64_t dx = -3; dx <= 3; ++dx) {
        augment_image(src.data(), C, H, W, {flip, dx, dy, 0.0}, 1.0f, 0.0f, dst.data());
        for (int64_t c = 0; c < C; ++c) {
          for (int64_t y = 0; y < H; ++y) {
            for (int64_t x = 0; x < W; ++x) {
              // Where output (y, x) comes from: moved back, then mirrored.
              const int64_t sy = y - dy, sx0 = x - dx, sx = flip ? W - 1 - sx0 : sx0;
              const float want = (sy < 0 || sy >= H || sx < 0 || sx >= W)
                                     ? 0.0f
                                     : float(src[(c * H + sy) * W + sx]);
              ASSERT_EQ(dst[(c * H + y) * W + x], want)
                  << "flip " << flip << " dx " << dx << " dy " << dy << " at " << c << "," << y
                  << "," << x;
            }
          }
        }
      }
    }
  }
}

TEST(Augment, ScalingIsTheLoaders) {
  const auto src = picture(1, 4, 4);
  std::vector<float> dst(src.size());
  augment_image(src.data(), 1, 4, 4, {}, 0.5f, 3.0f, dst.data());
  for (std::size_t i = 0; i < src.size(); ++i) EXPECT_EQ(dst[i], src[i] * 0.5f - 3.0f);
}

// 90 degrees counter-clockwise on a square picture is numpy's rot90: output (y, x) is input
// (x, W-1-y). Bilinear sampling at whole pixels gives the pixels themselves, up to cos(90°)'s
// 6e-17 in double.
TEST(Augment, QuarterTurnIsRot90) {
  const int64_t N = 6;
  const auto src = picture(2, N, N);
  std::vector<float> dst(src.size());
  augment_image(src.data(), 2, N, N, {false, 0, 0, 90.0}, 1.0f, 0.0f, dst.data());
  for (int64_t c = 0; c < 2; ++c) {
    for (int64_t y = 0; y < N; ++y) {
      for (int64_t x = 0; x < N; ++x) {
        EXPECT_NEAR(dst[(c * N + y) * N + x], src[(c * N + x) * N + (N - 1 - y)], 1e-3)
            << c << "," << y << "," << x;
      }
    }
  }
  // And -90 undoes it.
  std::vector<uint8_t> turned(dst.size());
  for (std::size_t i = 0; i < dst.size(); ++i)
    turned[i] = static_cast<uint8_t>(std::lround(dst[i]));
  std::vector<float> back(src.size());
  augment_image(turned.data(), 2, N, N, {false, 0, 0, -90.0}, 1.0f, 0.0f, back.data());
  for (std::size_t i = 0; i < src.size(); ++i) EXPECT_NEAR(back[i], src[i], 1e-3);
}

// A small rotation of a blob in the middle keeps its mass (bilinear weights sum to one; nothing
// leaves the picture) and moves it the right way: a bar right of the centre goes up.
TEST(Augment, SmallRotationsTurnCounterClockwise) {
  const int64_t N = 29;
  std::vector<uint8_t> src(static_cast<std::size_t>(N * N), 0);
  for (int64_t x = 16; x < 24; ++x) src[14 * N + x] = 200;  // a horizontal bar right of centre
  std::vector<float> dst(src.size());
  augment_image(src.data(), 1, N, N, {false, 0, 0, 15.0}, 1.0f, 0.0f, dst.data());
  double mass = 0, above = 0, below = 0;
  for (int64_t y = 0; y < N; ++y) {
    for (int64_t x = 0; x < N; ++x) {
      const double v = dst[y * N + x];
      mass += v;
      (y < 14 ? above : below) += y == 14 ? 0 : v;
    }
  }
  EXPECT_NEAR(mass, 8 * 200, 8 * 200 * 0.02);
  EXPECT_GT(above, 10 * below);
}

TEST(Augment, DrawsCoverTheirRangesAndNoMore) {
  Augment a;
  a.shift = 2;
  a.rotate = 10;
  a.hflip = true;
  Generator gen(7);
  std::set<int64_t> dxs, dys;
  int flips = 0;
  double lo = 0, hi = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    const AugmentDraw d = draw_augment(a, gen);
    dxs.insert(d.dx);
    dys.insert(d.dy);
    flips += d.flip;
    lo = std::min(lo, d.degrees);
    hi = std::max(hi, d.degrees);
  }
  EXPECT_EQ(dxs, (std::set<int64_t>{-2, -1, 0, 1, 2}));
  EXPECT_EQ(dys, (std::set<int64_t>{-2, -1, 0, 1, 2}));
  EXPECT_NEAR(flips, n / 2, n / 10);  // binomial sd is 32
  EXPECT_LT(lo, -9.5);
  EXPECT_GE(lo, -10.0);
  EXPECT_GT(hi, 9.5);
  EXPECT_LT(hi, 10.0);
  // Only the enabled parts draw.
  Generator g1(3), g2(3);
  const AugmentDraw none = draw_augment(Augment{}, g1);
  EXPECT_FALSE(none.flip);
  EXPECT_EQ(none.dx, 0);
  EXPECT_EQ(none.degrees, 0.0);
  EXPECT_EQ(g1.next_u64(), g2.next_u64());
}

Dataset small_dataset(int64_t n) {
  Dataset d;
  d.name = "tiny";
  d.split = "train";
  d.count = n;
  d.rows = 8;
  d.cols = 8;
  d.num_classes = 10;
  d.pixels = picture(1, n * 8, 8);
  d.labels.resize(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) d.labels[i] = static_cast<uint8_t>(i % 10);
  return d;
}

std::vector<Batch> epoch(DataLoader& loader) {
  std::vector<Batch> out;
  loader.reset();
  Batch b;
  while (loader.next(b)) {
    out.push_back(b);
    out.back().images = b.images.clone();
  }
  return out;
}

TEST(Augment, TheLoaderAugmentsSeededAndKeepsItsOrder) {
  const Dataset d = small_dataset(40);
  DataLoader plain(d, 16, true, 5), aug1(d, 16, true, 5), aug2(d, 16, true, 5),
      other(d, 16, true, 5);
  Augment a;
  a.shift = 2;
  a.rotate = 5;
  aug1.set_augment(a, 11);
  aug2.set_augment(a, 11);
  other.set_augment(a, 12);
  const auto p = epoch(plain), x = epoch(aug1), y = epoch(aug2), z = epoch(other);
  ASSERT_EQ(p.size(), 3u);
  bool differs_from_plain = false, differs_from_other_seed = false;
  for (std::size_t i = 0; i < p.size(); ++i) {
    EXPECT_EQ(x[i].indices, p[i].indices);  // the order is the shuffle's alone
    EXPECT_EQ(x[i].labels, p[i].labels);
    for (int64_t j = 0; j < p[i].images.numel(); ++j) {
      EXPECT_EQ(x[i].images[j], y[i].images[j]);  // same seed, same pictures
      differs_from_plain |= x[i].images[j] != p[i].images[j];
      differs_from_other_seed |= x[i].images[j] != z[i].images[j];
    }
  }
  EXPECT_TRUE(differs_from_plain);
  EXPECT_TRUE(differs_from_other_seed);
  // Off again: the images exactly as the dataset holds them.
  aug1.set_augment(Augment{}, 0);
  const auto q = epoch(aug1);
  for (int64_t j = 0; j < q[0].images.numel(); ++j) {
    const int64_t img = j / 64;
    EXPECT_EQ(q[0].images[j], d.image(q[0].indices[img])[j % 64] * (1.0f / 255.0f));
  }
}

TEST(Augment, TrainOptionsRecordIt) {
  TrainOptions o;
  EXPECT_FALSE(o.to_json().contains("augment"));
  o.augment = Augment::parse("shift=2");
  EXPECT_EQ(o.to_json()["augment"]["shift"], 2);
}

}  // namespace
}  // namespace cnn::testing
