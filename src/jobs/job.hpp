#pragma once

// A job: one user-facing capability (entity-state propagation, lead conversations, later CQRS
// views and event workers) as the runtime hosts it. The runtime is the composition root: it
// builds the configured jobs, drives every job through the same lifecycle, and is the only code
// that names concrete jobs. See ARCHITECTURE.md, "Adding a job".
//
// Lifecycle, in the order the runtime calls it:
//   prepare()        before the actor system: open files, check the configuration against the
//                    world (SQL, databases); throwing fails start-up with the message
//   children()       supervised actors, started under the root supervisor
//   start_intake()   once the runtime accepts publishes: connect sources
//   stop_intake()    first on stop, while the journal still confirms what came in
//   drain()          after the bus drained, before the HTTP server stops: let waiters go
//   stop()           after the actor system is gone: join the job's own threads, close files

#include "ports/http_routes.hpp"
#include "protocols/messages.hpp"  // child_spec
#include "switchboard/config.hpp"
#include "switchboard/subscription.hpp"

#include <boost/json/value.hpp>

#include <functional>
#include <string>
#include <vector>

namespace switchboard::jobs {

/// Where a running runtime is in its life, as jobs see it (to refuse work outside `running`).
enum class phase { created, running, stopping, stopped };

/// Secrets, read from the environment once by the runtime (the one place that reads it).
struct secrets {
  std::string api_token;          ///< SWITCHBOARD_API_TOKEN
  std::string twilio_auth_token;  ///< TWILIO_AUTH_TOKEN (inbound webhook signatures)
  std::string amqp_password;      ///< SWITCHBOARD_AMQP_PASSWORD (overrides the URL's)
  std::string failpoint;          ///< SWITCHBOARD_FAILPOINT: crash-injection tests only
};

/// What the runtime lends its jobs. Valid from `prepare` to `stop`.
struct host {
  const config& cfg;
  const secrets& env;
  std::function<phase()> current_phase;
  std::function<std::string()> listen_address;  ///< HOST:PORT once the HTTP server listens
  /// Hands an event to the journal; `done` runs once it is durable (or with the error).
  std::function<void(event, std::function<void(bool durable, const std::string& error)>)> publish;
  /// Subscribes to the bus (call in `prepare`; durable subscriptions resume at start).
  std::function<subscription(subscription_options, event_handler)> subscribe;
};

class job {
public:
  virtual ~job() = default;

  /// Its name in logs, status and the supervision tree ("propagation", "leads").
  virtual const char* name() const noexcept = 0;

  virtual void prepare(host& h) = 0;
  virtual std::vector<child_spec> children(const supervision_config&) { return {}; }
  virtual void start_intake() {}
  virtual void stop_intake() {}
  virtual void drain() {}
  virtual void stop() {}

  /// Figures for `GET /v1/...` status routes and metrics.
  virtual boost::json::value status() const { return boost::json::object{}; }

  /// The HTTP routes it serves.
  virtual std::vector<ports::http_route> routes() { return {}; }
};

}  // namespace switchboard::jobs
