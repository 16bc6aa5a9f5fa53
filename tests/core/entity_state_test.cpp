// The state pipeline's pure decisions (src/core/entity_state.cpp): stale/apply and the merge.

#include "core/entity_state.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

using namespace switchboard::core;
namespace json = boost::json;

TEST_CASE("entity_state: a new entity always applies", "[entity_state]") {
  CHECK(decide(std::nullopt, 3, 10) == entity_decision::apply);
  CHECK(decide(std::nullopt, std::nullopt, 1) == entity_decision::apply);
}

TEST_CASE("entity_state: versions decide when the event has one", "[entity_state]") {
  const entity_position stored{5, 100};
  CHECK(decide(stored, 6, 50) == entity_decision::apply);  // journal order does not matter
  CHECK(decide(stored, 5, 101) == entity_decision::already_applied);
  CHECK(decide(stored, 4, 101) == entity_decision::stale);
  CHECK(decide(stored, 0, 101) == entity_decision::stale);
  // Only unversioned events so far: any version applies.
  CHECK(decide(entity_position{std::nullopt, 100}, 1, 101) == entity_decision::apply);
  // Versions beyond SQLite's integers are clamped, as the store clamps them.
  CHECK(decide(entity_position{INT64_MAX, 1}, UINT64_MAX, 2) == entity_decision::already_applied);
}

TEST_CASE("entity_state: journal order decides when the event has no version", "[entity_state]") {
  const entity_position stored{5, 100};
  CHECK(decide(stored, std::nullopt, 101) == entity_decision::apply);
  CHECK(decide(stored, std::nullopt, 100) == entity_decision::already_applied);
  CHECK(decide(stored, std::nullopt, 99) == entity_decision::stale);
}

TEST_CASE("entity_state: data members replace top-level members of the base", "[entity_state]") {
  const auto base =
      json::parse(R"({"status":"new","manager":{"id":1,"since":"x"},"keep":true})").as_object();
  const auto data =
      json::parse(R"({"status":"approved","manager":{"id":2},"note":null})").as_object();
  const auto merged = merge_base(base, data);
  CHECK(merged == json::parse(R"({"status":"approved","manager":{"id":2},"keep":true,"note":null})")
                      .as_object());
  CHECK(merge_base({}, data) == data);
  CHECK(merge_base(base, {}) == base);
}

TEST_CASE("entity_state: lookup parameters come from dotted paths, all or nothing",
          "[entity_state]") {
  const auto base =
      json::parse(
          R"({"managerId":42,"applicant":{"email":"a@b.c","tags":["x"]},"gone":null,"ratio":0.5})")
          .as_object();
  auto p = lookup_params(base, {"managerId", "applicant.email", "ratio"});
  REQUIRE(p);
  CHECK(*p == std::vector<json::value>{42, "a@b.c", 0.5});
  CHECK(lookup_params(base, {})->empty());
  CHECK_FALSE(lookup_params(base, {"managerId", "missing"}));
  CHECK_FALSE(lookup_params(base, {"gone"}));            // null: no row to look up
  CHECK_FALSE(lookup_params(base, {"applicant"}));       // objects are not bindable
  CHECK_FALSE(lookup_params(base, {"applicant.tags"}));  // nor arrays
  CHECK_FALSE(lookup_params(base, {"managerId.x"}));
}
