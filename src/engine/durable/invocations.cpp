#include "engine/durable/invocations.hpp"

#include "engine/supervision/supervisor.hpp"
#include "core/time.hpp"
#include "switchboard/event.hpp"

#include <caf/all.hpp>
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

namespace {

json::value parse_or_null(const std::string& text) {
  if (text.empty())
    return nullptr;
  json::error_code ec;
  auto v = json::parse(text, ec);
  return ec ? json::value(nullptr) : v;
}

std::chrono::milliseconds backoff_with_jitter(const step_retry_policy& p, std::int64_t attempts) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const auto base = backoff_delay(restart_backoff{p.backoff_initial, p.backoff_max},
                                  static_cast<std::size_t>(std::max<std::int64_t>(attempts, 1)));
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  return std::chrono::milliseconds{static_cast<std::int64_t>(static_cast<double>(base.count()) * jitter(rng))};
}

/// How long `call` waits for its callee before this step counts as one retryable attempt.
constexpr auto call_wait = std::chrono::seconds(30);

} // namespace

// --- the engine's state -----------------------------------------------------------------------------

struct step_context::runner {
  explicit runner(std::unique_ptr<ports::durable_connection> c) : conn(std::move(c)), store(conn->journal()) {}
  std::unique_ptr<ports::durable_connection> conn;
  ports::invocation_journal& store;
};

struct invocation_engine::impl : std::enable_shared_from_this<invocation_engine::impl> {
  using job = std::function<void(step_context::runner&)>;

  /// The runner threads of one service: a queue of jobs, each run by the first free thread.
  struct pool {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<job> jobs;
    bool stopping = false;
    std::vector<std::thread> threads;
  };

  struct service_rt {
    impl* engine = nullptr;
    service_spec spec;
    pool runners;
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
    {
      std::lock_guard<std::mutex> guard{s.runners.mu};
      if (s.runners.stopping)
        return;
      s.runners.jobs.push_back(std::move(j));
    }
    s.runners.cv.notify_one();
  }

  void start_pool(service_rt& s) {
    for (std::size_t i = 0; i < s.spec.threads; ++i)
      s.runners.threads.emplace_back([this, &s] {
        std::unique_ptr<step_context::runner> r;
        try {
          r = std::make_unique<step_context::runner>(options.open_connection());
        } catch (const std::exception& e) {
          spdlog::critical("{}: a {} runner cannot open its database: {}", options.name, s.spec.name, e.what());
          return;
        }
        for (;;) {
          job j;
          {
            std::unique_lock<std::mutex> lock{s.runners.mu};
            s.runners.cv.wait(lock, [&] { return s.runners.stopping || !s.runners.jobs.empty(); });
            if (s.runners.stopping)
              return;
            j = std::move(s.runners.jobs.front());
            s.runners.jobs.pop_front();
          }
          try {
            j(*r);
          } catch (const std::exception& e) {
            spdlog::error("{}: a {} runner job failed: {}", options.name, s.spec.name, e.what());
          }
        }
      });
  }

  void failpoint(const std::string& step, const char* phase) {
    if (options.failpoint.empty() || options.failpoint != step + ":" + phase)
      return;
    spdlog::critical("failpoint {}:{} reached: killing the process (SWITCHBOARD_FAILPOINT)", step, phase);
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

  std::pair<std::uint64_t, bool> submit_with(ports::invocation_journal& store, const invocation_spec& spec,
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

  void dispatch(const std::string& service_name, const std::string& key, std::uint64_t n) {
    auto& s = service(service_name);
    keyed_router_actor to;
    {
      std::lock_guard<std::mutex> guard{s.router_mu};
      to = s.router;
    }
    // No router (restarting): its start scan finds the invocation in the database.
    if (to)
      caf::anon_send(to, dispatch_atom_v, key, n);
  }

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
                             std::int64_t attempts, const std::string& error, std::chrono::milliseconds after) {
    if (stopping.load())
      return -1;  // the next start resumes it
    if (attempts < static_cast<std::int64_t>(s.spec.retry.max_attempts)) {
      const auto delay = std::max(after, backoff_with_jitter(s.spec.retry, attempts));
      spdlog::info("{}: {} {}/{}/{}: attempt {} failed ({}); again in {} ms", options.name, row.id(), row.service, row.key,
                   row.handler, attempts, error, delay.count());
      return delay.count();
    }
    const auto why = "parked after " + std::to_string(attempts) + " attempts of one step; last error: " + error +
                     " (POST /v1/invocations/" + row.id() + "/resume or /cancel)";
    ctx.write([&] { ctx.journal().set_invocation(row.n, "parked", "", why, rfc3339_now()); });
    spdlog::warn("{}: {} {}/{}/{} {}", options.name, row.id(), row.service, row.key, row.handler, why);
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
        ctx.write([&] { r.store.set_invocation(n, "done", json::serialize(result), "", rfc3339_now()); });
        count("done");
      } catch (const step_terminal&) {
        throw;
      } catch (const step_retry& e) {
        return retry_or_park(ctx, s, *row, ctx.attempts_, e.what(), e.after());
      } catch (const std::exception& e) {
        // Not a step's verdict (the database failed, an answer had an unexpected shape): nothing
        // after the last recorded step counts as done, so running again is safe; it uses the
        // budget of the step it happened in.
        spdlog::error("{}: {} {}/{}/{}: {}", options.name, row->id(), row->service, row->key, row->handler, e.what());
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
      spdlog::warn("{}: {} {}/{}/{} failed: {}", options.name, row->id(), row->service, row->key, row->handler, e.what());
      count("failed");
    } catch (const std::exception& e) {
      // The database or a bug: nothing was recorded as done, so running again is safe.
      spdlog::error("{}: {} {}/{}/{}: {}; again in 1 s", options.name, row->id(), row->service, row->key, row->handler,
                    e.what());
      return stopping.load() ? -1 : 1000;
    }
    notify(n);
    return -1;
  }

  void dispatch_all(ports::invocation_journal& store, const std::vector<std::uint64_t>& ns) {
    for (auto q : ns)
      if (auto row = store.invocation(q))
        dispatch(row->service, row->key, q);
  }

  invocation_engine* owner_ = nullptr;
  invocation_engine& owner() { return *owner_; }
};

// --- step_context -----------------------------------------------------------------------------------

step_context::step_context(invocation_engine& engine, runner& r, invocation_row inv)
  : engine_(engine), conn_(*r.conn), journal_(r.store), inv_(std::move(inv)) {
  auto parsed = parse_or_null(inv_.body);
  if (parsed.is_object())
    body_ = std::move(parsed.get_object());
}

json::value step_context::effect(const std::string& name, const std::function<json::value()>& run,
                                 const finder& find) {
  auto& d = *engine_.impl_;
  const auto n = inv_.n;
  auto s = journal_.step(n, name);
  if (s && s->status == "done")
    return parse_or_null(s->result);
  // The attempt is on disk before anything happens outside: after a crash it is known that
  // this step may have had an effect.
  const bool unknown = s && s->status == "started";
  const std::int64_t attempts = (s ? s->attempts : 0) + 1;
  attempts_ = attempts;
  write([&] { journal_.record_step(n, {name, "started", attempts, "", s ? s->error : "", rfc3339_now()}); });
  if (unknown && find) {
    // The last attempt's outcome is unknown (a crash, a timeout): learn it before acting again.
    if (auto found = find()) {
      pending_done_.push_back({name, "done", attempts, json::serialize(*found), "", rfc3339_now()});
      return *found;
    }
  }
  d.failpoint(name, "before");
  json::value result;
  try {
    result = run();
  } catch (const step_retry& e) {
    write([&] {
      journal_.record_step(n, {name, e.ambiguous() ? "started" : "retry", attempts, "", e.what(), rfc3339_now()});
    });
    throw;
  } catch (const step_terminal& e) {
    write([&] { journal_.record_step(n, {name, "failed", attempts, "", e.what(), rfc3339_now()}); });
    throw;
  }
  d.failpoint(name, "after");
  // "done" goes to disk with the next write of this invocation (the next step's start, a local
  // step, its end): one commit fewer per effect. A crash before that leaves the step "started",
  // and the next run's `find` learns that it happened.
  pending_done_.push_back({name, "done", attempts, json::serialize(result), "", rfc3339_now()});
  return result;
}

void step_context::write(const std::function<void()>& fn) {
  journal_.write([&] {
    for (const auto& p : pending_done_)
      journal_.record_step(inv_.n, p);
    fn();
  });
  pending_done_.clear();
}

json::value step_context::local(const std::string& name, const std::function<json::value()>& change) {
  auto& d = *engine_.impl_;
  const auto n = inv_.n;
  if (auto s = journal_.step(n, name); s && s->status == "done")
    return parse_or_null(s->result);
  d.failpoint(name, "before");
  json::value result;
  queued_.clear();
  timer_added_ = false;
  in_local_ = true;
  try {
    write([&] {
      result = change();
      journal_.record_step(n, {name, "done", 1, json::serialize(result), "", rfc3339_now()});
    });
  } catch (...) {
    in_local_ = false;
    queued_.clear();
    throw;
  }
  in_local_ = false;
  d.failpoint(name, "after");
  d.dispatch_all(journal_, queued_);
  if (timer_added_)
    d.poke_timers();
  queued_.clear();
  timer_added_ = false;
  return result;
}

void step_context::enqueue(invocation_spec spec) {
  if (!in_local_)
    throw std::logic_error("step_context::enqueue outside local()");
  queued_.push_back(journal_.create_invocation(spec, rfc3339_now(), core::unix_millis_now()));
}

void step_context::dispatch_after_commit(std::uint64_t n) {
  if (!in_local_)
    throw std::logic_error("step_context::dispatch_after_commit outside local()");
  queued_.push_back(n);
}

void step_context::schedule(std::int64_t due_ms, const std::string& service, const std::string& key,
                            const std::string& handler, const json::value& body) {
  if (!in_local_)
    throw std::logic_error("step_context::schedule outside local()");
  journal_.add_timer({0, due_ms, service, key, handler, json::serialize(body)});
  timer_added_ = true;
}

json::value step_context::call(const std::string& name, const std::string& service, const std::string& key,
                               const std::string& handler, const json::value& body) {
  auto& d = *engine_.impl_;
  const auto n = inv_.n;
  const auto s = journal_.step(n, name);
  if (s && s->status == "done")
    return parse_or_null(s->result);
  // No "started" record: the callee invocation, keyed by this step, is the record.
  attempts_ = (s ? s->attempts : 0) + 1;
  const auto id = step_id(name);
  std::uint64_t callee = 0;
  write([&] {
    if (auto found = journal_.idempotent(service, id, 0))
      callee = *found;
    else
      callee = journal_.create_invocation({service, key, handler, json::serialize(body), id}, rfc3339_now(),
                                        core::unix_millis_now());
  });
  d.dispatch(service, key, callee);  // new, or (after a crash) waiting for a router; a repeat is skipped
  auto row = d.wait(callee, call_wait, [&] { return journal_.invocation(callee); });
  if (!row)
    throw step_terminal("the callee invocation inv-" + std::to_string(callee) + " disappeared");
  const auto what = service + "/" + key + "/" + handler + " (" + row->id() + ")";
  if (row->status == "done") {
    auto result = parse_or_null(row->result);
    pending_done_.push_back({name, "done", attempts_, row->result, "", rfc3339_now()});
    return result;
  }
  const auto error = row->status == "failed" || row->status == "cancelled"
                         ? what + " " + row->status + ": " + row->error
                         : what + " is " + row->status + (row->error.empty() ? "" : ": " + row->error);
  write([&] { journal_.record_step(n, {name, "retry", attempts_, "", error, rfc3339_now()}); });
  if (row->status == "failed" || row->status == "cancelled")
    throw step_terminal(error);
  throw step_retry(error);
}

// --- actors -----------------------------------------------------------------------------------------

namespace {

// An entity is what a key costs while it is in memory, so its state is kept small: its router
// is found through the service, and its queue (the running invocation first) exists only while
// it has work.
struct entity_state {
  static inline const char* name = "keyed_entity";
  std::string key;
  invocation_engine::impl::service_rt* service = nullptr;
  std::unique_ptr<std::vector<std::uint64_t>> queue;
};

using entity_pointer = keyed_entity_actor::stateful_pointer<entity_state>;

void run(entity_pointer self, std::uint64_t n) {
  auto* engine = self->state.service->engine;
  keyed_entity_actor me = self;
  engine->post(*self->state.service, [engine, n, me](step_context::runner& r) {
    caf::anon_send(me, ran_atom_v, n, engine->execute(r, n));
  });
}

keyed_entity_actor::behavior_type entity(entity_pointer self, invocation_engine::impl::service_rt* service,
                                         std::string key) {
  self->state.key = std::move(key);
  self->state.service = service;
  return {
      [self](invoke_atom, std::uint64_t n) {
        auto& q = self->state.queue;
        if (q) {
          q->push_back(n);  // runs after the ones before it
          return;
        }
        q = std::make_unique<std::vector<std::uint64_t>>(1, n);
        run(self, n);
      },
      [self](ran_atom, std::uint64_t n, std::int64_t delay) {
        auto& st = self->state;
        if (delay >= 0) {
          self->delayed_send(self, std::chrono::milliseconds{delay}, retry_atom_v, n);
          return;
        }
        keyed_router_actor router;
        {
          std::lock_guard<std::mutex> guard{st.service->router_mu};
          router = st.service->router;
        }
        // After a router restart this reaches the new router, which ignores keys it does not hold.
        self->send(router, idle_atom_v, st.key);
        st.queue->erase(st.queue->begin());
        if (st.queue->empty())
          st.queue.reset();
        else
          run(self, st.queue->front());
      },
      [self](retry_atom, std::uint64_t n) { run(self, n); },
      [self](passivate_atom) { self->quit(); },
  };
}

struct router_state {
  static inline const char* name = "keyed_router";
  struct entry {
    keyed_entity_actor actor;
    std::uint32_t pending = 0;     // invocations handed over and not yet finished
    std::uint32_t idle_ticks = 0;  // passivation ticks seen with nothing pending
  };
  std::shared_ptr<invocation_engine::impl> engine;
  invocation_engine::impl::service_rt* service = nullptr;
  std::unordered_map<std::string, entry> entities;
  ~router_state() {
    // Not linked (a link costs both sides memory per key): the router ends its entities itself.
    for (auto& [key, e] : entities)
      caf::anon_send_exit(e.actor, caf::exit_reason::user_shutdown);
    if (engine)
      engine->active -= entities.size();
  }
};

using router_pointer = keyed_router_actor::stateful_pointer<router_state>;

keyed_router_actor::behavior_type router(router_pointer self, std::shared_ptr<invocation_engine::impl> engine,
                                         std::string service_name) {
  auto* service = &engine->service(service_name);
  self->state.engine = engine;
  self->state.service = service;
  {
    std::lock_guard<std::mutex> guard{service->router_mu};
    service->router = self;
  }
  // Everything still running in the database (a crash, a restart of this router) runs again.
  keyed_router_actor me = self;
  engine->post(*service, [service_name, me, name = engine->options.name](step_context::runner& r) {
    auto running = r.store.running_invocations(service_name);
    if (!running.empty())
      spdlog::info("{}: {} resumes {} invocation(s)", name, service_name, running.size());
    for (auto n : running)
      if (auto row = r.store.invocation(n))
        caf::anon_send(me, dispatch_atom_v, row->key, n);
  });
  const auto tick = std::max<std::chrono::milliseconds>(engine->options.passivate_after / 2, std::chrono::milliseconds{50});
  self->delayed_send(self, tick, passivate_atom_v);
  return {
      [self](dispatch_atom, const std::string& key, std::uint64_t n) {
        auto& st = self->state;
        auto it = st.entities.find(key);
        if (it == st.entities.end()) {
          it = st.entities.emplace(key, router_state::entry{}).first;
          it->second.actor = self->spawn(entity, st.service, key);
          ++st.engine->active;
        }
        ++it->second.pending;
        self->send(it->second.actor, invoke_atom_v, n);
      },
      [self](idle_atom, const std::string& key) {
        auto it = self->state.entities.find(key);
        if (it == self->state.entities.end())
          return;
        if (it->second.pending > 0)
          --it->second.pending;
        it->second.idle_ticks = 0;
      },
      [self, tick](passivate_atom) {
        // A tick every passivate_after / 2: an entity idle through two ticks has been idle for
        // at least passivate_after.
        auto& st = self->state;
        for (auto it = st.entities.begin(); it != st.entities.end();) {
          if (it->second.pending == 0 && ++it->second.idle_ticks > 2) {
            self->send(it->second.actor, passivate_atom_v);
            it = st.entities.erase(it);
            --st.engine->active;
          } else {
            ++it;
          }
        }
        self->delayed_send(self, tick, passivate_atom_v);
      },
  };
}

} // namespace

// --- invocation_engine ---------------------------------------------------------------------------------

invocation_engine::invocation_engine(engine_options options, std::vector<service_spec> services)
  : impl_(std::make_shared<impl>()) {
  auto& d = *impl_;
  d.owner_ = this;
  d.options = std::move(options);
  if (!d.options.open_connection)
    throw std::invalid_argument("invocation_engine: engine_options::open_connection is empty");
  d.api_conn = d.options.open_connection();  // throws naming the database
  d.api_store = &d.api_conn->journal();
  for (auto& spec : services) {
    auto rt = std::make_unique<impl::service_rt>();
    rt->engine = &d;
    rt->spec = std::move(spec);
    auto name = rt->spec.name;
    d.services.emplace(std::move(name), std::move(rt));
  }
  for (auto& [name, s] : d.services)
    d.start_pool(*s);
  d.timer_thread = std::thread([raw = impl_.get()] {
    std::unique_ptr<ports::durable_connection> conn;
    try {
      conn = raw->options.open_connection();
    } catch (const std::exception& e) {
      spdlog::critical("{}: the timer thread cannot open its database: {}", raw->options.name, e.what());
      return;
    }
    auto* store = &conn->journal();
    while (!raw->stopping.load()) {
      std::vector<std::pair<ports::timer_row, std::uint64_t>> fired;
      std::int64_t wait_ms = 1000;
      try {
        store->write([&] {
          for (auto& t : store->due_timers(core::unix_millis_now(), 256)) {
            store->set_timer_status(t.n, "fired");
            auto n = store->create_invocation(
                {t.service, t.key, t.handler, t.body, "timer:" + std::to_string(t.n)}, rfc3339_now(), core::unix_millis_now());
            fired.emplace_back(t, n);
          }
        });
        if (auto next = store->next_timer_due())
          wait_ms = std::clamp<std::int64_t>(*next - core::unix_millis_now(), 0, 1000);
      } catch (const std::exception& e) {
        spdlog::error("{}: durable timers: {}; trying again in 1 s", raw->options.name, e.what());
      }
      for (auto& [t, n] : fired)
        raw->dispatch(t.service, t.key, n);
      std::unique_lock<std::mutex> lock{raw->timer_mu};
      raw->timer_cv.wait_for(lock, std::chrono::milliseconds{wait_ms},
                             [&] { return raw->timer_poke || raw->stopping.load(); });
      raw->timer_poke = false;
    }
  });
}

invocation_engine::~invocation_engine() { stop(); }

child_spec invocation_engine::child(const supervision_config& supervision) {
  supervisor_spec spec;
  spec.name = impl_->options.name;
  spec.strategy = restart_strategy::one_for_one;
  spec.intensity = {supervision.max_restarts, supervision.within};
  spec.backoff = {supervision.backoff_initial, supervision.backoff_max};
  for (auto& [name, s] : impl_->services)
    spec.children.push_back(child_spec{"router:" + name, restart_policy::permanent,
                                       [engine = impl_, name = name](caf::actor_system& sys) {
                                         return caf::actor_cast<caf::actor>(sys.spawn(router, engine, name));
                                       }});
  return supervisor_child(std::move(spec));
}

std::pair<std::uint64_t, bool> invocation_engine::submit(const invocation_spec& spec,
                                                         std::chrono::milliseconds window) {
  impl_->service(spec.service);  // throws for an unknown service before anything is stored
  std::lock_guard<std::mutex> guard{impl_->api_mu};
  return impl_->submit_with(*impl_->api_store, spec, window);
}

std::optional<invocation_row> invocation_engine::wait(std::uint64_t n, std::chrono::milliseconds timeout) {
  auto& d = *impl_;
  return d.wait(
      n, timeout,
      [&] {
        std::lock_guard<std::mutex> guard{d.api_mu};
        return d.api_store->invocation(n);
      },
      true);
}

void invocation_engine::with_connection(const std::function<void(ports::durable_connection&)>& fn) {
  std::lock_guard<std::mutex> guard{impl_->api_mu};
  fn(*impl_->api_conn);
}

std::optional<invocation_view> invocation_engine::view(std::uint64_t n) {
  std::lock_guard<std::mutex> guard{impl_->api_mu};
  auto row = impl_->api_store->invocation(n);
  if (!row)
    return std::nullopt;
  return invocation_view{*row, impl_->api_store->steps(n)};
}

bool invocation_engine::resume(std::uint64_t n) {
  auto& d = *impl_;
  std::optional<invocation_row> row;
  {
    std::lock_guard<std::mutex> guard{d.api_mu};
    d.api_store->write([&] {
      row = d.api_store->invocation(n);
      if (!row || row->status != "parked") {
        row.reset();
        return;
      }
      d.api_store->reset_step_attempts(n);
      d.api_store->set_invocation(n, "running", "", "", rfc3339_now());
    });
  }
  if (!row)
    return false;
  d.dispatch(row->service, row->key, n);
  return true;
}

bool invocation_engine::cancel(std::uint64_t n) {
  auto& d = *impl_;
  bool cancelled = false;
  {
    std::lock_guard<std::mutex> guard{d.api_mu};
    std::vector<std::uint64_t> follow_ups;
    d.api_store->write([&] {
      auto row = d.api_store->invocation(n);
      if (!row || row->status != "parked")
        return;
      auto& s = d.service(row->service);
      if (s.spec.on_fail)
        follow_ups = s.spec.on_fail(*d.api_conn, *row, "cancelled by request");
      d.api_store->set_invocation(n, "cancelled", "", "cancelled by request; " + row->error, rfc3339_now());
      cancelled = true;
    });
    d.dispatch_all(*d.api_store, follow_ups);
  }
  if (cancelled) {
    d.count("cancelled");
    d.notify(n);
  }
  return cancelled;
}

void invocation_engine::dispatch(const std::string& service, const std::string& key, std::uint64_t n) {
  impl_->dispatch(service, key, n);
}

std::size_t invocation_engine::active_entities() const { return impl_->active.load(); }

std::map<std::string, std::uint64_t> invocation_engine::counters() const {
  std::lock_guard<std::mutex> guard{impl_->counters_mu};
  return impl_->ended;
}

void invocation_engine::release_answers() {
  auto& d = *impl_;
  d.answers_released = true;
  std::lock_guard<std::mutex> guard{d.wait_mu};
  for (auto& [n, w] : d.waiters)
    w->cv.notify_all();
}

void invocation_engine::stop() {
  auto& d = *impl_;
  if (d.stopping.exchange(true))
    return;
  {
    std::lock_guard<std::mutex> guard{d.wait_mu};
    for (auto& [n, w] : d.waiters)
      w->cv.notify_all();
  }
  d.timer_cv.notify_all();
  if (d.timer_thread.joinable())
    d.timer_thread.join();
  for (auto& [name, s] : d.services) {
    {
      std::lock_guard<std::mutex> guard{s->runners.mu};
      s->runners.stopping = true;
    }
    s->runners.cv.notify_all();
  }
  for (auto& [name, s] : d.services)
    for (auto& t : s->runners.threads)
      if (t.joinable())
        t.join();
  std::lock_guard<std::mutex> guard{d.api_mu};
  d.api_store = nullptr;
  d.api_conn.reset();
}

} // namespace switchboard::actors
