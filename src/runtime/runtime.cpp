#include "switchboard/runtime.hpp"

#include "engine/bus/bus.hpp"
#include "engine/journal/journal.hpp"
#include "engine/supervision/supervisor.hpp"
#include "adapters/http/http_server.hpp"
#include "core/type_pattern.hpp"
#include "jobs/leads/job.hpp"
#include "jobs/propagation/job.hpp"
#include "runtime/runtime_access.hpp"

#include <boost/json.hpp>
#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>

namespace switchboard {

namespace {

constexpr caf::atom_value consumers_name = caf::atom("sb_consume");
constexpr std::size_t tail_capacity = 65'536;

/// Runs the runtime's blocking CAF calls (scoped actors, creating and destroying the actor
/// system) on one thread of its own. CAF 0.17 hangs in ~actor_system when the system is
/// destroyed on another thread than the one that used scoped actors (or spawned detached
/// actors), and a host may call start(), subscribe() and stop() from any threads.
class control_thread {
public:
  control_thread() : thread_([this] { loop(); }) {}
  ~control_thread() {
    {
      std::lock_guard<std::mutex> guard{mu_};
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  /// Runs `fn` on the control thread and waits for it; rethrows what it throws.
  void run(const std::function<void()>& fn) {
    if (std::this_thread::get_id() == thread_.get_id()) {
      fn();
      return;
    }
    std::packaged_task<void()> task{fn};
    auto done = task.get_future();
    {
      std::lock_guard<std::mutex> guard{mu_};
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
    done.get();
  }

private:
  void loop() {
    for (;;) {
      std::packaged_task<void()> task;
      {
        std::unique_lock<std::mutex> lock{mu_};
        cv_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
        if (tasks_.empty())
          return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::packaged_task<void()>> tasks_;
  bool stopping_ = false;
  std::thread thread_;
};

template <class T>
std::future<T> failed_future(const std::string& why) {
  std::promise<T> p;
  p.set_exception(std::make_exception_ptr(publish_error(why)));
  return p.get_future();
}

dead_letter_info to_info(const adapters::sqlite::dead_letter& d) {
  return dead_letter_info{d.id,       d.consumer,   d.sequence, d.reason,
                          d.attempts, d.last_error, d.parked_at};
}

} // namespace

struct runtime::impl {
  enum class phase { created, running, stopping, stopped };

  explicit impl(config c) : cfg(std::move(c)) {}

  config cfg;
  control_thread control;
  adapters::sqlite::journal_options journal_opts;
  std::shared_ptr<actors::journal_writer> writer;
  std::shared_ptr<actors::journal_tail> tail;
  std::shared_ptr<actors::journal_reader> reader;
  std::shared_ptr<const actors::bus_context> ctx;
  std::unique_ptr<caf::actor_system_config> caf_cfg;
  std::unique_ptr<caf::actor_system> sys;
  supervisor_actor root;
  std::unique_ptr<adapters::http::http_server> http;
  std::string listen_address;
  std::unique_ptr<propagation> prop;  // entity-state propagation, when configured
  std::uint64_t state_subscription = 0;  // the id of prop's subscription, 0 = none
  std::unique_ptr<leads> lead_host;      // lead conversations and form leads, when configured

  // A read-only connection for API reads (read, dead_letters); SQLite connections are not
  // thread-safe, so it is used under its own lock.
  mutable std::mutex query_mu;
  mutable std::unique_ptr<adapters::sqlite::journal_store> query_store;

  mutable std::mutex mu;
  std::condition_variable cv;
  phase state = phase::created;
  bool stop_requested = false;
  bool root_down = false;
  run_outcome outcome;
  std::map<std::uint64_t, std::shared_ptr<actors::subscription_entry>> subscriptions;
  std::uint64_t next_subscription = 1;

  template <class F>
  auto query(F&& f) const {
    std::lock_guard<std::mutex> guard{query_mu};
    if (!query_store) {
      auto opts = journal_opts;
      opts.read_only = true;
      query_store = std::make_unique<adapters::sqlite::journal_store>(opts);
    }
    return f(*query_store);
  }

  supervisor_spec consumers_spec() {
    supervisor_spec spec;
    spec.name = "consumers";
    spec.strategy = restart_strategy::one_for_one;
    spec.intensity = {cfg.supervision.max_restarts, cfg.supervision.within};
    spec.backoff = {cfg.supervision.backoff_initial, cfg.supervision.backoff_max};
    std::lock_guard<std::mutex> guard{mu};
    for (auto& [id, entry] : subscriptions)
      spec.children.push_back(actors::consumer_child(entry, ctx));
    return spec;
  }

  supervisor_spec root_spec() {
    supervisor_spec spec;
    spec.name = "root";
    spec.strategy = restart_strategy::one_for_one;
    spec.intensity = {cfg.supervision.max_restarts, cfg.supervision.within};
    spec.backoff = {cfg.supervision.backoff_initial, cfg.supervision.backoff_max};
    auto consumers = actors::supervisor_child("consumers", [this] { return consumers_spec(); });
    auto start_consumers = consumers.start;
    consumers.start = [start_consumers](caf::actor_system& s) {
      auto sup = start_consumers(s);
      s.registry().erase(consumers_name);  // put() keeps an existing entry
      s.registry().put(consumers_name, caf::actor_cast<caf::strong_actor_ptr>(sup));
      return sup;
    };
    spec.children.push_back(std::move(consumers));
    if (prop)
      spec.children.push_back(prop->writers_child(cfg.supervision));
    if (lead_host)
      spec.children.push_back(lead_host->child(cfg.supervision));
    return spec;
  }

  supervisor_actor consumers() const {
    return caf::actor_cast<supervisor_actor>(sys->registry().get(consumers_name));
  }

  std::shared_ptr<actors::subscription_entry> find_by_name(const std::string& name) const {
    std::lock_guard<std::mutex> guard{mu};
    for (auto& [id, entry] : subscriptions)
      if (entry->durable && entry->options.name == name)
        return entry;
    return nullptr;
  }

  /// Asks the consumers supervisor, and waits for its answer.
  std::string request_consumers(const child_spec& spec) {
    std::string error;
    control.run([&] {
      caf::scoped_actor self{*sys};
      self->request(consumers(), std::chrono::seconds(10), start_child_atom_v, spec)
        .receive([](const caf::actor&) {},
                 [&](const caf::error& err) {
                   // "already has a child": the supervisor restarted meanwhile and started it.
                   auto text = actors::describe_exit_reason(err);
                   if (text.find("already has a child") == std::string::npos)
                     error = text;
                 });
    });
    return error;
  }

  /// Undoes a start() that failed part way: once start() has thrown, no thread of this runtime
  /// runs and no file stays open (a host may retry with a new runtime on the same data_dir), and
  /// the runtime counts as stopped (it starts once; stop() and the destructor have nothing to do).
  void abandon_start() {
    if (root)
      caf::anon_send_exit(root, caf::exit_reason::user_shutdown);
    http.reset();
    root = nullptr;  // no handle may outlive the system it belongs to
    if (sys)
      control.run([&] { sys.reset(); });
    if (state_subscription != 0) {
      std::lock_guard<std::mutex> guard{mu};
      subscriptions.erase(state_subscription);  // its handler points into `prop`
      state_subscription = 0;
    }
    prop.reset();  // joins the writers' lanes, closes state.db and the lookup database
    lead_host.reset();  // joins the lead runners, closes leads.db
    ctx.reset();
    reader.reset();
    writer.reset();  // before `tail`, which its commit callback appends to
    std::lock_guard<std::mutex> guard{mu};
    state = phase::stopped;
    cv.notify_all();
  }

  bool stop_consumer(std::uint64_t id) {
    bool existed = false;
    control.run([&] {
      caf::scoped_actor self{*sys};
      self->request(consumers(), std::chrono::seconds(10), stop_child_atom_v,
                    "subscription-" + std::to_string(id))
        .receive([&](bool found) { existed = found; }, [](const caf::error&) {});
    });
    return existed;
  }
};

runtime::runtime(config cfg) : impl_(std::make_unique<impl>(std::move(cfg))) {}

runtime::~runtime() {
  try {
    stop();
  } catch (const std::exception& e) {
    spdlog::error("runtime: stop failed during destruction: {}", e.what());
  }
}

void runtime::start() {
  auto& d = *impl_;
  {
    std::lock_guard<std::mutex> guard{d.mu};
    if (d.state != impl::phase::created)
      throw std::logic_error("runtime::start: a runtime starts once");
  }
  std::error_code ec;
  std::filesystem::create_directories(d.cfg.data_dir, ec);
  if (ec)
    throw std::runtime_error("cannot create the data directory '" + d.cfg.data_dir +
                             "': " + ec.message() + " (set data_dir or --data-dir)");
  d.journal_opts.path = (std::filesystem::path{d.cfg.data_dir} / "journal.db").string();
  impl* raw = impl_.get();
  try {
    d.writer = std::make_shared<actors::journal_writer>(
      d.journal_opts, [raw](std::vector<event_ptr> committed) {
        raw->tail->append(std::move(committed));
      });
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot open the journal: " + std::string{e.what()});
  }
  d.reader = std::make_shared<actors::journal_reader>(d.journal_opts);
  auto last = d.writer->last_sequence();
  d.tail = std::make_shared<actors::journal_tail>(tail_capacity, last);
  d.ctx = std::make_shared<const actors::bus_context>(actors::bus_context{d.tail, d.writer, d.reader});
  {
    std::lock_guard<std::mutex> guard{d.mu};
    for (auto& [id, entry] : d.subscriptions)
      if (!entry->durable)
        entry->progress.store(last);  // ephemeral subscriptions see what comes after now
  }

  if (d.cfg.propagates_state()) {
    // Opens state.db and checks the lookups' SQL before anything runs: a bad configuration
    // fails start-up with a message naming the key.
    try {
      d.prop = std::make_unique<propagation>(d.cfg);
      d.state_subscription = subscribe(d.prop->subscription(), d.prop->handler()).id;
    } catch (...) {
      d.abandon_start();  // the journal writer's thread and files must not outlive the failure
      throw;
    }
  }

  if (switchboard::runs_leads(d.cfg)) {
    try {
      d.lead_host = std::make_unique<leads>(d.cfg, [raw] {
        std::lock_guard<std::mutex> guard{raw->mu};
        return raw->listen_address;
      });
    } catch (...) {
      d.abandon_start();
      throw;
    }
  }

  d.caf_cfg = std::make_unique<caf::actor_system_config>();
  d.caf_cfg->set("scheduler.max-threads", d.cfg.scheduler.max_threads);
  d.caf_cfg->set("work-stealing.moderate-sleep-duration",
                 caf::timespan{d.cfg.scheduler.moderate_sleep});
  bool up = false;
  d.control.run([&] {
    d.sys = std::make_unique<caf::actor_system>(*d.caf_cfg);
    d.root = actors::spawn_supervisor(*d.sys, d.root_spec());
    // The root starts its children when it first runs; its first answer means the consumers
    // supervisor exists and is registered.
    caf::scoped_actor self{*d.sys};
    self->request(d.root, std::chrono::seconds(10), which_children_atom_v)
      .receive([&](const std::vector<std::string>& ids) {
                 up = ids.size() == 1u + (d.prop ? 1u : 0u) + (d.lead_host ? 1u : 0u);
               },
               [](const caf::error&) {});
  });
  if (!up) {
    d.abandon_start();
    throw std::runtime_error("the supervision tree did not start; see the log for why");
  }
  caf::actor_cast<caf::abstract_actor*>(d.root)->attach_functor([raw](const caf::error& reason) {
    std::lock_guard<std::mutex> guard{raw->mu};
    raw->root_down = true;
    if (raw->state == impl::phase::running && !raw->stop_requested) {
      raw->outcome.failed = true;
      raw->outcome.reason = actors::describe_exit_reason(reason);
      spdlog::critical("switchboard cannot go on: the root supervisor stopped: {}",
                       raw->outcome.reason);
    }
    raw->cv.notify_all();
  });

  if (d.cfg.http.enabled) {
    auto hooks = adapters::http::runtime_hooks(*this);  // /v1/ through the public API
    hooks.ready = [raw] {
      std::lock_guard<std::mutex> guard{raw->mu};
      return raw->state == impl::phase::running && !raw->root_down;
    };
    d.http = std::make_unique<adapters::http::http_server>(d.cfg.http, std::move(hooks));
    try {
      auto address = d.http->start();
      std::lock_guard<std::mutex> guard{d.mu};  // listen_address() reads it under `mu`
      d.listen_address = std::move(address);
    } catch (...) {
      d.abandon_start();
      throw;
    }
  }
  {
    std::lock_guard<std::mutex> guard{d.mu};
    d.state = impl::phase::running;
  }
  if (d.prop)
    d.prop->start_sources([this](event ev, std::function<void(bool, const std::string&)> done) {
      publish_async(std::move(ev), [done = std::move(done)](const publish_receipt* r, const std::string& error) {
        done(r != nullptr, error);
      });
    });
}

void runtime::publish_async(
  event ev, std::function<void(const publish_receipt*, const std::string& error)> done) {
  auto& d = *impl_;
  if (ev.time.empty())
    ev.time = rfc3339_now();
  if (auto problem = validate_event(ev, d.cfg.limits)) {
    done(nullptr, "event rejected: " + problem->message());
    return;
  }
  // A copy taken under the lock: a publish that passed the check as stop() began still has a
  // writer (which commits it) when stop() lets go of its own.
  std::shared_ptr<actors::journal_writer> writer;
  {
    std::lock_guard<std::mutex> guard{d.mu};
    if (d.state != impl::phase::running) {
      done(nullptr, d.state == impl::phase::created
                      ? "runtime is not started; call start() first"
                      : "runtime is stopping; the event was not accepted");
      return;
    }
    writer = d.writer;
  }
  auto id = ev.id;
  writer->append(std::move(ev), [id = std::move(id), done = std::move(done)](
                                    const actors::append_result& r) {
    if (!r.ok) {
      done(nullptr, "event '" + id + "' was not stored: " + r.error +
                      (r.retryable ? " (nothing was stored; publish it again later)" : ""));
      return;
    }
    publish_receipt receipt{id,
                            r.status == adapters::sqlite::append_status::accepted
                              ? publish_receipt::outcome::accepted
                              : publish_receipt::outcome::duplicate,
                            r.sequence};
    done(&receipt, {});
  });
}

std::future<publish_receipt> runtime::publish(event ev) {
  auto promise = std::make_shared<std::promise<publish_receipt>>();
  auto result = promise->get_future();
  publish_async(std::move(ev), [promise](const publish_receipt* r, const std::string& error) {
    if (r != nullptr)
      promise->set_value(*r);
    else
      promise->set_exception(std::make_exception_ptr(publish_error(error)));
  });
  return result;
}

subscription runtime::subscribe(const std::string& pattern, event_handler handler) {
  subscription_options opts;
  opts.pattern = pattern;
  return subscribe(std::move(opts), std::move(handler));
}

subscription runtime::subscribe(subscription_options options, event_handler handler) {
  auto& d = *impl_;
  std::string why;
  auto pattern = core::type_pattern::parse(options.pattern, why);
  if (!pattern)
    throw std::invalid_argument(why);
  auto where = "subscribe('" + options.pattern + "'): ";
  if (!handler)
    throw std::invalid_argument(where + "the handler is empty");
  if (options.partitions < 1 || options.partitions > 1024)
    throw std::invalid_argument(where + "partitions is " + std::to_string(options.partitions) +
                                "; use 1 to 1024");
  if (options.max_in_flight < 1)
    throw std::invalid_argument(where + "max_in_flight must be at least 1");
  if (options.retry.max_attempts < 1)
    throw std::invalid_argument(where + "retry.max_attempts must be at least 1");
  if (options.retry.jitter < 0 || options.retry.jitter >= 1)
    throw std::invalid_argument(where + "retry.jitter must be in [0, 1)");
  if (!options.name.empty() && d.find_by_name(options.name))
    throw std::invalid_argument(where + "a subscription named '" + options.name +
                                "' exists already; names identify checkpoints, so use another");
  bool running = false;
  std::shared_ptr<actors::subscription_entry> entry;
  {
    std::lock_guard<std::mutex> guard{d.mu};
    if (d.state == impl::phase::stopping || d.state == impl::phase::stopped)
      throw std::logic_error(where + "the runtime is stopping");
    entry = std::make_shared<actors::subscription_entry>(d.next_subscription++, options,
                                                         std::move(*pattern), std::move(handler));
    running = d.state == impl::phase::running;
    if (running && !entry->durable)
      entry->progress.store(d.writer->last_sequence());
    d.subscriptions.emplace(entry->id, entry);
  }
  if (running) {
    auto error = d.request_consumers(actors::consumer_child(entry, d.ctx));
    if (!error.empty()) {
      std::lock_guard<std::mutex> guard{d.mu};
      d.subscriptions.erase(entry->id);
      throw std::runtime_error(where + "failed: " + error);
    }
  }
  return subscription{entry->id, options.pattern};
}

void runtime::unsubscribe(const subscription& sub) {
  auto& d = *impl_;
  bool running = false;
  {
    std::lock_guard<std::mutex> guard{d.mu};
    if (d.subscriptions.erase(sub.id) == 0)
      return;
    running = d.state == impl::phase::running;
  }
  if (running)
    d.stop_consumer(sub.id);
}

void runtime::replay(const std::string& name, std::uint64_t after_sequence) {
  auto& d = *impl_;
  auto entry = d.find_by_name(name);
  if (!entry)
    throw std::invalid_argument("replay: no durable subscription named '" + name + "'");
  entry->restart_after.store(after_sequence);
  {
    std::lock_guard<std::mutex> guard{d.mu};
    if (d.state != impl::phase::running)
      return;  // takes effect when it starts
  }
  d.stop_consumer(entry->id);
  auto error = d.request_consumers(actors::consumer_child(entry, d.ctx));
  if (!error.empty())
    throw std::runtime_error("replay of '" + name + "' failed: " + error);
}

void runtime::replay_from_time(const std::string& name, const std::string& rfc3339) {
  auto& d = *impl_;
  if (!d.writer)
    throw std::logic_error("replay_from_time: the runtime is not started");
  auto seq = d.query([&](adapters::sqlite::journal_store& s) {
    return s.sequence_before_time(rfc3339);
  });
  if (!seq)
    throw std::invalid_argument("replay_from_time: '" + rfc3339 +
                                "' is not an RFC 3339 time such as 2026-11-23T14:00:00Z");
  replay(name, *seq);
}

std::vector<event> runtime::read(std::uint64_t after, std::size_t limit) const {
  if (!impl_->writer)
    return {};
  return impl_->query(
    [&](adapters::sqlite::journal_store& s) { return s.read_after(after, limit); });
}

std::uint64_t runtime::last_sequence() const {
  return impl_->writer ? impl_->writer->last_sequence() : 0;
}

std::vector<dead_letter_info> runtime::dead_letters(const std::string& consumer,
                                                    std::size_t limit) const {
  if (!impl_->writer)
    return {};
  std::vector<dead_letter_info> out;
  impl_->query([&](adapters::sqlite::journal_store& s) {
    for (auto& d : s.dead_letters(consumer, limit))
      out.push_back(to_info(d));
    return 0;
  });
  return out;
}

bool runtime::retry_dead_letter(std::uint64_t id) {
  auto& d = *impl_;
  if (!d.writer)
    return false;
  auto letter =
    d.query([&](adapters::sqlite::journal_store& s) { return s.find_dead_letter(id); });
  if (!letter)
    return false;
  std::shared_ptr<actors::subscription_entry> entry;
  {
    std::lock_guard<std::mutex> guard{d.mu};
    for (auto& [sid, e] : d.subscriptions)
      if (e->consumer_name() == letter->consumer)
        entry = e;
  }
  auto consumer = entry ? entry->get_current() : consumer_actor{};
  if (!consumer)
    return false;
  auto events = d.query([&](adapters::sqlite::journal_store& s) {
    return s.read_after(letter->sequence - 1, 1);
  });
  if (events.empty() || events.front().sequence != letter->sequence)
    return false;
  if (!discard_dead_letter(id))
    return false;  // someone else retried or discarded it meanwhile
  caf::anon_send(consumer, redeliver_atom_v,
                 event_ptr{std::make_shared<const event>(std::move(events.front()))});
  return true;
}

bool runtime::discard_dead_letter(std::uint64_t id) {
  auto& d = *impl_;
  if (!d.writer)
    return false;
  auto removed = std::make_shared<bool>(false);
  d.writer->run([id, removed](adapters::sqlite::journal_store& s) {
    *removed = s.remove_dead_letter(id);
  });
  d.writer->flush();
  return *removed;
}

run_outcome runtime::wait() {
  auto& d = *impl_;
  std::unique_lock<std::mutex> lock{d.mu};
  d.cv.wait(lock, [&] {
    return d.stop_requested || d.outcome.failed || d.state == impl::phase::stopped;
  });
  return d.outcome;
}

void runtime::request_stop() {
  std::lock_guard<std::mutex> guard{impl_->mu};
  impl_->stop_requested = true;
  impl_->cv.notify_all();
}

run_outcome runtime::stop() {
  auto& d = *impl_;
  {
    std::lock_guard<std::mutex> guard{d.mu};
    if (d.state == impl::phase::created)
      d.state = impl::phase::stopped;
    if (d.state == impl::phase::stopped)
      return d.outcome;
  }
  // Ingest ends first, while the journal still confirms what the sources handed on (so those
  // deliveries are acknowledged to the broker rather than redelivered after the restart).
  if (d.prop)
    d.prop->stop_sources();
  {
    std::lock_guard<std::mutex> guard{d.mu};
    if (d.state == impl::phase::stopped)
      return d.outcome;
    d.state = impl::phase::stopping;  // publish refuses from here on; /ready says 503
    d.stop_requested = true;
    d.cv.notify_all();
  }
  // Drain: write what was queued, then let every subscription finish what was committed.
  d.writer->flush();
  auto last = d.tail->last_sequence();
  auto deadline = std::chrono::steady_clock::now() + d.cfg.drain_timeout;
  for (;;) {
    std::size_t behind = 0;
    {
      std::lock_guard<std::mutex> guard{d.mu};
      for (auto& [id, entry] : d.subscriptions)
        if (entry->progress.load() < last)
          ++behind;
      if (d.root_down)
        behind = 0;  // nothing runs any more
    }
    if (behind == 0)
      break;
    if (std::chrono::steady_clock::now() >= deadline) {
      spdlog::warn("runtime: drain timed out after {} ms; {} subscription(s) had not reached "
                   "sequence {} (durable ones resume from their checkpoint)",
                   d.cfg.drain_timeout.count(), behind, last);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  if (d.lead_host)
    d.lead_host->release_answers();  // requests waiting for a lead answer 202 now
  if (d.http)
    d.http->stop();
  caf::anon_send_exit(d.root, caf::exit_reason::user_shutdown);
  {
    std::unique_lock<std::mutex> lock{d.mu};
    d.cv.wait_for(lock, std::chrono::seconds(10), [&] { return d.root_down; });
  }
  d.root = nullptr;
  d.control.run([&] { d.sys.reset(); });  // waits for every actor to finish
  if (d.prop)
    d.prop->stop();  // rebuilds and the writers' I/O lanes
  if (d.lead_host)
    d.lead_host->stop();  // the lead runners and timers (their actors are gone)
  d.writer->flush();  // the last checkpoints and dead letters
  {
    std::lock_guard<std::mutex> guard{d.query_mu};
    d.query_store.reset();
  }
  d.ctx.reset();
  d.reader.reset();
  d.writer.reset();
  std::lock_guard<std::mutex> guard{d.mu};
  d.state = impl::phase::stopped;
  d.cv.notify_all();
  return d.outcome;
}

bool runtime::propagates_state() const { return impl_->cfg.propagates_state(); }

namespace {
propagation& propagation_of(const std::unique_ptr<propagation>& p, const char* what) {
  if (!p)
    throw std::logic_error(std::string{what} +
                           ": entity-state propagation is not running (configure `sources.amqp`, `targets` or "
                           "`enrichment.lookups`, and start the runtime)");
  return *p;
}
} // namespace

std::string runtime::rebuild(const std::string& kind, const std::string& id) {
  return propagation_of(impl_->prop, "rebuild").rebuild(kind, id);
}

std::optional<rebuild_progress> runtime::rebuild_status(const std::string& id) const {
  return impl_->prop ? impl_->prop->rebuild_status(id) : std::nullopt;
}

std::optional<boost::json::value> runtime::entity_state(const std::string& kind, const std::string& id) const {
  return impl_->prop ? impl_->prop->entity_state(kind, id) : std::nullopt;
}

boost::json::value runtime::propagation_status() const {
  return impl_->prop ? impl_->prop->status() : boost::json::value(boost::json::object{});
}

bool runtime::runs_leads() const { return switchboard::runs_leads(impl_->cfg); }

keyed_answer runtime::invoke(const keyed_request& request) {
  if (!impl_->lead_host)
    return keyed_answer{404, boost::json::object{{"error", "lead conversations and form leads are not configured on this "
                                                           "server: set leads.proxy_numbers (and leads.dealers) or a "
                                                           "form_leads URL, and start the runtime"}}};
  {
    std::lock_guard<std::mutex> guard{impl_->mu};
    if (impl_->state != impl::phase::running)
      return keyed_answer{503, boost::json::object{{"error", impl_->state == impl::phase::created
                                                                  ? "the runtime is not started; call start() first"
                                                                  : "the runtime is stopping; nothing was recorded"}}};
  }
  return impl_->lead_host->invoke(request);
}

keyed_answer runtime::conversations_webhook(const std::vector<std::pair<std::string, std::string>>& params,
                                            const std::string& signature) {
  if (!impl_->lead_host)
    return keyed_answer{404, boost::json::object{{"error", "lead conversations are not configured on this server"}}};
  {
    std::lock_guard<std::mutex> guard{impl_->mu};
    if (impl_->state != impl::phase::running)  // Twilio retries a webhook that fails
      return keyed_answer{503, boost::json::object{{"error", "the runtime is not running; nothing was recorded"}}};
  }
  return impl_->lead_host->conversations_webhook(params, signature);
}

boost::json::value runtime::leads_status() const {
  return impl_->lead_host ? impl_->lead_host->status() : boost::json::value(boost::json::object{});
}

std::string runtime::listen_address() const {
  std::lock_guard<std::mutex> guard{impl_->mu};
  return impl_->listen_address;
}

const config& runtime::configuration() const { return impl_->cfg; }

caf::actor_system& internal::runtime_access::system(runtime& rt) { return *rt.impl_->sys; }

caf::actor internal::runtime_access::consumer(runtime& rt, const subscription& sub) {
  std::lock_guard<std::mutex> guard{rt.impl_->mu};
  auto i = rt.impl_->subscriptions.find(sub.id);
  if (i == rt.impl_->subscriptions.end())
    return {};
  return caf::actor_cast<caf::actor>(i->second->get_current());
}

caf::actor internal::runtime_access::consumers(runtime& rt) {
  return caf::actor_cast<caf::actor>(rt.impl_->consumers());
}

} // namespace switchboard
