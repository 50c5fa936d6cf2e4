#include "cnn/tensor.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "cnn/error.h"

namespace cnn {

std::string to_string(Device device) { return device == Device::CPU ? "cpu" : "cuda"; }

std::string shape_str(const Shape& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

namespace {
struct AlignedDelete {
  void operator()(float* p) const { ::operator delete[](p, std::align_val_t(Tensor::kAlignment)); }
};
}  // namespace

Tensor::Tensor(Shape shape, Device device) : shape_(std::move(shape)), device_(device) {
  for (int64_t d : shape_) {
    if (d < 0) throw Error("Tensor: negative dimension in shape " + shape_str(shape_));
  }
  if (device != Device::CPU) {
    throw Error("Tensor: device " + to_string(device) + " is not available in this build");
  }
  numel_ = shape_numel(shape_);
  // Allocate at least one element so that an empty tensor is still defined.
  const std::size_t n = static_cast<std::size_t>(std::max<int64_t>(numel_, 1));
  float* p = static_cast<float*>(::operator new[](n * sizeof(float), std::align_val_t(kAlignment)));
  std::memset(p, 0, n * sizeof(float));
  storage_ = std::shared_ptr<float>(p, AlignedDelete{});
}

Tensor Tensor::full(Shape shape, float value) {
  Tensor t(std::move(shape));
  t.fill(value);
  return t;
}

Tensor Tensor::from(Shape shape, const std::vector<float>& values) {
  Tensor t(std::move(shape));
  if (static_cast<int64_t>(values.size()) != t.numel()) {
    throw Error("Tensor::from: shape " + shape_str(t.shape()) + " holds " +
                std::to_string(t.numel()) + " values, got " + std::to_string(values.size()));
  }
  std::copy(values.begin(), values.end(), t.data());
  return t;
}

int64_t wrap_dim(int64_t dim, int64_t rank, const char* what) {
  const int64_t lo = rank == 0 ? -1 : -rank, hi = rank == 0 ? 0 : rank - 1;
  if (dim < lo || dim > hi) {
    throw Error(std::string(what) + ": dimension out of range (expected to be in range of [" +
                std::to_string(lo) + ", " + std::to_string(hi) + "], but got " +
                std::to_string(dim) + ")");
  }
  return dim < 0 ? dim + std::max<int64_t>(rank, 1) : dim;
}

int64_t Tensor::size(int64_t d) const { return shape_[wrap_dim(d, dim(), "Tensor::size")]; }

float Tensor::at(std::initializer_list<int64_t> index) const {
  if (static_cast<int64_t>(index.size()) != dim()) {
    throw Error("Tensor::at: " + std::to_string(index.size()) + " indices for a tensor of shape " +
                shape_str(shape_));
  }
  int64_t offset = 0, d = 0;
  for (int64_t i : index) {
    if (i < 0 || i >= shape_[d]) {
      throw Error("Tensor::at: index " + std::to_string(i) + " out of range for dimension " +
                  std::to_string(d) + " of shape " + shape_str(shape_));
    }
    offset = offset * shape_[d++] + i;
  }
  return data()[offset];
}

Tensor Tensor::clone() const {
  if (!defined()) return {};
  Tensor t(shape_, device_);
  std::copy(begin(), end(), t.data());
  return t;
}

Tensor Tensor::reshape(Shape shape) const {
  int64_t known = 1, infer = -1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer >= 0) throw Error("Tensor::reshape: only one dimension can be inferred");
      infer = static_cast<int64_t>(i);
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0 && known != 0) shape[infer] = numel_ / known;
  if (shape_numel(shape) != numel_) {
    throw Error("Tensor::reshape: shape " + shape_str(shape) + " is invalid for input of size " +
                std::to_string(numel_) + " (shape " + shape_str(shape_) + ")");
  }
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

void Tensor::fill(float value) { std::fill(begin(), end(), value); }

}  // namespace cnn
