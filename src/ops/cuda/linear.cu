// linear on CUDA: y = x w^T + b as one cuBLAS SGEMM (float32, no TF32), the gradients as two more
// and a bias-gradient reduction. cuBLAS is column-major: a row-major (r, c) matrix is read as its
// (c, r) transpose with leading dimension c, so y^T = w x^T is gemm(T, N) on (w, x), and so on.
#include <algorithm>

#include "../../core/cuda/check.cuh"
#include "ops.h"

namespace cnn::cuda {

namespace {

// y (M, N) = bias in every row, for the product to add to (beta = 1).
__global__ void broadcast_rows_kernel(const float* __restrict__ b, float* __restrict__ y, int64_t m,
                                      int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < m * n;
       i += int64_t(gridDim.x) * blockDim.x) {
    y[i] = b[i % n];
  }
}

// db[j] += sum over rows of dy[:, j], rows in order, in double as the CPU reference
// (reference/linear.cpp): one thread per column (deterministic).
__global__ void column_sums_kernel(const float* __restrict__ dy, float* __restrict__ db, int64_t m,
                                   int64_t n) {
  for (int64_t j = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; j < n;
       j += int64_t(gridDim.x) * blockDim.x) {
    double s = 0.0;
    for (int64_t i = 0; i < m; ++i) s += dy[i * n + j];
    db[j] += static_cast<float>(s);
  }
}

int ld(int64_t v) { return static_cast<int>(std::max<int64_t>(v, 1)); }

}  // namespace

Tensor linear_forward(const Tensor& x, const Tensor& w, const Tensor& b) {
  const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
  Tensor y = b.defined() ? Tensor::empty({M, N}, Device::CUDA) : Tensor({M, N}, Device::CUDA);
  if (M == 0 || N == 0) return y;
  if (b.defined()) {
    broadcast_rows_kernel<<<blocks_for(M * N), 256>>>(b.data(), y.data(), M, N);
    CNN_CUDA_CHECK(cudaGetLastError());
  }
  if (K == 0) return y;
  const float one = 1.0f;
  CNN_CUBLAS_CHECK(cublas_api().sgemm(cublas(), CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(N),
                                      static_cast<int>(M), static_cast<int>(K), &one, w.data(),
                                      ld(K), x.data(), ld(K), &one, y.data(), ld(N)));
  return y;
}

void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor* dw,
                     Tensor* db) {
  const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
  const float one = 1.0f, zero = 0.0f;
  if (dx && dx->numel() > 0) {
    if (N == 0) {
      CNN_CUDA_CHECK(cudaMemsetAsync(dx->data(), 0, dx->numel() * sizeof(float), 0));
    } else {
      // dx^T (K, M) = w^T (K, N) dy^T (N, M)
      CNN_CUBLAS_CHECK(cublas_api().sgemm(cublas(), CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(K),
                                          static_cast<int>(M), static_cast<int>(N), &one, w.data(),
                                          ld(K), dy.data(), ld(N), &zero, dx->data(), ld(K)));
    }
  }
  if (dw && M > 0 && N > 0 && K > 0) {
    // dw^T (K, N) += x^T (K, M) dy (M, N)
    CNN_CUBLAS_CHECK(cublas_api().sgemm(cublas(), CUBLAS_OP_N, CUBLAS_OP_T, static_cast<int>(K),
                                        static_cast<int>(N), static_cast<int>(M), &one, x.data(),
                                        ld(K), dy.data(), ld(N), &one, dw->data(), ld(K)));
  }
  if (db && N > 0) {
    column_sums_kernel<<<blocks_for(N), 256>>>(dy.data(), db->data(), M, N);
    CNN_CUDA_CHECK(cudaGetLastError());
  }
}

}  // namespace cnn::cuda
