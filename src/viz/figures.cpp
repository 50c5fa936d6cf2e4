#include "cnn/viz/figures.h"

#include <filesystem>

#include "cnn/error.h"
#include "cnn/nn/layers.h"
#include "cnn/viz/image.h"

namespace cnn {

namespace {
// (C_out, C_in, K, K) -> the C_out kernels of input channel c_in as (C_out, K, K).
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
}  // namespace

std::vector<std::string> write_tutorial_figures(TutorialCNN& model, const Tensor& image,
                                                const std::string& out_dir,
                                                const FigureOptions& options) {
  if (image.shape() != Shape{1, 1, 28, 28}) {
    throw Error("write_tutorial_figures: expected an image of shape (1, 1, 28, 28), got " +
                shape_str(image.shape()));
  }
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) throw Error(out_dir + ": cannot create directory: " + ec.message());

  const bool was_training = model.is_training();
  model.eval();
  const Tensor maps1 = model.conv1->forward(image);  // (1, 16, 14, 14)
  const Tensor maps2 = model.conv2->forward(maps1);  // (1, 32, 7, 7)
  model.train(was_training);
  auto& conv1 = dynamic_cast<Conv2d&>((*model.conv1)[0]);
  auto& conv2 = dynamic_cast<Conv2d&>((*model.conv2)[0]);
  const std::string suffix = options.caption.empty() ? "" : " - " + options.caption;
  auto scale_for = [&](int64_t side, int64_t target) {
    return options.scale > 0 ? options.scale : std::max<int64_t>(1, target / side);
  };

  struct Figure {
    std::string file;
    RgbImage image;
  };
  const std::vector<Figure> figures = {
      {"input.png",
       render_grid(drop_batch(image), 1, 1, Colormap::Gray, scale_for(28, 336), "input" + suffix)},
      {"conv1_maps.png", render_grid(drop_batch(maps1), 4, 4, Colormap::Viridis, scale_for(14, 140),
                                     "conv1 feature maps 16x14x14" + suffix)},
      {"conv2_maps.png", render_grid(drop_batch(maps2), 4, 8, Colormap::Viridis, scale_for(7, 112),
                                     "conv2 feature maps 32x7x7" + suffix)},
      {"conv1_filters.png", render_grid(filters_of_channel(conv1.weight().value, 0), 4, 4,
                                        Colormap::Gray, scale_for(3, 96), "conv1 filters 16x3x3")},
      {"conv2_filters.png",
       render_grid(filters_of_channel(conv2.weight().value, 0), 4, 8, Colormap::Gray,
                   scale_for(3, 96), "conv2 filters, input channel 0, 32x3x3")},
  };
  std::vector<std::string> paths;
  for (const auto& f : figures) {
    const std::string path = (std::filesystem::path(out_dir) / f.file).string();
    write_png(path, f.image);
    paths.push_back(path);
  }
  return paths;
}

}  // namespace cnn
