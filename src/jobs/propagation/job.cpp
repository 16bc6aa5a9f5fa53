#include "jobs/propagation/job.hpp"

#include "engine/supervision/supervisor.hpp"
#include "jobs/propagation/state_pipeline.hpp"
#include "jobs/propagation/sync_writer.hpp"

#include <spdlog/spdlog.h>
#include <boost/json/object.hpp>

#include <filesystem>
#include <mutex>
#include <stdexcept>

namespace switchboard::jobs {

namespace json = boost::json;

struct propagation_job::impl {
  propagation_adapters outside;
  config cfg;
  host* h = nullptr;
  std::shared_ptr<ports::state_database> store;
  std::unique_ptr<actors::state_pipeline> pipeline;
  std::vector<std::shared_ptr<actors::sync_writer>> writers;
  // `status()` runs on HTTP threads, which serve before start_sources() fills this: guarded.
  // Sources are only ever appended, and destroyed with `impl`, so raw pointers taken under the
  // lock stay valid.
  mutable std::mutex sources_mu;
  struct running_source {
    std::string name, queue;  // as configured, for status()
    std::unique_ptr<ports::event_source> source;
  };
  std::vector<running_source> sources;
  bool sources_closed = false;  // stop_sources() ran: a late start_sources() starts nothing
};

propagation_job::propagation_job(propagation_adapters outside) : impl_(std::make_unique<impl>()) {
  impl_->outside = std::move(outside);
}

void propagation_job::prepare(host& h) {
  auto& d = *impl_;
  d.h = &h;
  d.cfg = h.cfg;
  const auto& cfg = d.cfg;
  const auto path = (std::filesystem::path{cfg.data_dir} / "state.db").string();
  try {
    d.store = d.outside.open_state_store(path);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot open the entity state store: " + std::string{e.what()});
  }
  // Names the key on error.
  d.pipeline = std::make_unique<actors::state_pipeline>(cfg, d.store, d.outside.open_lookups);
  for (std::size_t i = 0; i < cfg.targets.size(); ++i) {
    try {
      d.writers.push_back(
          actors::sync_writer::create(cfg.targets[i], d.outside.make_twilio, d.store));
    } catch (const std::exception& e) {
      throw std::runtime_error("targets[" + std::to_string(i) + "] (" + cfg.targets[i].name +
                               "): " + e.what());
    }
  }
  // Writers rely on the store's ledger; the notification only saves them a scan.
  d.pipeline->on_change([writers = d.writers](const ports::stored_state& s) {
    for (const auto& w : writers)
      w->notify(s);
  });
  std::string targets;
  for (const auto& t : cfg.targets)
    targets += (targets.empty() ? "" : ", ") + t.name + " (" + t.entity_kind + ")";
  spdlog::info(
      "entity-state propagation: {} AMQP source(s), {} lookup(s), state of '{}' events in {} "
      "lane(s) in {}, targets: {}",
      cfg.amqp_sources.size(), cfg.enrichment.lookups.size(), cfg.state.pattern,
      cfg.state.partitions, path, targets.empty() ? "none" : targets);

  subscription_options opts;
  opts.pattern = cfg.state.pattern;
  opts.name = subscription_name;
  opts.partitions = cfg.state.partitions;
  // The pipeline decides staleness against the stored version itself (durably, across
  // restarts), so the bus's in-memory stale filter is not needed.
  opts.drop_stale_versions = false;
  auto* pipeline = d.pipeline.get();
  // Async: the bus's partitions hand each event to the pipeline's lanes instead of running its
  // SQLite work on their scheduler threads, and settle it when the lane answers.
  actors::async_event_handler handler;
  handler.start = [pipeline](event_ptr ev, actors::async_event_handler::done_fn done) {
    pipeline->handle_async(std::move(ev), std::move(done));
  };
  handler.wait = [pipeline](const event& ev) { pipeline->handle(ev); };
  handler.skip_reason = [pipeline](const event& ev) { return pipeline->skip_reason(ev); };
  h.subscribe(std::move(opts), handler);
}

propagation_job::~propagation_job() {
  try {
    stop_intake();
    stop();
  } catch (const std::exception& e) {
    spdlog::error("propagation: stop failed: {}", e.what());
  }
}

std::vector<child_spec> propagation_job::children(const supervision_config& supervision) {
  // One for one: one target's trouble never stops another.
  auto spec = actors::supervisor_spec_of("writers", supervision);
  for (const auto& w : impl_->writers)
    spec.children.push_back(w->child());
  return {actors::supervisor_child(std::move(spec))};
}

void propagation_job::start_intake() {
  auto& d = *impl_;
  const auto& password = d.h->env.amqp_password;
  auto publish = d.h->publish;
  std::lock_guard<std::mutex> guard{d.sources_mu};
  if (d.sources_closed)
    return;  // the runtime is stopping already (stop() raced start())
  for (const auto& source : d.cfg.amqp_sources) {
    auto s = d.outside.open_amqp_source(source, password.empty() ? "guest" : password, d.cfg.limits,
                                        publish, d.cfg.drain_timeout);
    s->start();  // returns at once: holding the lock here is short
    d.sources.push_back({source.name, source.queue, std::move(s)});
  }
}

void propagation_job::stop_intake() {
  std::vector<ports::event_source*> running;
  {
    std::lock_guard<std::mutex> guard{impl_->sources_mu};
    impl_->sources_closed = true;
    for (auto& s : impl_->sources)
      running.push_back(s.source.get());
  }
  // Not under the lock: a stop waits up to the drain timeout, and status() must not.
  for (auto* s : running)
    s->stop();
}

void propagation_job::stop() {
  auto& d = *impl_;
  if (d.pipeline)
    d.pipeline->stop();
  for (auto& w : d.writers)
    w->stop();
}

std::string propagation_job::rebuild(const std::string& kind, const std::string& id) {
  return impl_->pipeline->start_rebuild(kind, id);
}

std::optional<rebuild_progress> propagation_job::rebuild_status(const std::string& id) const {
  return impl_->pipeline->rebuild_status(id);
}

std::optional<json::value> propagation_job::entity_state(const std::string& kind,
                                                         const std::string& id) const {
  auto s = impl_->pipeline->state_of(kind, id);
  if (!s)
    return std::nullopt;
  return json::value(actors::to_json(*s));
}

json::value propagation_job::status() const {
  const auto& d = *impl_;
  json::array sources;
  {
    std::lock_guard<std::mutex> guard{d.sources_mu};
    for (const auto& s : d.sources) {
      const auto st = s.source->stats();
      sources.push_back(json::object{{"name", s.name},
                                     {"queue", s.queue},
                                     {"connected", st.connected},
                                     {"delivered", st.delivered},
                                     {"acked", st.acked},
                                     {"to_error_queue", st.to_error_queue},
                                     {"reconnects", st.reconnects},
                                     {"last_error", st.last_error}});
    }
  }
  json::array targets;
  for (const auto& w : d.writers) {
    const auto st = w->stats();
    const auto counts = d.store->counts(w->target().name, w->target().entity_kind);
    targets.push_back(json::object{{"name", st.target},
                                   {"entity_kind", w->target().entity_kind},
                                   {"pending", counts.pending},
                                   {"written", counts.written},
                                   {"dead", counts.dead},
                                   {"offers", st.offers},
                                   {"coalesced", st.coalesced},
                                   {"writes", st.writes_sent},
                                   {"ok", st.ok},
                                   {"retried", st.retried},
                                   {"rate_limited", st.rate_limited},
                                   {"conflicts", st.conflicts},
                                   {"in_flight", st.in_flight},
                                   {"restarts", st.restarts}});
  }
  const auto cache = d.pipeline->cache_stats();
  return json::object{{"sources", std::move(sources)},
                      {"targets", std::move(targets)},
                      {"cache", json::object{{"hits", cache.hits},
                                             {"misses", cache.misses},
                                             {"evictions", cache.evictions},
                                             {"invalidations", cache.invalidations}}},
                      {"entities", d.store->entity_count()}};
}

std::vector<ports::http_route> propagation_job::routes() { return propagation_routes(this); }

}  // namespace switchboard::jobs
