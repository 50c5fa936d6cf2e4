#include "cnn/ops/dropout.h"

#include "cnn/error.h"

namespace cnn {

namespace {
void check(const Tensor& x, const Tensor& mask, float p, const char* what) {
  if (!(p >= 0.0f && p <= 1.0f)) {
    throw Error(std::string(what) + ": dropout probability has to be between 0 and 1, but got " +
                std::to_string(p));
  }
  if (x.shape() != mask.shape()) {
    throw Error(std::string(what) + ": mask of shape " + shape_str(mask.shape()) +
                " does not match input of shape " + shape_str(x.shape()));
  }
}

Tensor apply(const Tensor& x, const Tensor& mask, float p) {
  Tensor y = Tensor::empty(x.shape());
  // p == 1 drops everything; the scale is then irrelevant (and would be infinite).
  const float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
  const float* in = x.data();
  const float* m = mask.data();
  float* out = y.data();
  for (int64_t i = 0; i < x.numel(); ++i) out[i] = in[i] * m[i] * scale;
  return y;
}
}  // namespace

Tensor dropout_mask(const Shape& shape, float p, Generator& gen) {
  Tensor mask(shape);
  for (float& m : mask) m = gen.uniform() >= p ? 1.0f : 0.0f;
  return mask;
}

Tensor dropout_forward(const Tensor& x, const Tensor& mask, float p) {
  check(x, mask, p, "dropout");
  return apply(x, mask, p);
}

Tensor dropout_backward(const Tensor& dy, const Tensor& mask, float p) {
  check(dy, mask, p, "dropout_backward");
  return apply(dy, mask, p);
}

}  // namespace cnn
