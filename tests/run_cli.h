// Runs the `cnn` command in a shell and keeps its exit code and output, for the tests that use the
// command line.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace cnn::testing {

struct Result {
  int code;
  std::string out;  // stdout and stderr
};

// `prefix` runs before the binary: "cd DIR && " for another working directory, "timeout 10 ".
inline Result run_cli(const std::string& args, const std::string& prefix = "") {
  const std::string cmd = prefix + std::string(CNN_BINARY) + " " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace cnn::testing
