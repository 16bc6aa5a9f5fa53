// Cache-aside for enrichment lookups (src/core/lookup_cache.cpp) with an injected clock.

#include "core/lookup_cache.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include <string>

using namespace switchboard::core;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

struct fake_clock {
  lookup_cache::time_point now{};
  lookup_cache::clock fn() {
    return [this] { return now; };
  }
};

json::value row(const std::string& name) { return json::object{{"name", name}}; }

}  // namespace

TEST_CASE("lookup_cache: a stored row is a hit until its time to live ends", "[lookup_cache]") {
  fake_clock t;
  lookup_cache cache(1000ms, 10, t.fn());
  auto miss = cache.find("manager", {42});
  CHECK_FALSE(miss.value);
  CHECK(cache.store("manager", {42}, row("Ann"), miss.ticket));
  auto hit = cache.find("manager", {42});
  REQUIRE(hit.value);
  CHECK(*hit.value == row("Ann"));
  CHECK_FALSE(cache.find("manager", {43}).value);  // other params
  CHECK_FALSE(cache.find("other", {42}).value);    // other lookup

  t.now += 999ms;
  CHECK(cache.find("manager", {42}).value);
  t.now += 1ms;
  CHECK_FALSE(cache.find("manager", {42}).value);
  const auto s = cache.stats();
  CHECK(s.hits == 2);
  CHECK(s.misses == 4);
  CHECK(s.expirations == 1);
  CHECK(s.entries == 0);
}

TEST_CASE("lookup_cache: 'no row' is cached too", "[lookup_cache]") {
  fake_clock t;
  lookup_cache cache(1000ms, 10, t.fn());
  cache.store("manager", {7}, nullptr);
  auto hit = cache.find("manager", {7});
  REQUIRE(hit.value);
  CHECK(hit.value->is_null());
}

TEST_CASE("lookup_cache: the least recently used entry is evicted at the size bound",
          "[lookup_cache]") {
  fake_clock t;
  lookup_cache cache(1h, 2, t.fn());
  cache.store("m", {1}, row("one"));
  cache.store("m", {2}, row("two"));
  CHECK(cache.find("m", {1}).value);  // 1 is now more recent than 2
  cache.store("m", {3}, row("three"));
  CHECK(cache.find("m", {1}).value);
  CHECK_FALSE(cache.find("m", {2}).value);
  CHECK(cache.find("m", {3}).value);
  CHECK(cache.stats().evictions == 1);
  CHECK(cache.stats().entries == 2);
  // Replacing a cached key does not evict.
  cache.store("m", {3}, row("THREE"));
  CHECK(*cache.find("m", {3}).value == row("THREE"));
  CHECK(cache.stats().evictions == 1);
}

TEST_CASE("lookup_cache: invalidation drops an entry and refuses a racing store",
          "[lookup_cache]") {
  fake_clock t;
  lookup_cache cache(1h, 10, t.fn());
  cache.store("m", {42}, row("Ann"));
  // Parameters compare by text: an event carrying "42" invalidates the lookup bound to 42.
  CHECK(cache.invalidate("m", {"42"}));
  CHECK_FALSE(cache.find("m", {42}).value);
  CHECK_FALSE(cache.invalidate("m", {42}));
  CHECK(cache.stats().invalidations == 2);

  // A query that started before an invalidation may have read the old row: not cached.
  auto miss = cache.find("m", {42});
  cache.invalidate("m", {42});
  CHECK_FALSE(cache.store("m", {42}, row("Ann (old)"), miss.ticket));
  CHECK_FALSE(cache.find("m", {42}).value);
  CHECK(cache.stats().refused == 1);
  // A fresh read (rebuild) stores regardless.
  CHECK(cache.store("m", {42}, row("Bob")));
  CHECK(*cache.find("m", {42}).value == row("Bob"));
}

TEST_CASE("lookup_cache: keys keep parameters apart", "[lookup_cache]") {
  CHECK(lookup_cache::key("m", {"a", "b"}) != lookup_cache::key("m", {"ab"}));
  CHECK(lookup_cache::key("m", {1, 2}) != lookup_cache::key("m", {12}));
  CHECK(lookup_cache::key("m", {1}) == lookup_cache::key("m", {1.0}));
  CHECK(lookup_cache::key("m", {true}) != lookup_cache::key("m", {"1"}));
}

TEST_CASE("lookup_cache: a zero size or time to live caches nothing", "[lookup_cache]") {
  lookup_cache none(1h, 0);
  CHECK_FALSE(none.store("m", {1}, row("x")));
  CHECK_FALSE(none.find("m", {1}).value);
  lookup_cache instant(0ms, 10);
  instant.store("m", {1}, row("x"));
  CHECK_FALSE(instant.find("m", {1}).value);
}
