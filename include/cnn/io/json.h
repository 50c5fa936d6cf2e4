// Parsing JSON that comes from outside (a file's header, a request's body) with its nesting depth
// bounded: parsing, copying, printing and destroying a JSON value recurse once per level, so a
// document of 100,000 '[' would overflow the stack. The depth is checked by a scan of the text
// before nlohmann::json sees it.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "cnn/error.h"
#include "cnn/limits.h"

namespace cnn {

// The deepest nesting of arrays and objects in `text` (brackets inside strings do not count);
// stops counting once past `stop_above`. Malformed text is the parser's to report.
inline int json_depth(std::string_view text, int stop_above = limits::kMaxJsonDepth) {
  int depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (const char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > deepest) deepest = depth;
      if (deepest > stop_above) break;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

// Throws cnn::Error "WHAT: JSON nested deeper than 64 levels (the limit, cnn/limits.h)".
inline void check_json_depth(std::string_view text, const std::string& what) {
  if (json_depth(text) > limits::kMaxJsonDepth) {
    throw Error(what + ": JSON nested deeper than " + std::to_string(limits::kMaxJsonDepth) +
                " levels (the limit, cnn/limits.h): " + excerpt(text));
  }
}

// check_json_depth, then parse; a malformed text throws cnn::Error "WHAT: malformed JSON: ..."
// quoting at most an excerpt of the parser's message.
inline nlohmann::json parse_json(std::string_view text, const std::string& what) {
  check_json_depth(text, what);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(what + ": malformed JSON: " + excerpt(e.what(), 4 * limits::kExcerpt));
  }
}

}  // namespace cnn
