// The CUDA kernels, one file per op (src/ops/cuda/<op>.cu), behind the ops' one dispatch point
// (src/ops/<op>.cpp), which calls them when the inputs live on Device::CUDA.
//
// The contract: the front has already validated every option and shape, and that every tensor is
// on CUDA; these functions allocate their outputs on CUDA (Tensor::empty(shape, Device::CUDA)),
// launch on the default stream and do not synchronise (results are read through Tensor::to or
// to_vector, which synchronise). Indices and class targets are Dtype::Int32 tensors. Float32
// arithmetic throughout (cuBLAS without TF32), so that every op agrees with the CPU reference to
// about 1e-6 relative (tests/test_cuda_ops.cpp checks it where a GPU is).
//
// Built when CMake finds nvcc (CNN_WITH_CUDA=1). Without it, each function here is an inline stub
// that throws: no tensor can be on CUDA in such a build, so the stubs are never reached.
#pragma once

#include <cstdint>

#include "cnn/ops/activation.h"
#include "cnn/ops/avgpool2d.h"
#include "cnn/ops/batchnorm2d.h"
#include "cnn/ops/conv2d.h"
#include "cnn/ops/maxpool2d.h"
#include "cnn/ops/optim.h"
#include "cnn/tensor.h"

namespace cnn::cuda {

// Throws cnn::Error saying that this build has no CUDA backend.
[[noreturn]] void throw_unavailable(const char* op);

}  // namespace cnn::cuda

#if CNN_WITH_CUDA
#define CNN_CUDA_OP(name, ...) __VA_ARGS__;
#else
#define CNN_CUDA_OP(name, ...) \
  inline __VA_ARGS__ { throw_unavailable(name); }
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"  // the stubs' parameters
#endif

namespace cnn::cuda {

// conv2d.cu: im2col + cuBLAS SGEMM per image and group (any stride, padding per side, dilation,
// groups). dx (x's shape, allocated by the front) is overwritten; dw and db accumulate.
CNN_CUDA_OP("conv2d", Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b,
                                            const Conv2dGeometry& g, const Shape& y_shape))
CNN_CUDA_OP("conv2d_backward",
            void conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy,
                                 const Conv2dGeometry& g, Tensor* dx, Tensor* dw, Tensor* db))

// linear.cu: cuBLAS. x: (M, K) (the front flattens leading dimensions), w: (N, K), b: (N) or
// undefined -> (M, N). dx overwritten (allocated by the front), dw and db accumulate.
CNN_CUDA_OP("linear", Tensor linear_forward(const Tensor& x, const Tensor& w, const Tensor& b))
CNN_CUDA_OP("linear_backward",
            void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx,
                                 Tensor* dw, Tensor* db))

// relu.cu
CNN_CUDA_OP("relu", Tensor relu_forward(const Tensor& x))
CNN_CUDA_OP("relu_backward", Tensor relu_backward(const Tensor& y, const Tensor& dy))

// activation.cu: tanh and sigmoid differentiate from the output y, the others from the input x,
// as their CPU ops (cnn/ops/activation.h).
enum class Activation { Tanh, Sigmoid, LeakyRelu, Gelu, GeluTanh, Silu };
CNN_CUDA_OP("activation", Tensor activation_forward(Activation a, const Tensor& x, float slope))
CNN_CUDA_OP("activation_backward", Tensor activation_backward(Activation a, const Tensor& saved,
                                                              const Tensor& dy, float slope))

// maxpool2d.cu. indices: null, or receives an Int32 tensor of y's shape (h * W + w of each
// window's winner in its plane, the first maximum, NaN winning, as the CPU kernel).
// The backward pass gathers (each input element sums the gradients of the windows it won), so it
// needs no atomics and is deterministic.
CNN_CUDA_OP("maxpool2d", Tensor maxpool2d_forward(const Tensor& x, const Pool2dGeometry& g,
                                                  const Shape& y_shape, Tensor* indices))
CNN_CUDA_OP("maxpool2d_backward",
            Tensor maxpool2d_backward(const Shape& x_shape, const Tensor& dy, const Tensor& indices,
                                      const Pool2dGeometry& g))

// avgpool2d.cu
CNN_CUDA_OP("avgpool2d", Tensor avgpool2d_forward(const Tensor& x, const AvgPool2dGeometry& g,
                                                  const Shape& y_shape))
CNN_CUDA_OP("avgpool2d_backward", Tensor avgpool2d_backward(const Shape& x_shape, const Tensor& dy,
                                                            const AvgPool2dGeometry& g))
CNN_CUDA_OP("adaptive_avgpool2d",
            Tensor adaptive_avgpool2d_forward(const Tensor& x, const Shape& y_shape))
CNN_CUDA_OP("adaptive_avgpool2d_backward",
            Tensor adaptive_avgpool2d_backward(const Shape& x_shape, const Tensor& dy))

// batchnorm2d.cu: the same contract as cnn::batchnorm2d_forward / _backward (saved's mean and
// invstd allocated on CUDA; running statistics updated in place).
CNN_CUDA_OP("batchnorm2d",
            Tensor batchnorm2d_forward(const Tensor& x, const Tensor& weight, const Tensor& bias,
                                       Tensor* running_mean, Tensor* running_var, bool training,
                                       double momentum, double eps, BatchNorm2dSaved* saved))
CNN_CUDA_OP("batchnorm2d_backward",
            void batchnorm2d_backward(const Tensor& x, const Tensor& dy, const Tensor& weight,
                                      const BatchNorm2dSaved& saved, bool training, Tensor* dx,
                                      Tensor* dweight, Tensor* dbias))

// softmax.cu: along dimension dim (already wrapped to [0, rank)).
CNN_CUDA_OP("softmax", Tensor softmax_forward(const Tensor& x, int64_t dim, bool log))
CNN_CUDA_OP("softmax_backward",
            Tensor softmax_backward(const Tensor& y, const Tensor& dy, int64_t dim, bool log))

// cross_entropy.cu. log_probs: (N, C); targets: Int32 (N). Returns the mean loss (one copy to the
// host); throws cnn::Error naming the first target out of [0, C), as the CPU op.
CNN_CUDA_OP("cross_entropy", float nll_loss(const Tensor& log_probs, const Tensor& targets))
// dlogits = (exp(log_probs) - one_hot(targets)) * scale
CNN_CUDA_OP("cross_entropy_backward",
            Tensor cross_entropy_backward(const Tensor& log_probs, const Tensor& targets,
                                          float scale))

// dropout.cu: y = x * mask * scale.
CNN_CUDA_OP("dropout", Tensor dropout_apply(const Tensor& x, const Tensor& mask, float scale))

// argmax.cu: x: (N, C) -> Int32 (N), the first maximum of each row (NaN counts as the maximum).
CNN_CUDA_OP("argmax", Tensor argmax_rows(const Tensor& x))

// optim.cu
CNN_CUDA_OP("adam_step",
            void adam_step(Tensor& w, const Tensor& g, Tensor& m, Tensor& v, const AdamStep& k))
CNN_CUDA_OP("sgd_step", void sgd_step(Tensor& w, const Tensor& g, Tensor* buf, const SgdStep& k))

// data.cu: a batch gathered from a data set resident on the device as uint8. images: the whole
// set, n x (c * h * w) bytes; index: Int32 (B), the rows to take -> (B, c, h, w) float32 with
// y = (byte / 255 - mean[c]) / std[c], mean and std: c floats on the host (at most 4).
CNN_CUDA_OP("gather_images",
            Tensor gather_images(const uint8_t* images, const Tensor& index, int64_t c, int64_t h,
                                 int64_t w, const float* mean, const float* std))
// labels: the whole set's labels on the device as Int32; index: Int32 (B) -> Int32 (B).
CNN_CUDA_OP("gather_labels", Tensor gather_labels(const Tensor& labels, const Tensor& index))

}  // namespace cnn::cuda

#undef CNN_CUDA_OP
#if !CNN_WITH_CUDA
#pragma GCC diagnostic pop
#endif
