// Tests for RFC 3339 -> Unix time (src/core/time.cpp), which places events on the journal's
// time axis for replay-from-time.

#include "core/time.hpp"

#include "switchboard/event.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <optional>
#include <string>

using switchboard::core::rfc2822_to_unix_seconds;
using switchboard::core::rfc3339_to_unix_micros;

namespace {
constexpr std::int64_t second = 1'000'000;
}

TEST_CASE("RFC 3339 UTC timestamps convert to Unix microseconds", "[time]") {
  CHECK(rfc3339_to_unix_micros("1970-01-01T00:00:00Z") == 0);
  CHECK(rfc3339_to_unix_micros("2026-11-23T14:00:00Z") == 1'795'442'400 * second);
  CHECK(rfc3339_to_unix_micros("2024-02-29T12:34:56Z") == 1'709'210'096 * second);
  CHECK(rfc3339_to_unix_micros("0001-01-01T00:00:00Z") == -62'135'596'800 * second);
  CHECK(rfc3339_to_unix_micros("9999-12-31T23:59:59Z") == 253'402'300'799 * second);
  CHECK(rfc3339_to_unix_micros("1969-12-31T23:59:59.5Z") == -second / 2);
  // Lower-case separators are allowed by RFC 3339 (and by the codec).
  CHECK(rfc3339_to_unix_micros("2026-11-23t14:00:00z") == 1'795'442'400 * second);
}

TEST_CASE("fractions of a second keep microseconds and truncate the rest", "[time]") {
  const auto base = 1'795'442'400 * second;
  CHECK(rfc3339_to_unix_micros("2026-11-23T14:00:00.1Z") == base + 100'000);
  CHECK(rfc3339_to_unix_micros("2026-11-23T14:00:00.123Z") == base + 123'000);
  CHECK(rfc3339_to_unix_micros("2026-11-23T14:00:00.123456Z") == base + 123'456);
  CHECK(rfc3339_to_unix_micros("2026-11-23T14:00:00.1234569999Z") == base + 123'456);
}

TEST_CASE("offsets are subtracted to give UTC", "[time]") {
  const auto utc = rfc3339_to_unix_micros("2026-11-23T14:00:00Z");
  REQUIRE(utc);
  CHECK(rfc3339_to_unix_micros("2026-11-23T15:00:00+01:00") == utc);
  CHECK(rfc3339_to_unix_micros("2026-11-23T08:30:00-05:30") == utc);
  CHECK(rfc3339_to_unix_micros("2026-11-24T13:59:00+23:59") == utc);
  CHECK(rfc3339_to_unix_micros("2026-11-23T14:00:00-00:00") == utc);
}

TEST_CASE("a leap second counts as the first second of the next minute", "[time]") {
  CHECK(rfc3339_to_unix_micros("2016-12-31T23:59:60Z") ==
        rfc3339_to_unix_micros("2017-01-01T00:00:00Z"));
}

TEST_CASE("malformed or impossible timestamps give nothing", "[time]") {
  for (const char* bad : {"",
                          "2026-11-23",
                          "2026-11-23 14:00:00Z",
                          "2026-11-23T14:00:00",
                          "2026-11-23T14:00Z",
                          "2026-11-23T14:00:00.Z",
                          "2026-11-23T14:00:00+1:00",
                          "2026-11-23T14:00:00+01",
                          "2026-11-23T14:00:00Zjunk",
                          "26-11-23T14:00:00Z",
                          "2026-00-10T00:00:00Z",
                          "2026-13-01T00:00:00Z",
                          "2026-04-31T00:00:00Z",
                          "2023-02-29T00:00:00Z",
                          "1900-02-29T00:00:00Z",
                          "2026-11-23T24:00:00Z",
                          "2026-11-23T14:60:00Z",
                          "2026-11-23T14:00:61Z",
                          "2026-11-23T14:00:00+24:00",
                          "2026-11-23T14:00:00+01:60",
                          "2026-11-2xT14:00:00Z",
                          "+2026-11-23T14:00:00Z"}) {
    INFO(bad);
    CHECK_FALSE(rfc3339_to_unix_micros(bad));
  }
  CHECK(rfc3339_to_unix_micros("2000-02-29T00:00:00Z"));  // 400-year rule: a leap year
}

TEST_CASE("accepts exactly the times the event codec accepts", "[time]") {
  // The journal converts every stored event's time; a time the codec let in but this parser
  // refused would make the journal reject a valid event.
  switchboard::event ev;
  ev.id = "e-1";
  ev.source = "tests";
  ev.type = "t";
  ev.entity_kind = "k";
  ev.entity_id = "1";
  for (const char* t :
       {"2026-11-23T14:00:00Z", "2026-11-23t14:00:00.5z", "2026-11-23T14:00:00.123456789+23:59",
        "2016-12-31T23:59:60-00:00", "0000-01-01T00:00:00Z", "2026-11-23T14:00:00",
        "2026-02-29T00:00:00Z", "2026-11-23T14:00:00+24:00", "2026-11-23T14:00:00.Z",
        "2026-11-23T14:00:00Z ", "2026-11-23T14:00:00+01:00x"}) {
    INFO(t);
    ev.time = t;
    CHECK(rfc3339_to_unix_micros(t).has_value() == !switchboard::validate_event(ev).has_value());
  }
}

TEST_CASE("RFC 2822 dates as Twilio's 2010-04-01 API writes them", "[time]") {
  CHECK(rfc2822_to_unix_seconds("Thu, 01 Jan 1970 00:00:00 +0000") == 0);
  CHECK(rfc2822_to_unix_seconds("Thu, 24 Aug 2023 05:01:45 +0000") == 1692853305);
  CHECK(rfc2822_to_unix_seconds("24 Aug 2023 07:01:45 +0200") == 1692853305);
  CHECK(rfc2822_to_unix_seconds("Wed, 23 Aug 2023 23:01:45 -0600") == 1692853305);
  CHECK_FALSE(rfc2822_to_unix_seconds(""));
  CHECK_FALSE(rfc2822_to_unix_seconds("2023-08-24T05:01:45Z"));
  CHECK_FALSE(rfc2822_to_unix_seconds("Thu, 24 Foo 2023 05:01:45 +0000"));
  CHECK_FALSE(rfc2822_to_unix_seconds("Thu, 31 Feb 2023 05:01:45 +0000"));
  CHECK_FALSE(rfc2822_to_unix_seconds("Thu, 24 Aug 2023 05:01:45"));
  CHECK_FALSE(rfc2822_to_unix_seconds("Thu, 24 Aug 2023 05:01:45 +0000 trailing"));
}
