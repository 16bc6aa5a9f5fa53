#pragma once

// The supervisor actor: executes the policies of switchboard/supervision.hpp on CAF monitors.
//
// - Children are spawned from their `child_spec`, monitored, and started in order. Monitors,
//   not links: in CAF an exit with reason `kill` cannot be trapped, so a linked child killed
//   by someone would take its supervisor down with it. If the supervisor itself ends without
//   stopping its children (killed, or a bug), a functor attached to it sends them its reason.
// - A child that ends unexpectedly (or normally, when permanent) is a failure. The supervisor
//   records the restart in its intensity window; if the window is full it gives up: it stops
//   all children in reverse start order and exits with a `supervisor_gave_up` error, which its
//   parent sees as the failure of a child. Otherwise it stops the siblings the strategy names
//   (one at a time, in reverse start order, waiting for each), waits for the backoff delay,
//   and starts the pending children in start order.
// - An exit message from anyone but a child (its parent, a shutdown) stops all children in
//   reverse order, then the supervisor exits with that reason.
// All timing uses the actor clock, so CAF's test coordinator drives it deterministically.

#include "protocols/messages.hpp"
#include "switchboard/config.hpp"

#include <caf/error.hpp>

#include <string>

namespace switchboard::actors {

/// A supervisor's spec with the configured restart intensity and backoff, no children yet.
inline supervisor_spec supervisor_spec_of(
    std::string name, const supervision_config& supervision,
    restart_strategy strategy = restart_strategy::one_for_one) {
  supervisor_spec spec;
  spec.name = std::move(name);
  spec.strategy = strategy;
  spec.intensity = {supervision.max_restarts, supervision.within};
  spec.backoff = {supervision.backoff_initial, supervision.backoff_max};
  return spec;
}

/// Spawns a supervisor that immediately starts `spec.children`.
supervisor_actor spawn_supervisor(caf::actor_system& sys, supervisor_spec spec);

/// A child spec that runs a nested supervisor built from `spec` (a fresh one on each start,
/// so its children restart from their specs).
child_spec supervisor_child(supervisor_spec spec,
                            restart_policy restart = restart_policy::permanent);

/// A child spec that runs a nested supervisor whose spec is built by `make_spec` at each
/// start: for supervisors whose children are known only at run time (e.g. subscriptions).
child_spec supervisor_child(std::string id, std::function<supervisor_spec()> make_spec,
                            restart_policy restart = restart_policy::permanent);

/// The exit reason of a supervisor that gave up, and its readable explanation.
caf::error make_gave_up_error(std::string explanation);

/// A readable explanation of an exit reason: for a supervisor that gave up, its explanation
/// (naming the supervisor, the child, the count and the window); otherwise CAF's rendering.
std::string describe_exit_reason(const caf::error& reason);

/// True if `reason` is the exit reason of a supervisor that gave up.
bool is_gave_up(const caf::error& reason);

}  // namespace switchboard::actors
