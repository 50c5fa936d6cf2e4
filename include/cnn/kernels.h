// Which kernels the ops run. The reference kernels are plain loops kept as the oracle; the fast
// kernels (Winograd F(2x2, 3x3), a direct AVX2 convolution, im2col + SGEMM, batch split across
// threads) must agree with them, which the tests check on random shapes and options. Ops without a
// fast kernel run the reference kernel whatever the setting.
#pragma once

namespace cnn {

enum class KernelSet { Reference, Fast };

// Process-wide; Fast by default.
void set_kernel_set(KernelSet set);
KernelSet kernel_set();

// Threads the kernels use (OpenMP); 0 means one per core.
void set_num_threads(int threads);
int num_threads();

}  // namespace cnn
