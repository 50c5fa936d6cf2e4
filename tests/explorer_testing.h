// What the explorer's API tests share (test_explorer_network.cpp, test_explorer_gradient.cpp,
// test_explorer_training.cpp): random inputs as the page sends them, answers read back as
// tensors, and an endpoint's refusal as its status and message.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "cnn/explore/api.h"
#include "cnn/random.h"
#include "cnn/tensor.h"

namespace cnn::testing {

// Random pixels in [0, 1] of the model's input shape, as [C][H][W].
inline nlohmann::json random_pixels(const Shape& input, uint64_t seed) {
  Generator gen(seed);
  nlohmann::json planes = nlohmann::json::array();
  for (int64_t c = 0; c < input[0]; ++c) {
    nlohmann::json plane = nlohmann::json::array();
    for (int64_t y = 0; y < input[1]; ++y) {
      nlohmann::json row = nlohmann::json::array();
      for (int64_t x = 0; x < input[2]; ++x) row.push_back(gen.uniform());
      plane.push_back(row);
    }
    planes.push_back(plane);
  }
  return planes;
}

// Nested arrays of numbers back as a tensor of the given shape (every element filled).
inline Tensor tensor_of(const nlohmann::json& values, const Shape& shape) {
  Tensor t(shape);
  int64_t i = 0;
  std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& j) {
    if (j.is_array()) {
      for (const nlohmann::json& e : j) walk(e);
    } else {
      t[i++] = j.get<float>();
    }
  };
  walk(values);
  EXPECT_EQ(i, t.numel());
  return t;
}

// One sample's values ([C][H][W] or [F]) back as a batch of one.
inline Tensor batch_of(const nlohmann::json& values, const Shape& shape) {
  Shape s = {1};
  s.insert(s.end(), shape.begin(), shape.end());
  return tensor_of(values, s);
}

// What an API call refuses: its status and message ({200, ""} when it answers).
inline std::pair<int, std::string> refusal(const std::function<nlohmann::json()>& f) {
  try {
    f();
  } catch (const ApiError& e) {
    return {e.status, e.what()};
  }
  return {200, ""};
}

}  // namespace cnn::testing
