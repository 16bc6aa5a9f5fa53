// The publisher against the real broker: persistent messages confirmed one by one, and a
// refused publish (an exchange that does not exist) reported per message, with the reason.

#include "adapters/amqp/publisher.hpp"

#include "support/rabbitmq.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using namespace switchboard::adapters::amqp;
using switchboard::testing::rabbitmq_params;
using switchboard::testing::unique_name;

TEST_CASE("published messages are persistent and confirmed", "[amqp][rmq]") {
  const auto ex = unique_name("pub-ex"), q = unique_name("pub-q");
  amqp_publisher pub(rabbitmq_params(), 64);  // a small window: publish waits for confirms
  pub.raw().declare_fanout_exchange(ex, false);
  pub.raw().declare_queue(q, false);
  pub.raw().bind_queue(q, ex);
  outgoing_message m;
  m.message_id = "m-1";
  m.headers = {{"x-test", "yes"}};
  for (int i = 0; i < 500; ++i)
    CHECK(pub.publish(ex, "body " + std::to_string(i), m) == static_cast<std::uint64_t>(i + 1));
  REQUIRE(pub.wait_for_confirms(10s));
  CHECK(pub.acked() == 500);
  CHECK(pub.failed().empty());
  CHECK(pub.unconfirmed() == 0);

  connection conn(rabbitmq_params());
  CHECK(conn.declare_queue(q, true) == 500);
  auto first = conn.basic_get(q);
  REQUIRE(first);
  CHECK(first->body == "body 0");
  CHECK(first->persistent);
  CHECK(first->message_id == "m-1");
  CHECK(first->content_type == "application/vnd.masstransit+json");
  CHECK(first->header("x-test") == "yes");
  conn.delete_queue(q);
  conn.delete_exchange(ex);
}

TEST_CASE("a publish the broker refuses fails that message, with the broker's reason",
          "[amqp][rmq]") {
  amqp_publisher pub(rabbitmq_params());
  const auto missing = unique_name("no-such-exchange");
  const auto seq = pub.publish(missing, "lost?");
  CHECK_FALSE(pub.wait_for_confirms(10s));
  REQUIRE(pub.failed().size() == 1);
  CHECK(pub.failed()[0] == seq);
  CHECK(pub.acked() == 0);
  CHECK_THAT(pub.error(), Catch::Contains("404") && Catch::Contains(missing));
  CHECK_THROWS_AS(pub.publish(missing, "again"), amqp_error);
}
