// The CUDA runtime as the library uses it: whether a device is there, the caching device
// allocator behind Tensor's CUDA storage, copies, and the cuBLAS handle. Plain C++ (no CUDA
// types), so that src/core/tensor.cpp can call it; implemented in runtime.cu when CMake finds
// nvcc (CNN_WITH_CUDA=1), and in no_cuda.cpp otherwise (no device, every other call throws).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace cnn::cuda {

// Whether this build has CUDA and a device answers (checked once, then cached). A build with
// CUDA on a machine without a GPU or driver says false; nothing else here may be called then.
bool available();
// Why not, when available() is false: "this build has no CUDA backend (nvcc was not found)",
// "no CUDA device: <the runtime's message>".
std::string unavailable_reason();
// "NVIDIA H200 (sm_90, 139 GiB)".
std::string device_name();

// Device memory from a caching allocator: blocks freed are kept by size and handed out again
// (cudaMalloc and cudaFree synchronise the device, which a training step must not). Throws
// cnn::Error when the device is out of memory even after the cache is released.
void* allocate(std::size_t bytes);
void deallocate(void* p, std::size_t bytes);
// Returns every cached block to the device.
void empty_cache();

void memset_zero(void* p, std::size_t bytes);
void fill(float* p, int64_t n, float value);

enum class Copy { HostToDevice, DeviceToHost, DeviceToDevice };
// Synchronous for DeviceToHost (the host reads the result next); ordered on the default stream
// otherwise.
void copy(void* dst, const void* src, std::size_t bytes, Copy kind);
void synchronize();

}  // namespace cnn::cuda
