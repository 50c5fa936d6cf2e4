// A data set resident on a device (CUDA): its images uploaded once as bytes, its labels as Int32;
// each batch gathered and scaled there from the loader's indices, so that a training step moves
// only a batch's indices to the device (cnn::Trainer uses it for --device cuda without
// augmentation). The arithmetic is the host loader's: byte * (1 / (255 std)) - mean / std.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "cnn/data/dataset.h"

namespace cnn::detail {

class DeviceDataset {
 public:
  // Uploads data's pixels and labels to device (Device::CUDA).
  DeviceDataset(const Dataset& data, Device device, std::optional<Normalize> normalize);
  // The batch of the given rows: images (B, C, H, W) float32 and labels Int32 (B), on the device.
  void gather(const std::vector<int64_t>& rows, Tensor& images, Tensor& labels) const;

 private:
  int64_t channels_, rows_, cols_;
  std::shared_ptr<uint8_t> pixels_;  // device memory
  Tensor labels_;
  std::vector<float> mean_, std_;
};

}  // namespace cnn::detail
