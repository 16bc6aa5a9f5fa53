#pragma once

// A blocking rabbitmq-c connection with one owner thread: connect + login + channels in the
// constructor, a polite close in the destructor, and every failure as an `amqp_error` whose
// text says what was attempted, against which broker, and what the broker or library said.

#include <amqp.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchboard::adapters::amqp {

/// Where and how to connect.
struct connection_params {
  std::string host = "127.0.0.1";
  std::uint16_t port = 5672;
  std::string vhost = "/";
  std::string username = "guest";
  std::string password = "guest";
  std::chrono::seconds heartbeat{10};             ///< 0 = off
  std::chrono::milliseconds rpc_timeout{15'000};  ///< connect and every synchronous call
  std::string connection_name;                    ///< shown by `rabbitmqctl list_connections`

  /// "amqp://guest@127.0.0.1:5672/" (never the password): names the broker in errors.
  std::string url() const;
};

/// A failure talking to the broker. `reply_code` is the AMQP code when the broker closed the
/// channel or connection (e.g. 404 NOT_FOUND), else 0.
class amqp_error : public std::runtime_error {
public:
  amqp_error(const std::string& what, int reply_code = 0)
      : std::runtime_error(what), reply_code_(reply_code) {}
  int reply_code() const noexcept { return reply_code_; }

private:
  int reply_code_;
};

/// Readable text of a reply: "server closed the channel: 404 NOT_FOUND - no queue 'x' in
/// vhost '/'", "library error: a socket error occurred", ...
std::string reply_text(const amqp_rpc_reply_t& reply);

/// `amqp_bytes_t` viewing a string (no copy; the string must outlive the call).
inline amqp_bytes_t bytes(std::string_view s) {
  return amqp_bytes_t{s.size(), const_cast<char*>(s.data())};
}
inline std::string_view view(const amqp_bytes_t& b) {
  return {static_cast<const char*>(b.bytes), b.len};
}

/// A message fetched with `basic_get` (for tests and tools), headers as text.
struct fetched_message {
  std::string body;
  std::string content_type;
  std::string message_id;
  bool persistent = false;
  std::vector<std::pair<std::string, std::string>> headers;  ///< string-valued headers only
  std::optional<std::string> header(std::string_view name) const;
};

class connection {
public:
  /// Connects, logs in and opens `channels` channels (numbered 1..channels). Throws
  /// amqp_error naming the broker and the failing step.
  explicit connection(const connection_params& params, int channels = 1);
  /// Closes politely unless the connection is already known to be broken.
  ~connection();

  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  amqp_connection_state_t state() const noexcept { return state_; }
  int fd() const noexcept;
  const connection_params& params() const noexcept { return params_; }

  /// Throws amqp_error("<what>: <reply text>") unless `reply` is normal; marks the connection
  /// broken when the broker closed it or the socket failed.
  void check(const amqp_rpc_reply_t& reply, std::string_view what);
  /// The same for rabbitmq-c's integer status codes (AMQP_STATUS_*).
  void check_status(int status, std::string_view what);
  /// The reply of the last synchronous call (e.g. after amqp_queue_declare), checked.
  void check_last(std::string_view what) { check(amqp_get_rpc_reply(state_), what); }

  /// After a failure: the destructor skips the polite close (it would only wait).
  void mark_broken() noexcept { broken_ = true; }
  bool broken() const noexcept { return broken_; }

  // -- topology and small synchronous helpers (channel 1 unless given) --
  void declare_fanout_exchange(const std::string& name, bool passive, amqp_channel_t ch = 1);
  /// Declares (or checks) a durable queue; returns its ready message count.
  std::uint32_t declare_queue(const std::string& name, bool passive, amqp_channel_t ch = 1);
  void bind_queue(const std::string& queue, const std::string& exchange, amqp_channel_t ch = 1);
  void purge_queue(const std::string& queue, amqp_channel_t ch = 1);
  void delete_queue(const std::string& queue, amqp_channel_t ch = 1);
  void delete_exchange(const std::string& name, amqp_channel_t ch = 1);
  void qos(std::uint16_t prefetch, amqp_channel_t ch = 1);
  void confirm_select(amqp_channel_t ch);
  /// Starts consuming (manual acks); returns the consumer tag.
  std::string consume(const std::string& queue, amqp_channel_t ch = 1);
  void ack(std::uint64_t delivery_tag, bool multiple, amqp_channel_t ch = 1);
  /// One message from `queue` (acknowledged at once), or nothing if the queue is empty.
  std::optional<fetched_message> basic_get(const std::string& queue, amqp_channel_t ch = 1);

private:
  void close_politely() noexcept;

  connection_params params_;
  amqp_connection_state_t state_ = nullptr;
  int channels_ = 0;
  bool broken_ = false;
};

}  // namespace switchboard::adapters::amqp
