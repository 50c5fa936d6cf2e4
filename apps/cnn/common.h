// Shared pieces of the `cnn` command: option structs, data loading with the command's defaults,
// output helpers. The command is a thin client of the library: it parses, calls, prints.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cnn/cnn.h"
#include "cnn/data/dataset.h"
#include "cnn/io/checkpoint.h"
#include "cnn/suggest.h"

namespace cnn::cli {

// The directory a dataset is read from: --data-dir if given, else data/<dataset>.
std::string data_dir_for(const std::string& dataset, const std::string& data_dir);

// Where data come from, beyond the dataset's name: --data-dir, and for image folders the cache
// folder ("none": no cache; empty: $XDG_CACHE_HOME/cnn or ~/.cache/cnn) and the bad-image policy.
struct DataOptions {
  std::string data_dir, cache_dir;
  bool skip_bad = false;
};

// Whether --dataset names a built-in IDX dataset (mnist, fashion-mnist) rather than a folder.
bool is_idx_dataset(const std::string& dataset);
// The --dataset check: a built-in name or an existing directory.
CLI::Validator dataset_choice();

// One split ("train" or "test") of --dataset: a built-in IDX dataset from --data-dir (default
// data/<name>), or an image folder (DIR/train and DIR/test, or DIR's class folders as "train")
// with every image made `input`'s [C, H, W] and, when given, the classes of class_names (the
// training split's, a checkpoint's). Prints a line about a folder's loading to stderr.
// Dataset::source is the folder's root (or the IDX directory), absolute.
Dataset load_split(const std::string& dataset, const std::string& split, const Shape& input,
                   const DataOptions& options, const std::vector<std::string>& class_names = {});
// Whether --dataset has a test split (an image folder may hold only its classes).
bool has_test_split(const std::string& dataset, const DataOptions& options);

// Writes JSON atomically (temporary file, then rename), pretty-printed.
void write_json(const std::string& path, const nlohmann::json& j);

// "12,345"
std::string thousands(double v);

bool stderr_is_terminal();

// "1 epoch", "2 epochs"
std::string count_of(int64_t n, const std::string& singular, const std::string& plural);

// Option checks that say what is wrong in a person's words. Each sees the text as typed, so that
// "abc" and "-5" get the same sentence as "0". The message reads after the option's name
// ("--epochs must be a positive integer, got 0"); main() joins the two.
CLI::Validator integer_in(int64_t lo, int64_t hi = std::numeric_limits<int64_t>::max());
CLI::Validator unsigned_integer();  // any uint64 (seeds)
CLI::Validator positive_number();
CLI::Validator number_in(double lo, double hi = std::numeric_limits<double>::infinity());
CLI::Validator one_of(std::vector<std::string> choices);

// --device cpu|cuda on a command (train, eval, predict, bench), into `device`.
void add_device_option(CLI::App* cmd, std::string& device);
// The device named, refused with the reason when this build or machine has none ("--device cuda:
// no CUDA device: ...").
Device resolve_device(const std::string& name);

// Refuses data whose images are not the model's input or whose classes are more than its
// outputs, naming both (the checkpoint's path in the message).
void check_fits(const LoadedModel& loaded, const Dataset& data, const std::string& path);

// Joins names with ", ".
std::string join_names(const std::vector<std::string>& names);

// A command line that CLI11 would reject, as the one line to print after "cnn: error: " (without
// it), or empty when argv names a known command. Checked before parsing, because CLI11 reports an
// unknown command as "A subcommand is required".
std::string unknown_command(const CLI::App& app, int argc, char** argv);
// CLI11's parse error as a sentence, with the nearest option for an unknown one.
std::string describe_parse_error(const CLI::App& app, const CLI::ParseError& e, int argc,
                                 char** argv);

// Output paths are checked before any work, so that a long run does not end in "cannot write":
// the parent directories are created, a directory is refused, and a probe file is created and
// removed in the parent. `option` names the flag in the message ("--out").
void check_output_file(const std::string& option, const std::string& path);
// The same for a directory of outputs (created when missing).
void check_output_dir(const std::string& option, const std::string& dir);

// What every --weights option takes (load_model, cnn/io/checkpoint.h).
inline constexpr const char* kWeightsHelp =
    "Checkpoint written by 'cnn train' or 'cnn import', or a model from elsewhere: an ONNX file "
    "(.onnx) or a TensorFlow.js layers-model (model.json)";

// Registers the subcommands; each returns the process exit code through its callback.
void add_summary_command(CLI::App& app, int& exit_code);
void add_train_command(CLI::App& app, int& exit_code);
void add_eval_command(CLI::App& app, int& exit_code);
void add_predict_command(CLI::App& app, int& exit_code);
void add_visualize_command(CLI::App& app, int& exit_code);
void add_bench_command(CLI::App& app, int& exit_code);
void add_serve_command(CLI::App& app, int& exit_code);
void add_export_command(CLI::App& app, int& exit_code);
void add_import_command(CLI::App& app, int& exit_code);

// The dataset a checkpoint was trained on, unless --dataset overrides it.
std::string dataset_of(const LoadedModel& loaded, const std::string& override_name);
// The class names a checkpoint stores (empty when it stores none).
std::vector<std::string> class_names_of(const LoadedModel& loaded);

}  // namespace cnn::cli
