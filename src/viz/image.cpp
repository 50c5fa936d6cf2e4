#include "cnn/viz/image.h"

#include <stb_easy_font.h>
#include <stb_image.h>
#include <stb_image_write.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <system_error>

#include "cnn/error.h"
#include "cnn/io/file.h"

namespace cnn {

namespace {
constexpr uint8_t kViridis[256][3] = {
#include "viridis.inc"
};
}  // namespace

RgbImage::RgbImage(int64_t w, int64_t h, std::array<uint8_t, 3> background)
    : width(w), height(h), rgb(static_cast<std::size_t>(w * h * 3)) {
  for (int64_t i = 0; i < w * h; ++i) std::copy(background.begin(), background.end(), &rgb[i * 3]);
}

void RgbImage::set(int64_t x, int64_t y, std::array<uint8_t, 3> c) {
  if (x < 0 || y < 0 || x >= width || y >= height) return;
  std::copy(c.begin(), c.end(), &rgb[(y * width + x) * 3]);
}

std::array<uint8_t, 3> RgbImage::get(int64_t x, int64_t y) const {
  const uint8_t* p = &rgb[(y * width + x) * 3];
  return {p[0], p[1], p[2]};
}

namespace {

using StbPixels = std::unique_ptr<stbi_uc, void (*)(void*)>;

// Decodes with `channels` channels per pixel. The file is opened here rather than by stb, so that
// a missing, unreadable or directory path is reported as such instead of as "unknown image type".
StbPixels load_pixels(const std::string& path, int channels, int& w, int& h) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error(path + ": is a directory, not an image");
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), std::fclose);
  if (!f) {
    const int err = errno;
    const std::string why = err == ENOENT ? "no such file"
                            : err == EACCES
                                ? "permission denied"
                                : std::error_code(err, std::generic_category()).message();
    throw Error(path + ": cannot open image (" + why + ")");
  }
  int file_channels = 0;
  StbPixels data(stbi_load_from_file(f.get(), &w, &h, &file_channels, channels), stbi_image_free);
  if (!data) {
    const char* why = stbi_failure_reason();
    throw Error(path + ": cannot read image (" + std::string(why ? why : "unknown format") + ")");
  }
  return data;
}

}  // namespace

GrayImage read_gray_image(const std::string& path) {
  // Gray and alpha: a digit drawn on a transparent canvas has its background's colour only in
  // alpha (often black at alpha 0), so gray alone would read it as a blank page. Composited onto
  // white paper instead, as an image viewer shows it; opaque pixels keep their value exactly.
  int w = 0, h = 0;
  const StbPixels data = load_pixels(path, 2, w, h);
  GrayImage g;
  g.width = w;
  g.height = h;
  g.pixels.resize(static_cast<std::size_t>(w) * h);
  for (std::size_t i = 0; i < g.pixels.size(); ++i) {
    const int v = data.get()[2 * i], a = data.get()[2 * i + 1];
    g.pixels[i] = static_cast<uint8_t>((a * v + (255 - a) * 255 + 127) / 255);
  }
  return g;
}

RgbImage read_rgb_image(const std::string& path) {
  int w = 0, h = 0;
  const StbPixels data = load_pixels(path, 3, w, h);
  RgbImage img;
  img.width = w;
  img.height = h;
  img.rgb.assign(data.get(), data.get() + static_cast<std::size_t>(w) * h * 3);
  return img;
}

void write_png(const std::string& path, const RgbImage& image) {
  std::string bytes;
  const auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data),
                                               static_cast<std::size_t>(size));
  };
  if (!stbi_write_png_to_func(append, &bytes, static_cast<int>(image.width),
                              static_cast<int>(image.height), 3, image.rgb.data(),
                              static_cast<int>(image.width * 3))) {
    throw Error(path + ": cannot encode PNG");
  }
  write_file_atomically(path, bytes);
}

std::array<uint8_t, 3> colormap(Colormap map, float t) {
  t = std::clamp(std::isfinite(t) ? t : 0.0f, 0.0f, 1.0f);
  const int i = static_cast<int>(t * 255.0f + 0.5f);
  if (map == Colormap::Gray) {
    const auto v = static_cast<uint8_t>(i);
    return {v, v, v};
  }
  return {kViridis[i][0], kViridis[i][1], kViridis[i][2]};
}

int64_t text_width(const std::string& text, int64_t scale) {
  std::string copy = text;
  return stb_easy_font_width(copy.data()) * scale;
}

void draw_text(RgbImage& image, int64_t x, int64_t y, const std::string& text, int64_t scale,
               std::array<uint8_t, 3> color) {
  // stb_easy_font emits axis-aligned quads: 4 vertices of (x, y, z, rgba) each.
  struct Vertex {
    float x, y, z;
    unsigned char c[4];
  };
  std::vector<Vertex> buf(text.size() * 270 + 64);
  std::string copy = text;
  const int quads = stb_easy_font_print(0, 0, copy.data(), nullptr, buf.data(),
                                        static_cast<int>(buf.size() * sizeof(Vertex)));
  for (int q = 0; q < quads; ++q) {
    const Vertex* v = &buf[static_cast<std::size_t>(q) * 4];
    const auto x0 = static_cast<int64_t>(v[0].x), y0 = static_cast<int64_t>(v[0].y);
    const auto x1 = static_cast<int64_t>(v[2].x), y1 = static_cast<int64_t>(v[2].y);
    for (int64_t py = y0 * scale; py < y1 * scale; ++py) {
      for (int64_t px = x0 * scale; px < x1 * scale; ++px) image.set(x + px, y + py, color);
    }
  }
}

RgbImage render_grid(const Tensor& maps, int64_t grid_rows, int64_t grid_cols, Colormap map,
                     int64_t scale, const std::string& title) {
  if (maps.dim() != 3) {
    throw Error("render_grid: expected maps of shape (C, H, W), got " + shape_str(maps.shape()));
  }
  const int64_t C = maps.size(0), H = maps.size(1), W = maps.size(2);
  if (C > grid_rows * grid_cols) {
    throw Error("render_grid: " + std::to_string(C) + " maps do not fit a " +
                std::to_string(grid_rows) + "x" + std::to_string(grid_cols) + " grid");
  }
  const int64_t gap = 4, margin = 8, text_scale = 2,
                title_h = title.empty() ? 0 : 12 * text_scale + 8;
  const int64_t cell_w = W * scale, cell_h = H * scale;
  const int64_t width = std::max(2 * margin + grid_cols * cell_w + (grid_cols - 1) * gap,
                                 2 * margin + text_width(title, text_scale));
  const int64_t height = 2 * margin + title_h + grid_rows * cell_h + (grid_rows - 1) * gap;
  RgbImage img(width, height);
  if (!title.empty()) draw_text(img, margin, margin, title, text_scale);
  const int64_t left = (width - (grid_cols * cell_w + (grid_cols - 1) * gap)) / 2;
  for (int64_t c = 0; c < C; ++c) {
    const float* m = maps.data() + c * H * W;
    const auto [lo, hi] = std::minmax_element(m, m + H * W);
    const float range = *hi - *lo;
    const int64_t ox = left + (c % grid_cols) * (cell_w + gap);
    const int64_t oy = margin + title_h + (c / grid_cols) * (cell_h + gap);
    // A thin frame, so that white cells stay distinct from the white background.
    for (int64_t x = -1; x <= cell_w; ++x) {
      img.set(ox + x, oy - 1, {150, 150, 150});
      img.set(ox + x, oy + cell_h, {150, 150, 150});
    }
    for (int64_t y = -1; y <= cell_h; ++y) {
      img.set(ox - 1, oy + y, {150, 150, 150});
      img.set(ox + cell_w, oy + y, {150, 150, 150});
    }
    for (int64_t y = 0; y < cell_h; ++y) {
      for (int64_t x = 0; x < cell_w; ++x) {
        const float v = m[(y / scale) * W + x / scale];
        img.set(ox + x, oy + y, colormap(map, range > 0 ? (v - *lo) / range : 0.0f));
      }
    }
  }
  return img;
}

}  // namespace cnn
