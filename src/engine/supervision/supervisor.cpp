#include "engine/supervision/supervisor.hpp"

#include "engine/actor_support.hpp"

#include <spdlog/spdlog.h>
#include <caf/all.hpp>

#include <algorithm>
#include <optional>
#include <utility>

namespace switchboard {

std::string_view to_string(supervision_event::kind k) noexcept {
  using kind = supervision_event::kind;
  switch (k) {
    case kind::started: return "started";
    case kind::failed: return "failed";
    case kind::stopped: return "stopped";
    case kind::restart_scheduled: return "restart_scheduled";
    case kind::escalated: return "escalated";
  }
  return "unknown";
}

}  // namespace switchboard

namespace switchboard::actors {

namespace {

constexpr std::uint8_t gave_up_code = 1;
constexpr caf::atom_value error_category = caf::atom("switchbrd");

struct child_slot {
  child_spec spec;
  caf::actor handle;  // null while the child is not running
  std::uint64_t generation = 0;
  bool remove_when_stopped = false;
};

enum class phase {
  running,        // all children that should run do
  restarting,     // stopping siblings and/or waiting for the backoff, then restarting
  shutting_down,  // stopping every child, then exiting with `exit_reason`
};

struct supervisor_state {
  static inline const char* name = "switchboard.supervisor";

  supervisor_spec spec;
  std::vector<child_slot> children;  // start order
  std::optional<restart_window> window;
  phase current = phase::running;
  std::vector<std::string> stop_queue;       // children to stop, front first
  caf::actor_addr awaiting_stop;             // the child we sent an exit to
  std::vector<std::string> pending_restart;  // children to start when the round ends
  bool restart_scheduled = false;
  std::uint64_t epoch = 0;  // restart round; stale timers are ignored
  caf::error exit_reason;
  std::vector<std::pair<std::string, caf::typed_response_promise<bool>>> removals;
  // The running children, shared with the functor that takes them down if this supervisor
  // ends abruptly (killed, or a bug in it) without stopping them itself.
  std::shared_ptr<std::vector<caf::actor>> live = std::make_shared<std::vector<caf::actor>>();
};

using self_ptr = supervisor_actor::stateful_pointer<supervisor_state>;

child_slot* find_by_id(supervisor_state& st, const std::string& id) {
  auto i = std::find_if(st.children.begin(), st.children.end(),
                        [&](const child_slot& s) { return s.spec.id == id; });
  return i == st.children.end() ? nullptr : &*i;
}

child_slot* find_by_addr(supervisor_state& st, const caf::actor_addr& addr) {
  if (!addr)
    return nullptr;
  auto i = std::find_if(st.children.begin(), st.children.end(), [&](const child_slot& s) {
    return s.handle && s.handle.address() == addr;
  });
  return i == st.children.end() ? nullptr : &*i;
}

restart_window::time_point now_of(self_ptr self) {
  return restart_window::time_point{self->clock().now().time_since_epoch()};
}

void notify(self_ptr self, supervision_event::kind what, const std::string& child,
            std::uint64_t generation = 0, std::string reason = {},
            std::chrono::milliseconds delay = {}) {
  auto& st = self->state;
  switch (what) {
    case supervision_event::kind::failed:
      spdlog::warn("supervisor '{}': child '{}' failed: {}", st.spec.name, child, reason);
      break;
    case supervision_event::kind::escalated:
      spdlog::error("supervisor '{}': {}", st.spec.name, reason);
      break;
    case supervision_event::kind::restart_scheduled:
      spdlog::info("supervisor '{}': restarting in {} ms", st.spec.name, delay.count());
      break;
    default:
      spdlog::debug("supervisor '{}': child '{}' {} (generation {})", st.spec.name, child,
                    to_string(what), generation);
  }
  if (st.spec.observer)
    caf::anon_send(st.spec.observer,
                   supervision_event{what, st.spec.name, child, generation,
                                     static_cast<std::int64_t>(delay.count()), std::move(reason)});
}

void handle_failure(self_ptr self, const std::string& id, const caf::error& reason);

/// Spawns and monitors one child. A `start` that throws counts as a failure of that child.
void start_child_now(self_ptr self, child_slot& slot) {
  auto id = slot.spec.id;
  caf::actor child;
  std::string why;
  try {
    child = slot.spec.start(self->system());
    if (!child)
      why = "its start function returned no actor";
  } catch (const std::exception& e) {
    why = std::string{"its start function threw: "} + e.what();
  }
  if (!child) {
    handle_failure(self, id, caf::make_error(caf::sec::runtime_error, why));
    return;
  }
  slot.handle = child;
  ++slot.generation;
  // A monitor, not a link: a child ending with `kill` would take a linked supervisor with it.
  self->monitor(child);
  self->state.live->push_back(child);
  notify(self, supervision_event::kind::started, id, slot.generation);
}

void schedule_restart(self_ptr self) {
  auto& st = self->state;
  if (st.restart_scheduled)
    return;
  st.restart_scheduled = true;
  ++st.epoch;
  auto delay = backoff_delay(st.spec.backoff, st.window->recent(now_of(self)));
  notify(self, supervision_event::kind::restart_scheduled, {}, 0, {}, delay);
  if (delay.count() == 0)
    self->send(self, restart_atom_v, st.epoch);
  else
    self->delayed_send(self, delay, restart_atom_v, st.epoch);
}

/// Stops the next queued child (one at a time, waiting for each), then finishes the round.
void continue_stopping(self_ptr self) {
  auto& st = self->state;
  if (st.awaiting_stop)
    return;
  while (!st.stop_queue.empty()) {
    auto id = st.stop_queue.front();
    st.stop_queue.erase(st.stop_queue.begin());
    auto* slot = find_by_id(st, id);
    if (slot == nullptr || !slot->handle)
      continue;
    st.awaiting_stop = slot->handle.address();
    self->send_exit(slot->handle, caf::exit_reason::user_shutdown);
    return;
  }
  switch (st.current) {
    case phase::shutting_down: self->quit(st.exit_reason); break;
    case phase::restarting: schedule_restart(self); break;
    case phase::running: break;
  }
}

/// Queues every running child for stopping, in reverse start order.
void queue_all_for_stop(supervisor_state& st) {
  st.stop_queue.clear();
  for (auto i = st.children.rbegin(); i != st.children.rend(); ++i)
    if (i->handle)
      st.stop_queue.push_back(i->spec.id);
}

void begin_shutdown(self_ptr self, caf::error reason) {
  auto& st = self->state;
  if (st.current != phase::shutting_down) {
    st.current = phase::shutting_down;
    st.exit_reason = std::move(reason);
  }
  st.pending_restart.clear();
  queue_all_for_stop(st);
  continue_stopping(self);
}

void give_up(self_ptr self, const std::string& id, const caf::error& reason) {
  auto& st = self->state;
  auto explanation = "supervisor '" + st.spec.name + "' gave up: child '" + id +
                     "' failed more than " + std::to_string(st.spec.intensity.max_restarts) +
                     " times within " + std::to_string(st.spec.intensity.within.count()) +
                     " ms (its restart intensity); last reason: " + describe_exit_reason(reason);
  notify(self, supervision_event::kind::escalated, id, 0, explanation);
  begin_shutdown(self, make_gave_up_error(explanation));
}

void handle_failure(self_ptr self, const std::string& id, const caf::error& reason) {
  auto& st = self->state;
  if (st.current == phase::shutting_down)
    return;
  auto* slot = find_by_id(st, id);
  if (slot == nullptr)
    return;
  bool abnormal = reason != caf::exit_reason::normal && reason != caf::error{};
  notify(self, supervision_event::kind::failed, id, slot->generation,
         abnormal ? describe_exit_reason(reason) : "exited normally");
  if (!should_restart(slot->spec.restart, abnormal)) {
    st.children.erase(st.children.begin() + (slot - st.children.data()));
    return;
  }
  if (!st.window->try_record(now_of(self))) {
    give_up(self, id, reason);
    return;
  }
  auto index = static_cast<std::size_t>(slot - st.children.data());
  auto plan = children_to_restart(st.spec.strategy, index, st.children.size());
  // Siblings stop in reverse start order; everyone in the plan restarts in start order.
  for (auto i = plan.rbegin(); i != plan.rend(); ++i) {
    const auto& sibling = st.children[*i].spec.id;
    if (*i != index && st.children[*i].handle &&
        std::find(st.stop_queue.begin(), st.stop_queue.end(), sibling) == st.stop_queue.end())
      st.stop_queue.push_back(sibling);
  }
  for (auto i : plan) {
    const auto& name = st.children[i].spec.id;
    if (std::find(st.pending_restart.begin(), st.pending_restart.end(), name) ==
        st.pending_restart.end())
      st.pending_restart.push_back(name);
  }
  st.current = phase::restarting;
  st.restart_scheduled = false;
  continue_stopping(self);
}

void on_child_down(self_ptr self, child_slot& slot, const caf::error& reason) {
  auto& st = self->state;
  auto addr = slot.handle.address();
  st.live->erase(std::remove(st.live->begin(), st.live->end(), slot.handle), st.live->end());
  slot.handle = nullptr;
  if (addr == st.awaiting_stop) {
    st.awaiting_stop = caf::actor_addr{};
    auto id = slot.spec.id;
    notify(self, supervision_event::kind::stopped, id, slot.generation);
    if (slot.remove_when_stopped) {
      st.children.erase(st.children.begin() + (&slot - st.children.data()));
      for (auto i = st.removals.begin(); i != st.removals.end();) {
        if (i->first == id) {
          i->second.deliver(true);
          i = st.removals.erase(i);
        } else {
          ++i;
        }
      }
    }
    continue_stopping(self);
    return;
  }
  if (st.current == phase::shutting_down) {
    // Ended on its own while we were stopping others: nothing left to stop for it.
    notify(self, supervision_event::kind::failed, slot.spec.id, slot.generation,
           describe_exit_reason(reason));
    return;
  }
  handle_failure(self, slot.spec.id, reason);
}

/// Starts the children named in `ids` in start order. If a start fails and begins a new
/// restart round, the children not yet started join that round's pending list.
void start_in_order(self_ptr self, const std::vector<std::string>& ids) {
  auto& st = self->state;
  std::vector<std::string> ordered;
  for (auto& slot : st.children)
    if (std::find(ids.begin(), ids.end(), slot.spec.id) != ids.end())
      ordered.push_back(slot.spec.id);
  for (std::size_t i = 0; i < ordered.size(); ++i) {
    if (st.current != phase::running) {
      if (st.current == phase::restarting)
        for (auto j = i; j < ordered.size(); ++j)
          if (std::find(st.pending_restart.begin(), st.pending_restart.end(), ordered[j]) ==
              st.pending_restart.end())
            st.pending_restart.push_back(ordered[j]);
      return;
    }
    if (auto* slot = find_by_id(st, ordered[i]); slot != nullptr && !slot->handle)
      start_child_now(self, *slot);
  }
}

supervisor_actor::behavior_type supervisor_impl(self_ptr self, supervisor_spec spec) {
  auto& st = self->state;
  st.window.emplace(spec.intensity);
  st.spec = std::move(spec);
  for (auto& child : st.spec.children)
    st.children.push_back(child_slot{child, {}, 0, false});
  st.spec.children.clear();
  self->set_down_handler([self](caf::down_msg& dm) {
    if (auto* slot = find_by_addr(self->state, dm.source); slot != nullptr)
      on_child_down(self, *slot, dm.reason);
  });
  self->set_exit_handler([self](caf::exit_msg& em) {
    begin_shutdown(self, em.reason);  // our parent (or a shutdown) asks us to stop
  });
  self->attach_functor([live = st.live](const caf::error& reason) {
    auto why = reason ? reason : caf::make_error(caf::exit_reason::user_shutdown);
    for (auto& child : *live)
      child->enqueue(nullptr, caf::make_message_id(caf::message_priority::high),
                     caf::make_message(caf::exit_msg{caf::actor_addr{}, why}), nullptr);
  });
  install_exception_logger(self, st.spec.name);
  std::vector<std::string> ids;
  for (auto& slot : st.children)
    ids.push_back(slot.spec.id);
  start_in_order(self, ids);
  return {
      [self](start_child_atom, child_spec& child) -> caf::result<caf::actor> {
        auto& s = self->state;
        if (s.current == phase::shutting_down)
          return caf::make_error(caf::sec::runtime_error,
                                 "supervisor '" + s.spec.name + "' is shutting down");
        if (child.id.empty() || !child.start)
          return caf::make_error(caf::sec::invalid_argument,
                                 "child spec needs a non-empty id and a start function");
        if (find_by_id(s, child.id) != nullptr)
          return caf::make_error(
              caf::sec::invalid_argument,
              "supervisor '" + s.spec.name + "' already has a child '" + child.id + "'");
        auto id = child.id;
        s.children.push_back(child_slot{std::move(child), {}, 0, false});
        start_child_now(self, s.children.back());
        if (auto* slot = find_by_id(s, id); slot != nullptr && slot->handle)
          return slot->handle;
        return caf::make_error(caf::sec::runtime_error, "child '" + id + "' failed to start");
      },
      [self](stop_child_atom, const std::string& id) -> caf::result<bool> {
        auto& s = self->state;
        auto* slot = find_by_id(s, id);
        if (slot == nullptr)
          return false;
        s.pending_restart.erase(std::remove(s.pending_restart.begin(), s.pending_restart.end(), id),
                                s.pending_restart.end());
        if (!slot->handle) {
          s.children.erase(s.children.begin() + (slot - s.children.data()));
          return true;
        }
        slot->remove_when_stopped = true;
        if (std::find(s.stop_queue.begin(), s.stop_queue.end(), id) == s.stop_queue.end())
          s.stop_queue.push_back(id);
        auto rp = self->make_response_promise<bool>();
        s.removals.emplace_back(id, rp);
        continue_stopping(self);
        return rp;
      },
      [self](which_children_atom) {
        std::vector<std::string> running;
        for (auto& slot : self->state.children)
          if (slot.handle)
            running.push_back(slot.spec.id);
        return running;
      },
      [self](restart_atom, std::uint64_t epoch) {
        auto& s = self->state;
        if (epoch != s.epoch || s.current != phase::restarting || !s.restart_scheduled)
          return;  // a stale timer from a round that was superseded
        s.current = phase::running;
        s.restart_scheduled = false;
        auto pending = std::move(s.pending_restart);
        s.pending_restart.clear();
        start_in_order(self, pending);
      },
  };
}

}  // namespace

supervisor_actor spawn_supervisor(caf::actor_system& sys, supervisor_spec spec) {
  return sys.spawn(supervisor_impl, std::move(spec));
}

child_spec supervisor_child(supervisor_spec spec, restart_policy restart) {
  auto id = spec.name;
  return child_spec{std::move(id), restart, [spec = std::move(spec)](caf::actor_system& sys) {
                      return caf::actor_cast<caf::actor>(spawn_supervisor(sys, spec));
                    }};
}

child_spec supervisor_child(std::string id, std::function<supervisor_spec()> make_spec,
                            restart_policy restart) {
  return child_spec{std::move(id), restart,
                    [make_spec = std::move(make_spec)](caf::actor_system& sys) {
                      return caf::actor_cast<caf::actor>(spawn_supervisor(sys, make_spec()));
                    }};
}

caf::error make_gave_up_error(std::string explanation) {
  return caf::error{gave_up_code, error_category, caf::make_message(std::move(explanation))};
}

bool is_gave_up(const caf::error& reason) {
  return reason.category() == error_category && reason.code() == gave_up_code;
}

std::string describe_exit_reason(const caf::error& reason) {
  if (!reason)
    return "normal";
  std::string text;
  if (reason.category() == error_category) {
    if (reason.context().match_element<std::string>(0))
      return reason.context().get_as<std::string>(0);
    return "switchboard error " + std::to_string(reason.code());
  }
  if (reason.category() == caf::atom("system"))
    text = caf::to_string(static_cast<caf::sec>(reason.code()));
  else if (reason.category() == caf::atom("exit"))
    text = caf::to_string(static_cast<caf::exit_reason>(reason.code()));
  else
    return caf::to_string(reason);
  if (!reason.context().empty()) {
    if (reason.context().match_element<std::string>(0))
      text += ": " + reason.context().get_as<std::string>(0);
    else
      text += ": " + caf::to_string(reason.context());
  }
  return text;
}

}  // namespace switchboard::actors
