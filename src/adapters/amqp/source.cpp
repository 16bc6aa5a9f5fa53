#include "adapters/amqp/source.hpp"

#include "adapters/amqp/connection.hpp"
#include "core/ack_window.hpp"
#include "core/masstransit.hpp"
#include "core/policy/backoff.hpp"

#include <spdlog/spdlog.h>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace switchboard::adapters::amqp {

namespace {

using clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr amqp_channel_t consume_channel = 1;
constexpr amqp_channel_t error_channel = 2;  // confirm mode: error-queue copies
/// Deliveries read in a row before completions are looked at again, so that acks interleave
/// with a full prefetch window instead of waiting for it to be read.
constexpr int max_reads_per_turn = 64;
/// Upper bound of one poll(): stop requests and heartbeats are looked at this often anyway.
constexpr auto max_poll = 100ms;

/// A journal answer, queued by whichever thread the journal calls back on; only the source
/// thread talks AMQP.
struct completion {
  std::uint64_t generation = 0;  // the connection the delivery came on
  std::uint64_t delivery_tag = 0;
  bool durable = false;
  std::string error;
};

/// Shared with the callbacks handed to the journal, which may outlive the source.
struct completion_box {
  completion_box() : wake_fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (wake_fd < 0)
      throw std::runtime_error(std::string("amqp source: eventfd failed: ") + std::strerror(errno));
  }
  ~completion_box() { ::close(wake_fd); }
  completion_box(const completion_box&) = delete;
  completion_box& operator=(const completion_box&) = delete;

  void push(completion c) {
    {
      std::lock_guard<std::mutex> guard{mu};
      items.push_back(std::move(c));
    }
    wake();
  }
  void wake() const {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd, &one, sizeof one);
  }
  std::vector<completion> take() {
    std::uint64_t count = 0;
    [[maybe_unused]] auto n = ::read(wake_fd, &count, sizeof count);
    std::lock_guard<std::mutex> guard{mu};
    std::vector<completion> out;
    out.swap(items);
    return out;
  }

  std::mutex mu;
  std::vector<completion> items;
  const int wake_fd;
};

/// Why a connection is given up although the broker is fine (the journal failed, a
/// publish_fn threw): reconnecting makes the broker redeliver.
class journal_failure : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

}  // namespace

struct amqp_source::impl {
  impl(amqp_source_config c, std::string password, codec_limits l, publish_fn p,
       std::chrono::milliseconds st)
      : cfg(std::move(c)),
        limits(l),
        publish(std::move(p)),
        stop_timeout(st),
        box(std::make_shared<completion_box>()) {
    params.host = cfg.host;
    params.port = cfg.port;
    params.vhost = cfg.vhost;
    params.username = cfg.username;
    params.password = std::move(password);
    params.heartbeat = cfg.heartbeat;
    params.connection_name = "switchboard source " + cfg.name;
    error_queue = cfg.error_queue.empty() ? cfg.queue + "_error" : cfg.error_queue;
  }

  // -- configuration (read-only once started) --
  amqp_source_config cfg;
  codec_limits limits;
  publish_fn publish;
  std::chrono::milliseconds stop_timeout;
  connection_params params;
  std::string error_queue;

  std::shared_ptr<completion_box> box;
  std::atomic<bool> stop_requested{false};
  std::thread thread;

  mutable std::mutex stats_mu;
  amqp_source_stats counters;

  // -- source-thread state, per connection --
  std::uint64_t generation = 0;
  core::ack_window window;                              // deliveries not yet acknowledged
  std::size_t awaiting = 0;                             // handed on, not yet done
  std::map<std::uint64_t, std::uint64_t> error_copies;  // publish seq -> delivery tag
  std::uint64_t next_publish_seq = 1;
  bool acked_on_this_connection = false;

  template <class F>
  void update(F f) {
    std::lock_guard<std::mutex> guard{stats_mu};
    f(counters);
  }

  void run();
  void serve(connection& conn);
  void setup_topology(connection& conn);
  void read_frames(connection& conn, bool stopping);
  void on_delivery(connection& conn, amqp_envelope_t& env, bool stopping);
  void on_frame(connection& conn, const amqp_frame_t& frame);
  void send_to_error_queue(connection& conn, amqp_envelope_t& env, const std::string& reason);
  void mark_done(std::uint64_t tag);
  void take_completions();
  void flush_acks(connection& conn);
  void sleep_backoff(std::chrono::milliseconds delay);
  /// Without jitter, as it always was: adding one would change when sources reconnect.
  std::chrono::milliseconds reconnect_delay(std::size_t nth) const {
    return core::doubling_delay(cfg.reconnect_initial, cfg.reconnect_max, nth);
  }
};

// -- the thread --------------------------------------------------------------------------------

void amqp_source::impl::run() {
  std::size_t failures = 0;  // in a row: the reconnect backoff doubles with each
  bool first = true;
  while (!stop_requested.load()) {
    try {
      connection conn(params, 2);
      ++generation;
      window.clear();
      awaiting = 0;
      error_copies.clear();
      next_publish_seq = 1;
      acked_on_this_connection = false;
      setup_topology(conn);
      update([&](amqp_source_stats& s) {
        s.connected = true;
        if (!first)
          ++s.reconnects;
      });
      spdlog::info("amqp source '{}': consuming queue '{}' on {}", cfg.name, cfg.queue,
                   params.url());
      first = false;
      serve(conn);
      update([](amqp_source_stats& s) { s.connected = false; });
      if (stop_requested.load())
        return;  // `conn` closes politely: unacknowledged deliveries go back to the queue
    } catch (const std::exception& e) {
      if (acked_on_this_connection)
        failures = 0;  // it worked for a while: start the backoff afresh
      const std::string what = e.what();
      update([&](amqp_source_stats& s) {
        s.connected = false;
        s.last_error = what;
      });
      const auto delay = reconnect_delay(failures + 1);
      spdlog::warn("amqp source '{}': {}; reconnecting in {} ms", cfg.name, what, delay.count());
    }
    sleep_backoff(reconnect_delay(++failures));
    acked_on_this_connection = false;
  }
}

void amqp_source::impl::sleep_backoff(std::chrono::milliseconds delay) {
  const auto until = clock::now() + delay;
  while (!stop_requested.load()) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - clock::now());
    if (left <= 0ms)
      return;
    pollfd p{box->wake_fd, POLLIN, 0};
    ::poll(&p, 1, static_cast<int>(left.count()));
    box->take();  // answers for the dropped connection: nothing to ack there any more
  }
}

void amqp_source::impl::setup_topology(connection& conn) {
  const bool passive = !cfg.declare;
  for (const auto& ex : cfg.exchanges)
    conn.declare_fanout_exchange(ex, passive);
  conn.declare_queue(cfg.queue, passive);
  conn.declare_queue(error_queue, passive);
  if (!passive)
    for (const auto& ex : cfg.exchanges)
      conn.bind_queue(cfg.queue, ex);
  conn.confirm_select(error_channel);
  conn.qos(cfg.prefetch, consume_channel);
  conn.consume(cfg.queue, consume_channel);
}

void amqp_source::impl::serve(connection& conn) {
  const int fd = conn.fd();
  bool stopping = false;
  clock::time_point stop_deadline{};
  for (;;) {
    if (!stopping && stop_requested.load()) {
      // Deliveries read from now on stay unacknowledged and go back to the queue on close.
      stopping = true;
      stop_deadline = clock::now() + stop_timeout;
    }
    take_completions();
    flush_acks(conn);
    if (stopping && (awaiting == 0 || clock::now() >= stop_deadline)) {
      if (awaiting != 0)
        spdlog::warn(
            "amqp source '{}': stopping with {} deliveries not yet durable; they stay "
            "in queue '{}' and are redelivered",
            cfg.name, awaiting, cfg.queue);
      return;
    }
    // rabbitmq-c may hold whole frames or bytes already read: poll() would not see those.
    if (!amqp_frames_enqueued(conn.state()) && !amqp_data_in_buffer(conn.state())) {
      auto wait = max_poll;
      if (stopping)
        wait = std::min(wait, std::chrono::duration_cast<std::chrono::milliseconds>(stop_deadline -
                                                                                    clock::now()) +
                                  1ms);
      pollfd p[2] = {{fd, POLLIN, 0}, {box->wake_fd, POLLIN, 0}};
      ::poll(p, 2, static_cast<int>(std::max<std::int64_t>(0, wait.count())));
    }
    // Also when poll() timed out: rabbitmq-c sends and checks heartbeats inside its reads.
    read_frames(conn, stopping);
  }
}

void amqp_source::impl::read_frames(connection& conn, bool stopping) {
  amqp_connection_state_t st = conn.state();
  const timeval zero{0, 0};
  for (int i = 0; i < max_reads_per_turn; ++i) {
    amqp_maybe_release_buffers(st);
    amqp_envelope_t env;
    auto reply = amqp_consume_message(st, &env, &zero, 0);
    if (reply.reply_type == AMQP_RESPONSE_NORMAL) {
      try {
        on_delivery(conn, env, stopping);
      } catch (...) {
        amqp_destroy_envelope(&env);
        throw;
      }
      amqp_destroy_envelope(&env);
      continue;
    }
    if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        reply.library_error == AMQP_STATUS_TIMEOUT)
      return;  // nothing more to read now
    if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
        reply.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
      // Not a delivery (a confirm, a close, a cancel): rabbitmq-c put the frame back.
      amqp_frame_t frame;
      conn.check_status(amqp_simple_wait_frame(st, &frame),
                        "reading from queue '" + cfg.queue + "'");
      on_frame(conn, frame);
      continue;
    }
    conn.check(reply, "consuming from queue '" + cfg.queue + "'");
  }
}

void amqp_source::impl::on_frame(connection& conn, const amqp_frame_t& frame) {
  if (frame.frame_type != AMQP_FRAME_METHOD)
    return;
  const auto& m = frame.payload.method;
  switch (m.id) {
    case AMQP_BASIC_ACK_METHOD: {
      const auto* ack = static_cast<const amqp_basic_ack_t*>(m.decoded);
      auto end = ack->multiple ? error_copies.upper_bound(ack->delivery_tag)
                               : error_copies.find(ack->delivery_tag);
      if (!ack->multiple && end != error_copies.end())
        ++end;
      auto begin = ack->multiple ? error_copies.begin() : error_copies.find(ack->delivery_tag);
      std::uint64_t confirmed = 0;
      for (auto it = begin; it != end; ++it, ++confirmed)
        mark_done(it->second);
      error_copies.erase(begin, end);
      update([&](amqp_source_stats& s) { s.to_error_queue += confirmed; });
      return;
    }
    case AMQP_BASIC_NACK_METHOD:
      throw amqp_error("the broker refused (nack) a copy for error queue '" + error_queue +
                       "'; the original stays unacknowledged and is redelivered");
    case AMQP_BASIC_RETURN_METHOD: {
      // Not expected (no mandatory publishes); read and drop the returned content.
      amqp_message_t msg;
      conn.check(amqp_read_message(conn.state(), frame.channel, &msg, 0),
                 "reading a returned message");
      amqp_destroy_message(&msg);
      return;
    }
    case AMQP_BASIC_CANCEL_METHOD:
      throw amqp_error("the broker cancelled the consumer of queue '" + cfg.queue +
                       "' (was the queue deleted?)");
    case AMQP_CHANNEL_CLOSE_METHOD: {
      amqp_rpc_reply_t r{};
      r.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION;
      r.reply = m;
      conn.check(r, "consuming from queue '" + cfg.queue + "'");
      return;
    }
    case AMQP_CONNECTION_CLOSE_METHOD: {
      amqp_rpc_reply_t r{};
      r.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION;
      r.reply = m;
      conn.check(r, "consuming from queue '" + cfg.queue + "'");
      return;
    }
    default: return;
  }
}

void amqp_source::impl::on_delivery(connection& conn, amqp_envelope_t& env, bool stopping) {
  update([](amqp_source_stats& s) { ++s.delivered; });
  window.delivered(env.delivery_tag);
  if (stopping)
    return;  // not handed on: it is requeued when the connection closes
  const auto& props = env.message.properties;
  const std::string_view content_type =
      (props._flags & AMQP_BASIC_CONTENT_TYPE_FLAG) ? view(props.content_type) : std::string_view{};
  auto decoded = core::decode_amqp_message(view(env.message.body), content_type, cfg, limits);
  ++awaiting;
  if (!decoded) {
    send_to_error_queue(conn, env, decoded.error);
    return;
  }
  std::weak_ptr<completion_box> weak = box;
  const auto gen = generation;
  const auto tag = env.delivery_tag;
  try {
    publish(std::move(*decoded.value), [weak, gen, tag](bool durable, const std::string& error) {
      if (auto b = weak.lock())
        b->push({gen, tag, durable, error});
    });
  } catch (const std::exception& e) {
    throw journal_failure("handing message to the journal failed: " + std::string(e.what()));
  }
}

void amqp_source::impl::send_to_error_queue(connection& conn, amqp_envelope_t& env,
                                            const std::string& reason) {
  spdlog::warn("amqp source '{}': delivery {} from exchange '{}' goes to '{}': {}", cfg.name,
               env.delivery_tag, view(env.exchange), error_queue, reason);
  amqp_basic_properties_t props = env.message.properties;  // keeps content type, ids, ...
  // The original headers, then ours (MassTransit's names where it has one).
  std::vector<amqp_table_entry_t> headers;
  if (props._flags & AMQP_BASIC_HEADERS_FLAG)
    for (int i = 0; i < props.headers.num_entries; ++i)
      headers.push_back(props.headers.entries[i]);
  const std::string mt_reason = "switchboard: " + reason;
  const std::string now = rfc3339_now();
  const std::string host = "switchboard";
  auto add = [&](const char* key, std::string_view value) {
    headers.erase(std::remove_if(headers.begin(), headers.end(),
                                 [&](const amqp_table_entry_t& e) { return view(e.key) == key; }),
                  headers.end());
    amqp_table_entry_t e;
    e.key = amqp_cstring_bytes(key);
    e.value.kind = AMQP_FIELD_KIND_UTF8;
    e.value.value.bytes = bytes(value);
    headers.push_back(e);
  };
  add("MT-Reason", mt_reason);
  add("MT-Fault-Message", reason);
  add("MT-Fault-Timestamp", now);
  add("x-switchboard-source", cfg.name);
  add("x-switchboard-queue", cfg.queue);
  add("x-original-exchange", view(env.exchange));
  add("x-original-routing-key", view(env.routing_key));
  props.headers.num_entries = static_cast<int>(headers.size());
  props.headers.entries = headers.data();
  props._flags |= AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
  props.delivery_mode = 2;  // persistent
  conn.check_status(amqp_basic_publish(conn.state(), error_channel, amqp_empty_bytes,
                                       bytes(error_queue), 0, 0, &props, env.message.body),
                    "publishing to error queue '" + error_queue + "'");
  error_copies.emplace(next_publish_seq++, env.delivery_tag);
}

void amqp_source::impl::mark_done(std::uint64_t tag) {
  if (window.complete(tag))
    --awaiting;
}

void amqp_source::impl::take_completions() {
  for (auto& c : box->take()) {
    if (c.generation != generation)
      continue;  // from a dropped connection: the broker redelivers, the journal dedupes
    if (!c.durable)
      throw journal_failure("the journal did not store message (delivery " +
                            std::to_string(c.delivery_tag) + "): " + c.error +
                            "; it stays unacknowledged and is redelivered after reconnecting");
    mark_done(c.delivery_tag);
  }
}

void amqp_source::impl::flush_acks(connection& conn) {
  const auto ack = window.take_ackable();
  if (ack.count == 0)
    return;
  conn.ack(ack.up_to, true, consume_channel);
  acked_on_this_connection = true;
  update([&](amqp_source_stats& s) { s.acked += ack.count; });
}

// -- public ------------------------------------------------------------------------------------

amqp_source::amqp_source(amqp_source_config cfg, std::string password, codec_limits limits,
                         publish_fn publish, std::chrono::milliseconds stop_timeout)
    : impl_(std::make_shared<impl>(std::move(cfg), std::move(password), limits, std::move(publish),
                                   stop_timeout)) {}

amqp_source::~amqp_source() { stop(); }

void amqp_source::start() {
  if (impl_->thread.joinable())
    return;
  impl_->stop_requested = false;
  impl_->thread = std::thread([i = impl_.get()] { i->run(); });
}

void amqp_source::stop() {
  impl_->stop_requested = true;
  impl_->box->wake();
  if (impl_->thread.joinable())
    impl_->thread.join();
}

amqp_source_stats amqp_source::stats() const {
  std::lock_guard<std::mutex> guard{impl_->stats_mu};
  return impl_->counters;
}

const amqp_source_config& amqp_source::configuration() const { return impl_->cfg; }

}  // namespace switchboard::adapters::amqp
