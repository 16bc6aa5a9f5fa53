// The ack window: acks cover the longest completed prefix of deliveries, in one ack.

#include "core/ack_window.hpp"

#include <catch2/catch.hpp>

using switchboard::core::ack_window;

TEST_CASE("acks cover the longest completed prefix, grouped", "[ack_window]") {
  ack_window w;
  for (std::uint64_t tag = 1; tag <= 6; ++tag)
    w.delivered(tag);
  CHECK(w.take_ackable().count == 0);  // nothing durable yet: nothing to ack

  CHECK(w.complete(3));
  CHECK(w.take_ackable().count == 0);  // 1 and 2 are still open
  CHECK(w.complete(1));
  auto a = w.take_ackable();
  CHECK(a.up_to == 1);
  CHECK(a.count == 1);

  CHECK(w.complete(2));
  CHECK(w.complete(4));
  a = w.take_ackable();
  CHECK(a.up_to == 4);  // one ack, multiple=true, for 2, 3 and 4
  CHECK(a.count == 3);
  CHECK(w.size() == 2);
}

TEST_CASE("completions of unknown, acknowledged or completed tags are ignored", "[ack_window]") {
  ack_window w;
  w.delivered(10);
  w.delivered(11);
  CHECK_FALSE(w.complete(9));
  CHECK_FALSE(w.complete(12));
  CHECK(w.complete(10));
  CHECK_FALSE(w.complete(10));
  CHECK(w.take_ackable().up_to == 10);
  CHECK_FALSE(w.complete(10));  // already acknowledged
  w.clear();
  CHECK_FALSE(w.complete(11));  // the channel is gone
  CHECK(w.size() == 0);
}

TEST_CASE("non-consecutive tags still complete the right delivery", "[ack_window]") {
  ack_window w;
  w.delivered(1);
  w.delivered(5);
  w.delivered(6);
  CHECK(w.complete(6));
  CHECK(w.complete(1));
  CHECK(w.take_ackable().up_to == 1);
  CHECK(w.complete(5));
  auto a = w.take_ackable();
  CHECK(a.up_to == 6);
  CHECK(a.count == 2);
}
