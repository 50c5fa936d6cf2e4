#include "cnn/viz/curves.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <limits>
#include <tuple>

#include "cnn/error.h"

namespace cnn {

namespace {

using Color = std::array<uint8_t, 3>;

// matplotlib's first two colours (tab:blue, tab:orange): told apart with most kinds of colour
// blindness, and familiar from every PyTorch tutorial's plots.
constexpr Color kTrainColor = {31, 119, 180};
constexpr Color kHeldOutColor = {255, 127, 14};
constexpr Color kInk = {0, 0, 0};
constexpr Color kAxisColor = {60, 60, 60};
constexpr Color kGridColor = {228, 228, 228};

// stb_easy_font's capitals are 7 font pixels tall; descenders reach 2 below.
constexpr int64_t kCapHeight = 7;
constexpr int64_t kTitleScale = 2, kLabelScale = 2, kTickScale = 2;
constexpr int64_t kTickLength = 5;
constexpr double kLineWidth = 2.0, kDotRadius = 3.5, kMinDotRadius = 2.0;

// Below this the labels crowd out the plots.
constexpr int64_t kMinWidth = 600, kMinHeight = 300;

struct Rect {
  int64_t left, top, right, bottom;  // inclusive
};

// Paints `color` over pixel (x, y) with coverage a in [0, 1], inside clip only.
void blend(RgbImage& img, const Rect& clip, int64_t x, int64_t y, Color color, double a) {
  if (a <= 0 || x < clip.left || x > clip.right || y < clip.top || y > clip.bottom) return;
  if (a >= 1) {
    img.set(x, y, color);
    return;
  }
  const Color was = img.get(x, y);
  Color mixed;
  for (int k = 0; k < 3; ++k)
    mixed[k] = static_cast<uint8_t>(std::lround(was[k] + a * (color[k] - was[k])));
  img.set(x, y, mixed);
}

// An anti-aliased segment of width kLineWidth from (x0, y0) to (x1, y1), in pixel coordinates
// (pixel centres at integers): each pixel is covered by how far its centre lies inside the
// stroke, so pixels at most half a pixel inside the edge get the exact colour (which is what the
// tests count) and the edge is smooth.
void draw_segment(RgbImage& img, const Rect& clip, double x0, double y0, double x1, double y1,
                  Color color) {
  const double half = kLineWidth / 2;
  const double dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
  const auto lo_x = static_cast<int64_t>(std::floor(std::min(x0, x1) - half - 1));
  const auto hi_x = static_cast<int64_t>(std::ceil(std::max(x0, x1) + half + 1));
  const auto lo_y = static_cast<int64_t>(std::floor(std::min(y0, y1) - half - 1));
  const auto hi_y = static_cast<int64_t>(std::ceil(std::max(y0, y1) + half + 1));
  for (int64_t y = std::max(lo_y, clip.top); y <= std::min(hi_y, clip.bottom); ++y) {
    for (int64_t x = std::max(lo_x, clip.left); x <= std::min(hi_x, clip.right); ++x) {
      const double t =
          len2 > 0 ? std::clamp(((x - x0) * dx + (y - y0) * dy) / len2, 0.0, 1.0) : 0.0;
      const double d = std::hypot(x - (x0 + t * dx), y - (y0 + t * dy));
      blend(img, clip, x, y, color, std::min(1.0, half + 0.5 - d));
    }
  }
}

void draw_dot(RgbImage& img, const Rect& clip, double cx, double cy, double radius, Color color) {
  const auto r = static_cast<int64_t>(std::ceil(radius + 1));
  const auto ix = static_cast<int64_t>(std::lround(cx)), iy = static_cast<int64_t>(std::lround(cy));
  for (int64_t y = iy - r; y <= iy + r; ++y) {
    for (int64_t x = ix - r; x <= ix + r; ++x) {
      blend(img, clip, x, y, color, std::min(1.0, radius + 0.5 - std::hypot(x - cx, y - cy)));
    }
  }
}

void hline(RgbImage& img, int64_t x0, int64_t x1, int64_t y, Color c) {
  for (int64_t x = x0; x <= x1; ++x) img.set(x, y, c);
}
void vline(RgbImage& img, int64_t x, int64_t y0, int64_t y1, Color c) {
  for (int64_t y = y0; y <= y1; ++y) img.set(x, y, c);
}

// A tick label with as many decimals as the step needs (0.25 -> 2, 0.5 -> 1, 2 -> 0); very large
// or very fine values (a diverged loss of 1e30) in 4 significant digits with an exponent, so that
// the label stays short.
std::string tick_label(double v, double step) {
  const int decimals = static_cast<int>(std::max(0.0, -std::floor(std::log10(step) + 1e-9)));
  char buf[64];
  if (std::abs(v) >= 1e6 || decimals > 5) {
    std::snprintf(buf, sizeof buf, "%.4g", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  }
  return buf;
}

// The data's range [lo, hi] widened by a margin of 6% each side and to at least min_span (so that
// one value, or a flat curve, sits mid-panel instead of on the frame), kept within [floor, ceil].
// Nothing finite: [0, 1], or [floor, ceil] when both are finite.
std::pair<double, double> padded_range(double lo, double hi, double floor, double ceil,
                                       double min_span) {
  if (!(lo <= hi)) {
    return std::isfinite(floor) && std::isfinite(ceil) ? std::pair{floor, ceil}
                                                       : std::pair{0.0, 1.0};
  }
  const double span = hi - lo;
  const double pad = span * 0.06 + std::max(0.0, min_span - span) / 2;
  return {std::max(floor, lo - pad), std::min(ceil, hi + pad)};
}

struct Series {
  std::string name;
  Color color;
  std::vector<std::optional<double>> values;  // one per point; nullopt: absent
  bool any_finite() const {
    return std::any_of(values.begin(), values.end(),
                       [](const auto& v) { return v && std::isfinite(*v); });
  }
};

struct Panel {
  std::string title, y_label;
  std::vector<Series> series;  // drawn in this order, the last on top
  double y_floor, y_ceil;      // the y range never leaves these
  double y_min_span;           // the smallest y span drawn
};

// The panel's layout from the top: the title, the y label (left) with the legend (right) beside
// it or in rows below it, the plot, the x tick labels, "epoch".
constexpr int64_t kMargin = 14;
constexpr int64_t kRightMargin = kMargin + 7;  // from the plot's right edge to the panel's
constexpr int64_t kRowHeight = kCapHeight * kLabelScale + 14;
constexpr int64_t kTitleY = kMargin;
constexpr int64_t kLabelY = kTitleY + kCapHeight * kTitleScale + 14;
// Data never reaches the frame: a value at the range's end (100%, a loss clamped at 0) keeps
// its whole dot inside the plot.
constexpr int64_t kInset = 6;
// A legend entry: a line sample with a dot, a gap, the name; entries apart by kEntryGap.
constexpr int64_t kSampleWidth = 22, kTextGap = 8, kEntryGap = 18;

int64_t entry_width(const Series& s) {
  return kSampleWidth + kTextGap + text_width(s.name, kLabelScale);
}
int64_t row_width(const std::vector<const Series*>& row) {
  int64_t w = 0;
  for (const Series* s : row) w += entry_width(*s) + (w ? kEntryGap : 0);
  return w;
}

// The series with something to draw, in rows of as many entries as fit the panel's width; the
// first row beside the y label when it fits there, else the rows below it.
struct LegendLayout {
  std::vector<std::vector<const Series*>> rows;
  int64_t first_row = 0;  // 0: beside the y label; 1: below it
  int64_t header_rows() const {
    return std::max<int64_t>(1, first_row + static_cast<int64_t>(rows.size()));
  }
};

LegendLayout layout_legend(const Panel& panel, int64_t width) {
  const int64_t room = width - kMargin - kRightMargin;
  LegendLayout layout;
  for (const Series& s : panel.series) {
    if (!s.any_finite()) continue;
    if (layout.rows.empty() || row_width(layout.rows.back()) + kEntryGap + entry_width(s) > room) {
      layout.rows.emplace_back();
    }
    layout.rows.back().push_back(&s);
  }
  if (!layout.rows.empty() &&
      text_width(panel.y_label, kLabelScale) + kEntryGap + row_width(layout.rows[0]) > room) {
    layout.first_row = 1;
  }
  return layout;
}

// Each row right-aligned to x = right.
void draw_legend(RgbImage& img, const LegendLayout& layout, int64_t right) {
  const Rect all{0, 0, img.width - 1, img.height - 1};
  for (std::size_t r = 0; r < layout.rows.size(); ++r) {
    const int64_t y = kLabelY + (layout.first_row + static_cast<int64_t>(r)) * kRowHeight;
    const double mid_y = static_cast<double>(y) + kCapHeight * kLabelScale / 2.0 - 0.5;
    int64_t x = right - row_width(layout.rows[r]);
    for (const Series* s : layout.rows[r]) {
      draw_segment(img, all, static_cast<double>(x), mid_y, static_cast<double>(x + kSampleWidth),
                   mid_y, s->color);
      draw_dot(img, all, x + kSampleWidth / 2.0, mid_y, kDotRadius, s->color);
      draw_text(img, x + kSampleWidth + kTextGap, y, s->name, kLabelScale, kInk);
      x += entry_width(*s) + kEntryGap;
    }
  }
}

// One panel in columns [x0, x0 + width), its plot below header_rows rows of y label and legend
// (the same for both panels, so that their plots line up).
void draw_panel(RgbImage& img, int64_t x0, int64_t width, const Panel& panel,
                const std::vector<double>& epochs, int64_t header_rows) {
  const int64_t text_h = kCapHeight * kTickScale;
  const int64_t plot_top = kLabelY + header_rows * kRowHeight;
  const int64_t plot_bottom =
      img.height - 1 - (kMargin + kCapHeight * kLabelScale + 12 + text_h + kTickLength + 6);

  // x: the epochs, padded; one epoch is centred in a span of one epoch.
  double x_lo = std::numeric_limits<double>::infinity(), x_hi = -x_lo;
  for (double e : epochs) {
    x_lo = std::min(x_lo, e), x_hi = std::max(x_hi, e);
  }
  const bool integral =
      std::all_of(epochs.begin(), epochs.end(), [](double e) { return e == std::floor(e); });
  if (!(x_lo <= x_hi)) x_lo = 0, x_hi = 1;  // no finite epoch: empty axes
  if (x_hi - x_lo < 1) {
    const double mid = (x_lo + x_hi) / 2;
    x_lo = mid - 0.5, x_hi = mid + 0.5;
  } else {
    const double pad = (x_hi - x_lo) * 0.04;
    x_lo -= pad, x_hi += pad;
  }

  // y: every series' finite values.
  double y_lo = std::numeric_limits<double>::infinity(), y_hi = -y_lo;
  for (const Series& s : panel.series) {
    for (const auto& v : s.values) {
      if (v && std::isfinite(*v)) y_lo = std::min(y_lo, *v), y_hi = std::max(y_hi, *v);
    }
  }
  const double y_floor = y_lo >= 0 ? std::max(panel.y_floor, 0.0) : panel.y_floor;
  std::tie(y_lo, y_hi) = padded_range(y_lo, y_hi, y_floor, panel.y_ceil, panel.y_min_span);

  // As many ticks as leave a label's height between labels (at most 7 up, 10 across).
  const auto max_ticks = [](int64_t length, int64_t label) {
    return static_cast<int>(std::clamp<int64_t>(length / std::max<int64_t>(label, 1) + 1, 2, 10));
  };
  const std::vector<double> y_ticks =
      nice_ticks(y_lo, y_hi, std::min(7, max_ticks(plot_bottom - plot_top, 2 * text_h)));
  const double y_step = y_ticks.size() > 1 ? y_ticks[1] - y_ticks[0] : std::max(y_hi - y_lo, 1e-9);
  std::vector<std::string> y_labels;
  int64_t y_label_w = 0;
  for (double t : y_ticks) {
    y_labels.push_back(tick_label(t, y_step));
    y_label_w = std::max(y_label_w, text_width(y_labels.back(), kTickScale));
  }
  // Tick labels take what they need, up to a third of the panel (a diverged loss's are long).
  const int64_t plot_left = x0 + kMargin + std::min(y_label_w, width / 3) + kTickLength + 6;
  const int64_t plot_right = x0 + width - kRightMargin;
  // Across, the widest epoch label and a gap of a character apart.
  const int64_t x_label_w = std::max(text_width(tick_label(x_lo, 1), kTickScale),
                                     text_width(tick_label(x_hi, 1), kTickScale)) +
                            text_width("0", kTickScale);
  const std::vector<double> x_ticks =
      nice_ticks(x_lo, x_hi, max_ticks(plot_right - plot_left, x_label_w), integral);
  const double x_step = x_ticks.size() > 1 ? x_ticks[1] - x_ticks[0] : 1.0;
  const Rect plot{plot_left, plot_top, plot_right, plot_bottom};
  const Rect inside{plot_left + 1, plot_top + 1, plot_right - 1, plot_bottom - 1};
  const auto px = [&](double x) {
    return plot_left + (x - x_lo) / (x_hi - x_lo) * static_cast<double>(plot_right - plot_left);
  };
  const auto py = [&](double y) {
    return static_cast<double>(plot_bottom - kInset) -
           (y - y_lo) / (y_hi - y_lo) * static_cast<double>(plot_bottom - plot_top - 2 * kInset);
  };

  // Grid and ticks.
  for (std::size_t i = 0; i < y_ticks.size(); ++i) {
    const auto y = static_cast<int64_t>(std::lround(py(y_ticks[i])));
    hline(img, plot.left + 1, plot.right - 1, y, kGridColor);
    hline(img, plot.left - kTickLength, plot.left - 1, y, kAxisColor);
    draw_text(img, plot.left - kTickLength - 4 - text_width(y_labels[i], kTickScale),
              y - text_h / 2, y_labels[i], kTickScale, kInk);
  }
  for (double t : x_ticks) {
    const auto x = static_cast<int64_t>(std::lround(px(t)));
    vline(img, x, plot.top + 1, plot.bottom - 1, kGridColor);
    vline(img, x, plot.bottom + 1, plot.bottom + kTickLength, kAxisColor);
    const std::string label = tick_label(t, x_step);
    draw_text(img, x - text_width(label, kTickScale) / 2, plot.bottom + kTickLength + 6, label,
              kTickScale, kInk);
  }
  hline(img, plot.left, plot.right, plot.top, kAxisColor);
  hline(img, plot.left, plot.right, plot.bottom, kAxisColor);
  vline(img, plot.left, plot.top, plot.bottom, kAxisColor);
  vline(img, plot.right, plot.top, plot.bottom, kAxisColor);

  // Labels: the title centred over the plot, in bold (drawn twice, a pixel apart: the font has
  // one weight); the y label above the axis (the font has no vertical text); "epoch" centred
  // under the ticks.
  const int64_t title_x = (plot.left + plot.right - text_width(panel.title, kTitleScale)) / 2;
  draw_text(img, title_x, kTitleY, panel.title, kTitleScale, kInk);
  draw_text(img, title_x + 1, kTitleY, panel.title, kTitleScale, kInk);
  draw_text(img, x0 + kMargin, kLabelY, panel.y_label, kLabelScale, kInk);
  draw_text(img, (plot.left + plot.right - text_width("epoch", kLabelScale)) / 2,
            plot.bottom + kTickLength + 6 + text_h + 12, "epoch", kLabelScale, kInk);

  // Dots shrink where epochs lie closer than about 12 px, so that they stay apart.
  double spacing = std::numeric_limits<double>::infinity();
  for (std::size_t i = 1; i < epochs.size(); ++i) {
    if (epochs[i] > epochs[i - 1]) spacing = std::min(spacing, px(epochs[i]) - px(epochs[i - 1]));
  }
  const double radius = std::clamp(spacing * 0.3, kMinDotRadius, kDotRadius);

  // Series: lines joining consecutive finite values (absent ones are passed over, non-finite
  // ones break the line), then a dot at each.
  for (const Series& s : panel.series) {
    bool joined = false;  // whether the next finite value joins (last_x, last_y)
    double last_x = 0, last_y = 0;
    for (std::size_t i = 0; i < epochs.size(); ++i) {
      const auto& v = s.values[i];
      if (!v) continue;
      if (!std::isfinite(*v)) {
        joined = false;
        continue;
      }
      const double x = px(epochs[i]), y = py(*v);
      if (joined) draw_segment(img, inside, last_x, last_y, x, y, s.color);
      joined = true, last_x = x, last_y = y;
    }
    for (std::size_t i = 0; i < epochs.size(); ++i) {
      const auto& v = s.values[i];
      if (v && std::isfinite(*v)) {
        draw_dot(img, inside, px(epochs[i]), py(*v), radius, s.color);
      }
    }
  }

  draw_legend(img, layout_legend(panel, width), plot.right);
}

void check_drawable(const std::vector<CurvePoint>& points, const CurveOptions& options,
                    const std::string& who) {
  if (points.empty()) throw Error(who + ": no epochs to draw (the history is empty)");
  if (options.width < kMinWidth || options.height < kMinHeight) {
    throw Error(who + ": a figure of " + std::to_string(options.width) + " x " +
                std::to_string(options.height) + " pixels is too small; at least " +
                std::to_string(kMinWidth) + " x " + std::to_string(kMinHeight) + " is needed");
  }
  // An accuracy in percent would be drawn 100 times too high, off the panel: say so instead.
  const auto check = [&](const CurvePoint& p, std::optional<double> a, const std::string& what) {
    if (a && std::isfinite(*a) && (*a < 0 || *a > 1)) {
      char buf[96];
      std::snprintf(buf, sizeof buf, "of epoch %g is %g", p.epoch, *a);
      throw Error(who + ": the " + what + " accuracy " + buf + ", not a fraction in [0, 1]");
    }
  };
  for (const CurvePoint& p : points) {
    check(p, p.train_accuracy, "train");
    check(p, p.val_accuracy, options.held_out_label);
  }
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int max_ticks, bool integer_steps) {
  if (!std::isfinite(lo) || !std::isfinite(hi) || lo > hi || max_ticks < 1) return {};
  const double span = hi - lo;
  // The smallest 1-2-5 step that gives at most max_ticks ticks, starting a decade below the
  // step that would give exactly max_ticks.
  double decade = span > 0 ? std::pow(10.0, std::floor(std::log10(span / max_ticks)) - 1) : 1.0;
  if (integer_steps) decade = std::max(decade, 1.0);
  const double eps = 1e-9;
  for (;; decade *= 10) {
    for (double m : {1.0, 2.0, 5.0}) {
      const double step = m * decade;
      const double first = std::ceil(lo / step - eps), last = std::floor(hi / step + eps);
      if (last - first + 1 > max_ticks) continue;
      std::vector<double> ticks;
      for (double k = first; k <= last; ++k) {
        const double t = k * step;
        ticks.push_back(std::abs(t) < step * eps ? 0.0 : t);  // no "-0"
      }
      return ticks;
    }
  }
}

RgbImage render_training_curves(const std::vector<CurvePoint>& points,
                                const CurveOptions& options) {
  check_drawable(points, options, "render_training_curves");
  // A point without a finite epoch has no place on the x axis (and NaN would break the sort).
  std::vector<CurvePoint> sorted;
  std::copy_if(points.begin(), points.end(), std::back_inserter(sorted),
               [](const CurvePoint& p) { return std::isfinite(p.epoch); });
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const CurvePoint& a, const CurvePoint& b) { return a.epoch < b.epoch; });
  std::vector<double> epochs;
  Series train_loss{"train", kTrainColor, {}}, train_acc{"train", kTrainColor, {}};
  Series val_loss{options.held_out_label, kHeldOutColor, {}};
  Series val_acc{options.held_out_label, kHeldOutColor, {}};
  const auto percent = [](std::optional<double> v) -> std::optional<double> {
    return v ? std::optional<double>(*v * 100) : std::nullopt;
  };
  for (const CurvePoint& p : sorted) {
    epochs.push_back(p.epoch);
    train_loss.values.push_back(p.train_loss);
    train_acc.values.push_back(p.train_accuracy * 100);
    val_loss.values.push_back(p.val_loss);
    val_acc.values.push_back(percent(p.val_accuracy));
  }
  const double inf = std::numeric_limits<double>::infinity();
  const Panel loss{"loss", "loss", {train_loss, val_loss}, -inf, inf, 0.02};
  const Panel accuracy{"accuracy", "accuracy (%)", {train_acc, val_acc}, 0.0, 100.0, 1.0};

  RgbImage img(options.width, options.height);
  const int64_t half = options.width / 2;
  const int64_t header_rows = std::max(layout_legend(loss, half).header_rows(),
                                       layout_legend(accuracy, options.width - half).header_rows());
  draw_panel(img, 0, half, loss, epochs, header_rows);
  draw_panel(img, half, options.width - half, accuracy, epochs, header_rows);
  return img;
}

void write_training_curves(const std::string& png_path, const std::vector<CurvePoint>& points,
                           const CurveOptions& options) {
  check_drawable(points, options, png_path);
  write_png(png_path, render_training_curves(points, options));
}

}  // namespace cnn
