#pragma once

// Lead conversations as the runtime hosts them (job 2 in DESIGN.md): the keyed services
// "leads", "conversations", "dealers" and "forwards" on the durable invocation engine
// (actors/invocations.hpp), the inbound Twilio webhook and form-lead intake. All state lives in
// `<data_dir>/leads.db`.
//
// The runtime calls: construct (before the actor system: opens leads.db, seeds the configured
// dealers, so a bad data directory fails start-up), `child()` under its root supervisor, then
// `invoke` / `conversations_webhook` from HTTP threads, and `stop()` after the actor system is
// gone.

#include "switchboard/config.hpp"
#include "protocols/messages.hpp"
#include "switchboard/runtime.hpp"

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace switchboard {

class leads {
public:
  /// `listen_address` gives the HTTP server's HOST:PORT (for the default webhook URL).
  leads(const config& cfg, std::function<std::string()> listen_address);
  ~leads();
  leads(const leads&) = delete;
  leads& operator=(const leads&) = delete;

  child_spec child(const supervision_config& supervision);

  keyed_answer invoke(const keyed_request& request);
  keyed_answer conversations_webhook(const std::vector<std::pair<std::string, std::string>>& params,
                                     const std::string& signature);
  boost::json::value status() const;

  /// Keyed entity actors in memory now (for figures and benchmarks).
  std::size_t active_entities() const;

  /// Answers waiting requests at once (with 202 and the status URL): call before the HTTP
  /// server drains.
  void release_answers();

  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace switchboard
