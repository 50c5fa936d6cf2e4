#include "cnn/data/dataset.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

#include "cnn/data/idx.h"
#include "cnn/dist/communicator.h"
#include "cnn/error.h"

namespace cnn {

namespace fs = std::filesystem;

const std::vector<std::string>& dataset_names() {
  static const std::vector<std::string> names = {"mnist", "fashion-mnist"};
  return names;
}

int64_t dataset_num_classes(const std::string&) { return 10; }

std::vector<std::string> dataset_class_names(const std::string& name) {
  if (name == "fashion-mnist") {
    return {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  }
  return {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
}

Tensor Dataset::image_tensor(int64_t i) const {
  if (i < 0 || i >= count) {
    throw Error(name + " " + split + ": index " + std::to_string(i) + " is out of range [0, " +
                std::to_string(count) + ")");
  }
  Tensor t({1, channels, rows, cols});
  const uint8_t* p = image(i);
  for (int64_t j = 0; j < channels * rows * cols; ++j) t[j] = p[j] / 255.0f;
  return t;
}

namespace {
// The file, raw or gzip: whichever exists.
std::string find_file(const fs::path& dir, const std::string& stem) {
  for (const std::string& name : {stem, stem + ".gz"}) {
    if (fs::exists(dir / name)) return (dir / name).string();
  }
  throw Error((dir / stem).string() + ": not found (nor " + stem + ".gz)");
}
}  // namespace

Dataset load_dataset(const std::string& name, const std::string& dir, const std::string& split) {
  if (std::find(dataset_names().begin(), dataset_names().end(), name) == dataset_names().end()) {
    throw Error("unknown dataset '" + excerpt(name) + "' (expected mnist or fashion-mnist)");
  }
  if (split != "train" && split != "test") {
    throw Error("unknown split '" + excerpt(split) + "' (expected train or test)");
  }
  if (!fs::is_directory(dir)) {
    throw Error(dir + ": data directory not found (scripts/fetch-data.sh downloads " + name + ")");
  }
  const std::string prefix = split == "train" ? "train" : "t10k";
  const std::string images_path = find_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = find_file(dir, prefix + "-labels-idx1-ubyte");
  IdxImages images = read_idx_images(images_path);
  if (images.count == 0) {
    throw Error(images_path + ": holds no images (its header's count is 0): nothing to " +
                (split == "train" ? "train on" : "evaluate"));
  }
  std::vector<uint8_t> labels = read_idx_labels(labels_path);
  if (static_cast<int64_t>(labels.size()) != images.count) {
    throw Error(labels_path + ": " + std::to_string(labels.size()) + " labels, but " + images_path +
                " has " + std::to_string(images.count) + " images");
  }
  Dataset d;
  d.name = name;
  d.split = split;
  d.source = fs::absolute(dir).lexically_normal().string();
  d.num_classes = dataset_num_classes(name);
  d.class_names = dataset_class_names(name);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] >= d.num_classes) {
      throw Error(labels_path + ": label " + std::to_string(labels[i]) + " at index " +
                  std::to_string(i) + " is out of range [0, " + std::to_string(d.num_classes) +
                  ")");
    }
  }
  d.count = images.count;
  d.rows = images.rows;
  d.cols = images.cols;
  d.pixels = std::move(images.pixels);
  d.labels = std::move(labels);
  return d;
}

std::pair<Dataset, Dataset> split_dataset(const Dataset& data, double fraction, uint64_t seed) {
  if (!(fraction > 0.0 && fraction < 1.0)) {
    throw Error("the validation fraction must be between 0 and 1 (exclusive), got " +
                std::to_string(fraction));
  }
  if (data.count < 2) {
    throw Error(data.name + " " + data.split + ": " + std::to_string(data.count) +
                " images cannot be split into training and validation");
  }
  const auto held = std::clamp<int64_t>(std::llround(fraction * static_cast<double>(data.count)), 1,
                                        data.count - 1);
  // Fisher-Yates with its own generator; the first `held` of the permutation are held out.
  std::vector<int64_t> order(static_cast<std::size_t>(data.count));
  std::iota(order.begin(), order.end(), 0);
  Generator gen(seed);
  for (int64_t i = data.count - 1; i > 0; --i) {
    std::swap(order[i], order[gen.below(static_cast<uint64_t>(i + 1))]);
  }
  std::vector<bool> is_held(static_cast<std::size_t>(data.count), false);
  for (int64_t i = 0; i < held; ++i) is_held[order[i]] = true;
  const int64_t plane = data.channels * data.rows * data.cols;
  auto part = [&](bool want_held, const std::string& split) {
    Dataset d;  // the metadata, not the pixels
    d.name = data.name;
    d.split = split;
    d.source = data.source;
    d.count = want_held ? held : data.count - held;
    d.rows = data.rows;
    d.cols = data.cols;
    d.channels = data.channels;
    d.num_classes = data.num_classes;
    d.class_names = data.class_names;
    d.pixels.reserve(static_cast<std::size_t>(d.count * plane));
    d.labels.reserve(static_cast<std::size_t>(d.count));
    for (int64_t i = 0; i < data.count; ++i) {
      if (is_held[i] != want_held) continue;
      d.pixels.insert(d.pixels.end(), data.image(i), data.image(i) + plane);
      d.labels.push_back(data.labels[i]);
    }
    return d;
  };
  return {part(false, data.split), part(true, "validation")};
}

DataLoader::DataLoader(const Dataset& data, int64_t batch_size, bool shuffle, uint64_t seed,
                       std::optional<Normalize> normalize)
    : data_(data), batch_size_(batch_size), shuffle_(shuffle), gen_(seed), normalize_(normalize) {
  if (batch_size <= 0)
    throw Error("batch_size must be positive, got " + std::to_string(batch_size));
  if (normalize) normalize->check(data.channels);
  order_.resize(static_cast<std::size_t>(data.count));
  reset();
}

void DataLoader::reset() {
  std::iota(order_.begin(), order_.end(), 0);
  if (shuffle_) {
    // Fisher-Yates with the loader's own generator: the same permutation on every platform.
    for (int64_t i = static_cast<int64_t>(order_.size()) - 1; i > 0; --i) {
      std::swap(order_[i], order_[gen_.below(static_cast<uint64_t>(i + 1))]);
    }
  }
  pos_ = 0;
}

void Normalize::check(int64_t channels) const {
  if (mean.empty() || mean.size() != std.size() ||
      (mean.size() != 1 && static_cast<int64_t>(mean.size()) != channels)) {
    throw Error("normalisation: " + std::to_string(mean.size()) + " means and " +
                std::to_string(std.size()) + " stds for images of " + std::to_string(channels) +
                " channels (give one of each, or one per channel)");
  }
  for (std::size_t c = 0; c < mean.size(); ++c) {
    if (!std::isfinite(mean[c]) || !std::isfinite(std[c]) || !(std[c] > 0.0f)) {
      throw Error("normalisation: mean " + std::to_string(mean[c]) + ", std " +
                  std::to_string(std[c]) + " (the mean must be finite and the std positive)");
    }
  }
}

nlohmann::json Normalize::to_json() const {
  if (mean.size() == 1) return {{"mean", mean[0]}, {"std", std[0]}};
  return {{"mean", mean}, {"std", std}};
}

Normalize Normalize::from_json(const nlohmann::json& j) {
  auto values = [&](const char* key) {
    std::vector<float> v;
    const bool ok = j.is_object() && j.contains(key);
    if (ok && j[key].is_number()) v.push_back(j[key].get<float>());
    if (ok && j[key].is_array() && j[key].size() <= 4) {
      for (const auto& x : j[key]) {
        if (!x.is_number()) return std::vector<float>{};
        v.push_back(x.get<float>());
      }
    }
    return v;
  };
  Normalize n(values("mean"), values("std"));
  try {
    n.check(static_cast<int64_t>(n.mean.size()));
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + ": " + excerpt(j.dump()));
  }
  return n;
}

Normalize channel_stats(const Dataset& data) {
  const int64_t hw = data.rows * data.cols;
  Normalize n(std::vector<float>(static_cast<std::size_t>(data.channels)),
              std::vector<float>(static_cast<std::size_t>(data.channels)));
  for (int64_t c = 0; c < data.channels; ++c) {
    // Integer sums: exact, and the same whatever the order.
    uint64_t sum = 0, squares = 0;
    for (int64_t i = 0; i < data.count; ++i) {
      const uint8_t* p = data.image(i) + c * hw;
      for (int64_t j = 0; j < hw; ++j) {
        sum += p[j];
        squares += uint64_t{p[j]} * p[j];
      }
    }
    const double count = static_cast<double>(data.count) * static_cast<double>(hw);
    const double mean = static_cast<double>(sum) / count;
    const double var = std::max(0.0, static_cast<double>(squares) / count - mean * mean);
    n.mean[c] = static_cast<float>(mean / 255.0);
    // A channel that is the same everywhere: 1, so that it passes through centred.
    n.std[c] = var > 0 ? static_cast<float>(std::sqrt(var) / 255.0) : 1.0f;
  }
  return n;
}

void DataLoader::set_augment(const Augment& augment, uint64_t seed) {
  augment_ = augment;
  aug_gen_.manual_seed(seed);
}

void DataLoader::skip(int64_t batches) {
  if (batches < 0 || batches > batches_per_epoch()) {
    throw Error("cannot skip " + std::to_string(batches) + " batches of an epoch of " +
                std::to_string(batches_per_epoch()));
  }
  pos_ = std::min(data_.count, batches * batch_size_);
}

int64_t DataLoader::batches_per_epoch() const {
  return (data_.count + batch_size_ - 1) / batch_size_;
}

void DataLoader::set_shard(int rank, int size) {
  shard_of(0, rank, size);  // validates
  shard_rank_ = rank;
  shard_size_ = size;
}

bool DataLoader::next(Batch& batch) {
  if (pos_ >= data_.count) return false;
  const int64_t global = std::min(batch_size_, data_.count - pos_);
  const Shard shard = shard_of(global, shard_rank_, shard_size_);
  const int64_t b = shard.count, start = pos_ + shard.first;
  batch.first = shard.first;
  batch.global_count = global;
  const int64_t plane = data_.channels * data_.rows * data_.cols;
  if (!fill_images_) {
    batch.labels.resize(static_cast<std::size_t>(b));
    batch.indices.resize(static_cast<std::size_t>(b));
    for (int64_t i = 0; i < b; ++i) {
      batch.indices[i] = order_[start + i];
      batch.labels[i] = data_.labels[batch.indices[i]];
    }
    pos_ += global;
    return true;
  }
  if (batch.images.shape() != Shape{b, data_.channels, data_.rows, data_.cols}) {
    batch.images = Tensor({b, data_.channels, data_.rows, data_.cols});
  }
  batch.labels.resize(static_cast<std::size_t>(b));
  batch.indices.resize(static_cast<std::size_t>(b));
  // Per channel: x / 255 normalised is x * scale - shift.
  const int64_t hw = data_.rows * data_.cols;
  std::vector<float> scales(static_cast<std::size_t>(data_.channels), 1.0f / 255.0f),
      shifts(static_cast<std::size_t>(data_.channels), 0.0f);
  if (normalize_) {
    for (int64_t c = 0; c < data_.channels; ++c) {
      scales[c] = 1.0f / (255.0f * normalize_->std_of(c));
      shifts[c] = normalize_->mean_of(c) / normalize_->std_of(c);
    }
  }
  // The other ranks' images before this shard: their augmentations drawn and dropped.
  if (augment_.enabled()) {
    for (int64_t i = 0; i < shard.first; ++i) draw_augment(augment_, aug_gen_);
  }
  for (int64_t i = 0; i < b; ++i) {
    const int64_t idx = order_[start + i];
    batch.indices[i] = idx;
    batch.labels[i] = data_.labels[idx];
    const uint8_t* src = data_.image(idx);
    float* dst = batch.images.data() + i * plane;
    if (augment_.enabled()) {
      // One draw for the image, applied to each channel with its own scaling.
      const AugmentDraw draw = draw_augment(augment_, aug_gen_);
      for (int64_t c = 0; c < data_.channels; ++c) {
        augment_image(src + c * hw, 1, data_.rows, data_.cols, draw, scales[c], shifts[c],
                      dst + c * hw);
      }
    } else {
      for (int64_t c = 0; c < data_.channels; ++c) {
        const float scale = scales[c], shift = shifts[c];
        for (int64_t j = c * hw; j < (c + 1) * hw; ++j) dst[j] = src[j] * scale - shift;
      }
    }
  }
  if (augment_.enabled()) {
    for (int64_t i = shard.first + b; i < global; ++i) draw_augment(augment_, aug_gen_);
  }
  pos_ += global;
  return true;
}

}  // namespace cnn
