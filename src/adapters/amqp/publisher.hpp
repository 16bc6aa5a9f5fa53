#pragma once

// Publishes persistent messages to an exchange with publisher confirms, tracked per message
// by its confirm sequence number. Blocking, one owner thread (like `connection`). Used for
// outbound events, by tests and by the benchmarks.

#include "adapters/amqp/connection.hpp"

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchboard::adapters::amqp {

/// Properties of one published message.
struct outgoing_message {
  std::string routing_key;  ///< ignored by fanout exchanges
  std::string content_type = "application/vnd.masstransit+json";
  std::string message_id;  ///< AMQP `message-id` property; "" = none
  std::vector<std::pair<std::string, std::string>> headers;  ///< string headers
};

class amqp_publisher {
public:
  /// Connects and turns on publisher confirms. `max_unconfirmed` bounds the messages in
  /// flight: `publish` waits for confirms when that many are outstanding.
  explicit amqp_publisher(const connection_params& params, std::size_t max_unconfirmed = 4096);

  /// Publishes one persistent (delivery mode 2) message and returns its sequence number
  /// (1, 2, ... per publisher). Throws amqp_error if the connection has failed; messages
  /// not confirmed by then are in `failed()`.
  std::uint64_t publish(const std::string& exchange, std::string_view body,
                        const outgoing_message& msg = {});

  /// Waits until every message published so far is confirmed (acked or nacked) or the
  /// timeout passes; true if none is outstanding. A connection failure ends the wait: the
  /// unconfirmed messages move to `failed()` and `error()` says why.
  bool wait_for_confirms(std::chrono::milliseconds timeout);

  std::uint64_t acked() const noexcept { return acked_; }
  /// Sequence numbers the broker nacked or that were lost with the connection.
  const std::vector<std::uint64_t>& failed() const noexcept { return failed_; }
  std::size_t unconfirmed() const noexcept { return unconfirmed_.size(); }
  const std::string& error() const noexcept { return error_; }

  /// The underlying connection (channel 1), e.g. to declare topology.
  connection& raw() noexcept { return conn_; }

private:
  /// Reads confirms for at most `timeout` (0 = only what has arrived); false if none came.
  bool read_confirms(std::chrono::milliseconds timeout);
  void fail_all(const std::string& why);

  connection conn_;
  std::size_t max_unconfirmed_;
  std::uint64_t next_seq_ = 1;
  std::set<std::uint64_t> unconfirmed_;
  std::vector<std::uint64_t> failed_;
  std::uint64_t acked_ = 0;
  std::string error_;
};

}  // namespace switchboard::adapters::amqp
