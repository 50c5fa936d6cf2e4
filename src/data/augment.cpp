#include "cnn/data/augment.h"

#include <cmath>
#include <sstream>

#include "cnn/error.h"
#include "cnn/suggest.h"

namespace cnn {

namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// The whole of text as a number, or throws naming the part.
double parse_number(const std::string& part, const std::string& text) {
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || !std::isfinite(v)) {
    throw Error("augmentation '" + excerpt(part) + "': '" + excerpt(text) + "' is not a number");
  }
  return v;
}

}  // namespace

Augment Augment::parse(const std::string& spec) {
  Augment a;
  const std::string all = trim(spec);
  if (all == "none") return a;
  if (all.empty()) throw Error("augmentation: empty (expected e.g. shift=2,rotate=10, or none)");
  std::stringstream ss(all);
  std::string part;
  while (std::getline(ss, part, ',')) {
    part = trim(part);
    const auto eq = part.find('=');
    const std::string key = trim(part.substr(0, eq));
    const std::string value = eq == std::string::npos ? "" : trim(part.substr(eq + 1));
    if (key == "hflip") {
      if (eq != std::string::npos) {
        throw Error("augmentation '" + excerpt(part) + "': hflip takes no value");
      }
      a.hflip = true;
    } else if (key == "shift") {
      if (eq == std::string::npos) {
        throw Error("augmentation 'shift' needs a value: shift=PIXELS (e.g. shift=2)");
      }
      const double v = parse_number(part, value);
      if (v != std::floor(v) || v < 0 || v > kMaxShift) {
        throw Error("augmentation '" + excerpt(part) +
                    "': shift must be a whole number of pixels "
                    "in [0, " +
                    std::to_string(kMaxShift) + "]");
      }
      a.shift = static_cast<int64_t>(v);
    } else if (key == "rotate") {
      if (eq == std::string::npos) {
        throw Error("augmentation 'rotate' needs a value: rotate=DEGREES (e.g. rotate=10)");
      }
      const double v = parse_number(part, value);
      if (v < 0 || v > 180) {
        throw Error("augmentation '" + excerpt(part) + "': rotate must be in [0, 180] degrees");
      }
      a.rotate = v;
    } else {
      const std::string near = nearest(key, {"shift", "rotate", "hflip", "none"});
      throw Error("unknown augmentation '" + excerpt(key) +
                  "' (expected shift=PIXELS, rotate=DEGREES, hflip, or none)" +
                  (near.empty() ? "" : "; did you mean '" + near + "'?"));
    }
  }
  return a;
}

std::string Augment::str() const {
  if (!enabled()) return "none";
  std::string s;
  auto add = [&](const std::string& part) { s += (s.empty() ? "" : ",") + part; };
  if (shift > 0) add("shift=" + std::to_string(shift));
  if (rotate > 0) {
    std::ostringstream r;
    r << rotate;
    add("rotate=" + r.str());
  }
  if (hflip) add("hflip");
  return s;
}

nlohmann::json Augment::to_json() const {
  return {{"shift", shift}, {"rotate", rotate}, {"hflip", hflip}};
}

Augment Augment::from_json(const nlohmann::json& j) {
  Augment a;
  a.shift = j.value("shift", int64_t{0});
  a.rotate = j.value("rotate", 0.0);
  a.hflip = j.value("hflip", false);
  if (a.shift < 0 || a.shift > kMaxShift || !(a.rotate >= 0 && a.rotate <= 180)) {
    throw Error("augmentation " + j.dump() + ": out of range");
  }
  return a;
}

AugmentDraw draw_augment(const Augment& a, Generator& gen) {
  AugmentDraw d;
  if (a.hflip) d.flip = gen.uniform() < 0.5f;
  if (a.rotate > 0)
    d.degrees = gen.uniform(-static_cast<float>(a.rotate), static_cast<float>(a.rotate));
  if (a.shift > 0) {
    const auto n = static_cast<uint64_t>(2 * a.shift + 1);
    d.dx = static_cast<int64_t>(gen.below(n)) - a.shift;
    d.dy = static_cast<int64_t>(gen.below(n)) - a.shift;
  }
  return d;
}

void augment_image(const uint8_t* src, int64_t channels, int64_t rows, int64_t cols,
                   const AugmentDraw& d, float scale, float offset, float* dst) {
  const int64_t plane = rows * cols;
  if (d.degrees == 0.0) {
    // Whole-pixel moves: each output pixel is one input pixel or the zero fill.
    for (int64_t c = 0; c < channels; ++c) {
      const uint8_t* s = src + c * plane;
      float* o = dst + c * plane;
      for (int64_t y = 0; y < rows; ++y) {
        const int64_t sy = y - d.dy;
        for (int64_t x = 0; x < cols; ++x) {
          int64_t sx = x - d.dx;
          if (d.flip) sx = cols - 1 - sx;
          const bool inside = sy >= 0 && sy < rows && sx >= 0 && sx < cols;
          o[y * cols + x] = (inside ? s[sy * cols + sx] : 0) * scale - offset;
        }
      }
    }
    return;
  }
  // Each output pixel, moved back by the shift and rotated back about the centre, is sampled
  // bilinearly from the (mirrored) input; neighbours outside the image count as 0.
  const double pi = std::acos(-1.0), t = d.degrees * pi / 180.0;
  const double ct = std::cos(t), st = std::sin(t);
  const double cx = (cols - 1) / 2.0, cy = (rows - 1) / 2.0;
  for (int64_t y = 0; y < rows; ++y) {
    for (int64_t x = 0; x < cols; ++x) {
      const double u = static_cast<double>(x - d.dx) - cx, v = static_cast<double>(y - d.dy) - cy;
      // Counter-clockwise on the screen (y points down) by t; this is its inverse.
      double sx = u * ct - v * st + cx;
      const double sy = u * st + v * ct + cy;
      if (d.flip) sx = static_cast<double>(cols - 1) - sx;
      const double fx0 = std::floor(sx), fy0 = std::floor(sy);
      const double wx = sx - fx0, wy = sy - fy0;
      const auto x0 = static_cast<int64_t>(fx0), y0 = static_cast<int64_t>(fy0);
      const double w[4] = {(1 - wx) * (1 - wy), wx * (1 - wy), (1 - wx) * wy, wx * wy};
      const int64_t xs[4] = {x0, x0 + 1, x0, x0 + 1}, ys[4] = {y0, y0, y0 + 1, y0 + 1};
      for (int64_t c = 0; c < channels; ++c) {
        const uint8_t* s = src + c * plane;
        double value = 0;
        for (int k = 0; k < 4; ++k) {
          if (w[k] != 0 && xs[k] >= 0 && xs[k] < cols && ys[k] >= 0 && ys[k] < rows) {
            value += w[k] * s[ys[k] * cols + xs[k]];
          }
        }
        dst[c * plane + y * cols + x] = static_cast<float>(value) * scale - offset;
      }
    }
  }
}

}  // namespace cnn
