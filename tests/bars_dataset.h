// A small synthetic data set for training tests: pictures whose label is where a bar stands,
// learnable in a few steps.
#pragma once

#include "cnn/data/dataset.h"
#include "cnn/random.h"

namespace cnn::testing {

// n images of size x size, 4 classes: a vertical bar of random brightness at a column set by the
// label; seeded.
inline Dataset bars(int64_t n, int64_t size, uint64_t seed) {
  Dataset d;
  d.name = "bars";
  d.split = "train";
  d.count = n;
  d.rows = d.cols = size;
  d.num_classes = 4;
  d.class_names = {"0", "1", "2", "3"};
  d.pixels.assign(static_cast<std::size_t>(n * size * size), 0);
  d.labels.resize(static_cast<std::size_t>(n));
  Generator gen(seed);
  for (int64_t i = 0; i < n; ++i) {
    const auto label = static_cast<int64_t>(gen.below(4));
    d.labels[i] = static_cast<uint8_t>(label);
    for (int64_t y = 1; y < size - 1; ++y) {
      const int64_t x = 1 + label * (size - 2) / 4;
      d.pixels[(i * size + y) * size + x] = static_cast<uint8_t>(150 + gen.below(100));
    }
  }
  return d;
}

}  // namespace cnn::testing
