// The only translation unit that includes Boost.Beast and Asio (they are heavy to compile).

#include "adapters/http/http_listener.hpp"

#include "adapters/http/content_coding.hpp"
#include "adapters/http/elastic_pool.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

namespace switchboard::adapters::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = net::ip::tcp;

std::string wire_request::header(std::string_view name) const {
  for (const auto& [n, v] : headers)
    if (beast::iequals(n, name))
      return v;
  return {};
}

namespace {

wire_reply error_answer(int status, const std::string& why, bool close = true) {
  wire_reply r;
  r.status = status;
  r.body = boost::json::serialize(boost::json::object{{"error", why}}) + "\n";
  r.close = close;
  return r;
}

std::string why_of(const wire_reply& r) {
  if (r.status < 400)
    return {};
  boost::system::error_code ec;
  auto v = boost::json::parse(r.body, ec);
  if (!ec && v.is_object())
    if (const auto* e = v.as_object().if_contains("error"); e != nullptr && e->is_string())
      return std::string{e->as_string().data(), e->as_string().size()};
  return {};
}

/// The client's id when it is short and plain (it goes into logs), else a new one.
std::string request_id_for(const std::string& offered) {
  const bool usable = !offered.empty() && offered.size() <= 128 &&
                      std::all_of(offered.begin(), offered.end(), [](unsigned char c) {
                        return std::isalnum(c) != 0 || c == '-' || c == '_' || c == '.' ||
                               c == ':' || c == '/' || c == '+' || c == '=';
                      });
  if (usable)
    return offered;
  static std::atomic<std::uint64_t> next{0};
  static const std::uint64_t boot =
      static_cast<std::uint64_t>(std::chrono::system_clock::now().time_since_epoch().count());
  char text[40];
  std::snprintf(text, sizeof text, "%08llx-%llu",
                static_cast<unsigned long long>(boot & 0xffffffffULL),
                static_cast<unsigned long long>(++next));
  return text;
}

class session;

}  // namespace

struct http_listener::state {
  state(listener_options o, request_handler& h)
      : options(std::move(o)),
        handler(h),
        acceptor(io),
        retry_accept(io),
        workers(options.worker_threads, 4) {}

  listener_options options;
  request_handler& handler;
  net::io_context io{1};
  tcp::acceptor acceptor;
  net::steady_timer retry_accept;  // after EMFILE and the like
  elastic_pool workers;            // handlers; they may block
  std::thread io_thread;
  bool started = false;

  // On the I/O thread only.
  std::set<std::shared_ptr<session>> sessions;
  bool stopping = false;

  // Read from any thread.
  std::atomic<std::size_t> open{0};
  std::mutex mu;
  std::condition_variable drained;

  void accept();
  void on_closed(const std::shared_ptr<session>& s);
};

namespace {

/// One connection: reads a request, screens it, reads its body, hands it to a worker, writes the
/// answer, then the next request (pipelined ones are already in `buffer_`).
class session : public std::enable_shared_from_this<session> {
public:
  session(tcp::socket socket, http_listener::state& st)
      : st_(st), stream_(std::move(socket)), buffer_(st.options.max_header_bytes + 64 * 1024) {
    boost::system::error_code ec;
    const auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec)
      peer_ = ep.address().to_string() + ":" + std::to_string(ep.port());
    stream_.socket().set_option(tcp::no_delay(true), ec);
  }

  void start() { read_header(); }

  /// Stop: close now unless a request is being handled or answered (that one closes after).
  void close_if_idle() {
    if (phase_ == phase::idle || phase_ == phase::body)
      close();
  }

  void close() {
    if (closed_)
      return;
    closed_ = true;
    boost::system::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.close();
    st_.on_closed(shared_from_this());
  }

private:
  void read_header() {
    if (closed_)
      return;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(st_.options.max_header_bytes));
    parser_->body_limit(st_.options.max_body_bytes);
    phase_ = phase::idle;
    if (st_.stopping)
      return close();
    stream_.expires_after(st_.options.read_timeout);
    bhttp::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    if (closed_)
      return;
    if (ec) {
      // A client that closed between requests, or never finished its header: nothing to say.
      if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
          ec == net::error::eof || ec == beast::error::timeout ||
          ec == net::error::operation_aborted || ec == net::error::connection_reset)
        return close();
      phase_ = phase::handling;
      head_ = {};
      head_.peer = peer_;
      started_ = std::chrono::steady_clock::now();
      if (ec == bhttp::error::header_limit)
        return answer(error_answer(431,
                                   "request header too large: the request line and headers "
                                   "may hold at most " +
                                       std::to_string(st_.options.max_header_bytes) +
                                       " bytes (http.max_header_bytes)"));
      if (ec == bhttp::error::body_limit)  // a Content-Length over the limit: known at once
        return answer(too_large());
      if (ec == bhttp::error::bad_transfer_encoding || ec == bhttp::error::bad_content_length ||
          ec == bhttp::error::multiple_content_length)
        return answer(error_answer(
            400, "bad message framing (" + ec.message() +
                     "): send the body with one Content-Length, or with Transfer-Encoding: "
                     "chunked, not both"));
      return answer(error_answer(400, "malformed HTTP request: " + ec.message()));
    }
    phase_ = phase::body;
    started_ = std::chrono::steady_clock::now();
    ++served_;
    const auto& req = parser_->get();
    head_ = {};
    head_.method = std::string{req.method_string()};
    head_.target = std::string{req.target()};
    head_.peer = peer_;
    for (const auto& f : req)
      head_.headers.emplace_back(std::string{f.name_string()}, std::string{f.value()});
    head_.request_id = request_id_for(head_.header("X-Request-Id"));
    keep_alive_ = req.keep_alive();

    if (const auto te = head_.header("Transfer-Encoding"); !te.empty() && !parser_->chunked())
      return answer(error_answer(501, "Transfer-Encoding '" + te +
                                          "' is not supported: send the body with "
                                          "Content-Length, or chunked"));
    const auto coding = parse_content_coding(head_.header("Content-Encoding"));
    if (!coding)
      return answer(error_answer(
          415, "Content-Encoding '" + head_.header("Content-Encoding") +
                   "' is not supported: send the body as is, or as gzip, deflate or br"));
    coding_ = *coding;
    if (auto early = st_.handler.screen(head_)) {
      early->close = true;  // the body, if any, stays unread
      return answer(std::move(*early));
    }
    if (parser_->is_done())
      return dispatch();
    if (beast::iequals(head_.header("Expect"), "100-continue")) {
      auto cont = std::make_shared<bhttp::response<bhttp::empty_body>>(bhttp::status::continue_,
                                                                       req.version());
      stream_.expires_after(st_.options.write_timeout);
      return bhttp::async_write(
          stream_, *cont, [self = shared_from_this(), cont](beast::error_code ec2, std::size_t) {
            if (ec2)
              return self->close();
            self->read_body();
          });
    }
    read_body();
  }

  /// Reads the body in pieces, each within read_timeout: a slow body that keeps coming is fine.
  void read_body() {
    if (closed_)
      return;
    if (st_.stopping)
      return answer(error_answer(503, "the server is stopping; send the request again later"));
    stream_.expires_after(st_.options.read_timeout);
    bhttp::async_read_some(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_body(ec); });
  }

  void on_body(beast::error_code ec) {
    if (closed_)
      return;
    if (ec == bhttp::error::body_limit)
      return answer(too_large());
    if (ec) {
      st_.handler.answered(head_, 0, elapsed(), "the body did not arrive: " + ec.message());
      return close();
    }
    if (!parser_->is_done())
      return read_body();
    dispatch();
  }

  void dispatch() {
    phase_ = phase::handling;
    head_.body = parser_->release().body();
    auto self = shared_from_this();
    st_.workers.enqueue([self, request = std::move(head_)]() mutable {
      wire_reply reply;
      auto inflated = inflate_body(self->coding_, request.body, self->st_.options.max_body_bytes);
      if (inflated.too_large) {
        reply = error_answer(413, "request body too large once decoded (Content-Encoding " +
                                      request.header("Content-Encoding") + "): at most " +
                                      std::to_string(self->st_.options.max_body_bytes) +
                                      " bytes (http.max_body_bytes)");
      } else if (!inflated.error.empty()) {
        reply = error_answer(400, "the body is not valid " + request.header("Content-Encoding") +
                                      " data: " + inflated.error);
      } else {
        request.body = std::move(inflated.body);
        try {
          reply = self->st_.handler.handle(request);
        } catch (const std::exception& e) {
          spdlog::error("http: {} {} failed: {}", request.method, request.target, e.what());
          reply = error_answer(500, "internal error; see the server log", false);
        }
      }
      request.body.clear();
      net::post(self->stream_.get_executor(),
                [self, request = std::move(request), reply = std::move(reply)]() mutable {
                  self->head_ = std::move(request);
                  self->answer(std::move(reply));
                });
    });
  }

  void answer(wire_reply reply) {
    if (closed_)
      return;
    phase_ = phase::writing;
    const bool keep = keep_alive_ && !reply.close && !st_.stopping &&
                      served_ < st_.options.keep_alive_max_count && parser_ && parser_->is_done();
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>();
    res->version(11);
    res->result(static_cast<unsigned>(reply.status));
    res->set(bhttp::field::server, "switchboard");
    if (!reply.body.empty())
      res->set(bhttp::field::content_type, reply.content_type);
    for (const auto& [n, v] : reply.headers)
      res->insert(n, v);
    if (!head_.request_id.empty())
      res->set("X-Request-Id", head_.request_id);
    res->body() = std::move(reply.body);
    res->keep_alive(keep);
    res->prepare_payload();
    status_ = reply.status;
    why_ = why_of(wire_reply{reply.status, res->body(), {}, {}, false});
    stream_.expires_after(st_.options.write_timeout);
    bhttp::async_write(stream_, *res,
                       [self = shared_from_this(), res, keep](beast::error_code ec, std::size_t) {
                         self->st_.handler.answered(
                             self->head_, self->status_, self->elapsed(),
                             ec ? "the answer could not be sent: " + ec.message() : self->why_);
                         if (ec || !keep)
                           return self->close();
                         self->read_header();
                       });
  }

  wire_reply too_large() const {
    return error_answer(413, "request body too large: at most " +
                                 std::to_string(st_.options.max_body_bytes) +
                                 " bytes (http.max_body_bytes)");
  }

  std::chrono::microseconds elapsed() const {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                 started_);
  }

  http_listener::state& st_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  wire_request head_;
  content_coding coding_ = content_coding::identity;
  std::string peer_;
  std::chrono::steady_clock::time_point started_{};
  std::size_t served_ = 0;
  int status_ = 0;
  std::string why_;
  bool keep_alive_ = true;
  /// idle: waiting for a header; body: reading one; handling: on a worker; writing: answering.
  enum class phase { idle, body, handling, writing } phase_ = phase::idle;
  bool closed_ = false;
};

}  // namespace

void http_listener::state::accept() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (stopping)
      return;
    if (ec) {
      if (ec == net::error::operation_aborted)
        return;
      // Out of descriptors and the like: try again shortly rather than spin or give up.
      spdlog::warn("http: cannot accept a connection: {}; trying again in 100 ms", ec.message());
      retry_accept.expires_after(std::chrono::milliseconds(100));
      retry_accept.async_wait([this](beast::error_code e) {
        if (!e && !stopping)
          accept();
      });
      return;
    }
    if (sessions.size() >= options.max_connections) {
      static constexpr char full[] =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
          "Retry-After: 1\r\nConnection: close\r\nContent-Length: 85\r\n\r\n"
          "{\"error\":\"too many connections (http.max_connections); connect again shortly\"}\n";
      boost::system::error_code ignored;
      socket.non_blocking(true, ignored);
      socket.send(net::buffer(full, sizeof full - 1), 0, ignored);
      socket.close(ignored);
    } else {
      auto s = std::make_shared<session>(std::move(socket), *this);
      sessions.insert(s);
      open.store(sessions.size());
      s->start();
    }
    accept();
  });
}

void http_listener::state::on_closed(const std::shared_ptr<session>& s) {
  sessions.erase(s);
  open.store(sessions.size());
  if (sessions.empty() && stopping) {
    std::lock_guard<std::mutex> guard{mu};
    drained.notify_all();
  }
}

http_listener::http_listener(listener_options options, request_handler& handler)
    : state_(std::make_unique<state>(std::move(options), handler)) {}

http_listener::~http_listener() { stop(); }

std::uint16_t http_listener::start() {
  auto& st = *state_;
  const auto& o = st.options;
  auto fail = [&o](const std::string& why) {
    return std::runtime_error("cannot listen on " + o.host + ":" + std::to_string(o.port) + ": " +
                              why + " (pick a free port with --listen HOST:PORT, or :0 for any)");
  };
  boost::system::error_code ec;
  const auto address = net::ip::make_address(o.host, ec);
  if (ec)
    throw fail("'" + o.host + "' is not an IP address");
  const tcp::endpoint endpoint{address, o.port};
  st.acceptor.open(endpoint.protocol(), ec);
  if (!ec)
    st.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec)
    st.acceptor.bind(endpoint, ec);
  if (!ec)
    st.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    st.acceptor.close();
    throw fail(ec.message());
  }
  const auto port = st.acceptor.local_endpoint().port();
  st.accept();
  st.started = true;
  st.io_thread = std::thread([&st] { st.io.run(); });
  return port;
}

void http_listener::stop() {
  auto& st = *state_;
  if (!st.started)
    return;
  st.started = false;
  net::post(st.io, [&st] {
    st.stopping = true;
    boost::system::error_code ignored;
    st.acceptor.close(ignored);
    st.retry_accept.cancel();
    auto sessions = st.sessions;  // close() erases from the set
    for (const auto& s : sessions)
      s->close_if_idle();
    if (st.sessions.empty()) {
      std::lock_guard<std::mutex> guard{st.mu};
      st.drained.notify_all();
    }
  });
  {
    // Requests in progress finish and answer; their handlers are bounded by their own
    // timeouts, the answer by write_timeout.
    std::unique_lock<std::mutex> lock{st.mu};
    st.drained.wait(lock, [&st] { return st.open.load() == 0; });
  }
  st.io.stop();
  st.io_thread.join();
  st.workers.shutdown();
}

std::size_t http_listener::connections() const { return state_->open.load(); }

}  // namespace switchboard::adapters::http
