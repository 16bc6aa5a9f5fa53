// The embedding API as a host application uses it, on CAF's real scheduler.

#include "switchboard/runtime.hpp"

#include "actors/bus.hpp"
#include "runtime_access.hpp"

#include <caf/all.hpp>
#include <catch2/catch.hpp>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using namespace switchboard;

namespace {

config test_config() {
  config cfg;
  cfg.http.enabled = false;
  cfg.data_dir = "./test-data";
  cfg.drain_timeout = 10s;
  cfg.supervision.backoff_initial = 1ms;
  return cfg;
}

event make_event(std::string type, std::string id, int n = 0) {
  event ev;
  ev.id = std::move(id);
  ev.source = "tests/runtime";
  ev.type = std::move(type);
  ev.entity_kind = "application";
  ev.entity_id = "A-" + std::to_string(n);
  ev.correlation_id = "corr-" + std::to_string(n);
  ev.data["n"] = n;
  return ev;
}

/// Collects what a handler saw, and lets a test wait (bounded) for a count.
struct collector {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<event> seen;

  event_handler handler() {
    return [this](const event& ev) {
      std::lock_guard<std::mutex> guard{mu};
      seen.push_back(ev);
      cv.notify_all();
    };
  }
  bool wait_for(std::size_t n, std::chrono::milliseconds limit = 10s) {
    std::unique_lock<std::mutex> lock{mu};
    return cv.wait_for(lock, limit, [&] { return seen.size() >= n; });
  }
  std::size_t size() {
    std::lock_guard<std::mutex> guard{mu};
    return seen.size();
  }
};

} // namespace

TEST_CASE("published events reach the subscriptions whose pattern matches", "[runtime]") {
  runtime rt{test_config()};
  rt.start();
  collector apps, all, exact;
  rt.subscribe("application.*", apps.handler());
  rt.subscribe("*", all.handler());
  rt.subscribe("account.manager_allocated", exact.handler());

  auto r1 = rt.publish(make_event("application.status_changed", "e-1", 1)).get();
  auto r2 = rt.publish(make_event("account.manager_allocated", "e-2", 2)).get();
  CHECK(r1.id == "e-1");
  CHECK(r1.subscribers == 2);
  CHECK(r2.subscribers == 2);
  REQUIRE(apps.wait_for(1));
  REQUIRE(all.wait_for(2));
  REQUIRE(exact.wait_for(1));
  CHECK(apps.seen[0].id == "e-1");
  CHECK(apps.seen[0].data.at("n").as_int64() == 1);
  CHECK_FALSE(apps.seen[0].time.empty());  // set on publish
  CHECK(exact.seen[0].id == "e-2");
  rt.stop();
  CHECK(apps.size() == 1);
}

TEST_CASE("one subscription sees one publisher's events in order", "[runtime]") {
  runtime rt{test_config()};
  rt.start();
  collector c;
  rt.subscribe("order.*", c.handler());
  constexpr int count = 2000;
  for (int i = 0; i < count; ++i)
    rt.publish(make_event("order.placed", "o-" + std::to_string(i), i));
  REQUIRE(c.wait_for(count));
  for (int i = 0; i < count; ++i)
    REQUIRE(c.seen[static_cast<std::size_t>(i)].data.at("n").as_int64() == i);
}

TEST_CASE("invalid events and patterns are refused with the reason", "[runtime]") {
  runtime rt{test_config()};
  rt.start();
  auto ev = make_event("application.created", "x-1");
  ev.entity_id.clear();
  auto fut = rt.publish(ev);
  REQUIRE_THROWS_AS(fut.get(), publish_error);
  try {
    rt.publish(ev).get();
  } catch (const publish_error& e) {
    CHECK(std::string{e.what()}.find("entityid") != std::string::npos);
  }
  CHECK_THROWS_AS(rt.subscribe("a.*.b", [](const event&) {}), std::invalid_argument);
  CHECK_THROWS_AS(rt.subscribe("a.b", nullptr), std::invalid_argument);
}

TEST_CASE("a throwing handler does not stop its subscription", "[runtime]") {
  runtime rt{test_config()};
  rt.start();
  collector c;
  auto inner = c.handler();
  rt.subscribe("job.*", [&](const event& ev) {
    inner(ev);
    if (ev.id == "j-1")
      throw std::runtime_error("handler failed on purpose");
  });
  rt.publish(make_event("job.run", "j-1", 1));
  rt.publish(make_event("job.run", "j-2", 2));
  REQUIRE(c.wait_for(2));
  CHECK(c.seen[1].id == "j-2");
}

TEST_CASE("stop drains accepted events, then refuses new ones", "[runtime]") {
  runtime rt{test_config()};
  rt.start();
  std::atomic<int> handled{0};
  rt.subscribe("slow.*", [&](const event&) {
    std::this_thread::sleep_for(2ms);
    ++handled;
  });
  constexpr int count = 200;  // about 0.4 s of handler work queued at once
  std::vector<std::future<publish_receipt>> receipts;
  for (int i = 0; i < count; ++i)
    receipts.push_back(rt.publish(make_event("slow.work", "s-" + std::to_string(i), i)));
  for (auto& r : receipts)
    r.get();
  CHECK(handled.load() < count);  // still queued when stop begins
  auto outcome = rt.stop();
  CHECK_FALSE(outcome.failed);
  CHECK(handled.load() == count);
  CHECK_THROWS_AS(rt.publish(make_event("slow.work", "late")).get(), publish_error);
}

TEST_CASE("unsubscribed handlers get no more events", "[runtime]") {
  runtime rt{test_config()};
  rt.start();
  collector kept, dropped;
  rt.subscribe("t.*", kept.handler());
  auto sub = rt.subscribe("t.*", dropped.handler());
  rt.publish(make_event("t.x", "u-1")).get();
  REQUIRE(dropped.wait_for(1));
  rt.unsubscribe(sub);
  CHECK(rt.publish(make_event("t.x", "u-2")).get().subscribers == 1);
  REQUIRE(kept.wait_for(2));
  rt.stop();
  CHECK(dropped.size() == 1);
}

TEST_CASE("subscriptions survive a router crash; the supervisor restarts the bus",
          "[runtime][supervision]") {
  runtime rt{test_config()};
  rt.start();
  collector c;
  rt.subscribe("x.*", c.handler());
  auto& sys = internal::runtime_access::system(rt);
  auto old_router = actors::current_router(sys);
  caf::anon_send_exit(old_router, caf::exit_reason::kill);
  // Until the restart is done, publishes may fail or reach nobody; then they are delivered.
  auto deadline = std::chrono::steady_clock::now() + 10s;
  std::size_t reached = 0;
  while (reached == 0 && std::chrono::steady_clock::now() < deadline) {
    try {
      reached = rt.publish(make_event("x.y", "r-1")).get().subscribers;
    } catch (const publish_error&) {
    }
    if (reached == 0)
      std::this_thread::sleep_for(5ms);
  }
  REQUIRE(reached == 1);
  CHECK(actors::current_router(sys) != old_router);
  REQUIRE(c.wait_for(1));
  CHECK_FALSE(rt.stop().failed);
}

TEST_CASE("when the root supervisor gives up, wait() says why", "[runtime][supervision]") {
  auto cfg = test_config();
  cfg.supervision.max_restarts = 0;  // the first crash exceeds the restart intensity
  runtime rt{cfg};
  rt.start();
  caf::anon_send_exit(actors::current_router(internal::runtime_access::system(rt)),
                      caf::exit_reason::kill);
  auto outcome = rt.wait();
  CHECK(outcome.failed);
  CHECK(outcome.reason.find("supervisor 'root' gave up: child 'router'") != std::string::npos);
  CHECK(rt.stop().failed);
}

TEST_CASE("the HTTP server answers health and readiness", "[runtime][http]") {
  auto cfg = test_config();
  cfg.http.enabled = true;
  cfg.http.host = "127.0.0.1";
  cfg.http.port = 0;
  runtime rt{cfg};
  rt.start();
  auto address = rt.listen_address();
  REQUIRE(address.rfind("127.0.0.1:", 0) == 0);
  auto port = std::stoi(address.substr(address.find(':') + 1));
  REQUIRE(port > 0);
  httplib::Client client{"127.0.0.1", port};
  auto health = client.Get("/health");
  REQUIRE(health);
  CHECK(health->status == 200);
  CHECK(health->body == R"({"status":"ok"})");
  auto ready = client.Get("/ready");
  REQUIRE(ready);
  CHECK(ready->status == 200);
  auto missing = client.Get("/no/such/thing");
  REQUIRE(missing);
  CHECK(missing->status == 404);
  CHECK(missing->body.find("no such route") != std::string::npos);
  rt.stop();
  httplib::Client after{"127.0.0.1", port};
  after.set_connection_timeout(1s);
  CHECK_FALSE(after.Get("/health"));  // stopped servers do not answer
}

TEST_CASE("two runtimes side by side cannot share a port", "[runtime][http]") {
  auto cfg = test_config();
  cfg.http.enabled = true;
  cfg.http.port = 0;
  runtime first{cfg};
  first.start();
  auto address = first.listen_address();
  cfg.http.port = static_cast<std::uint16_t>(std::stoi(address.substr(address.find(':') + 1)));
  runtime second{cfg};
  try {
    second.start();
    FAIL("the second runtime started on a port in use");
  } catch (const std::runtime_error& e) {
    CHECK(std::string{e.what()}.find("cannot listen on 127.0.0.1:" +
                                     std::to_string(cfg.http.port)) != std::string::npos);
  }
}
