#pragma once

// The in-memory bus: a router that hands each event to the subscriptions whose pattern
// matches its type, and one subscriber actor per subscription that runs its handler.
//
// The router is registered in its actor system's registry under `router_name` by the child
// spec that starts it, so subscribers and publishers always reach the current instance.
// A subscriber registers itself with the router each time it starts, so a restarted
// subscriber (or all of them, after the router restarts) is found again.

#include "switchboard/messages.hpp"
#include "switchboard/runtime.hpp"

#include <caf/atom.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace switchboard::actors {

inline constexpr caf::atom_value router_name = caf::atom("sb_router");

/// One subscription as the runtime records it; shared with the actor that serves it.
struct subscription_entry {
  std::uint64_t id = 0;
  std::string pattern;  // validated by runtime::subscribe
  event_handler handler;
};

/// A child spec that starts the router and registers it under `router_name`.
child_spec router_child();

/// A child spec that starts the subscriber actor of `entry` and registers it with the
/// current router before the start returns.
child_spec subscriber_child(std::shared_ptr<const subscription_entry> entry);

/// The router currently registered in `sys`, or an invalid handle.
router_actor current_router(caf::actor_system& sys);

} // namespace switchboard::actors
