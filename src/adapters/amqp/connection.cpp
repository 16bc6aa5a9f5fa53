#include "adapters/amqp/connection.hpp"

#include <amqp_tcp_socket.h>

#include <sys/time.h>

namespace switchboard::adapters::amqp {

namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
  return tv;
}

std::string method_name(std::uint16_t class_id, std::uint16_t method_id) {
  if (class_id == 0 && method_id == 0)
    return {};
  const char* name =
      amqp_method_name((static_cast<amqp_method_number_t>(class_id) << 16) | method_id);
  return name != nullptr ? std::string(" (in reply to ") + name + ")" : std::string{};
}

int reply_code_of(const amqp_rpc_reply_t& r) {
  if (r.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION || r.reply.decoded == nullptr)
    return 0;
  if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD)
    return static_cast<const amqp_connection_close_t*>(r.reply.decoded)->reply_code;
  if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD)
    return static_cast<const amqp_channel_close_t*>(r.reply.decoded)->reply_code;
  return 0;
}

}  // namespace

std::string connection_params::url() const {
  return "amqp://" + username + "@" + host + ":" + std::to_string(port) +
         (vhost == "/" ? std::string("/") : "/" + vhost);
}

std::string reply_text(const amqp_rpc_reply_t& r) {
  switch (r.reply_type) {
    case AMQP_RESPONSE_NORMAL: return "ok";
    case AMQP_RESPONSE_NONE: return "no reply from the broker (an RPC reply was expected)";
    case AMQP_RESPONSE_LIBRARY_EXCEPTION: return std::string(amqp_error_string2(r.library_error));
    case AMQP_RESPONSE_SERVER_EXCEPTION: break;
  }
  if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD && r.reply.decoded != nullptr) {
    const auto* m = static_cast<const amqp_connection_close_t*>(r.reply.decoded);
    return "the broker closed the connection: " + std::to_string(m->reply_code) + " " +
           std::string(view(m->reply_text)) + method_name(m->class_id, m->method_id);
  }
  if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD && r.reply.decoded != nullptr) {
    const auto* m = static_cast<const amqp_channel_close_t*>(r.reply.decoded);
    return "the broker closed the channel: " + std::to_string(m->reply_code) + " " +
           std::string(view(m->reply_text)) + method_name(m->class_id, m->method_id);
  }
  const char* name = amqp_method_name(r.reply.id);
  return std::string("unexpected reply from the broker: ") + (name != nullptr ? name : "?");
}

std::optional<std::string> fetched_message::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k == name)
      return v;
  return std::nullopt;
}

connection::connection(const connection_params& params, int channels) : params_(params) {
  state_ = amqp_new_connection();
  if (state_ == nullptr)
    throw amqp_error("cannot allocate an AMQP connection (out of memory)");
  try {
    amqp_socket_t* socket = amqp_tcp_socket_new(state_);
    if (socket == nullptr)
      throw amqp_error("cannot create a TCP socket for " + params_.url());
    const timeval timeout = to_timeval(params_.rpc_timeout);
    amqp_set_handshake_timeout(state_, &timeout);
    amqp_set_rpc_timeout(state_, &timeout);
    if (int status = amqp_socket_open_noblock(socket, params_.host.c_str(), params_.port, &timeout);
        status != AMQP_STATUS_OK) {
      broken_ = true;
      throw amqp_error("cannot connect to " + params_.url() + ": " + amqp_error_string2(status) +
                       " (is the broker running and the address right?)");
    }
    amqp_table_entry_t entry;
    entry.key = amqp_cstring_bytes("connection_name");
    entry.value.kind = AMQP_FIELD_KIND_UTF8;
    entry.value.value.bytes = bytes(params_.connection_name);
    amqp_table_t props{params_.connection_name.empty() ? 0 : 1, &entry};
    auto login = amqp_login_with_properties(
        state_, params_.vhost.c_str(), 0, 131072, static_cast<int>(params_.heartbeat.count()),
        &props, AMQP_SASL_METHOD_PLAIN, params_.username.c_str(), params_.password.c_str());
    if (login.reply_type != AMQP_RESPONSE_NORMAL) {
      broken_ = true;
      std::string hint;
      if (reply_code_of(login) == AMQP_ACCESS_REFUSED ||
          (login.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
           login.library_error == AMQP_STATUS_CONNECTION_CLOSED))
        hint =
            " (the broker closed the connection during login: check the user name, the "
            "password in SWITCHBOARD_AMQP_PASSWORD and the user's access to vhost '" +
            params_.vhost + "')";
      throw amqp_error("cannot log in to " + params_.url() + ": " + reply_text(login) + hint,
                       reply_code_of(login));
    }
    for (int ch = 1; ch <= channels; ++ch) {
      amqp_channel_open(state_, static_cast<amqp_channel_t>(ch));
      check_last("opening channel " + std::to_string(ch));
      channels_ = ch;
    }
  } catch (...) {
    if (!broken_)
      close_politely();
    amqp_destroy_connection(state_);
    throw;
  }
}

connection::~connection() {
  if (!broken_)
    close_politely();
  amqp_destroy_connection(state_);
}

void connection::close_politely() noexcept {
  // A short timeout: a hung broker must not hold up a reconnect or a stop.
  const timeval timeout = to_timeval(std::chrono::milliseconds(2'000));
  amqp_set_rpc_timeout(state_, &timeout);
  amqp_connection_close(state_, AMQP_REPLY_SUCCESS);
}

int connection::fd() const noexcept { return amqp_get_sockfd(state_); }

void connection::check(const amqp_rpc_reply_t& reply, std::string_view what) {
  if (reply.reply_type == AMQP_RESPONSE_NORMAL)
    return;
  // After a channel close the channel is unusable; after anything else the connection is.
  // The owner drops the connection either way, so skip the polite close.
  broken_ = true;
  throw amqp_error(std::string(what) + " on " + params_.url() + ": " + reply_text(reply),
                   reply_code_of(reply));
}

void connection::check_status(int status, std::string_view what) {
  if (status == AMQP_STATUS_OK)
    return;
  broken_ = true;
  throw amqp_error(std::string(what) + " on " + params_.url() + ": " + amqp_error_string2(status));
}

void connection::declare_fanout_exchange(const std::string& name, bool passive, amqp_channel_t ch) {
  amqp_exchange_declare(state_, ch, bytes(name), amqp_cstring_bytes("fanout"), passive, 1, 0, 0,
                        amqp_empty_table);
  check_last(std::string(passive ? "checking" : "declaring") + " the durable fanout exchange '" +
             name + "'" + (passive ? " (declare is false: it must exist)" : ""));
}

std::uint32_t connection::declare_queue(const std::string& name, bool passive, amqp_channel_t ch) {
  auto* ok = amqp_queue_declare(state_, ch, bytes(name), passive, 1, 0, 0, amqp_empty_table);
  check_last(std::string(passive ? "checking" : "declaring") + " the durable queue '" + name + "'" +
             (passive ? " (declare is false: it must exist)" : ""));
  return ok != nullptr ? ok->message_count : 0;
}

void connection::bind_queue(const std::string& queue, const std::string& exchange,
                            amqp_channel_t ch) {
  amqp_queue_bind(state_, ch, bytes(queue), bytes(exchange), amqp_empty_bytes, amqp_empty_table);
  check_last("binding queue '" + queue + "' to exchange '" + exchange + "'");
}

void connection::purge_queue(const std::string& queue, amqp_channel_t ch) {
  amqp_queue_purge(state_, ch, bytes(queue));
  check_last("purging queue '" + queue + "'");
}

void connection::delete_queue(const std::string& queue, amqp_channel_t ch) {
  amqp_queue_delete(state_, ch, bytes(queue), 0, 0);
  check_last("deleting queue '" + queue + "'");
}

void connection::delete_exchange(const std::string& name, amqp_channel_t ch) {
  amqp_exchange_delete(state_, ch, bytes(name), 0);
  check_last("deleting exchange '" + name + "'");
}

void connection::qos(std::uint16_t prefetch, amqp_channel_t ch) {
  amqp_basic_qos(state_, ch, 0, prefetch, 0);
  check_last("setting prefetch " + std::to_string(prefetch));
}

void connection::confirm_select(amqp_channel_t ch) {
  amqp_confirm_select(state_, ch);
  check_last("enabling publisher confirms");
}

std::string connection::consume(const std::string& queue, amqp_channel_t ch) {
  auto* ok =
      amqp_basic_consume(state_, ch, bytes(queue), amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
  check_last("consuming from queue '" + queue + "'");
  return ok != nullptr ? std::string(view(ok->consumer_tag)) : std::string{};
}

void connection::ack(std::uint64_t delivery_tag, bool multiple, amqp_channel_t ch) {
  check_status(amqp_basic_ack(state_, ch, delivery_tag, multiple ? 1 : 0),
               "acknowledging delivery " + std::to_string(delivery_tag));
}

std::optional<fetched_message> connection::basic_get(const std::string& queue, amqp_channel_t ch) {
  auto reply = amqp_basic_get(state_, ch, bytes(queue), 1);
  check(reply, "getting a message from queue '" + queue + "'");
  if (reply.reply.id == AMQP_BASIC_GET_EMPTY_METHOD)
    return std::nullopt;
  amqp_message_t msg;
  check(amqp_read_message(state_, ch, &msg, 0), "reading a message from queue '" + queue + "'");
  fetched_message out;
  out.body = std::string(view(msg.body));
  const auto& p = msg.properties;
  if (p._flags & AMQP_BASIC_CONTENT_TYPE_FLAG)
    out.content_type = std::string(view(p.content_type));
  if (p._flags & AMQP_BASIC_MESSAGE_ID_FLAG)
    out.message_id = std::string(view(p.message_id));
  out.persistent = (p._flags & AMQP_BASIC_DELIVERY_MODE_FLAG) && p.delivery_mode == 2;
  if (p._flags & AMQP_BASIC_HEADERS_FLAG) {
    for (int i = 0; i < p.headers.num_entries; ++i) {
      const auto& e = p.headers.entries[i];
      if (e.value.kind == AMQP_FIELD_KIND_UTF8 || e.value.kind == AMQP_FIELD_KIND_BYTES)
        out.headers.emplace_back(std::string(view(e.key)), std::string(view(e.value.value.bytes)));
    }
  }
  amqp_destroy_message(&msg);
  return out;
}

}  // namespace switchboard::adapters::amqp
