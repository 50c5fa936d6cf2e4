// conv2d, fast CPU kernels. Called by the dispatcher after its shape checks.
#pragma once

#include "cnn/ops/conv2d.h"
#include "cnn/ops/fused.h"
#include "cnn/ops/maxpool2d.h"

namespace cnn::fast {

// Whether these kernels cover the case (the dispatcher runs the reference kernel otherwise):
// every geometry, grouped convolutions as one product per group.
inline bool conv2d_supports(const Conv2dGeometry& g) { return g.groups >= 1; }

// x: (N, C_in, H, W), w: (C_out, C_in, K_h, K_w), b: (C_out) or undefined -> y_shape
// columns: if not null, receives every image's im2col matrix, (N, C_in * K_h * K_w [+ 1], H_out *
// W_out), with a last row of ones when there is a bias (the product adds the bias with it).
Tensor conv2d_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dGeometry& g,
                      const Shape& y_shape, Tensor* columns = nullptr);
// As cnn::conv2d_backward: overwrites *dx (already shaped like x), accumulates into *dw, *db.
// columns: the forward pass's, reused for the weight gradient when its shape fits (its ones row,
// if any, gives the bias gradient in the same product).
void conv2d_backward(const Tensor& x, const Tensor& w, const Tensor& dy, const Conv2dGeometry& g,
                     Tensor* dx, Tensor* dw, Tensor* db, const Tensor* columns = nullptr);

// What follows the convolution in a fused block, in this order (cnn/ops/fused.h).
struct Epilogue {
  const float* scale = nullptr;  // a batch norm's y = x * scale[c] + shift[c], if not null
  const float* shift = nullptr;
  bool relu = false;
  const Pool2dGeometry* pool = nullptr;                // only after the ReLU
  BlockActivation activation = BlockActivation::None;  // in place of the ReLU, with no pool
  float negative_slope = 0.0f;
};

// Conv2d [-> batch norm] [-> ReLU [-> MaxPool2d]] image by image (cnn/ops/fused.h); shapes
// already checked.
Tensor conv2d_block_forward(const Tensor& x, const Tensor& w, const Tensor& b,
                            const Conv2dGeometry& g, const Shape& conv_shape, const Epilogue& after,
                            const Shape& y_shape);

}  // namespace cnn::fast
