#include "common.h"

#include <unistd.h>

#include <cstdio>

#include "cnn/io/file.h"

namespace cnn::cli {

std::string data_dir_for(const std::string& dataset, const std::string& data_dir) {
  return data_dir.empty() ? "data/" + dataset : data_dir;
}

void write_json(const std::string& path, const nlohmann::json& j) {
  write_file_atomically(path, j.dump(2) + "\n");
}

std::string thousands(double v) { return with_commas(static_cast<int64_t>(v + 0.5)); }

bool stderr_is_terminal() { return isatty(fileno(stderr)) != 0; }

TutorialCNN& as_tutorial(const LoadedModel& loaded, const std::string& path) {
  auto* m = dynamic_cast<TutorialCNN*>(loaded.model.get());
  if (!m) throw Error(path + ": the checkpoint's model is not the tutorial architecture");
  return *m;
}

std::string dataset_of(const LoadedModel& loaded, const std::string& override_name) {
  if (!override_name.empty()) return override_name;
  if (loaded.meta.contains("dataset") && loaded.meta["dataset"].contains("name")) {
    return loaded.meta["dataset"]["name"].get<std::string>();
  }
  return "mnist";
}

}  // namespace cnn::cli
