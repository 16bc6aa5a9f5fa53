#include "switchboard/supervision.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using namespace switchboard;
using sizes = std::vector<std::size_t>;

TEST_CASE("strategies choose which children restart", "[supervision]") {
  CHECK(children_to_restart(restart_strategy::one_for_one, 1, 4) == sizes{1});
  CHECK(children_to_restart(restart_strategy::one_for_all, 1, 4) == sizes{0, 1, 2, 3});
  CHECK(children_to_restart(restart_strategy::rest_for_one, 1, 4) == sizes{1, 2, 3});
  CHECK(children_to_restart(restart_strategy::rest_for_one, 3, 4) == sizes{3});
  CHECK(children_to_restart(restart_strategy::one_for_all, 4, 4).empty());  // no such child
}

TEST_CASE("restart policies decide by how a child ended", "[supervision]") {
  CHECK(should_restart(restart_policy::permanent, false));
  CHECK(should_restart(restart_policy::permanent, true));
  CHECK_FALSE(should_restart(restart_policy::transient, false));
  CHECK(should_restart(restart_policy::transient, true));
  CHECK_FALSE(should_restart(restart_policy::temporary, true));
}

TEST_CASE("the restart window allows N restarts per period and then refuses", "[supervision]") {
  restart_window w{{3, 1000ms}};
  restart_window::time_point t0{std::chrono::hours(1)};
  CHECK(w.try_record(t0));
  CHECK(w.try_record(t0 + 100ms));
  CHECK(w.try_record(t0 + 200ms));
  CHECK_FALSE(w.try_record(t0 + 300ms));  // a fourth within one second
  CHECK(w.recent(t0 + 300ms) == 3);
  CHECK(w.recent(t0 + 1000ms) == 2);  // the first has left the window (half-open)
  CHECK(w.try_record(t0 + 1000ms));
  CHECK_FALSE(w.try_record(t0 + 1050ms));
  CHECK(w.recent(t0 + 5s) == 0);
}

TEST_CASE("a zero intensity refuses the first restart", "[supervision]") {
  restart_window w{{0, 1000ms}};
  CHECK_FALSE(w.try_record(restart_window::time_point{std::chrono::hours(1)}));
}

TEST_CASE("backoff doubles up to its cap", "[supervision]") {
  restart_backoff b{10ms, 70ms};
  CHECK(backoff_delay(b, 1) == 10ms);
  CHECK(backoff_delay(b, 2) == 20ms);
  CHECK(backoff_delay(b, 3) == 40ms);
  CHECK(backoff_delay(b, 4) == 70ms);
  CHECK(backoff_delay(b, 60) == 70ms);  // no overflow for long streaks
  CHECK(backoff_delay({0ms, 1s}, 5) == 0ms);
}
