// The tutorial notebook's figures of the model: the input digit, conv1 and conv2 feature maps
// (after pooling, as the notebook takes them), conv1 filters and conv2 filters of input channel 0.
#pragma once

#include <string>
#include <vector>

#include "cnn/models/tutorial.h"

namespace cnn {

struct FigureOptions {
  std::string caption;  // appended to each title, e.g. "test #0, label 7"
  int64_t scale = 0;    // upscaling; 0 picks one per figure so each is readable
};

// image: (1, 1, 28, 28). Writes input.png, conv1_maps.png, conv2_maps.png, conv1_filters.png and
// conv2_filters.png into out_dir (created if needed) and returns their paths.
std::vector<std::string> write_tutorial_figures(TutorialCNN& model, const Tensor& image,
                                                const std::string& out_dir,
                                                const FigureOptions& options = {});

}  // namespace cnn
