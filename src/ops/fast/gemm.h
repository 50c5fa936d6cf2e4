// SGEMM for the fast kernels: OpenBLAS, run single-threaded inside the kernels' own OpenMP
// split of the batch (one BLAS thread pool inside another would oversubscribe the cores).
#pragma once

#include <cstdint>
#include <string>

namespace cnn::fast {

// The BLAS and the kernel set it runs, e.g. "OpenBLAS SkylakeX", with a note in parentheses where
// cnn chose that set because OpenBLAS did not recognise the processor (gemm.cpp).
std::string blas_kernels();

// C (M x N) = alpha * op(A) * op(B) + beta * C, all row-major. op(A) is M x K, op(B) is K x N.
// lda, ldb, ldc are the row strides of A, B and C as stored.
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// y (M) = alpha * A (M x N, row-major, row stride lda) x (N) + beta * y: one image through a
// fully connected layer, where SGEMM's small-matrix kernels are slower than OpenBLAS's SGEMV.
void sgemv(int64_t M, int64_t N, float alpha, const float* A, int64_t lda, const float* x,
           float beta, float* y);

}  // namespace cnn::fast
