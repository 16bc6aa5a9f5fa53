#pragma once

/// @file switchboard/messages.hpp
/// Every message type, atom and actor protocol of switchboard, in one place (since 0.1).
///
/// Each message is a plain struct or an atom-tagged tuple; the comment beside it says who
/// sends it, who handles it and what deduplicates it. Protocols are typed actor interfaces
/// at the end of this file. Messages stay inside one process: events cross process
/// boundaries only through the JSON codec (switchboard/event.hpp), never CAF serialization.

#include "switchboard/event.hpp"
#include "switchboard/supervision.hpp"

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/type_id.hpp>
#include <caf/typed_actor.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace switchboard {

// -- supervision -------------------------------------------------------------------------

/// How to (re)start one child of a supervisor. `start` spawns a fresh instance each time; the
/// supervisor links to it. Sent by whoever builds a tree to a supervisor (start_child); the
/// child's `id` is unique per supervisor.
struct child_spec {
  std::string id;
  restart_policy restart = restart_policy::permanent;
  std::function<caf::actor(caf::actor_system&)> start;
};

/// A supervisor's own settings. `observer` (optional) receives a `supervision_event` for
/// every lifecycle change, for logs, metrics and tests.
struct supervisor_spec {
  std::string name;
  restart_strategy strategy = restart_strategy::one_for_one;
  restart_intensity intensity;
  restart_backoff backoff;
  std::vector<child_spec> children;  ///< started in this order, stopped in reverse
  caf::actor observer;
};

/// What happened in a supervisor: sent by a supervisor to its observer; no reply.
struct supervision_event {
  enum class kind : std::uint8_t {
    started,            ///< a child (re)started; `generation` counts its starts from 1
    failed,             ///< a child ended unexpectedly; `reason` says how
    stopped,            ///< a child was stopped by its supervisor
    restart_scheduled,  ///< restarts will happen after `delay_ms`
    escalated,          ///< intensity exceeded: all children stopped, the supervisor exits
  };
  kind what = kind::started;
  std::string supervisor;
  std::string child;
  std::uint64_t generation = 0;
  std::int64_t delay_ms = 0;
  std::string reason;
};

std::string_view to_string(supervision_event::kind k) noexcept;

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, supervision_event& x) {
  return f(caf::meta::type_name("supervision_event"), x.what, x.supervisor, x.child,
           x.generation, x.delay_ms, x.reason);
}

// -- bus ---------------------------------------------------------------------------------

/// Kept alive by every message that carries one accepted event; when the last copy is gone
/// (handled, or dropped because its receiver died) the runtime's in-flight count goes down.
/// A graceful stop waits for that count to reach zero.
struct inflight_ticket {
  virtual ~inflight_ticket() = default;
};
using inflight_ptr = std::shared_ptr<inflight_ticket>;

/// Completes the future of one `runtime::publish`. Sent with the event to the router, which
/// fulfils it once the event is handed on; if the message is dropped, its destructor fails
/// the future.
struct publish_completion {
  virtual ~publish_completion() = default;
  virtual void accepted(std::size_t subscribers) = 0;
};
using publish_completion_ptr = std::shared_ptr<publish_completion>;

} // namespace switchboard

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(switchboard::child_spec)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(switchboard::supervisor_spec)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(switchboard::event_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(switchboard::inflight_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(switchboard::publish_completion_ptr)

CAF_BEGIN_TYPE_ID_BLOCK(switchboard, caf::first_custom_type_id)

  // supervisor <- anyone: start a child from a spec; replies the child's handle.
  CAF_ADD_ATOM(switchboard, switchboard, start_child_atom, "sb_start")
  // supervisor <- anyone: stop and forget the child with this id; replies true if it existed.
  CAF_ADD_ATOM(switchboard, switchboard, stop_child_atom, "sb_stop")
  // supervisor <- anyone: the ids of the running children, in start order.
  CAF_ADD_ATOM(switchboard, switchboard, which_children_atom, "sb_which")
  // supervisor <- itself (delayed): restart the pending children of restart round `epoch`.
  CAF_ADD_ATOM(switchboard, switchboard, restart_atom, "sb_restart")
  // router <- runtime::publish: route one event; dedupe: none yet (the journal adds it).
  CAF_ADD_ATOM(switchboard, switchboard, route_atom, "sb_route")
  // router <- subscriber (on every start): this subscription now lives at this actor.
  CAF_ADD_ATOM(switchboard, switchboard, register_atom, "sb_reg")
  // router <- runtime::unsubscribe: forget a subscription.
  CAF_ADD_ATOM(switchboard, switchboard, unregister_atom, "sb_unreg")
  // subscriber <- router: handle one event.
  CAF_ADD_ATOM(switchboard, switchboard, deliver_atom, "sb_deliver")

  CAF_ADD_TYPE_ID(switchboard, (switchboard::child_spec))
  CAF_ADD_TYPE_ID(switchboard, (switchboard::supervisor_spec))
  CAF_ADD_TYPE_ID(switchboard, (switchboard::supervision_event))
  CAF_ADD_TYPE_ID(switchboard, (switchboard::event_ptr))
  CAF_ADD_TYPE_ID(switchboard, (switchboard::inflight_ptr))
  CAF_ADD_TYPE_ID(switchboard, (switchboard::publish_completion_ptr))

CAF_END_TYPE_ID_BLOCK(switchboard)

namespace switchboard {

// -- protocols ---------------------------------------------------------------------------

/// A supervisor (src/actors/supervisor.hpp). It also traps exits: an exit message from its
/// parent stops its children in reverse order, then the supervisor itself.
using supervisor_actor = caf::typed_actor<
  caf::replies_to<start_child_atom, child_spec>::with<caf::actor>,
  caf::replies_to<stop_child_atom, std::string>::with<bool>,
  caf::replies_to<which_children_atom>::with<std::vector<std::string>>,
  caf::reacts_to<restart_atom, std::uint64_t>>;

/// The router: hands each event to the subscriptions whose pattern matches its type.
using router_actor = caf::typed_actor<
  caf::reacts_to<route_atom, event_ptr, inflight_ptr, publish_completion_ptr>,
  caf::reacts_to<register_atom, std::uint64_t, std::string, caf::actor>,
  caf::reacts_to<unregister_atom, std::uint64_t>>;

/// One subscription's worker: runs the handler for each delivered event, one at a time.
using subscriber_actor = caf::typed_actor<caf::reacts_to<deliver_atom, event_ptr, inflight_ptr>>;

} // namespace switchboard
