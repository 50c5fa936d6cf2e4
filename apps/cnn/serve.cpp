// cnn serve: the explorer, a local web page whose every number comes from the library. The page
// is built into the binary; the JSON API is cnn::ExplorerApi behind cpp-httplib.
#include <httplib.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "cnn/explore/api.h"
#include "common.h"
#include "web_assets.h"

namespace cnn::cli {

namespace {

constexpr std::size_t kMaxBody = 256 * 1024;  // a 224x224 drawing as JSON fits

void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

// Parses the body and runs a handler, mapping every failure to a 4xx with a message.
void handle(const httplib::Request& req, httplib::Response& res,
            const std::function<nlohmann::json(const nlohmann::json&)>& f) {
  nlohmann::json body;
  try {
    body = nlohmann::json::parse(req.body);
  } catch (const nlohmann::json::exception& e) {
    send_json(res, 400, {{"error", std::string("malformed JSON: ") + e.what()}});
    return;
  }
  try {
    send_json(res, 200, f(body));
  } catch (const ApiError& e) {
    send_json(res, e.status, {{"error", e.what()}});
  } catch (const nlohmann::json::exception& e) {
    send_json(res, 400, {{"error", std::string("wrong type in request: ") + e.what()}});
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

}  // namespace

void add_serve_command(CLI::App& app, int& exit_code) {
  struct Args {
    std::string host = "127.0.0.1", weights, data_dir;
    int port = 8080;
  };
  auto a = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "serve", "The explorer: a local web page where every number comes from the library");
  cmd->add_option("--host", a->host, "Address to bind (127.0.0.1: this machine only)")
      ->capture_default_str();
  cmd->add_option("--port", a->port, "Port (0: any free port, printed)")
      ->check(integer_in(0, 65535))
      ->capture_default_str();
  cmd->add_option("--weights", a->weights,
                  "Checkpoint to explore (default: an untrained tutorial model)");
  cmd->add_option("--data-dir", a->data_dir,
                  "MNIST's IDX files, for the test images (default: data/mnist if present)");
  cmd->callback([a, &exit_code] {
    // The port first: a port in use is found before loading anything.
    httplib::Server server;
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
    errno = 0;
    const int port = a->port == 0 ? server.bind_to_any_port(a->host)
                                  : (server.bind_to_port(a->host, a->port) ? a->port : -1);
    if (port < 0) throw Error(bind_failure(a->host, a->port, errno));
    std::shared_ptr<Module> model;
    nlohmann::json meta;
    if (!a->weights.empty()) {
      LoadedModel loaded = load_checkpoint(a->weights);
      model = loaded.model;
      meta = loaded.meta;
    }
    ExplorerApi api(model, meta);
    const std::string data_dir = a->data_dir.empty() ? "data/mnist" : a->data_dir;
    if (!a->data_dir.empty() || std::filesystem::is_directory(data_dir)) {
      api.set_test_images(std::make_shared<const Dataset>(load_dataset("mnist", data_dir, "test")));
    }
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
    server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (!res.body.empty()) return;  // a handler's own error message stands
      const int status = res.status;
      const char* what = status == 404   ? "not found"
                         : status == 413 ? "request body too large (at most 256 KiB)"
                                         : "bad request";
      send_json(res, status, {{"error", std::string(what) + ": " + req.path}});
    });
    server.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
          send_json(res, 500, {{"error", "internal error"}});
        });
    std::printf(
        "cnn explorer on http://%s:%d/%s\n", a->host.c_str(), port,
        a->weights.empty() ? "  (untrained model; --weights PATH to explore a trained one)" : "");
    std::fflush(stdout);
    server.listen_after_bind();
    exit_code = 0;
  });
}

}  // namespace cnn::cli
