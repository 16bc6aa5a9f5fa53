#pragma once

// Inside the durable engine: its state (services, runner pools, waiters, timers), shared by
// invocations.cpp (the engine's API), step_context.cpp (journaled steps) and keyed_actors.cpp
// (the routers and entities). Internal.

#include "engine/durable/invocations.hpp"

#include "core/policy/backoff.hpp"
#include "core/time.hpp"
#include "engine/lane.hpp"
#include "engine/supervision/supervisor.hpp"
#include "switchboard/event.hpp"

#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>

namespace switchboard::actors {

namespace json = boost::json;
using ports::invocation_row;
using ports::invocation_spec;
using ports::step_row;

namespace internal {

inline json::value parse_or_null(const std::string& text) {
  if (text.empty())
    return nullptr;
  json::error_code ec;
  auto v = json::parse(text, ec);
  return ec ? json::value(nullptr) : v;
}

inline std::chrono::milliseconds backoff_with_jitter(const step_retry_policy& p,
                                                     std::int64_t attempts) {
  return core::backoff_delay({p.backoff_initial, std::max(p.backoff_max, p.backoff_initial), 0.2},
                             static_cast<std::size_t>(std::max<std::int64_t>(attempts, 1)));
}

/// How long `call` waits for its callee before this step counts as one retryable attempt.
constexpr auto call_wait = std::chrono::seconds(30);

}  // namespace internal

using internal::backoff_with_jitter;
using internal::call_wait;
using internal::parse_or_null;

// --- the engine's state
// -----------------------------------------------------------------------------

struct step_context::runner {
  explicit runner(std::unique_ptr<ports::durable_connection> c)
      : conn(std::move(c)), store(conn->journal()) {}
  std::unique_ptr<ports::durable_connection> conn;
  ports::invocation_journal& store;
};

struct invocation_engine::impl : std::enable_shared_from_this<invocation_engine::impl> {
  using job = std::function<void(step_context::runner&)>;

  struct service_rt {
    impl* engine = nullptr;
    service_spec spec;
    /// One connection per runner thread, opened before the threads start; `runners[i]` is
    /// only used by thread i of `lanes` (a job runs on the first free one).
    std::vector<std::unique_ptr<step_context::runner>> runners;
    std::unique_ptr<engine::lane_pool> lanes;
    std::mutex router_mu;
    keyed_router_actor router;
  };

  struct waiter {
    bool done = false;
    std::condition_variable cv;
  };

  engine_options options;
  std::map<std::string, std::unique_ptr<service_rt>> services;
  std::mutex api_mu;
  std::unique_ptr<ports::durable_connection> api_conn;
  ports::invocation_journal* api_store = nullptr;  // api_conn's journal

  std::mutex wait_mu;
  std::map<std::uint64_t, std::shared_ptr<waiter>> waiters;
  std::atomic<bool> stopping{false};
  std::atomic<bool> answers_released{false};  // HTTP waits return at once (the server drains)

  std::mutex executing_mu;
  std::set<std::uint64_t> executing;  // invocations a runner is running now

  std::atomic<std::size_t> active{0};
  mutable std::mutex counters_mu;
  std::map<std::string, std::uint64_t> ended;

  // Durable timers: one thread that turns due timers into invocations.
  std::mutex timer_mu;
  std::condition_variable timer_cv;
  bool timer_poke = false;
  std::thread timer_thread;

  service_rt& service(const std::string& name) {
    auto it = services.find(name);
    if (it == services.end())
      throw std::invalid_argument("no keyed service named '" + name + "'");
    return *it->second;
  }

  void post(service_rt& s, job j) {
    // Refused once stopping: the next start finds the invocation in the journal.
    s.lanes->post([this, &s, j = std::move(j)] {
      try {
        j(*s.runners[engine::lane_pool::worker_index()]);
      } catch (const std::exception& e) {
        spdlog::error("{}: a {} runner job failed: {}", options.name, s.spec.name, e.what());
      }
    });
  }

  /// Opens the service's connections (throws naming the database) and starts its runners.
  void start_pool(service_rt& s) {
    const auto threads = std::max<std::size_t>(s.spec.threads, 1);
    for (std::size_t i = 0; i < threads; ++i)
      s.runners.push_back(std::make_unique<step_context::runner>(options.open_connection()));
    s.lanes = std::make_unique<engine::lane_pool>(options.name + "/" + s.spec.name, threads);
  }

  void failpoint(const std::string& step, const char* phase) {
    if (options.failpoint.empty() || options.failpoint != step + ":" + phase)
      return;
    spdlog::critical("failpoint {}:{} reached: killing the process (SWITCHBOARD_FAILPOINT)", step,
                     phase);
    spdlog::default_logger()->flush();
    std::raise(SIGKILL);
  }

  // --- waiting for invocations ---

  void notify(std::uint64_t n) {
    std::lock_guard<std::mutex> guard{wait_mu};
    auto it = waiters.find(n);
    if (it == waiters.end())
      return;
    it->second->done = true;
    it->second->cv.notify_all();
    waiters.erase(it);  // the waiters hold their own references
  }

  std::optional<invocation_row> wait(std::uint64_t n, std::chrono::milliseconds timeout,
                                     const std::function<std::optional<invocation_row>()>& read,
                                     bool answer_side = false) {
    std::shared_ptr<waiter> w;
    {
      std::lock_guard<std::mutex> guard{wait_mu};
      auto& slot = waiters[n];
      if (!slot)
        slot = std::make_shared<waiter>();
      w = slot;
    }
    // Registered before reading: an end committed after this read is notified to `w`.
    auto row = read();
    if (!row || row->status != "running" || timeout.count() <= 0)
      return row;
    {
      std::unique_lock<std::mutex> lock{wait_mu};
      w->cv.wait_for(lock, timeout, [&] {
        return w->done || stopping.load() || (answer_side && answers_released.load());
      });
    }
    return read();
  }

  // --- creating and dispatching ---

  std::pair<std::uint64_t, bool> submit_with(ports::invocation_journal& store,
                                             const invocation_spec& spec,
                                             std::chrono::milliseconds window) {
    std::uint64_t n = 0;
    bool existed = false;
    store.write([&] {
      if (!spec.idempotency_key.empty()) {
        const auto since = window.count() <= 0 ? 0 : core::unix_millis_now() - window.count();
        if (auto found = store.idempotent(spec.service, spec.idempotency_key, since)) {
          n = *found;
          existed = true;
          return;
        }
      }
      n = store.create_invocation(spec, rfc3339_now(), core::unix_millis_now());
    });
    if (!existed)
      dispatch(spec.service, spec.key, n);
    return {n, existed};
  }

  /// Hands invocation `n` to its key's entity through the service's router (keyed_actors.cpp).
  void dispatch(const std::string& service_name, const std::string& key, std::uint64_t n);

  void poke_timers() {
    {
      std::lock_guard<std::mutex> guard{timer_mu};
      timer_poke = true;
    }
    timer_cv.notify_one();
  }

  void count(const std::string& status) {
    std::lock_guard<std::mutex> guard{counters_mu};
    ++ended[status];
  }

  /// After a failed attempt: the delay before the next one, or -1 once the invocation is parked
  /// (its step used `attempts` of the budget).
  std::int64_t retry_or_park(step_context& ctx, service_rt& s, const invocation_row& row,
                             std::int64_t attempts, const std::string& error,
                             std::chrono::milliseconds after) {
    if (stopping.load())
      return -1;  // the next start resumes it
    if (attempts < static_cast<std::int64_t>(s.spec.retry.max_attempts)) {
      const auto delay = std::max(after, backoff_with_jitter(s.spec.retry, attempts));
      spdlog::info("{}: {} {}/{}/{}: attempt {} failed ({}); again in {} ms", options.name,
                   row.id(), row.service, row.key, row.handler, attempts, error, delay.count());
      return delay.count();
    }
    const auto why = "parked after " + std::to_string(attempts) +
                     " attempts of one step; last error: " + error + " (POST /v1/invocations/" +
                     row.id() + "/resume or /cancel)";
    ctx.write([&] { ctx.journal().set_invocation(row.n, "parked", "", why, rfc3339_now()); });
    spdlog::warn("{}: {} {}/{}/{} {}", options.name, row.id(), row.service, row.key, row.handler,
                 why);
    count("parked");
    notify(row.n);
    return -1;
  }

  /// Runs invocation `n` on runner `r`; returns the delay before it must run again, or -1 when
  /// it ended (or is not this runner's to run).
  std::int64_t execute(step_context::runner& r, std::uint64_t n) {
    {
      std::lock_guard<std::mutex> guard{executing_mu};
      if (!executing.insert(n).second)
        return 200;  // another runner has it (dispatched twice across a router restart)
    }
    struct release {
      impl& self;
      std::uint64_t n;
      ~release() {
        std::lock_guard<std::mutex> guard{self.executing_mu};
        self.executing.erase(n);
      }
    } releaser{*this, n};

    auto row = r.store.invocation(n);
    if (!row || row->status != "running") {
      notify(n);
      return -1;
    }
    auto& s = service(row->service);
    auto handler = s.spec.handlers.find(row->handler);
    step_context ctx{owner(), r, *row};
    try {
      if (handler == s.spec.handlers.end())
        throw step_terminal("service '" + row->service + "' has no handler '" + row->handler + "'");
      try {
        auto result = handler->second(ctx);
        ctx.write(
            [&] { r.store.set_invocation(n, "done", json::serialize(result), "", rfc3339_now()); });
        count("done");
      } catch (const step_terminal&) {
        throw;
      } catch (const step_retry& e) {
        return retry_or_park(ctx, s, *row, ctx.attempts_, e.what(), e.after());
      } catch (const std::exception& e) {
        // Not a step's verdict (the database failed, an answer had an unexpected shape): nothing
        // after the last recorded step counts as done, so running again is safe; it uses the
        // budget of the step it happened in.
        spdlog::error("{}: {} {}/{}/{}: {}", options.name, row->id(), row->service, row->key,
                      row->handler, e.what());
        return retry_or_park(ctx, s, *row, std::max<std::int64_t>(ctx.attempts_, 1), e.what(), {});
      }
    } catch (const step_terminal& e) {
      std::vector<std::uint64_t> follow_ups;
      ctx.write([&] {
        if (s.spec.on_fail)
          follow_ups = s.spec.on_fail(*r.conn, *row, e.what());
        r.store.set_invocation(n, "failed", "", e.what(), rfc3339_now());
      });
      dispatch_all(r.store, follow_ups);
      spdlog::warn("{}: {} {}/{}/{} failed: {}", options.name, row->id(), row->service, row->key,
                   row->handler, e.what());
      count("failed");
    } catch (const std::exception& e) {
      // The database or a bug: nothing was recorded as done, so running again is safe.
      spdlog::error("{}: {} {}/{}/{}: {}; again in 1 s", options.name, row->id(), row->service,
                    row->key, row->handler, e.what());
      return stopping.load() ? -1 : 1000;
    }
    notify(n);
    return -1;
  }

  /// `n`'s chain (invocation_engine::chain): up through the callers still waiting (a `call`
  /// keys its callee "inv-<caller>/<step>"), then down through the unfinished callees.
  std::vector<invocation_row> chain_of(ports::invocation_journal& store, std::uint64_t n) {
    auto unfinished = [](const invocation_row& r) {
      return r.status == "running" || r.status == "parked";
    };
    auto root = store.invocation(n);
    if (!root)
      return {};
    while (auto key = store.idempotency_key_of(root->n)) {
      const auto caller = caller_of(*key);
      // A caller is older than its callee (so this ends); anything else is a key that only
      // looks like a callee's.
      if (!caller || *caller >= root->n)
        break;
      auto row = store.invocation(*caller);
      if (!row || !unfinished(*row))
        break;
      root = std::move(row);
    }
    std::vector<invocation_row> out{*root};
    std::set<std::uint64_t> seen{root->n};
    for (std::size_t i = 0; i < out.size(); ++i) {
      const auto prefix = out[i].id() + "/";
      for (const auto& service : services)
        for (auto c : store.idempotent_with_prefix(service.first, prefix)) {
          if (c <= out[i].n || !seen.insert(c).second)
            continue;
          if (auto row = store.invocation(c); row && unfinished(*row))
            out.push_back(std::move(*row));
        }
    }
    return out;
  }

  /// N of an idempotency key "inv-N/<step>" (a callee's), if it is one.
  static std::optional<std::uint64_t> caller_of(const std::string& key) {
    if (key.rfind("inv-", 0) != 0)
      return std::nullopt;
    const auto slash = key.find('/', 4);
    if (slash == std::string::npos || slash == 4 || slash > 4 + 19)
      return std::nullopt;
    std::uint64_t n = 0;
    for (std::size_t i = 4; i < slash; ++i) {
      if (key[i] < '0' || key[i] > '9')
        return std::nullopt;
      n = n * 10 + static_cast<std::uint64_t>(key[i] - '0');
    }
    return n;
  }

  void dispatch_all(ports::invocation_journal& store, const std::vector<std::uint64_t>& ns) {
    for (auto q : ns)
      if (auto row = store.invocation(q))
        dispatch(row->service, row->key, q);
  }

  invocation_engine* owner_ = nullptr;
  invocation_engine& owner() { return *owner_; }
};

}  // namespace switchboard::actors
