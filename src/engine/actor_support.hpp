#pragma once

// Small pieces every switchboard actor uses. Include only from actor translation units.

#include "core/exception_text.hpp"

#include <spdlog/spdlog.h>
#include <caf/error.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scheduled_actor.hpp>
#include <caf/sec.hpp>

#include <exception>
#include <string>

namespace switchboard::actors {

/// Routes an actor's uncaught exceptions to spdlog (not CAF's stderr printer) and makes its
/// exit reason carry the exception's message, so that supervisors can say why it failed.
template <class Self>
void install_exception_logger(Self* self, std::string actor_name) {
  self->set_exception_handler(
      [name = std::move(actor_name)](caf::scheduled_actor*, std::exception_ptr& ep) -> caf::error {
        auto what = core::exception_text(ep);
        spdlog::error("actor '{}' failed with an exception: {}", name, what);
        return caf::make_error(caf::sec::runtime_error, std::move(what));
      });
}

}  // namespace switchboard::actors

#include "switchboard/event.hpp"

namespace switchboard::actors {

/// The prefix of every log line about one event: its correlation id first, so that one
/// grep follows a request through the bus.
inline std::string log_context(const event& ev) {
  return "[corr=" + (ev.correlation_id.empty() ? std::string{"-"} : ev.correlation_id) +
         " id=" + ev.id + " type=" + ev.type + "]";
}

}  // namespace switchboard::actors
