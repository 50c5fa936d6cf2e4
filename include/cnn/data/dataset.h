// The image classification datasets (MNIST, Fashion-MNIST) and a batching data loader.
// Images stay uint8 in memory; the loader scales each batch to [0, 1] (and optionally
// normalises it) as it builds the float tensor.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cnn/data/augment.h"
#include "cnn/random.h"
#include "cnn/tensor.h"

namespace cnn {

struct Dataset {
  std::string name;    // "mnist", "fashion-mnist"
  std::string split;   // "train", "test"
  std::string source;  // the directory it was read from (absolute), or empty
  int64_t count = 0, rows = 0, cols = 0;
  int64_t channels = 1;  // 1 (gray: MNIST, Fashion-MNIST) or 3 (RGB)
  int64_t num_classes = 0;
  std::vector<std::string> class_names;
  std::vector<uint8_t> pixels;  // count * channels * rows * cols, each image (C, H, W) planes
  std::vector<uint8_t> labels;  // count

  const uint8_t* image(int64_t i) const { return pixels.data() + i * channels * rows * cols; }
  // One sample's shape, [channels, rows, cols]: what a model's input must be.
  Shape image_shape() const { return {channels, rows, cols}; }
  // One image as a (1, channels, rows, cols) tensor scaled to [0, 1].
  Tensor image_tensor(int64_t i) const;
};

// The names `cnn --dataset` accepts.
const std::vector<std::string>& dataset_names();
int64_t dataset_num_classes(const std::string& name);
std::vector<std::string> dataset_class_names(const std::string& name);

// Loads `<dir>/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]` and validates it: both files
// present, same count, labels below the number of classes. Errors name the file.
Dataset load_dataset(const std::string& name, const std::string& dir, const std::string& split);

// A seeded random split of a dataset: `fraction` of its images (rounded, at least one, at most
// all but one) become the second part ("validation"), the rest the first; each part keeps the
// dataset's order. The same seed gives the same split on every platform.
std::pair<Dataset, Dataset> split_dataset(const Dataset& data, double fraction, uint64_t seed);

struct Batch {
  Tensor images;                 // (B, channels, rows, cols), float in [0, 1] or normalised
  std::vector<int64_t> labels;   // B
  std::vector<int64_t> indices;  // B, positions in the dataset
  // A sharded loader's batch (DataLoader::set_shard) is one rank's part of a global batch of
  // global_count images, from its image `first`; unsharded, first is 0 and global_count is B.
  int64_t first = 0, global_count = 0;
};

// Input normalisation of images scaled to [0, 1]: (x - mean[c]) / std[c] for channel c, with one
// value for every channel or one per channel (torchvision's Normalize).
struct Normalize {
  std::vector<float> mean = {0.0f}, std = {1.0f};

  Normalize() = default;
  Normalize(float m, float s) : mean{m}, std{s} {}
  Normalize(std::vector<float> m, std::vector<float> s) : mean(std::move(m)), std(std::move(s)) {}
  float mean_of(int64_t c) const { return mean.size() == 1 ? mean[0] : mean[c]; }
  float std_of(int64_t c) const { return std.size() == 1 ? std[0] : std[c]; }
  // Throws unless the values are finite, every std > 0, and there is one value or `channels`.
  void check(int64_t channels) const;
  // {"mean": M, "std": S}, or arrays when there is a value per channel.
  nlohmann::json to_json() const;
  // The inverse of to_json(), checked (a checkpoint is untrusted): throws naming what is wrong.
  static Normalize from_json(const nlohmann::json& j);
};

// Each channel's mean and standard deviation over all the dataset's pixels scaled to [0, 1], as
// the usual recipe for torchvision's Normalize computes them.
Normalize channel_stats(const Dataset& data);

// Iterates a dataset in batches; with shuffle, each epoch draws a new permutation from its own
// generator (seeded, so runs repeat exactly). The last batch may be smaller.
class DataLoader {
 public:
  DataLoader(const Dataset& data, int64_t batch_size, bool shuffle, uint64_t seed = 0,
             std::optional<Normalize> normalize = std::nullopt);
  // Starts a new epoch (a new permutation when shuffling).
  void reset();
  // Fills the next batch of this epoch; false at the end of the epoch.
  bool next(Batch& batch);
  // Skips the first `batches` batches of this epoch (a resumed run's place in it).
  void skip(int64_t batches);
  int64_t batches_per_epoch() const;
  int64_t batch_size() const { return batch_size_; }
  Generator& generator() { return gen_; }
  // Augments every image it delivers from now on, drawing from its own generator seeded with
  // seed (the shuffling order stays what it was). Augment{} turns it off.
  void set_augment(const Augment& augment, uint64_t seed);
  const Augment& augment() const { return augment_; }
  // Whether next() fills the batch's images (default) or only its labels and indices (a trainer
  // that gathers the images from a copy of the data set on the device).
  void set_fill_images(bool fill) { fill_images_ = fill; }
  Generator& augment_generator() { return aug_gen_; }
  // Data-parallel training: next() delivers only rank's part (shard_of, cnn/dist/communicator.h)
  // of each batch of the same permutation the unsharded loader draws, and augmenting draws for the
  // images of the other parts too, so that every image is what the unsharded loader gives. A
  // rank's part of a batch may be empty. set_shard(0, 1) is the unsharded loader.
  void set_shard(int rank, int size);

 private:
  const Dataset& data_;
  int64_t batch_size_;
  bool shuffle_;
  Generator gen_;
  std::optional<Normalize> normalize_;
  Augment augment_;
  Generator aug_gen_;
  std::vector<int64_t> order_;
  int64_t pos_ = 0;
  bool fill_images_ = true;
  int shard_rank_ = 0, shard_size_ = 1;
};

}  // namespace cnn
