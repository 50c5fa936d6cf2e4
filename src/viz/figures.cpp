#include "cnn/viz/figures.h"

#include <algorithm>
#include <filesystem>

#include "cnn/error.h"
#include "cnn/nn/layers.h"
#include "cnn/viz/image.h"

namespace cnn {

namespace {

// How big each figure is drawn (FigureOptions::scale overrides the magnification). These give the
// notebook's figures for the tutorial's model: the 28x28 input 12 times, the 14x14 conv1 maps 10
// times, the 7x7 conv2 maps 16 times (their 140 px target capped), the 3x3 filters 32 times.
// The targets are pixels along a cell's longer side; the magnification is target / side.
constexpr int64_t kInputTarget = 336;
constexpr int64_t kMapsTarget = 140;
constexpr int64_t kMapsMaxScale = 16;  // small maps are not blown up beyond this
constexpr int64_t kFilterTarget = 96;
constexpr int64_t kMaxGridWidth = 4096;  // px of cells side by side: wide grids are drawn smaller

// The grid for n pictures: rows = the largest divisor of n not above sqrt(n), cols = n / rows
// (16: 4x4, 32: 4x8, 6: 2x3). When that is more than 4 times wider than tall (a prime n, say),
// ceil(sqrt(n)) columns and the last row left short.
std::pair<int64_t, int64_t> grid_for(int64_t n) {
  int64_t rows = 1;
  for (int64_t r = 1; r * r <= n; ++r) {
    if (n % r == 0) rows = r;
  }
  int64_t cols = n / rows;
  if (cols > 4 * rows) {
    cols = 1;
    while (cols * cols < n) ++cols;
    rows = (n + cols - 1) / cols;
  }
  return {rows, cols};
}

// (C_out, C_in, K_h, K_w) -> the C_out kernels of input channel c_in as (C_out, K_h, K_w).
Tensor filters_of_channel(const Tensor& w, int64_t c_in) {
  const int64_t C_out = w.size(0), K_h = w.size(2), K_w = w.size(3);
  Tensor out({C_out, K_h, K_w});
  for (int64_t o = 0; o < C_out; ++o) {
    const float* src = w.data() + (o * w.size(1) + c_in) * K_h * K_w;
    std::copy(src, src + K_h * K_w, out.data() + o * K_h * K_w);
  }
  return out;
}

Tensor drop_batch(const Tensor& t) {
  Shape s(t.shape().begin() + 1, t.shape().end());
  return t.reshape(s);
}

// A leaf's own parameter by name ("weight"); Conv2d::weight() is not const.
const Tensor& own_parameter(const Module& m, const std::string& name) {
  for (const auto& [n, p] : m.own_parameters()) {
    if (n == name) return p->value;
  }
  throw Error(m.type_name() + " has no parameter '" + name + "'");
}

// A convolution in forward order and its stage's output (see write_model_figures).
struct Stage {
  Tensor weight;  // (C_out, C_in / groups, K_h, K_w)
  Tensor maps;    // (1, C, H, W)
};

std::vector<Stage> trace_stages(Module& model, const Tensor& image) {
  std::vector<Stage> stages;
  bool open = false;  // whether the leaves now running extend the last stage
  struct Restore {
    Module& m;
    bool was_training;
    ~Restore() {
      Module::set_forward_hook({});
      m.train(was_training);
    }
  } restore{model, model.is_training()};
  model.eval();
  Module::set_forward_hook([&](const Module& leaf, const Tensor& y) {
    if (dynamic_cast<const Conv2d*>(&leaf)) {
      stages.push_back({own_parameter(leaf, "weight"), y});
      open = true;
    } else if (open && y.dim() == 4) {
      stages.back().maps = y;
    } else {
      open = false;
    }
  });
  model.forward(image);
  return stages;
}

std::string dims(const Shape& s) {
  std::string out;
  for (int64_t d : s) out += (out.empty() ? "" : "x") + std::to_string(d);
  return out;
}

}  // namespace

std::vector<std::string> write_model_figures(Module& model, const Tensor& image,
                                             const std::string& out_dir,
                                             const FigureOptions& options) {
  if (image.dim() != 4 || image.size(0) != 1) {
    throw Error("write_model_figures: expected one image of shape (1, C, H, W), got " +
                shape_str(image.shape()));
  }
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) throw Error(out_dir + ": cannot create directory: " + ec.message());

  const std::vector<Stage> stages = trace_stages(model, image);
  const std::string suffix = options.caption.empty() ? "" : " - " + options.caption;
  // maps: (n, H, W) in a grid of cols columns, each cell about target px, magnified at most
  // max_scale times.
  auto scale_for = [&](const Tensor& maps, int64_t cols, int64_t target, int64_t max_scale) {
    if (options.scale > 0) return options.scale;
    const int64_t side = std::max(maps.size(1), maps.size(2));
    const int64_t fit = kMaxGridWidth / (cols * maps.size(2));
    return std::max<int64_t>(1, std::min({target / side, max_scale, fit}));
  };
  std::vector<std::string> paths;
  auto write = [&](const std::string& file, const Tensor& maps, Colormap map, int64_t target,
                   int64_t max_scale, const std::string& title) {
    const auto [rows, cols] = grid_for(maps.size(0));
    const RgbImage picture =
        render_grid(maps, rows, cols, map, scale_for(maps, cols, target, max_scale), title);
    const std::string path = (std::filesystem::path(out_dir) / file).string();
    write_png(path, picture);
    paths.push_back(path);
    if (options.written) options.written(path);
  };
  constexpr int64_t kNoCap = INT64_MAX;

  // The input: one gray picture, or (C > 1) its channels in a grid, each normalised on its own
  // as every map is; no colour composite, so that any number of channels reads the same way.
  const int64_t channels = image.size(1);
  write("input.png", drop_batch(image), Colormap::Gray, kInputTarget, kNoCap,
        "input" + (channels > 1 ? ", " + std::to_string(channels) + " channels" : "") + suffix);
  for (std::size_t k = 0; k < stages.size(); ++k) {
    const Tensor maps = drop_batch(stages[k].maps);
    write("conv" + std::to_string(k + 1) + "_maps.png", maps, Colormap::Viridis, kMapsTarget,
          kMapsMaxScale,
          "conv" + std::to_string(k + 1) + " feature maps " + dims(maps.shape()) + suffix);
  }
  for (std::size_t k = 0; k < stages.size(); ++k) {
    const Tensor& w = stages[k].weight;
    const Tensor filters = filters_of_channel(w, 0);
    // With one input channel the filters are the whole kernels, and the title says no more.
    write("conv" + std::to_string(k + 1) + "_filters.png", filters, Colormap::Gray, kFilterTarget,
          kNoCap,
          "conv" + std::to_string(k + 1) +
              (w.size(1) > 1 ? " filters, input channel 0, " : " filters ") +
              dims(filters.shape()));
  }
  return paths;
}

}  // namespace cnn
