// Error checks for the CUDA runtime and cuBLAS, and the process's cuBLAS. Every failure becomes a
// cnn::Error naming the call, so that a GPU problem surfaces as a message, not a crash.
//
// cuBLAS is loaded when first used (cublas_loader.cpp), not linked: its libraries are hundreds of
// MB that every start of the cnn command would map (0.1 s and 200 MB more per process, measured),
// and a machine without a GPU need not have them. The kernels call it through cublas_api().
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

#include "cnn/error.h"

namespace cnn::cuda {

// The cuBLAS entry points the kernels use, resolved from libcublas.so.13 at the first call;
// throws cnn::Error naming the library and where it was looked for when it cannot be loaded.
struct CublasApi {
  cublasStatus_t (*create)(cublasHandle_t*);
  cublasStatus_t (*set_math_mode)(cublasHandle_t, cublasMath_t);
  cublasStatus_t (*sgemm)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                          const float*, const float*, int, const float*, int, const float*, float*,
                          int);
  cublasStatus_t (*sgemm_strided_batched)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int,
                                          int, int, const float*, const float*, int, long long int,
                                          const float*, int, long long int, const float*, float*,
                                          int, long long int, int);
  const char* (*status_name)(cublasStatus_t);
};
const CublasApi& cublas_api();

[[noreturn]] inline void throw_cuda(cudaError_t e, const char* expr, const char* file, int line) {
  cudaGetLastError();  // clears it, so that no later call reports it as its own
  throw Error(std::string("CUDA error: ") + cudaGetErrorString(e) + " in " + expr + " (" + file +
              ":" + std::to_string(line) + ")");
}

[[noreturn]] inline void throw_cublas(cublasStatus_t s, const char* expr, const char* file,
                                      int line) {
  throw Error(std::string("cuBLAS error: ") + cublas_api().status_name(s) + " in " + expr + " (" +
              file + ":" + std::to_string(line) + ")");
}

#define CNN_CUDA_CHECK(expr)                                                \
  do {                                                                      \
    const cudaError_t cnn_cuda_status_ = (expr);                            \
    if (cnn_cuda_status_ != cudaSuccess) {                                  \
      ::cnn::cuda::throw_cuda(cnn_cuda_status_, #expr, __FILE__, __LINE__); \
    }                                                                       \
  } while (0)

#define CNN_CUBLAS_CHECK(expr)                                                  \
  do {                                                                          \
    const cublasStatus_t cnn_cublas_status_ = (expr);                           \
    if (cnn_cublas_status_ != CUBLAS_STATUS_SUCCESS) {                          \
      ::cnn::cuda::throw_cublas(cnn_cublas_status_, #expr, __FILE__, __LINE__); \
    }                                                                           \
  } while (0)

// The process's cuBLAS handle, on the default stream, in plain float32 (CUBLAS_DEFAULT_MATH: no
// TF32), made at its first use.
inline cublasHandle_t cublas() {
  static cublasHandle_t handle = [] {
    cublasHandle_t h = nullptr;
    CNN_CUBLAS_CHECK(cublas_api().create(&h));
    CNN_CUBLAS_CHECK(cublas_api().set_math_mode(h, CUBLAS_DEFAULT_MATH));
    return h;
  }();
  return handle;
}

// Blocks for a grid-stride loop over n elements.
inline unsigned blocks_for(int64_t n, int threads = 256) {
  const int64_t b = (n + threads - 1) / threads;
  return static_cast<unsigned>(b < 1 ? 1 : b > 65536 ? 65536 : b);
}

}  // namespace cnn::cuda
