#pragma once

// Reaches inside a runtime, for switchboard's own tests (fault injection). Not installed.

#include "switchboard/runtime.hpp"

#include <caf/fwd.hpp>

namespace switchboard::internal {

struct runtime_access {
  /// The runtime's actor system; valid between start() and stop().
  static caf::actor_system& system(runtime& rt);
};

} // namespace switchboard::internal
