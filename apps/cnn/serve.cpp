// cnn serve: the explorer, a local web page whose every number comes from the library. The page
// is built into the binary; the JSON API is cnn::ExplorerApi behind cpp-httplib.
#include <arpa/inet.h>
#include <httplib.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>

#include "cnn/error.h"
#include "cnn/explore/api.h"
#include "cnn/models/registry.h"
#include "cnn/nn/spec.h"
#include "common.h"
#include "web_assets.h"

namespace cnn::cli {

namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxBody = 256 * 1024;  // a 224x224 drawing as JSON fits

// Connections. Debian's cpp-httplib 0.11 bounds the wait for each recv() only, not the time a
// request takes, so a client sending one header line a second holds a worker thread as long as
// it likes; its pool has 8 threads on a small machine and queues every other connection behind
// them without bound: eight such clients and the server answered nobody. ExplorerServer below
// replaces its loop over a connection's requests with one that bounds each, and Workers its pool.
constexpr int kWorkers = 64;  // connections served at once; the threads mostly wait on sockets
constexpr std::size_t kMaxQueued = 256;  // accepted connections waiting for a worker; more: 503
constexpr auto kRequestTime = std::chrono::seconds(10);   // a request's head and body
constexpr auto kResponseTime = std::chrono::seconds(10);  // writing its response
constexpr auto kKeepAliveIdle = std::chrono::seconds(2);  // an idle connection is then closed
constexpr std::size_t kKeepAliveRequests = 100;           // requests per connection
// The API's requests compute one at a time (they share the model and the machine's cores); this
// many may wait for their turn, and more are refused with 503 rather than queued.
constexpr int kMaxComputeWaiting = 32;
// malloc's arenas. An answer is built as a JSON tree of small blocks; freed, they stay in the
// arena of the thread that built them, and by default each of the 64 workers came to have its
// own: 267 MB resident after the load test (docs/RELIABILITY.md). Two arenas: 77 MB, and no
// slower. (malloc_trim after each large answer held 51 MB but doubled a step-through's time.)
constexpr int kMallocArenas = 2;

// The connection this worker thread serves (for the handlers' "has the client gone?"), and
// whether this thread is the one that refuses connections beyond the queue.
thread_local int tls_socket = -1;
thread_local bool tls_refusing = false;

void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  // replace: a message quoting invalid UTF-8 is still sent (as U+FFFD), never a throw.
  res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                  "application/json");
}

void socket_address(int fd, bool peer, std::string& ip, int& port) {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  auto* sa = reinterpret_cast<sockaddr*>(&a);
  if ((peer ? getpeername(fd, sa, &len) : getsockname(fd, sa, &len)) != 0) return;
  char host[INET6_ADDRSTRLEN] = {};
  if (a.ss_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(&a);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
    port = ntohs(in->sin_port);
  } else if (a.ss_family == AF_INET6) {
    const auto* in = reinterpret_cast<const sockaddr_in6*>(&a);
    inet_ntop(AF_INET6, &in->sin6_addr, host, sizeof host);
    port = ntohs(in->sin6_port);
  }
  ip = host;
}

// Waits until fd is ready for events or the deadline passes; true: ready (or in error, which the
// next recv/send reports).
bool wait_until(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    const int r = poll(&p, 1, static_cast<int>(std::min<long long>(left, 60000)));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
  }
}

// One connection as cpp-httplib reads and writes it, every wait bounded by a deadline: a
// request's head and body must arrive within kRequestTime of its first byte, its response be
// taken within kResponseTime.
class Connection final : public httplib::Stream {
 public:
  explicit Connection(int fd) : fd_(fd) {}

  // Waits up to `idle` for the next request's first byte; false: none came.
  bool next_request(Clock::duration idle) {
    if (begin_ == end_ && !wait_until(fd_, POLLIN, Clock::now() + idle)) return false;
    writing_ = false;
    deadline_ = Clock::now() + kRequestTime;
    return true;
  }

  bool is_readable() const override { return begin_ < end_ || wait_until(fd_, POLLIN, deadline_); }
  bool is_writable() const override {
    return wait_until(fd_, POLLOUT, writing_ ? deadline_ : Clock::now() + kResponseTime);
  }
  // Whether a wait ran past its deadline: cpp-httplib answers that request 400 and would go
  // on reading the next one from the same client.
  bool expired() const { return expired_; }

  ssize_t read(char* ptr, size_t size) override {
    if (begin_ == end_) {
      if (!wait_until(fd_, POLLIN, deadline_)) {
        expired_ = true;
        return -1;
      }
      ssize_t n;
      do {
        n = recv(fd_, buffer_, sizeof buffer_, 0);
      } while (n < 0 && errno == EINTR);
      if (n <= 0) return n;
      begin_ = 0;
      end_ = static_cast<std::size_t>(n);
    }
    const std::size_t k = std::min(size, end_ - begin_);
    std::memcpy(ptr, buffer_ + begin_, k);
    begin_ += k;
    return static_cast<ssize_t>(k);
  }
  ssize_t write(const char* ptr, size_t size) override {
    if (!writing_) {
      writing_ = true;
      deadline_ = Clock::now() + kResponseTime;
    }
    if (!wait_until(fd_, POLLOUT, deadline_)) {
      expired_ = true;
      return -1;
    }
    ssize_t n;
    do {
      n = send(fd_, ptr, size, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n;
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    socket_address(fd_, true, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    socket_address(fd_, false, ip, port);
  }
  socket_t socket() const override { return fd_; }

 private:
  int fd_;
  Clock::time_point deadline_;
  bool writing_ = false, expired_ = false;
  // cpp-httplib reads a request's head a byte at a time.
  char buffer_[4096];
  std::size_t begin_ = 0, end_ = 0;
};

// cpp-httplib's server with the connection loop above: Server::process_and_close_socket is
// virtual, and its own version bounds no request's total time.
class ExplorerServer : public httplib::Server {
 public:
  // cpp-httplib listens with a backlog of 5: a burst of connections overflowed it while the
  // accepting thread waited for a core, and each connection over it waited a second for its SYN
  // to be sent again. Called after binding (a second listen() sets the backlog).
  void set_backlog(int connections) { ::listen(svr_sock_, connections); }

 private:
  bool process_and_close_socket(socket_t sock) override {
    const bool ok = tls_refusing ? refuse(sock) : serve(sock);
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return ok;
  }

  bool serve(int sock) {
    // Headers and body go out as two writes: without this, Nagle's algorithm holds the second
    // until the client's delayed ACK, 40 ms a request on loopback.
    int yes = 1;
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
    tls_socket = sock;
    Connection conn(sock);
    bool ok = false;
    for (std::size_t left = kKeepAliveRequests; left > 0 && svr_sock_ != INVALID_SOCKET; --left) {
      if (!conn.next_request(kKeepAliveIdle)) break;
      bool closed = false;
      ok = process_request(conn, left == 1, closed, nullptr);
      if (!ok || closed || conn.expired()) break;
    }
    tls_socket = -1;
    return ok;
  }

  // A connection beyond the queue: 503 at once, its request unread.
  static bool refuse(int sock) {
    static const std::string body =
        R"({"error": "server busy: too many connections are waiting; try again"})";
    static const std::string response =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        "Content-Length: " +
        std::to_string(body.size()) + "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n" + body;
    send(sock, response.data(), response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    // Closing with the request unread would answer it with a reset, which can discard the 503
    // before the client reads it: read what comes for a moment first (a moment: this thread
    // refuses every connection beyond the queue, one after the other).
    ::shutdown(sock, SHUT_WR);
    const auto until = Clock::now() + std::chrono::milliseconds(20);
    char sink[4096];
    while (wait_until(sock, POLLIN, until) && recv(sock, sink, sizeof sink, MSG_DONTWAIT) > 0) {
    }
    return false;
  }
};

// cpp-httplib's task queue with a bound: kWorkers threads serve connections, at most kMaxQueued
// wait for one, and those beyond go to one more thread that refuses them (ExplorerServer::refuse).
class Workers final : public httplib::TaskQueue {
 public:
  Workers() {
    for (int i = 0; i < kWorkers; ++i) threads_.emplace_back([this] { run(jobs_, jobs_ready_); });
    threads_.emplace_back([this] {
      tls_refusing = true;
      run(refused_, refused_ready_);
    });
  }
  void enqueue(std::function<void()> fn) override {
    bool refuse = false;
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      refuse = jobs_.size() >= kMaxQueued;
      (refuse ? refused_ : jobs_).push_back(std::move(fn));
    }
    (refuse ? refused_ready_ : jobs_ready_).notify_one();
  }
  void shutdown() override {
    {
      const std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    jobs_ready_.notify_all();
    refused_ready_.notify_all();
    for (auto& t : threads_) t.join();
  }

 private:
  void run(std::deque<std::function<void()>>& queue, std::condition_variable& ready) {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready.wait(lock, [&] { return stopping_ || !queue.empty(); });
        if (queue.empty()) return;
        fn = std::move(queue.front());
        queue.pop_front();
      }
      fn();
    }
  }
  std::mutex mutex_;
  std::condition_variable jobs_ready_, refused_ready_;
  std::deque<std::function<void()>> jobs_, refused_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// Whether the client of this worker's connection has closed it (a request abandoned by a client
// that timed out is not worth computing).
bool client_gone() {
  if (tls_socket < 0) return false;
  pollfd p{tls_socket, POLLRDHUP, 0};
  return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

// The API's turns: one request computes, up to kMaxComputeWaiting wait for theirs, each looking
// every 50 ms whether its client has gone (a request abandoned leaves the line at once).
std::mutex turn_mutex;
std::condition_variable turn_free;
bool turn_taken = false;
int turn_callers = 0;  // computing or waiting

// Parses the body and runs a handler, mapping every failure to a 4xx with a message.
void handle(const httplib::Request& req, httplib::Response& res,
            const std::function<nlohmann::json(const nlohmann::json&)>& f) {
  nlohmann::json body;
  try {
    body = parse_request(req.body);
  } catch (const ApiError& e) {
    send_json(res, e.status, {{"error", e.what()}});
    return;
  }
  {
    std::unique_lock<std::mutex> lock(turn_mutex);
    if (turn_callers > kMaxComputeWaiting) {
      res.set_header("Retry-After", "1");
      send_json(res, 503,
                {{"error", "server busy: " + std::to_string(kMaxComputeWaiting) +
                               " requests are waiting; try again"}});
      return;
    }
    ++turn_callers;
    while (turn_taken) {
      if (turn_free.wait_for(lock, std::chrono::milliseconds(50)) == std::cv_status::timeout &&
          client_gone()) {
        --turn_callers;
        send_json(res, 503, {{"error", "the client went away before its turn"}});
        return;
      }
    }
    turn_taken = true;
  }
  struct Release {
    ~Release() {
      {
        const std::lock_guard<std::mutex> lock(turn_mutex);
        turn_taken = false;
        --turn_callers;
      }
      turn_free.notify_one();
    }
  } release;
  if (client_gone()) {
    send_json(res, 503, {{"error", "the client went away before its turn"}});
    return;
  }
  try {
    send_json(res, 200, f(body));
  } catch (const ApiError& e) {
    send_json(res, e.status, {{"error", e.what()}});
  } catch (const nlohmann::json::exception& e) {
    send_json(res, 400,
              {{"error", "wrong type in request: " + excerpt(e.what(), 4 * limits::kExcerpt)}});
  } catch (const Error& e) {
    send_json(res, 422, {{"error", e.what()}});
  }
}

// Why bind() failed, from its errno (cpp-httplib only says false).
std::string bind_failure(const std::string& host, int port, int err) {
  const std::string p = "port " + std::to_string(port);
  if (err == EADDRINUSE) {
    return p + " is in use on " + host + " (another server? --port 0 picks a free one)";
  }
  if (err == EACCES) return p + " on " + host + " needs privileges (permission denied)";
  if (err == EADDRNOTAVAIL) return "cannot listen on " + host + ": not an address of this machine";
  return "cannot listen on " + host + ":" + std::to_string(port) +
         (err ? " (" + std::error_code(err, std::generic_category()).message() + ")"
              : " (is the host name right?)");
}

struct ServeArgs {
  std::string host = "127.0.0.1", weights, model = "tutorial", dataset, data_dir;
  int port = 8080;
  uint64_t seed = 0;
};

// What `cnn serve` explores: the model, its input, the data it was given.
struct ServedModel {
  std::shared_ptr<Module> model;
  Shape input;
  nlohmann::json meta = nlohmann::json::object();  // a checkpoint's; empty: untrained
  std::string dataset;                             // --dataset's, as load_split takes it
  DataOptions data;
  // A checkpoint's or the test split's: an image folder's training split takes the same labels.
  std::vector<std::string> class_names;
  std::shared_ptr<const Dataset> test;  // null: no test images
};

// --weights' model, or --model's built untrained from --seed; the test split of --dataset (a
// dataset or a --data-dir asked for must load; the default's is read when its directory exists).
ServedModel served_model(const ServeArgs& a) {
  ServedModel s;
  s.dataset = a.dataset;
  s.data.data_dir = a.data_dir;
  nlohmann::json description;
  std::string source;
  if (!a.weights.empty()) {
    LoadedModel loaded = load_model(a.weights);
    s.model = loaded.model;
    s.input = loaded.input;
    s.meta = loaded.meta;
    s.class_names = class_names_of(loaded);
    if (s.dataset.empty()) {
      try {
        s.dataset = dataset_of(loaded, "");
      } catch (const Error&) {
        // An image folder it does not record: mnist, as for any model, unless --dataset says.
      }
    }
  } else {
    const ModelSource found = find_model(a.model);
    Generator check_gen(0);
    s.input = build_model(found.description, check_gen, found.source).input;
    description = found.description;
    source = found.source;
  }
  if (s.dataset.empty()) s.dataset = "mnist";
  const bool asked = !a.dataset.empty() || !a.data_dir.empty();
  const bool there = is_idx_dataset(s.dataset)
                         ? std::filesystem::is_directory(data_dir_for(s.dataset, a.data_dir))
                         : std::filesystem::is_directory(s.dataset);
  if ((asked || there) && has_test_split(s.dataset, s.data)) {
    s.test = std::make_shared<const Dataset>(
        load_split(s.dataset, "test", s.input, s.data, s.class_names));
    if (s.class_names.empty()) s.class_names = s.test->class_names;
  }
  if (!s.model) {
    // The tutorial's model takes the data's classes, as `cnn train` gives it.
    if (a.model == "tutorial" && s.test) description = tutorial_architecture(s.test->num_classes);
    manual_seed(a.seed);
    s.model = build_model(description, default_generator(), source).module;
  }
  return s;
}

}  // namespace

void add_serve_command(CLI::App& app, int& exit_code) {
  auto a = std::make_shared<ServeArgs>();
  auto* cmd = app.add_subcommand(
      "serve", "The explorer: a local web page where every number comes from the library");
  cmd->add_option("--host", a->host, "Address to bind (127.0.0.1: this machine only)")
      ->capture_default_str();
  cmd->add_option("--port", a->port, "Port (0: any free port, printed)")
      ->check(integer_in(0, 65535))
      ->capture_default_str();
  auto* weights = cmd->add_option(
      "--weights", a->weights,
      std::string(kWeightsHelp) + "; its model is explored (default: an untrained --model)");
  auto* model = cmd->add_option("--model", a->model,
                                "A shipped model (" + join_names(shipped_model_names()) +
                                    ") or the path of a model file, as 'cnn train' takes it, "
                                    "explored untrained (initialised with --seed)")
                    ->capture_default_str();
  auto* seed = cmd->add_option("--seed", a->seed, "Seed of --model's initial weights")
                   ->check(unsigned_integer())
                   ->capture_default_str();
  model->excludes(weights);
  seed->excludes(weights);
  cmd->add_option("--dataset", a->dataset,
                  "The data as 'cnn train' takes it: mnist, fashion-mnist, or an image folder DIR "
                  "(resized to the model's input). Its test split gives the test images; its "
                  "training split, read when the page starts a live training run, what that run "
                  "trains on (default: the checkpoint's dataset, else mnist)")
      ->check(dataset_choice());
  cmd->add_option("--data-dir", a->data_dir,
                  "Directory of the IDX files (default: data/<dataset>; without --dataset and "
                  "--data-dir the test images are shown when it exists)");
  cmd->callback([a, &exit_code] {
    // The port first: a port in use is found before loading anything.
    mallopt(M_ARENA_MAX, kMallocArenas);
    ExplorerServer server;
    server.new_task_queue = [] { return new Workers(); };
    // cpp-httplib's default sets SO_REUSEPORT, with which a second server binds a port that another
    // already listens on and the kernel splits the connections between them. SO_REUSEADDR alone
    // still allows a restart while the last run's connections linger in TIME_WAIT.
    server.set_socket_options([](socket_t sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });
    server.set_payload_max_length(kMaxBody);
    server.set_read_timeout(5, 0);
    server.set_write_timeout(5, 0);
    // What the responses' Keep-Alive header says; ExplorerServer's loop enforces them.
    server.set_keep_alive_max_count(kKeepAliveRequests);
    server.set_keep_alive_timeout(
        std::chrono::duration_cast<std::chrono::seconds>(kKeepAliveIdle).count());
    errno = 0;
    const int port = a->port == 0 ? server.bind_to_any_port(a->host)
                                  : (server.bind_to_port(a->host, a->port) ? a->port : -1);
    if (port < 0) throw Error(bind_failure(a->host, a->port, errno));
    server.set_backlog(static_cast<int>(kMaxQueued));
    const ServedModel served = served_model(*a);
    auto explorer = std::make_unique<ExplorerApi>(served.model, served.input, served.meta);
    ExplorerApi& api = *explorer;
    if (served.test) api.set_test_images(served.test);
    // The training split is read when a live run first needs it: serving starts at once.
    api.set_training_images([dataset = served.dataset, data = served.data, input = served.input,
                             names = served.class_names] {
      return std::make_shared<const Dataset>(load_split(dataset, "train", input, data, names));
    });
    // Only the built-in assets are served: nothing on disk is reachable.
    for (const WebAsset& asset : web_assets()) {
      server.Get(asset.path, [&asset](const httplib::Request&, httplib::Response& res) {
        res.set_content(reinterpret_cast<const char*>(asset.data), asset.size, asset.content_type);
      });
    }
    server.Get("/", [](const httplib::Request&, httplib::Response& res) {
      const WebAsset& index = web_assets().front();
      res.set_content(reinterpret_cast<const char*>(index.data), index.size, index.content_type);
    });
    using Endpoint = nlohmann::json (ExplorerApi::*)(const nlohmann::json&) const;
    const std::pair<const char*, Endpoint> posts[] = {
        {"/api/conv2d/steps", &ExplorerApi::conv2d_steps},
        {"/api/maxpool2d/steps", &ExplorerApi::maxpool2d_steps},
        {"/api/shapes", &ExplorerApi::shapes},
        {"/api/predict", &ExplorerApi::predict},
        {"/api/inside", &ExplorerApi::inside},
        {"/api/inside/step", &ExplorerApi::inside_step},
        {"/api/inside/conv2-step", &ExplorerApi::inside_step2},
        {"/api/network", &ExplorerApi::network},
        {"/api/layer/step", &ExplorerApi::layer_step},
        {"/api/gradient", &ExplorerApi::gradient},
        {"/api/layer/dw-step", &ExplorerApi::dw_step},
        {"/api/test-image", &ExplorerApi::test_image}};
    for (const auto& [path, endpoint] : posts) {
      server.Post(path,
                  [&api, endpoint = endpoint](const httplib::Request& q, httplib::Response& r) {
                    handle(q, r, [&](const nlohmann::json& b) { return (api.*endpoint)(b); });
                  });
    }
    server.Get("/api/model", [&](const httplib::Request&, httplib::Response& r) {
      send_json(r, 200, api.model());
    });
    // The live training run: its actions take turns with the other requests; its state, polled
    // every few hundred milliseconds, is read without a turn (the run has locks of its own).
    server.Post("/api/train", [&api](const httplib::Request& q, httplib::Response& r) {
      handle(q, r, [&](const nlohmann::json& b) { return api.train(b); });
    });
    server.Get("/api/train", [&api](const httplib::Request& q, httplib::Response& r) {
      nlohmann::json request = nlohmann::json::object();
      if (q.has_param("since")) {
        // A number as a number; anything else as the text, which training() refuses by name.
        const std::string text = q.get_param_value("since");
        int64_t since = 0;
        const char* end = text.data() + text.size();
        const auto [ptr, ec] = std::from_chars(text.data(), end, since);
        request["since"] =
            ec == std::errc() && ptr == end ? nlohmann::json(since) : nlohmann::json(text);
      }
      try {
        send_json(r, 200, api.training(request));
      } catch (const ApiError& e) {
        send_json(r, e.status, {{"error", e.what()}});
      }
    });
    server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;  // a handler's own error message stands
      const int status = res.status;
      const char* what = status == 404   ? "not found"
                         : status == 413 ? "request body too large (at most 256 KiB)"
                                         : "bad request";
      send_json(res, status, {{"error", std::string(what) + ": " + excerpt(req.path)}});
    });
    server.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
          send_json(res, 500, {{"error", "internal error"}});
        });
    std::printf(
        "cnn explorer on http://%s:%d/%s\n", a->host.c_str(), port,
        a->weights.empty()
            ? ("  (untrained " + a->model + "; --weights PATH to explore a trained one)").c_str()
            : "");
    std::fflush(stdout);
    server.listen_after_bind();
    exit_code = 0;
  });
}

}  // namespace cnn::cli
