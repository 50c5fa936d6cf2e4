// The CUDA runtime as the library uses it (runtime.h): whether a device answers, the caching
// device allocator behind CUDA tensors, fills and copies. Everything runs on the default stream,
// so the order of launches and copies is the order of the calls.
#include <cuda_runtime.h>

#include <algorithm>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "../../ops/cuda/ops.h"
#include "check.cuh"
#include "cnn/error.h"
#include "runtime.h"

namespace cnn::cuda {

namespace {

struct Probe {
  bool ok = false;
  std::string reason;
};

const Probe& probe() {
  static const Probe p = [] {
    Probe r;
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
      r.reason = e == cudaErrorInsufficientDriver || e == cudaErrorNoDevice
                     ? std::string(
                           "no CUDA device: no NVIDIA GPU with a driver was found (the "
                           "CUDA runtime says: ") +
                           cudaGetErrorString(e) + ")"
                     : std::string("no CUDA device: ") + cudaGetErrorString(e);
      cudaGetLastError();  // clears it, so that no later call reports it as its own
    } else if (count == 0) {
      r.reason = "no CUDA device: the driver sees none";
    } else {
      r.ok = true;
    }
    return r;
  }();
  return p;
}

// Freed blocks by size; cudaMalloc and cudaFree synchronise the whole device, which a training
// step must not, and a step allocates the same sizes every time.
class DeviceCache {
 public:
  static DeviceCache& instance() {
    static DeviceCache* cache = new DeviceCache;  // never destroyed: tensors may outlive statics
    return *cache;
  }
  void* get(std::size_t bytes) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        return p;
      }
    }
    void* p = nullptr;
    cudaError_t e = cudaMalloc(&p, bytes);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      release();
      e = cudaMalloc(&p, bytes);
    }
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      throw Error("CUDA out of memory: asked for " + std::to_string(bytes) +
                  " bytes, with the cache emptied (" + cudaGetErrorString(e) + ")");
    }
    // Anything else is not the size's fault (an earlier kernel's fault is reported here, say).
    if (e != cudaSuccess) throw_cuda(e, "cudaMalloc", __FILE__, __LINE__);
    return p;
  }
  void put(void* p, std::size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    free_[bytes].push_back(p);
  }
  void release() {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [bytes, blocks] : free_) {
      for (void* p : blocks) cudaFree(p);
      blocks.clear();
    }
  }

 private:
  std::mutex mu_;
  std::unordered_map<std::size_t, std::vector<void*>> free_;
};

__global__ void fill_kernel(float* p, int64_t n, float value) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x) {
    p[i] = value;
  }
}

}  // namespace

bool available() { return probe().ok; }

std::string unavailable_reason() { return probe().ok ? "" : probe().reason; }

std::string device_name() {
  if (!available()) throw Error("cuda::device_name: " + unavailable_reason());
  int device = 0;
  CNN_CUDA_CHECK(cudaGetDevice(&device));
  cudaDeviceProp prop{};
  CNN_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  return std::string(prop.name) + " (sm_" + std::to_string(prop.major) +
         std::to_string(prop.minor) + ", " + std::to_string(prop.totalGlobalMem >> 30) + " GiB)";
}

void* allocate(std::size_t bytes) { return DeviceCache::instance().get(bytes); }
void deallocate(void* p, std::size_t bytes) { DeviceCache::instance().put(p, bytes); }
void empty_cache() { DeviceCache::instance().release(); }

void memset_zero(void* p, std::size_t bytes) { CNN_CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, 0)); }

void fill(float* p, int64_t n, float value) {
  if (n <= 0) return;
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((n + threads - 1) / threads, 65536);
  fill_kernel<<<static_cast<unsigned>(blocks), threads>>>(p, n, value);
  CNN_CUDA_CHECK(cudaGetLastError());
}

void copy(void* dst, const void* src, std::size_t bytes, Copy kind) {
  const cudaMemcpyKind k = kind == Copy::HostToDevice   ? cudaMemcpyHostToDevice
                           : kind == Copy::DeviceToHost ? cudaMemcpyDeviceToHost
                                                        : cudaMemcpyDeviceToDevice;
  CNN_CUDA_CHECK(cudaMemcpy(dst, src, bytes, k));
}

void synchronize() {
  if (available()) CNN_CUDA_CHECK(cudaDeviceSynchronize());
}

void throw_unavailable(const char* op) {
  throw Error(
      std::string(op) + ": " +
      (available() ? std::string("not built into this CUDA backend") : unavailable_reason()));
}

}  // namespace cnn::cuda
