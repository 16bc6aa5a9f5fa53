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

std::vector<std::uint64_t> invocation_engine::resume(std::uint64_t n) {
  auto& d = *impl_;
  std::vector<invocation_row> resumed;
  {
    std::lock_guard<std::mutex> guard{d.api_mu};
    d.api_store->write([&] {
      for (auto& row : d.chain_of(*d.api_store, n)) {
        if (row.status != "parked")
          continue;
        d.api_store->reset_step_attempts(row.n);
        d.api_store->set_invocation(row.n, "running", "", "", rfc3339_now());
        resumed.push_back(row);
      }
    });
  }
  std::vector<std::uint64_t> out;
  for (auto it = resumed.rbegin(); it != resumed.rend(); ++it)
    d.dispatch(it->service, it->key, it->n);
  for (const auto& row : resumed)
    out.push_back(row.n);
  if (!out.empty())
    spdlog::info("{}: resumed inv-{} and its chain: {} invocation(s)", d.options.name, n,
                 out.size());
  return out;
}

std::vector<std::uint64_t> invocation_engine::cancel(std::uint64_t n) {
  auto& d = *impl_;
  std::vector<std::uint64_t> cancelled;
  {
    std::lock_guard<std::mutex> guard{d.api_mu};
    std::vector<std::uint64_t> follow_ups;
    d.api_store->write([&] {
      auto rows = d.chain_of(*d.api_store, n);
      // The innermost first: a callee compensates before the caller that waited for it.
      for (auto it = rows.rbegin(); it != rows.rend(); ++it) {
        if (it->status != "parked")
          continue;
        auto& s = d.service(it->service);
        if (s.spec.on_fail) {
          auto more = s.spec.on_fail(*d.api_conn, *it, "cancelled by request");
          follow_ups.insert(follow_ups.end(), more.begin(), more.end());
        }
        d.api_store->set_invocation(it->n, "cancelled", "", "cancelled by request; " + it->error,
                                    rfc3339_now());
        cancelled.insert(cancelled.begin(), it->n);
      }
    });
    d.dispatch_all(*d.api_store, follow_ups);
  }
  for (auto c : cancelled) {
    d.count("cancelled");
    d.notify(c);
  }
  if (!cancelled.empty())
    spdlog::info("{}: cancelled inv-{} and its chain: {} invocation(s)", d.options.name, n,
                 cancelled.size());
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
