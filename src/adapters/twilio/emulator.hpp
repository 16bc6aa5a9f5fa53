#pragma once

// switchboard's Twilio emulator: the parts of Sync, Conversations, TaskRouter and Messages that
// switchboard uses, served over HTTP the way Twilio serves them, so that users develop and
// test without a Twilio account and every test and demo is real HTTP.
//
// Each product lives under a path prefix named after its Twilio host:
//   https://sync.twilio.com/v1/...          <->  http://HOST:PORT/sync/v1/...
//   https://conversations.twilio.com/v1/... <->  http://HOST:PORT/conversations/v1/...
//   https://taskrouter.twilio.com/v1/...    <->  http://HOST:PORT/taskrouter/v1/...
//   https://api.twilio.com/2010-04-01/...   <->  http://HOST:PORT/api/2010-04-01/...
//                                                (Messages: SMS outside conversations)
//
// Emulator-only endpoints (no Twilio equivalent) live under /_emulator/ and need the same
// Basic auth:
//   GET    /_emulator/requests          the request log, in arrival order (JSON)
//   DELETE /_emulator/requests          clears the log
//   GET    /_emulator/state             a dump of every object (JSON)
//   GET    /_emulator/faults            the fault rules in force and the last seed set
//   POST   /_emulator/faults            sets fault rules (JSON body, see fault_rule); a "seed"
//                                       restarts the fault generator
//   DELETE /_emulator/faults            clears fault rules
//   POST   /_emulator/inbound-sms       form From=+1555...&To=<proxy number>&Body=...: as if the
//                                       phone network delivered an SMS from a customer

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace switchboard::adapters::twilio {

/// One fault rule. A request matches when `route` matches "METHOD /path" (`*` matches one
/// path segment; a lone "*" matches every request). The first matching rule applies; its
/// fault is drawn from a random generator seeded with `emulator_options::seed`, so the same
/// requests in the same order meet the same faults.
///
/// JSON (POST /_emulator/faults): {"seed": 7, "rules": [{"route": "POST
/// /sync/v1/Services/*/Documents/*",
///   "rate_429": 0.5, "retry_after_s": 1, "rate_5xx": 0.1, "status_5xx": 503, "latency_ms": 20,
///   "rate_timeout": 0.05, "timeout_applies": true}]}
struct fault_rule {
  std::string route = "*";
  double rate_429 = 0;  ///< answer 429 (code 20429) with Retry-After, not applied
  int retry_after_s = 1;
  double rate_5xx = 0;  ///< answer `status_5xx`; applied or not per `apply_on_5xx`
  int status_5xx = 503;
  bool apply_on_5xx = false;    ///< whether the write happened before the 5xx
  int latency_ms = 0;           ///< added before answering
  double rate_timeout = 0;      ///< never answer (hold the connection until the client gives up)
  bool timeout_applies = true;  ///< whether the write happened before the silence
};

struct emulator_options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;   ///< 0 picks a free port
  std::string account_sid;  ///< "AC" + 32 hex; from TWILIO_ACCOUNT_SID if empty
  std::string auth_token;   ///< from TWILIO_AUTH_TOKEN if empty
  std::uint64_t seed = 1;
  std::vector<fault_rule> faults;
  bool enforce_rate_limits = true;  ///< Sync's 20 writes/s per object → 429/54009
  double sync_writes_per_s = 20;    ///< per Sync object (document, map, list; items count
                                    ///< against their map or list)
  double sync_burst_window_s = 10;  ///< a token bucket of sync_writes_per_s × this many writes
  /// `url`, `links` and paging URLs name Twilio's hosts (https://sync.twilio.com/v1/...) instead
  /// of this emulator (http://HOST:PORT/sync/v1/...), for clients that rewrite Twilio's URLs.
  bool twilio_urls = false;
  /// In-process observers (benchmarks, tests): called on a server thread after each answered
  /// request outside /_emulator/, with its method, path and status. Must not block.
  std::function<void(const std::string& method, const std::string& path, int status)> on_answer;
};

class emulator {
public:
  /// Throws std::invalid_argument if the account SID or token is missing or malformed.
  explicit emulator(emulator_options options);
  ~emulator();
  emulator(const emulator&) = delete;
  emulator& operator=(const emulator&) = delete;

  /// Starts serving; returns "HOST:PORT". Throws std::runtime_error if it cannot listen.
  std::string start();
  void stop();

  /// "http://HOST:PORT" once started.
  std::string base_url() const;
  const emulator_options& options() const noexcept;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace switchboard::adapters::twilio
