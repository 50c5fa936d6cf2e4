#include "cnn/ops/fused.h"

#include "cnn/error.h"
#include "cnn/kernels.h"
#include "cnn/ops/relu.h"
#include "fast/conv2d.h"

namespace cnn {

Tensor conv2d_relu_pool_forward(const Tensor& x, const Tensor& w, const Tensor& b,
                                const Conv2dGeometry& g, const Pool2dGeometry* pool) {
  const bool fast = kernel_set() == KernelSet::Fast && g.groups == 1 &&
                    (!pool || pool->dilation.all(1)) && x.device() == Device::CPU;
  if (!fast) {
    const Tensor y = relu_forward(conv2d_forward(x, w, b, g));
    return pool ? maxpool2d_forward(y, *pool, nullptr) : y;
  }
  const Shape conv_shape = conv2d_output_shape(x.shape(), w.shape(), g);
  if (b.defined() && (b.dim() != 1 || b.size(0) != w.size(0))) {
    throw Error("expected a bias of shape (" + std::to_string(w.size(0)) + ",), got " +
                shape_str(b.shape()));
  }
  const Shape y_shape = pool ? maxpool2d_output_shape(conv_shape, *pool) : conv_shape;
  return fast::conv2d_relu_pool_forward(x, w, b, g, conv_shape, pool, y_shape);
}

}  // namespace cnn
