#include "cnn/tensor.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <new>
#include <unordered_map>

#include "cnn/error.h"
#include "cnn/limits.h"
#include "cuda/runtime.h"

namespace cnn {

std::string to_string(Device device) { return device == Device::CPU ? "cpu" : "cuda"; }
std::string to_string(Dtype dtype) { return dtype == Dtype::Float32 ? "float32" : "int32"; }

Device parse_device(const std::string& name) {
  if (name == "cpu") return Device::CPU;
  if (name == "cuda" || name == "cuda:0") return Device::CUDA;
  throw Error("unknown device '" + name + "': expected cpu or cuda");
}

bool device_available(Device device) { return device == Device::CPU || cuda::available(); }

std::string device_unavailable_reason(Device device) {
  return device_available(device) ? "" : cuda::unavailable_reason();
}

void synchronize(Device device) {
  if (device == Device::CUDA) cuda::synchronize();
}

std::string device_description(Device device) {
  return device == Device::CPU ? "cpu" : cuda::device_name();
}

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
  for (int64_t d : shape) {
    if (__builtin_mul_overflow(n, d, &n)) {
      throw Error("shape " + shape_str(shape) + ": the number of elements overflows int64");
    }
  }
  return n;
}

int64_t checked_mul(int64_t a, int64_t b, std::string_view what) {
  int64_t r = 0;
  if (a < 0 || b < 0) {
    throw Error(std::string(what) + ": negative size (" + std::to_string(a) + " x " +
                std::to_string(b) + ")");
  }
  if (__builtin_mul_overflow(a, b, &r)) {
    throw Error(std::string(what) + ": " + std::to_string(a) + " x " + std::to_string(b) +
                " overflows int64");
  }
  return r;
}

int64_t checked_numel(const Shape& shape, std::string_view what) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) {
      throw Error(std::string(what) + ": negative dimension in shape " + shape_str(shape));
    }
    if (__builtin_mul_overflow(n, d, &n)) {
      throw Error(std::string(what) + ": shape " + shape_str(shape) +
                  ": the number of elements overflows int64");
    }
  }
  return n;
}

namespace {

// A caching allocator: a training step allocates the same sizes every time, so freed blocks are
// kept by size and handed out again instead of going back to the system (which would page-fault
// them in anew; on the 2-core machine that cost ~5 % of a step). The cache is capped.
class BlockCache {
 public:
  static BlockCache& instance() {
    static BlockCache* cache = new BlockCache;  // never destroyed: tensors may outlive statics
    return *cache;
  }
  float* get(std::size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.empty()) {
        float* p = it->second.back();
        it->second.pop_back();
        cached_ -= bytes;
        return p;
      }
    }
    return static_cast<float*>(::operator new[](bytes, std::align_val_t(Tensor::kAlignment)));
  }
  void put(float* p, std::size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (cached_ + bytes <= kCapBytes) {
        free_[bytes].push_back(p);
        cached_ += bytes;
        return;
      }
    }
    ::operator delete[](p, std::align_val_t(Tensor::kAlignment));
  }

 private:
  static constexpr std::size_t kCapBytes = std::size_t{256} << 20;
  std::mutex mu_;
  std::unordered_map<std::size_t, std::vector<float*>> free_;
  std::size_t cached_ = 0;
};

bool poison_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("CNN_POISON");
    return v && std::string(v) == "1";
  }();
  return on;
}

}  // namespace

Tensor::Tensor(Shape shape, Device device, Dtype dtype)
    : Tensor(std::move(shape), device, dtype, true) {}

Tensor::Tensor(Shape shape, Device device, Dtype dtype, bool zero)
    : shape_(std::move(shape)), device_(device), dtype_(dtype) {
  numel_ = checked_numel(shape_, "Tensor");
  if (numel_ > limits::kMaxTensorElements) {
    throw Error("Tensor: shape " + shape_str(shape_) + " has " + std::to_string(numel_) +
                " elements, more than the limit of " + std::to_string(limits::kMaxTensorElements) +
                " (cnn/limits.h)");
  }
  // At least one element, so that an empty tensor is still defined. Both dtypes are 4 bytes.
  static_assert(sizeof(float) == sizeof(int32_t));
  const std::size_t bytes = static_cast<std::size_t>(std::max<int64_t>(numel_, 1)) * sizeof(float);
  if (device == Device::CUDA) {
    if (!cuda::available()) {
      throw Error("Tensor: device cuda is not available: " + cuda::unavailable_reason());
    }
    auto* p = static_cast<float*>(cuda::allocate(bytes));
    storage_ = std::shared_ptr<float>(p, [bytes](float* q) { cuda::deallocate(q, bytes); });
    if (zero) {
      cuda::memset_zero(p, bytes);
    } else if (poison_enabled()) {
      // (An Int32 tensor's NaN bits read as 2143289344: no valid index either.)
      cuda::fill(p, static_cast<int64_t>(bytes / sizeof(float)),
                 std::numeric_limits<float>::quiet_NaN());
    }
    return;
  }
  float* p = BlockCache::instance().get(bytes);
  if (zero) {
    std::memset(p, 0, bytes);
  } else if (poison_enabled()) {
    if (dtype == Dtype::Float32) {
      std::fill(p, p + bytes / sizeof(float), std::numeric_limits<float>::quiet_NaN());
    } else {
      std::memset(p, 0xFF, bytes);  // -1: no valid index
    }
  }
  storage_ = std::shared_ptr<float>(p, [bytes](float* q) { BlockCache::instance().put(q, bytes); });
}

Tensor Tensor::empty(Shape shape, Device device, Dtype dtype) {
  return Tensor(std::move(shape), device, dtype, false);
}

Tensor Tensor::full(Shape shape, float value, Device device) {
  Tensor t = empty(std::move(shape), device);
  t.fill(value);
  return t;
}

Tensor Tensor::from(Shape shape, const std::vector<float>& values, Device device) {
  Tensor t = empty(std::move(shape));
  if (static_cast<int64_t>(values.size()) != t.numel()) {
    throw Error("Tensor::from: shape " + shape_str(t.shape()) + " holds " +
                std::to_string(t.numel()) + " values, got " + std::to_string(values.size()));
  }
  std::copy(values.begin(), values.end(), t.data());
  return t.to(device);
}

Tensor Tensor::from_ints(Shape shape, const std::vector<int32_t>& values, Device device) {
  Tensor t = empty(std::move(shape), Device::CPU, Dtype::Int32);
  if (static_cast<int64_t>(values.size()) != t.numel()) {
    throw Error("Tensor::from_ints: shape " + shape_str(t.shape()) + " holds " +
                std::to_string(t.numel()) + " values, got " + std::to_string(values.size()));
  }
  std::copy(values.begin(), values.end(), t.data_int());
  return t.to(device);
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
  if (device_ != Device::CPU) return cpu().data()[offset];
  return data()[offset];
}

Tensor Tensor::clone() const {
  if (!defined()) return {};
  Tensor t = empty(shape_, device_, dtype_);
  t.copy_(*this);
  return t;
}

Tensor Tensor::to(Device device) const {
  if (!defined() || device == device_) return *this;
  Tensor t = empty(shape_, device, dtype_);
  t.copy_(*this);
  return t;
}

void Tensor::copy_(const Tensor& src) {
  if (src.numel() != numel_ || src.dtype() != dtype_) {
    throw Error("Tensor::copy_: cannot copy a " + to_string(src.dtype()) + " tensor of shape " +
                shape_str(src.shape()) + " into a " + to_string(dtype_) + " tensor of shape " +
                shape_str(shape_));
  }
  const std::size_t bytes = static_cast<std::size_t>(numel_) * sizeof(float);
  if (bytes == 0 || src.storage_ == storage_) return;
  if (device_ == Device::CPU && src.device() == Device::CPU) {
    std::memcpy(data(), src.data(), bytes);
  } else {
    const cuda::Copy kind = device_ == Device::CPU        ? cuda::Copy::DeviceToHost
                            : src.device() == Device::CPU ? cuda::Copy::HostToDevice
                                                          : cuda::Copy::DeviceToDevice;
    cuda::copy(data(), src.data(), bytes, kind);
  }
}

std::vector<float> Tensor::to_vector() const {
  if (!defined()) return {};
  const Tensor host = cpu();
  return {host.begin(), host.end()};
}

std::vector<int32_t> Tensor::to_int_vector() const {
  if (!defined()) return {};
  const Tensor host = cpu();
  return {host.data_int(), host.data_int() + numel_};
}

Tensor Tensor::reshape(Shape shape) const {
  int64_t known = 1, infer = -1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer >= 0) throw Error("Tensor::reshape: only one dimension can be inferred");
      infer = static_cast<int64_t>(i);
    } else if (shape[i] < 0) {
      throw Error("Tensor::reshape: invalid dimension " + std::to_string(shape[i]) + " in shape " +
                  shape_str(shape));
    } else {
      known = checked_mul(known, shape[i], "Tensor::reshape");
    }
  }
  if (infer >= 0 && known != 0) shape[infer] = numel_ / known;
  // (With a dimension of 0 beside the -1, the -1 can be any size: refused as PyTorch does.)
  if ((infer >= 0 && known == 0) || checked_numel(shape, "Tensor::reshape") != numel_) {
    throw Error("Tensor::reshape: shape " + shape_str(shape) + " is invalid for input of size " +
                std::to_string(numel_) + " (shape " + shape_str(shape_) + ")");
  }
  Tensor t = *this;
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::view(int64_t offset, Shape shape) const {
  const int64_t n = checked_numel(shape, "Tensor::view");
  if (!defined() || offset < 0 || offset > numel_ || n > numel_ - offset) {
    throw Error("Tensor::view: " + shape_str(shape) + " from element " + std::to_string(offset) +
                " does not lie within a tensor of " + std::to_string(numel_) + " elements");
  }
  Tensor t = *this;
  // The aliasing constructor: the view keeps the whole block alive and points into it.
  t.storage_ = std::shared_ptr<float>(storage_, storage_.get() + offset);
  t.shape_ = std::move(shape);
  t.numel_ = n;
  return t;
}

void Tensor::fill(float value) {
  if (device_ == Device::CUDA) {
    cuda::fill(data(), numel_, value);
  } else {
    std::fill(begin(), end(), value);
  }
}

}  // namespace cnn
