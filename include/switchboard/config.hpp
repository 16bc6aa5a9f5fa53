#pragma once

/// @file switchboard/config.hpp
/// switchboard's configuration: one JSON file (comments and trailing commas allowed),
/// validated completely at start-up (since 0.1). Secrets never live here: tokens come from
/// the environment (`SWITCHBOARD_API_TOKEN`, `TWILIO_ACCOUNT_SID`, `TWILIO_AUTH_TOKEN`).

#include "switchboard/config/leads.hpp"
#include "switchboard/config/propagation.hpp"
#include "switchboard/event.hpp"
#include "switchboard/export.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchboard {

/// Restart intensity and backoff of a supervisor (see switchboard/supervisor.hpp).
struct supervision_config {
  std::size_t max_restarts = 5;                   ///< at most this many restarts ...
  std::chrono::milliseconds within{10'000};       ///< ... within this window, else escalate
  std::chrono::milliseconds backoff_initial{10};  ///< delay before the first restart
  std::chrono::milliseconds backoff_max{2'000};   ///< cap of the doubling delay
};

/// The daemon's HTTP server (ingest, admin, health). Disabled by default for embedded use.
struct http_config {
  bool enabled = true;
  std::string host = "127.0.0.1";                ///< loopback unless told otherwise
  std::uint16_t port = 8080;                     ///< 0 picks a free port
  std::size_t max_body_bytes = 4 * 1024 * 1024;  ///< larger bodies get 413, also once inflated
  std::size_t max_header_bytes = 64 * 1024;  ///< request line + headers; larger get 431 (since 0.5)
  std::size_t max_connections = 10'000;      ///< open at once; the next is answered 503 (since 0.5)
  std::size_t keep_alive_max_count = 10'000;  ///< requests per kept-alive connection
  /// A request's header must be complete within this of the connection waiting for it (so an
  /// idle kept-alive connection closes after it), and a body may pause at most this long.
  std::chrono::milliseconds read_timeout{5'000};
  std::chrono::milliseconds write_timeout{5'000};  ///< an answer must be taken within this
  /// Requests handled at once (a handler may wait for the disk); threads start on demand up to
  /// this and end after 30 s idle. Connections, idle or slow, hold no thread.
  std::size_t worker_threads = 256;
  bool access_log = true;  ///< a log line per request: method, path, status, time, id (since 0.5)
};

/// CAF scheduler settings. The default of 2 threads suits the 2-core machines we measure on.
struct scheduler_config {
  /// How CAF's threads find work. `sharing`: one queue, idle threads sleep until a message
  /// comes (no CPU when idle; what switchboard's message rates need). `stealing`: per-thread
  /// queues, idle threads poll (every moderate_sleep) before they sleep: lower latency for
  /// very high message rates, at a steady CPU cost.
  enum class policy_kind { sharing, stealing };
  policy_kind policy = policy_kind::sharing;
  std::size_t max_threads = 2;
  /// Work-stealing poll sleep; lower = lower latency.
  std::chrono::microseconds moderate_sleep{50};
};

struct log_config {
  std::string level = "info";  ///< trace|debug|info|warn|error|critical|off
};

/// The whole configuration. Every member has the embedded default, so `config{}` runs.
struct config {
  std::string source;               ///< the file it came from, "" for defaults
  std::string data_dir = "./data";  ///< SQLite files live here
  http_config http;
  scheduler_config scheduler;
  log_config log;
  supervision_config supervision;
  codec_limits limits;                              ///< limits on ingested events
  std::chrono::milliseconds drain_timeout{10'000};  ///< graceful stop waits at most this long
  std::vector<amqp_source_config> amqp_sources;     ///< `sources.amqp`
  enrichment_config enrichment;
  state_config state;
  std::vector<target_config> targets;
  twilio_config twilio;
  leads_config leads;            ///< since 0.4
  form_leads_config form_leads;  ///< since 0.4

  /// True when entity-state propagation runs: some AMQP source, target or lookup is
  /// configured. (A source without targets still keeps entity state, readable through
  /// `GET /v1/state/{kind}/{id}`, and feeds the journal for every other subscription.)
  bool propagates_state() const {
    return !amqp_sources.empty() || !targets.empty() || !enrichment.lookups.empty();
  }
};

/// True when lead conversations or form-lead forwarding run (since 0.4).
inline bool runs_leads(const config& cfg) {
  return !cfg.leads.proxy_numbers.empty() || !cfg.form_leads.lead_tracking_url.empty() ||
         !cfg.form_leads.marketing_url.empty();
}

/// A configuration problem, with everything a user needs to fix it.
struct config_error {
  std::string file;      ///< the config file, or "<inline>" for text given in code
  std::string key_path;  ///< e.g. `http.port`; `$` for the whole document
  std::string problem;   ///< what was wrong, e.g. "is 70000, out of range"
  std::string allowed;   ///< what is allowed, e.g. "an integer from 0 to 65535"
  /// "config/switchboard.json: http.port: is 70000, out of range; allowed: an integer ..."
  SWITCHBOARD_API std::string message() const;
};

struct config_result {
  std::optional<config> value;
  config_error error;
  explicit operator bool() const noexcept { return value.has_value(); }
};

/// Parses and validates configuration text. `source_name` names it in errors.
SWITCHBOARD_API config_result parse_config(std::string_view text,
                                           std::string source_name = "<inline>");

/// Reads, parses and validates a configuration file.
SWITCHBOARD_API config_result load_config_file(const std::string& path);

/// Applies `HOST:PORT` (e.g. `127.0.0.1:0`, `[::1]:8080`) to `cfg.http`, as `run --listen` does.
SWITCHBOARD_API std::optional<config_error> apply_listen_override(config& cfg,
                                                                  std::string_view host_port);

/// The secrets `cfg` needs that the environment lacks now (unset or empty), one error each,
/// naming the variable and the key that needs it: `TWILIO_ACCOUNT_SID` and `TWILIO_AUTH_TOKEN`
/// when `targets` or `leads.proxy_numbers` are given (they call Twilio, or the emulator, with
/// them). `switchboard check-config` and `run` refuse such a configuration (since 0.4).
SWITCHBOARD_API std::vector<config_error> missing_secrets(const config& cfg);

}  // namespace switchboard
