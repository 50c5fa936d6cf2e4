// The explorer page's files, built into the binary (cmake/embed_assets.cmake).
#pragma once

#include <cstddef>
#include <vector>

namespace cnn::cli {

struct WebAsset {
  const char* path;  // "/index.html"
  const char* content_type;
  const unsigned char* data;
  std::size_t size;
};

const std::vector<WebAsset>& web_assets();

}  // namespace cnn::cli
