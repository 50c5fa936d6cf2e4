// `cnn serve` over HTTP: the explorer's API answers with the library's numbers, refuses bad
// requests with a 4xx and a message, serves nothing but its own assets, binds 127.0.0.1, and
// keeps running through all of it.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <regex>
#include <thread>

#include "serve_process.h"
#include "testing.h"

namespace cnn::testing {
namespace {

using nlohmann::json;

// The explorer's server with its own client.
class Server : public ServeProcess {
 public:
  httplib::Client client() const { return httplib::Client(host(), port()); }
};

class Serve : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server = new Server(); }
  static void TearDownTestSuite() { delete server; }
  static Server* server;

  static std::pair<int, json> post(const std::string& path, const std::string& body) {
    auto res = server->client().Post(path.c_str(), body, "application/json");
    if (!res) return {0, json()};
    json j;
    try {
      j = json::parse(res->body);
    } catch (...) {
    }
    return {res->status, j};
  }
};
Server* Serve::server = nullptr;

// A raw TCP connection to the server, for clients that misbehave.
int dial(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

void send_all(int fd, const std::string& s) {
  for (std::size_t off = 0; off < s.size();) {
    const ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
}

// What arrives on fd within `wait` (up to 4 KB).
std::string receive(int fd, std::chrono::milliseconds wait) {
  std::string got;
  const auto until = std::chrono::steady_clock::now() + wait;
  char buf[4096];
  while (got.size() < sizeof buf) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                          until - std::chrono::steady_clock::now())
                          .count();
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || poll(&p, 1, static_cast<int>(left)) <= 0) break;
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  return got;
}

// A normal request, with a client that gives up after `timeout`: the status, 0 if none came.
int get_within(const Server& s, const char* path, std::chrono::seconds timeout) {
  auto c = s.client();
  c.set_connection_timeout(timeout);
  c.set_read_timeout(timeout);
  auto res = c.Get(path);
  return res ? res->status : 0;
}

// 60,000 '[' (120 KB) in a stride or an image cell overflowed the server's stack when the 400
// message printed the value.
TEST_F(Serve, DeepJsonIsA400) {
  const std::string deep = std::string(60000, '[') + std::string(60000, ']');
  for (const std::string& body : {R"({"image": [[1,2]], "kernel": [[1]], "stride": )" + deep + "}",
                                  R"({"image": [[1, )" + deep + R"(]], "kernel": [[1]]})"}) {
    auto [status, j] = post("/api/conv2d/steps", body);
    EXPECT_EQ(status, 400);
    ASSERT_TRUE(j.contains("error")) << j.dump();
    EXPECT_NE(j["error"].get<std::string>().find("JSON nested deeper than 64"), std::string::npos)
        << j.dump();
    EXPECT_LT(j["error"].get<std::string>().size(), 300u);
  }
  EXPECT_TRUE(server->alive());
  EXPECT_EQ(post("/api/conv2d/steps", R"({"image": [[1,2]], "kernel": [[1]]})").first, 200);
}

// Invalid UTF-8 in a body was a 500 (printing the parser's message threw); in a path, too.
TEST_F(Serve, InvalidUtf8IsA400) {
  for (const char* path : {"/api/conv2d/steps", "/api/shapes", "/api/predict"}) {
    auto [status, j] = post(path, "{\"image\": [[1, \"\xff\xfe\"]], \"kernel\": [[1]]}");
    EXPECT_EQ(status, 400) << path;
    ASSERT_TRUE(j.contains("error")) << path;  // the body parsed: valid JSON, valid UTF-8
    EXPECT_NE(j["error"].get<std::string>().find("malformed JSON"), std::string::npos) << j.dump();
  }
  auto res = server->client().Get("/%FF%FE");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 404);
  json parsed;
  EXPECT_NO_THROW(parsed = json::parse(res->body)) << res->body;
  EXPECT_TRUE(server->alive());
}

TEST_F(Serve, IntegersBeyondInt64AreRefused) {
  auto [status, j] = post("/api/conv2d/steps",
                          R"({"image": [[1,2]], "kernel": [[1]], "stride": 18446744073709551615})");
  EXPECT_EQ(status, 400);
  EXPECT_EQ(j["error"], "'stride' must be between -8 and 8, got 18446744073709551615");
}

// One 2.2 KB request (32 MaxPool2d layers over 1024x256x256) took 170 s of CPU and GBs: shapes
// are now shape arithmetic, and a stack too big to build is refused by its parameter count.
TEST_F(Serve, ShapesWithinABudget) {
  json layers = json::array();
  for (int i = 0; i < 32; ++i) {
    layers.push_back({{"type", "MaxPool2d"}, {"kernel_size", 9}, {"stride", 1}, {"padding", 4}});
  }
  auto c = server->client();
  c.set_read_timeout(std::chrono::seconds(5));  // far above what it takes, far under 170 s
  auto res = c.Post("/api/shapes", json{{"input", {1024, 256, 256}}, {"layers", layers}}.dump(),
                    "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  auto [status, j] = post("/api/shapes", R"({"input": [1024, 256, 256], "layers": [
      {"type": "Conv2d", "out_channels": 1024, "kernel_size": 9}]})");
  EXPECT_EQ(status, 422);
  EXPECT_NE(j["error"].get<std::string>().find("the explorer builds at most 16777216"),
            std::string::npos)
      << j.dump();
}

// Slow clients (a header line a second, never finishing) held every worker: now a request must
// arrive within its deadline, and there are workers enough that others are answered meanwhile.
TEST_F(Serve, SlowClientsDoNotStarveOthers) {
  std::vector<int> slow;
  for (int i = 0; i < 16; ++i) {
    const int fd = dial(server->port());
    ASSERT_GE(fd, 0);
    send_all(fd, "GET / HTTP/1.1\r\nHost: x\r\n");
    slow.push_back(fd);
  }
  for (int second = 0; second < 4; ++second) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_EQ(get_within(*server, "/api/model", std::chrono::seconds(2)), 200) << second;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    for (int fd : slow) send_all(fd, "X-Slow-" + std::to_string(second) + ": 1\r\n");
  }
  for (int fd : slow) close(fd);
  EXPECT_TRUE(server->alive());
}

// A slow client is cut off once its request's deadline (10 s) has passed.
TEST_F(Serve, ARequestHasADeadline) {
  const int fd = dial(server->port());
  ASSERT_GE(fd, 0);
  send_all(fd, "GET / HTTP/1.1\r\n");
  const auto t0 = std::chrono::steady_clock::now();
  bool closed = false;
  for (int i = 0; i < 14 && !closed; ++i) {
    send_all(fd, "X-Slow: 1\r\n");
    pollfd p{fd, POLLIN, 0};
    closed = poll(&p, 1, 1000) > 0;  // the server's answer or its end of the connection
  }
  EXPECT_TRUE(closed);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(13));
  close(fd);
}

// 200 requests whose clients gave up queued their work behind them (5 s after, a GET still timed
// out): a request whose client has gone is not computed, and the server answers at once.
TEST_F(Serve, AbandonedRequestsAreDropped) {
  std::vector<std::vector<float>> px(28, std::vector<float>(28, 0.0f));
  for (int r = 6; r < 22; ++r) px[r][13] = px[r][14] = 1.0f;
  const std::string body = json{{"pixels", px}, {"channel", 3}, {"row", 3}, {"col", 3}}.dump();
  const std::string request =
      "POST /api/inside/conv2-step HTTP/1.1\r\nHost: x\r\n"
      "Content-Type: application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  std::vector<int> fds;
  for (int i = 0; i < 200; ++i) {
    const int fd = dial(server->port());
    if (fd < 0) continue;
    send_all(fd, request);
    fds.push_back(fd);
  }
  EXPECT_GE(fds.size(), 190u);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  for (int fd : fds) close(fd);
  EXPECT_EQ(get_within(*server, "/api/model", std::chrono::seconds(2)), 200);
  // The API may say it is busy (503) for a moment while the abandoned requests leave the line.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  int status = 0;
  while ((status = post("/api/inside/conv2-step", body).first) == 503 &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(status, 200);
  EXPECT_TRUE(server->alive());
}

// Connections beyond the workers and the queue are refused with a 503 at once, not queued.
TEST_F(Serve, ConnectionsBeyondTheQueueGet503) {
  std::vector<int> idle;
  for (int i = 0; i < 64 + 256 + 40; ++i) {
    const int fd = dial(server->port());
    if (fd >= 0) idle.push_back(fd);
  }
  // The last 40 found the 64 workers busy (waiting for their idle clients) and 256 queued.
  int refused = 0;
  for (auto it = idle.end() - 40; it != idle.end(); ++it) {
    if (receive(*it, std::chrono::milliseconds(1000)).rfind("HTTP/1.1 503", 0) == 0) ++refused;
  }
  EXPECT_GE(refused, 20);
  for (int fd : idle) close(fd);
  EXPECT_EQ(get_within(*server, "/api/model", std::chrono::seconds(3)), 200);
  EXPECT_TRUE(server->alive());
}

TEST_F(Serve, BindsLoopbackByDefault) { EXPECT_EQ(server->host(), "127.0.0.1"); }

TEST_F(Serve, TutorialConvolutionFigure) {
  auto [status, j] =
      post("/api/conv2d/steps", R"({"image": [[9,3,5],[6,2,3],[7,4,6]], "kernel": [[1,0],[1,1]]})");
  ASSERT_EQ(status, 200) << j.dump();
  EXPECT_EQ(j["output"], json::parse("[[17,8],[17,12]]"));
  EXPECT_EQ(j["steps"][0]["expression"], "9 x 1 + 3 x 0 + 6 x 1 + 2 x 1 = 17");
  EXPECT_EQ(j["steps"][3]["expression"], "2 x 1 + 3 x 0 + 4 x 1 + 6 x 1 = 12");
}

TEST_F(Serve, TutorialPoolingFigureAndPadding) {
  auto [status, j] = post("/api/maxpool2d/steps",
                          R"({"image": [[3,7,0],[1,2,6],[9,3,4]], "kernel_size": 2, "stride": 1})");
  ASSERT_EQ(status, 200) << j.dump();
  EXPECT_EQ(j["output"], json::parse("[[7,7],[9,6]]"));
  auto [s2, padded] =
      post("/api/maxpool2d/steps",
           R"({"image": [[-1,-1],[-1,-1]], "kernel_size": 2, "stride": 2, "padding": 1})");
  ASSERT_EQ(s2, 200) << padded.dump();
  EXPECT_EQ(padded["steps"][0]["expression"], "max(-inf, -inf, -inf, -1) = -1");
}

TEST_F(Serve, NonDefaultConvolutionMatchesTheLibrary) {
  const std::string body =
      R"({"image": [[1,2,3,4,5],[6,7,8,9,10],[11,12,13,14,15],[16,17,18,19,20]],
                              "kernel": [[1,-1],[2,0.5]], "stride": [2,1], "padding": 1, "dilation": [1,2]})";
  auto [status, j] = post("/api/conv2d/steps", body);
  ASSERT_EQ(status, 200) << j.dump();
  const StepThrough want = conv2d_steps(
      Tensor::from({4, 5}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}),
      Tensor::from({2, 2}, {1, -1, 2, 0.5f}), Size2(2, 1), 1, Size2(1, 2));
  ASSERT_EQ(j["steps"].size(), want.steps.size());
  for (std::size_t i = 0; i < want.steps.size(); ++i) {
    EXPECT_EQ(j["steps"][i]["expression"], want.steps[i].expression);
    EXPECT_FLOAT_EQ(j["steps"][i]["value"].get<float>(), want.steps[i].value);
  }
}

TEST_F(Serve, ShapesAndTheLibrarysErrors) {
  auto [status, j] = post("/api/shapes", R"({"input": [1,28,28], "layers": [
      {"type":"Conv2d","out_channels":16,"kernel_size":3},{"type":"ReLU"},
      {"type":"MaxPool2d","kernel_size":2,"stride":2,"padding":1},{"type":"Flatten"},
      {"type":"Linear","out_features":10}]})");
  ASSERT_EQ(status, 200) << j.dump();
  EXPECT_EQ(j["rows"][2]["output_shape"], json::parse("[-1,16,14,14]"));
  EXPECT_EQ(j["total_params"], 160 + 3136 * 10 + 10);
  auto [bad, e] =
      post("/api/shapes",
           R"({"input": [1,28,28], "layers": [{"type":"MaxPool2d","kernel_size":2,"padding":2}]})");
  EXPECT_EQ(bad, 422);
  EXPECT_NE(e["error"].get<std::string>().find("layer 1: MaxPool2d(kernel_size=2"),
            std::string::npos)
      << e.dump();
}

TEST_F(Serve, BadRequestsGet4xxWithAMessage) {
  struct Case {
    const char* path;
    std::string body;
    int status;
    const char* fragment;
  };
  const std::vector<Case> cases = {
      {"/api/conv2d/steps", R"({"image": [[1,2]], )", 400, "malformed JSON"},
      {"/api/conv2d/steps", R"([1, 2, 3])", 400, "JSON object"},
      {"/api/conv2d/steps", R"({"image": "nine", "kernel": [[1]]})", 400, "'image'"},
      {"/api/conv2d/steps", R"({"image": [[1,2],[3]], "kernel": [[1]]})", 400, "rectangular"},
      {"/api/conv2d/steps", R"({"image": [[1,"x"]], "kernel": [[1]]})", 400, "non-number"},
      {"/api/conv2d/steps", R"({"image": [[1,2]], "kernel": [[1]], "stride": "2"})", 400,
       "'stride' must be an integer"},
      {"/api/conv2d/steps", R"({"image": [[1,2]], "kernel": [[1]], "stride": 99999999999})", 400,
       "between"},
      // Not a number: refused with what was sent, never computed with the default stride.
      {"/api/conv2d/steps", R"({"image": [[1,2]], "kernel": [[1]], "stride": "abc"})", 400,
       R"('stride' must be an integer or [h, w] pair, got "abc")"},
      {"/api/conv2d/steps", R"({"image": [[1,2]], "kernel": [[1]], "stride": null})", 400,
       "'stride' must be an integer or [h, w] pair, got null"},
      {"/api/maxpool2d/steps", R"({"image": [[1,2]], "kernel_size": "2,"})", 400,
       R"('kernel_size' must be an integer or [h, w] pair, got "2,")"},
      {"/api/shapes", R"({"input": [1,28,28], "layers": [{"type":"MaxPool2d","padding":"abc"}]})",
       400, R"(layer 1: 'padding' must be an integer or [h, w] pair, got "abc")"},
      {"/api/conv2d/steps", R"({"image": [[1,2]], "kernel": [[1]], "padding": -3})", 422,
       "negative padding"},
      {"/api/conv2d/steps", R"({"image": [[1,2]], "kernel": [[1,1,1]]})", 422,
       "dilated kernel size"},
      {"/api/maxpool2d/steps", R"({"image": [[1,2]]})", 400, "kernel_size"},
      {"/api/maxpool2d/steps", R"({"image": [[1,2]], "kernel_size": 2, "ceil_mode": 1})", 400,
       "ceil_mode"},
      {"/api/shapes", R"({"input": [1,-28,28], "layers": []})", 400, "input H"},
      {"/api/shapes", R"({"input": [1,28,28], "layers": [{"type":"Resnet"}]})", 400,
       "unknown type"},
      {"/api/predict", R"({"pixels": [[255,255],[255,255]]})", 422, "blank"},
      {"/api/predict", R"({"pixels": [[300]]})", 400, "between 0 and 255"},
      {"/api/inside", R"({"pixels": [[0.5]]})", 400, "28x28"},
      {"/api/inside/step",
       (R"({"channel": 16, "row": 0, "col": 0, "pixels": )" +
        json(std::vector<std::vector<int>>(28, std::vector<int>(28, 0))).dump() + "}"),
       400, "'channel' must be in [0, 16)"},
  };
  for (const Case& c : cases) {
    auto [status, j] = post(c.path, c.body);
    EXPECT_EQ(status, c.status) << c.body << " -> " << j.dump();
    ASSERT_TRUE(j.contains("error")) << c.body;
    EXPECT_NE(j["error"].get<std::string>().find(c.fragment), std::string::npos) << j.dump();
  }
  // A big grid is refused before any work.
  auto [s_big, j_big] = post(
      "/api/conv2d/steps",
      R"({"image": )" + json(std::vector<std::vector<int>>(40, std::vector<int>(40, 1))).dump() +
          R"(, "kernel": [[1]]})");
  EXPECT_EQ(s_big, 400) << j_big.dump();
  EXPECT_TRUE(server->alive());
}

TEST_F(Serve, OversizedBodyIs413) {
  auto res = server->client().Post("/api/shapes", std::string(400 * 1024, ' '), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 413);
  EXPECT_NE(res->body.find("too large"), std::string::npos);
  EXPECT_TRUE(server->alive());
}

TEST_F(Serve, OnlyItsOwnAssets) {
  auto c = server->client();
  auto index = c.Get("/");
  ASSERT_TRUE(index);
  EXPECT_EQ(index->status, 200);
  EXPECT_NE(index->body.find("cnn explorer"), std::string::npos);
  EXPECT_EQ(c.Get("/app.js")->status, 200);
  for (const char* path : {"/etc/passwd", "/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
                           "/CMakeLists.txt", "/web/app.js", "/api/unknown"}) {
    auto res = c.Get(path);
    ASSERT_TRUE(res) << path;
    EXPECT_EQ(res->status, 404) << path;
    EXPECT_EQ(res->body.find("root:"), std::string::npos) << path;
  }
  EXPECT_TRUE(server->alive());
}

TEST_F(Serve, AConv2PixelTakenApart) {
  // A pixel of conv2's pooled maps: its pooling window over the ReLU'd conv2 output, and the
  // window's winner as 16 step-throughs (one per pooled conv1 map) plus the bias.
  std::vector<std::vector<float>> px(28, std::vector<float>(28, 0.0f));
  for (int r = 6; r < 22; ++r) px[r][13] = px[r][14] = 1.0f;
  const json input = {{"pixels", px}};
  const auto [status, inside] = post("/api/inside", input.dump());
  ASSERT_EQ(status, 200);
  int checked = 0;
  for (int c : {0, 5, 31}) {
    for (auto [row, col] : {std::pair{3, 3}, std::pair{0, 6}, std::pair{6, 0}}) {
      json request = input;
      request["channel"] = c, request["row"] = row, request["col"] = col;
      const auto [s, j] = post("/api/inside/conv2-step", request.dump());
      ASSERT_EQ(s, 200) << j.dump();
      const float pooled = inside["conv2_pooled"][c][row][col].get<float>();
      EXPECT_FLOAT_EQ(j["pool"]["value"].get<float>(), pooled);
      EXPECT_FLOAT_EQ(std::max(0.0f, j["pre_activation"].get<float>()), pooled);
      ASSERT_EQ(j["channels"].size(), 16u);
      double sum = j["bias"].get<double>();
      for (const json& ch : j["channels"]) {
        EXPECT_NE(ch["expression"].get<std::string>().find(" = "), std::string::npos);
        sum += ch["value"].get<double>();
      }
      EXPECT_NEAR(j["sum"].get<double>(), sum, 1e-9);
      // The 16 partial sums add up to what the layer computed, but for float rounding.
      EXPECT_NEAR(sum, j["pre_activation"].get<double>(), 1e-4 * (1.0 + std::abs(sum)));
      ++checked;
    }
  }
  EXPECT_EQ(checked, 9);
  json request = input;
  request["channel"] = 0, request["row"] = 7, request["col"] = 0;
  const auto [s_bad, j_bad] = post("/api/inside/conv2-step", request.dump());
  EXPECT_EQ(s_bad, 400);
  EXPECT_NE(j_bad["error"].get<std::string>().find("'row' must be in [0, 7)"), std::string::npos)
      << j_bad.dump();
}

TEST_F(Serve, ConcurrentRequestsGetTheSameAnswers) {
  // The model is shared by the server's threads: answers must not mix.
  std::vector<std::vector<float>> px(28, std::vector<float>(28, 0.0f));
  for (int r = 6; r < 22; ++r) px[r][13] = px[r][14] = 1.0f;
  const std::string body = json{{"pixels", px}}.dump();
  const auto [status, want] = post("/api/inside", body);
  ASSERT_EQ(status, 200);
  std::vector<std::thread> threads;
  std::atomic<int> same{0};
  std::mutex failures_mutex;
  std::string failures;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i) {
        // The server computes API requests one at a time: 40 at once wait their turn, which
        // under a sanitizer can take longer than the client's default 5 s.
        httplib::Client c = server->client();
        c.set_read_timeout(std::chrono::seconds(120));
        auto res = c.Post("/api/inside", body, "application/json");
        if (res && res->status == 200 && json::parse(res->body) == want) {
          ++same;
        } else {
          const std::lock_guard<std::mutex> lock(failures_mutex);
          failures += res ? "status " + std::to_string(res->status) + "; "
                          : "error " + httplib::to_string(res.error()) + "; ";
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(same.load(), 40) << failures;
}

TEST_F(Serve, ModelSummary) {
  auto res = server->client().Get("/api/model");
  ASSERT_TRUE(res);
  const json j = json::parse(res->body);
  EXPECT_NE(j["summary"].get<std::string>().find("Total params: 55,338"), std::string::npos);
  EXPECT_EQ(j["input"], json::parse("[1, 28, 28]"));
  EXPECT_FALSE(j["trained"].get<bool>());
}

// A checkpoint of the model a description declares (untrained, seeded), as `cnn train` writes one.
std::string write_checkpoint(const std::string& description, const std::string& file) {
  Generator gen(7);
  const BuiltModel built = build_model(json::parse(description), gen);
  Archive a;
  a.meta = {{"format", kCheckpointFormat},
            {"version", kCheckpointVersion},
            {"architecture", describe_model(*built.module, built.input)},
            {"dataset", {{"name", "mnist"}}}};
  for (const auto& [name, t] : built.module->state_dict()) a.add("model/" + name, t);
  const std::string path = ::testing::TempDir() + "/" + std::to_string(getpid()) + "_" + file;
  write_archive(path, a);
  return path;
}

std::pair<int, json> post_to(const ServeProcess& s, const std::string& path, const json& body) {
  auto res =
      httplib::Client(s.host(), s.port()).Post(path.c_str(), body.dump(), "application/json");
  if (!res) return {0, json()};
  return {res->status, json::parse(res->body)};
}

// A vertical bar, as the other tests draw.
json bar_pixels() {
  std::vector<std::vector<float>> px(28, std::vector<float>(28, 0.0f));
  for (int r = 6; r < 22; ++r) px[r][13] = px[r][14] = 1.0f;
  return px;
}

Shape dims_of(const json& maps) {
  return {static_cast<int64_t>(maps.size()), static_cast<int64_t>(maps[0].size()),
          static_cast<int64_t>(maps[0][0].size())};
}

// The explorer shows any checkpoint's model: its summary for its own input, and the inside view
// of its first two convolutions with their own channel counts and stages.
TEST(ServeOtherModels, InsideAModelThatIsNotTheTutorial) {
  const std::string weights = write_checkpoint(R"({"name": "two-convs", "input": [1, 28, 28],
      "layers": [
        {"type": "Conv2d", "out_channels": 5, "kernel_size": 5, "padding": 2},
        {"type": "ReLU"},
        {"type": "MaxPool2d", "kernel_size": 2},
        {"type": "Conv2d", "out_channels": 7, "kernel_size": 3},
        {"type": "ReLU"},
        {"type": "Flatten"},
        {"type": "Linear", "out_features": 10}]})",
                                               "two_convs.cnnt");
  ServeProcess server({"--weights", weights});
  auto res = httplib::Client(server.host(), server.port()).Get("/api/model");
  ASSERT_TRUE(res);
  const json model = json::parse(res->body);
  EXPECT_EQ(model["input"], json::parse("[1, 28, 28]"));
  EXPECT_NE(model["summary"].get<std::string>().find("[-1, 7, 12, 12]"), std::string::npos)
      << model["summary"];

  const json px = bar_pixels();
  const auto [status, inside] = post_to(server, "/api/inside", {{"pixels", px}});
  ASSERT_EQ(status, 200) << inside.dump();
  EXPECT_EQ(dims_of(inside["conv1"]), (Shape{5, 28, 28}));
  EXPECT_EQ(dims_of(inside["conv1_pooled"]), (Shape{5, 14, 14}));
  EXPECT_EQ(dims_of(inside["conv2_pooled"]), (Shape{7, 12, 12}));  // its stage: ReLU only
  EXPECT_EQ(dims_of(inside["conv1_filters"]), (Shape{5, 5, 5}));
  EXPECT_EQ(dims_of(inside["conv2_filters"]), (Shape{7, 3, 3}));
  EXPECT_EQ(inside["conv1_bias"].size(), 5u);
  EXPECT_EQ(inside["names"], json::parse(R"({"conv1": "0", "conv2": "3"})"));
  EXPECT_EQ(inside["stages"],
            json::parse(R"([["Conv2d", "ReLU", "MaxPool2d"], ["Conv2d", "ReLU"]])"));

  // A conv1 pixel's step-through, with the padding of 2, is the map's pixel.
  const auto [s1, step] = post_to(server, "/api/inside/step",
                                  {{"pixels", px}, {"channel", 4}, {"row", 0}, {"col", 27}});
  ASSERT_EQ(s1, 200) << step.dump();
  EXPECT_EQ(step["taps"].size(), 25u);
  EXPECT_FLOAT_EQ(step["value"].get<float>(), inside["conv1"][4][0][27].get<float>());
  // A conv2 pixel: no pooling, so a 1x1 window; the sum over the 5 conv1 maps.
  for (auto [row, col] : {std::pair{0, 0}, std::pair{6, 7}, std::pair{11, 11}}) {
    const auto [s2, d] = post_to(server, "/api/inside/conv2-step",
                                 {{"pixels", px}, {"channel", 6}, {"row", row}, {"col", col}});
    ASSERT_EQ(s2, 200) << d.dump();
    EXPECT_EQ(d["channels"].size(), 5u);
    EXPECT_EQ(d["pool"]["taps"].size(), 1u);
    EXPECT_TRUE(d["relu"].get<bool>());
    EXPECT_FALSE(d["pooled"].get<bool>());
    EXPECT_EQ(d["winner"], json({{"row", row}, {"col", col}}));
    EXPECT_FLOAT_EQ(d["pool"]["value"].get<float>(),
                    inside["conv2_pooled"][6][row][col].get<float>());
    EXPECT_NEAR(d["sum"].get<double>(), d["pre_activation"].get<double>(),
                1e-4 * (1.0 + std::abs(d["sum"].get<double>())));
  }
  const auto [s_bad, bad] = post_to(server, "/api/inside/conv2-step",
                                    {{"pixels", px}, {"channel", 7}, {"row", 0}, {"col", 0}});
  EXPECT_EQ(s_bad, 400);
  EXPECT_EQ(bad["error"], "'channel' must be in [0, 7), got 7");
  EXPECT_TRUE(server.alive());
  std::filesystem::remove(weights);
}

// A model with one convolution has no conv2 to show: a 422 that says what the view needs and what
// the model has; the rest of the explorer works.
TEST(ServeOtherModels, OneConvolutionIsA422) {
  const std::string weights = write_checkpoint(R"({"input": [1, 28, 28], "layers": [
        {"type": "Conv2d", "out_channels": 4, "kernel_size": 3},
        {"type": "ReLU"},
        {"type": "Flatten"},
        {"type": "Linear", "out_features": 10}]})",
                                               "one_conv.cnnt");
  ServeProcess server({"--weights", weights});
  const json px = bar_pixels();
  for (const char* path : {"/api/inside", "/api/inside/step", "/api/inside/conv2-step"}) {
    const auto [status, j] =
        post_to(server, path, {{"pixels", px}, {"channel", 0}, {"row", 0}, {"col", 0}});
    EXPECT_EQ(status, 422) << path;
    EXPECT_EQ(j["error"],
              "the inside view shows a model's first two Conv2d layers; this model has one, "
              "layer 0")
        << path;
  }
  auto res = httplib::Client(server.host(), server.port()).Get("/api/model");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  std::vector<std::vector<int>> drawing(56, std::vector<int>(56, 255));
  for (int r = 10; r < 46; ++r) drawing[r][27] = drawing[r][28] = 0;
  const auto [s_pred, pred] = post_to(server, "/api/predict", {{"pixels", drawing}});
  EXPECT_EQ(s_pred, 200) << pred.dump();
  EXPECT_EQ(pred["probs"].size(), 10u);
  EXPECT_TRUE(server.alive());
  std::filesystem::remove(weights);
}

}  // namespace
}  // namespace cnn::testing
