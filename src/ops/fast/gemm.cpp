#include "gemm.h"

#include <cblas.h>

#include <mutex>

// OpenBLAS's own (pthreads) build: stops its worker threads. Weak, so that a build of OpenBLAS
// without it (serial, OpenMP) still links; then it is null.
extern "C" int blas_thread_shutdown_(void) __attribute__((weak));

namespace cnn::fast {

namespace {
// One BLAS thread per call, and none waiting: OpenBLAS's pthreads build starts a worker per core
// when it loads, and after openblas_set_num_threads(1) they still poll for work with
// sched_yield, taking a core's time from ours (a third of a one-thread run of
// build/cnn_conv_layers went to them; with OPENBLAS_NUM_THREADS=1 in the environment, which
// starts none, the convolutions ran 1.5-2x faster at batch 1 and batch-1000 inference 1.2x).
// With one thread set, OpenBLAS never hands work to a worker again, so shutting them down is
// safe; it would start them again only for more threads.
void single_threaded() {
  static std::once_flag once;
  std::call_once(once, [] {
    openblas_set_num_threads(1);
    if (blas_thread_shutdown_) blas_thread_shutdown_();
  });
}
// Done when the library's static objects are built, before the first product: inference may
// run for long before it calls OpenBLAS at all.
const bool kSingleThreaded = (single_threaded(), true);
}  // namespace

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  single_threaded();
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, static_cast<blasint>(M), static_cast<blasint>(N),
              static_cast<blasint>(K), alpha, A, static_cast<blasint>(lda), B,
              static_cast<blasint>(ldb), beta, C, static_cast<blasint>(ldc));
}

void sgemv(int64_t M, int64_t N, float alpha, const float* A, int64_t lda, const float* x,
           float beta, float* y) {
  single_threaded();
  cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<blasint>(M), static_cast<blasint>(N), alpha,
              A, static_cast<blasint>(lda), x, 1, beta, y, 1);
}

}  // namespace cnn::fast
