// A batch gathered from a data set resident on the device (src/data/device_dataset.h): the host
// loader's arithmetic, byte * (1 / (255 std)) - mean / std with both factors rounded to float
// first, so that the device's batches equal the host's bit for bit.
#include <cstdint>

#include "../../core/cuda/check.cuh"
#include "ops.h"

namespace cnn::cuda {

namespace {

struct ChannelScale {
  float scale[4], shift[4];
};

__global__ void gather_images_kernel(const uint8_t* __restrict__ images,
                                     const int32_t* __restrict__ index, float* __restrict__ y,
                                     int64_t batch, int64_t c, int64_t hw, ChannelScale s) {
  const int64_t plane = c * hw, n = batch * plane;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = i / plane, j = i % plane, ch = j / hw;
    const uint8_t byte = images[int64_t(index[b]) * plane + j];
    y[i] = float(byte) * s.scale[ch] - s.shift[ch];
  }
}

__global__ void gather_labels_kernel(const int32_t* __restrict__ labels,
                                     const int32_t* __restrict__ index, int32_t* __restrict__ y,
                                     int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    y[i] = labels[index[i]];
  }
}

}  // namespace

Tensor gather_images(const uint8_t* images, const Tensor& index, int64_t c, int64_t h, int64_t w,
                     const float* mean, const float* std) {
  if (c < 1 || c > 4) throw Error("gather_images: 1 to 4 channels, got " + std::to_string(c));
  ChannelScale s{};
  for (int64_t ch = 0; ch < c; ++ch) {
    // As DataLoader::next (src/data/dataset.cpp).
    s.scale[ch] = 1.0f / (255.0f * std[ch]);
    s.shift[ch] = mean[ch] / std[ch];
  }
  const int64_t batch = index.numel();
  Tensor y = Tensor::empty({batch, c, h, w}, Device::CUDA);
  if (y.numel() == 0) return y;
  gather_images_kernel<<<blocks_for(y.numel()), 256>>>(images, index.data_int(), y.data(), batch, c,
                                                       h * w, s);
  CNN_CUDA_CHECK(cudaGetLastError());
  return y;
}

Tensor gather_labels(const Tensor& labels, const Tensor& index) {
  Tensor y = Tensor::empty(index.shape(), Device::CUDA, Dtype::Int32);
  if (y.numel() == 0) return y;
  gather_labels_kernel<<<blocks_for(y.numel()), 256>>>(labels.data_int(), index.data_int(),
                                                       y.data_int(), y.numel());
  CNN_CUDA_CHECK(cudaGetLastError());
  return y;
}

}  // namespace cnn::cuda
