// The element-wise activations beside relu (cnn/ops/relu.h), each with PyTorch's formula and its
// gradient formula, any shape. Every *_backward returns a new dx of dy's shape (overwritten, not
// accumulated) and throws when its two tensors' shapes differ.
#pragma once

#include <string>

#include "cnn/tensor.h"

namespace cnn {

// y = tanh(x). Backward from the output, as PyTorch's tanh_backward: dx = dy * (1 - y^2).
Tensor tanh_forward(const Tensor& x);
Tensor tanh_backward(const Tensor& y, const Tensor& dy);

// y = 1 / (1 + exp(-x)). Backward from the output: dx = dy * y * (1 - y).
Tensor sigmoid_forward(const Tensor& x);
Tensor sigmoid_backward(const Tensor& y, const Tensor& dy);

// y = x > 0 ? x : negative_slope * x. Backward from the input, as PyTorch's
// leaky_relu_backward: dx = x > 0 ? dy : negative_slope * dy (the slope at 0 is negative_slope).
Tensor leaky_relu_forward(const Tensor& x, float negative_slope);
Tensor leaky_relu_backward(const Tensor& x, const Tensor& dy, float negative_slope);

// GELU's two forms, PyTorch's approximate='none' and approximate='tanh'.
enum class GeluApproximate { None, Tanh };
// "none" or "tanh" -> the form; throws on anything else, as PyTorch does.
GeluApproximate gelu_approximate(const std::string& name);
std::string to_string(GeluApproximate a);

// none: y = x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2)));
// tanh: y = 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))). Backward from the input.
Tensor gelu_forward(const Tensor& x, GeluApproximate approximate);
Tensor gelu_backward(const Tensor& x, const Tensor& dy, GeluApproximate approximate);

// y = x * sigmoid(x). Backward from the input: dx = dy * s (1 + x (1 - s)), s = sigmoid(x).
Tensor silu_forward(const Tensor& x);
Tensor silu_backward(const Tensor& x, const Tensor& dy);

}  // namespace cnn
