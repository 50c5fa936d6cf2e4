// The IDX reader, the datasets and the loader, on small files the tests write.
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "cnn/data/dataset.h"
#include "cnn/data/digit.h"
#include "cnn/data/idx.h"
#include "cnn/viz/image.h"
#include "testing.h"

namespace cnn::testing {
namespace {

namespace fs = std::filesystem;

}  // namespace

std::string encode_rgba_png(int64_t w, int64_t h, const std::vector<uint8_t>& rgba);

namespace {

// A tiny MNIST-shaped dataset in a fresh directory.
struct TinyData : ::testing::Test {
  fs::path dir;
  void SetUp() override {
    dir = fresh_test_dir("cnn_data");
    write("train", 50, false);
    write("t10k", 20, true);
  }
  void TearDown() override { fs::remove_all(dir); }
  void write(const std::string& prefix, int64_t n, bool gz) {
    IdxImages img{n, 28, 28, std::vector<uint8_t>(static_cast<std::size_t>(n * 784))};
    std::vector<uint8_t> labels(static_cast<std::size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      labels[i] = static_cast<uint8_t>(i % 10);
      for (int64_t j = 0; j < 784; ++j)
        img.pixels[i * 784 + j] = static_cast<uint8_t>((i * 7 + j) % 256);
    }
    const std::string ext = gz ? ".gz" : "";
    write_idx_images((dir / (prefix + "-images-idx3-ubyte" + ext)).string(), img);
    write_idx_labels((dir / (prefix + "-labels-idx1-ubyte" + ext)).string(), labels);
  }
  std::string path(const std::string& name) const { return (dir / name).string(); }
};

TEST_F(TinyData, LoadsRawAndGzip) {
  const Dataset train = load_dataset("mnist", dir.string(), "train");
  const Dataset test = load_dataset("mnist", dir.string(), "test");
  EXPECT_EQ(train.count, 50);
  EXPECT_EQ(test.count, 20);
  EXPECT_EQ(test.rows, 28);
  EXPECT_EQ(test.labels[13], 3);
  EXPECT_EQ(test.image(1)[0], 7);
  EXPECT_FLOAT_EQ(test.image_tensor(1)[0], 7 / 255.0f);
}

TEST_F(TinyData, LoaderBatchesShufflesAndScales) {
  const Dataset train = load_dataset("mnist", dir.string(), "train");
  DataLoader a(train, 16, true, 3), b(train, 16, true, 3), plain(train, 16, false);
  EXPECT_EQ(a.batches_per_epoch(), 4);
  Batch ba, bb;
  std::vector<int64_t> seen;
  int batches = 0;
  while (a.next(ba)) {
    ASSERT_TRUE(b.next(bb));
    EXPECT_EQ(ba.indices, bb.indices) << "same seed, same order";
    for (std::size_t i = 0; i < ba.indices.size(); ++i) {
      EXPECT_EQ(ba.labels[i], train.labels[ba.indices[i]]);
      EXPECT_FLOAT_EQ(ba.images[static_cast<int64_t>(i) * 784 + 5],
                      train.image(ba.indices[i])[5] / 255.0f);
    }
    seen.insert(seen.end(), ba.indices.begin(), ba.indices.end());
    ++batches;
  }
  EXPECT_EQ(batches, 4);
  EXPECT_EQ(ba.images.size(0), 2) << "the last batch holds the remainder";
  std::sort(seen.begin(), seen.end());
  for (int64_t i = 0; i < 50; ++i) EXPECT_EQ(seen[i], i) << "every image once per epoch";
  Batch bp;
  plain.next(bp);
  EXPECT_EQ(bp.indices[3], 3);
  a.reset();
  a.next(ba);
  b.reset();
  b.next(bb);
  EXPECT_EQ(ba.indices, bb.indices);
}

TEST_F(TinyData, Normalisation) {
  const Dataset train = load_dataset("mnist", dir.string(), "train");
  DataLoader loader(train, 8, false, 0, Normalize{0.5f, 0.25f});
  Batch b;
  loader.next(b);
  EXPECT_NEAR(b.images[10], (train.image(0)[10] / 255.0f - 0.5f) / 0.25f, 1e-5);
}

// Per channel: the statistics of each plane, and the loader's (x / 255 - mean[c]) / std[c].
TEST(Normalise, PerChannelStatisticsAndScaling) {
  Dataset d;
  d.name = "rgb";
  d.split = "train";
  d.count = 3;
  d.rows = 2;
  d.cols = 2;
  d.channels = 3;
  d.num_classes = 2;
  d.labels = {0, 1, 0};
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t j = 0; j < 4; ++j)
        d.pixels.push_back(static_cast<uint8_t>(c == 2 ? 77 : 10 * i + 60 * c + j));
  const Normalize n = channel_stats(d);
  ASSERT_EQ(n.mean.size(), 3u);
  for (int64_t c = 0; c < 3; ++c) {
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 4; ++j) {
        const double v = d.image(i)[c * 4 + j] / 255.0;
        sum += v;
        sq += v * v;
      }
    const double mean = sum / 12, sd = std::sqrt(sq / 12 - mean * mean);
    EXPECT_NEAR(n.mean[c], mean, 1e-6) << c;
    if (c < 2) {
      EXPECT_NEAR(n.std[c], sd, 1e-6) << c;
    }
  }
  EXPECT_EQ(n.std[2], 1.0f);  // a constant channel passes through, centred
  DataLoader loader(d, 3, false, 0, n);
  Batch b;
  loader.next(b);
  for (int64_t j = 0; j < b.images.numel(); ++j) {
    const int64_t c = j / 4 % 3;
    EXPECT_NEAR(b.images[j], (d.pixels[j] / 255.0f - n.mean[c]) / n.std[c], 1e-5) << j;
  }
  // Through JSON and back; a bad one from a file is refused by name.
  const Normalize back = Normalize::from_json(n.to_json());
  EXPECT_EQ(back.mean, n.mean);
  EXPECT_EQ(back.std, n.std);
  EXPECT_EQ(Normalize::from_json(Normalize(0.5f, 0.25f).to_json()).mean_of(2), 0.5f);
  expect_error(
      [] {
        Normalize::from_json({{"mean", {0.1, 0.2}}, {"std", {0.3}}});
      },
      {"2 means and 1 stds"});
  expect_error([] { Normalize::from_json({{"mean", 0.1}, {"std", 0}}); }, {"std positive"});
  expect_error([] { Normalize::from_json({{"mean", "x"}, {"std", 1}}); }, {"normalisation"});
  expect_error(
      [&] {
        DataLoader(d, 3, false, 0, Normalize({0.1f, 0.2f}, {1.0f, 1.0f}));
      },
      {"2 means and 2 stds for images of 3 channels"});
}

TEST_F(TinyData, MissingDirectoryAndFile) {
  expect_error([&] { load_dataset("mnist", path("nope"), "train"); },
               {path("nope"), "data directory not found"});
  fs::remove(path("train-labels-idx1-ubyte"));
  expect_error([&] { load_dataset("mnist", dir.string(), "train"); },
               {"train-labels-idx1-ubyte", "not found"});
}

TEST_F(TinyData, TruncatedFile) {
  const std::string p = path("train-images-idx3-ubyte");
  fs::resize_file(p, 1000);
  expect_error([&] { read_idx_images(p); }, {p, "truncated", "1000"});
}

TEST_F(TinyData, TrailingBytes) {
  const std::string p = path("train-labels-idx1-ubyte");
  std::ofstream(p, std::ios::app) << "xx";
  expect_error([&] { read_idx_labels(p); }, {p, "2 unexpected bytes"});
}

TEST_F(TinyData, CorruptedGzip) {
  const std::string p = path("t10k-images-idx3-ubyte.gz");
  std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
  f.seekp(40);
  f.write("\xff\x00\xff\x00\xff\x00\xff\x00", 8);
  f.close();
  expect_error([&] { read_idx_images(p); }, {p});
}

TEST_F(TinyData, WrongMagic) {
  expect_error([&] { read_idx_images(path("train-labels-idx1-ubyte")); },
               {"train-labels-idx1-ubyte", "wrong magic number 0x00000801, expected 0x00000803"});
}

TEST_F(TinyData, CountMismatch) {
  write_idx_labels(path("train-labels-idx1-ubyte"), std::vector<uint8_t>(49, 1));
  expect_error([&] { load_dataset("mnist", dir.string(), "train"); },
               {"train-labels-idx1-ubyte", "49 labels", "50 images"});
}

TEST_F(TinyData, LabelOutOfRange) {
  std::vector<uint8_t> labels(50, 1);
  labels[7] = 12;
  write_idx_labels(path("train-labels-idx1-ubyte"), labels);
  expect_error([&] { load_dataset("mnist", dir.string(), "train"); },
               {"train-labels-idx1-ubyte", "label 12 at index 7", "out of range [0, 10)"});
}

TEST(Digit, PreprocessingCropsScalesAndCentres) {
  // A dark stroke on light paper, off-centre, 60x40.
  GrayImage img{60, 40, std::vector<uint8_t>(60 * 40, 250)};
  for (int64_t y = 5; y < 30; ++y) {
    for (int64_t x = 40; x < 46; ++x) img.pixels[y * 60 + x] = 10;
  }
  const DigitSteps s = preprocess_digit(img);
  EXPECT_TRUE(s.inverted);
  EXPECT_EQ(s.cropped.width, 6);
  EXPECT_EQ(s.cropped.height, 25);
  EXPECT_EQ(s.scaled.height, 20);
  EXPECT_EQ(s.centered.width, 28);
  double mass = 0, cx = 0, cy = 0;
  for (int64_t y = 0; y < 28; ++y) {
    for (int64_t x = 0; x < 28; ++x) {
      mass += s.centered.at(x, y);
      cx += s.centered.at(x, y) * (x + 0.5);
      cy += s.centered.at(x, y) * (y + 0.5);
    }
  }
  EXPECT_NEAR(cx / mass, 14.0, 0.6);
  EXPECT_NEAR(cy / mass, 14.0, 0.6);
  GrayImage blank{10, 10, std::vector<uint8_t>(100, 255)};
  EXPECT_THROW(preprocess_digit(blank), Error);
}

// A picture of a "1" in the style of a drawing app: black strokes on a transparent canvas whose
// colour is black at alpha 0, with one anti-aliased (half-transparent) column.
std::vector<uint8_t> transparent_digit(int64_t w, int64_t h) {
  std::vector<uint8_t> rgba(static_cast<std::size_t>(w * h * 4), 0);
  for (int64_t y = 6; y < h - 6; ++y) {
    for (int64_t x = w / 2 - 2; x <= w / 2 + 2; ++x)
      rgba[(y * w + x) * 4 + 3] = x == w / 2 + 2 ? 128 : 255;
  }
  return rgba;
}

TEST(Digit, TransparentBackgroundIsPaper) {
  const int64_t w = 30, h = 40;
  const std::string dir = ::testing::TempDir() + "cnn_alpha_" + std::to_string(getpid());
  fs::create_directories(dir);
  const std::string png = dir + "/digit.png";
  std::ofstream(png, std::ios::binary) << encode_rgba_png(w, h, transparent_digit(w, h));
  const GrayImage g = read_gray_image(png);
  ASSERT_EQ(g.width, w);
  EXPECT_EQ(g.at(0, 0), 255) << "transparent black is white paper";
  EXPECT_EQ(g.at(w / 2, h / 2), 0) << "opaque black stays black";
  EXPECT_NEAR(g.at(w / 2 + 2, h / 2), 127, 1) << "half-transparent black is half gray";
  // The same digit drawn black on white gives the same network input.
  GrayImage paper{w, h, std::vector<uint8_t>(static_cast<std::size_t>(w * h), 255)};
  for (int64_t y = 6; y < h - 6; ++y) {
    for (int64_t x = w / 2 - 2; x <= w / 2 + 2; ++x)
      paper.pixels[y * w + x] = x == w / 2 + 2 ? 127 : 0;
  }
  const DigitSteps a = preprocess_digit(g), b = preprocess_digit(paper);
  EXPECT_TRUE(a.inverted);
  EXPECT_EQ(a.centered.pixels, b.centered.pixels);
  fs::remove_all(dir);
}

TEST(Digit, PathsThatAreNotImages) {
  const std::string dir = ::testing::TempDir() + "cnn_image_paths_" + std::to_string(getpid());
  fs::create_directories(dir);
  expect_error([&] { read_gray_image(dir); }, {dir, "is a directory"});
  expect_error([&] { read_gray_image(dir + "/missing.png"); },
               {dir + "/missing.png", "no such file"});
  const std::string text = dir + "/text.png";
  std::ofstream(text) << "not a picture";
  expect_error([&] { read_gray_image(text); }, {text, "cannot read image"});
  if (geteuid() != 0) {  // root reads a file whatever its permissions
    fs::permissions(text, fs::perms::none);
    expect_error([&] { read_gray_image(text); }, {text, "permission denied"});
  }
  fs::remove_all(dir);
}

}  // namespace

// A PNG with colour type 6 (8-bit RGBA) built by hand with zlib, because the library writes RGB
// only. Also used by test_cli.cpp.
std::string encode_rgba_png(int64_t w, int64_t h, const std::vector<uint8_t>& rgba) {
  const auto be32 = [](uint32_t v) {
    return std::string{char(v >> 24), char(v >> 16 & 0xff), char(v >> 8 & 0xff), char(v & 0xff)};
  };
  const auto chunk = [&](const std::string& type, const std::string& body) {
    const std::string tb = type + body;
    return be32(static_cast<uint32_t>(body.size())) + tb +
           be32(static_cast<uint32_t>(
               crc32(0, reinterpret_cast<const Bytef*>(tb.data()), static_cast<uInt>(tb.size()))));
  };
  std::string raw;
  for (int64_t y = 0; y < h; ++y) {
    raw += '\0';  // filter: none
    raw.append(reinterpret_cast<const char*>(rgba.data()) + y * w * 4,
               static_cast<std::size_t>(w * 4));
  }
  uLongf size = compressBound(static_cast<uLong>(raw.size()));
  std::string z(size, '\0');
  compress(reinterpret_cast<Bytef*>(z.data()), &size, reinterpret_cast<const Bytef*>(raw.data()),
           static_cast<uLong>(raw.size()));
  z.resize(size);
  const std::string ihdr =
      be32(static_cast<uint32_t>(w)) + be32(static_cast<uint32_t>(h)) + std::string{8, 6, 0, 0, 0};
  return std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr) + chunk("IDAT", z) +
         chunk("IEND", "");
}

}  // namespace cnn::testing
