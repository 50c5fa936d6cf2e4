#include "common.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "cnn/data/image_folder.h"
#include "cnn/io/file.h"

namespace cnn::cli {

namespace fs = std::filesystem;

std::string data_dir_for(const std::string& dataset, const std::string& data_dir) {
  return data_dir.empty() ? "data/" + dataset : data_dir;
}

void write_json(const std::string& path, const nlohmann::json& j) {
  write_file_atomically(path, j.dump(2) + "\n");
}

std::string thousands(double v) { return with_commas(static_cast<int64_t>(v + 0.5)); }

bool stderr_is_terminal() { return isatty(fileno(stderr)) != 0; }

std::string count_of(int64_t n, const std::string& singular, const std::string& plural) {
  return std::to_string(n) + " " + (n == 1 ? singular : plural);
}

namespace {

// "got 0", "got 'abc'": a number as typed, anything else quoted so that spaces and empty text show.
std::string got(const std::string& text) {
  char* end = nullptr;
  std::strtod(text.c_str(), &end);
  const bool number = !text.empty() && end == text.c_str() + text.size();
  return "got " + (number ? text : "'" + text + "'");
}

template <typename T>
bool parse_whole(const std::string& text, T& value) {
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  return ec == std::errc() && ptr == end;
}

std::string join(const std::vector<std::string>& items, const std::string& sep) {
  std::string s;
  for (const auto& item : items) s += (s.empty() ? "" : sep) + item;
  return s;
}

std::vector<std::string> command_names(const CLI::App& app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    names.push_back(sub->get_name());
  }
  return names;
}

const CLI::App* command_named(const CLI::App& app, const std::string& name) {
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
    if (sub->get_name() == name) return sub;
  }
  return nullptr;
}

std::vector<std::string> option_names(const CLI::App& cmd) {
  std::vector<std::string> names;
  for (const CLI::Option* o : cmd.get_options()) {
    for (const auto& l : o->get_lnames()) names.push_back("--" + l);
    for (const auto& s : o->get_snames()) names.push_back("-" + s);
  }
  return names;
}

std::string lowercase_first(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

}  // namespace

std::string join_names(const std::vector<std::string>& names) { return join(names, ", "); }

void check_fits(const LoadedModel& loaded, const Dataset& data, const std::string& path) {
  const Shape images = data.image_shape();
  if (loaded.input != images) {
    throw Error(path + ": the model takes inputs of shape " + shape_str(loaded.input) + "; " +
                data.name + "'s images are " + shape_str(images));
  }
  if (loaded.output.size() != 1 || loaded.output[0] < data.num_classes) {
    throw Error(path + ": the model's output has shape " + shape_str(loaded.output) + "; " +
                data.name + " has " + std::to_string(data.num_classes) + " classes");
  }
}

CLI::Validator integer_in(int64_t lo, int64_t hi) {
  std::string what, desc;
  if (hi == std::numeric_limits<int64_t>::max()) {
    what = lo == 1   ? "a positive integer"
           : lo == 0 ? "a non-negative integer"
                     : "an integer >= " + std::to_string(lo);
    desc = lo == 1 ? "POSITIVE" : lo == 0 ? "NONNEGATIVE" : ">= " + std::to_string(lo);
  } else {
    what = "an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
    desc = "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  }
  return CLI::Validator(
      [lo, hi, what](std::string& text) -> std::string {
        int64_t v = 0;
        if (parse_whole(text, v) && v >= lo && v <= hi) return "";
        return "must be " + what + ", " + got(text);
      },
      desc);
}

CLI::Validator unsigned_integer() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        uint64_t v = 0;
        if (parse_whole(text, v)) return "";
        return "must be a non-negative integer, " + got(text);
      },
      "NONNEGATIVE");
}

CLI::Validator positive_number() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (!text.empty() && end == text.c_str() + text.size() && std::isfinite(v) && v > 0) {
          return "";
        }
        return "must be a positive number, " + got(text);
      },
      "POSITIVE");
}

CLI::Validator number_in(double lo, double hi) {
  char what[64], desc[64];
  if (std::isinf(hi)) {
    std::snprintf(what, sizeof what, "a number >= %g", lo);
    std::snprintf(desc, sizeof desc, ">= %g", lo);
  } else {
    std::snprintf(what, sizeof what, "a number from %g to %g", lo, hi);
    std::snprintf(desc, sizeof desc, "[%g, %g]", lo, hi);
  }
  return CLI::Validator(
      [lo, hi, what = std::string(what)](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (!text.empty() && end == text.c_str() + text.size() && std::isfinite(v) && v >= lo &&
            v <= hi) {
          return "";
        }
        return "must be " + std::string(what) + ", " + got(text);
      },
      desc);
}

CLI::Validator one_of(std::vector<std::string> choices) {
  const std::string list = join(choices, ", ");
  return CLI::Validator(
      [choices, list](std::string& text) -> std::string {
        if (std::find(choices.begin(), choices.end(), text) != choices.end()) return "";
        const std::string near = nearest(text, choices);
        return "must be one of " + list + ", " + got(text) +
               (near.empty() ? "" : "; did you mean '" + near + "'?");
      },
      "{" + join(choices, ",") + "}");
}

void add_device_option(CLI::App* cmd, std::string& device) {
  cmd->add_option("--device", device,
                  "Where to run: cpu, or cuda (an NVIDIA GPU, in a build with the CUDA backend)")
      ->check(one_of({"cpu", "cuda"}))
      ->capture_default_str();
}

Device resolve_device(const std::string& name) {
  const Device device = parse_device(name);
  if (!device_available(device)) {
    throw Error("--device " + name + ": " + device_unavailable_reason(device));
  }
  return device;
}

std::string unknown_command(const CLI::App& app, int argc, char** argv) {
  const std::vector<std::string> names = command_names(app);
  if (argc < 2) return "a command is required: " + join(names, ", ") + " ('cnn --help' says more)";
  const std::string first = argv[1];
  // An option of cnn itself (--help, --version, a misspelt one) is CLI11's to parse.
  if (first.rfind('-', 0) == 0 || command_named(app, first)) return "";
  const std::string near = nearest(first, names);
  return "unknown command '" + first + "'" +
         (near.empty() ? "; the commands are " + join(names, ", ")
                       : "; did you mean '" + near + "'?");
}

namespace {

// The first argument that looks like an option and is none of cmd's, as a sentence; empty if none.
// CLI11 lists the leftovers without saying which one is the unknown option.
std::string unknown_option(const CLI::App& cmd, const std::string& prefix, int first, int argc,
                           char** argv) {
  const std::vector<std::string> names = option_names(cmd);
  for (int i = first; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") break;
    const bool negative_number =
        arg.size() > 1 && (std::isdigit(static_cast<unsigned char>(arg[1])) || arg[1] == '.');
    if (arg.size() < 2 || arg[0] != '-' || negative_number) continue;
    const std::string name = arg.substr(0, arg.find('='));
    if (std::find(names.begin(), names.end(), name) != names.end()) continue;
    const std::string near = nearest(name, names);
    return "unknown option '" + name + "' for '" + prefix + "'" +
           (near.empty() ? " ('" + prefix + " --help' lists them)"
                         : "; did you mean '" + near + "'?");
  }
  return "";
}

}  // namespace

std::string describe_parse_error(const CLI::App& app, const CLI::ParseError& e, int argc,
                                 char** argv) {
  const std::string what = e.what();
  const CLI::App* cmd = argc >= 2 ? command_named(app, argv[1]) : nullptr;
  const std::string prefix = cmd ? "cnn " + cmd->get_name() : "cnn";
  // A misspelt option explains the rest: "--wieghts" makes "--weights is required".
  if (dynamic_cast<const CLI::ExtrasError*>(&e) || dynamic_cast<const CLI::RequiredError*>(&e)) {
    const std::string option = unknown_option(cmd ? *cmd : app, prefix, cmd ? 2 : 1, argc, argv);
    if (!option.empty()) return option;
  }
  if (dynamic_cast<const CLI::ExtrasError*>(&e)) {
    const std::size_t colon = what.find(": ");
    return "unexpected argument for '" + prefix +
           "': " + (colon == std::string::npos ? what : what.substr(colon + 2));
  }
  if (what == "A subcommand is required") {
    // CLI11 checks for a command before it looks at extras: "cnn --verison" lands here.
    const std::string option = unknown_option(app, "cnn", 1, argc, argv);
    return option.empty() ? unknown_command(app, 1, argv) : option;
  }
  if (dynamic_cast<const CLI::ValidationError*>(&e)) {
    // "--epochs: must be ..." -> "--epochs must be ..."
    const std::size_t at = what.find(": must be ");
    if (at != std::string::npos) return what.substr(0, at) + what.substr(at + 1);
  }
  if (dynamic_cast<const CLI::ArgumentMismatch*>(&e) && what.rfind('-', 0) == 0) {
    // "--epochs: 1 required INT missing", "--epochs: At Most 1 required but received 2"
    const std::string name = what.substr(0, what.find(':'));
    if (what.find(" missing") != std::string::npos) return name + " needs a value";
    if (what.find("At Most") != std::string::npos) return name + " takes one value; give it once";
  }
  if (dynamic_cast<const CLI::ExcludesError*>(&e)) {
    const std::size_t at = what.find(" excludes ");
    if (at != std::string::npos) {
      return what.substr(0, at) + " and " + what.substr(at + 10) + " cannot be given together";
    }
  }
  return lowercase_first(what);
}

namespace {

std::string reason(const std::error_code& ec) { return lowercase_first(ec.message()); }

// A file created and removed in dir: the only sure test of "can write here" (permissions, ACLs,
// read-only mounts all answer it).
void probe_directory(const std::string& option, const std::string& path, const fs::path& dir) {
  const fs::path probe =
      (dir.empty() ? fs::path(".") : dir) / (".cnn-probe-" + std::to_string(getpid()));
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    const std::error_code ec(errno, std::generic_category());
    throw Error(option + " " + path + ": cannot write in " + (dir.empty() ? "." : dir.string()) +
                " (" + reason(ec) + ")");
  }
  ::close(fd);
  ::unlink(probe.c_str());
}

void make_directories(const std::string& option, const std::string& path, const fs::path& dir) {
  if (dir.empty()) return;
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) {
    throw Error(option + " " + path + ": " + dir.string() + " is not a directory");
  }
  fs::create_directories(dir, ec);
  if (ec) {
    throw Error(option + " " + path + ": cannot create directory " + dir.string() + " (" +
                reason(ec) + ")");
  }
}

}  // namespace

void check_output_file(const std::string& option, const std::string& path) {
  const fs::path p(path);
  std::error_code ec;
  if (fs::is_directory(p, ec) || !p.has_filename()) {
    throw Error(option + " " + path + ": is a directory (give a file name)");
  }
  // Files are written beside their path and renamed over it: a device or a pipe (/dev/null,
  // /dev/stdout) would be replaced by a regular file, which as root breaks the machine.
  if (fs::exists(p, ec) && !fs::is_regular_file(p, ec)) {
    throw Error(option + " " + path + ": is not a regular file (a device, a pipe or a socket)");
  }
  make_directories(option, path, p.parent_path());
  probe_directory(option, path, p.parent_path());
}

void check_output_dir(const std::string& option, const std::string& dir) {
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) {
    throw Error(option + " " + dir + ": is not a directory");
  }
  make_directories(option, dir, dir);
  probe_directory(option, dir, dir);
}

std::string dataset_of(const LoadedModel& loaded, const std::string& override_name) {
  if (!override_name.empty()) return override_name;
  const auto& d = loaded.meta.contains("dataset") ? loaded.meta["dataset"] : nlohmann::json();
  if (d.is_object() && d.contains("name") && d["name"].is_string()) {
    const std::string name = d["name"].get<std::string>();
    if (is_idx_dataset(name)) return name;
    // An image folder: where it was trained from.
    if (d.contains("source") && d["source"].is_string()) return d["source"].get<std::string>();
    throw Error("the checkpoint was trained on '" + excerpt(name) +
                "', whose folder it does not record: pass --dataset DIR");
  }
  return "mnist";
}

std::vector<std::string> class_names_of(const LoadedModel& loaded) {
  const auto& d = loaded.meta.contains("dataset") ? loaded.meta["dataset"] : nlohmann::json();
  std::vector<std::string> names;
  if (d.is_object() && d.contains("class_names") && d["class_names"].is_array()) {
    for (const auto& n : d["class_names"]) {
      if (n.is_string()) names.push_back(n.get<std::string>());
    }
  }
  return names;
}

bool is_idx_dataset(const std::string& dataset) {
  const auto& names = dataset_names();
  return std::find(names.begin(), names.end(), dataset) != names.end();
}

CLI::Validator dataset_choice() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        if (is_idx_dataset(text) || std::filesystem::is_directory(text)) return "";
        const std::string near = nearest(text, dataset_names());
        if (!near.empty())
          return "must be " + join(dataset_names(), ", ") +
                 " or an image "
                 "folder, " +
                 got(text) + "; did you mean '" + near + "'?";
        return "must be " + join(dataset_names(), ", ") + " or the path of an image folder (" +
               excerpt(text) + " is neither)";
      },
      "NAME|DIR");
}

namespace {

std::string cache_dir_for(const DataOptions& o) {
  if (o.cache_dir == "none") return "";
  if (!o.cache_dir.empty()) return o.cache_dir;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) {
    return (std::filesystem::path(xdg) / "cnn").string();
  }
  if (const char* home = std::getenv("HOME"); home && *home) {
    return (std::filesystem::path(home) / ".cache" / "cnn").string();
  }
  return "";
}

}  // namespace

bool has_test_split(const std::string& dataset, const DataOptions&) {
  return is_idx_dataset(dataset) || !find_folder_splits(dataset).test.empty();
}

Dataset load_split(const std::string& dataset, const std::string& split, const Shape& input,
                   const DataOptions& options, const std::vector<std::string>& class_names) {
  if (is_idx_dataset(dataset))
    return load_dataset(dataset, data_dir_for(dataset, options.data_dir), split);
  const FolderSplits splits = find_folder_splits(dataset);
  const std::string dir = split == "test" ? splits.test : splits.train;
  if (dir.empty()) {
    throw Error(dataset + ": no " + split + "/ folder (an image folder holds DIR/train and " +
                "DIR/test, or only class folders: then hold out a part with --val-split)");
  }
  if (input.size() != 3) {
    throw Error("the model's input " + shape_str(input) + " is not an image [C, H, W]");
  }
  ImageFolderOptions o;
  o.channels = input[0];
  o.rows = input[1];
  o.cols = input[2];
  o.skip_bad = options.skip_bad;
  o.cache_dir = cache_dir_for(options);
  o.class_names = class_names;
  o.split = split;
  ImageFolderReport report;
  Dataset d = load_image_folder(dir, o, &report);
  d.source = std::filesystem::absolute(dataset).lexically_normal().string();
  std::fprintf(stderr, "%s: %s images in %lld classes, %s%s\n", dir.c_str(),
               with_commas(d.count).c_str(), static_cast<long long>(d.num_classes),
               report.from_cache ? ("from the cache " + report.cache_file).c_str()
                                 : ("decoded " + with_commas(report.decoded)).c_str(),
               report.skipped
                   ? (", " + with_commas(report.skipped) +
                      " bad images skipped (first: " + report.skipped_files.front() + ")")
                         .c_str()
                   : "");
  return d;
}

}  // namespace cnn::cli
