// Views a contiguous tensor as (outer, size, inner) around one dimension: the layout every
// per-dimension op (softmax, log_softmax, argmax) walks.
#pragma once

#include "cnn/tensor.h"

namespace cnn::detail {

struct DimView {
  int64_t outer = 1, size = 1, inner = 1;
};

inline DimView dim_view(const Shape& shape, int64_t dim, const char* what) {
  const int64_t rank = static_cast<int64_t>(shape.size());
  const int64_t d = wrap_dim(dim, rank, what);
  DimView v;
  if (rank == 0) return v;
  for (int64_t i = 0; i < d; ++i) v.outer *= shape[i];
  v.size = shape[d];
  for (int64_t i = d + 1; i < rank; ++i) v.inner *= shape[i];
  return v;
}

}  // namespace cnn::detail
