#include "switchboard/runtime.hpp"

#include "actors/bus.hpp"
#include "actors/supervisor.hpp"
#include "adapters/http/http_server.hpp"
#include "core/type_pattern.hpp"
#include "runtime_access.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <stdexcept>
#include <system_error>

namespace switchboard {

namespace {

constexpr caf::atom_value consumers_name = caf::atom("sb_consume");

/// Fulfils a publish future; a completion dropped without an answer fails it.
class promise_completion final : public publish_completion {
public:
  promise_completion(std::string id) : id_(std::move(id)) {}
  ~promise_completion() override {
    if (!done_)
      promise_.set_exception(std::make_exception_ptr(
        publish_error("event '" + id_ + "' was not accepted: the router stopped or restarted "
                      "before routing it; publish it again")));
  }
  void accepted(std::size_t subscribers) override {
    if (done_)
      return;
    done_ = true;
    promise_.set_value(publish_receipt{id_, subscribers});
  }
  std::future<publish_receipt> future() { return promise_.get_future(); }

private:
  std::string id_;
  std::promise<publish_receipt> promise_;
  bool done_ = false;
};

template <class T>
std::future<T> failed_future(const std::string& why) {
  std::promise<T> p;
  p.set_exception(std::make_exception_ptr(publish_error(why)));
  return p.get_future();
}

} // namespace

struct runtime::impl {
  enum class phase { created, running, stopping, stopped };

  explicit impl(config c) : cfg(std::move(c)) {}

  config cfg;
  std::unique_ptr<caf::actor_system_config> caf_cfg;
  std::unique_ptr<caf::actor_system> sys;
  supervisor_actor root;
  std::unique_ptr<adapters::http::http_server> http;
  std::string listen_address;

  mutable std::mutex mu;
  std::condition_variable cv;
  phase state = phase::created;
  bool stop_requested = false;
  bool root_down = false;
  run_outcome outcome;
  std::size_t inflight = 0;  // accepted events some subscriber still holds
  std::map<std::uint64_t, std::shared_ptr<const actors::subscription_entry>> subscriptions;
  std::uint64_t next_subscription = 1;

  /// Held by every message about one accepted event; the last one out counts it done.
  struct ticket final : inflight_ticket {
    explicit ticket(impl* owner) : owner_(owner) {}
    ~ticket() override {
      std::lock_guard<std::mutex> guard{owner_->mu};
      if (--owner_->inflight == 0)
        owner_->cv.notify_all();
    }
    impl* owner_;
  };

  supervisor_spec consumers_spec() {
    supervisor_spec spec;
    spec.name = "consumers";
    spec.strategy = restart_strategy::one_for_one;
    spec.intensity = {cfg.supervision.max_restarts, cfg.supervision.within};
    spec.backoff = {cfg.supervision.backoff_initial, cfg.supervision.backoff_max};
    std::lock_guard<std::mutex> guard{mu};
    for (auto& [id, entry] : subscriptions)
      spec.children.push_back(actors::subscriber_child(entry));
    return spec;
  }

  supervisor_spec root_spec() {
    supervisor_spec spec;
    spec.name = "root";
    // The consumers depend on the router: if it restarts, they restart and register again.
    spec.strategy = restart_strategy::rest_for_one;
    spec.intensity = {cfg.supervision.max_restarts, cfg.supervision.within};
    spec.backoff = {cfg.supervision.backoff_initial, cfg.supervision.backoff_max};
    spec.children.push_back(actors::router_child());
    auto consumers = actors::supervisor_child("consumers", [this] { return consumers_spec(); });
    auto start_consumers = consumers.start;
    consumers.start = [start_consumers](caf::actor_system& s) {
      auto sup = start_consumers(s);
      s.registry().erase(consumers_name);  // put() keeps an existing entry
      s.registry().put(consumers_name, caf::actor_cast<caf::strong_actor_ptr>(sup));
      return sup;
    };
    spec.children.push_back(std::move(consumers));
    return spec;
  }

  supervisor_actor consumers() {
    return caf::actor_cast<supervisor_actor>(sys->registry().get(consumers_name));
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

  d.caf_cfg = std::make_unique<caf::actor_system_config>();
  d.caf_cfg->set("scheduler.max-threads", d.cfg.scheduler.max_threads);
  d.caf_cfg->set("work-stealing.moderate-sleep-duration",
                 caf::timespan{d.cfg.scheduler.moderate_sleep});
  d.sys = std::make_unique<caf::actor_system>(*d.caf_cfg);

  d.root = actors::spawn_supervisor(*d.sys, d.root_spec());
  impl* raw = impl_.get();
  {
    // The root starts its children when it first runs; its first answer means the router
    // and the consumers supervisor exist and are registered.
    caf::scoped_actor self{*d.sys};
    bool up = false;
    self->request(d.root, std::chrono::seconds(10), which_children_atom_v)
      .receive([&](const std::vector<std::string>& ids) { up = ids.size() == 2; },
               [](const caf::error&) {});
    if (!up) {
      caf::anon_send_exit(d.root, caf::exit_reason::user_shutdown);
      d.sys.reset();
      throw std::runtime_error("the supervision tree did not start; see the log for why");
    }
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
    d.http = std::make_unique<adapters::http::http_server>(
      d.cfg.http, adapters::http::http_server::hooks{[raw] {
        std::lock_guard<std::mutex> guard{raw->mu};
        return raw->state == impl::phase::running && !raw->root_down;
      }});
    try {
      d.listen_address = d.http->start();
    } catch (...) {
      caf::anon_send_exit(d.root, caf::exit_reason::user_shutdown);
      d.http.reset();
      d.sys.reset();
      {
        std::lock_guard<std::mutex> guard{d.mu};
        d.state = impl::phase::stopped;
      }
      throw;
    }
  }
  std::lock_guard<std::mutex> guard{d.mu};
  d.state = impl::phase::running;
}

std::future<publish_receipt> runtime::publish(event ev) {
  auto& d = *impl_;
  if (ev.time.empty())
    ev.time = rfc3339_now();
  if (auto problem = validate_event(ev, d.cfg.limits))
    return failed_future<publish_receipt>("event rejected: " + problem->message());
  std::shared_ptr<impl::ticket> ticket;
  {
    std::lock_guard<std::mutex> guard{d.mu};
    if (d.state != impl::phase::running)
      return failed_future<publish_receipt>(
        d.state == impl::phase::created ? "runtime is not started; call start() first"
                                        : "runtime is stopping; the event was not accepted");
    ++d.inflight;
    ticket = std::make_shared<impl::ticket>(impl_.get());
  }
  auto router = actors::current_router(*d.sys);
  auto completion = std::make_shared<promise_completion>(ev.id);
  auto result = completion->future();
  if (router)
    caf::anon_send(router, route_atom_v, std::make_shared<const event>(std::move(ev)),
                   inflight_ptr{std::move(ticket)}, publish_completion_ptr{std::move(completion)});
  return result;  // without a router, the dropped completion fails the future
}

subscription runtime::subscribe(const std::string& pattern, event_handler handler) {
  auto& d = *impl_;
  std::string why;
  if (!core::type_pattern::parse(pattern, why))
    throw std::invalid_argument(why);
  if (!handler)
    throw std::invalid_argument("subscribe('" + pattern + "'): the handler is empty");
  auto entry = std::make_shared<actors::subscription_entry>();
  entry->pattern = pattern;
  entry->handler = std::move(handler);
  bool running = false;
  {
    std::lock_guard<std::mutex> guard{d.mu};
    if (d.state == impl::phase::stopping || d.state == impl::phase::stopped)
      throw std::logic_error("subscribe('" + pattern + "'): the runtime is stopping");
    entry->id = d.next_subscription++;
    d.subscriptions.emplace(entry->id, entry);
    running = d.state == impl::phase::running;
  }
  if (running) {
    // The subscription is live once its subscriber registered with the router, which the
    // child's start does before the supervisor answers.
    caf::scoped_actor self{*d.sys};
    std::string error;
    self->request(d.consumers(), std::chrono::seconds(10), start_child_atom_v,
                  actors::subscriber_child(entry))
      .receive([](const caf::actor&) {},
               [&](const caf::error& err) {
                 // "already has a child": the consumers supervisor restarted meanwhile and
                 // started it from the table.
                 auto text = actors::describe_exit_reason(err);
                 if (text.find("already has a child") == std::string::npos)
                   error = text;
               });
    if (!error.empty()) {
      std::lock_guard<std::mutex> guard{d.mu};
      d.subscriptions.erase(entry->id);
      throw std::runtime_error("subscribe('" + pattern + "') failed: " + error);
    }
  }
  return subscription{entry->id, pattern};
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
  if (!running)
    return;
  if (auto router = actors::current_router(*d.sys))
    caf::anon_send(router, unregister_atom_v, sub.id);
  if (auto consumers = d.consumers())
    caf::anon_send(consumers, stop_child_atom_v, "subscription-" + std::to_string(sub.id));
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
    std::unique_lock<std::mutex> lock{d.mu};
    if (d.state == impl::phase::created)
      d.state = impl::phase::stopped;
    if (d.state == impl::phase::stopped)
      return d.outcome;
    d.state = impl::phase::stopping;  // publish refuses from here on; /ready says 503
    d.stop_requested = true;
    d.cv.notify_all();
    // Drain: every accepted event is handled (or its subscriber gone) before we stop.
    if (!d.cv.wait_for(lock, d.cfg.drain_timeout, [&] { return d.inflight == 0; }))
      spdlog::warn("runtime: drain timed out after {} ms with {} event(s) still in flight",
                   d.cfg.drain_timeout.count(), d.inflight);
  }
  if (d.http)
    d.http->stop();
  caf::anon_send_exit(d.root, caf::exit_reason::user_shutdown);
  {
    std::unique_lock<std::mutex> lock{d.mu};
    d.cv.wait_for(lock, std::chrono::seconds(10), [&] { return d.root_down; });
  }
  d.root = nullptr;
  d.sys.reset();  // waits for every actor to finish
  std::lock_guard<std::mutex> guard{d.mu};
  d.state = impl::phase::stopped;
  d.cv.notify_all();
  return d.outcome;
}

std::string runtime::listen_address() const {
  std::lock_guard<std::mutex> guard{impl_->mu};
  return impl_->listen_address;
}

const config& runtime::configuration() const { return impl_->cfg; }

caf::actor_system& internal::runtime_access::system(runtime& rt) { return *rt.impl_->sys; }

} // namespace switchboard
