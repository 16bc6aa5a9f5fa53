#include "core/policy/backoff.hpp"

#include "switchboard/supervision.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>

using namespace std::chrono_literals;
using switchboard::core::backoff_delay;
using switchboard::core::backoff_policy;
using switchboard::core::doubling_delay;
using switchboard::core::jittered;

TEST_CASE("backoff doubles from initial with each attempt", "[backoff]") {
  CHECK(doubling_delay(10ms, 1s, 1) == 10ms);
  CHECK(doubling_delay(10ms, 1s, 2) == 20ms);
  CHECK(doubling_delay(10ms, 1s, 3) == 40ms);
  CHECK(doubling_delay(10ms, 1s, 4) == 80ms);
  CHECK(doubling_delay(10ms, 1s, 0) == 10ms);  // attempt 0 counts as the first
  CHECK(doubling_delay(0ms, 1s, 5) == 0ms);
  CHECK(doubling_delay(-5ms, 1s, 5) == 0ms);
}

TEST_CASE("backoff stops at its cap, even for very long streaks", "[backoff]") {
  CHECK(doubling_delay(10ms, 70ms, 4) == 70ms);
  CHECK(doubling_delay(10ms, 70ms, 1000) == 70ms);
  CHECK(doubling_delay(10ms, 80ms, 4) == 80ms);
  CHECK(doubling_delay(100ms, 50ms, 1) == 50ms);  // a cap below initial wins
  const auto huge = std::chrono::milliseconds::max();
  CHECK(doubling_delay(huge / 3, huge, 64) == huge);  // no overflow near the limit
  CHECK(doubling_delay(1ms, huge, 200) == huge);
}

TEST_CASE("jitter scales the delay by 1 - jitter to 1 + jitter", "[backoff]") {
  CHECK(jittered(1000ms, 0.2, 0.0) == 800ms);
  CHECK(jittered(1000ms, 0.2, 0.5) == 1000ms);
  CHECK(jittered(1000ms, 0.2, 1.0) == 1200ms);
  CHECK(jittered(1000ms, 0.2, 0.25) == 900ms);
  CHECK(jittered(1000ms, 0.0, 0.9) == 1000ms);  // no jitter
  CHECK(jittered(1000ms, 0.2, -3.0) == 800ms);  // u clamped to [0, 1]
  CHECK(jittered(1000ms, 0.2, 7.0) == 1200ms);
  CHECK(jittered(1000ms, 5.0, 1.0) == 2000ms);  // jitter clamped to 1
  CHECK(jittered(10ms, 0.25, 0.5) == 10ms);
  CHECK(jittered(3ms, 0.5, 0.0) == 2ms);  // 1.5 rounds to nearest
}

TEST_CASE("backoff_delay: doubling, cap, then jitter with the caller's value", "[backoff]") {
  const backoff_policy p{50ms, 400ms, 0.2};
  CHECK(backoff_delay(p, 1, 0.5) == 50ms);
  CHECK(backoff_delay(p, 2, 0.0) == 80ms);
  CHECK(backoff_delay(p, 3, 1.0) == 240ms);
  CHECK(backoff_delay(p, 10, 0.0) == 320ms);  // capped at 400, then jittered below it
  CHECK(backoff_delay(p, 10, 1.0) == 480ms);  // the jitter applies after the cap
}

TEST_CASE("backoff_delay with a generator stays inside the jitter bounds", "[backoff]") {
  const backoff_policy p{100ms, 1600ms, 0.25};
  std::mt19937_64 rng{42};
  for (std::size_t attempt = 1; attempt <= 8; ++attempt) {
    const auto base = doubling_delay(p.initial, p.max, attempt);
    auto low = base, high = base;
    for (int i = 0; i < 500; ++i) {
      const auto d = backoff_delay(p, attempt, rng);
      CHECK(d >= base * 3 / 4);
      CHECK(d <= base * 5 / 4);
      low = std::min(low, d);
      high = std::max(high, d);
    }
    CHECK(low < base);  // it does spread, both ways
    CHECK(high > base);
  }
  // The same seed, the same delays: testable.
  std::mt19937_64 a{7}, b{7};
  for (std::size_t attempt = 1; attempt <= 5; ++attempt)
    CHECK(backoff_delay(p, attempt, a) == backoff_delay(p, attempt, b));
  // Without jitter nothing is drawn.
  std::mt19937_64 untouched{9}, reference{9};
  CHECK(backoff_delay(backoff_policy{100ms, 1s, 0}, 3, untouched) == 400ms);
  CHECK(untouched() == reference());
}

TEST_CASE("backoff_delay with the thread's own generator stays inside the bounds", "[backoff]") {
  const backoff_policy p{200ms, 5s, 0.1};
  for (int i = 0; i < 200; ++i) {
    const auto d = backoff_delay(p, 2);
    CHECK(d >= 360ms);
    CHECK(d <= 440ms);
  }
}

TEST_CASE("the supervision backoff_delay still doubles up to its cap", "[backoff]") {
  using switchboard::restart_backoff;
  CHECK(switchboard::backoff_delay(restart_backoff{10ms, 70ms}, 0) == 0ms);
  CHECK(switchboard::backoff_delay(restart_backoff{10ms, 70ms}, 3) == 40ms);
  CHECK(switchboard::backoff_delay(restart_backoff{10ms, 70ms}, 9) == 70ms);
  // Its cap never shortens the first delay.
  CHECK(switchboard::backoff_delay(restart_backoff{100ms, 50ms}, 1) == 100ms);
  CHECK(switchboard::backoff_delay(restart_backoff{100ms, 50ms}, 4) == 100ms);
}
