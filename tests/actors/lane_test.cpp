// The lanes of src/engine/lane.hpp: order, run's answers, and what a stop does with the queue.

#include "engine/lane.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using switchboard::engine::lane;
using switchboard::engine::lane_pool;
using switchboard::engine::lane_stopped;
using switchboard::engine::on_stop;

namespace {

/// A task that holds its lane until `open` is set, so that others queue behind it.
struct gate {
  std::promise<void> opened;
  std::shared_future<void> open{opened.get_future().share()};
  std::promise<void> entered;
};

}  // namespace

TEST_CASE("lane: tasks run one at a time, in post order, off the posting thread", "[lane]") {
  lane l{"test"};
  std::vector<int> seen;  // only touched on the lane
  const auto poster = std::this_thread::get_id();
  std::atomic<bool> elsewhere{true};
  for (int i = 0; i < 1000; ++i)
    REQUIRE(l.post([&, i] {
      seen.push_back(i);
      if (std::this_thread::get_id() == poster)
        elsewhere = false;
    }));
  l.run([] {});  // behind every post
  REQUIRE(seen.size() == 1000);
  for (int i = 0; i < 1000; ++i)
    CHECK(seen[static_cast<std::size_t>(i)] == i);
  CHECK(elsewhere);
}

TEST_CASE("lane: run returns the result or rethrows, and runs in place on the lane", "[lane]") {
  lane l{"test"};
  CHECK(l.run([] { return 42; }) == 42);
  CHECK_THROWS_WITH(l.run([]() -> int { throw std::invalid_argument("bad input"); }), "bad input");
  CHECK_FALSE(l.on_lane());
  CHECK(l.run([&] { return l.on_lane(); }));
  // From a task of its own lane, run does not wait behind the queue (that would deadlock).
  CHECK(l.run([&] { return l.run([] { return 7; }); }) == 7);
  // A task that throws is logged; the lane goes on.
  l.post([] { throw std::runtime_error("ignored"); });
  CHECK(l.run([] { return std::string{"still here"}; }) == "still here");
}

TEST_CASE("lane: a stop drops the queued tasks, finishes the running one, refuses posts",
          "[lane]") {
  gate g;  // outlives the lane, whose first task waits on it
  std::atomic<int> ran{0};
  lane l{"test"};
  l.post([&] {
    g.entered.set_value();
    g.open.wait();
    ++ran;
  });
  g.entered.get_future().wait();
  for (int i = 0; i < 10; ++i)
    l.post([&] { ++ran; });
  auto waiting = std::async(std::launch::async, [&] { return l.run([] { return 1; }); });
  std::this_thread::sleep_for(20ms);  // the run is queued behind the gate
  l.request_stop();
  CHECK_THROWS_AS(waiting.get(), lane_stopped);  // dropped: its caller hears so
  CHECK_FALSE(l.post([&] { ++ran; }));
  CHECK_THROWS_AS(l.run([] { return 1; }), lane_stopped);
  g.opened.set_value();
  l.stop();
  CHECK(ran == 1);  // only the one that was running
  l.stop();         // idempotent
}

TEST_CASE("lane: a draining lane runs its queue before it stops", "[lane]") {
  std::atomic<int> ran{0};
  {
    gate g;  // outlives the lane, whose first task waits on it
    lane l{"test", on_stop::drain};
    l.post([&] {
      g.entered.set_value();
      g.open.wait();
      ++ran;
    });
    g.entered.get_future().wait();
    for (int i = 0; i < 10; ++i)
      l.post([&] { ++ran; });
    l.request_stop();
    CHECK_FALSE(l.post([&] { ran += 100; }));
    g.opened.set_value();
  }  // the destructor drains and joins
  CHECK(ran == 11);
}

TEST_CASE("lane_pool: N threads share one queue and know their index", "[lane]") {
  lane_pool pool{"test pool", 3};
  CHECK(pool.size() == 3);
  CHECK(lane_pool::worker_index() == lane_pool::npos);
  std::mutex mu;
  std::set<std::size_t> indices;
  std::atomic<int> inside{0}, most{0};
  std::vector<std::future<void>> done;
  for (int i = 0; i < 30; ++i)
    done.push_back(std::async(std::launch::async, [&] {
      pool.run([&] {
        const int now = ++inside;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        std::this_thread::sleep_for(2ms);
        --inside;
        std::lock_guard<std::mutex> guard{mu};
        indices.insert(lane_pool::worker_index());
      });
    }));
  for (auto& d : done)
    d.get();
  CHECK(most.load() > 1);  // in parallel
  CHECK(most.load() <= 3);
  for (auto i : indices)
    CHECK(i < 3);
}
