// The pacing and coalescing of one target's writes, on a fake clock: what a Twilio object sees
// (how many writes, how far apart, which revision last) for bursts, failures and many keys.

#include "core/write_schedule.hpp"

#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <random>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using switchboard::core::write_completion;
using switchboard::core::write_limits;
using switchboard::core::write_result;
using switchboard::core::write_schedule;
using switchboard::core::write_ticket;

namespace {

using time_point = write_schedule::time_point;
const time_point t0 = time_point{} + 1000s;

write_limits limits(std::size_t concurrency = 4, std::chrono::milliseconds interval = 50ms,
                    std::size_t attempts = 5) {
  write_limits l;
  l.concurrency = concurrency;
  l.min_interval = interval;
  l.max_attempts = attempts;
  l.backoff_initial = 100ms;
  l.backoff_max = 1s;
  return l;
}

/// All tickets that may start at `now`.
std::vector<write_ticket> drain(write_schedule& s, time_point now) {
  std::vector<write_ticket> out;
  while (auto t = s.next_ready(now))
    out.push_back(*t);
  return out;
}

}  // namespace

TEST_CASE(
    "write schedule: a burst of 1000 revisions of one key in 1 s costs about 20 writes, "
    "the last of the newest revision",
    "[write_schedule]") {
  write_schedule s{limits()};
  std::vector<std::pair<time_point, std::uint64_t>> writes;  // start time, revision
  std::uint64_t revision = 0;
  // One offer every millisecond for a second; each write succeeds the instant it starts.
  for (int ms = 0; ms <= 1000; ++ms) {
    const auto now = t0 + std::chrono::milliseconds{ms};
    if (ms < 1000)
      s.offer("lead-1", ++revision, now);
    for (const auto& t : drain(s, now)) {
      writes.emplace_back(now, t.revision);
      s.complete(t.key, t.revision, write_result::ok(), now);
    }
  }
  // Then let time run until nothing is left.
  for (auto now = t0 + 1001ms; s.next_wakeup();) {
    now = std::max(now, *s.next_wakeup());
    for (const auto& t : drain(s, now)) {
      writes.emplace_back(now, t.revision);
      s.complete(t.key, t.revision, write_result::ok(), now);
    }
  }
  CHECK(writes.size() <= 22);
  CHECK(writes.size() >= 19);
  REQUIRE_FALSE(writes.empty());
  CHECK(writes.back().second == 1000);  // the newest state is what the object holds at the end
  for (std::size_t i = 1; i < writes.size(); ++i) {
    CHECK(writes[i].first - writes[i - 1].first >= 50ms);  // Sync: at most 20 writes/s
    CHECK(writes[i].second > writes[i - 1].second);        // never an older state after a newer
  }
  CHECK(s.counts().offers == 1000);
  CHECK(s.counts().coalesced == 1000 - writes.size());
  CHECK(s.pending() == 0);
  CHECK(s.in_flight() == 0);
}

TEST_CASE("write schedule: one write in flight per key, newer offers wait and replace each other",
          "[write_schedule]") {
  write_schedule s{limits()};
  s.offer("k", 1, t0);
  auto t = s.next_ready(t0);
  REQUIRE(t);
  CHECK(t->revision == 1);
  s.offer("k", 2, t0 + 100ms);
  s.offer("k", 3, t0 + 100ms);
  CHECK_FALSE(s.next_ready(t0 + 200ms));  // 1 is still in flight
  CHECK(s.counts().coalesced == 1);       // 2 was replaced by 3 before anything sent it
  // Stale and repeated offers are ignored.
  CHECK_FALSE(s.offer("k", 3, t0 + 200ms));
  CHECK_FALSE(s.offer("k", 1, t0 + 200ms));
  CHECK(s.counts().stale == 2);

  CHECK(s.complete("k", 1, write_result::ok(), t0 + 210ms).what == write_completion::kind::again);
  t = s.next_ready(t0 + 210ms);
  REQUIRE(t);
  CHECK(t->revision == 3);
  CHECK(s.complete("k", 3, write_result::ok(), t0 + 220ms).what == write_completion::kind::done);
  CHECK_FALSE(s.next_wakeup());
  CHECK(s.complete("k", 3, write_result::ok(), t0 + 230ms).what == write_completion::kind::unknown);
}

TEST_CASE("write schedule: a newer revision after a success waits min_interval from the last start",
          "[write_schedule]") {
  write_schedule s{limits()};
  s.offer("k", 1, t0);
  REQUIRE(s.next_ready(t0));
  s.complete("k", 1, write_result::ok(), t0 + 5ms);
  s.offer("k", 2, t0 + 10ms);
  CHECK_FALSE(s.next_ready(t0 + 10ms));
  REQUIRE(s.next_wakeup());
  CHECK(*s.next_wakeup() <= t0 + 50ms);
  CHECK_FALSE(s.next_ready(t0 + 49ms));
  CHECK(*s.next_wakeup() == t0 + 50ms);  // re-evaluated: exactly the group's next slot
  auto t = s.next_ready(t0 + 50ms);
  REQUIRE(t);
  CHECK(t->revision == 2);
}

TEST_CASE("write schedule: the writer may write a newer state than offered", "[write_schedule]") {
  write_schedule s{limits()};
  s.offer("k", 1, t0);
  REQUIRE(s.next_ready(t0));
  s.offer("k", 2, t0 + 1ms);
  // It loaded revision 3 from the store and wrote it: 2 and a late offer of 3 are done too.
  CHECK(s.complete("k", 3, write_result::ok(), t0 + 2ms).what == write_completion::kind::done);
  CHECK_FALSE(s.offer("k", 3, t0 + 3ms));
  CHECK_FALSE(s.next_wakeup());
}

TEST_CASE("write schedule: concurrency bounds writes in flight, keys take turns",
          "[write_schedule]") {
  write_schedule s{limits(2, 0ms)};
  for (const char* k : {"a", "b", "c", "d"})
    s.offer(k, 1, t0);
  auto first = drain(s, t0);
  REQUIRE(first.size() == 2);
  CHECK(first[0].key == "a");
  CHECK(first[1].key == "b");
  CHECK_FALSE(s.next_wakeup());  // no free slot: a completion wakes the caller
  // "a" is hot: a new revision right away. It queues behind c and d, which waited longer.
  s.offer("a", 2, t0 + 1ms);
  s.complete("a", 1, write_result::ok(), t0 + 1ms);
  s.complete("b", 1, write_result::ok(), t0 + 1ms);
  auto second = drain(s, t0 + 1ms);
  REQUIRE(second.size() == 2);
  CHECK(second[0].key == "c");
  CHECK(second[1].key == "d");
  s.complete("c", 1, write_result::ok(), t0 + 2ms);
  auto third = drain(s, t0 + 2ms);
  REQUIRE(third.size() == 1);
  CHECK(third[0].key == "a");
  CHECK(third[0].revision == 2);
}

TEST_CASE("write schedule: fairness, a hot key does not starve 50 cold ones", "[write_schedule]") {
  write_schedule s{limits(1, 50ms)};
  std::map<std::string, int> written;
  std::uint64_t hot = 0;
  for (int i = 0; i < 50; ++i)
    s.offer("cold-" + std::to_string(i), 1, t0);
  // 1 in flight at a time, each write takes 1 ms; the hot key gets a revision every ms.
  auto now = t0;
  for (int ms = 0; ms < 200; ++ms, now += 1ms) {
    s.offer("hot", ++hot, now);
    for (const auto& t : drain(s, now)) {
      ++written[t.key];
      s.complete(t.key, t.revision, write_result::ok(), now + 1ms);
    }
  }
  // 200 ms of one lane: every cold key got its write, the hot one stayed paced.
  for (int i = 0; i < 50; ++i)
    CHECK(written["cold-" + std::to_string(i)] == 1);
  CHECK(written["hot"] <= 5);
  CHECK(written["hot"] >= 1);
}

TEST_CASE("write schedule: a 429 delays only that key, by its Retry-After", "[write_schedule]") {
  write_schedule s{limits(4, 50ms)};
  s.offer("limited", 1, t0);
  s.offer("other", 1, t0);
  REQUIRE(drain(s, t0).size() == 2);
  CHECK(s.complete("limited", 1, write_result::retry_in(2s), t0 + 1ms).what ==
        write_completion::kind::again);
  s.complete("other", 1, write_result::ok(), t0 + 1ms);
  s.offer("other", 2, t0 + 60ms);
  s.offer("limited", 2, t0 + 60ms);  // newer state: still waits for the Retry-After
  auto ready = drain(s, t0 + 60ms);
  REQUIRE(ready.size() == 1);
  CHECK(ready[0].key == "other");
  s.complete("other", 2, write_result::ok(), t0 + 61ms);
  CHECK_FALSE(s.next_ready(t0 + 2000ms));
  auto retry = s.next_ready(t0 + 2001ms);
  REQUIRE(retry);
  CHECK(retry->key == "limited");
  CHECK(retry->revision == 2);  // the retry carries the newest revision
  CHECK(retry->attempt == 2);
  CHECK(s.counts().retried == 1);
}

TEST_CASE(
    "write schedule: backoff grows with jitter within bounds, dead after max_attempts, a "
    "newer revision starts afresh",
    "[write_schedule]") {
  write_schedule s{limits(4, 0ms, 4), 42};
  s.offer("k", 7, t0);
  auto now = t0;
  std::vector<std::chrono::milliseconds> delays;
  for (int attempt = 1; attempt <= 3; ++attempt) {
    auto t = s.next_ready(now);
    REQUIRE(t);
    CHECK(t->attempt == static_cast<std::size_t>(attempt));
    CHECK(s.complete("k", 7, write_result::backoff(), now).what == write_completion::kind::again);
    REQUIRE(s.next_wakeup());
    delays.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(*s.next_wakeup() - now));
    now = *s.next_wakeup();
  }
  CHECK(delays[0] >= 50ms);
  CHECK(delays[0] <= 100ms);
  CHECK(delays[1] >= 100ms);
  CHECK(delays[1] <= 200ms);
  CHECK(delays[2] >= 200ms);
  CHECK(delays[2] <= 400ms);
  REQUIRE(s.next_ready(now));
  auto end = s.complete("k", 7, write_result::backoff(), now);
  CHECK(end.what == write_completion::kind::dead);
  CHECK(end.revision == 7);
  CHECK(end.attempts == 4);
  CHECK_FALSE(s.next_wakeup());
  CHECK_FALSE(s.offer("k", 7, now));  // the dead revision is not tried again

  s.offer("k", 8, now + 1ms);
  auto fresh = s.next_ready(now + 1ms);
  REQUIRE(fresh);
  CHECK(fresh->revision == 8);
  CHECK(fresh->attempt == 1);
}

TEST_CASE("write schedule: give_up is dead at once, other keys go on", "[write_schedule]") {
  write_schedule s{limits()};
  s.offer("bad", 1, t0);
  s.offer("good", 1, t0);
  REQUIRE(drain(s, t0).size() == 2);
  CHECK(s.complete("bad", 1, write_result::give_up(), t0).what == write_completion::kind::dead);
  CHECK(s.complete("good", 1, write_result::ok(), t0).what == write_completion::kind::done);
  CHECK(s.counts().dead == 1);
  CHECK(s.counts().ok == 1);
}

TEST_CASE("write schedule: map items share their map's pace", "[write_schedule]") {
  write_schedule s{limits(4, 50ms)};
  for (int i = 0; i < 4; ++i)
    s.offer("item-" + std::to_string(i), 1, t0, "map leads");
  std::vector<time_point> starts;
  auto now = t0;
  while (s.next_wakeup()) {
    now = std::max(now, *s.next_wakeup());
    for (const auto& t : drain(s, now)) {
      starts.push_back(now);
      s.complete(t.key, t.revision, write_result::ok(), now);
    }
  }
  REQUIRE(starts.size() == 4);
  for (std::size_t i = 1; i < starts.size(); ++i)
    CHECK(starts[i] - starts[i - 1] >= 50ms);
}

TEST_CASE("write schedule: idle keys are forgotten, so memory follows activity",
          "[write_schedule]") {
  write_schedule s{limits(8, 50ms)};
  for (int i = 0; i < 1000; ++i)
    s.offer("k" + std::to_string(i), 1, t0);
  auto now = t0;
  for (const auto& t : drain(s, now))
    s.complete(t.key, t.revision, write_result::ok(), now);
  while (s.next_wakeup()) {
    now = std::max(now, *s.next_wakeup());
    for (const auto& t : drain(s, now))
      s.complete(t.key, t.revision, write_result::ok(), now);
  }
  CHECK(s.counts().ok == 1000);
  CHECK(s.remembered() == 1000);
  s.next_ready(now + 2s);
  CHECK(s.remembered() == 0);
}

TEST_CASE("write schedule: forget_written takes the same revisions again (a re-push)",
          "[write_schedule]") {
  write_schedule s{limits(4, 0ms)};
  s.offer("k", 5, t0);
  REQUIRE(s.next_ready(t0));
  s.complete("k", 5, write_result::ok(), t0);
  CHECK_FALSE(s.offer("k", 5, t0 + 1ms));
  s.forget_written();
  CHECK(s.offer("k", 5, t0 + 2ms));
  auto t = s.next_ready(t0 + 2ms);
  REQUIRE(t);
  CHECK(t->revision == 5);
}

TEST_CASE("write schedule: properties under random offers, latencies and failures",
          "[write_schedule]") {
  // Invariants that must hold whatever happens: never more than `concurrency` in flight, never
  // two writes of one key at once, starts of one object at least min_interval apart, written
  // revisions of a key only grow, and in the end every key holds its newest revision.
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    INFO("seed " << seed);
    std::mt19937_64 rng{seed};
    auto draw = [&](int n) { return static_cast<int>(rng() % static_cast<std::uint64_t>(n)); };
    write_schedule s{limits(3, 50ms, 1000), seed};
    struct flying {
      write_ticket ticket;
      time_point ends;
    };
    std::vector<flying> in_flight;
    std::map<std::string, std::uint64_t> newest, written;
    std::map<std::string, time_point> last_start;
    std::uint64_t revision = 0;
    auto now = t0;
    auto finish_due = [&] {
      for (auto it = in_flight.begin(); it != in_flight.end();) {
        if (it->ends > now) {
          ++it;
          continue;
        }
        const auto roll = draw(10);
        const auto result = roll < 6 ? write_result::ok()
                            : roll < 8
                                ? write_result::retry_in(std::chrono::milliseconds{draw(300)})
                                : write_result::backoff();
        if (result.what == write_result::kind::ok) {
          CHECK(it->ticket.revision > written[it->ticket.key]);
          written[it->ticket.key] = it->ticket.revision;
        }
        s.complete(it->ticket.key, it->ticket.revision, result, now);
        it = in_flight.erase(it);
      }
    };
    auto start_ready = [&] {
      while (auto t = s.next_ready(now)) {
        for (const auto& f : in_flight)
          CHECK(f.ticket.key != t->key);
        if (auto it = last_start.find(t->key); it != last_start.end())
          CHECK(now - it->second >= 50ms);
        last_start[t->key] = now;
        in_flight.push_back({*t, now + std::chrono::milliseconds{1 + draw(80)}});
        CHECK(in_flight.size() <= 3);
      }
    };
    for (int step = 0; step < 3000; ++step) {
      now += std::chrono::milliseconds{draw(3)};
      if (draw(2) == 0) {
        const auto key = "k" + std::to_string(draw(6));
        newest[key] = ++revision;
        s.offer(key, revision, now);
      }
      finish_due();
      start_ready();
    }
    // Drain: no more offers; keep going until every write is done.
    for (int guard = 0; guard < 100000 && (!in_flight.empty() || s.next_wakeup()); ++guard) {
      now += 1ms;
      finish_due();
      start_ready();
    }
    CHECK(in_flight.empty());
    for (const auto& [key, rev] : newest)
      CHECK(written[key] == rev);
  }
}
