#include "cnn/ops/flatten.h"

#include "cnn/error.h"

namespace cnn {

Shape flatten_output_shape(const Shape& x, int64_t start_dim, int64_t end_dim) {
  const int64_t rank = static_cast<int64_t>(x.size());
  if (rank == 0) return {1};
  const int64_t s = wrap_dim(start_dim, rank, "flatten start_dim");
  const int64_t e = wrap_dim(end_dim, rank, "flatten end_dim");
  if (s > e) {
    throw Error("flatten() has invalid args: start_dim (" + std::to_string(start_dim) +
                ") cannot come after end_dim (" + std::to_string(end_dim) +
                ") for input of shape " + shape_str(x));
  }
  Shape out(x.begin(), x.begin() + s);
  int64_t merged = 1;
  for (int64_t d = s; d <= e; ++d) merged *= x[d];
  out.push_back(merged);
  out.insert(out.end(), x.begin() + e + 1, x.end());
  return out;
}

// A view on any device: no kernel.
Tensor flatten_forward(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  return x.reshape(flatten_output_shape(x.shape(), start_dim, end_dim));
}

}  // namespace cnn
