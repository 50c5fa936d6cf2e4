#include "cnn/data/digit.h"

#include <stb_image_resize.h>

#include <algorithm>
#include <cmath>

#include "cnn/error.h"
#include "cnn/limits.h"

namespace cnn {

DigitSteps preprocess_digit(const GrayImage& image) {
  if (image.width <= 0 || image.height <= 0) throw Error("the image is empty");
  // A GrayImage may be built by hand: its size is checked before it is indexed, and the limit
  // keeps every count inside the int that stb's resizer takes.
  if (image.width > limits::kMaxImagePixels / image.height) {
    throw Error("the image has " + std::to_string(image.width) + " x " +
                std::to_string(image.height) + " pixels, more than the limit of " +
                std::to_string(limits::kMaxImagePixels));
  }
  if (image.pixels.size() != static_cast<std::size_t>(image.width * image.height)) {
    throw Error("the image declares " + std::to_string(image.width) + " x " +
                std::to_string(image.height) + " pixels but holds " +
                std::to_string(image.pixels.size()));
  }
  DigitSteps s;
  // Polarity from the border: a light border means dark strokes on paper.
  double border = 0;
  int64_t n = 0;
  for (int64_t x = 0; x < image.width; ++x) {
    border += image.at(x, 0) + image.at(x, image.height - 1);
    n += 2;
  }
  for (int64_t y = 0; y < image.height; ++y) {
    border += image.at(0, y) + image.at(image.width - 1, y);
    n += 2;
  }
  s.inverted = border / n > 127.0;
  s.oriented = image;
  if (s.inverted) {
    for (auto& p : s.oriented.pixels) p = static_cast<uint8_t>(255 - p);
  }
  // Strokes: pixels above a third of the brightest, so that faint paper noise does not count.
  const uint8_t peak = *std::max_element(s.oriented.pixels.begin(), s.oriented.pixels.end());
  const auto thresh = static_cast<uint8_t>(std::max(32, peak / 3));
  int64_t x0 = image.width, y0 = image.height, x1 = -1, y1 = -1;
  for (int64_t y = 0; y < image.height; ++y) {
    for (int64_t x = 0; x < image.width; ++x) {
      if (s.oriented.at(x, y) >= thresh) {
        x0 = std::min(x0, x);
        x1 = std::max(x1, x);
        y0 = std::min(y0, y);
        y1 = std::max(y1, y);
      }
    }
  }
  if (x1 < 0) throw Error("the image holds no strokes (it is blank)");
  s.cropped.width = x1 - x0 + 1;
  s.cropped.height = y1 - y0 + 1;
  for (int64_t y = y0; y <= y1; ++y) {
    for (int64_t x = x0; x <= x1; ++x) s.cropped.pixels.push_back(s.oriented.at(x, y));
  }
  // Fit into 20x20, keeping the aspect ratio.
  const double f = 20.0 / static_cast<double>(std::max(s.cropped.width, s.cropped.height));
  s.scaled.width = std::max<int64_t>(1, std::lround(s.cropped.width * f));
  s.scaled.height = std::max<int64_t>(1, std::lround(s.cropped.height * f));
  s.scaled.pixels.resize(static_cast<std::size_t>(s.scaled.width * s.scaled.height));
  stbir_resize_uint8(s.cropped.pixels.data(), static_cast<int>(s.cropped.width),
                     static_cast<int>(s.cropped.height), 0, s.scaled.pixels.data(),
                     static_cast<int>(s.scaled.width), static_cast<int>(s.scaled.height), 0, 1);
  // Centre of mass to (14, 14).
  double mass = 0, cx = 0, cy = 0;
  for (int64_t y = 0; y < s.scaled.height; ++y) {
    for (int64_t x = 0; x < s.scaled.width; ++x) {
      const double v = s.scaled.at(x, y);
      mass += v;
      cx += v * x;
      cy += v * y;
    }
  }
  if (mass <= 0) throw Error("the image holds no strokes after scaling");
  cx /= mass;
  cy /= mass;
  const int64_t dx = std::lround(14.0 - 0.5 - cx), dy = std::lround(14.0 - 0.5 - cy);
  s.centered.width = s.centered.height = 28;
  s.centered.pixels.assign(28 * 28, 0);
  for (int64_t y = 0; y < s.scaled.height; ++y) {
    for (int64_t x = 0; x < s.scaled.width; ++x) {
      const int64_t tx = x + dx, ty = y + dy;
      if (tx >= 0 && tx < 28 && ty >= 0 && ty < 28)
        s.centered.pixels[ty * 28 + tx] = s.scaled.at(x, y);
    }
  }
  return s;
}

Tensor digit_tensor(const GrayImage& centered) {
  if (centered.width != 28 || centered.height != 28) {
    throw Error("digit_tensor: expected a 28x28 image, got " + std::to_string(centered.width) +
                "x" + std::to_string(centered.height));
  }
  Tensor t({1, 1, 28, 28});
  for (int64_t i = 0; i < 28 * 28; ++i) t[i] = centered.pixels[i] / 255.0f;
  return t;
}

}  // namespace cnn
