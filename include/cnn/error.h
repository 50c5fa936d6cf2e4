// Errors thrown by the library. Nothing in the library prints or exits: it throws a cnn::Error
// whose message names the layer (with its path in the model, when known), the shapes involved and
// what was expected.
#pragma once

#include <stdexcept>
#include <string>

namespace cnn {

class Error : public std::runtime_error {
 public:
  explicit Error(std::string message) : std::runtime_error(message), detail_(std::move(message)) {}

  // Adds the layer that raised the error, e.g. "Conv2d(1, 16, kernel_size=(3, 3), stride=(1, 1))".
  // Only the innermost layer is kept.
  void set_layer(const std::string& layer) {
    if (layer_.empty()) layer_ = layer;
    rebuild();
  }
  // Prepends one level of the module path: "0" then "conv1" gives "conv1.0".
  void prepend_path(const std::string& name) {
    path_ = path_.empty() ? name : name + "." + path_;
    rebuild();
  }

  const char* what() const noexcept override {
    return message_.empty() ? detail_.c_str() : message_.c_str();
  }
  const std::string& detail() const { return detail_; }
  const std::string& path() const { return path_; }

 private:
  void rebuild() {
    message_.clear();
    if (!path_.empty()) message_ += path_ + ": ";
    if (!layer_.empty()) message_ += layer_ + ": ";
    message_ += detail_;
  }
  std::string detail_, layer_, path_, message_;
};

}  // namespace cnn
