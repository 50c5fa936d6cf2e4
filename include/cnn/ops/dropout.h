// dropout: in training, y = x * mask / (1 - p) with mask ~ Bernoulli(1 - p) per element (p = 1
// zeroes everything); in evaluation the layer is the identity and these functions are not used.
//
// x, mask (0 or 1): same shape -> y: same shape
#pragma once

#include "cnn/random.h"
#include "cnn/tensor.h"

namespace cnn {

// A keep-mask (1 = keep, 0 = drop) of the given shape: each element kept with probability 1 - p.
// Drawn on the host from gen (the same masks on every device for a seed), then moved to device.
Tensor dropout_mask(const Shape& shape, float p, Generator& gen, Device device = Device::CPU);
Tensor dropout_forward(const Tensor& x, const Tensor& mask, float p);
// dx = dy * mask / (1 - p)
Tensor dropout_backward(const Tensor& dy, const Tensor& mask, float p);

}  // namespace cnn
