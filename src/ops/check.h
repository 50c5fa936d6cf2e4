// The one input check every op makes before it dispatches: every defined tensor on one device
// and of the expected dtype. The op then runs on that device's kernels (src/ops/cuda/ for CUDA;
// the fast or reference CPU kernels by kernel_set() otherwise). Shape checks stay with each op,
// which knows its shapes.
#pragma once

#include <initializer_list>
#include <string>

#include "cnn/error.h"
#include "cnn/tensor.h"

namespace cnn::detail {

struct OpArg {
  const char* name;  // as the op's messages call it: "input", "weight", "grad_output"
  const Tensor& tensor;
  Dtype dtype = Dtype::Float32;
};

// The device of the op's tensors. Throws cnn::Error naming the op, the tensor and both devices
// ("conv2d: weight is on cpu but input is on cuda; ...") or the dtype. Undefined tensors (an
// absent bias) are skipped; the first argument must be defined.
inline Device op_device(const char* op, std::initializer_list<OpArg> args) {
  const OpArg* first = nullptr;
  for (const OpArg& a : args) {
    if (!a.tensor.defined()) continue;
    if (a.tensor.dtype() != a.dtype) {
      throw Error(std::string(op) + ": expected " + a.name + " of dtype " + to_string(a.dtype) +
                  ", got " + to_string(a.tensor.dtype()));
    }
    if (!first) {
      first = &a;
    } else if (a.tensor.device() != first->tensor.device()) {
      throw Error(std::string(op) + ": " + a.name + " is on " + to_string(a.tensor.device()) +
                  " but " + first->name + " is on " + to_string(first->tensor.device()) +
                  "; every tensor of one op must be on the same device (Tensor::to moves one)");
    }
  }
  return first ? first->tensor.device() : Device::CPU;
}

// An output the caller hands in to be overwritten (conv2d's dx, max-pooling's indices): kept
// when it already has the shape, device and dtype (a training loop passes the same one every
// step), else replaced by an uninitialised one that does.
inline Tensor& reuse_or_empty(Tensor& t, const Shape& shape, Device device,
                              Dtype dtype = Dtype::Float32) {
  if (t.shape() != shape || t.device() != device || t.dtype() != dtype) {
    t = Tensor::empty(shape, device, dtype);
  }
  return t;
}

}  // namespace cnn::detail
