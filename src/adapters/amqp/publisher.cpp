#include "adapters/amqp/publisher.hpp"

#include <sys/time.h>

namespace switchboard::adapters::amqp {

namespace {
constexpr amqp_channel_t channel = 1;
using clock = std::chrono::steady_clock;
}  // namespace

amqp_publisher::amqp_publisher(const connection_params& params, std::size_t max_unconfirmed)
    : conn_(params, 1), max_unconfirmed_(max_unconfirmed == 0 ? 1 : max_unconfirmed) {
  conn_.confirm_select(channel);
}

std::uint64_t amqp_publisher::publish(const std::string& exchange, std::string_view body,
                                      const outgoing_message& msg) {
  if (!error_.empty())
    throw amqp_error("cannot publish to exchange '" + exchange +
                     "': the connection failed earlier: " + error_);
  // Keep the window bounded: wait until half of it is confirmed.
  if (unconfirmed_.size() >= max_unconfirmed_) {
    while (unconfirmed_.size() > max_unconfirmed_ / 2 && error_.empty())
      read_confirms(std::chrono::milliseconds(1'000));
    if (!error_.empty())
      throw amqp_error("cannot publish to exchange '" + exchange + "': " + error_);
  }
  amqp_basic_properties_t props{};
  props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
  props.delivery_mode = 2;
  if (!msg.content_type.empty()) {
    props._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
    props.content_type = bytes(msg.content_type);
  }
  if (!msg.message_id.empty()) {
    props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
    props.message_id = bytes(msg.message_id);
  }
  std::vector<amqp_table_entry_t> headers;
  for (const auto& [k, v] : msg.headers) {
    amqp_table_entry_t e;
    e.key = bytes(k);
    e.value.kind = AMQP_FIELD_KIND_UTF8;
    e.value.value.bytes = bytes(v);
    headers.push_back(e);
  }
  if (!headers.empty()) {
    props._flags |= AMQP_BASIC_HEADERS_FLAG;
    props.headers.num_entries = static_cast<int>(headers.size());
    props.headers.entries = headers.data();
  }
  const int status = amqp_basic_publish(conn_.state(), channel, bytes(exchange),
                                        bytes(msg.routing_key), 0, 0, &props, bytes(body));
  if (status != AMQP_STATUS_OK) {
    fail_all(std::string("publishing to exchange '") + exchange + "' on " + conn_.params().url() +
             ": " + amqp_error_string2(status));
    throw amqp_error(error_);
  }
  const auto seq = next_seq_++;
  unconfirmed_.insert(seq);
  // Pick up confirms that already arrived, without waiting, so the window rarely fills.
  if (seq % 256 == 0)
    read_confirms(std::chrono::milliseconds(0));
  return seq;
}

bool amqp_publisher::wait_for_confirms(std::chrono::milliseconds timeout) {
  const auto deadline = clock::now() + timeout;
  while (!unconfirmed_.empty() && error_.empty()) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    if (left.count() <= 0)
      break;
    read_confirms(left);
  }
  return unconfirmed_.empty() && error_.empty();
}

bool amqp_publisher::read_confirms(std::chrono::milliseconds timeout) {
  bool any = false;
  for (;;) {
    timeval tv{static_cast<time_t>(timeout.count() / 1000),
               static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
    // Decoded frames live in the connection's pool until released: without this a long-lived
    // publisher grows by every confirm it ever read (nothing from earlier frames is kept).
    amqp_maybe_release_buffers(conn_.state());
    amqp_frame_t frame;
    const int status = amqp_simple_wait_frame_noblock(conn_.state(), &frame, &tv);
    if (status == AMQP_STATUS_TIMEOUT)
      return any;
    if (status != AMQP_STATUS_OK) {
      conn_.mark_broken();
      fail_all(std::string("waiting for publisher confirms on ") + conn_.params().url() + ": " +
               amqp_error_string2(status));
      return any;
    }
    timeout = std::chrono::milliseconds(0);  // after the first frame, only what is there
    if (frame.frame_type != AMQP_FRAME_METHOD)
      continue;
    const auto& m = frame.payload.method;
    if (m.id == AMQP_BASIC_ACK_METHOD || m.id == AMQP_BASIC_NACK_METHOD) {
      std::uint64_t tag = 0;
      bool multiple = false;
      const bool ack = m.id == AMQP_BASIC_ACK_METHOD;
      if (ack) {
        const auto* a = static_cast<const amqp_basic_ack_t*>(m.decoded);
        tag = a->delivery_tag;
        multiple = a->multiple;
      } else {
        const auto* n = static_cast<const amqp_basic_nack_t*>(m.decoded);
        tag = n->delivery_tag;
        multiple = n->multiple;
      }
      auto begin = multiple ? unconfirmed_.begin() : unconfirmed_.find(tag);
      auto end = multiple ? unconfirmed_.upper_bound(tag)
                          : (begin == unconfirmed_.end() ? begin : std::next(begin));
      for (auto it = begin; it != end; ++it) {
        if (ack)
          ++acked_;
        else
          failed_.push_back(*it);
      }
      unconfirmed_.erase(begin, end);
      any = true;
    } else if (m.id == AMQP_CHANNEL_CLOSE_METHOD || m.id == AMQP_CONNECTION_CLOSE_METHOD) {
      amqp_rpc_reply_t r{};
      r.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION;
      r.reply = m;
      conn_.mark_broken();
      fail_all("publishing on " + conn_.params().url() + ": " + reply_text(r));
      return any;
    }
  }
}

void amqp_publisher::fail_all(const std::string& why) {
  conn_.mark_broken();
  if (error_.empty())
    error_ = why;
  failed_.insert(failed_.end(), unconfirmed_.begin(), unconfirmed_.end());
  unconfirmed_.clear();
}

}  // namespace switchboard::adapters::amqp
