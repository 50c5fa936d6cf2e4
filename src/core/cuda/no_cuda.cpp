// The CUDA runtime of a build without nvcc: there is no device, and nothing that needs one can
// be reached (Tensor refuses Device::CUDA first, with unavailable_reason()).
#include <string>

#include "../../ops/cuda/ops.h"
#include "cnn/error.h"
#include "runtime.h"

namespace cnn::cuda {

namespace {
[[noreturn]] void refuse(const char* what) {
  throw Error(std::string(what) + ": " + unavailable_reason());
}
}  // namespace

bool available() { return false; }
std::string unavailable_reason() {
  return "this build has no CUDA backend (CMake did not find nvcc; see docs/CUDA.md)";
}
std::string device_name() { refuse("cuda::device_name"); }
void* allocate(std::size_t) { refuse("cuda::allocate"); }
void deallocate(void*, std::size_t) { refuse("cuda::deallocate"); }
void empty_cache() {}
void memset_zero(void*, std::size_t) { refuse("cuda::memset_zero"); }
void fill(float*, int64_t, float) { refuse("cuda::fill"); }
void copy(void*, const void*, std::size_t, Copy) { refuse("cuda::copy"); }
void synchronize() {}
void throw_unavailable(const char* op) { refuse(op); }

}  // namespace cnn::cuda
