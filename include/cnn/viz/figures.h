// The tutorial notebook's figures, for any model with convolutions: the input, and for each
// Conv2d layer its feature maps (after the ReLU and pooling that follow it, as the notebook takes
// them) and its filters of input channel 0.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "cnn/nn/module.h"

namespace cnn {

struct FigureOptions {
  std::string caption;  // appended to each title, e.g. "test #0, label 7"
  int64_t scale = 0;    // upscaling; 0 picks one per figure so each is readable
  // Called with each file's path once it is written (a command lists them as they come).
  std::function<void(const std::string& path)> written;
};

// image: (1, C, H, W), the model's input. Runs the model once (in evaluation mode; its mode is
// restored) and writes into out_dir (created if needed), in this order:
//   input.png                the image (C > 1: its channels side by side, each in gray)
//   conv<k>_maps.png         for the k-th Conv2d layer in forward order (k = 1, 2, ...): its
//                            stage's output, i.e. the output of the last layer after it that
//                            keeps a 4-D shape before the next Conv2d or a layer that does not
//                            (for the tutorial's model: after ReLU and MaxPool2d); k = 1, 2, ...
//   conv<k>_filters.png      each Conv2d layer's filters of input channel 0; k = 1, 2, ...
// and returns their paths. A model without a Conv2d layer gets input.png only. For the tutorial's
// model these are the notebook's five figures: 16 maps in a 4x4 grid, 32 in a 4x8 grid.
std::vector<std::string> write_model_figures(Module& model, const Tensor& image,
                                             const std::string& out_dir,
                                             const FigureOptions& options = {});

}  // namespace cnn
