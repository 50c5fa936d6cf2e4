// The explorer's request handlers (cnn/explore/api.h), as `cnn serve` calls them: the input is
// one character choosing the endpoint ('0' to '<', any byte modulo 13) and a request body, parsed
// as the server does (cnn::parse_request). ApiError, cnn::Error and nlohmann::json::exception are
// the refusals the server turns into 4xx answers; any other exception (the server's 500), a crash
// or a sanitizer report is a finding.
#include <memory>
#include <nlohmann/json.hpp>
#include <string_view>

#include "cnn/data/dataset.h"
#include "cnn/error.h"
#include "cnn/explore/api.h"

namespace {

using Endpoint = nlohmann::json (cnn::ExplorerApi::*)(const nlohmann::json&) const;
constexpr Endpoint kEndpoints[] = {
    &cnn::ExplorerApi::conv2d_steps,
    &cnn::ExplorerApi::maxpool2d_steps,
    &cnn::ExplorerApi::shapes,
    &cnn::ExplorerApi::predict,
    &cnn::ExplorerApi::inside,
    &cnn::ExplorerApi::inside_step,
    &cnn::ExplorerApi::inside_step2,
    &cnn::ExplorerApi::test_image,
    &cnn::ExplorerApi::network,
    &cnn::ExplorerApi::layer_step,
    &cnn::ExplorerApi::gradient,
    &cnn::ExplorerApi::dw_step,
    nullptr,  // GET /api/model, which takes no body
};
constexpr unsigned kCount = sizeof kEndpoints / sizeof kEndpoints[0];

// The untrained tutorial model (as `cnn serve` without --weights) and three test images.
const cnn::ExplorerApi& api() {
  static const cnn::ExplorerApi* instance = [] {
    auto* a = new cnn::ExplorerApi(nullptr, nlohmann::json::object());
    auto test = std::make_shared<cnn::Dataset>();
    test->name = "mnist";
    test->split = "test";
    test->count = 3;
    test->rows = test->cols = 28;
    test->num_classes = 10;
    test->class_names = cnn::dataset_class_names("mnist");
    test->pixels.resize(3 * 28 * 28);
    for (std::size_t i = 0; i < test->pixels.size(); ++i) test->pixels[i] = (i * 37) & 0xff;
    test->labels = {7, 2, 1};
    a->set_test_images(test);
    return a;
  }();
  return *instance;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const unsigned which = (static_cast<unsigned>(data[0]) + kCount * 100 - '0') % kCount;
  // As the server parses a body: bounded depth, malformed JSON refused with a 400.
  nlohmann::json request;
  try {
    request =
        cnn::parse_request(std::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  } catch (const cnn::ApiError&) {
    return 0;
  }
  try {
    const nlohmann::json response =
        kEndpoints[which] ? (api().*kEndpoints[which])(request) : api().model();
    (void)response.dump();  // as the server sends it: every value must serialise
  } catch (const cnn::ApiError&) {
  } catch (const cnn::Error&) {
  } catch (const nlohmann::json::exception&) {
  }
  return 0;
}
