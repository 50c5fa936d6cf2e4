// The explorer's model endpoints: predict a drawing, look inside the model, step through one
// conv1 output or take one pixel of conv2's pooled maps apart.
#include "cnn/data/digit.h"
#include "cnn/error.h"
#include "cnn/explain/steps.h"
#include "cnn/explore/api.h"
#include "cnn/models/tutorial.h"
#include "cnn/nn/grad_mode.h"
#include "cnn/ops/argmax.h"
#include "cnn/ops/relu.h"
#include "cnn/ops/softmax.h"

namespace cnn {

namespace {

using json = nlohmann::json;

[[noreturn]] void bad(const std::string& message) { throw ApiError(400, message); }

// A 2-D array of numbers in [lo, hi] -> (rows, cols) values, rectangular, within max_side.
std::vector<std::vector<float>> pixels(const json& request, int64_t max_side, float hi) {
  if (!request.is_object() || !request.contains("pixels")) bad("missing field 'pixels'");
  const json& j = request["pixels"];
  if (!j.is_array() || j.empty() || !j[0].is_array() || j[0].empty()) {
    bad("'pixels' must be a non-empty 2-D array of numbers");
  }
  if (static_cast<int64_t>(j.size()) > max_side || static_cast<int64_t>(j[0].size()) > max_side) {
    bad("'pixels' may be at most " + std::to_string(max_side) + "x" + std::to_string(max_side));
  }
  std::vector<std::vector<float>> out;
  for (const json& row : j) {
    if (!row.is_array() || row.size() != j[0].size()) bad("'pixels' must be rectangular");
    std::vector<float> r;
    for (const json& v : row) {
      if (!v.is_number()) bad("'pixels' holds a non-number: " + quote(v));
      const float f = v.get<float>();
      if (!(f >= 0.0f && f <= hi))
        bad("'pixels' values must be between 0 and " + format_number(hi));
      r.push_back(f);
    }
    out.push_back(std::move(r));
  }
  return out;
}

json image_json(const GrayImage& g) {
  json rows = json::array();
  for (int64_t y = 0; y < g.height; ++y) {
    json row = json::array();
    for (int64_t x = 0; x < g.width; ++x) row.push_back(g.at(x, y));
    rows.push_back(row);
  }
  return rows;
}

// (C, H, W) -> [[[...]]]
json maps_json(const Tensor& t) {
  json maps = json::array();
  const int64_t C = t.size(0), H = t.size(1), W = t.size(2);
  for (int64_t c = 0; c < C; ++c) {
    json m = json::array();
    for (int64_t y = 0; y < H; ++y) {
      json row = json::array();
      for (int64_t x = 0; x < W; ++x) row.push_back(t[(c * H + y) * W + x]);
      m.push_back(row);
    }
    maps.push_back(m);
  }
  return maps;
}

Tensor drop_batch(const Tensor& t) {
  return t.reshape(Shape(t.shape().begin() + 1, t.shape().end()));
}

TutorialCNN& tutorial(const std::shared_ptr<Module>& m) {
  auto* t = dynamic_cast<TutorialCNN*>(m.get());
  if (!t) throw ApiError(422, "the loaded model is not the tutorial's architecture");
  return *t;
}

Tensor input28(const json& request) {
  const auto px = pixels(request, 28, 1.0f);
  if (px.size() != 28 || px[0].size() != 28) bad("'pixels' must be 28x28 values in [0, 1]");
  Tensor x({1, 1, 28, 28});
  for (int64_t y = 0; y < 28; ++y) {
    for (int64_t c = 0; c < 28; ++c) x[y * 28 + c] = px[y][c];
  }
  return x;
}

// request[name]: an integer in [0, hi).
int64_t index_field(const json& request, const char* name, int64_t hi) {
  if (!request.is_object() || !request.contains(name) || !request[name].is_number_integer())
    bad(std::string("'") + name + "' must be an integer");
  const json& j = request[name];
  // Above INT64_MAX nlohmann keeps it unsigned, and get<int64_t>() would wrap it.
  const bool too_big = j.is_number_unsigned() && j.get<uint64_t>() >= static_cast<uint64_t>(hi);
  const auto v = too_big ? int64_t{-1} : j.get<int64_t>();
  if (v < 0 || v >= hi)
    bad(std::string("'") + name + "' must be in [0, " + std::to_string(hi) + "), got " + quote(j));
  return v;
}

// A (C, H, W) tensor's plane c as an (H, W) tensor.
Tensor plane(const Tensor& t, int64_t c) {
  const int64_t H = t.size(1), W = t.size(2);
  Tensor p({H, W});
  std::copy(t.data() + c * H * W, t.data() + (c + 1) * H * W, p.data());
  return p;
}

// The (K_h, K_w) slice of the filter of output channel oc for input channel ic.
Tensor filter_slice(const Tensor& w, int64_t oc, int64_t ic) {
  return plane(w.reshape({-1, w.size(2), w.size(3)}), oc * w.size(1) + ic);
}

void explicit_padding_only(const Conv2d& conv, const char* name) {
  if (conv.options().padding().mode != Conv2dPadding::Mode::Explicit) {
    throw ApiError(422, std::string("the step-through shows explicit padding only; ") + name +
                            " has padding=" + conv.options().padding().str());
  }
}

}  // namespace

json ExplorerApi::predict(const json& request) const {
  const std::lock_guard<std::mutex> lock(model_mutex_);
  const auto px = pixels(request, limits_.max_drawing, 255.0f);
  GrayImage img;
  img.height = static_cast<int64_t>(px.size());
  img.width = static_cast<int64_t>(px[0].size());
  for (const auto& row : px) {
    for (float v : row) img.pixels.push_back(static_cast<uint8_t>(v + 0.5f));
  }
  DigitSteps steps;
  try {
    steps = preprocess_digit(img);
  } catch (const Error& e) {
    throw ApiError(422, e.what());
  }
  NoGradGuard no_grad;
  model_->eval();
  const Tensor logits = model_->forward(digit_tensor(steps.centered));
  const Tensor probs = softmax_forward(logits, 1);
  return {{"inverted", steps.inverted},         {"cropped", image_json(steps.cropped)},
          {"scaled", image_json(steps.scaled)}, {"centered", image_json(steps.centered)},
          {"logits", logits.to_vector()},       {"probs", probs.to_vector()},
          {"pred", argmax(logits, 1)[0]}};
}

json ExplorerApi::inside(const json& request) const {
  const std::lock_guard<std::mutex> lock(model_mutex_);
  TutorialCNN& m = tutorial(model_);
  const Tensor x = input28(request);
  NoGradGuard no_grad;
  m.eval();
  auto& conv1 = dynamic_cast<Conv2d&>((*m.conv1)[0]);
  auto& conv2 = dynamic_cast<Conv2d&>((*m.conv2)[0]);
  const Tensor pre = conv1.forward(x);               // (1, 16, 26, 26): what a click steps through
  const Tensor pooled1 = m.conv1->forward(x);        // (1, 16, 14, 14): the notebook's maps
  const Tensor pooled2 = m.conv2->forward(pooled1);  // (1, 32, 7, 7)
  const Tensor& w1 = conv1.weight().value;           // (16, 1, 3, 3)
  const Tensor& w2 = conv2.weight().value;           // (32, 16, 3, 3)
  Tensor f2({32, 3, 3});
  for (int64_t o = 0; o < 32; ++o) {
    for (int64_t k = 0; k < 9; ++k) f2[o * 9 + k] = w2[(o * 16) * 9 + k];
  }
  return {
      {"conv1", maps_json(drop_batch(pre))},
      {"conv1_pooled", maps_json(drop_batch(pooled1))},
      {"conv2_pooled", maps_json(drop_batch(pooled2))},
      {"conv1_filters", maps_json(w1.reshape({16, 3, 3}))},
      {"conv1_bias", conv1.bias() ? conv1.bias()->value.to_vector() : std::vector<float>(16, 0.0f)},
      {"conv2_filters", maps_json(f2)}};
}

json ExplorerApi::inside_step(const json& request) const {
  const std::lock_guard<std::mutex> lock(model_mutex_);
  TutorialCNN& m = tutorial(model_);
  const Tensor x = input28(request);
  auto get = [&](const char* name, int64_t hi) { return index_field(request, name, hi); };
  auto& conv1 = dynamic_cast<Conv2d&>((*m.conv1)[0]);
  const int64_t c = get("channel", conv1.weight().value.size(0));
  const Tensor& w = conv1.weight().value;
  const Tensor kernel = filter_slice(w, c, 0);
  const auto& o = conv1.options();
  explicit_padding_only(conv1, "conv1");
  const StepThrough st =
      cnn::conv2d_steps(x.reshape({28, 28}), kernel, o.stride(), o.padding().size, o.dilation(),
                        conv1.bias() ? std::optional<float>(conv1.bias()->value[c]) : std::nullopt);
  const int64_t H_out = st.output.size(0), W_out = st.output.size(1);
  const int64_t r = get("row", H_out), col = get("col", W_out);
  const Step& s = st.steps[static_cast<std::size_t>(r * W_out + col)];
  json taps = json::array();
  for (const StepTap& t : s.taps) {
    taps.push_back({{"row", t.row},
                    {"col", t.col},
                    {"input", t.input},
                    {"weight", t.weight},
                    {"padded", t.padded}});
  }
  return {{"channel", c},
          {"row", r},
          {"col", col},
          {"value", s.value},
          {"expression", s.expression},
          {"taps", taps},
          {"bias", conv1.bias() ? conv1.bias()->value[c] : 0.0f}};
}

json ExplorerApi::inside_step2(const json& request) const {
  const std::lock_guard<std::mutex> lock(model_mutex_);
  TutorialCNN& m = tutorial(model_);
  const Tensor x = input28(request);
  NoGradGuard no_grad;
  m.eval();
  auto& conv2 = dynamic_cast<Conv2d&>((*m.conv2)[0]);
  auto& pool2 = dynamic_cast<MaxPool2d&>((*m.conv2)[2]);
  explicit_padding_only(conv2, "conv2");
  const Tensor pooled1 = m.conv1->forward(x);             // (1, 16, 14, 14): conv2's input
  const Tensor pre = drop_batch(conv2.forward(pooled1));  // (32, 12, 12), before ReLU
  const Tensor in = drop_batch(pooled1);
  const Tensor& w = conv2.weight().value;  // (32, 16, 3, 3)
  const int64_t c = index_field(request, "channel", w.size(0));
  // The pooling window over the ReLU'd map, as the pooling layer sees it.
  const Tensor relu_map = relu_forward(plane(pre, c));
  const StepThrough pooled = cnn::maxpool2d_steps(relu_map, pool2.geometry());
  const int64_t row = index_field(request, "row", pooled.output.size(0));
  const int64_t col = index_field(request, "col", pooled.output.size(1));
  const Step& ps = pooled.steps[static_cast<std::size_t>(row * pooled.output.size(1) + col)];
  const StepTap& win = ps.taps[static_cast<std::size_t>(ps.winner)];
  // The winner: one step-through per input map (its 3x3 window times the filter's slice).
  const int64_t C_in = w.size(1), W_pre = pre.size(2);
  const auto& o = conv2.options();
  json channels = json::array();
  const float bias = conv2.bias() ? conv2.bias()->value[c] : 0.0f;
  double sum = bias;
  for (int64_t ic = 0; ic < C_in; ++ic) {
    const StepThrough st = cnn::conv2d_steps(plane(in, ic), filter_slice(w, c, ic), o.stride(),
                                             o.padding().size, o.dilation());
    const Step& s = st.steps[static_cast<std::size_t>(win.row * st.output.size(1) + win.col)];
    sum += s.value;
    channels.push_back({{"channel", ic}, {"expression", s.expression}, {"value", s.value}});
  }
  json pool_taps = json::array();
  for (const StepTap& t : ps.taps) {
    pool_taps.push_back({{"row", t.row}, {"col", t.col}, {"input", t.input}, {"padded", t.padded}});
  }
  return {{"channel", c},
          {"row", row},
          {"col", col},
          {"pool",
           {{"expression", ps.expression},
            {"value", ps.value},
            {"taps", pool_taps},
            {"winner", ps.winner}}},
          {"winner", {{"row", win.row}, {"col", win.col}}},
          {"pre_activation", pre[(c * pre.size(1) + win.row) * W_pre + win.col]},
          {"bias", bias},
          {"channels", channels},
          {"sum", sum}};
}

json ExplorerApi::test_image(const json& request) const {
  const std::lock_guard<std::mutex> lock(model_mutex_);
  if (!test_)
    throw ApiError(422, "no test images: start the server with --data-dir DIR (MNIST's files)");
  const int64_t i = index_field(request, "index", test_->count);
  const Tensor x = test_->image_tensor(i);
  NoGradGuard no_grad;
  model_->eval();
  const Tensor logits = model_->forward(x);
  json rows = json::array();
  for (int64_t y = 0; y < 28; ++y) {
    rows.push_back(std::vector<float>(x.data() + y * 28, x.data() + (y + 1) * 28));
  }
  return {{"index", i},
          {"label", test_->labels[i]},
          {"pixels", rows},
          {"probs", softmax_forward(logits, 1).to_vector()},
          {"pred", argmax(logits, 1)[0]}};
}

}  // namespace cnn
