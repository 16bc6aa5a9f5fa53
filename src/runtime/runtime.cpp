// The composition root: builds the configured jobs, drives them through their lifecycle around
// the journal, the bus and the supervision tree, and wires HTTP. The only code that names
// concrete jobs (see ARCHITECTURE.md, "Adding a job": one line in `make_jobs`).

#include "runtime/runtime_impl.hpp"

#include "runtime/job_adapters.hpp"
#include "runtime/secrets.hpp"

#include <spdlog/spdlog.h>
#include <boost/json.hpp>
#include <caf/all.hpp>

#include <stdexcept>
#include <thread>

namespace switchboard {

namespace {

/// What /ready adds about journal rows that cannot be decoded: the bus went on past them (so
/// the daemon stays ready), but an operator must learn that events were set aside.
boost::json::object unreadable_report(const actors::unreadable_rows& unreadable) {
  constexpr std::size_t shown_rows = 10;
  boost::json::object out;
  const auto rows = unreadable.rows();
  if (rows.empty())
    return out;
  boost::json::array events;
  for (std::size_t i = 0; i < rows.size() && i < shown_rows; ++i) {
    const auto& r = rows[i];
    boost::json::array by;
    for (const auto& c : r.parked_by)
      by.emplace_back(c);
    events.push_back(boost::json::object{{"sequence", r.what.sequence},
                                         {"type", r.what.type},
                                         {"reason", r.what.reason},
                                         {"dead_lettered_by", std::move(by)}});
  }
  out["unreadable_events"] = boost::json::object{
      {"count", rows.size()},
      {"more", unreadable.more()},
      {"events", std::move(events)},
      {"what_to_do",
       "these journal rows cannot be decoded; each subscription whose pattern matches a row's "
       "type dead-lettered it (reason 'unreadable') and went on. GET /v1/dead-letters lists "
       "them, DELETE /v1/dead-letters/{id} discards them, GET /v1/events shows each in its "
       "place"}};
  return out;
}

}  // namespace

void runtime::impl::make_jobs(runtime& self) {
  job_host = std::make_unique<jobs::host>(jobs::host{
      cfg, env, [this] { return current_phase(); },
      [this] {
        std::lock_guard<std::mutex> guard{mu};
        return listen_address;
      },
      [&self](event ev, std::function<void(bool, const std::string&)> done) {
        self.publish_async(std::move(ev), [done = std::move(done)](const publish_receipt* r,
                                                                   const std::string& error) {
          done(r != nullptr, error);
        });
      },
      [this, &self](subscription_options options, event_handler handler) {
        auto sub = self.subscribe(std::move(options), std::move(handler));
        job_subscriptions.push_back(sub.id);
        return sub;
      }});
  if (jobs::propagation_job::configured(cfg)) {
    auto job =
        std::make_unique<jobs::propagation_job>(runtime_parts::propagation_adapters_for(cfg));
    propagation = job.get();
    jobs.push_back(std::move(job));
  }
  if (jobs::leads_job::configured(cfg)) {
    auto job = std::make_unique<jobs::leads_job>(runtime_parts::lead_adapters_for(cfg));
    leads = job.get();
    jobs.push_back(std::move(job));
  }
}

supervisor_spec runtime::impl::root_spec() {
  auto spec = actors::supervisor_spec_of("root", cfg.supervision);
  spec.children.push_back(consumers_child());
  for (auto& job : jobs)
    for (auto& child : job->children(cfg.supervision))
      spec.children.push_back(std::move(child));
  return spec;
}

void runtime::impl::abandon_start() {
  if (root)
    caf::anon_send_exit(root, caf::exit_reason::user_shutdown);
  http.reset();
  root = nullptr;  // no handle may outlive the system it belongs to
  if (sys)
    control.run([&] { sys.reset(); });
  {
    std::lock_guard<std::mutex> guard{mu};
    for (auto id : job_subscriptions)
      subscriptions.erase(id);  // their handlers point into the jobs
    job_subscriptions.clear();
  }
  // Joins the jobs' threads and closes their files, last made first.
  while (!jobs.empty())
    jobs.pop_back();
  propagation = nullptr;
  leads = nullptr;
  ctx.reset();
  reader.reset();
  writer.reset();  // before `tail`, which its commit callback appends to
  dir_lock.reset();
  std::lock_guard<std::mutex> guard{mu};
  state = phase::stopped;
  cv.notify_all();
}

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
  d.env = internal::read_secrets();
  d.open_journal();
  impl* raw = impl_.get();
  // Each job opens its files and checks its configuration against the world before anything
  // runs: a bad configuration fails start-up with a message naming the key.
  try {
    d.make_jobs(*this);
    for (auto& job : d.jobs)
      job->prepare(*d.job_host);
  } catch (...) {
    d.abandon_start();  // the journal writer's thread and files must not outlive the failure
    throw;
  }

  d.caf_cfg = std::make_unique<caf::actor_system_config>();
  d.caf_cfg->set("scheduler.policy",
                 d.cfg.scheduler.policy == scheduler_config::policy_kind::sharing
                     ? caf::atom("sharing")
                     : caf::atom("stealing"));
  d.caf_cfg->set("scheduler.max-threads", d.cfg.scheduler.max_threads);
  d.caf_cfg->set("work-stealing.moderate-sleep-duration",
                 caf::timespan{d.cfg.scheduler.moderate_sleep});
  bool up = false;
  d.control.run([&] {
    d.sys = std::make_unique<caf::actor_system>(*d.caf_cfg);
    auto spec = d.root_spec();
    const auto expected = spec.children.size();
    d.root = actors::spawn_supervisor(*d.sys, std::move(spec));
    // The root starts its children when it first runs; its first answer means the consumers
    // supervisor exists and is registered.
    caf::scoped_actor self{*d.sys};
    self->request(d.root, std::chrono::seconds(10), which_children_atom_v)
        .receive([&](const std::vector<std::string>& ids) { up = ids.size() == expected; },
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
    adapters::http::http_server::hooks hooks;
    hooks.api_token = d.env.api_token;
    if (hooks.api_token.empty())
      spdlog::warn(
          "SWITCHBOARD_API_TOKEN is not set: the HTTP API under /v1/ (events, dead letters, "
          "state, rebuild, leads, form leads, dealers, invocations) refuses every request with "
          "401 until switchboard is restarted with it set; /health, /ready and the signed "
          "Twilio webhook stay open");
    hooks.limits = d.cfg.limits;
    hooks.ready = [raw] {
      std::lock_guard<std::mutex> guard{raw->mu};
      return raw->state == impl::phase::running && !raw->root_down;
    };
    hooks.publish = [this](event ev, auto done) { publish_async(std::move(ev), std::move(done)); };
    hooks.ready_details = [raw] { return unreadable_report(*raw->unreadable); };
    hooks.read = [this](std::uint64_t after, std::size_t limit) { return read_page(after, limit); };
    hooks.last_sequence = [this] { return last_sequence(); };
    hooks.dead_letters = [this](const std::string& consumer, std::size_t limit,
                                std::uint64_t after_id) {
      return dead_letters(consumer, limit, after_id);
    };
    hooks.retry_dead_letter = [this](std::uint64_t id) { return retry_dead_letter(id); };
    hooks.discard_dead_letter = [this](std::uint64_t id) { return discard_dead_letter(id); };
    // Every job's routes; a job that is not configured answers how to configure it.
    auto add = [&hooks](std::vector<ports::http_route> routes) {
      for (auto& r : routes)
        hooks.routes.push_back(std::move(r));
    };
    add(jobs::propagation_routes(d.propagation));
    add(jobs::lead_routes(d.leads));
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
  for (auto& job : d.jobs)
    job->start_intake();
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
  for (auto& job : d.jobs)
    job->stop_intake();
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
      spdlog::warn(
          "runtime: drain timed out after {} ms; {} subscription(s) had not reached "
          "sequence {} (durable ones resume from their checkpoint)",
          d.cfg.drain_timeout.count(), behind, last);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  for (auto& job : d.jobs)
    job->drain();  // e.g. requests waiting for a lead answer 202 now
  if (d.http)
    d.http->stop();
  caf::anon_send_exit(d.root, caf::exit_reason::user_shutdown);
  {
    std::unique_lock<std::mutex> lock{d.mu};
    d.cv.wait_for(lock, std::chrono::seconds(10), [&] { return d.root_down; });
  }
  d.root = nullptr;
  d.control.run([&] { d.sys.reset(); });  // waits for every actor to finish
  for (auto it = d.jobs.rbegin(); it != d.jobs.rend(); ++it)
    (*it)->stop();    // the jobs' own threads (their actors are gone)
  d.writer->flush();  // the last checkpoints and dead letters
  {
    std::lock_guard<std::mutex> guard{d.query_mu};
    d.query_store.reset();
  }
  d.ctx.reset();
  d.reader.reset();
  d.writer.reset();
  d.dir_lock.reset();  // every file of the data directory is closed
  std::lock_guard<std::mutex> guard{d.mu};
  d.state = impl::phase::stopped;
  d.cv.notify_all();
  return d.outcome;
}

// --- the jobs' APIs ---------------------------------------------------------------------------

bool runtime::propagates_state() const { return jobs::propagation_job::configured(impl_->cfg); }

std::string runtime::rebuild(const std::string& kind, const std::string& id) {
  if (impl_->propagation == nullptr)
    throw std::logic_error(
        "rebuild: entity-state propagation is not running (configure `sources.amqp`, "
        "`targets` or `enrichment.lookups`, and start the runtime)");
  return impl_->propagation->rebuild(kind, id);
}

std::optional<rebuild_progress> runtime::rebuild_status(const std::string& id) const {
  return impl_->propagation ? impl_->propagation->rebuild_status(id) : std::nullopt;
}

std::optional<boost::json::value> runtime::entity_state(const std::string& kind,
                                                        const std::string& id) const {
  return impl_->propagation ? impl_->propagation->entity_state(kind, id) : std::nullopt;
}

boost::json::value runtime::propagation_status() const {
  return impl_->propagation ? impl_->propagation->status()
                            : boost::json::value(boost::json::object{});
}

bool runtime::runs_leads() const { return jobs::leads_job::configured(impl_->cfg); }

keyed_answer runtime::invoke(const keyed_request& request) {
  if (impl_->leads == nullptr)
    return keyed_answer{
        404, boost::json::object{{"error",
                                  "lead conversations and form leads are not configured on this "
                                  "server: set leads.proxy_numbers (and leads.dealers) or a "
                                  "form_leads URL, and start the runtime"}}};
  return impl_->leads->invoke(request);
}

keyed_answer runtime::conversations_webhook(
    const std::vector<std::pair<std::string, std::string>>& params, const std::string& signature) {
  if (impl_->leads == nullptr)
    return keyed_answer{
        404,
        boost::json::object{{"error", "lead conversations are not configured on this server"}}};
  return impl_->leads->conversations_webhook(params, signature);
}

boost::json::value runtime::leads_status() const {
  return impl_->leads ? impl_->leads->status() : boost::json::value(boost::json::object{});
}

std::string runtime::listen_address() const {
  std::lock_guard<std::mutex> guard{impl_->mu};
  return impl_->listen_address;
}

const config& runtime::configuration() const { return impl_->cfg; }

}  // namespace switchboard
