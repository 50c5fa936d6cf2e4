#include "common.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace cnn::cli {

std::string data_dir_for(const std::string& dataset, const std::string& data_dir) {
  return data_dir.empty() ? "data/" + dataset : data_dir;
}

void write_json(const std::string& path, const nlohmann::json& j) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) throw Error(path + ": cannot open for writing");
    out << j.dump(2) << "\n";
    if (!out.flush()) {
      std::remove(tmp.c_str());
      throw Error(path + ": write failed");
    }
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw Error(path + ": cannot write: " + ec.message());
  }
}

std::string thousands(double v) {
  const auto n = static_cast<int64_t>(v + 0.5);
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

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
