// `cnn serve --port 0 [extra arguments]` in a child process, for the tests that talk to it; the
// address is read from its first line, and the process is stopped when this object goes.
#pragma once

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

namespace cnn::testing {

class ServeProcess {
 public:
  explicit ServeProcess(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {CNN_BINARY, "serve", "--port", "0"};
    args.insert(args.end(), extra.begin(), extra.end());
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe");
    pid_ = fork();
    if (pid_ == 0) {
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(CNN_BINARY, argv.data());
      _exit(127);
    }
    close(fds[1]);
    out_ = fdopen(fds[0], "r");
    char line[512] = {};
    if (!fgets(line, sizeof line, out_)) throw std::runtime_error("cnn serve printed nothing");
    const std::string first = line;
    std::smatch m;
    if (!std::regex_search(first, m, std::regex(R"(http://([0-9.]+):(\d+)/)"))) {
      throw std::runtime_error("no address in: " + first);
    }
    host_ = m[1];
    port_ = std::stoi(m[2]);
  }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;
  ~ServeProcess() {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    fclose(out_);
  }
  bool alive() const { return waitpid(pid_, nullptr, WNOHANG) == 0; }
  const std::string& host() const { return host_; }
  int port() const { return port_; }

 private:
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
  std::string host_;
  int port_ = 0;
};

}  // namespace cnn::testing
