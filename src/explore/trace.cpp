#include "trace.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "cnn/explore/api.h"
#include "cnn/nn/grad_mode.h"

namespace cnn::explore {

using json = nlohmann::json;

void bad(const std::string& message) { throw ApiError(400, message); }

void collect_leaves(const Module& m, const std::string& path, std::vector<Leaf>& out) {
  if (m.children().empty()) {
    out.push_back({path.empty() ? "(the model)" : path, &m, {}});
    return;
  }
  for (const auto& [name, child] : m.children()) {
    collect_leaves(*child, path.empty() ? name : path + "." + name, out);
  }
}

std::vector<Tensor> traced_forward(Module& model, const std::vector<Leaf>& leaves, const Tensor& x,
                                   std::size_t needed, const std::string& view, bool for_backward) {
  std::vector<Tensor> outputs(leaves.size());
  std::size_t next = 0;  // leaves run in the order collected; a model that runs them otherwise
  bool in_order = true;  // cannot be shown leaf by leaf
  struct Unhook {
    ~Unhook() { Module::set_forward_hook({}); }
  } unhook;
  Module::set_forward_hook([&](const Module& leaf, const Tensor& y) {
    if (next < leaves.size() && leaves[next].module == &leaf) {
      outputs[next++] = y;
    } else {
      in_order = false;
    }
  });
  std::optional<NoGradGuard> no_grad;
  if (!for_backward) no_grad.emplace();
  model.eval();
  model.forward(x);
  if (!in_order || next < needed) {
    throw ApiError(422, view +
                            " follows the model's layers in the order they are held; "
                            "this model's forward pass runs them in another order");
  }
  return outputs;
}

const Tensor* own_parameter(const Module& m, const std::string& name) {
  for (const auto& [n, p] : m.own_parameters()) {
    if (n == name) return &p->value;
  }
  return nullptr;
}

int64_t index_in(const json& request, const std::string& name, int64_t hi,
                 const std::string& what) {
  if (!request.contains(name)) bad("missing field '" + name + "' (" + what + ")");
  const json& j = request[name];
  // Above INT64_MAX nlohmann keeps it unsigned, and get<int64_t>() would wrap it.
  const bool ok = j.is_number_integer() &&
                  !(j.is_number_unsigned() && j.get<uint64_t>() >= static_cast<uint64_t>(hi));
  const int64_t v = ok ? j.get<int64_t>() : -1;
  if (v < 0 || v >= hi) {
    bad("'" + name + "' must be an integer in [0, " + std::to_string(hi) + ") (" + what +
        "), got " + quote(j));
  }
  return v;
}

Tensor model_input(const json& request, const Shape& input, const Dataset* test) {
  if (!request.is_object()) bad("the request body must be a JSON object");
  const bool has_pixels = request.contains("pixels"), has_index = request.contains("test_index");
  if (has_pixels == has_index) {
    bad("give the input as either 'pixels' (values in [0, 1]) or 'test_index' (a test image), "
        "not " +
        std::string(has_pixels ? "both" : "neither"));
  }
  if (input.size() != 3) {
    throw ApiError(422,
                   "the network and gradient views draw image inputs (C, H, W); this model "
                   "takes inputs of shape " +
                       shape_str(input));
  }
  const int64_t C = input[0], H = input[1], W = input[2];
  if (has_index) {
    if (!test) {
      throw ApiError(422, "no test images: start the server with --data-dir DIR (MNIST's files)");
    }
    const int64_t i = index_in(request, "test_index", test->count, "an image of the test split");
    if (test->image_shape() != input) {
      throw ApiError(422, "the test images of " + test->name + " have shape " +
                              shape_str(test->image_shape()) +
                              "; this model takes inputs of shape " + shape_str(input));
    }
    return test->image_tensor(i);
  }
  const json& j = request["pixels"];
  const std::string expected =
      "'pixels' must be the model's input, [C][H][W] = [" + std::to_string(C) + "][" +
      std::to_string(H) + "][" + std::to_string(W) + "]" +
      (C == 1 ? " (or " + std::to_string(H) + "x" + std::to_string(W) + ")" : "") +
      " values in [0, 1]";
  // The array's dimensions, read along its first elements, and refused before anything is
  // copied if they are not the model's.
  std::vector<std::size_t> dims;
  for (const json* a = &j; a->is_array(); a = &(*a)[0]) {
    dims.push_back(a->size());
    if (a->empty() || dims.size() > 3) break;
  }
  std::string got;
  for (std::size_t d : dims) got += (got.empty() ? "" : "x") + std::to_string(d);
  const bool gray = dims.size() == 2 && C == 1;
  if (!gray && dims.size() != 3) {
    bad(expected + "; got " +
        (dims.empty() ? "a non-array " + quote(j)
                      : "a " + std::to_string(dims.size()) + "-D array of size " + got));
  }
  const std::vector<std::size_t> want =
      gray ? std::vector<std::size_t>{static_cast<std::size_t>(H), static_cast<std::size_t>(W)}
           : std::vector<std::size_t>{static_cast<std::size_t>(C), static_cast<std::size_t>(H),
                                      static_cast<std::size_t>(W)};
  if (dims != want) bad(expected + "; got an array of size " + got);
  Tensor x({1, C, H, W});
  for (int64_t c = 0; c < C; ++c) {
    const json& planes = gray ? j : j[static_cast<std::size_t>(c)];
    for (int64_t y = 0; y < H; ++y) {
      const json& row = planes[static_cast<std::size_t>(y)];
      const std::string where =
          (gray ? "" : "channel " + std::to_string(c) + ", ") + "row " + std::to_string(y);
      if (!row.is_array() || static_cast<int64_t>(row.size()) != W) {
        bad(expected + "; " + where + " is not " + std::to_string(W) + " values");
      }
      for (int64_t col = 0; col < W; ++col) {
        const json& v = row[static_cast<std::size_t>(col)];
        const float f = v.is_number() ? v.get<float>() : -1.0f;
        if (!(f >= 0.0f && f <= 1.0f)) {
          bad(expected + "; " + where + ", column " + std::to_string(col) + " holds " + quote(v));
        }
        x[(c * H + y) * W + col] = f;
      }
    }
  }
  return x;
}

json range_json(const float* p, int64_t n) {
  float lo = std::numeric_limits<float>::infinity(), hi = -lo;
  for (int64_t i = 0; i < n; ++i) {
    if (std::isfinite(p[i])) {
      lo = std::min(lo, p[i]);
      hi = std::max(hi, p[i]);
    }
  }
  if (lo > hi) return {{"min", nullptr}, {"max", nullptr}};
  return {{"min", lo}, {"max", hi}};
}

json values_json(const float* p, int64_t n) {
  json out = json::array();
  for (int64_t i = 0; i < n; ++i) out.push_back(number(p[i]));
  return out;
}

json Window::grid(const std::function<json(const StepTap&)>& cell) const {
  json rows = json::array();
  for (int64_t kh = 0; kh < K_h; ++kh) {
    json row = json::array();
    for (int64_t kw = 0; kw < K_w; ++kw) row.push_back(cell(step.taps[kh * K_w + kw]));
    rows.push_back(row);
  }
  return rows;
}

json Window::frame() const {
  json rows = json::array(), cols = json::array();
  for (int64_t kh = 0; kh < K_h; ++kh) rows.push_back(step.taps[kh * K_w].row);
  for (int64_t kw = 0; kw < K_w; ++kw) cols.push_back(step.taps[kw].col);
  return {{"rows", rows},
          {"cols", cols},
          {"padded", grid([](const StepTap& t) { return json(t.padded); })}};
}

json channel_maps(const Tensor& t, int64_t shown) {
  const int64_t C = t.size(0), H = t.size(1), W = t.size(2), plane = H * W;
  json maps = json::array(), ranges = json::array();
  for (int64_t c = 0; c < C; ++c) {
    ranges.push_back(range_json(t.data() + c * plane, plane));
    if (c >= shown) continue;
    json map = json::array();
    for (int64_t r = 0; r < H; ++r) map.push_back(values_json(t.data() + c * plane + r * W, W));
    maps.push_back(map);
  }
  return {{"maps", maps}, {"map_ranges", ranges}};
}

Tensor drop_batch(const Tensor& t) {
  return t.reshape(Shape(t.shape().begin() + 1, t.shape().end()));
}

nlohmann::json number(float v) {
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  return v;
}

}  // namespace cnn::explore
