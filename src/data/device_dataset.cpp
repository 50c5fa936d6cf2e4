#include "device_dataset.h"

#include "../core/cuda/runtime.h"
#include "../ops/cuda/ops.h"
#include "cnn/error.h"

namespace cnn::detail {

DeviceDataset::DeviceDataset(const Dataset& data, Device device, std::optional<Normalize> normalize)
    : channels_(data.channels), rows_(data.rows), cols_(data.cols) {
  if (device != Device::CUDA) throw Error("DeviceDataset: only for CUDA");
  if (channels_ > 4)
    throw Error("DeviceDataset: at most 4 channels, got " + std::to_string(channels_));
  if (!device_available(device)) {
    throw Error("device cuda is not available: " + device_unavailable_reason(device));
  }
  const std::size_t bytes = std::max<std::size_t>(data.pixels.size(), 1);
  auto* p = static_cast<uint8_t*>(cuda::allocate(bytes));
  pixels_ = std::shared_ptr<uint8_t>(p, [bytes](uint8_t* q) { cuda::deallocate(q, bytes); });
  if (!data.pixels.empty()) {
    cuda::copy(p, data.pixels.data(), data.pixels.size(), cuda::Copy::HostToDevice);
  }
  labels_ = Tensor::from_ints({data.count},
                              std::vector<int32_t>(data.labels.begin(), data.labels.end()), device);
  const Normalize n = normalize.value_or(Normalize{});
  n.check(channels_);
  for (int64_t c = 0; c < channels_; ++c) {
    mean_.push_back(n.mean_of(c));
    std_.push_back(n.std_of(c));
  }
}

void DeviceDataset::gather(const std::vector<int64_t>& rows, Tensor& images, Tensor& labels) const {
  const Tensor index =
      Tensor::from_ints({static_cast<int64_t>(rows.size())},
                        std::vector<int32_t>(rows.begin(), rows.end()), Device::CUDA);
  images =
      cuda::gather_images(pixels_.get(), index, channels_, rows_, cols_, mean_.data(), std_.data());
  labels = cuda::gather_labels(labels_, index);
}

}  // namespace cnn::detail
