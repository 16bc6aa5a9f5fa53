#pragma once

// Durable invocations of keyed services: the generic durable-execution engine (lead
// conversations run on it; CQRS components and workers can too). It knows no job's tables and
// no external system: a job gives it a connection factory (ports::durable_connection, its own
// stores beside the engine's journal) and handlers made of steps.
//
// A service (e.g. "leads", "conversations") has handlers; an invocation is one call of a handler
// on one key, with a JSON body. It is recorded in the journal before anything runs and before
// anyone is answered, then handed to the key's entity actor:
//
// - **One at a time per key.** A router actor per service finds or spawns the entity actor of
//   a key; the entity runs its invocations one after another (also while one waits out a
//   retry). Entities hold no state of their own (it lives in SQLite), so an entity idle for
//   `passivate_after` is stopped and spawned again on the next invocation. Reads never go
//   through entities: they query the database alongside.
// - **Blocking work off the scheduler.** Handlers run on the service's runner threads, each
//   owning its connection (and what the job keeps on it, e.g. an HTTP client); entities only
//   move messages.
// - **Durable steps.** A handler is straight-line code made of steps. `effect` journals an
//   external call before (started, with its attempt number) and after (done, with its result);
//   `local` commits a state change and its step record in one transaction. After a crash the
//   invocation runs again from the top: done steps return their recorded result without running,
//   and a step left `started` (its outcome unknown) first runs its `find` to learn whether the
//   effect happened. Completed effects are never repeated.
// - **Retries, parking.** A step that fails retryably is tried again after a backoff with jitter
//   (or the delay the effect named); after `max_attempts` attempts of one step the invocation is
//   parked: visible, resumable, cancellable. A caller whose `call` waits for a parked callee
//   parks too; resume and cancel act on that whole chain (found by the callee's idempotency
//   key, "inv-<caller>/<step>"). A terminal failure ends it as failed (the service's
//   `on_fail` compensates in the same transaction).
// - **Idempotency keys.** An invocation may carry a key; the same key within the window returns
//   the first invocation instead of a new one.
//
// Failpoints: SWITCHBOARD_FAILPOINT=<step>:<before|after> makes the process SIGKILL itself the
// first time it reaches that point (crash-injection tests); unset in production.

#include "ports/invocation_journal.hpp"
#include "protocols/messages.hpp"
#include "switchboard/config.hpp"

#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace switchboard::actors {

/// A step failed, and trying again may work (after `after`, if the other side named a delay).
/// `ambiguous`: the effect may have happened; the next attempt runs the step's `find` first.
class step_retry : public std::runtime_error {
public:
  explicit step_retry(const std::string& what, std::chrono::milliseconds after = {},
                      bool ambiguous = false)
      : std::runtime_error(what), after_(after), ambiguous_(ambiguous) {}
  std::chrono::milliseconds after() const noexcept { return after_; }
  bool ambiguous() const noexcept { return ambiguous_; }

private:
  std::chrono::milliseconds after_;
  bool ambiguous_;
};

/// A step failed for good (bad input, a refusal): the invocation ends as failed.
class step_terminal : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// How one service retries its steps.
struct step_retry_policy {
  std::size_t max_attempts = 8;
  std::chrono::milliseconds backoff_initial{200};
  std::chrono::milliseconds backoff_max{30'000};
};

class invocation_engine;

/// What a handler sees while it runs, on one runner thread.
class step_context {
public:
  using finder = std::function<std::optional<boost::json::value>()>;

  const ports::invocation_row& invocation() const noexcept { return inv_; }
  /// The invocation's body (a JSON object; empty when it was not one).
  const boost::json::object& body() const noexcept { return body_; }
  /// This runner's connection, as the job's `engine_options::open_connection` made it.
  template <class Connection>
  Connection& connection() noexcept {
    return static_cast<Connection&>(conn_);
  }
  /// The engine's journal on this runner's connection.
  ports::invocation_journal& journal() noexcept { return journal_; }
  /// "inv-N/<name>": what an effect carries (message Attributes, Idempotency-Key headers) so
  /// that it can be found again.
  std::string step_id(const std::string& name) const { return inv_.id() + "/" + name; }

  /// An external effect, journaled before and after `run`. `run` throws step_retry or
  /// step_terminal on failure. `find` (optional) answers whether an attempt of unknown outcome
  /// happened, with its result; without it such an attempt is simply run again (for effects
  /// that are safe to repeat, e.g. an HTTP call with an idempotency key).
  boost::json::value effect(const std::string& name, const std::function<boost::json::value()>& run,
                            const finder& find = {});

  /// A local state change: `change` runs inside one transaction that also records the step.
  /// Invocations queued with `enqueue` inside it are created in the same transaction and
  /// dispatched after the commit.
  boost::json::value local(const std::string& name,
                           const std::function<boost::json::value()>& change);

  /// Only inside `local`: creates another invocation in the same transaction.
  void enqueue(ports::invocation_spec spec);
  /// Only inside `local`: dispatches invocation `n` (created in this transaction) after the commit.
  void dispatch_after_commit(std::uint64_t n);

  /// Calls a handler of another keyed service and waits for its result, as the step `name`
  /// (idempotent: the callee invocation is keyed by this step). The callee's failure is this
  /// step's terminal failure; while it is parked or still running this step retries.
  boost::json::value call(const std::string& name, const std::string& service,
                          const std::string& key, const std::string& handler,
                          const boost::json::value& body);

  /// Schedules a durable timer (inside `local`): `handler` of `service`/`key` runs at `due_ms`.
  void schedule(std::int64_t due_ms, const std::string& service, const std::string& key,
                const std::string& handler, const boost::json::value& body);

  struct runner;  ///< internal: a runner thread's connections (invocations.cpp)

  /// Internal: one transaction of this invocation, carrying the step results not yet on disk.
  void write(const std::function<void()>& fn);

private:
  friend class invocation_engine;
  step_context(invocation_engine& engine, runner& r, ports::invocation_row inv);

  invocation_engine& engine_;
  ports::durable_connection& conn_;
  ports::invocation_journal& journal_;
  ports::invocation_row inv_;
  boost::json::object body_;
  std::vector<std::uint64_t> queued_;
  bool in_local_ = false;
  bool timer_added_ = false;
  std::int64_t attempts_ = 0;                  // of the step that failed last, for the retry budget
  std::vector<ports::step_row> pending_done_;  // done, not yet committed
};

using handler_fn = std::function<boost::json::value(step_context&)>;
/// Runs inside the transaction that ends an invocation as failed or cancelled; returns the
/// invocations it created there, to be dispatched after the commit.
using compensate_fn = std::function<std::vector<std::uint64_t>(
    ports::durable_connection&, const ports::invocation_row&, const std::string& error)>;

struct service_spec {
  std::string name;
  std::size_t threads = 2;
  step_retry_policy retry;
  std::map<std::string, handler_fn> handlers;
  compensate_fn on_fail;
};

struct engine_options {
  std::string name = "durable";  ///< in logs and as the routers' supervisor
  /// Opens one connection (a runner's, the API's, the timers'). Throws std::runtime_error
  /// naming the database when it cannot.
  std::function<std::unique_ptr<ports::durable_connection>()> open_connection;
  std::chrono::milliseconds passivate_after{60'000};
  std::string failpoint;  ///< "" = none; else "<step>:<before|after>"
};

/// An invocation as the HTTP side reports it.
struct invocation_view {
  ports::invocation_row row;
  std::vector<ports::step_row> steps;
};

class invocation_engine {
public:
  /// Opens the database (throws std::runtime_error naming it) and starts the runner threads.
  invocation_engine(engine_options options, std::vector<service_spec> services);
  ~invocation_engine();
  invocation_engine(const invocation_engine&) = delete;
  invocation_engine& operator=(const invocation_engine&) = delete;

  /// The routers, one per service, under one supervisor (a child of the runtime's root). A
  /// router that (re)starts dispatches every running invocation of its service again.
  child_spec child(const supervision_config& supervision);

  /// Records an invocation durably (on disk when this returns) and dispatches it; with an
  /// idempotency key already taken within `window`, returns that invocation instead (second:
  /// true). Throws std::runtime_error if the database fails (nothing recorded).
  std::pair<std::uint64_t, bool> submit(const ports::invocation_spec& spec,
                                        std::chrono::milliseconds window = std::chrono::hours(24));

  /// Waits up to `timeout` for invocation `n` to end (done, failed, parked, cancelled); returns
  /// its row as it then is, or nothing if there is no such invocation.
  std::optional<ports::invocation_row> wait(std::uint64_t n, std::chrono::milliseconds timeout);

  /// Runs `fn` with the API's own connection (HTTP threads), under its lock.
  void with_connection(const std::function<void(ports::durable_connection&)>& fn);

  std::optional<invocation_view> view(std::uint64_t n);
  /// `n`'s chain: the unfinished invocations whose `call` steps wait for `n` (and theirs), `n`,
  /// and the unfinished ones `n` waits for (and theirs).
  ///
  /// Every parked invocation of `n`'s chain -> running again with fresh attempts, the innermost
  /// dispatched first (a parent parked on a parked callee would only park again). Returns those
  /// it resumed, outermost first; empty if none of the chain is parked.
  std::vector<std::uint64_t> resume(std::uint64_t n);
  /// Every parked invocation of `n`'s chain -> cancelled (each service compensates), the
  /// innermost first, in one transaction. Returns those it cancelled, outermost first; empty if
  /// none of the chain is parked. A running caller in the chain ends as failed when its `call`
  /// step sees the cancelled callee.
  std::vector<std::uint64_t> cancel(std::uint64_t n);

  /// Hands invocation `n` to its key's entity (after a commit that created it elsewhere).
  void dispatch(const std::string& service, const std::string& key, std::uint64_t n);

  /// Entity actors in memory now (not passivated), over all services.
  std::size_t active_entities() const;
  /// Invocations ended since start, by status.
  std::map<std::string, std::uint64_t> counters() const;

  /// Makes every `wait` return at once from now on (an HTTP server that drains must not wait
  /// for invocations; they go on and are durable).
  void release_answers();

  /// Stops the runner threads (after the actor system is gone).
  void stop();

  struct impl;  ///< internal (invocations.cpp)

private:
  friend class step_context;
  std::shared_ptr<impl> impl_;
};

}  // namespace switchboard::actors
