#pragma once

// The durable-execution engine's storage, as a port: invocations, their steps, idempotency keys
// and durable timers on one connection. adapters/sqlite/invocation_store implements it. A job
// that keeps its own tables beside it (in the same transactions) gives the engine a
// `durable_connection` of its own type, which `step_context::connection<T>()` hands back.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace switchboard::ports {

struct invocation_row {
  std::uint64_t n = 0;
  std::string service, key, handler, body;
  std::string status;  ///< running | done | failed | parked | cancelled
  std::string result;  ///< JSON text, when done
  std::string error;   ///< failed, parked: why
  std::string created_at, updated_at;
  std::string id() const { return "inv-" + std::to_string(n); }
};

struct step_row {
  std::string name;
  std::string status;  ///< started (outcome unknown) | retry (known not done) | failed | done
  std::int64_t attempts = 0;
  std::string result, error, updated_at;
};

struct timer_row {
  std::uint64_t n = 0;
  std::int64_t due_ms = 0;
  std::string service, key, handler, body;
};

/// A new invocation, as `create_invocation` takes it.
struct invocation_spec {
  std::string service, key, handler, body;
  std::string idempotency_key;  ///< "" = none
};

/// One connection's view of the engine's tables. Use it from one thread at a time.
class invocation_journal {
public:
  virtual ~invocation_journal() = default;

  /// Runs `fn` in one write transaction and commits (on disk when it returns); rolls back and
  /// rethrows if `fn` throws. Not reentrant. Everything the job writes inside `fn` on the same
  /// connection commits with it.
  virtual void write(const std::function<void()>& fn) = 0;

  /// Inserts a running invocation (and its idempotency key); returns its number.
  virtual std::uint64_t create_invocation(const invocation_spec& spec, const std::string& now,
                                          std::int64_t now_ms) = 0;
  /// The invocation that took `idempotency_key` in `service` at or after `since_ms`.
  virtual std::optional<std::uint64_t> idempotent(const std::string& service,
                                                  const std::string& idempotency_key,
                                                  std::int64_t since_ms) = 0;
  /// Frees the idempotency key invocation `n` took (if any), so that the same request may run
  /// anew: for an outcome that was transient (refused for want of a resource that frees up).
  virtual void release_idempotency_key(std::uint64_t n) = 0;
  /// The idempotency key invocation `n` took, if any.
  virtual std::optional<std::string> idempotency_key_of(std::uint64_t n) = 0;
  /// The invocations of `service` whose idempotency key starts with `prefix`, by number: how the
  /// engine finds the callees a `call` step made ("inv-N/<step>").
  virtual std::vector<std::uint64_t> idempotent_with_prefix(const std::string& service,
                                                            const std::string& prefix) = 0;
  virtual std::optional<invocation_row> invocation(std::uint64_t n) = 0;
  virtual std::vector<std::uint64_t> running_invocations(const std::string& service) = 0;
  /// Invocations in `status` ("" = any), newest first, numbered below `before` (0 = no bound).
  virtual std::vector<invocation_row> invocations(const std::string& status, std::size_t limit,
                                                  std::uint64_t before = 0) = 0;
  /// Invocations of `service` whose key starts with `key_prefix`.
  virtual std::vector<invocation_row> invocations_of(const std::string& service,
                                                     const std::string& key_prefix) = 0;
  virtual void set_invocation(std::uint64_t n, const std::string& status, const std::string& result,
                              const std::string& error, const std::string& now) = 0;

  virtual std::optional<step_row> step(std::uint64_t invocation, const std::string& name) = 0;
  virtual void record_step(std::uint64_t invocation, const step_row& s) = 0;
  virtual std::vector<step_row> steps(std::uint64_t invocation) = 0;
  /// Lets a parked invocation try its failed steps again from attempt 1.
  virtual void reset_step_attempts(std::uint64_t invocation) = 0;

  virtual std::uint64_t add_timer(const timer_row& t) = 0;
  virtual std::optional<std::int64_t> next_timer_due() = 0;
  virtual std::vector<timer_row> due_timers(std::int64_t now_ms, std::size_t limit) = 0;
  virtual void set_timer_status(std::uint64_t n, const std::string& status) = 0;
};

/// What the engine opens per runner thread (and for its API and timers): the journal, and
/// beside it whatever the job's handlers use in the same transactions.
class durable_connection {
public:
  virtual ~durable_connection() = default;
  virtual invocation_journal& journal() = 0;
};

}  // namespace switchboard::ports
