// argmax along one dimension: the index of the first maximum (NaN counts as the maximum), as
// torch.argmax.
//
// x: (d_0, ..., d_k) -> indices of shape x.shape() without dimension dim, row-major.
#pragma once

#include <cstdint>
#include <vector>

#include "cnn/tensor.h"

namespace cnn {

std::vector<int64_t> argmax(const Tensor& x, int64_t dim);

}  // namespace cnn
