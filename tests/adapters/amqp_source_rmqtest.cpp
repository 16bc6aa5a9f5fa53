// The AMQP source against a real RabbitMQ broker (the `rabbitmq` CTest fixture) and, where
// the journal matters, a real switchboard::runtime with its SQLite journal: MassTransit messages
// arrive in order, acks wait for durability and go out grouped, bad messages end in the error
// queue, and dropped connections, journal failures and broker restarts lose nothing.

#include "adapters/amqp/publisher.hpp"
#include "adapters/amqp/source.hpp"

#include "switchboard/runtime.hpp"

#include "support/eventually.hpp"
#include "support/rabbitmq.hpp"
#include "support/temp_dir.hpp"

#include <catch2/catch.hpp>

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using namespace switchboard;
using namespace switchboard::adapters::amqp;
using testing::eventually;
using testing::rabbitmq_params;
using testing::ready_count;
using testing::temp_dir;
using testing::unique_name;

namespace {

constexpr const char* status_changed = "urn:message:Crm.Events:ApplicationStatusChanged";

/// A source config with fresh, unique queue and exchange names.
amqp_source_config source_config(const std::string& what) {
  amqp_source_config c;
  c.name = what;
  c.port = testing::rabbitmq_port();
  c.queue = unique_name(what);
  c.exchanges = {unique_name(what + "-ex")};
  c.heartbeat = 5s;
  c.reconnect_initial = 50ms;
  c.reconnect_max = 1s;
  c.messages.push_back(
      {status_changed, "application.status_changed", "application", "applicationId", "version"});
  return c;
}

std::string message_id(int n) {
  return "00000000-0000-0000-0000-" + std::to_string(100000000000 + n);
}

/// A MassTransit envelope as MassTransit publishes it (about 400 bytes).
std::string masstransit_body(int n, const char* type = status_changed) {
  return R"({"messageId":")" + message_id(n) + R"(","correlationId":"c-)" + std::to_string(n) +
         R"(","conversationId":"conv-1","sourceAddress":"rabbitmq://localhost/crm_api",)"
         R"("destinationAddress":"rabbitmq://localhost/Crm.Events:ApplicationStatusChanged",)"
         R"("messageType":[")" +
         type + R"("],"message":{"applicationId":"A-)" + std::to_string(n % 7) + R"(","version":)" +
         std::to_string(n) +
         R"(,"status":"approved"},"sentTime":"2026-11-23T14:00:00.1234567Z","headers":{},)"
         R"("host":{"machineName":"crm-1","processName":"Crm.Api"}})";
}

/// Declares the source's topology (as the source would) so messages published before the
/// source starts are kept.
void declare(const amqp_source_config& c) {
  connection conn(rabbitmq_params());
  conn.declare_queue(c.queue, false);
  for (const auto& ex : c.exchanges) {
    conn.declare_fanout_exchange(ex, false);
    conn.bind_queue(c.queue, ex);
  }
}

void publish_range(const std::string& exchange, int from, int to,
                   const char* type = status_changed) {
  amqp_publisher pub(rabbitmq_params());
  for (int n = from; n < to; ++n)
    pub.publish(exchange, masstransit_body(n, type));
  REQUIRE(pub.wait_for_confirms(30s));
}

/// Deletes the test's queues and exchanges at the end (the broker outlives the tests).
struct cleanup {
  const amqp_source_config& c;
  ~cleanup() {
    try {
      connection conn(rabbitmq_params());
      conn.delete_queue(c.queue);
      conn.delete_queue(c.queue + "_error");
      for (const auto& ex : c.exchanges)
        conn.delete_exchange(ex);
    } catch (...) {
    }
  }
};

config runtime_config(const temp_dir& dir) {
  config cfg;
  cfg.http.enabled = false;
  cfg.data_dir = dir.path.string();
  cfg.drain_timeout = 10s;
  return cfg;
}

/// `runtime::publish_async` adapted to the source's publish_fn, as the daemon wires it.
publish_fn into(runtime& rt) {
  return [&rt](event ev, publish_done done) {
    rt.publish_async(std::move(ev),
                     [done = std::move(done)](const publish_receipt* r, const std::string& error) {
                       done(r != nullptr, error);
                     });
  };
}

std::vector<event> journal(runtime& rt) { return rt.read(0, 1'000'000); }

/// A publish_fn that keeps every event and its completion until the test answers it.
struct withholding_journal {
  std::mutex mu;
  std::vector<std::pair<event, publish_done>> held;

  publish_fn fn() {
    return [this](event ev, publish_done done) {
      std::lock_guard<std::mutex> guard{mu};
      held.emplace_back(std::move(ev), std::move(done));
    };
  }
  std::size_t size() {
    std::lock_guard<std::mutex> guard{mu};
    return held.size();
  }
  void complete(std::size_t index) {
    publish_done done;
    {
      std::lock_guard<std::mutex> guard{mu};
      done = held.at(index).second;
    }
    done(true, {});
  }
};

}  // namespace

TEST_CASE("MassTransit messages from a fan-out exchange arrive in the journal in order",
          "[amqp][rmq]") {
  auto cfg = source_config("order");
  cfg.exchanges.push_back(unique_name("order-ex2"));
  cleanup gone{cfg};
  temp_dir dir;
  runtime rt(runtime_config(dir));
  rt.start();
  amqp_source source(cfg, "guest", {}, into(rt));
  source.start();
  REQUIRE(eventually([&] { return source.stats().connected; }, 30s));

  // The source declared the durable exchanges, queue and bindings: both exchanges feed it.
  publish_range(cfg.exchanges[0], 0, 150);
  publish_range(cfg.exchanges[1], 150, 200);
  REQUIRE(eventually([&] { return source.stats().acked == 200; }, 30s));

  auto events = journal(rt);
  REQUIRE(events.size() == 200);
  for (int n = 0; n < 200; ++n) {
    const auto& ev = events[static_cast<std::size_t>(n)];
    CHECK(ev.id == message_id(n));
    CHECK(ev.type == "application.status_changed");
    CHECK(ev.source == "amqp/" + cfg.queue);
    CHECK(ev.entity_kind == "application");
    CHECK(ev.entity_id == "A-" + std::to_string(n % 7));
    CHECK(ev.entity_version == static_cast<std::uint64_t>(n));
    CHECK(ev.correlation_id == "c-" + std::to_string(n));
  }
  source.stop();
  CHECK(ready_count(cfg.queue) == 0);
  const auto s = source.stats();
  CHECK(s.delivered == 200);
  CHECK(s.to_error_queue == 0);
  CHECK_FALSE(s.connected);
}

TEST_CASE("a delivery is acknowledged only once durable, in groups up to the first gap",
          "[amqp][rmq]") {
  auto cfg = source_config("durable");
  cleanup gone{cfg};
  declare(cfg);
  publish_range(cfg.exchanges[0], 0, 20);

  {
    withholding_journal held;
    amqp_source source(cfg, "guest", {}, held.fn(), 200ms);
    source.start();
    REQUIRE(eventually([&] { return held.size() == 20; }, 30s));
    CHECK(source.stats().acked == 0);
    source.stop();  // nothing became durable: nothing may be acknowledged
    CHECK(source.stats().acked == 0);
  }
  // Closed without acks: the broker has them all again, ready.
  REQUIRE(eventually([&] { return ready_count(cfg.queue) == 20; }, 10s));

  withholding_journal held;
  amqp_source source(cfg, "guest", {}, held.fn());
  source.start();
  REQUIRE(eventually([&] { return held.size() == 20; }, 30s));
  for (std::size_t i = 0; i < 10; ++i)
    held.complete(i);
  REQUIRE(eventually([&] { return source.stats().acked == 10; }));
  // Delivery 15 is durable before 11..14: only 11 may be acknowledged when 11 completes.
  held.complete(14);
  held.complete(10);
  REQUIRE(eventually([&] { return source.stats().acked >= 11; }));
  CHECK(source.stats().acked == 11);
  for (std::size_t i : {13, 12, 11})
    held.complete(i);
  REQUIRE(eventually([&] { return source.stats().acked == 15; }));
  for (std::size_t i = 15; i < 20; ++i)
    held.complete(i);
  REQUIRE(eventually([&] { return source.stats().acked == 20; }));
  source.stop();
  CHECK(ready_count(cfg.queue) == 0);
  CHECK(source.stats().delivered == 20);
}

TEST_CASE("undecodable and unmapped messages go to the error queue with the reason",
          "[amqp][rmq]") {
  auto cfg = source_config("errors");
  cleanup gone{cfg};
  temp_dir dir;
  runtime rt(runtime_config(dir));
  rt.start();
  amqp_source source(cfg, "guest", {}, into(rt));
  source.start();
  REQUIRE(eventually([&] { return source.stats().connected; }, 30s));
  {
    amqp_publisher pub(rabbitmq_params());
    pub.publish(cfg.exchanges[0], masstransit_body(1));
    outgoing_message plain;
    plain.content_type = "application/json";
    plain.routing_key = "crm.key";
    plain.headers = {{"x-custom", "kept"}};
    pub.publish(cfg.exchanges[0], "{not json", plain);
    pub.publish(cfg.exchanges[0], masstransit_body(2, "urn:message:Crm.Events:LeadCreated"));
    pub.publish(cfg.exchanges[0], masstransit_body(3));
    REQUIRE(pub.wait_for_confirms(10s));
  }
  REQUIRE(eventually([&] { return source.stats().acked == 4; }, 30s));
  CHECK(source.stats().to_error_queue == 2);
  source.stop();
  // Acknowledged, so not redelivered: the queue is empty and the journal has the good two.
  CHECK(ready_count(cfg.queue) == 0);
  auto events = journal(rt);
  REQUIRE(events.size() == 2);
  CHECK(events[0].id == message_id(1));
  CHECK(events[1].id == message_id(3));

  connection conn(rabbitmq_params());
  auto bad_json = conn.basic_get(cfg.queue + "_error");
  auto unmapped = conn.basic_get(cfg.queue + "_error");
  REQUIRE(bad_json);
  REQUIRE(unmapped);
  CHECK_FALSE(conn.basic_get(cfg.queue + "_error"));

  CHECK(bad_json->body == "{not json");
  CHECK(bad_json->persistent);
  CHECK(bad_json->content_type == "application/json");
  CHECK_THAT(bad_json->header("MT-Reason").value_or(""),
             Catch::StartsWith("switchboard: ") && Catch::Contains("not valid JSON"));
  CHECK(bad_json->header("x-switchboard-source") == cfg.name);
  CHECK(bad_json->header("x-original-exchange") == cfg.exchanges[0]);
  CHECK(bad_json->header("x-original-routing-key") == "crm.key");
  CHECK(bad_json->header("x-custom") == "kept");

  CHECK(unmapped->body == masstransit_body(2, "urn:message:Crm.Events:LeadCreated"));
  CHECK_THAT(
      unmapped->header("MT-Reason").value_or(""),
      Catch::Contains("urn:message:Crm.Events:LeadCreated") && Catch::Contains(status_changed));
}

TEST_CASE("a number beyond double range goes to the error queue, the messages after it are stored",
          "[amqp][rmq]") {
  // It was acked and journaled as Infinity, which no reader could decode again.
  auto cfg = source_config("numbers");
  cleanup gone{cfg};
  temp_dir dir;
  runtime rt(runtime_config(dir));
  rt.start();
  amqp_source source(cfg, "guest", {}, into(rt));
  source.start();
  REQUIRE(eventually([&] { return source.stats().connected; }, 30s));
  auto huge = masstransit_body(2);
  huge.replace(huge.find(R"("status":"approved")"), 19, R"("amount":1e400)");
  {
    amqp_publisher pub(rabbitmq_params());
    pub.publish(cfg.exchanges[0], masstransit_body(1));
    pub.publish(cfg.exchanges[0], huge);
    pub.publish(cfg.exchanges[0], masstransit_body(3));
    REQUIRE(pub.wait_for_confirms(10s));
  }
  REQUIRE(eventually([&] { return source.stats().acked == 3; }, 30s));
  CHECK(source.stats().to_error_queue == 1);
  source.stop();
  auto events = journal(rt);
  REQUIRE(events.size() == 2);
  CHECK(events[0].id == message_id(1));
  CHECK(events[1].id == message_id(3));

  connection conn(rabbitmq_params());
  auto parked = conn.basic_get(cfg.queue + "_error");
  REQUIRE(parked);
  CHECK(parked->body == huge);
  CHECK_THAT(
      parked->header("MT-Reason").value_or(""),
      Catch::Contains("field 'data.amount'") && Catch::Contains("beyond the range of a double"));
}

TEST_CASE(
    "a journal failure leaves the delivery unacknowledged until it comes back and is stored once",
    "[amqp][rmq]") {
  auto cfg = source_config("journal-fails");
  cleanup gone{cfg};
  declare(cfg);
  publish_range(cfg.exchanges[0], 0, 50);
  temp_dir dir;
  runtime rt(runtime_config(dir));
  rt.start();
  std::atomic<int> calls{0};
  auto real = into(rt);
  // The 10th hand-over fails as a full disk would; the rest are stored.
  publish_fn flaky = [&](event ev, publish_done done) {
    if (++calls == 10) {
      done(false, "disk full (test)");
      return;
    }
    real(std::move(ev), std::move(done));
  };
  amqp_source source(cfg, "guest", {}, flaky);
  source.start();
  REQUIRE(eventually([&] { return journal(rt).size() == 50 && ready_count(cfg.queue) == 0; }, 30s));
  source.stop();
  const auto s = source.stats();
  CHECK(s.reconnects >= 1);
  CHECK_THAT(s.last_error, Catch::Contains("disk full (test)"));
  CHECK(s.delivered > 50);  // redeliveries after the reconnect
  std::set<std::string> ids;
  for (const auto& ev : journal(rt))
    ids.insert(ev.id);
  CHECK(ids.size() == 50);
  CHECK(ready_count(cfg.queue) == 0);
}

TEST_CASE("a dropped connection is re-established and consuming goes on", "[amqp][rmq]") {
  auto cfg = source_config("dropped");
  cleanup gone{cfg};
  temp_dir dir;
  runtime rt(runtime_config(dir));
  rt.start();
  amqp_source source(cfg, "guest", {}, into(rt));
  source.start();
  REQUIRE(eventually([&] { return source.stats().connected; }, 30s));
  publish_range(cfg.exchanges[0], 0, 100);
  REQUIRE(eventually([&] { return source.stats().acked == 100; }, 30s));

  REQUIRE(testing::rabbitmq_script("ctl close_all_connections 'switchboard test'") == 0);
  REQUIRE(
      eventually([&] { return source.stats().reconnects >= 1 && source.stats().connected; }, 30s));
  CHECK_THAT(source.stats().last_error, Catch::Contains("switchboard test") ||
                                            Catch::Contains("CONNECTION_FORCED") ||
                                            Catch::Contains("closed"));

  publish_range(cfg.exchanges[0], 100, 200);
  REQUIRE(
      eventually([&] { return journal(rt).size() == 200 && ready_count(cfg.queue) == 0; }, 30s));
  source.stop();
  auto events = journal(rt);
  for (int n = 0; n < 200; ++n)
    CHECK(events[static_cast<std::size_t>(n)].id == message_id(n));
}

TEST_CASE("a broker restart mid-stream loses nothing and stores every message once",
          "[amqp][rmq][restart]") {
  constexpr int total = 5000;
  auto cfg = source_config("restart");
  cfg.prefetch = 200;
  cleanup gone{cfg};
  declare(cfg);
  publish_range(cfg.exchanges[0], 0, total);

  temp_dir dir;
  runtime rt(runtime_config(dir));
  rt.start();
  // After 2000 hand-overs the journal "stalls" (the events are kept, not stored), so the
  // restart surely hits deliveries in flight; they are stored late, after the reconnect.
  std::mutex mu;
  std::vector<std::pair<event, publish_done>> stalled;
  std::atomic<int> handed{0};
  bool stall = true;
  auto real = into(rt);
  publish_fn fn = [&](event ev, publish_done done) {
    {
      std::lock_guard<std::mutex> guard{mu};  // `stall` is read and cleared under the lock
      if (++handed > 2000 && stall) {
        stalled.emplace_back(std::move(ev), std::move(done));
        return;
      }
    }
    real(std::move(ev), std::move(done));
  };
  amqp_source source(cfg, "guest", {}, fn);
  source.start();
  REQUIRE(eventually([&] { return handed.load() > 2000; }, 60s));

  REQUIRE(testing::rabbitmq_script("restart") == 0);
  {
    std::lock_guard<std::mutex> guard{mu};
    stall = false;
    for (auto& [ev, done] : stalled)
      real(std::move(ev), std::move(done));  // too late to be acked: the connection is gone
    CHECK_FALSE(stalled.empty());
  }
  REQUIRE(eventually([&] { return journal(rt).size() == total; }, 120s));
  REQUIRE(eventually([&] { return ready_count(cfg.queue) == 0; }, 60s));
  source.stop();
  const auto s = source.stats();
  CHECK(s.reconnects >= 1);
  auto events = journal(rt);
  REQUIRE(events.size() == total);
  std::set<std::string> ids;
  for (const auto& ev : events)
    ids.insert(ev.id);
  CHECK(ids.size() == static_cast<std::size_t>(total));
  CHECK(*ids.begin() == message_id(0));
  CHECK(*ids.rbegin() == message_id(total - 1));
}

TEST_CASE("a hung broker is noticed by missed heartbeats, and consuming resumes after it",
          "[amqp][rmq][heartbeat]") {
  auto cfg = source_config("heartbeat");
  cfg.heartbeat = 1s;
  cleanup gone{cfg};
  temp_dir dir;
  runtime rt(runtime_config(dir));
  rt.start();
  amqp_source source(cfg, "guest", {}, into(rt));
  source.start();
  REQUIRE(eventually([&] { return source.stats().connected; }, 30s));
  publish_range(cfg.exchanges[0], 0, 50);
  REQUIRE(eventually([&] { return source.stats().acked == 50; }, 30s));

  // The broker freezes: the TCP connection stays up, but no heartbeat comes any more.
  REQUIRE(testing::rabbitmq_script("pause") == 0);
  struct resume_at_exit {
    ~resume_at_exit() { testing::rabbitmq_script("resume"); }
  } resume;
  CHECK(eventually([&] { return !source.stats().connected; }, 15s));
  CHECK_THAT(source.stats().last_error, Catch::Contains("heartbeat"));
  REQUIRE(testing::rabbitmq_script("resume") == 0);

  REQUIRE(
      eventually([&] { return source.stats().connected && source.stats().reconnects >= 1; }, 60s));
  publish_range(cfg.exchanges[0], 50, 100);
  REQUIRE(eventually([&] { return journal(rt).size() == 100; }, 30s));
  source.stop();
}

TEST_CASE("declare=false checks the topology and says what is missing", "[amqp][rmq]") {
  auto cfg = source_config("passive");
  cfg.declare = false;
  cleanup gone{cfg};
  std::atomic<int> calls{0};
  amqp_source source(cfg, "guest", {}, [&](event, publish_done) { ++calls; });
  source.start();
  REQUIRE(eventually([&] { return !source.stats().last_error.empty(); }, 30s));
  source.stop();
  const auto s = source.stats();
  CHECK_THAT(s.last_error, Catch::Contains("404") && Catch::Contains(cfg.exchanges[0]) &&
                               Catch::Contains("declare is false"));
  CHECK_FALSE(s.connected);
  CHECK(calls == 0);
}

TEST_CASE("a wrong password is reported with what to check", "[amqp][rmq]") {
  auto cfg = source_config("password");
  amqp_source source(cfg, "not-the-password", {}, [](event, publish_done) {});
  source.start();
  REQUIRE(eventually([&] { return !source.stats().last_error.empty(); }, 30s));
  source.stop();
  CHECK_THAT(source.stats().last_error,
             Catch::Contains("log in") && Catch::Contains("SWITCHBOARD_AMQP_PASSWORD"));
}
