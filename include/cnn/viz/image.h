// Images for people: 8-bit grayscale and RGB rasters, reading PNG, JPEG, BMP and PGM/PPM
// (libpng, libjpeg-turbo and strict parsers of our own), writing PNG (stb), colour maps, grids of
// feature maps and titles.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "cnn/tensor.h"

namespace cnn {

struct GrayImage {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> pixels;  // row-major
  uint8_t at(int64_t x, int64_t y) const { return pixels[y * width + x]; }
};

struct RgbImage {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> rgb;  // row-major, 3 bytes a pixel
  RgbImage() = default;
  RgbImage(int64_t w, int64_t h, std::array<uint8_t, 3> background = {255, 255, 255});
  void set(int64_t x, int64_t y, std::array<uint8_t, 3> c);
  std::array<uint8_t, 3> get(int64_t x, int64_t y) const;
};

// A PNG (any bit depth, palette, alpha; 16-bit samples keep their high byte), JPEG (gray, YCbCr,
// RGB or Adobe CMYK; baseline or progressive), BMP (uncompressed 1, 4, 8, 16, 24 or 32 bits a
// pixel, BI_RGB or BI_BITFIELDS) or binary PGM/PPM (P5/P6, samples scaled from maxval to 255),
// recognised by its first bytes, converted to 8-bit gray (77 R + 150 G + 29 B) / 256; transparent
// pixels are composited onto white (v = a*v + (1-a)*255). Throws a cnn::Error naming the file and
// the problem when it is missing, unreadable or a directory, when it is truncated or inconsistent
// (never a partly decoded picture), and, before any pixel buffer is allocated, when its header
// declares more than cnn::limits::kMaxImagePixels pixels.
GrayImage read_gray_image(const std::string& path);
// The same formats as RGB (gray replicated, alpha dropped), for tests and tools.
RgbImage read_rgb_image(const std::string& path);
// Writes a PNG atomically (temporary file, then rename).
void write_png(const std::string& path, const RgbImage& image);

enum class Colormap { Gray, Viridis };
std::array<uint8_t, 3> colormap(Colormap map, float t);  // t in [0, 1]

// Text in a simple bitmap font (stb_easy_font), `scale` pixels per font pixel.
void draw_text(RgbImage& image, int64_t x, int64_t y, const std::string& text, int64_t scale,
               std::array<uint8_t, 3> color = {0, 0, 0});
int64_t text_width(const std::string& text, int64_t scale);

// maps: (C, H, W). Lays out the C maps row by row in a grid_rows x grid_cols grid, each
// min-max normalised on its own (as matplotlib's imshow does), upscaled `scale` times with
// nearest neighbours, coloured with `map`, under a title.
RgbImage render_grid(const Tensor& maps, int64_t grid_rows, int64_t grid_cols, Colormap map,
                     int64_t scale, const std::string& title);

}  // namespace cnn
