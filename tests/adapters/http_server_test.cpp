// The daemon's HTTP server against what clients send on purpose or by accident: slow and idle
// connections, oversized and compressed bodies, huge headers, pipelining, odd framing. Real
// sockets on 127.0.0.1; every case is bounded in size and time.

#include "adapters/http/http_server.hpp"

#include <httplib.h>
#include <zlib.h>
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using switchboard::http_config;
using switchboard::adapters::http::http_server;
namespace ports = switchboard::ports;

namespace {

constexpr const char* token = "test-token";

/// A server with one open echo route (`POST /hooks/echo`: answers the body's size and its
/// first bytes) and one guarded one (`POST /v1/echo`), small limits and short timeouts.
struct served {
  explicit served(http_config cfg = small_config()) : server(cfg, hooks()) {
    auto address = server.start();
    port = std::stoi(address.substr(address.find(':') + 1));
  }

  static http_config small_config() {
    http_config cfg;
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.max_body_bytes = 64 * 1024;
    cfg.max_header_bytes = 8 * 1024;
    cfg.read_timeout = 1s;
    cfg.write_timeout = 1s;
    cfg.worker_threads = 2;
    cfg.access_log = false;
    return cfg;
  }

  http_server::hooks hooks() {
    http_server::hooks h;
    h.api_token = token;
    h.ready = [] { return true; };
    auto echo = [this](const ports::http_request& req) {
      ++handled;
      return ports::json_reply(200, "{\"bytes\":" + std::to_string(req.body.size()) +
                                        ",\"head\":\"" + req.body.substr(0, 8) + "\",\"type\":\"" +
                                        req.header("Content-Type") + "\"}");
    };
    h.routes.push_back({"POST", "/hooks/echo", ports::route_access::open, echo});
    h.routes.push_back({"POST", "/v1/echo", ports::route_access::bearer_token, echo});
    h.routes.push_back({"GET", "/v1/echo", ports::route_access::bearer_token, echo});
    return h;
  }

  httplib::Client client() const {
    httplib::Client c{"127.0.0.1", port};
    c.set_connection_timeout(2s);
    c.set_read_timeout(5s);
    return c;
  }

  std::atomic<int> handled{0};
  http_server server;
  int port = 0;
};

/// A plain TCP connection for what an HTTP library would not send.
class raw_socket {
public:
  explicit raw_socket(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~raw_socket() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  raw_socket(const raw_socket&) = delete;
  raw_socket& operator=(const raw_socket&) = delete;

  bool connected() const { return connected_; }

  /// False once the peer has closed (or reset) the connection.
  bool send(const std::string& data) {
    std::size_t off = 0;
    while (off < data.size()) {
      auto n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0)
        return false;
      off += static_cast<std::size_t>(n);
    }
    return true;
  }

  /// What arrives within `wait`, until the peer closes or `until` appears `count` times.
  std::string receive(std::chrono::milliseconds wait, const std::string& until = "",
                      int count = 1) {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
      if (!until.empty() && occurrences(got_, until) >= count)
        break;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0)
        break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
        break;
      char buf[65536];
      auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        closed_ = true;
        break;
      }
      got_.append(buf, static_cast<std::size_t>(n));
    }
    return got_;
  }

  bool closed_by_peer() const { return closed_; }

  static int occurrences(const std::string& text, const std::string& what) {
    int n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
      ++n;
    return n;
  }

private:
  int fd_ = -1;
  bool connected_ = false;
  bool closed_ = false;
  std::string got_;
};

std::string gzip(const std::string& data) {
  z_stream z{};
  REQUIRE(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&z, data.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

int status_of(const std::string& response) {
  if (response.rfind("HTTP/1.1 ", 0) != 0 || response.size() < 12)
    return 0;
  return std::stoi(response.substr(9, 3));
}

}  // namespace

TEST_CASE("a bodyless POST is an empty POST, and JSON answers end with a newline",
          "[http][server]") {
  served s;
  raw_socket c{s.port};
  REQUIRE(c.connected());
  REQUIRE(c.send("POST /hooks/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  auto got = c.receive(3s);
  CHECK(status_of(got) == 200);
  CHECK(got.find("{\"bytes\":0,") != std::string::npos);
  CHECK(got.size() > 2);
  CHECK(got.back() == '\n');
  CHECK(got.find("X-Request-Id: ") != std::string::npos);
}

TEST_CASE("pipelined requests are all answered, in order", "[http][server]") {
  served s;
  raw_socket c{s.port};
  REQUIRE(c.connected());
  std::string five;
  for (int i = 0; i < 5; ++i) {
    const auto body = "item-" + std::to_string(i);
    five +=
        "POST /hooks/echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\n\r\n" + body;
  }
  REQUIRE(c.send(five));
  auto got = c.receive(5s, "HTTP/1.1 200", 5);
  REQUIRE(raw_socket::occurrences(got, "HTTP/1.1 200") == 5);
  std::size_t at = 0;
  for (int i = 0; i < 5; ++i) {
    at = got.find("\"head\":\"item-" + std::to_string(i), at);
    CHECK(at != std::string::npos);  // each answer after the one before it
  }
  CHECK_FALSE(c.closed_by_peer());
}

TEST_CASE("a chunked body over max_body_bytes gets 413 and never reaches a handler",
          "[http][server]") {
  served s;
  raw_socket c{s.port};
  REQUIRE(c.connected());
  REQUIRE(c.send("POST /hooks/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"));
  const std::string chunk(16 * 1024, 'a');
  bool sending = true;
  for (int i = 0; i < 16 && sending; ++i)  // 256 KiB against a 64 KiB limit
    sending = c.send("4000\r\n" + chunk + "\r\n");
  auto got = c.receive(3s, "\r\n\r\n");
  CHECK(status_of(got) == 413);
  CHECK(got.find("max_body_bytes") != std::string::npos);
  CHECK(s.handled == 0);
}

TEST_CASE("headers over max_header_bytes get 431", "[http][server]") {
  served s;
  raw_socket c{s.port};
  REQUIRE(c.connected());
  std::string request = "GET /health HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 200; ++i)  // ~20 KiB of headers against 8 KiB
    request += "X-Filler-" + std::to_string(i) + ": " + std::string(90, 'f') + "\r\n";
  request += "\r\n";
  c.send(request);
  auto got = c.receive(3s, "\r\n\r\n");
  CHECK(status_of(got) == 431);
  CHECK(got.find("max_header_bytes") != std::string::npos);
}

TEST_CASE("a body with both Content-Length and chunked framing is refused", "[http][server]") {
  served s;
  raw_socket c{s.port};
  REQUIRE(c.connected());
  REQUIRE(
      c.send("POST /hooks/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: "
             "chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"));
  auto got = c.receive(3s, "\r\n\r\n");
  CHECK(status_of(got) == 400);
  CHECK(got.find("Content-Length") != std::string::npos);
  CHECK(s.handled == 0);
}

TEST_CASE("an unsupported Content-Encoding gets 415 naming it", "[http][server]") {
  served s;
  auto c = s.client();
  httplib::Headers h{{"Content-Encoding", "compress"}};
  auto res = c.Post("/hooks/echo", h, "abc", "text/plain");
  REQUIRE(res);
  CHECK(res->status == 415);
  CHECK(res->body.find("'compress'") != std::string::npos);
  CHECK(s.handled == 0);
}

TEST_CASE("gzip bodies: inflated after the token check and never past max_body_bytes",
          "[http][server]") {
  served s;
  const auto bomb = gzip(std::string(32 * 1024 * 1024, '0'));  // 32 MiB of zeros, ~32 KiB sent
  REQUIRE(bomb.size() < 64 * 1024);

  SECTION("without the token: 401 from the header alone, the body is never read") {
    raw_socket c{s.port};
    REQUIRE(c.connected());
    // The header claims a body that is never sent: an answer can only come from the header.
    REQUIRE(
        c.send("POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\n"
               "Content-Length: " +
               std::to_string(bomb.size()) + "\r\n\r\n"));
    auto got = c.receive(3s, "\r\n\r\n");
    CHECK(status_of(got) == 401);
    CHECK(s.handled == 0);
  }
  SECTION("with the token: 413 once the inflated size passes the limit") {
    auto c = s.client();
    httplib::Headers h{{"Content-Encoding", "gzip"},
                       {"Authorization", std::string{"Bearer "} + token}};
    auto res = c.Post("/v1/echo", h, bomb, "application/json");
    REQUIRE(res);
    CHECK(res->status == 413);
    CHECK(res->body.find("once decoded") != std::string::npos);
    CHECK(s.handled == 0);
  }
  SECTION("a gzip body within the limit reaches the handler inflated") {
    auto c = s.client();
    httplib::Headers h{{"Content-Encoding", "gzip"},
                       {"Authorization", std::string{"Bearer "} + token}};
    auto res = c.Post("/v1/echo", h, gzip(std::string(40 * 1024, 'z')), "application/json");
    REQUIRE(res);
    CHECK(res->status == 200);
    CHECK(res->body.find("{\"bytes\":40960,\"head\":\"zzzzzzzz\"") != std::string::npos);
  }
}

TEST_CASE("a large form body (a long signed SMS webhook) reaches its route", "[http][server]") {
  served s;
  auto c = s.client();
  // 700 emoji percent-encoded: ~8.4 KiB of form, over cpp-httplib's fixed 8 KiB form limit.
  std::string body = "Body=";
  for (int i = 0; i < 700; ++i)
    body += "%F0%9F%98%80";
  auto res = c.Post("/hooks/echo", body, "application/x-www-form-urlencoded");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(res->body.find("{\"bytes\":" + std::to_string(body.size()) + ",") != std::string::npos);
}

TEST_CASE("a header must arrive within read_timeout even if it trickles in", "[http][server]") {
  served s;  // read_timeout 1 s
  raw_socket c{s.port};
  REQUIRE(c.connected());
  const std::string header = "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " + std::string(40, 's');
  const auto start = std::chrono::steady_clock::now();
  bool open = true;
  for (std::size_t i = 0; i < header.size() && open; ++i) {  // a byte every 100 ms: 5 s at most
    open = c.send(header.substr(i, 1));
    c.receive(100ms);
    open = open && !c.closed_by_peer();
  }
  CHECK_FALSE(open);  // closed by the server before the header was complete
  CHECK(std::chrono::steady_clock::now() - start < 4500ms);
}

TEST_CASE("slow and idle connections hold no worker: good requests still answer",
          "[http][server]") {
  served s;  // 2 worker threads
  std::vector<std::unique_ptr<raw_socket>> hostile;
  for (int i = 0; i < 20; ++i) {  // half-sent headers
    hostile.push_back(std::make_unique<raw_socket>(s.port));
    hostile.back()->send("GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ");
  }
  for (int i = 0; i < 20; ++i) {  // kept-alive connections, idle after one request
    hostile.push_back(std::make_unique<raw_socket>(s.port));
    hostile.back()->send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    hostile.back()->receive(2s, "\r\n\r\n");
  }
  int answered = 0;
  for (int i = 0; i < 8; ++i) {
    auto c = s.client();
    c.set_read_timeout(2s);
    auto res = c.Get("/health");
    answered += res && res->status == 200 ? 1 : 0;
  }
  CHECK(answered == 8);
}

TEST_CASE("more connections than max_connections: the next one gets 503 and a close",
          "[http][server]") {
  auto cfg = served::small_config();
  cfg.max_connections = 4;
  served s{cfg};
  std::vector<std::unique_ptr<raw_socket>> held;
  for (int i = 0; i < 4; ++i) {
    held.push_back(std::make_unique<raw_socket>(s.port));
    held.back()->send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
    REQUIRE(status_of(held.back()->receive(2s, "\r\n\r\n")) == 200);
  }
  raw_socket extra{s.port};
  auto got = extra.receive(2s, "\r\n\r\n");
  CHECK(status_of(got) == 503);
  CHECK(got.find("max_connections") != std::string::npos);
  held.clear();  // the server notices the closes and takes new connections again
  bool back = false;
  for (int i = 0; i < 50 && !back; ++i) {
    auto res = s.client().Get("/health");
    back = res && res->status == 200;
    if (!back)
      std::this_thread::sleep_for(20ms);
  }
  CHECK(back);
}

TEST_CASE("routes: 401 under /v1/ without the token, then 404 or 405", "[http][server]") {
  served s;
  auto c = s.client();
  auto unknown = c.Get("/v1/no-such-thing");
  REQUIRE(unknown);
  CHECK(unknown->status == 401);
  httplib::Headers auth{{"Authorization", std::string{"Bearer "} + token}};
  auto missing = c.Get("/v1/no-such-thing", auth);
  REQUIRE(missing);
  CHECK(missing->status == 404);
  CHECK(missing->body.find("no such route: GET /v1/no-such-thing") != std::string::npos);
  auto wrong = c.Delete("/v1/echo", auth);
  REQUIRE(wrong);
  CHECK(wrong->status == 405);
  CHECK(wrong->get_header_value("Allow") == "POST, GET");
  auto outside = c.Get("/nothing/here");
  REQUIRE(outside);
  CHECK(outside->status == 404);
}

TEST_CASE("the client's X-Request-Id is echoed", "[http][server]") {
  served s;
  auto c = s.client();
  auto res = c.Get("/health", httplib::Headers{{"X-Request-Id", "abc-123"}});
  REQUIRE(res);
  CHECK(res->get_header_value("X-Request-Id") == "abc-123");
  auto fresh = c.Get("/health");
  REQUIRE(fresh);
  CHECK_FALSE(fresh->get_header_value("X-Request-Id").empty());
}

TEST_CASE("stop closes idle kept-alive connections at once", "[http][server]") {
  auto cfg = served::small_config();
  cfg.read_timeout = 30s;  // an idle connection would otherwise stay for 30 s
  auto s = std::make_unique<served>(cfg);
  raw_socket idle{s->port};
  idle.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
  REQUIRE(status_of(idle.receive(2s, "\r\n\r\n")) == 200);
  const auto start = std::chrono::steady_clock::now();
  s->server.stop();
  CHECK(std::chrono::steady_clock::now() - start < 5s);
  idle.receive(2s);
  CHECK(idle.closed_by_peer());
}
