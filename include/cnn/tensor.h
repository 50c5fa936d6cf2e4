// Tensor: contiguous, row-major (NCHW for images), int64 shape, float32 (or int32 for indices and
// class targets), in storage on the device it lives on: 64-byte aligned host memory from a
// caching host allocator, or device memory from the caching CUDA allocator. Copies share storage
// (as in PyTorch); clone() copies data; to(device) copies between devices.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace cnn {

using Shape = std::vector<int64_t>;

enum class Device { CPU, CUDA };

std::string to_string(Device device);
// "cpu" or "cuda" (also "cuda:0", the only CUDA device used); throws cnn::Error otherwise.
Device parse_device(const std::string& name);
// Whether tensors can be made on the device: always for the CPU; for CUDA, whether this build
// has the CUDA backend and a GPU answers. device_unavailable_reason says why not.
bool device_available(Device device);
std::string device_unavailable_reason(Device device);
// "cpu", or the GPU's name ("NVIDIA H200 (sm_90, 139 GiB)").
std::string device_description(Device device);
// Waits until the device has finished the work queued on it (CUDA kernels run asynchronously;
// a copy to the host waits by itself). A no-op for the CPU.
void synchronize(Device device);

// The element type. Int32 holds indices (max-pooling's winners) and class targets; every op's
// data is Float32.
enum class Dtype { Float32, Int32 };
std::string to_string(Dtype dtype);

// "(2, 3, 28, 28)": the form used in every error message.
std::string shape_str(const Shape& shape);
// The product of the dimensions, which may be negative (torchsummary's batch of -1); throws
// cnn::Error when it does not fit in int64 instead of wrapping.
int64_t shape_numel(const Shape& shape);

// Every size and byte count computed from what a file or a request declares goes through these:
// they never wrap. checked_mul: a * b for a, b >= 0; throws cnn::Error naming `what` (and the
// operands) when either is negative or the product does not fit in int64.
int64_t checked_mul(int64_t a, int64_t b, std::string_view what);
// The number of elements of a shape whose dimensions must all be >= 0; throws cnn::Error naming
// `what` and the shape for a negative dimension or a product that does not fit in int64. (The
// limit on a tensor's elements, limits::kMaxTensorElements, is the Tensor constructor's to check.)
int64_t checked_numel(const Shape& shape, std::string_view what);

class Tensor {
 public:
  static constexpr std::size_t kAlignment = 64;

  Tensor() = default;  // undefined: defined() is false
  // Zero-filled tensor of the given shape. Every dimension must be >= 0 and the elements at most
  // limits::kMaxTensorElements (cnn/limits.h); throws cnn::Error naming the shape otherwise, and
  // naming the reason when the device is not available (device_unavailable_reason).
  explicit Tensor(Shape shape, Device device = Device::CPU, Dtype dtype = Dtype::Float32);

  static Tensor zeros(Shape shape, Device device = Device::CPU) {
    return Tensor(std::move(shape), device);
  }
  // Uninitialised: for outputs a kernel overwrites in full. With the environment variable
  // CNN_POISON=1 the contents are NaN (an Int32 tensor: -1, every byte 0xFF), so that a test
  // sees any element a kernel fails to write.
  static Tensor empty(Shape shape, Device device = Device::CPU, Dtype dtype = Dtype::Float32);
  static Tensor full(Shape shape, float value, Device device = Device::CPU);
  // Takes values in row-major order; values.size() must equal the shape's numel.
  static Tensor from(Shape shape, const std::vector<float>& values, Device device = Device::CPU);
  // An Int32 tensor of the values (class targets, indices).
  static Tensor from_ints(Shape shape, const std::vector<int32_t>& values,
                          Device device = Device::CPU);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  // size(-1) is the last dimension, as in PyTorch.
  int64_t size(int64_t d) const;
  int64_t numel() const { return numel_; }
  Device device() const { return device_; }
  bool is_cuda() const { return device_ == Device::CUDA; }
  Dtype dtype() const { return dtype_; }

  // The elements: host memory for a CPU tensor, device memory for a CUDA one (for kernels; the
  // host reads a CUDA tensor through to(Device::CPU) or to_vector()). data() for Float32,
  // data_int() for Int32 (the type is not checked here: the ops check dtypes at their entry).
  float* data() { return storage_.get(); }
  const float* data() const { return storage_.get(); }
  int32_t* data_int() { return reinterpret_cast<int32_t*>(storage_.get()); }
  const int32_t* data_int() const { return reinterpret_cast<const int32_t*>(storage_.get()); }
  float* begin() { return data(); }
  float* end() { return data() + numel_; }
  const float* begin() const { return data(); }
  const float* end() const { return data() + numel_; }
  // Host tensors only (begin/end and operator[] read memory directly).
  float& operator[](int64_t i) { return storage_.get()[i]; }
  float operator[](int64_t i) const { return storage_.get()[i]; }
  // Element at a full multi-index, bounds-checked (for tests and tools, not hot loops; any device).
  float at(std::initializer_list<int64_t> index) const;

  // A copy on the same device.
  Tensor clone() const;
  // This tensor on `device`: itself (shared storage) when it is there already, else a copy.
  Tensor to(Device device) const;
  Tensor cpu() const { return to(Device::CPU); }
  // Copies src's elements into this tensor (same numel and dtype; any devices).
  void copy_(const Tensor& src);
  // Same storage, new shape with the same numel; one dimension may be -1.
  Tensor reshape(Shape shape) const;
  // A tensor of `shape` sharing this one's storage from element `offset` on (offset plus the
  // shape's elements must lie within this tensor's): the parameter arena's views (cnn/nn/module.h).
  // Its data is 64-byte aligned only where offset is a multiple of 16 elements.
  Tensor view(int64_t offset, Shape shape) const;
  // Every element (Float32) set to value, on any device.
  void fill(float value);
  // The elements, copied to the host from any device.
  std::vector<float> to_vector() const;
  std::vector<int32_t> to_int_vector() const;

 private:
  Tensor(Shape shape, Device device, Dtype dtype, bool zero);
  std::shared_ptr<float> storage_;
  Shape shape_;
  int64_t numel_ = 0;
  Device device_ = Device::CPU;
  Dtype dtype_ = Dtype::Float32;
};

// Normalises a possibly negative dimension index of a rank-`rank` tensor; throws on out of range.
int64_t wrap_dim(int64_t dim, int64_t rank, const char* what);

}  // namespace cnn
