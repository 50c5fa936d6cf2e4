// Image folders (torchvision's ImageFolder layout): classes, order and labels; pixels exactly,
// gray, RGB, RGBA and PGM, luma as PIL computes it, resizing; bad images as errors or skipped;
// the cache reused without opening an image, rebuilt when a file or the cache itself changes;
// the train/test layouts; the limits. Every picture is made here, a few pixels each.
#include <unistd.h>
#include <zlib.h>

#include <array>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "cnn/data/image_folder.h"
#include "cnn/limits.h"
#include "cnn/viz/image.h"
#include "png_bytes.h"
#include "testing.h"

namespace cnn::testing {
namespace {

namespace fs = std::filesystem;

void write_bytes(const fs::path& path, const Bytes& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// A W x H picture whose pixel (x, y) is f(x, y), in each format.
using Px = std::function<std::array<uint8_t, 3>(int64_t x, int64_t y)>;
void rgb_png(const fs::path& path, int64_t w, int64_t h, const Px& f) {
  fs::create_directories(path.parent_path());
  RgbImage img(w, h);
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) img.set(x, y, f(x, y));
  }
  write_png(path.string(), img);
}
void gray_png(const fs::path& path, uint32_t w, uint32_t h,
              const std::function<uint8_t(int64_t, int64_t)>& f) {
  std::vector<uint8_t> s;
  for (uint32_t y = 0; y < h; ++y) {
    for (uint32_t x = 0; x < w; ++x) s.push_back(f(x, y));
  }
  write_bytes(path, encode_png(w, h, 0, s));
}
void pgm(const fs::path& path, int w, int h, uint8_t v) {
  write_bytes(path, "P5\n" + std::to_string(w) + " " + std::to_string(h) + "\n255\n" +
                        Bytes(static_cast<std::size_t>(w * h), char(v)));
}

// The pixels of the standard tree (SetUp), 4 x 3 unless said.
std::array<uint8_t, 3> a_px(int64_t x, int64_t y) {  // cat/a.png, colour
  return {uint8_t(10 * x + 1), uint8_t(20 * y + 2), uint8_t(30 + x + y)};
}
uint8_t b_px(int64_t x, int64_t y) { return uint8_t(100 + x + 4 * y); }  // cat/b.png, gray
std::array<uint8_t, 4> c_px(int64_t x, int64_t y) {                      // dog/c.PNG, RGBA
  return {200, 50, uint8_t(25 + x), uint8_t(60 * y + x)};
}
constexpr std::array<uint8_t, 3> kZ = {12, 34, 56};  // dog/z.png, 6 x 5, one colour
constexpr uint8_t kD = 77;                           // dog/sub/d.pgm, 8 x 6, one value

// What a call throws, or "" when it returns.
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
#define EXPECT_ERROR(call, text)                                                \
  do {                                                                          \
    const std::string message_ = error_of([&] { call; });                       \
    EXPECT_NE(message_.find(text), std::string::npos) << "error: " << message_; \
  } while (0)

class ImageFolder : public ::testing::Test {
 protected:
  fs::path root, data, cache;
  void SetUp() override {
    root = fresh_test_dir("cnn_image_folder");
    data = root / "data";
    cache = root / "cache";
    // data/cat/{a.png (RGB), b.png (gray), notes.txt, .hidden.png},
    // data/dog/{c.PNG (RGBA), z.png (6 x 5), sub/d.pgm (8 x 6)}, data/.git/x.png.
    rgb_png(data / "cat" / "a.png", 4, 3, a_px);
    gray_png(data / "cat" / "b.png", 4, 3, b_px);
    write_bytes(data / "cat" / "notes.txt", "not an image");
    write_bytes(data / "cat" / ".hidden.png", "not an image either");
    std::vector<uint8_t> c;
    for (int y = 0; y < 3; ++y) {
      for (int x = 0; x < 4; ++x) {
        for (uint8_t v : c_px(x, y)) c.push_back(v);
      }
    }
    write_bytes(data / "dog" / "c.PNG", encode_png(4, 3, 6, c));
    rgb_png(data / "dog" / "z.png", 6, 5, [](int64_t, int64_t) { return kZ; });
    pgm(data / "dog" / "sub" / "d.pgm", 8, 6, kD);
    write_bytes(data / ".git" / "x.png", "hidden folder");
  }
  void TearDown() override { fs::remove_all(root); }

  ImageFolderOptions cached(int64_t channels = 0) const {
    ImageFolderOptions o;
    o.channels = channels;
    o.cache_dir = cache.string();
    return o;
  }
};

// The dataset's order: class by class; in a class, torchvision's: folder, then file name.
const std::vector<std::string> kFiles = {"cat/a.png", "cat/b.png", "dog/c.PNG", "dog/z.png",
                                         "dog/sub/d.pgm"};

TEST_F(ImageFolder, ClassesOrderAndLabels) {
  ImageFolderReport r;
  const Dataset d = load_image_folder(data.string(), {}, &r);
  EXPECT_EQ(d.name, "data");
  EXPECT_EQ(d.split, "train");
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(d.num_classes, 2);
  EXPECT_EQ(d.count, 5);
  EXPECT_EQ(d.labels, (std::vector<uint8_t>{0, 0, 1, 1, 1}));
  EXPECT_EQ(r.files, kFiles);
  EXPECT_EQ(r.images, 5);
  EXPECT_EQ(r.decoded, 5);
  EXPECT_EQ(r.skipped, 0);
  EXPECT_FALSE(r.from_cache);
  EXPECT_TRUE(r.cache_file.empty());
  // The first image's size, and colour since one image is.
  EXPECT_EQ(d.image_shape(), (Shape{3, 3, 4}));
  EXPECT_EQ(d.pixels.size(), 5u * 3 * 3 * 4);

  ImageFolderOptions o;
  o.split = "test";
  EXPECT_EQ(load_image_folder((data / "").string(), o).split, "test");
  EXPECT_EQ(load_image_folder((data / "").string(), o).name, "data");
  // A split's folder is named after its dataset.
  fs::rename(data, root / "train");
  EXPECT_EQ(load_image_folder((root / "train").string()).name, root.filename().string());
}

// (C, H, W) planes: image i's channel c at (x, y).
uint8_t at(const Dataset& d, int64_t i, int64_t c, int64_t x, int64_t y) {
  return d.image(i)[(c * d.rows + y) * d.cols + x];
}

TEST_F(ImageFolder, RgbPixelsExactly) {
  ImageFolderOptions o;
  o.channels = 3;
  const Dataset d = load_image_folder(data.string(), o);
  ASSERT_EQ(d.image_shape(), (Shape{3, 3, 4}));
  for (int64_t y = 0; y < 3; ++y) {
    for (int64_t x = 0; x < 4; ++x) {
      for (int64_t c = 0; c < 3; ++c) {
        SCOPED_TRACE("x " + std::to_string(x) + " y " + std::to_string(y) + " c " +
                     std::to_string(c));
        EXPECT_EQ(at(d, 0, c, x, y), a_px(x, y)[c]);
        EXPECT_EQ(at(d, 1, c, x, y), b_px(x, y));     // gray replicated
        EXPECT_EQ(at(d, 2, c, x, y), c_px(x, y)[c]);  // alpha dropped, not composited
        EXPECT_EQ(at(d, 3, c, x, y), kZ[c]);          // resized from 6 x 5
        EXPECT_EQ(at(d, 4, c, x, y), kD);             // resized from 8 x 6
      }
    }
  }
}

TEST_F(ImageFolder, GrayPixelsAndPilLuma) {
  ImageFolderOptions o;
  o.channels = 1;
  const Dataset d = load_image_folder(data.string(), o);
  ASSERT_EQ(d.image_shape(), (Shape{1, 3, 4}));
  // PIL's convert("L"): (19595 R + 38470 G + 7471 B + 32768) >> 16.
  const auto pil = [](std::array<uint8_t, 3> p) {
    return uint8_t((p[0] * 19595 + p[1] * 38470 + p[2] * 7471 + 32768) >> 16);
  };
  for (int64_t y = 0; y < 3; ++y) {
    for (int64_t x = 0; x < 4; ++x) {
      EXPECT_EQ(at(d, 0, 0, x, y), pil(a_px(x, y)));
      EXPECT_EQ(at(d, 1, 0, x, y), b_px(x, y));  // gray kept exactly
      EXPECT_EQ(at(d, 3, 0, x, y), pil(kZ));
      EXPECT_EQ(at(d, 4, 0, x, y), kD);
    }
  }
  // Values PIL gives: Image.new("RGB", (1, 1), colour).convert("L").
  const fs::path folder = root / "luma";
  const std::vector<std::array<uint8_t, 3>> colours = {{255, 0, 0},     {0, 255, 0},   {0, 0, 255},
                                                       {255, 255, 255}, {10, 200, 30}, {1, 2, 3}};
  rgb_png(folder / "x" / "p.png", 6, 1, [&](int64_t x, int64_t) { return colours[x]; });
  const Dataset l = load_image_folder(folder.string(), o);
  EXPECT_EQ(std::vector<uint8_t>(l.pixels.begin(), l.pixels.end()),
            (std::vector<uint8_t>{76, 150, 29, 255, 124, 2}));
}

TEST_F(ImageFolder, ChannelsFromTheImages) {
  // Gray only: one channel.
  const fs::path g = root / "gray";
  gray_png(g / "k" / "1.png", 4, 3, b_px);
  pgm(g / "k" / "2.pgm", 4, 3, kD);
  EXPECT_EQ(load_image_folder(g.string()).channels, 1);
  // A gray picture saved as RGB is gray.
  rgb_png(g / "k" / "3.png", 4, 3, [](int64_t x, int64_t) {
    return std::array<uint8_t, 3>{uint8_t(x), uint8_t(x), uint8_t(x)};
  });
  EXPECT_EQ(load_image_folder(g.string()).channels, 1);
  // A colour image after gray ones: three, the gray ones replicated.
  rgb_png(g / "k" / "4.png", 4, 3, a_px);
  const Dataset d = load_image_folder(g.string());
  ASSERT_EQ(d.channels, 3);
  for (int64_t c = 0; c < 3; ++c) {
    EXPECT_EQ(at(d, 0, c, 3, 2), b_px(3, 2));
    EXPECT_EQ(at(d, 1, c, 1, 1), kD);
    EXPECT_EQ(at(d, 2, c, 2, 0), 2);
    EXPECT_EQ(at(d, 3, c, 3, 1), a_px(3, 1)[c]);
  }
}

TEST_F(ImageFolder, ResizesToTheGivenSize) {
  ImageFolderOptions o;
  o.rows = 2;
  o.cols = 5;
  const Dataset d = load_image_folder(data.string(), o);
  EXPECT_EQ(d.image_shape(), (Shape{3, 2, 5}));
  EXPECT_EQ(d.pixels.size(), 5u * 3 * 2 * 5);
  for (int64_t y = 0; y < 2; ++y) {
    for (int64_t x = 0; x < 5; ++x) {
      for (int64_t c = 0; c < 3; ++c) EXPECT_EQ(at(d, 3, c, x, y), kZ[c]);
    }
  }
  // A gradient resized is neither its first nor its last column everywhere.
  EXPECT_NE(at(d, 0, 0, 0, 0), at(d, 0, 0, 4, 0));
}

TEST_F(ImageFolder, BadImageIsAnErrorOrSkipped) {
  const Bytes good = encode_png(4, 3, 0, std::vector<uint8_t>(12, 9));
  write_bytes(data / "cat" / "bad.png", good.substr(0, good.size() - 20));  // truncated
  EXPECT_ERROR(load_image_folder(data.string()), (data / "cat" / "bad.png").string());

  ImageFolderOptions o;
  o.skip_bad = true;
  ImageFolderReport r;
  const Dataset d = load_image_folder(data.string(), o, &r);
  EXPECT_EQ(d.count, 5);
  EXPECT_EQ(r.images, 6);
  EXPECT_EQ(r.decoded, 5);
  EXPECT_EQ(r.skipped, 1);
  EXPECT_EQ(r.skipped_files, (std::vector<std::string>{"cat/bad.png"}));
  ASSERT_EQ(r.skip_reasons.size(), 1u);
  EXPECT_NE(r.skip_reasons[0].find("bad.png"), std::string::npos) << r.skip_reasons[0];
  EXPECT_EQ(r.files, kFiles);
  EXPECT_EQ(d.labels, (std::vector<uint8_t>{0, 0, 1, 1, 1}));

  // Skipped from the cache too.
  ImageFolderOptions oc = cached();
  oc.skip_bad = true;
  load_image_folder(data.string(), oc);
  ImageFolderReport rc;
  const Dataset dc = load_image_folder(data.string(), oc, &rc);
  EXPECT_TRUE(rc.from_cache);
  EXPECT_EQ(rc.skipped_files, r.skipped_files);
  EXPECT_EQ(rc.skip_reasons, r.skip_reasons);
  EXPECT_EQ(rc.files, kFiles);
  EXPECT_EQ(dc.pixels, d.pixels);

  // Nothing left.
  const fs::path all_bad = root / "bad";
  write_bytes(all_bad / "k" / "1.png", good.substr(0, 30));
  EXPECT_ERROR(load_image_folder(all_bad.string(), o), "none of its 1 images could be read");
}

TEST_F(ImageFolder, CacheIsUsedWithoutOpeningAnImage) {
  ImageFolderReport r1, r2, r3;
  const Dataset d1 = load_image_folder(data.string(), cached(), &r1);
  EXPECT_FALSE(r1.from_cache);
  EXPECT_EQ(r1.decoded, 5);
  ASSERT_TRUE(fs::is_regular_file(r1.cache_file)) << r1.cache_file;
  EXPECT_EQ(fs::path(r1.cache_file).parent_path(), cache);

  const Dataset d2 = load_image_folder(data.string(), cached(), &r2);
  EXPECT_TRUE(r2.from_cache);
  EXPECT_EQ(r2.decoded, 0);
  EXPECT_EQ(r2.images, 5);
  EXPECT_EQ(r2.files, kFiles);
  EXPECT_EQ(d2.pixels, d1.pixels);
  EXPECT_EQ(d2.labels, d1.labels);
  EXPECT_EQ(d2.class_names, d1.class_names);
  EXPECT_EQ(d2.image_shape(), d1.image_shape());
  EXPECT_EQ(d2.name, "data");

  // Garbage of the same size and time in place of cat/b.png: the cache is still used, with the
  // old pixels, so nothing was decoded (decoding it fails, as the last load shows).
  const fs::path b = data / "cat" / "b.png";
  const auto size = fs::file_size(b);
  const auto time = fs::last_write_time(b);
  write_bytes(b, Bytes(size, 'x'));
  fs::last_write_time(b, time);
  const Dataset d3 = load_image_folder(data.string(), cached(), &r3);
  EXPECT_TRUE(r3.from_cache);
  EXPECT_EQ(d3.pixels, d1.pixels);
  EXPECT_ERROR(load_image_folder(data.string()), b.string());
}

TEST_F(ImageFolder, ChangedFileRebuildsTheCache) {
  const fs::path b = data / "cat" / "b.png";
  const Dataset d1 = load_image_folder(data.string(), cached(1));
  const auto time = fs::last_write_time(b);

  // Another size, the same time.
  gray_png(b, 4, 3, [](int64_t, int64_t) { return uint8_t(201); });
  fs::last_write_time(b, time);
  ImageFolderReport r;
  const Dataset d2 = load_image_folder(data.string(), cached(1), &r);
  EXPECT_FALSE(r.from_cache);
  EXPECT_EQ(r.decoded, 5);
  EXPECT_EQ(at(d2, 1, 0, 2, 1), 201);
  EXPECT_NE(d2.pixels, d1.pixels);
  load_image_folder(data.string(), cached(1), &r);
  EXPECT_TRUE(r.from_cache);

  // The same size, another time.
  const auto size = fs::file_size(b);
  gray_png(b, 4, 3, [](int64_t, int64_t) { return uint8_t(202); });
  ASSERT_EQ(fs::file_size(b), size);
  fs::last_write_time(b, time + std::chrono::seconds(3));
  const Dataset d3 = load_image_folder(data.string(), cached(1), &r);
  EXPECT_FALSE(r.from_cache);
  EXPECT_EQ(at(d3, 1, 0, 2, 1), 202);

  // A new image, and one removed.
  gray_png(data / "cat" / "b2.png", 4, 3, b_px);
  const Dataset d4 = load_image_folder(data.string(), cached(1), &r);
  EXPECT_FALSE(r.from_cache);
  EXPECT_EQ(d4.count, 6);
  fs::remove(data / "cat" / "b2.png");
  const Dataset d5 = load_image_folder(data.string(), cached(1), &r);
  EXPECT_FALSE(r.from_cache);
  EXPECT_EQ(d5.pixels, d3.pixels);
}

TEST_F(ImageFolder, DamagedCacheIsRebuilt) {
  ImageFolderReport r;
  const Dataset good = load_image_folder(data.string(), cached(), &r);
  const fs::path file = r.cache_file;
  Bytes bytes;
  {
    std::ifstream in(file, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_EQ(bytes.size(), 72 + 5 + good.pixels.size() + 4);
  const auto flip = [&](std::size_t at) {
    Bytes b = bytes;
    b[at] = char(b[at] ^ 0x40);
    return b;
  };
  const std::vector<std::pair<std::string, Bytes>> damaged = {
      {"a pixel", flip(72 + 5 + 17)},
      {"a label", flip(72 + 1)},
      {"the version", flip(8)},
      {"the manifest hash", flip(16)},
      {"the count's high byte", flip(24 + 7)},
      {"the rows' high byte", flip(40 + 7)},
      {"the CRC", flip(bytes.size() - 1)},
      {"cut by a byte", bytes.substr(0, bytes.size() - 1)},
      {"cut to its header", bytes.substr(0, 72)},
      {"empty", ""},
      {"a byte more", bytes + "x"},
  };
  for (const auto& [what, b] : damaged) {
    SCOPED_TRACE(what);
    write_bytes(file, b);
    const Dataset d = load_image_folder(data.string(), cached(), &r);
    EXPECT_FALSE(r.from_cache);
    EXPECT_EQ(r.decoded, 5);
    EXPECT_EQ(d.pixels, good.pixels);
    EXPECT_EQ(d.labels, good.labels);
    load_image_folder(data.string(), cached(), &r);  // rewritten whole
    EXPECT_TRUE(r.from_cache);
  }
}

TEST_F(ImageFolder, FoldersAndOptionsSharingACacheFolder) {
  const fs::path other = root / "other";
  gray_png(other / "k" / "1.png", 2, 2, [](int64_t, int64_t) { return uint8_t(5); });
  ImageFolderReport r1, r2, r3;
  const Dataset d1 = load_image_folder(data.string(), cached(), &r1);
  const Dataset d2 = load_image_folder(other.string(), cached(), &r2);
  const Dataset d3 = load_image_folder(data.string(), cached(1), &r3);
  EXPECT_NE(r1.cache_file, r2.cache_file);
  EXPECT_NE(r1.cache_file, r3.cache_file);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(load_image_folder(data.string(), cached(), &r1).pixels, d1.pixels);
    EXPECT_EQ(load_image_folder(other.string(), cached(), &r2).pixels, d2.pixels);
    EXPECT_EQ(load_image_folder(data.string(), cached(1), &r3).pixels, d3.pixels);
    EXPECT_TRUE(r1.from_cache && r2.from_cache && r3.from_cache);
  }
  EXPECT_EQ(d2.pixels, std::vector<uint8_t>(4, 5));
}

TEST_F(ImageFolder, FindFolderSplits) {
  // Class folders only: one split, divided by the caller.
  FolderSplits s = find_folder_splits(data.string());
  EXPECT_EQ(s.train, data.string());
  EXPECT_EQ(s.test, "");
  // train/ and test/, or train/ and val/.
  const fs::path both = root / "both";
  gray_png(both / "train" / "k" / "1.png", 1, 1, b_px);
  EXPECT_ERROR(find_folder_splits(both.string()), "train/ but no test/");
  gray_png(both / "val" / "k" / "1.png", 1, 1, b_px);
  s = find_folder_splits(both.string());
  EXPECT_EQ(s.train, (both / "train").string());
  EXPECT_EQ(s.test, (both / "val").string());
  gray_png(both / "test" / "k" / "1.png", 1, 1, b_px);
  s = find_folder_splits(both.string());
  EXPECT_EQ(s.test, (both / "test").string());
  fs::remove_all(both / "train");
  EXPECT_ERROR(find_folder_splits(both.string()), "test/ but no train/");
  // Nothing usable.
  const fs::path empty = root / "empty";
  write_bytes(empty / "readme.txt", "x");
  fs::create_directories(empty / ".cache");
  EXPECT_ERROR(find_folder_splits(empty.string()), empty.string() + ": no class folders");
  EXPECT_ERROR(find_folder_splits((root / "missing").string()),
               (root / "missing").string() + ": image folder not found");
}

TEST_F(ImageFolder, GivenClassNames) {
  // A test split holding some of the training split's classes keeps the training labels.
  const fs::path test = root / "test";
  gray_png(test / "dog" / "1.png", 4, 3, b_px);
  ImageFolderOptions o;
  o.class_names = {"cat", "dog", "emu"};
  const Dataset d = load_image_folder(test.string(), o);
  EXPECT_EQ(d.num_classes, 3);
  EXPECT_EQ(d.class_names, o.class_names);
  EXPECT_EQ(d.labels, (std::vector<uint8_t>{1}));
  // Given in another order: that order.
  o.class_names = {"dog", "cat"};
  EXPECT_EQ(load_image_folder(data.string(), o).labels, (std::vector<uint8_t>{1, 1, 0, 0, 0}));
  // A folder that is not a given class.
  gray_png(test / "fox" / "1.png", 4, 3, b_px);
  o.class_names = {"cat", "dog"};
  EXPECT_ERROR(load_image_folder(test.string(), o), (test / "fox").string() + ": the folder 'fox'");
  o.class_names = {"cat", "dog", "cat"};
  EXPECT_ERROR(load_image_folder(data.string(), o), "'cat' is given twice");
}

TEST_F(ImageFolder, EmptyFoldersAreErrors) {
  EXPECT_ERROR(load_image_folder((root / "missing").string()), "missing: image folder not found");
  const fs::path flat = root / "flat";
  gray_png(flat / "1.png", 1, 1, b_px);
  fs::create_directories(flat / ".hidden");
  EXPECT_ERROR(load_image_folder(flat.string()), flat.string() + ": no class folders");
  EXPECT_ERROR(load_image_folder((flat / "1.png").string()), "1.png: not a folder");
  // A class folder with other files only, hidden images included.
  write_bytes(data / "emu" / "notes.txt", "x");
  write_bytes(data / "emu" / ".x.png", "x");
  EXPECT_ERROR(load_image_folder(data.string()),
               (data / "emu").string() + ": the class folder holds no image files");
}

TEST_F(ImageFolder, Limits) {
  ImageFolderOptions o;
  o.channels = 2;
  EXPECT_ERROR(load_image_folder(data.string(), o), "channels is 2");
  o = {};
  o.rows = 3;
  EXPECT_ERROR(load_image_folder(data.string(), o), "the size is 3 x 0");
  o.rows = o.cols = 8193;
  EXPECT_ERROR(load_image_folder(data.string(), o), "more than the limit of 67108864 pixels");
  o = {};
  for (int i = 0; i <= limits::kMaxFolderClasses; ++i) o.class_names.push_back(std::to_string(i));
  EXPECT_ERROR(load_image_folder(data.string(), o), "257 class names given");

  // One class folder more than uint8 labels hold.
  const fs::path many = root / "many";
  const Bytes tiny = encode_png(1, 1, 0, {7});
  for (int i = 0; i <= limits::kMaxFolderClasses; ++i) {
    write_bytes(many / ("c" + std::to_string(i)) / "1.png", tiny);
  }
  EXPECT_ERROR(load_image_folder(many.string()), "257 class folders, more than the 256");
  fs::remove_all(many / "c0");
  EXPECT_EQ(load_image_folder(many.string()).num_classes, 256);

  // Pixels over the limit are refused before anything is allocated or decoded: tiny files, but
  // a size that makes them more than kMaxFolderBytes.
  const int64_t side = 8192, n = limits::kMaxFolderBytes / (3 * side * side) + 1;
  const fs::path big = root / "big";
  for (int64_t i = 0; i < n; ++i) write_bytes(big / "k" / (std::to_string(i) + ".png"), "x");
  o = {};
  o.channels = 3;
  o.rows = o.cols = side;
  EXPECT_ERROR(load_image_folder(big.string(), o), "(cnn::limits::kMaxFolderBytes)");
}

}  // namespace
}  // namespace cnn::testing
