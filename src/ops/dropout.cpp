#include "cnn/ops/dropout.h"

#include "check.h"
#include "cnn/error.h"
#include "cuda/ops.h"

namespace cnn {

namespace {
Device check(const Tensor& x, const Tensor& mask, float p, const char* what) {
  const Device device = detail::op_device(what, {{"input", x}, {"mask", mask}});
  if (!(p >= 0.0f && p <= 1.0f)) {
    throw Error(std::string(what) + ": dropout probability has to be between 0 and 1, but got " +
                std::to_string(p));
  }
  if (x.shape() != mask.shape()) {
    throw Error(std::string(what) + ": mask of shape " + shape_str(mask.shape()) +
                " does not match input of shape " + shape_str(x.shape()));
  }
  return device;
}

Tensor apply(Device device, const Tensor& x, const Tensor& mask, float p) {
  // p == 1 drops everything; the scale is then irrelevant (and would be infinite).
  const float scale = p < 1.0f ? 1.0f / (1.0f - p) : 0.0f;
  if (device == Device::CUDA) return cuda::dropout_apply(x, mask, scale);
  Tensor y = Tensor::empty(x.shape());
  const float* in = x.data();
  const float* m = mask.data();
  float* out = y.data();
  for (int64_t i = 0; i < x.numel(); ++i) out[i] = in[i] * m[i] * scale;
  return y;
}
}  // namespace

Tensor dropout_mask(const Shape& shape, float p, Generator& gen, Device device) {
  // Drawn on the host from the one generator, whatever the device, so that a seed gives the same
  // masks on the CPU and on CUDA.
  Tensor mask(shape);
  for (float& m : mask) m = gen.uniform() >= p ? 1.0f : 0.0f;
  return mask.to(device);
}

Tensor dropout_forward(const Tensor& x, const Tensor& mask, float p) {
  return apply(check(x, mask, p, "dropout"), x, mask, p);
}

Tensor dropout_backward(const Tensor& dy, const Tensor& mask, float p) {
  return apply(check(dy, mask, p, "dropout_backward"), dy, mask, p);
}

}  // namespace cnn
