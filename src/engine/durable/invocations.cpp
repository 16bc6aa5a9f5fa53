#include "engine/durable/engine_impl.hpp"

namespace switchboard::actors {

// --- invocation_engine
// ---------------------------------------------------------------------------------

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
      spdlog::critical("{}: the timer thread cannot open its database: {}", raw->options.name,
                       e.what());
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
                {t.service, t.key, t.handler, t.body, "timer:" + std::to_string(t.n)},
                rfc3339_now(), core::unix_millis_now());
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

std::pair<std::uint64_t, bool> invocation_engine::submit(const invocation_spec& spec,
                                                         std::chrono::milliseconds window) {
  impl_->service(spec.service);  // throws for an unknown service before anything is stored
  std::lock_guard<std::mutex> guard{impl_->api_mu};
  return impl_->submit_with(*impl_->api_store, spec, window);
}

std::optional<invocation_row> invocation_engine::wait(std::uint64_t n,
                                                      std::chrono::milliseconds timeout) {
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
      d.api_store->set_invocation(n, "cancelled", "", "cancelled by request; " + row->error,
                                  rfc3339_now());
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

void invocation_engine::dispatch(const std::string& service, const std::string& key,
                                 std::uint64_t n) {
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
  // Queued jobs are dropped: what they would have run is in the journal for the next start.
  for (auto& [name, s] : d.services)
    if (s->lanes)
      s->lanes->request_stop();
  for (auto& [name, s] : d.services)
    if (s->lanes)
      s->lanes->stop();
  std::lock_guard<std::mutex> guard{d.api_mu};
  d.api_store = nullptr;
  d.api_conn.reset();
}

}  // namespace switchboard::actors
