#include "cnn/summary.h"

#include <cmath>
#include <cstdio>

namespace cnn {

namespace {

// Python's "{:>width}".format(s).
std::string right(const std::string& s, std::size_t width) {
  return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}

}  // namespace

std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

namespace {

std::string megabytes(double mb) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%0.2f", mb);
  return buf;
}

}  // namespace

std::string summary(Module& model, const Shape& input_size) {
  struct Row {
    std::string name;
    Shape shape;  // batch dimension written as -1
    int64_t params;
  };
  std::vector<Row> rows;
  model.trace_leaves(input_size, [&](const Module& leaf, const Tensor& y) {
    Shape shape = y.shape();
    if (!shape.empty()) shape[0] = -1;
    int64_t params = 0;
    for (const auto& [name, p] : leaf.own_parameters()) params += p->value.numel();
    rows.push_back({leaf.type_name() + "-" + std::to_string(rows.size() + 1), shape, params});
  });

  const std::string rule(64, '-'), double_rule(64, '=');
  std::string out = rule + "\n" + right("Layer (type)", 20) + "  " + right("Output Shape", 25) +
                    " " + right("Param #", 15) + "\n" + double_rule + "\n";
  double total_output = 0;
  for (const auto& r : rows) {
    std::string shape = "[";
    for (std::size_t i = 0; i < r.shape.size(); ++i) {
      shape += (i ? ", " : "") + std::to_string(r.shape[i]);
    }
    shape += "]";
    out +=
        right(r.name, 20) + "  " + right(shape, 25) + " " + right(with_commas(r.params), 15) + "\n";
    total_output += std::fabs(static_cast<double>(shape_numel(r.shape)));
  }
  int64_t total_params = 0, trainable = 0;
  for (const auto& [name, p] : model.named_parameters()) {
    total_params += p->value.numel();
    if (p->requires_grad) trainable += p->value.numel();
  }
  const double mib = 1024.0 * 1024.0;
  const double input_mb = static_cast<double>(shape_numel(input_size)) * 4.0 / mib;
  const double output_mb = 2.0 * total_output * 4.0 / mib;
  const double params_mb = static_cast<double>(total_params) * 4.0 / mib;
  out += double_rule + "\n";
  out += "Total params: " + with_commas(total_params) + "\n";
  out += "Trainable params: " + with_commas(trainable) + "\n";
  out += "Non-trainable params: " + with_commas(total_params - trainable) + "\n";
  out += rule + "\n";
  out += "Input size (MB): " + megabytes(input_mb) + "\n";
  out += "Forward/backward pass size (MB): " + megabytes(output_mb) + "\n";
  out += "Params size (MB): " + megabytes(params_mb) + "\n";
  out += "Estimated Total Size (MB): " + megabytes(input_mb + output_mb + params_mb) + "\n";
  out += rule + "\n";
  return out;
}

}  // namespace cnn
