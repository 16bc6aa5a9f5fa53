// amqp_bench: consuming persistent MassTransit messages from RabbitMQ, in one run:
//
//   bare     a bare rabbitmq-c consumer (basic.qos prefetch, manual acks with `multiple` every
//            K messages) drains the queue: what the broker and the client library can do
//   source   switchboard's amqp_source decodes every message (MassTransit envelope -> event)
//            and stores it in a real runtime's journal (SQLite WAL, fsync per commit); each
//            delivery is acknowledged only after its commit
//
// Both drain a queue filled beforehand with the same N messages (published persistent with
// publisher confirms, through amqp_publisher; that rate is reported too). Needs a broker:
// `scripts/rabbitmq start` (port 5673 by default). Prints one JSON object per phase on stdout
// and a summary on stderr. Options (--name=value):
//   --port=5673 --count=100000 --prefetch=1000 --ack-every=100 --source-prefetch=1000
//   --dir=PATH (journal; default a new directory under $TMPDIR or /tmp, removed afterwards)

#include "bench_util.hpp"

#include "adapters/amqp/connection.hpp"
#include "adapters/amqp/publisher.hpp"
#include "adapters/amqp/source.hpp"

#include "switchboard/runtime.hpp"

#include <spdlog/spdlog.h>

#include <sys/time.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>

namespace fs = std::filesystem;
using namespace switchboard;
using namespace switchboard::adapters::amqp;
using bench::steady;

namespace {

struct options {
  std::uint16_t port = 5673;
  std::uint64_t count = 100'000;
  std::uint16_t prefetch = 1000;
  std::uint64_t ack_every = 100;
  std::uint16_t source_prefetch = 1000;
  fs::path dir;
};

constexpr const char* message_type = "urn:message:Crm.Events:ApplicationStatusChanged";

std::string body(std::uint64_t n) {
  char id[40];
  std::snprintf(id, sizeof id, "6b1c0000-0000-0000-0000-%012llu",
                static_cast<unsigned long long>(n));
  return std::string(R"({"messageId":")") + id + R"(","correlationId":"c-)" + std::to_string(n) +
         R"(","conversationId":"9d2f0000-0000-0000-0000-000000000001","sourceAddress":"rabbitmq://crm/crm_api",)"
         R"("destinationAddress":"rabbitmq://crm/Crm.Events:ApplicationStatusChanged","messageType":[")" +
         message_type + R"("],"message":{"applicationId":"A-)" + std::to_string(1000 + n % 5000) +
         R"(","version":)" + std::to_string(n + 1) +
         R"(,"status":"approved","previousStatus":"under_review"},)"
         R"("sentTime":"2026-11-23T14:00:00.1234567Z","headers":{},"host":{"machineName":"crm-1"}})";
}

connection_params params(const options& o) {
  connection_params p;
  p.port = o.port;
  p.connection_name = "switchboard amqp_bench";
  return p;
}

/// Fills `queue` (bound to `exchange`) with N messages; returns messages/s.
double fill(const options& o, const std::string& exchange) {
  amqp_publisher pub(params(o), 5000);
  const auto t0 = steady::now();
  for (std::uint64_t n = 0; n < o.count; ++n)
    pub.publish(exchange, body(n));
  if (!pub.wait_for_confirms(std::chrono::minutes(5)) || !pub.failed().empty())
    throw std::runtime_error("publishing failed: " + pub.error());
  return static_cast<double>(o.count) / bench::seconds_between(t0, steady::now());
}

/// Drains `queue` with a bare rabbitmq-c consumer; returns seconds.
double bare_consume(const options& o, const std::string& queue) {
  connection conn(params(o));
  conn.qos(o.prefetch);
  conn.consume(queue);
  const auto t0 = steady::now();
  std::uint64_t got = 0, last_tag = 0;
  const timeval timeout{10, 0};
  while (got < o.count) {
    amqp_maybe_release_buffers(conn.state());
    amqp_envelope_t env;
    conn.check(amqp_consume_message(conn.state(), &env, &timeout, 0), "bare consume");
    last_tag = env.delivery_tag;
    amqp_destroy_envelope(&env);
    if (++got % o.ack_every == 0)
      conn.ack(last_tag, true);
  }
  conn.ack(last_tag, true);
  return bench::seconds_between(t0, steady::now());
}

/// Drains `queue` through amqp_source into a fresh runtime; returns seconds until every
/// delivery is acknowledged (i.e. committed).
double source_consume(const options& o, const std::string& queue, const std::string& exchange,
                      const fs::path& dir, amqp_source_stats& stats) {
  config cfg;
  cfg.http.enabled = false;
  cfg.data_dir = dir.string();
  runtime rt(cfg);
  rt.start();
  amqp_source_config sc;
  sc.name = "bench";
  sc.port = o.port;
  sc.queue = queue;
  sc.exchanges = {exchange};
  sc.prefetch = o.source_prefetch;
  sc.messages.push_back(
      {message_type, "application.status_changed", "application", "applicationId", "version"});
  amqp_source source(sc, "guest", {}, [&rt](event ev, publish_done done) {
    rt.publish_async(std::move(ev),
                     [done = std::move(done)](const publish_receipt* r, const std::string& error) {
                       done(r != nullptr, error);
                     });
  });
  const auto t0 = steady::now();
  source.start();
  while (source.stats().acked < o.count) {
    if (bench::seconds_between(t0, steady::now()) > 600)
      throw std::runtime_error("amqp_source did not finish in 10 minutes: " +
                               source.stats().last_error);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const double secs = bench::seconds_between(t0, steady::now());
  source.stop();
  stats = source.stats();
  if (rt.last_sequence() != o.count)
    throw std::runtime_error("journal holds " + std::to_string(rt.last_sequence()) +
                             " events, expected " + std::to_string(o.count));
  rt.stop();
  return secs;
}

}  // namespace

int main(int argc, char** argv) try {
  bench::args a(argc, argv);
  if (a.has("help")) {
    std::cerr << "amqp_bench [--port=5673] [--count=100000] [--prefetch=1000] [--ack-every=100]\n"
                 "           [--source-prefetch=1000] [--dir=PATH]\n"
                 "needs a broker: scripts/rabbitmq start\n";
    return 0;
  }
  options o;
  const char* env_port = std::getenv("RMQ_PORT");
  o.port = a.num<std::uint16_t>("port",
                                static_cast<std::uint16_t>(env_port ? std::atoi(env_port) : 5673));
  o.count = a.num<std::uint64_t>("count", o.count);
  o.prefetch = a.num<std::uint16_t>("prefetch", o.prefetch);
  o.ack_every = std::max<std::uint64_t>(1, a.num<std::uint64_t>("ack-every", o.ack_every));
  o.source_prefetch = a.num<std::uint16_t>("source-prefetch", o.source_prefetch);
  const bool own_dir = a.get("dir", "").empty();
  o.dir = own_dir ? fs::temp_directory_path() / ("amqp_bench." + std::to_string(::getpid()))
                  : fs::path(a.get("dir", ""));
  fs::create_directories(o.dir);
  spdlog::set_level(spdlog::level::warn);

  const std::string tag = std::to_string(::getpid());
  const std::string exchange = "bench.amqp." + tag, q_bare = "bench.amqp.bare." + tag,
                    q_source = "bench.amqp.source." + tag;
  connection admin(params(o));
  admin.declare_fanout_exchange(exchange, false);
  admin.declare_queue(q_bare, false);
  admin.bind_queue(q_bare, exchange);

  std::cerr << "# " << bench::loadavg1() << " load; filling " << o.count << " messages of "
            << body(0).size() << " B\n";
  const double publish_rate = fill(o, exchange);
  const double bare_s = bare_consume(o, q_bare);
  admin.delete_queue(q_bare);

  // The source declares its own queue; bind it first so that it is filled the same way.
  admin.declare_queue(q_source, false);
  admin.bind_queue(q_source, exchange);
  fill(o, exchange);
  amqp_source_stats stats;
  const double cpu0 = bench::process_cpu_seconds();
  const double source_s = source_consume(o, q_source, exchange, o.dir / "journal", stats);
  const double source_cpu = bench::process_cpu_seconds() - cpu0;
  admin.delete_queue(q_source);
  admin.delete_queue(q_source + "_error");
  admin.delete_exchange(exchange);
  if (own_dir)
    fs::remove_all(o.dir);

  const double n = static_cast<double>(o.count);
  const double bare_rate = n / bare_s, source_rate = n / source_s;
  bench::json_line()
      .str("bench", "amqp")
      .str("phase", "publish")
      .number("messages", n)
      .number("body_bytes", static_cast<double>(body(0).size()))
      .number("msgs_per_s", publish_rate)
      .number("loadavg1", bench::loadavg1())
      .print();
  bench::json_line()
      .str("bench", "amqp")
      .str("phase", "bare")
      .number("messages", n)
      .number("prefetch", o.prefetch)
      .number("ack_every", static_cast<double>(o.ack_every))
      .number("msgs_per_s", bare_rate)
      .number("seconds", bare_s)
      .print();
  bench::json_line()
      .str("bench", "amqp")
      .str("phase", "source")
      .number("messages", n)
      .number("prefetch", o.source_prefetch)
      .number("msgs_per_s", source_rate)
      .number("seconds", source_s)
      .number("acked", static_cast<double>(stats.acked))
      .number("delivered", static_cast<double>(stats.delivered))
      .number("cpu_us_per_msg", source_cpu / n * 1e6)
      .number("ratio_to_bare", source_rate / bare_rate)
      .number("loadavg1", bench::loadavg1())
      .print();
  std::fprintf(stderr,
               "publish (persistent, confirms): %.0f msg/s\nbare consumer: %.0f msg/s\n"
               "amqp_source -> journal (ack after commit): %.0f msg/s (%.2fx of bare)\n",
               publish_rate, bare_rate, source_rate, source_rate / bare_rate);
  return 0;
} catch (const std::exception& e) {
  std::cerr << "amqp_bench: " << e.what() << "\n(start a broker with scripts/rabbitmq start)\n";
  return 1;
}
