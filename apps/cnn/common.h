// Shared pieces of the `cnn` command: option structs, data loading with the command's defaults,
// output helpers. The command is a thin client of the library: it parses, calls, prints.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "cnn/cnn.h"
#include "cnn/data/dataset.h"
#include "cnn/io/checkpoint.h"

namespace cnn::cli {

// The directory a dataset is read from: --data-dir if given, else data/<dataset>.
std::string data_dir_for(const std::string& dataset, const std::string& data_dir);

// Writes JSON atomically (temporary file, then rename), pretty-printed.
void write_json(const std::string& path, const nlohmann::json& j);

// "12,345"
std::string thousands(double v);

bool stderr_is_terminal();

// Registers the subcommands; each returns the process exit code through its callback.
void add_summary_command(CLI::App& app, int& exit_code);
void add_train_command(CLI::App& app, int& exit_code);
void add_eval_command(CLI::App& app, int& exit_code);
void add_predict_command(CLI::App& app, int& exit_code);
void add_visualize_command(CLI::App& app, int& exit_code);
void add_bench_command(CLI::App& app, int& exit_code);
void add_serve_command(CLI::App& app, int& exit_code);

// A checkpoint's model as the tutorial model (the only architecture the figures know).
TutorialCNN& as_tutorial(const LoadedModel& loaded, const std::string& path);

// The dataset a checkpoint was trained on, unless --dataset overrides it.
std::string dataset_of(const LoadedModel& loaded, const std::string& override_name);

}  // namespace cnn::cli
