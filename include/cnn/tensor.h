// Tensor: float32, contiguous, row-major (NCHW for images), int64 shape, 64-byte aligned storage,
// tagged with the device it lives on. Copies share storage (as in PyTorch); clone() copies data.
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
  // limits::kMaxTensorElements (cnn/limits.h); throws cnn::Error naming the shape otherwise.
  explicit Tensor(Shape shape, Device device = Device::CPU);

  static Tensor zeros(Shape shape) { return Tensor(std::move(shape)); }
  // Uninitialised: for outputs a kernel overwrites in full. With the environment variable
  // CNN_POISON=1 the contents are NaN, so that a test sees any element a kernel fails to write.
  static Tensor empty(Shape shape);
  static Tensor full(Shape shape, float value);
  // Takes values in row-major order; values.size() must equal the shape's numel.
  static Tensor from(Shape shape, const std::vector<float>& values);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  // size(-1) is the last dimension, as in PyTorch.
  int64_t size(int64_t d) const;
  int64_t numel() const { return numel_; }
  Device device() const { return device_; }

  float* data() { return storage_.get(); }
  const float* data() const { return storage_.get(); }
  float* begin() { return data(); }
  float* end() { return data() + numel_; }
  const float* begin() const { return data(); }
  const float* end() const { return data() + numel_; }
  float& operator[](int64_t i) { return storage_.get()[i]; }
  float operator[](int64_t i) const { return storage_.get()[i]; }
  // Element at a full multi-index, bounds-checked (for tests and tools, not hot loops).
  float at(std::initializer_list<int64_t> index) const;

  Tensor clone() const;
  // Same storage, new shape with the same numel; one dimension may be -1.
  Tensor reshape(Shape shape) const;
  void fill(float value);
  std::vector<float> to_vector() const { return {begin(), end()}; }

 private:
  Tensor(Shape shape, bool zero);
  std::shared_ptr<float> storage_;
  Shape shape_;
  int64_t numel_ = 0;
  Device device_ = Device::CPU;
};

// Normalises a possibly negative dimension index of a rank-`rank` tensor; throws on out of range.
int64_t wrap_dim(int64_t dim, int64_t rank, const char* what);

}  // namespace cnn
