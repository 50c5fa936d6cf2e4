// cnn summary, eval, predict, visualize: everything that reads a model without training it.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <optional>

#include "cnn/data/digit.h"
#include "cnn/data/image_folder.h"
#include "cnn/limits.h"
#include "cnn/models/registry.h"
#include "cnn/nn/grad_mode.h"
#include "cnn/train/trainer.h"
#include "cnn/viz/figures.h"
#include "common.h"

namespace cnn::cli {

namespace {

std::string join3(const Tensor& t) {
  std::string s;
  char buf[32];
  for (int64_t i = 0; i < t.numel(); ++i) {
    std::snprintf(buf, sizeof buf, "%.3f", t[i]);
    s += (i ? ", " : "") + std::string(buf);
  }
  return s;
}

// The input a command works on: a dataset image (with its label) or a picture file.
struct Input {
  Tensor image;        // (1, 1, rows, cols): a dataset's image, or a picture prepared as MNIST's
  int64_t label = -1;  // -1: unknown
  std::string caption;
};

// The options of the commands that read a checkpoint and one image (predict, visualize).
struct InputArgs {
  std::string weights, dataset, data_dir, split = "test", image, cache_dir;
  std::vector<std::string> images;  // predict's --image
  int64_t index = -1;
  std::string device = "cpu";  // predict's --device
};

const char* const kCacheDirHelp =
    "Where an image folder's decoded images are kept (none: no cache; default: "
    "$XDG_CACHE_HOME/cnn or ~/.cache/cnn)";

// many: --image may be given several times and name folders (predict).
void add_input_options(CLI::App* cmd, InputArgs& a, bool many = false) {
  cmd->add_option("--weights", a.weights, kWeightsHelp)->required();
  auto* index =
      cmd->add_option("--index", a.index, "Image index in the dataset split")->check(integer_in(0));
  auto* image =
      many ? cmd->add_option("--image", a.images,
                             "Pictures (PNG, JPEG, BMP, PGM/PPM) instead, or folders of them; "
                             "several are classified in batches")
           : cmd->add_option("--image", a.image,
                             "A picture of a digit (PNG, JPEG, BMP, PGM/PPM) instead");
  index->excludes(image);
  cmd->add_option("--split", a.split, "Split for --index")
      ->check(one_of({"train", "test"}))
      ->capture_default_str();
  cmd->add_option("--dataset", a.dataset, "Dataset (default: the checkpoint's)")
      ->check(dataset_choice());
  cmd->add_option("--data-dir", a.data_dir, "Directory of the IDX files (default: data/<dataset>)");
  cmd->add_option("--cache-dir", a.cache_dir, kCacheDirHelp);
}

// A picture file is read before the checkpoint, so that a wrong path is reported first.
// A picture file prepared as MNIST's digits were: (1, 1, 28, 28) in [0, 1]. Errors name the file.
Tensor digit_from_file(const std::string& path) {
  const GrayImage picture = read_gray_image(path);
  DigitSteps steps;
  try {
    steps = preprocess_digit(picture);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());  // the library does not know the file's name
  }
  return digit_tensor(steps.centered);
}

std::optional<Input> read_image_input(const InputArgs& a) {
  if (a.image.empty()) return std::nullopt;
  Input in;
  in.image = digit_from_file(a.image);
  in.caption = std::filesystem::path(a.image).filename().string();
  return in;
}

// Refuses an input of another shape than the model's, naming both.
void check_input(const LoadedModel& loaded, const Shape& given, const std::string& what,
                 const std::string& path) {
  if (loaded.input != given) {
    throw Error(path + ": the model takes inputs of shape " + shape_str(loaded.input) + "; " +
                what + " " + shape_str(given));
  }
}

// classify: the model's outputs must also cover the dataset's classes (predict); visualize only
// needs the input to fit.
Input resolve_input(const LoadedModel& loaded, const InputArgs& a, std::optional<Input> image,
                    bool classify) {
  if (image) {
    const Shape& s = image->image.shape();
    check_input(loaded, Shape(s.begin() + 1, s.end()), a.image + " is prepared as an MNIST digit,",
                a.weights);
    return *image;
  }
  Input in;
  const std::string name = dataset_of(loaded, a.dataset);
  const Dataset data = load_split(name, a.split, loaded.input, {a.data_dir, a.cache_dir, false},
                                  class_names_of(loaded));
  if (classify) {
    check_fits(loaded, data, a.weights);
  } else {
    check_input(loaded, data.image_shape(), name + "'s images are", a.weights);
  }
  if (a.index >= data.count) {
    throw Error("--index " + std::to_string(a.index) + " is out of range: the " + a.split +
                " split of " + name + " has " + std::to_string(data.count) + " images (0 to " +
                std::to_string(data.count - 1) + ")");
  }
  in.image = data.image_tensor(a.index);
  in.label = data.labels[a.index];
  in.caption = a.split + " #" + std::to_string(a.index) + ", label " + std::to_string(in.label);
  return in;
}

// A checkpoint's file is untrusted: a normalisation that is not finite numbers with std > 0,
// one or one per channel, is refused, quoting an excerpt of it.
std::optional<Normalize> normalization_of(const LoadedModel& loaded) {
  const auto& opts = loaded.meta.value("train_options", nlohmann::json::object());
  if (!opts.is_object() || !opts.contains("normalize")) return std::nullopt;
  Normalize n;
  try {
    n = Normalize::from_json(opts["normalize"]);
    n.check(loaded.input.empty() ? 1 : loaded.input[0]);
  } catch (const Error& e) {
    throw Error(std::string("the checkpoint's train_options.normalize: ") + e.what());
  }
  return n;
}

// Applies the checkpoint's input normalisation, if it was trained with one.
Tensor prepare(const LoadedModel& loaded, Tensor image) {
  if (const auto n = normalization_of(loaded)) {
    image = image.clone();
    const int64_t hw = image.size(2) * image.size(3);
    for (int64_t j = 0; j < image.numel(); ++j) {
      const int64_t c = j / hw % image.size(1);
      image[j] = (image[j] - n->mean_of(c)) / n->std_of(c);
    }
  }
  return image;
}

}  // namespace

void add_summary_command(CLI::App& app, int& exit_code) {
  auto model_name = std::make_shared<std::string>("tutorial");
  auto classes = std::make_shared<int64_t>(10);
  auto print_model = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand("summary", "Print the model's torchsummary table");
  cmd->add_option(
         "--model", *model_name,
         "A shipped model (" + join_names(shipped_model_names()) + ") or the path of a model file")
      ->capture_default_str();
  auto* num_classes =
      cmd->add_option("--num-classes", *classes, "Output classes (the tutorial's model)")
          ->check(integer_in(1, limits::kMaxClasses))
          ->capture_default_str();
  cmd->add_flag("--print-model", *print_model, "Also print the model as PyTorch prints it");
  auto weights = std::make_shared<std::string>();
  cmd->add_option("--weights", *weights,
                  std::string(kWeightsHelp) + ": its model, instead of --model");
  cmd->callback([=, &exit_code] {
    if (!weights->empty()) {
      if (cmd->count("--model") > 0 || num_classes->count() > 0) {
        throw Error("--weights " + *weights + " brings its own model: no --model or --num-classes");
      }
      const LoadedModel loaded = load_model(*weights);
      if (*print_model) std::printf("%s\n", loaded.model->repr().c_str());
      std::fputs(summary(*loaded.model, loaded.input).c_str(), stdout);
      exit_code = 0;
      return;
    }
    const ModelSource source = find_model(*model_name);
    nlohmann::json description = source.description;
    if (*model_name == "tutorial") {
      description = tutorial_architecture(*classes);
    } else if (num_classes->count() > 0) {
      throw Error(
          "--num-classes: only the tutorial's model takes it; a model file declares its "
          "last layer's out_features");
    }
    const BuiltModel built = build_model(description, default_generator(), source.source);
    if (*print_model) std::printf("%s\n", built.module->repr().c_str());
    std::fputs(summary(*built.module, built.input).c_str(), stdout);
    exit_code = 0;
  });
}

void add_eval_command(CLI::App& app, int& exit_code) {
  struct Args {
    std::string weights, dataset, data_dir, split = "test", json, cache_dir, device = "cpu";
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "eval", "Accuracy, loss, per-class accuracy and confusion matrix of a checkpoint");
  cmd->add_option("--weights", a->weights, kWeightsHelp)->required();
  cmd->add_option("--dataset", a->dataset, "Dataset (default: the checkpoint's)")
      ->check(dataset_choice());
  cmd->add_option("--data-dir", a->data_dir,
                  "Directory of the IDX files (default: data/<dataset>)");
  cmd->add_option("--split", a->split, "Split")
      ->check(one_of({"train", "test"}))
      ->capture_default_str();
  cmd->add_option("--json", a->json, "Write the figures as JSON here (replaced if it exists)");
  cmd->add_option("--cache-dir", a->cache_dir, kCacheDirHelp);
  add_device_option(cmd, a->device);
  cmd->callback([a, &exit_code] {
    if (!a->json.empty()) check_output_file("--json", a->json);
    const Device device = resolve_device(a->device);
    const LoadedModel loaded = load_model(a->weights);
    loaded.model->to(device);
    const std::string name = dataset_of(loaded, a->dataset);
    const Dataset data = load_split(name, a->split, loaded.input,
                                    {a->data_dir, a->cache_dir, false}, class_names_of(loaded));
    check_fits(loaded, data, a->weights);
    const EvalResult r = evaluate(*loaded.model, data, 250, normalization_of(loaded));
    std::printf("%s %s: %lld images  accuracy %.4f  loss %.5f\n\n", name.c_str(), a->split.c_str(),
                (long long)r.count, r.accuracy, r.loss);
    std::printf("per-class accuracy\n");
    for (std::size_t c = 0; c < r.per_class_accuracy.size(); ++c) {
      std::printf("  %zu %-12s %.4f\n", c, data.class_names[c].c_str(), r.per_class_accuracy[c]);
    }
    std::printf("\nconfusion matrix (rows: true class, columns: predicted)\n      ");
    for (std::size_t c = 0; c < r.confusion.size(); ++c) std::printf("%6zu", c);
    std::printf("\n");
    for (std::size_t t = 0; t < r.confusion.size(); ++t) {
      std::printf("  %2zu  ", t);
      for (int64_t v : r.confusion[t]) std::printf("%6lld", (long long)v);
      std::printf("\n");
    }
    if (!a->json.empty()) {
      write_json(a->json, {{"dataset", name},
                           {"split", a->split},
                           {"count", r.count},
                           {"accuracy", r.accuracy},
                           {"loss", r.loss},
                           {"per_class_accuracy", r.per_class_accuracy},
                           {"class_names", data.class_names},
                           {"confusion", r.confusion}});
    }
    exit_code = 0;
  });
}

namespace {

// A picture file as the checkpoint's model takes it: an MNIST-style model's input is prepared as
// MNIST's digits were (cnn/data/digit.h); an image folder's model's as its folder's images were
// (channels and size, cnn/data/image_folder.h).
std::vector<float> picture_for(const LoadedModel& loaded, const std::string& path) {
  const std::string dataset = loaded.meta.contains("dataset") &&
                                      loaded.meta["dataset"].contains("name") &&
                                      loaded.meta["dataset"]["name"].is_string()
                                  ? loaded.meta["dataset"]["name"].get<std::string>()
                                  : "mnist";
  if (is_idx_dataset(dataset)) {
    const Tensor t = digit_from_file(path);
    check_input(loaded, Shape(t.shape().begin() + 1, t.shape().end()),
                path + " is prepared as an MNIST digit,", loaded.name);
    return std::vector<float>(t.begin(), t.end());
  }
  const Shape& in = loaded.input;
  const std::vector<uint8_t> planes = read_image_as(path, in[0], in[1], in[2]);
  std::vector<float> v(planes.size());
  for (std::size_t i = 0; i < planes.size(); ++i) v[i] = planes[i] / 255.0f;
  return v;
}

// predict over many pictures: prepared and classified in batches, one line (or JSON entry) each
// with the top-k classes and their probabilities.
void predict_many(const InputArgs& a, int64_t top_k, const std::string& json) {
  std::vector<std::string> files;
  for (const auto& p : a.images) {
    if (!std::filesystem::exists(p)) throw Error("--image " + p + ": no such file or folder");
    for (auto& f : list_images(p)) files.push_back(std::move(f));
    if (static_cast<int64_t>(files.size()) > limits::kMaxFolderImages) {
      throw Error("--image: more than " + std::to_string(limits::kMaxFolderImages) + " pictures");
    }
  }
  if (files.empty()) throw Error("--image: no pictures (.png .jpg .jpeg .bmp .pgm .ppm) found");
  const Device device = resolve_device(a.device);
  const LoadedModel loaded = load_model(a.weights);
  loaded.model->to(device);
  const std::vector<std::string> names = class_names_of(loaded);
  const int64_t classes = loaded.output.empty() ? 0 : loaded.output[0];
  const int64_t k = std::min(top_k, classes);
  const int64_t plane = shape_numel(loaded.input);
  const auto norm = normalization_of(loaded);
  const LogitsGuard logits_of(*loaded.model);
  NoGradGuard no_grad;
  nlohmann::json out = nlohmann::json::array();
  constexpr int64_t kBatch = 256;
  for (std::size_t first = 0; first < files.size(); first += kBatch) {
    const auto b = static_cast<int64_t>(std::min<std::size_t>(kBatch, files.size() - first));
    Shape shape = {b};
    shape.insert(shape.end(), loaded.input.begin(), loaded.input.end());
    Tensor batch(shape);
    for (int64_t i = 0; i < b; ++i) {
      const std::vector<float> v = picture_for(loaded, files[first + i]);
      float* dst = batch.data() + i * plane;
      const int64_t hw = plane / loaded.input[0];
      for (int64_t j = 0; j < plane; ++j) {
        dst[j] = norm ? (v[j] - norm->mean_of(j / hw)) / norm->std_of(j / hw) : v[j];
      }
    }
    const Tensor probs = softmax_forward(loaded.model->forward(batch.to(device)), 1).cpu();
    for (int64_t i = 0; i < b; ++i) {
      std::vector<int64_t> order(static_cast<std::size_t>(classes));
      std::iota(order.begin(), order.end(), 0);
      const float* p = probs.data() + i * classes;
      std::stable_sort(order.begin(), order.end(),
                       [p](int64_t x, int64_t y) { return p[x] > p[y]; });
      nlohmann::json top = nlohmann::json::array();
      std::string line = files[first + i] + " ";
      for (int64_t r = 0; r < k; ++r) {
        const int64_t c = order[r];
        const std::string name =
            c < static_cast<int64_t>(names.size()) ? names[c] : std::to_string(c);
        top.push_back({{"class", c}, {"name", name}, {"probability", p[c]}});
        char buf[64];
        std::snprintf(buf, sizeof buf, " %.4f", p[c]);
        line += " " + name + buf;
      }
      out.push_back({{"file", files[first + i]}, {"top", top}});
      if (json.empty()) std::printf("%s\n", line.c_str());
    }
  }
  if (!json.empty()) {
    write_json(json, {{"weights", a.weights}, {"count", files.size()}, {"predictions", out}});
    std::printf("%s pictures classified: %s\n",
                with_commas(static_cast<int64_t>(files.size())).c_str(), json.c_str());
  }
}

}  // namespace

void add_predict_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<InputArgs>();
  auto top_k = std::make_shared<int64_t>(0);
  auto json = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand(
      "predict",
      "Classify an image and print the tutorial's Logits / Probs / Pred / True block; or many "
      "pictures and folders, batched, with the top classes of each");
  add_input_options(cmd, *a, /*many=*/true);
  add_device_option(cmd, a->device);
  cmd->add_option("--top-k", *top_k,
                  "Classes to list per picture, most probable first (default 3 "
                  "for many pictures)")
      ->check(integer_in(1));
  cmd->add_option("--json", *json,
                  "Write the predictions as JSON here: per picture its file and top classes with "
                  "probabilities (replaced if it exists)");
  cmd->callback([a, top_k, json, &exit_code] {
    if (a->index < 0 && a->images.empty()) throw Error("predict needs --index N or --image FILE");
    if (!json->empty()) check_output_file("--json", *json);
    const bool one_picture = a->images.size() == 1 && !std::filesystem::is_directory(a->images[0]);
    if (!a->images.empty() && (!one_picture || *top_k > 0 || !json->empty())) {
      predict_many(*a, *top_k > 0 ? *top_k : 3, *json);
      exit_code = 0;
      return;
    }
    if (a->index >= 0 && (*top_k > 0 || !json->empty())) {
      throw Error(
          "--top-k and --json are for --image pictures; --index prints the tutorial's block");
    }
    if (one_picture) a->image = a->images[0];
    std::optional<Input> image = read_image_input(*a);
    const Device device = resolve_device(a->device);
    const LoadedModel loaded = load_model(a->weights);
    loaded.model->to(device);
    const Input in = resolve_input(loaded, *a, std::move(image), /*classify=*/true);
    const LogitsGuard logits_of(*loaded.model);  // a model ending in Softmax: its input
    const Tensor on_device = loaded.model->forward(prepare(loaded, in.image).to(device));
    const Tensor logits = on_device.cpu();
    const Tensor probs = softmax_forward(on_device, 1).cpu();
    std::printf("Logits: %s\n", join3(logits).c_str());
    std::printf(" Probs:  %s\n", join3(probs).c_str());
    // Classes named otherwise than by their number (an image folder's) are named too.
    const std::vector<std::string> names = class_names_of(loaded);
    auto named = [&](int64_t c) {
      const std::string number = std::to_string(c);
      const bool has = c >= 0 && c < static_cast<int64_t>(names.size()) && names[c] != number;
      return has ? number + " (" + names[c] + ")" : number;
    };
    std::printf("  Pred:  %s\n", named(argmax(logits, 1)[0]).c_str());
    if (in.label >= 0) std::printf("  True:  %s\n", named(in.label).c_str());
    exit_code = 0;
  });
}

void add_visualize_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<InputArgs>();
  auto out = std::make_shared<std::string>("figures");
  auto* cmd = app.add_subcommand(
      "visualize",
      "Write the notebook's figures of a checkpoint's model as PNG files: the input, and for each "
      "Conv2d layer its feature maps (after the ReLU and pooling that follow it) and its filters");
  add_input_options(cmd, *a);
  cmd->add_option("--out", *out, "Directory for the PNG files")->capture_default_str();
  cmd->callback([a, out, &exit_code] {
    if (a->index < 0 && a->image.empty()) throw Error("visualize needs --index N or --image FILE");
    check_output_dir("--out", *out);
    std::optional<Input> image = read_image_input(*a);
    const LoadedModel loaded = load_model(a->weights);
    const Input in = resolve_input(loaded, *a, std::move(image), /*classify=*/false);
    FigureOptions fo;
    fo.caption = in.caption;
    fo.written = [](const std::string& path) {
      std::printf("wrote %s\n", path.c_str());
      std::fflush(stdout);
    };
    const auto paths = write_model_figures(*loaded.model, prepare(loaded, in.image), *out, fo);
    if (paths.size() == 1) {
      std::printf("(the model has no Conv2d layer: no feature maps or filters to draw)\n");
    }
    exit_code = 0;
  });
}

}  // namespace cnn::cli
