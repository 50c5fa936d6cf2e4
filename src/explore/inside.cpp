// The explorer's model endpoints: predict a drawing, look inside the model, step through one
// conv1 output or take one pixel of conv2's pooled maps apart. The model is any model: its first
// two convolution stages are found from its layers' kinds and order (api.h).
#include "cnn/data/digit.h"
#include "cnn/error.h"
#include "cnn/explain/steps.h"
#include "cnn/explore/api.h"
#include "cnn/nn/grad_mode.h"
#include "cnn/nn/layers.h"
#include "cnn/ops/argmax.h"
#include "cnn/ops/relu.h"
#include "cnn/ops/softmax.h"
#include "trace.h"

namespace cnn {

namespace {

using json = nlohmann::json;

using explore::bad;

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

// (C_out, C_in, K_h, K_w) -> the C_out kernels of input channel 0, (C_out, K_h, K_w).
Tensor filters_of_channel0(const Tensor& w) {
  Tensor out({w.size(0), w.size(2), w.size(3)});
  for (int64_t o = 0; o < w.size(0); ++o) {
    const Tensor k = filter_slice(w, o, 0);
    std::copy(k.data(), k.data() + k.numel(), out.data() + o * k.numel());
  }
  return out;
}

std::string joined(const std::vector<std::string>& items) {
  std::string s;
  for (const auto& item : items) s += (s.empty() ? "" : ", ") + item;
  return s;
}

using explore::collect_leaves;
using explore::drop_batch;
using explore::Leaf;
using explore::own_parameter;

// A convolution stage: leaves [conv, last].
struct Stage {
  std::size_t conv = 0, last = 0;
  const Conv2d* layer = nullptr;
  std::string name;  // "conv1.0"
};

// The inside view of a model: its first two convolution stages (see api.h), found from its
// layers' kinds and shapes alone; or 422 saying what the view needs and what the model has.
struct InsideModel {
  std::vector<Leaf> leaves;
  Stage stage[2];

  std::vector<std::string> stage_types(int k) const {
    std::vector<std::string> types;
    for (std::size_t i = stage[k].conv; i <= stage[k].last; ++i) {
      types.push_back(leaves[i].module->type_name());
    }
    return types;
  }
};

InsideModel inside_model(const Module& model, const Shape& input) {
  if (input != Shape{1, 28, 28}) {
    throw ApiError(422,
                   "the inside view puts a 28x28 gray digit (a drawing or an MNIST image) "
                   "into the model; this model takes inputs of shape " +
                       shape_str(input));
  }
  InsideModel m;
  collect_leaves(model, "", m.leaves);
  Shape shape = {1};
  shape.insert(shape.end(), input.begin(), input.end());
  std::vector<std::size_t> convs;
  for (std::size_t i = 0; i < m.leaves.size(); ++i) {
    try {
      shape = m.leaves[i].module->output_shape(shape);
    } catch (const Error& e) {
      throw ApiError(422, "the inside view follows the model's layers in order, but layer " +
                              m.leaves[i].path +
                              " does not take what the one before gives: " + e.what());
    }
    m.leaves[i].output = shape;
    if (dynamic_cast<const Conv2d*>(m.leaves[i].module)) convs.push_back(i);
  }
  if (convs.size() < 2) {
    throw ApiError(
        422, "the inside view shows a model's first two Conv2d layers; this model has " +
                 (convs.empty() ? std::string("none") : "one, layer " + m.leaves[convs[0]].path));
  }
  for (int k = 0; k < 2; ++k) {
    Stage& st = m.stage[k];
    st.conv = st.last = convs[static_cast<std::size_t>(k)];
    st.layer = dynamic_cast<const Conv2d*>(m.leaves[st.conv].module);
    st.name = m.leaves[st.conv].path;
    while (st.last + 1 < m.leaves.size() && m.leaves[st.last + 1].output.size() == 4 &&
           !dynamic_cast<const Conv2d*>(m.leaves[st.last + 1].module)) {
      ++st.last;
    }
  }
  return m;
}

// The model's outputs of each leaf, up to stage 2's last (trace.h).
std::vector<Tensor> traced_forward(Module& model, const InsideModel& m, const Tensor& x) {
  return explore::traced_forward(model, m.leaves, x, m.stage[1].last + 1, "the inside view");
}

// What flows into leaf i.
const Tensor& input_of(const std::vector<Tensor>& outputs, const Tensor& x, std::size_t i) {
  return i == 0 ? x : outputs[i - 1];
}

// The padding the step-through uses: the same on both sides, as conv2d_steps draws it. A
// "valid" padding is 0 and "same" is resolved; "same" with an even dilated kernel pads one side
// more and cannot be drawn.
Size2 symmetric_padding(const Stage& st) {
  const Conv2dGeometry& g = st.layer->geometry();
  if (g.pad_top != g.pad_bottom || g.pad_left != g.pad_right) {
    throw ApiError(422, "the step-through pads both sides of the input alike; layer " + st.name +
                            " has padding=" + st.layer->options().padding().str() +
                            ", which pads (top, bottom, left, right) = (" +
                            std::to_string(g.pad_top) + ", " + std::to_string(g.pad_bottom) + ", " +
                            std::to_string(g.pad_left) + ", " + std::to_string(g.pad_right) + ")");
  }
  return Size2(g.pad_top, g.pad_left);
}

float bias_of(const Stage& st, int64_t c) {
  const Tensor* b = own_parameter(*st.layer, "bias");
  return b ? (*b)[c] : 0.0f;
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

// Refuses a model whose input is not what the drawing pad and MNIST give.
void check_digit_input(const Shape& input, const std::string& what) {
  if (input != Shape{1, 28, 28}) {
    throw ApiError(422, what +
                            " is a 28x28 gray digit, shape (1, 28, 28); this model takes "
                            "inputs of shape " +
                            shape_str(input));
  }
}

}  // namespace

json ExplorerApi::predict(const json& request) const {
  const std::lock_guard<std::mutex> lock(model_mutex_);
  const auto px = pixels(request, limits_.max_drawing, 255.0f);
  check_digit_input(input_, "a drawing, prepared as MNIST's digits were,");
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
  const InsideModel m = inside_model(*model_, input_);
  const Tensor x = input28(request);
  const std::vector<Tensor> out = traced_forward(*model_, m, x);
  const Stage &s1 = m.stage[0], &s2 = m.stage[1];
  const Tensor& w1 = *own_parameter(*s1.layer, "weight");
  const Tensor& w2 = *own_parameter(*s2.layer, "weight");
  std::vector<float> bias1(static_cast<std::size_t>(w1.size(0)));
  for (int64_t c = 0; c < w1.size(0); ++c) bias1[static_cast<std::size_t>(c)] = bias_of(s1, c);
  return {{"conv1", maps_json(drop_batch(out[s1.conv]))},         // what a click steps through
          {"conv1_pooled", maps_json(drop_batch(out[s1.last]))},  // the notebook's maps
          {"conv2_pooled", maps_json(drop_batch(out[s2.last]))},
          {"conv1_filters", maps_json(filters_of_channel0(w1))},
          {"conv1_bias", bias1},
          {"conv2_filters", maps_json(filters_of_channel0(w2))},
          {"names", {{"conv1", s1.name}, {"conv2", s2.name}}},
          {"stages", {m.stage_types(0), m.stage_types(1)}}};
}

json ExplorerApi::inside_step(const json& request) const {
  const std::lock_guard<std::mutex> lock(model_mutex_);
  const InsideModel m = inside_model(*model_, input_);
  const Stage& s1 = m.stage[0];
  const Tensor& w = *own_parameter(*s1.layer, "weight");
  if (w.size(1) != 1) {
    throw ApiError(422, "the step-through of a conv1 pixel shows one input map; layer " + s1.name +
                            " takes " + std::to_string(w.size(1)) + " input channels");
  }
  const Size2 padding = symmetric_padding(s1);
  const Tensor x = input28(request);
  auto get = [&](const char* name, int64_t hi) { return index_field(request, name, hi); };
  const int64_t c = get("channel", w.size(0));
  const std::vector<Tensor> out = traced_forward(*model_, m, x);
  const Tensor& in = input_of(out, x, s1.conv);  // the drawing, unless layers come first
  const auto& o = s1.layer->options();
  const StepThrough st = cnn::conv2d_steps(plane(drop_batch(in), 0), filter_slice(w, c, 0),
                                           o.stride(), padding, o.dilation(), bias_of(s1, c));
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
  return {{"channel", c},          {"row", r},     {"col", col},
          {"value", s.value},      {"taps", taps}, {"expression", s.expression},
          {"bias", bias_of(s1, c)}};
}

json ExplorerApi::inside_step2(const json& request) const {
  const std::lock_guard<std::mutex> lock(model_mutex_);
  const InsideModel m = inside_model(*model_, input_);
  const Stage& s2 = m.stage[1];
  // Stage 2 as this step explains it: Conv2d, then ReLU and/or MaxPool2d in that order.
  const ReLU* relu = nullptr;
  const MaxPool2d* pool = nullptr;
  for (std::size_t i = s2.conv + 1; i <= s2.last; ++i) {
    const Module* leaf = m.leaves[i].module;
    if (dynamic_cast<const Dropout*>(leaf)) continue;  // the identity in evaluation mode
    if (!relu && !pool && dynamic_cast<const ReLU*>(leaf)) {
      relu = dynamic_cast<const ReLU*>(leaf);
    } else if (!pool && dynamic_cast<const MaxPool2d*>(leaf)) {
      pool = dynamic_cast<const MaxPool2d*>(leaf);
    } else {
      throw ApiError(422, "taking a conv2 pixel apart needs layer " + s2.name +
                              " followed by ReLU and/or MaxPool2d, in that order; this model's "
                              "second stage is " +
                              joined(m.stage_types(1)));
    }
  }
  const Size2 padding = symmetric_padding(s2);
  const Tensor x = input28(request);
  const Tensor& w = *own_parameter(*s2.layer, "weight");  // (C_out, C_in / groups, K_h, K_w)
  const int64_t c = index_field(request, "channel", w.size(0));
  const std::vector<Tensor> out = traced_forward(*model_, m, x);
  const Tensor in = drop_batch(input_of(out, x, s2.conv));  // stage 1's output
  const Tensor pre = drop_batch(out[s2.conv]);              // before ReLU
  // The pooling window over the (ReLU'd) map, as the pooling layer sees it; without a pool, a
  // 1x1 window.
  const Tensor map = relu ? relu_forward(plane(pre, c)) : plane(pre, c);
  Pool2dGeometry identity;
  identity.kernel = identity.stride = Size2(1);
  const StepThrough pooled = cnn::maxpool2d_steps(map, pool ? pool->geometry() : identity);
  const int64_t row = index_field(request, "row", pooled.output.size(0));
  const int64_t col = index_field(request, "col", pooled.output.size(1));
  const Step& ps = pooled.steps[static_cast<std::size_t>(row * pooled.output.size(1) + col)];
  const StepTap& win = ps.taps[static_cast<std::size_t>(ps.winner)];
  // The winner: one step-through per input map of its group (its window times the filter's
  // slice for that map).
  const int64_t per_group = w.size(1), W_pre = pre.size(2);
  const int64_t first_map = c / (w.size(0) / s2.layer->options().groups()) * per_group;
  const auto& o = s2.layer->options();
  json channels = json::array();
  const float bias = bias_of(s2, c);
  double sum = bias;
  for (int64_t ic = 0; ic < per_group; ++ic) {
    const StepThrough st = cnn::conv2d_steps(plane(in, first_map + ic), filter_slice(w, c, ic),
                                             o.stride(), padding, o.dilation());
    const Step& s = st.steps[static_cast<std::size_t>(win.row * st.output.size(1) + win.col)];
    sum += s.value;
    channels.push_back(
        {{"channel", first_map + ic}, {"expression", s.expression}, {"value", s.value}});
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
          {"sum", sum},
          {"relu", relu != nullptr},
          {"pooled", pool != nullptr},
          {"names", {{"conv1", m.stage[0].name}, {"conv2", s2.name}}}};
}

json ExplorerApi::test_image(const json& request) const {
  const SelectedModel model = select_model(request);
  if (!test_)
    throw ApiError(422,
                   "no test images: start the server with --dataset (mnist, fashion-mnist, or an "
                   "image folder with a test/ folder) and --data-dir DIR (the IDX files)");
  const int64_t i = index_field(request, "index", test_->count);
  const Shape shape = test_->image_shape();
  if (shape != input_) {
    throw ApiError(422, "the test images of " + test_->name + " have shape " + shape_str(shape) +
                            "; this model takes inputs of shape " + shape_str(input_));
  }
  const Tensor x = test_->image_tensor(i);
  NoGradGuard no_grad;
  model->eval();
  const Tensor logits = model->forward(x);
  // One channel: H x W rows, as the page draws a digit; more: [C][H][W].
  const int64_t C = test_->channels, H = test_->rows, W = test_->cols;
  json planes = json::array();
  for (int64_t c = 0; c < C; ++c) {
    json rows = json::array();
    for (int64_t y = 0; y < H; ++y) {
      const float* row = x.data() + (c * H + y) * W;
      rows.push_back(std::vector<float>(row, row + W));
    }
    planes.push_back(std::move(rows));
  }
  return {{"index", i},
          {"label", test_->labels[i]},
          {"shape", shape},
          {"pixels", C == 1 ? planes[0] : planes},
          {"probs", softmax_forward(logits, 1).to_vector()},
          {"pred", argmax(logits, 1)[0]}};
}

}  // namespace cnn
