// Supervisor behaviour on CAF's deterministic test scheduler: every message and every timer
// runs only when the test says so, and time moves only when the test advances it.

#include "engine/supervision/supervisor.hpp"

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using namespace switchboard;

namespace {

using crash_atom = caf::atom_constant<caf::atom("t_crash")>;
using throw_atom = caf::atom_constant<caf::atom("t_throw")>;
using leave_atom = caf::atom_constant<caf::atom("t_leave")>;

caf::behavior worker(caf::event_based_actor* self) {
  return {
      [self](crash_atom) { self->quit(caf::make_error(caf::sec::runtime_error, "boom")); },
      [](throw_atom) { throw std::runtime_error("thrown on purpose"); },
      [self](leave_atom) { self->quit(); },
  };
}

struct fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  std::shared_ptr<std::vector<std::string>> log = std::make_shared<std::vector<std::string>>();
  std::shared_ptr<std::map<std::string, caf::actor>> current =
      std::make_shared<std::map<std::string, caf::actor>>();
  caf::actor observer;
  std::vector<caf::actor> to_stop;

  fixture() {
    cfg.set("scheduler.policy", caf::atom("testing"));
    sys = std::make_unique<caf::actor_system>(cfg);
    sys->await_actors_before_shutdown(false);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
    sched->clock().current_time += std::chrono::hours(1);
    observer = sys->spawn([log = log](caf::event_based_actor*) -> caf::behavior {
      return {[log](const std::string& line) { log->push_back(line); },
              [log](const supervision_event& e) {
                std::string line = e.supervisor + ":" + std::string{to_string(e.what)};
                if (!e.child.empty())
                  line += ":" + e.child;
                if (e.what == supervision_event::kind::started)
                  line += "#" + std::to_string(e.generation);
                if (e.what == supervision_event::kind::restart_scheduled)
                  line += ":" + std::to_string(e.delay_ms) + "ms";
                log->push_back(line);
              }};
    });
  }

  ~fixture() {
    for (auto& a : to_stop)
      caf::anon_send_exit(a, caf::exit_reason::kill);
    caf::anon_send_exit(observer, caf::exit_reason::kill);
    sched->run();
  }

  child_spec child(std::string id, restart_policy policy = restart_policy::permanent) {
    return child_spec{id, policy, [id, cur = current](caf::actor_system& s) {
                        auto a = s.spawn(worker);
                        (*cur)[id] = a;
                        return a;
                      }};
  }

  supervisor_spec spec(std::string name, restart_strategy strategy,
                       std::vector<std::string> children, std::size_t max_restarts = 10,
                       std::chrono::milliseconds within = 10s,
                       std::chrono::milliseconds backoff = 10ms) {
    supervisor_spec s;
    s.name = std::move(name);
    s.strategy = strategy;
    s.intensity = {max_restarts, within};
    s.backoff = {backoff, 1s};
    s.observer = observer;
    for (auto& c : children)
      s.children.push_back(child(c));
    return s;
  }

  supervisor_actor start(supervisor_spec s) {
    auto sup = actors::spawn_supervisor(*sys, std::move(s));
    to_stop.push_back(caf::actor_cast<caf::actor>(sup));
    sched->run();
    return sup;
  }

  /// Records how an actor ended, as its parent would see it.
  void watch_exit(const supervisor_actor& sup, std::string label) {
    // Through the observer, so the line is ordered after the supervisor's last events.
    caf::actor_cast<caf::abstract_actor*>(sup)->attach_functor(
        [obs = observer, label](const caf::error& reason) {
          caf::anon_send(obs, label + ":exit:" + actors::describe_exit_reason(reason));
        });
  }

  /// Runs everything now runnable, then fires every timer and runs again, until quiet.
  void settle() {
    sched->run();
    while (sched->has_pending_timeout()) {
      sched->trigger_timeouts();
      sched->run();
    }
  }

  std::vector<std::string> take_log() {
    auto result = *log;
    log->clear();
    return result;
  }

  void crash(const std::string& id) { caf::anon_send(current->at(id), crash_atom::value); }
};

using lines = std::vector<std::string>;

}  // namespace

TEST_CASE_METHOD(fixture, "a supervisor starts its children in order", "[supervisor]") {
  start(spec("s", restart_strategy::one_for_one, {"a", "b", "c"}));
  CHECK(take_log() == lines{"s:started:a#1", "s:started:b#1", "s:started:c#1"});
}

TEST_CASE_METHOD(fixture, "one_for_one restarts only the failed child, after the backoff",
                 "[supervisor]") {
  start(spec("s", restart_strategy::one_for_one, {"a", "b", "c"}));
  take_log();
  auto old_b = current->at("b");
  crash("b");
  sched->run();
  CHECK(take_log() == lines{"s:failed:b", "s:restart_scheduled:10ms"});
  sched->advance_time(9ms);
  sched->run();
  CHECK(take_log().empty());  // the backoff has not elapsed
  sched->advance_time(1ms);
  sched->run();
  CHECK(take_log() == lines{"s:started:b#2"});
  CHECK(current->at("b") != old_b);
}

TEST_CASE_METHOD(fixture, "one_for_all stops the others in reverse order and restarts all",
                 "[supervisor]") {
  start(spec("s", restart_strategy::one_for_all, {"a", "b", "c", "d"}));
  take_log();
  crash("b");
  settle();
  CHECK(take_log() == lines{"s:failed:b", "s:stopped:d", "s:stopped:c", "s:stopped:a",
                            "s:restart_scheduled:10ms", "s:started:a#2", "s:started:b#2",
                            "s:started:c#2", "s:started:d#2"});
}

TEST_CASE_METHOD(fixture, "rest_for_one restarts the failed child and those started after it",
                 "[supervisor]") {
  start(spec("s", restart_strategy::rest_for_one, {"a", "b", "c", "d"}));
  take_log();
  crash("b");
  settle();
  CHECK(take_log() == lines{"s:failed:b", "s:stopped:d", "s:stopped:c", "s:restart_scheduled:10ms",
                            "s:started:b#2", "s:started:c#2", "s:started:d#2"});
}

TEST_CASE_METHOD(fixture, "a child that throws is restarted and the reason is reported",
                 "[supervisor]") {
  start(spec("s", restart_strategy::one_for_one, {"a"}));
  take_log();
  caf::anon_send(current->at("a"), throw_atom::value);
  settle();
  CHECK(take_log() == lines{"s:failed:a", "s:restart_scheduled:10ms", "s:started:a#2"});
}

TEST_CASE_METHOD(fixture, "restart policies: transient and temporary children", "[supervisor]") {
  auto s = spec("s", restart_strategy::one_for_one, {});
  s.children.push_back(child("perm", restart_policy::permanent));
  s.children.push_back(child("trans", restart_policy::transient));
  s.children.push_back(child("temp", restart_policy::temporary));
  auto sup = start(std::move(s));
  take_log();
  SECTION("a normal exit restarts only the permanent child") {
    caf::anon_send(current->at("perm"), leave_atom::value);
    caf::anon_send(current->at("trans"), leave_atom::value);
    caf::anon_send(current->at("temp"), leave_atom::value);
    settle();
    auto got = take_log();
    CHECK(std::count(got.begin(), got.end(), "s:started:perm#2") == 1);
    CHECK(std::count(got.begin(), got.end(), "s:started:trans#2") == 0);
    CHECK(std::count(got.begin(), got.end(), "s:started:temp#2") == 0);
  }
  SECTION("a crash restarts the transient child but not the temporary one") {
    crash("trans");
    crash("temp");
    settle();
    auto got = take_log();
    CHECK(std::count(got.begin(), got.end(), "s:started:trans#2") == 1);
    CHECK(std::count(got.begin(), got.end(), "s:started:temp#2") == 0);
  }
  std::vector<std::string> running;
  sys->spawn([sup, &running](caf::event_based_actor* self) {
    self->request(sup, caf::infinite, which_children_atom_v)
        .then([&running](const std::vector<std::string>& ids) { running = ids; });
  });
  settle();
  CHECK(std::find(running.begin(), running.end(), "perm") != running.end());
  CHECK(std::find(running.begin(), running.end(), "temp") == running.end());
}

TEST_CASE_METHOD(fixture, "backoff doubles with each restart inside the window", "[supervisor]") {
  start(spec("s", restart_strategy::one_for_one, {"a"}, 10, 10s, 10ms));
  take_log();
  for (int i = 0; i < 4; ++i) {
    crash("a");
    settle();
  }
  auto got = take_log();
  lines delays;
  for (auto& l : got)
    if (l.rfind("s:restart_scheduled", 0) == 0)
      delays.push_back(l);
  CHECK(delays == lines{"s:restart_scheduled:10ms", "s:restart_scheduled:20ms",
                        "s:restart_scheduled:40ms", "s:restart_scheduled:80ms"});
}

TEST_CASE_METHOD(fixture, "exceeding the restart intensity stops all children and escalates",
                 "[supervisor]") {
  auto sup = start(spec("s", restart_strategy::one_for_one, {"a", "b", "c"}, 2, 1s, 0ms));
  watch_exit(sup, "s");
  take_log();
  crash("b");
  settle();
  crash("b");
  settle();
  CHECK(take_log() == lines{"s:failed:b", "s:restart_scheduled:0ms", "s:started:b#2", "s:failed:b",
                            "s:restart_scheduled:0ms", "s:started:b#3"});
  crash("b");  // the third failure within 1 s: more than 2 restarts
  settle();
  auto got = take_log();
  REQUIRE(got.size() == 5);
  CHECK(got[0] == "s:failed:b");
  CHECK(got[1] == "s:escalated:b");
  CHECK(got[2] == "s:stopped:c");
  CHECK(got[3] == "s:stopped:a");
  CHECK(got[4].find(
            "s:exit:supervisor 's' gave up: child 'b' failed more than 2 times within 1000 ms") ==
        0);
  CHECK(got[4].find("last reason: runtime_error: boom") != std::string::npos);
}

TEST_CASE_METHOD(fixture, "failures outside the intensity window do not add up", "[supervisor]") {
  auto sup = start(spec("s", restart_strategy::one_for_one, {"a"}, 2, 1s, 0ms));
  watch_exit(sup, "s");
  for (int i = 0; i < 6; ++i) {
    crash("a");
    settle();
    sched->advance_time(600ms);  // two failures are never within one second of a third
  }
  auto got = take_log();
  CHECK(std::count(got.begin(), got.end(), "s:started:a#7") == 1);
  CHECK(std::none_of(got.begin(), got.end(),
                     [](const std::string& l) { return l.find("escalated") != l.npos; }));
}

TEST_CASE_METHOD(fixture, "a nested supervisor that gives up is restarted by its parent",
                 "[supervisor]") {
  auto inner = spec("inner", restart_strategy::one_for_one, {"x", "y"}, 1, 10s, 0ms);
  auto outer = spec("outer", restart_strategy::one_for_one, {"before"}, 5, 10s, 0ms);
  outer.children.push_back(actors::supervisor_child(inner));
  outer.children.push_back(child("after"));
  start(std::move(outer));
  // A supervisor reports a child started once it is spawned; a nested supervisor starts its
  // own children when it first runs, which is after its parent's start loop.
  CHECK(take_log() == lines{"outer:started:before#1", "outer:started:inner#1",
                            "outer:started:after#1", "inner:started:x#1", "inner:started:y#1"});
  crash("x");
  settle();
  crash("x");  // the inner supervisor allows one restart only
  settle();
  CHECK(take_log() == lines{"inner:failed:x", "inner:restart_scheduled:0ms", "inner:started:x#2",
                            "inner:failed:x", "inner:escalated:x", "inner:stopped:y",
                            "outer:failed:inner", "outer:restart_scheduled:0ms",
                            "outer:started:inner#2", "inner:started:x#1", "inner:started:y#1"});
}

TEST_CASE_METHOD(fixture, "the root supervisor's failure reaches whoever watches it",
                 "[supervisor]") {
  auto inner = spec("inner", restart_strategy::one_for_one, {"x"}, 0, 10s, 0ms);
  auto root = spec("root", restart_strategy::one_for_one, {}, 0, 10s, 0ms);
  root.children.push_back(actors::supervisor_child(inner));
  auto sup = start(std::move(root));
  watch_exit(sup, "root");
  take_log();
  crash("x");
  settle();
  auto got = take_log();
  REQUIRE(!got.empty());
  CHECK(got.back().find(
            "root:exit:supervisor 'root' gave up: child 'inner' failed more than 0 times") == 0);
  CHECK(got.back().find("supervisor 'inner' gave up: child 'x'") != std::string::npos);
}

TEST_CASE_METHOD(fixture, "an exit request stops children in reverse order, then the supervisor",
                 "[supervisor]") {
  auto sup = start(spec("s", restart_strategy::one_for_one, {"a", "b", "c"}));
  watch_exit(sup, "s");
  take_log();
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  settle();
  CHECK(take_log() == lines{"s:stopped:c", "s:stopped:b", "s:stopped:a", "s:exit:user_shutdown"});
}

TEST_CASE_METHOD(fixture, "children can be added and removed at run time", "[supervisor]") {
  auto sup = start(spec("s", restart_strategy::one_for_one, {"a"}));
  take_log();
  bool added = false;
  bool removed = false;
  std::string duplicate_error;
  sys->spawn([&, sup](caf::event_based_actor* self) {
    self->request(sup, caf::infinite, start_child_atom_v, child("dyn"))
        .then([&](const caf::actor& a) { added = static_cast<bool>(a); });
    self->request(sup, caf::infinite, start_child_atom_v, child("a"))
        .then([](const caf::actor&) {},
              [&](const caf::error& e) { duplicate_error = actors::describe_exit_reason(e); });
  });
  settle();
  CHECK(added);
  CHECK(duplicate_error.find("already has a child 'a'") != std::string::npos);
  sys->spawn([&, sup](caf::event_based_actor* self) {
    self->request(sup, caf::infinite, stop_child_atom_v, std::string{"dyn"})
        .then([&](bool existed) { removed = existed; });
  });
  settle();
  CHECK(removed);
  CHECK(take_log() == lines{"s:started:dyn#1", "s:stopped:dyn"});
  crash("a");  // the removed child does not come back with a restart round
  settle();
  CHECK(take_log() == lines{"s:failed:a", "s:restart_scheduled:10ms", "s:started:a#2"});
}
