// Data augmentation: random, seeded transformations of training images, applied by the
// DataLoader as it turns each image into floats. Off by default. The draws come from the
// loader's own augmentation generator, so a run repeats exactly and turning augmentation on
// leaves the shuffling order as it was.
//
// The transformations, applied to the image in this order:
//   hflip   mirror left-right with probability 1/2 (torchvision's RandomHorizontalFlip); never
//           on by default: a mirrored digit is not a digit.
//   rotate  rotate by an angle drawn uniformly in [-rotate, rotate] degrees about the image's
//           centre, counter-clockwise for positive angles as torchvision's RandomRotation;
//           sampled bilinearly (torchvision's default is nearest), pixels from outside are 0.
//   shift   translate by whole pixels dx, dy drawn uniformly in [-shift, shift] each, pixels
//           from outside 0: torchvision's RandomCrop(size, padding=shift) with zero padding.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "cnn/random.h"

namespace cnn {

struct Augment {
  int64_t shift = 0;    // pixels, 0 to kMaxShift
  double rotate = 0.0;  // degrees, 0 to 180
  bool hflip = false;

  static constexpr int64_t kMaxShift = 64;

  bool enabled() const { return shift > 0 || rotate > 0.0 || hflip; }
  // "shift=2,rotate=10,hflip" (any order, any subset; "none" for none). Throws naming the
  // part that is wrong.
  static Augment parse(const std::string& spec);
  // The same form parse() reads ("none" when disabled).
  std::string str() const;
  nlohmann::json to_json() const;
  static Augment from_json(const nlohmann::json& j);
};

// One image's draw: what augment_image() does to it.
struct AugmentDraw {
  bool flip = false;
  int64_t dx = 0, dy = 0;  // +x moves the picture right, +y down
  double degrees = 0.0;    // counter-clockwise
};

// Draws one image's transformation from gen: a flip bit if hflip, then the angle if rotate,
// then dx and dy if shift (only the enabled parts draw).
AugmentDraw draw_augment(const Augment& a, Generator& gen);

// Writes the transformed image (channels planes of rows x cols uint8, the same transformation
// for every channel) into dst as value * scale - offset, the loader's scaling.
void augment_image(const uint8_t* src, int64_t channels, int64_t rows, int64_t cols,
                   const AugmentDraw& d, float scale, float offset, float* dst);

}  // namespace cnn
