#pragma once

// Reaches inside a runtime, for switchboard's own tests (fault injection). Not installed.

#include "switchboard/runtime.hpp"

#include <caf/fwd.hpp>

namespace switchboard::internal {

struct runtime_access {
  /// The runtime's actor system; valid between start() and stop().
  static caf::actor_system& system(runtime& rt);
  /// The actor currently serving a subscription (invalid if none).
  static caf::actor consumer(runtime& rt, const subscription& sub);
  /// The supervisor of all consumers.
  static caf::actor consumers(runtime& rt);
};

}  // namespace switchboard::internal
