// Training curves: loss and accuracy per epoch for the training set and a held-out set, drawn as
// one figure of two panels side by side (loss on the left, accuracy in percent on the right),
// each with a title, labelled axes, ticks at round steps, a light grid and a legend.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cnn/viz/image.h"

namespace cnn {

// One epoch's figures. Independent of the trainer, so that a history from any source (a running
// Trainer, a checkpoint, a JSON log) can be drawn: map each EpochRecord to one of these.
// Non-finite values (a diverged run) are skipped and break their series' line; an absent held-out
// value (an epoch that was not evaluated) is skipped and its neighbours are joined.
struct CurvePoint {
  double epoch = 0;  // the x position: 1, 2, ... (fractions allowed)
  double train_loss = 0;
  double train_accuracy = 0;           // a fraction in [0, 1]; drawn in percent
  std::optional<double> val_loss;      // the held-out set's loss, if evaluated
  std::optional<double> val_accuracy;  // a fraction in [0, 1], if evaluated
};

struct CurveOptions {
  // The held-out series' name in the legend: "validation" or "test", say (a short name: a legend
  // row that does not fit the panel runs past it).
  std::string held_out_label = "validation";
  // The whole figure in pixels, both panels; at least 600 x 300.
  int64_t width = 1000, height = 420;
};

// An RGB picture of options.width x options.height pixels on white. The two series are drawn in
// blue (train, {31, 119, 180}) and orange (held-out, {255, 127, 14}), 2-px lines with a dot at
// each epoch; the held-out series and its legend entry appear only when some point has a finite
// held-out value. The y range is the data's with a small margin (loss never below 0 when the data
// is not, accuracy within [0, 100]); one epoch is drawn as a dot in a padded x range.
// Points are drawn in order of epoch; a point whose epoch is not finite is left out. Throws a
// cnn::Error when points is empty ("no epochs to draw"), when a finite accuracy lies outside
// [0, 1] (one given in percent, say) or when the size is below the minimum.
RgbImage render_training_curves(const std::vector<CurvePoint>& points,
                                const CurveOptions& options = {});

// render_training_curves written as a PNG, atomically (a temporary file, then a rename); the
// errors are render_training_curves's and write_png's, naming png_path.
void write_training_curves(const std::string& png_path, const std::vector<CurvePoint>& points,
                           const CurveOptions& options = {});

// Tick positions within [lo, hi] at a round step (1, 2 or 5 times a power of ten) giving at most
// max_ticks ticks and as many as that allows; at least 1 apart when integer_steps (epochs).
// Empty when lo > hi or either is not finite.
std::vector<double> nice_ticks(double lo, double hi, int max_ticks, bool integer_steps = false);

}  // namespace cnn
