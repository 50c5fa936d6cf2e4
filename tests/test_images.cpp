// Image decoding: truncated and inconsistent files are errors, never pictures; a header that
// declares more pixels than cnn::limits::kMaxImagePixels is refused before anything is
// allocated; valid PNG, JPEG, BMP and PGM/PPM files decode to their pixels. Every file is made
// here, small: PNG by hand with zlib, JPEG with libjpeg, BMP and PGM byte by byte.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

// jpeglib.h needs FILE and size_t declared first.
#include <jpeglib.h>

#include "cnn/data/digit.h"
#include "cnn/limits.h"
#include "cnn/viz/image.h"
#include "png_bytes.h"
#include "testing.h"

namespace cnn::testing {
namespace {

namespace fs = std::filesystem;

// ---- writers ----------------------------------------------------------------------------------

Bytes le32(uint32_t v) {
  return {char(v & 0xff), char(v >> 8 & 0xff), char(v >> 16), char(v >> 24)};
}
Bytes le16(uint16_t v) { return {char(v & 0xff), char(v >> 8)}; }

// A JPEG of 8-bit samples, 1 (gray) or 3 (RGB, stored as YCbCr) components.
Bytes encode_jpeg(int w, int h, int components, const std::vector<uint8_t>& samples,
                  int quality = 95) {
  jpeg_compress_struct c{};
  jpeg_error_mgr err{};
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* out = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &out, &size);
  c.image_width = static_cast<JDIMENSION>(w);
  c.image_height = static_cast<JDIMENSION>(h);
  c.input_components = components;
  c.in_color_space = components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, quality, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(&samples[std::size_t{c.next_scanline} * w * components]);
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  Bytes bytes(reinterpret_cast<const char*>(out), size);
  std::free(out);
  return bytes;
}

// A BMP with a 40-byte BITMAPINFOHEADER; `pixels` holds the rows as stored (padded to 4 bytes),
// `tail` comes between the header and the pixel data (masks, palette).
Bytes encode_bmp(int32_t w, int32_t h, int bpp, uint32_t compression, const Bytes& tail,
                 const Bytes& pixels, uint32_t colours_used = 0) {
  const uint32_t offset = 14 + 40 + static_cast<uint32_t>(tail.size());
  return "BM" + le32(offset + static_cast<uint32_t>(pixels.size())) + le32(0) + le32(offset) +
         le32(40) + le32(static_cast<uint32_t>(w)) + le32(static_cast<uint32_t>(h)) + le16(1) +
         le16(static_cast<uint16_t>(bpp)) + le32(compression) +
         le32(static_cast<uint32_t>(pixels.size())) + le32(2835) + le32(2835) + le32(colours_used) +
         le32(0) + tail + pixels;
}

// A smooth pattern that JPEG keeps within a few levels at high quality.
uint8_t pattern(int64_t x, int64_t y, int c = 0) {
  return static_cast<uint8_t>(40 + (x * 5 + y * 3 + c * 50) % 170);
}

// stb_image's luma, which gray pictures were read with before and still are.
uint8_t luma(int r, int g, int b) { return static_cast<uint8_t>((r * 77 + g * 150 + b * 29) >> 8); }

class Images : public ::testing::Test {
 protected:
  fs::path dir;
  void SetUp() override {
    dir = fs::path(::testing::TempDir()) /
          ("cnn_images_" +
           std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
           std::to_string(getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  std::string write(const std::string& name, const Bytes& bytes) const {
    const std::string path = (dir / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
};

const std::string kLimit = std::to_string(limits::kMaxImagePixels);

// Reads an image in a child (EXPECT_EXIT) whose address space may grow by 32 MiB only, where an
// allocation of a big declared size would fail: exits 0 on a cnn::Error, printing it.
void read_capped(const std::string& path) {
  exit_after_capped([&] { read_gray_image(path); });
}

// ---- valid files ------------------------------------------------------------------------------

TEST_F(Images, PngGrayRgbRgbaAnd16BitDecodeExactly) {
  const int w = 13, h = 7;  // odd sizes: no row is a multiple of 4 bytes
  Bytes gray, rgb, rgba, gray16;
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      gray += char(pattern(x, y));
      for (int c = 0; c < 3; ++c) rgb += char(pattern(x, y, c));
      for (int c = 0; c < 3; ++c) rgba += char(pattern(x, y, c));
      rgba += char(x * 20);  // alpha 0 at the left, 240 at the right
      gray16 += char(pattern(x, y)) + Bytes{char(0xff - x)};  // the low byte is cut
    }
  }
  const std::string pg = write("gray.png", encode_png(w, h, 8, 0, gray));
  const std::string pc = write("rgb.png", encode_png(w, h, 8, 2, rgb));
  const std::string pa = write("rgba.png", encode_png(w, h, 8, 6, rgba));
  const std::string p16 = write("gray16.png", encode_png(w, h, 16, 0, gray16));
  const GrayImage g = read_gray_image(pg), c = read_gray_image(pc), a = read_gray_image(pa),
                  g16 = read_gray_image(p16);
  const RgbImage rc = read_rgb_image(pc), ra = read_rgb_image(pa), rg = read_rgb_image(pg);
  for (const GrayImage* i : {&g, &c, &a, &g16}) {
    ASSERT_EQ(i->width, w);
    ASSERT_EQ(i->height, h);
  }
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const int r0 = pattern(x, y, 0), g0 = pattern(x, y, 1), b0 = pattern(x, y, 2);
      const int al = x * 20, v = luma(r0, g0, b0);
      EXPECT_EQ(g.at(x, y), pattern(x, y));
      EXPECT_EQ(g16.at(x, y), pattern(x, y));
      EXPECT_EQ(c.at(x, y), v);
      EXPECT_EQ(a.at(x, y), (al * v + (255 - al) * 255 + 127) / 255) << "composited on white";
      EXPECT_EQ(rc.get(x, y), (std::array<uint8_t, 3>{uint8_t(r0), uint8_t(g0), uint8_t(b0)}));
      EXPECT_EQ(ra.get(x, y), rc.get(x, y)) << "alpha dropped";
      EXPECT_EQ(rg.get(x, y), (std::array<uint8_t, 3>{g.at(x, y), g.at(x, y), g.at(x, y)}));
    }
  }
}

TEST_F(Images, PngPaletteTransparencyAndOneBitGray) {
  // 2x2, palette of 3 (black, red, white), red half transparent through tRNS.
  const Bytes plte =
      png_chunk("PLTE", Bytes{0, 0, 0, char(255), 0, 0, char(255), char(255), char(255)});
  const Bytes trns = png_chunk("tRNS", Bytes{char(255), char(128)});
  const std::string pal =
      write("palette.png", encode_png(2, 2, 8, 3, Bytes{0, 1, 2, 0}, plte + trns));
  const GrayImage g = read_gray_image(pal);
  EXPECT_EQ(g.pixels,
            (std::vector<uint8_t>{0, uint8_t((128 * 76 + 127 * 255 + 127) / 255), 255, 0}));
  EXPECT_EQ(read_rgb_image(pal).get(1, 0), (std::array<uint8_t, 3>{255, 0, 0}));
  // 1-bit gray: 0 is black, 1 white; 10 pixels a row in 2 bytes.
  const std::string bit = write("bit.png", encode_png(10, 1, 1, 0, Bytes{char(0xa0), char(0x40)}));
  EXPECT_EQ(read_gray_image(bit).pixels,
            (std::vector<uint8_t>{255, 0, 255, 0, 0, 0, 0, 0, 0, 255}));
}

TEST_F(Images, JpegGrayAndColourDecodeToTheirPixels) {
  const int w = 24, h = 17;
  std::vector<uint8_t> gray, rgb;
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      gray.push_back(pattern(x, y));
      for (int c = 0; c < 3; ++c) rgb.push_back(c == 0 ? pattern(x, y) : 128);
    }
  }
  const std::string pg = write("gray.jpg", encode_jpeg(w, h, 1, gray, 100));
  const std::string pc = write("rgb.jpg", encode_jpeg(w, h, 3, rgb, 100));
  const GrayImage g = read_gray_image(pg), c = read_gray_image(pc);
  const RgbImage rc = read_rgb_image(pc);
  ASSERT_EQ(g.width, w);
  ASSERT_EQ(g.height, h);
  ASSERT_EQ(c.width, w);
  ASSERT_EQ(rc.height, h);
  // Lossy: quality 100 keeps a smooth pattern within a few levels (chroma is subsampled).
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      EXPECT_NEAR(g.at(x, y), pattern(x, y), 3) << x << "," << y;
      EXPECT_NEAR(c.at(x, y), luma(pattern(x, y), 128, 128), 3) << x << "," << y;
      EXPECT_NEAR(rc.get(x, y)[0], pattern(x, y), 8) << x << "," << y;
      EXPECT_NEAR(rc.get(x, y)[1], 128, 8) << x << "," << y;
    }
  }
}

TEST_F(Images, BmpEightTwentyFourAndThirtyTwoBitsDecodeExactly) {
  // 24 bits, bottom-up, 3 pixels a row: 9 bytes padded to 12.
  Bytes px24;
  for (int y = 1; y >= 0; --y) {
    for (int x = 0; x < 3; ++x) px24 += Bytes{char(x * 10), char(y * 100), char(200)};  // BGR
    px24 += Bytes(3, '\0');
  }
  const std::string p24 = write("24.bmp", encode_bmp(3, 2, 24, 0, "", px24));
  const RgbImage r24 = read_rgb_image(p24);
  ASSERT_EQ(r24.width, 3);
  ASSERT_EQ(r24.height, 2);
  EXPECT_EQ(r24.get(2, 1), (std::array<uint8_t, 3>{200, 100, 20}));
  EXPECT_EQ(r24.get(0, 0), (std::array<uint8_t, 3>{200, 0, 0}));
  EXPECT_EQ(read_gray_image(p24).at(2, 1), luma(200, 100, 20));

  // 8 bits with a palette of 2, top-down (negative height), 5 pixels a row.
  const Bytes palette = Bytes{0, 0, 0, 0} + Bytes{char(255), char(255), char(255), 0};
  const Bytes px8 = Bytes{0, 1, 0, 1, 1, 0, 0, 0} + Bytes{1, 1, 1, 1, 0, 0, 0, 0};
  const std::string p8 = write("8.bmp", encode_bmp(5, -2, 8, 0, palette, px8, 2));
  EXPECT_EQ(read_gray_image(p8).pixels,
            (std::vector<uint8_t>{0, 255, 0, 255, 255, 255, 255, 255, 255, 0}));

  // 32 bits, BI_BITFIELDS with an alpha mask (BITMAPV5-style masks after a 40-byte header:
  // BI_ALPHABITFIELDS), one opaque black pixel and one transparent one: composited on white.
  const Bytes masks = le32(0x00ff0000) + le32(0x0000ff00) + le32(0x000000ff) + le32(0xff000000);
  const Bytes px32 = le32(0xff000000) + le32(0x00000000);
  const std::string p32 = write("32.bmp", encode_bmp(2, 1, 32, 6, masks, px32));
  EXPECT_EQ(read_gray_image(p32).pixels, (std::vector<uint8_t>{0, 255}));
  // 32 bits BI_RGB with the fourth byte zero everywhere, as many writers leave it: opaque.
  const std::string prgb =
      write("32rgb.bmp", encode_bmp(2, 1, 32, 0, "", le32(0x00102030) + le32(0x00ffffff)));
  EXPECT_EQ(read_rgb_image(prgb).get(0, 0), (std::array<uint8_t, 3>{0x10, 0x20, 0x30}));
  EXPECT_EQ(read_gray_image(prgb).at(0, 0), luma(0x10, 0x20, 0x30));
}

TEST_F(Images, PgmAndPpmDecodeExactly) {
  const std::string pgm =
      write("a.pgm", "P5\n# a comment\n4 2\n255\n" + Bytes{0, 10, 20, 30, 40, 50, 60, char(255)});
  EXPECT_EQ(read_gray_image(pgm).pixels, (std::vector<uint8_t>{0, 10, 20, 30, 40, 50, 60, 255}));
  // 16-bit samples and a maxval that is not 2^n - 1: scaled to [0, 255].
  const std::string p16 = write("16.pgm", "P5 2 1 1000\n" + Bytes{0, 0, 0x03, char(0xe8)});
  EXPECT_EQ(read_gray_image(p16).pixels, (std::vector<uint8_t>{0, 255}));
  const std::string p4 = write("4.pgm", "P5 3 1 3\n" + Bytes{0, 1, 3});
  EXPECT_EQ(read_gray_image(p4).pixels, (std::vector<uint8_t>{0, 85, 255}));
  const std::string ppm = write("a.ppm", "P6 1 1 255\n" + Bytes{char(200), 100, 20});
  EXPECT_EQ(read_rgb_image(ppm).get(0, 0), (std::array<uint8_t, 3>{200, 100, 20}));
  EXPECT_EQ(read_gray_image(ppm).at(0, 0), luma(200, 100, 20));
}

// ---- truncated, inconsistent and oversized files ----------------------------------------------

TEST_F(Images, TruncatedPngIsAnError) {
  Bytes gray;
  for (int i = 0; i < 64 * 64; ++i) gray += char(i * 7919 % 251);  // compresses poorly
  const Bytes png = encode_png(64, 64, 8, 0, gray);
  ASSERT_EQ(read_gray_image(write("whole.png", png)).width, 64);
  for (const std::size_t keep : {std::size_t{20}, png.size() / 2, png.size() - 12}) {
    const std::string path = write("cut" + std::to_string(keep) + ".png", png.substr(0, keep));
    expect_error([&] { read_gray_image(path); }, {path, "PNG", "truncated"});
    expect_error([&] { read_rgb_image(path); }, {path, "PNG", "truncated"});
  }
  // The IDAT holds fewer rows than the header declares: cut the zlib stream's data, not the file.
  Bytes half;
  for (int i = 0; i < 64 * 32; ++i) half += char(i % 251);
  Bytes short_idat = encode_png(64, 32, 8, 0, half);
  short_idat.replace(16, 8, be32(64) + be32(64));  // IHDR now says 64 rows
  const std::size_t crc_at = 8 + 8 + 13;
  short_idat.replace(crc_at, 4,
                     be32(static_cast<uint32_t>(
                         crc32(0, reinterpret_cast<const Bytef*>(short_idat.data() + 12), 17))));
  const std::string path = write("short_idat.png", short_idat);
  expect_error([&] { read_gray_image(path); }, {path, "PNG", "image data"});
}

TEST_F(Images, TruncatedJpegIsAnError) {
  std::vector<uint8_t> rgb;
  for (int i = 0; i < 40 * 30 * 3; ++i) rgb.push_back(static_cast<uint8_t>(i * 7919 % 251));
  const Bytes jpeg = encode_jpeg(40, 30, 3, rgb);
  ASSERT_EQ(read_gray_image(write("whole.jpg", jpeg)).width, 40);
  for (const std::size_t keep :
       {std::size_t{4}, std::size_t{100}, jpeg.size() / 2, jpeg.size() - 2}) {
    const std::string path = write("cut" + std::to_string(keep) + ".jpg", jpeg.substr(0, keep));
    expect_error([&] { read_gray_image(path); }, {path, "JPEG", "truncated"});
    expect_error([&] { read_rgb_image(path); }, {path, "JPEG", "truncated"});
  }
}

TEST_F(Images, JpegWithABogusHuffmanTableIsAnError) {
  std::vector<uint8_t> gray(16 * 16);
  for (std::size_t i = 0; i < gray.size(); ++i) gray[i] = static_cast<uint8_t>(i);
  Bytes jpeg = encode_jpeg(16, 16, 1, gray);
  // The first DHT segment: FF C4, length, class/id, 16 code counts. Three codes of length 1
  // cannot exist (there are two); the total stays the same, so the segment still parses.
  const std::size_t dht = jpeg.find("\xff\xc4");
  ASSERT_NE(dht, Bytes::npos);
  char* counts = &jpeg[dht + 5];
  int moved = 0;
  for (int i = 15; i >= 1 && moved < 3; --i) {
    while (counts[i] > 0 && moved < 3) --counts[i], ++moved;
  }
  ASSERT_EQ(moved, 3);
  counts[0] = static_cast<char>(counts[0] + 3);
  const std::string path = write("huffman.jpg", jpeg);
  expect_error([&] { read_gray_image(path); }, {path, "JPEG", "Huffman"});
  expect_error([&] { read_rgb_image(path); }, {path, "JPEG", "Huffman"});
}

// The audit's file: 695 bytes declaring 16,711,964 x 28 pixels, which stb_image turned into a
// 1.84 GB picture of zeros in 5.7 s.
Bytes audit_bmp() {
  const Bytes bmp = encode_bmp(16711964, 28, 24, 0, "", Bytes(695 - 54, '\x7f'));
  EXPECT_EQ(bmp.size(), 695u);
  return bmp;
}

TEST_F(Images, TruncatedHugeBmpIsRefusedFromItsHeader) {
  const std::string path = write("audit.bmp", audit_bmp());
  expect_error([&] { read_gray_image(path); }, {path, "BMP", "16711964 x 28", kLimit});
  // Under the limit but with too little pixel data: refused from the header and the file's size.
  const std::string small = write("small.bmp", encode_bmp(8000, 8000, 24, 0, "", Bytes(641, 0)));
  expect_error([&] { read_gray_image(small); }, {small, "BMP", "truncated", "192000000 bytes"});
  // Both without a big allocation (1.4 GB, 192 MB declared).
  EXPECT_EXIT(read_capped(path), ::testing::ExitedWithCode(0), "limit");
  EXPECT_EXIT(read_capped(small), ::testing::ExitedWithCode(0), "truncated");
}

// Small PNG and JPEG files declaring big pictures (8000 x 8000, under the pixel limit) allocate
// what their data holds, not what their headers declare: a PNG whose file cannot hold its rows
// even at deflate's largest ratio is refused from its header; a baseline JPEG's rows are
// allocated as they are decoded, so one cut after its first blocks stops there.
TEST_F(Images, SmallFilesDeclaringBigPicturesAllocateLittle) {
  Bytes png = encode_png(8, 8, 8, 0, Bytes(64, '\x55'));
  png.replace(16, 8, be32(8000) + be32(8000));
  png.replace(
      29, 4,
      be32(static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(png.data() + 12), 17))));
  const std::string pp = write("big.png", png);
  expect_error([&] { read_gray_image(pp); }, {pp, "PNG", "truncated", "8000 x 8000"});
  EXPECT_EXIT(read_capped(pp), ::testing::ExitedWithCode(0), "truncated");

  Bytes jpeg = encode_jpeg(8, 8, 1, std::vector<uint8_t>(64, 100));
  const std::size_t sof = jpeg.find("\xff\xc0");
  ASSERT_NE(sof, Bytes::npos);
  jpeg.replace(sof + 5, 4,
               Bytes{char(8000 >> 8), char(8000 & 0xff), char(8000 >> 8), char(8000 & 0xff)});
  const std::string pj = write("big.jpg", jpeg);
  expect_error([&] { read_gray_image(pj); }, {pj, "JPEG"});
  EXPECT_EXIT(read_capped(pj), ::testing::ExitedWithCode(0), "JPEG");
}

TEST_F(Images, BmpInconsistenciesAreErrors) {
  const Bytes px = Bytes{0, 1, 2, 0};  // one row of 3 pixels, padded
  const Bytes palette2 = Bytes(8, '\0');
  const std::string index = write("index.bmp", encode_bmp(3, 1, 8, 0, palette2, px, 2));
  expect_error([&] { read_gray_image(index); }, {index, "BMP", "colour 2 of a palette of 2"});
  const std::string rle = write("rle.bmp", encode_bmp(3, 1, 8, 1, palette2, px, 2));
  expect_error([&] { read_gray_image(rle); }, {rle, "BMP", "unsupported compression 1"});
  const std::string cut = write("cut.bmp", encode_bmp(3, 1, 8, 0, palette2, px, 2).substr(0, 30));
  expect_error([&] { read_gray_image(cut); }, {cut, "BMP", "truncated"});
  const std::string zero = write("zero.bmp", encode_bmp(0, 1, 24, 0, "", Bytes(4, 0)));
  expect_error([&] { read_gray_image(zero); }, {zero, "BMP", "0 x 1 pixels"});
}

TEST_F(Images, DeclaringMoreThanTheLimitIsRefusedBeforeDecoding) {
  // One row more than 8192 x 8192: each format's header is read, nothing else.
  const uint32_t w = 8192, h = 8193;
  Bytes png = encode_png(1, 1, 8, 0, Bytes(1, '\0'));
  png.replace(16, 8, be32(w) + be32(h));
  png.replace(
      29, 4,
      be32(static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(png.data() + 12), 17))));
  const std::string pp = write("big.png", png);
  expect_error([&] { read_gray_image(pp); }, {pp, "PNG", "8192 x 8193", kLimit});

  Bytes jpeg = encode_jpeg(8, 8, 1, std::vector<uint8_t>(64, 100));
  const std::size_t sof = jpeg.find("\xff\xc0");
  ASSERT_NE(sof, Bytes::npos);
  jpeg.replace(sof + 5, 4, Bytes{char(h >> 8), char(h & 0xff), char(w >> 8), char(w & 0xff)});
  const std::string pj = write("big.jpg", jpeg);
  expect_error([&] { read_gray_image(pj); }, {pj, "JPEG", "8192 x 8193", kLimit});

  const std::string pb = write("big.bmp", encode_bmp(8192, -8193, 8, 0, "", ""));
  expect_error([&] { read_gray_image(pb); }, {pb, "BMP", "8192 x 8193", kLimit});

  const std::string pg = write("big.pgm", "P5 8192 8193 255\n" + Bytes(100, '\0'));
  expect_error([&] { read_gray_image(pg); }, {pg, "PGM", "8192 x 8193", kLimit});
}

TEST_F(Images, PgmWithShortDataOrBadHeaderIsAnError) {
  const std::string shrt = write("short.pgm", "P5 4 4 255\n" + Bytes(15, 'a'));
  expect_error([&] { read_gray_image(shrt); }, {shrt, "PGM", "truncated", "needs 16 bytes"});
  const std::string shrt16 = write("short16.pgm", "P5 2 2 65535\n" + Bytes(7, 'a'));
  expect_error([&] { read_gray_image(shrt16); }, {shrt16, "PGM", "truncated", "needs 8 bytes"});
  const std::string head = write("head.pgm", "P5 4 ");
  expect_error([&] { read_gray_image(head); }, {head, "PGM", "truncated"});
  const std::string above = write("above.pgm", "P5 2 1 100\n" + Bytes{50, char(101)});
  expect_error([&] { read_gray_image(above); }, {above, "PGM", "101, above maxval 100"});
  const std::string maxval = write("maxval.pgm", "P5 2 1 0\n" + Bytes{0, 0});
  expect_error([&] { read_gray_image(maxval); }, {maxval, "PGM", "maxval 0"});
  const std::string letters = write("letters.pgm", "P5 four 4 255\n");
  expect_error([&] { read_gray_image(letters); }, {letters, "PGM", "width is not a number"});
}

// What the audit saw: `cnn predict --image` printed a prediction for the 695-byte BMP. Now one
// line naming the file and the limit, before the checkpoint is even read.
TEST_F(Images, CliRefusesTheAuditBmp) {
  const std::string path = write("audit.bmp", audit_bmp());
  const std::string cmd = std::string(CNN_BINARY) + " predict --weights " +
                          (dir / "missing.cnnt").string() + " --image " + path + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << out;
  EXPECT_EQ(out.find("Pred"), std::string::npos) << out;
  EXPECT_NE(out.find("cnn: error: " + path + ": BMP image of 16711964 x 28 pixels"),
            std::string::npos)
      << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}

TEST(Digit, HandMadeImagesAreChecked) {
  GrayImage wrong{4, 4, std::vector<uint8_t>(15, 0)};
  expect_error([&] { preprocess_digit(wrong); }, {"4 x 4 pixels but holds 15"});
  GrayImage huge{int64_t{1} << 20, int64_t{1} << 20, {}};
  expect_error([&] { preprocess_digit(huge); }, {"more than the limit", kLimit});
}

}  // namespace
}  // namespace cnn::testing
