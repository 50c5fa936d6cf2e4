// Keras models in (cnn/io/keras_model.h): a CNN trained and saved by TensorFlow.js
// (tests/peers/tfjs_train.mjs) predicts here what it predicted there; a Keras 2 to_json()
// architecture builds the model cnn/nn/keras.h declares; hostile model.json files and shards are
// refused with one line naming the file, the layer and what is wrong.
#include <cstdlib>
#include <fstream>

#include "cnn/io/checkpoint.h"
#include "cnn/io/keras_model.h"
#include "testing.h"

namespace cnn::testing {
namespace {

namespace fs = std::filesystem;
namespace k = cnn::keras;
using nlohmann::json;

// TF.js's logits against ours on the same weights and inputs. Not bitwise: TF.js's CPU backend
// sums its convolutions and matrix products in its own order in float32 (and its BatchNormalization
// computes (x - mean) * rsqrt(var + eps) * gamma + beta in another grouping); the differences are
// float32 rounding, a few ulps of each sum.
constexpr Tol kTfjs{1e-5, 1e-5};

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary) << bytes;
}

// A tensor as run_onnx.mjs / tfjs_train.mjs write one: a JSON line {"shape"}, then float32.
Tensor read_tensor(const fs::path& p) {
  const std::string bytes = read_file(p);
  const auto nl = bytes.find('\n');
  if (nl == std::string::npos) throw std::runtime_error(p.string() + ": no header");
  const json header = json::parse(bytes.substr(0, nl));
  Tensor t(header["shape"].get<Shape>());
  if (bytes.size() - nl - 1 != static_cast<std::size_t>(t.numel()) * 4)
    throw std::runtime_error(p.string() + ": wrong size");
  std::memcpy(t.data(), bytes.data() + nl + 1, bytes.size() - nl - 1);
  return t;
}

Tensor nhwc_to_nchw(const Tensor& x) {
  const int64_t N = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  Tensor y({N, C, H, W});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t w = 0; w < W; ++w)
        for (int64_t c = 0; c < C; ++c)
          y[((n * C + c) * H + h) * W + w] = x[((n * H + h) * W + w) * C + c];
  return y;
}

// Runs the TF.js peer once for the whole test binary; fails (never skips) without it.
const fs::path& tfjs_dir() {
  static const fs::path dir = [] {
    const fs::path root = CNN_SOURCE_DIR;
    const fs::path out = fs::path(::testing::TempDir()) / ("cnn_tfjs_" + std::to_string(getpid()));
    fs::remove_all(out);
    if (std::system("node --version > /dev/null 2>&1") != 0) return fs::path("!node");
    if (!fs::exists(root / "tests/peers/node_modules/@tensorflow/tfjs/package.json"))
      return fs::path("!modules");
    const std::string cmd = "node '" + (root / "tests/peers/tfjs_train.mjs").string() + "' '" +
                            out.string() + "' > '" + out.string() + ".log' 2>&1";
    if (std::system(cmd.c_str()) != 0) return fs::path("!run:" + out.string() + ".log");
    return out;
  }();
  // Removed when the test binary exits (by the process that made it, not a forked child).
  static const struct Cleanup {
    pid_t owner = getpid();
    ~Cleanup() {
      if (getpid() != owner || dir.string().front() == '!') return;
      std::error_code ec;
      fs::remove_all(dir, ec);
      fs::remove(dir.string() + ".log", ec);
    }
  } cleanup;
  return dir;
}

::testing::AssertionResult peer_ran() {
  const std::string d = tfjs_dir().string();
  if (d == "!node")
    return ::testing::AssertionFailure() << "node is not installed (apt install nodejs)";
  if (d == "!modules") {
    return ::testing::AssertionFailure()
           << "tests/peers/node_modules lacks @tensorflow/tfjs: run npm ci --prefix tests/peers "
              "--ignore-scripts (scripts/test.sh does)";
  }
  if (d.rfind("!run:", 0) == 0) {
    return ::testing::AssertionFailure()
           << "tests/peers/tfjs_train.mjs failed: " << read_file(d.substr(5));
  }
  return ::testing::AssertionSuccess();
}

Tensor predict(Module& m, const Tensor& x) {
  m.eval();
  NoGradGuard no_grad;
  return m.forward(x);
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  double d = 0;
  for (int64_t i = 0; i < a.numel(); ++i) d = std::max(d, double(std::fabs(a[i] - b[i])));
  return d;
}

// ---- the TF.js peer ----

TEST(KerasImport, TfjsTrainedModelPredictsAsTfjs) {
  ASSERT_TRUE(peer_ran());
  const fs::path dir = tfjs_dir();
  const ImportedModel imported = import_tfjs((dir / "model.json").string());
  // Layer names are Keras's: each a Sequential of the library's layers, the weights in child 0.
  for (const char* name :
       {"conv2d.0.weight", "conv2d.0.bias", "batch_normalization.0.weight",
        "batch_normalization.0.bias", "batch_normalization.0.running_mean",
        "batch_normalization.0.running_var", "batch_normalization.0.num_batches_tracked",
        "conv2d_1.0.weight", "dense.0.weight", "dense_1.0.bias"}) {
    EXPECT_TRUE(imported.state.count(name)) << name;
  }
  // Training moved BatchNormalization's statistics off their initial 0 and 1.
  EXPECT_NE(imported.state.at("batch_normalization.0.running_mean")[0], 0.0f);
  EXPECT_NE(imported.state.at("batch_normalization.0.running_var")[0], 1.0f);

  Generator gen(0);
  const BuiltModel built = build_model(imported.architecture, gen, "model.json");
  built.module->load_state_dict(imported.state);
  EXPECT_EQ(built.input, (Shape{1, 28, 28}));
  EXPECT_EQ(built.output, (Shape{10}));
  const Tensor x = nhwc_to_nchw(read_tensor(dir / "inputs.bin"));
  const Tensor want = read_tensor(dir / "predictions.bin");
  const Tensor got = predict(*built.module, x);
  EXPECT_TRUE(all_close(got, want, kTfjs));
  std::printf("[ measured ] max |cnn - tfjs| = %.3g over %lld logits\n", max_abs_diff(got, want),
              static_cast<long long>(want.numel()));

  // The same through load_model, as `cnn predict --weights model.json` loads it.
  const LoadedModel loaded = load_model((dir / "model.json").string());
  EXPECT_TRUE(all_close(predict(*loaded.model, x), want, kTfjs));
}

// model.toJSON() (the Keras-style topology alone) describes the model model.json holds.
TEST(KerasImport, TfjsTopologyIsTheSameArchitecture) {
  ASSERT_TRUE(peer_ran());
  const fs::path dir = tfjs_dir();
  const json from_topology = read_model_file((dir / "keras.json").string());
  EXPECT_EQ(from_topology, import_tfjs((dir / "model.json").string()).architecture);
  EXPECT_EQ(from_topology["name"], "tfjs_cnn");
  // Conv2D(strides=2, padding="same") on 28: TensorFlow pads 0 rows above and 1 below.
  EXPECT_EQ(from_topology["layers"][0]["layers"][0]["padding"], json::parse("[[0, 1], [0, 1]]"))
      << from_topology["layers"][0].dump();
}

// ---- a Keras 2 to_json() document ----

// The leaf layers of a description, unnamed, in order: a Keras layer's Sequential flattened.
json leaves(const json& layers) {
  json out = json::array();
  for (json l : layers) {
    if (l["type"] == "Sequential") {
      for (const json& x : leaves(l["layers"])) out.push_back(x);
    } else {
      l.erase("name");
      out.push_back(l);
    }
  }
  return out;
}

TEST(KerasImport, Keras2ToJsonBuildsWhatTheKerasApiDeclares) {
  const std::string path = std::string(CNN_FIXTURE_DIR) + "/keras/keras2_sequential.json";
  const json doc = json::parse(read_file(path));
  EXPECT_TRUE(is_keras_json(doc));
  const json d = read_model_file(path);  // through keras_to_description
  EXPECT_EQ(d, keras_to_description(doc, path));
  EXPECT_FALSE(is_keras_json(d));
  Generator gen(0);
  const BuiltModel from_file = build_model(d, gen, path);
  const BuiltModel from_api =
      k::build({k::Input({28, 28, 1}),
                k::Conv2D(16, {3, 3})
                    .strides({2, 2})
                    .padding("same")
                    .dilation_rate({1, 1})
                    .activation("relu"),
                k::BatchNormalization(), k::MaxPooling2D({2, 2}), k::Dropout(0.25),
                k::Conv2D(32, {3, 3}).strides({1, 1}).dilation_rate({1, 1}).use_bias(false),
                k::Activation("relu"), k::AveragePooling2D({2, 2}).padding("same"), k::Flatten(),
                k::Dense(64, "relu"), k::Dense(10, "softmax")},
               gen, "keras2_cnn");
  // (Keras writes every size as a pair, kernel_size [3, 3]: so does the declaration here, for the
  // descriptions to compare equal; a Size2 remembers which form it was given.)
  const json api = describe_model(*from_api.module, from_api.input);
  EXPECT_EQ(d["input"], api["input"]);
  EXPECT_EQ(d["name"], api["name"]);
  EXPECT_EQ(leaves(d["layers"]), leaves(api["layers"]));
  EXPECT_EQ(from_file.parameters, from_api.parameters);
  EXPECT_EQ(from_file.output, (Shape{10}));
  // Each Keras layer with modules is a Sequential of its name; InputLayer adds none.
  std::vector<std::string> names;
  for (const json& l : d["layers"]) names.push_back(l["name"]);
  EXPECT_EQ(names, (std::vector<std::string>{"conv2d", "batch_normalization", "max_pooling2d",
                                             "dropout", "conv2d_1", "activation",
                                             "average_pooling2d", "flatten", "dense", "dense_1"}));
}

// Keras 2 before 2.2.3 wrote the Sequential's config as the list of layers; a Sequential built by
// model.build(shape) without an InputLayer declares its input as build_input_shape.
TEST(KerasImport, OlderKeras2FormsReadTheSame) {
  const json modern = json::parse(R"({"class_name": "Sequential", "config": {"name": "m",
    "layers": [{"class_name": "Dense", "config": {"name": "dense", "units": 4,
      "activation": "relu", "batch_input_shape": [null, 6]}}]},
    "keras_version": "2.4.0", "backend": "tensorflow"})");
  json listed = modern;
  listed["config"] = modern["config"]["layers"];
  json built = modern;
  built["config"]["layers"][0]["config"].erase("batch_input_shape");
  built["config"]["build_input_shape"] = json::parse("[null, 6]");
  const json want = keras_to_description(modern, "modern");
  EXPECT_EQ(want["input"], json::parse("[6]"));
  EXPECT_EQ(want["layers"][0]["layers"].size(), 2u);  // Linear, ReLU
  json unnamed = want;
  unnamed.erase("name");
  EXPECT_EQ(keras_to_description(listed, "listed"), unnamed);
  EXPECT_EQ(keras_to_description(built, "built"), want);
}

// ---- hostile files ----

// A small TF.js model written by hand: Conv2D(2, 3) on 5x5x1, Flatten, Dense(3), weights i / 100.
struct SmallModel {
  json doc;
  std::vector<float> weights;  // in manifest order
  fs::path dir;

  SmallModel() {
    doc = json::parse(R"({"format": "layers-model", "generatedBy": "hand",
      "modelTopology": {"class_name": "Sequential", "config": {"name": "small", "layers": [
        {"class_name": "Conv2D", "config": {"name": "conv2d", "filters": 2, "kernel_size": [3, 3],
          "strides": [1, 1], "padding": "valid", "activation": "relu", "use_bias": true,
          "batch_input_shape": [null, 5, 5, 1]}},
        {"class_name": "Flatten", "config": {"name": "flatten"}},
        {"class_name": "Dense", "config": {"name": "dense", "units": 3, "activation": "linear"}}]},
        "keras_version": "tfjs-layers 4.22.0", "backend": "tensor_flow.js"},
      "weightsManifest": [{"paths": ["group1-shard1of1.bin"], "weights": [
        {"name": "conv2d/kernel", "shape": [3, 3, 1, 2], "dtype": "float32"},
        {"name": "conv2d/bias", "shape": [2], "dtype": "float32"},
        {"name": "dense/kernel", "shape": [18, 3], "dtype": "float32"},
        {"name": "dense/bias", "shape": [3], "dtype": "float32"}]}]})");
    for (int i = 0; i < 18 + 2 + 54 + 3; ++i) weights.push_back(static_cast<float>(i) / 100.0f);
    dir = fresh_test_dir("keras");
  }
  std::string write() const {
    write_file(dir / "model.json", doc.dump());
    write_file(dir / "group1-shard1of1.bin",
               std::string(reinterpret_cast<const char*>(weights.data()), weights.size() * 4));
    return (dir / "model.json").string();
  }
  json& weight(int i) { return doc["weightsManifest"][0]["weights"][i]; }
};

// The error's one line, naming the file.
void expect_refused(const std::string& path, const std::vector<std::string>& fragments) {
  try {
    import_tfjs(path);
    ADD_FAILURE() << "expected a cnn::Error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_EQ(msg.rfind(path + ": ", 0), 0u) << msg;
    for (const auto& f : fragments)
      EXPECT_NE(msg.find(f), std::string::npos) << f << " not in: " << msg;
  }
}

TEST(KerasImport, SmallModelLoadsTransposed) {
  SmallModel m;
  const ImportedModel imported = import_tfjs(m.write());
  // Keras's kernel[kh][kw][i][o] at ((kh * 3 + kw) * 1 + i) * 2 + o; ours [o][i][kh][kw].
  const Tensor& w = imported.state.at("conv2d.0.weight");
  ASSERT_EQ(w.shape(), (Shape{2, 1, 3, 3}));
  EXPECT_FLOAT_EQ(w.at({1, 0, 2, 1}), m.weights[(2 * 3 + 1) * 2 + 1]);
  const Tensor& d = imported.state.at("dense.0.weight");  // Keras's (18, 3) at 20 + i * 3 + o
  ASSERT_EQ(d.shape(), (Shape{3, 18}));
  EXPECT_FLOAT_EQ(d.at({2, 5}), m.weights[20 + 5 * 3 + 2]);
  EXPECT_FLOAT_EQ(imported.state.at("dense.0.bias")[1], m.weights[74 + 1]);
}

TEST(KerasImport, ShortShardRefused) {
  SmallModel m;
  const std::string path = m.write();
  fs::resize_file(m.dir / "group1-shard1of1.bin", 300);
  expect_refused(path, {"weights manifest declares 308 bytes in group1-shard1of1.bin, the file "
                        "holds 300"});
}

TEST(KerasImport, ShardPathOutsideTheDirectoryRefused) {
  SmallModel m;
  m.doc["weightsManifest"][0]["paths"][0] = "../group1-shard1of1.bin";
  expect_refused(m.write(), {"\"../group1-shard1of1.bin\"", "plain file name"});
  m.doc["weightsManifest"][0]["paths"][0] = "/etc/passwd";
  expect_refused(m.write(), {"\"/etc/passwd\"", "plain file name"});
}

TEST(KerasImport, AbsurdShapeRefused) {
  SmallModel m;
  m.weight(2)["shape"] = json::parse("[100000000, 100000000, 3]");
  expect_refused(m.write(),
                 {"keras layer 'dense' (Dense)", "dense/kernel", "more than 2147483648"});
  m.weight(2)["shape"] = json::parse("[18, 4]");
  expect_refused(m.write(),
                 {"keras layer 'dense' (Dense)", "shape [18, 4], the layer expects [18, 3]"});
}

TEST(KerasImport, UnknownLayerClassRefused) {
  SmallModel m;
  m.doc["modelTopology"]["config"]["layers"][1] =
      json::parse(R"({"class_name": "LSTM", "config": {"name": "lstm", "units": 4}})");
  expect_refused(m.write(), {"keras layer 1 'lstm' (LSTM)", "layer class 'LSTM' is not supported"});
}

TEST(KerasImport, UnknownWeightNameRefused) {
  SmallModel m;
  m.weight(3)["name"] = "dense_9/bias";
  expect_refused(m.write(), {"weight 'dense_9/bias' belongs to no layer of the model"});
}

TEST(KerasImport, MissingWeightRefused) {
  SmallModel m;
  m.doc["weightsManifest"][0]["weights"].erase(3);
  m.weights.resize(74);
  expect_refused(m.write(), {"keras layer 'dense' (Dense)", "'dense/bias' is missing"});
}

TEST(KerasImport, MissingShardRefused) {
  SmallModel m;
  const std::string path = m.write();
  fs::remove(m.dir / "group1-shard1of1.bin");
  expect_refused(path, {"weight shard 'group1-shard1of1.bin' is missing"});
}

TEST(KerasImport, NonFloat32Refused) {
  SmallModel m;
  m.weight(0)["dtype"] = "int32";
  expect_refused(m.write(), {"keras layer 'conv2d' (Conv2D)", "dtype \"int32\" is not supported"});
}

TEST(KerasImport, MalformedJsonRefused) {
  SmallModel m;
  const std::string path = m.write();
  write_file(path, m.doc.dump().substr(0, 100));
  expect_refused(path, {"malformed JSON"});
  write_file(path, std::string(100000, '['));
  expect_refused(path, {"nested deeper than 64"});
}

TEST(KerasImport, BadLayerArgumentsNameTheLayer) {
  const json doc = json::parse(R"({"class_name": "Sequential", "config": {"layers": [
    {"class_name": "Conv2D", "config": {"name": "c", "filters": 4, "kernel_size": 3,
      "batch_input_shape": [null, 8, 8, 3], "data_format": "channels_first"}}]}})");
  expect_error([&] { keras_to_description(doc, "m.json"); },
               {"m.json: keras layer 0 'c' (Conv2D): data_format 'channels_first'"});
  json huge = doc;
  huge["config"]["layers"][0]["config"].erase("data_format");
  huge["config"]["layers"][0]["config"]["filters"] = 60000000;
  huge["config"]["layers"][0]["config"]["kernel_size"] = 1000;
  expect_error([&] { keras_to_description(huge, "m.json"); },
               {"m.json: keras layer 0 'c' (Conv2D): the kernel is more than"});
  json functional = doc;
  functional["class_name"] = "Functional";
  expect_error([&] { keras_to_description(functional, "m.json"); },
               {"only Sequential models are supported"});
}

}  // namespace
}  // namespace cnn::testing
