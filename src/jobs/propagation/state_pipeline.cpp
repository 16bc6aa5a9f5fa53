#include "jobs/propagation/state_pipeline.hpp"

#include "core/entity_state.hpp"
#include "core/exception_text.hpp"
#include "core/json_path.hpp"
#include "engine/bus/bus.hpp"  // partition_of
#include "engine/lane.hpp"
#include "switchboard/subscription.hpp"  // terminal_error

#include <spdlog/spdlog.h>
#include <boost/json/serialize.hpp>

#include <atomic>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

namespace switchboard::actors {

using ports::entity_states;
using ports::stored_state;
namespace json = boost::json;

namespace {

constexpr std::size_t rebuild_page = 200;
constexpr std::size_t max_cas_attempts = 100;  // a hot entity updated faster than we enrich
constexpr std::size_t kept_jobs = 100;

std::optional<std::int64_t> stored_version(std::optional<std::uint64_t> v) {
  if (!v)
    return std::nullopt;
  constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  return static_cast<std::int64_t>(*v > max ? max : *v);
}

}  // namespace

json::object to_json(const stored_state& s) {
  json::object o;
  o["kind"] = s.kind;
  o["id"] = s.id;
  if (s.version)
    o["version"] = *s.version;
  else
    o["version"] = nullptr;
  o["revision"] = s.revision;
  o["sequence"] = s.sequence;
  o["base"] = s.base;
  o["state"] = s.state;
  o["updated_at"] = s.updated_at;
  return o;
}

struct state_pipeline::impl {
  enrichment_config enrichment;
  std::shared_ptr<entity_states> store;
  std::unique_ptr<ports::lookup_database> lookups;  // null when no lookups are configured

  mutable std::mutex cache_mu;  // never held during a query
  core::lookup_cache cache;

  std::mutex listeners_mu;
  std::vector<std::function<void(const stored_state&)>> listeners;

  /// What a refresh job re-enriches: the entities whose base binds lookup `lookup` to the
  /// invalidated parameters (`texts` as the store compares them, `key` as the cache does).
  struct refresh_spec {
    std::size_t lookup = 0;
    std::vector<std::string> texts;
    std::string key;
  };
  struct queued_job {
    rebuild_progress progress;
    std::optional<refresh_spec> refresh;  // none: a rebuild
  };

  // Rebuild and refresh jobs: run one at a time, in order, on `jobs_lane` (started with the
  // first job); a job is queued until it starts.
  mutable std::mutex jobs_mu;
  std::map<std::string, queued_job> jobs;  // by id; the oldest finished are dropped
  std::deque<std::string> job_order;
  std::unordered_map<std::string, std::string> queued_refreshes;  // spec key -> queued job id
  std::uint64_t next_job = 1;
  std::uint64_t next_refresh = 1;
  std::vector<bool> refreshable;  // by lookup: its params can be found in stored bases
  bool stopping = false;
  std::atomic<bool> cancel{false};

  // Last, so joined before anything their tasks use goes. The entity lanes run `handle`: the
  // bus's partitions of the state subscription map onto them one to one (the same hash and
  // count), so an entity's events keep one lane, in order, off the CAF scheduler threads.
  std::unique_ptr<engine::lane> jobs_lane;  // guarded by jobs_mu until stop()
  std::vector<std::unique_ptr<engine::lane>> entity_lanes;

  impl(const config& cfg, std::shared_ptr<entity_states> s,
       const ports::open_lookup_database& open_lookups)
      : enrichment(cfg.enrichment),
        store(std::move(s)),
        cache(cfg.enrichment.cache_ttl, cfg.enrichment.cache_max_entries) {
    if (!store)
      throw std::invalid_argument("state_pipeline: no state store given");
    if (!enrichment.lookups.empty()) {
      if (!open_lookups)
        throw std::invalid_argument("state_pipeline: lookups configured but no database given");
      lookups = open_lookups(enrichment, cfg.state.partitions + 1);
    }
    for (const auto& l : enrichment.lookups) {
      bool ok = true;
      for (const auto& path : l.params)
        if (!store->searchable(path)) {
          ok = false;
          if (!l.invalidated_by.empty())
            spdlog::warn(
                "state pipeline: lookup '{}': param \"{}\" has a member name that stored "
                "entities cannot be searched by (empty, or holding '\"'); its invalidations "
                "drop the cached row but do not refresh stored entities (rename the member, or "
                "run POST /v1/rebuild after such a change)",
                l.name, path);
        }
      refreshable.push_back(ok);
    }
    const auto lanes = std::max<std::size_t>(cfg.state.partitions, 1);
    for (std::size_t i = 0; i < lanes; ++i)
      entity_lanes.push_back(
          std::make_unique<engine::lane>("state pipeline lane " + std::to_string(i)));
  }

  engine::lane& lane_of(const event& ev) {
    return *entity_lanes[partition_of(ev.entity_kind, ev.entity_id, entity_lanes.size())];
  }

  void notify(const stored_state& st) {
    std::vector<std::function<void(const stored_state&)>> snapshot;
    {
      std::lock_guard<std::mutex> guard{listeners_mu};
      snapshot = listeners;
    }
    for (auto& l : snapshot) {
      try {
        l(st);
      } catch (...) {
        spdlog::warn("state pipeline: a change listener failed for {}/{} revision {}: {}", st.kind,
                     st.id, st.revision, core::exception_text(std::current_exception()));
      }
    }
  }

  /// Per-rebuild-job memo of fresh reads: each distinct (lookup, params) is queried once per
  /// job, and again after any invalidation (the row may have changed since).
  struct memo {
    std::uint64_t generation = 0;
    std::unordered_map<std::string, json::value> values;
  };

  /// The value of lookup `i` for `params`: cache-aside for live events; for a rebuild (`fresh`)
  /// a new query whose result refreshes the cache.
  json::value look_up(std::size_t i, const std::vector<json::value>& params, memo* fresh) {
    const auto& name = enrichment.lookups[i].name;
    if (fresh != nullptr) {
      const auto key = core::lookup_cache::key(name, params);
      std::uint64_t generation = 0;
      {
        std::lock_guard<std::mutex> guard{cache_mu};
        generation = cache.generation();
        if (fresh->generation != generation) {
          fresh->values.clear();
          fresh->generation = generation;
        }
      }
      if (auto it = fresh->values.find(key); it != fresh->values.end())
        return it->second;
      auto value = lookups->query(i, params);
      {
        // Like a live miss: an invalidation during the query may mean the row changed.
        std::lock_guard<std::mutex> guard{cache_mu};
        cache.store(name, params, value, generation);
      }
      fresh->values.emplace(key, value);  // dropped at the next call if generation moved
      return value;
    }
    std::uint64_t ticket = 0;
    {
      std::lock_guard<std::mutex> guard{cache_mu};
      auto found = cache.find(name, params);
      if (found.value)
        return std::move(*found.value);
      ticket = found.ticket;
    }
    auto value = lookups->query(i, params);
    std::lock_guard<std::mutex> guard{cache_mu};
    cache.store(name, params, value, ticket);
    return value;
  }

  /// base + every lookup of `kind` under its `into` (a top-level member of the state).
  json::object enrich(const std::string& kind, const json::object& base, memo* fresh) {
    json::object state = base;
    for (std::size_t i = 0; i < enrichment.lookups.size(); ++i) {
      const auto& l = enrichment.lookups[i];
      if (l.entity_kind != kind)
        continue;
      auto params = core::lookup_params(base, l.params);
      state[l.into] = params ? look_up(i, *params, fresh) : json::value(nullptr);
    }
    return state;
  }

  /// Drops the cached rows that `ev` announces changed, then queues a refresh of the stored
  /// entities that used each of them.
  ///
  /// Why this closes the cross-partition race: an application event handled on another
  /// partition may have been enriched from the stale cached row just before the invalidation.
  /// If it is stored before the refresh reaches it, the refresh re-reads SQL (never the cache)
  /// and stores the corrected state; if it is stored after the refresh loaded it, the
  /// refresh's compare-and-set fails and it reloads and redoes it; if the refresh stored the
  /// entity first, the event's own compare-and-set fails and `handle` redoes it (the row is no
  /// longer cached); if it is stored after the refresh passed it with nothing to do (a new
  /// entity, one just switched to this row, or one unchanged then), `handle` sees that the
  /// cache generation moved during its work and re-enriches it itself. And no event is
  /// enriched from the stale row after the invalidation: the entry is dropped here, before the
  /// refresh is queued, and lookup_cache::store refuses a value whose ticket (the generation
  /// at the miss) predates an invalidation, so a query racing this one is not cached either.
  void invalidate(const event& ev) {
    for (std::size_t i = 0; i < enrichment.lookups.size(); ++i) {
      const auto& l = enrichment.lookups[i];
      if (l.invalidated_by.empty() || l.invalidated_by != ev.type)
        continue;
      auto params = core::lookup_params(ev.data, l.invalidation_keys);
      if (!params) {
        spdlog::warn(
            "state pipeline: event {} ({}) invalidates lookup '{}' but its data lacks "
            "one of the invalidation_keys; nothing was invalidated (check "
            "enrichment.lookups[].invalidation_keys)",
            ev.id, ev.type, l.name);
        continue;
      }
      {
        std::lock_guard<std::mutex> guard{cache_mu};
        cache.invalidate(l.name, *params);
      }
      if (refreshable[i])
        queue_refresh(i, *params, ev);
    }
  }

  /// The work of `handle` (on the caller's thread) and of `handle_async` (on a lane).
  void apply(const event& ev) {
    invalidate(ev);
    if (!ev.sequence)
      throw terminal_error("state pipeline: event " + ev.id +
                           " has no journal sequence; feed "
                           "the pipeline from a durable (named) subscription");
    const auto version = stored_version(ev.entity_version);
    for (std::size_t attempt = 0; attempt < max_cas_attempts; ++attempt) {
      auto stored = store->load(ev.entity_kind, ev.entity_id);
      std::optional<core::entity_position> position;
      if (stored)
        position = core::entity_position{stored->version, stored->sequence};
      const auto decision = core::decide(position, ev.entity_version, *ev.sequence);
      if (decision != core::entity_decision::apply) {
        spdlog::debug("state pipeline: event {} for {}/{} is {}", ev.id, ev.entity_kind,
                      ev.entity_id, core::to_string(decision));
        return;
      }
      auto base = core::merge_base(stored ? stored->base : json::object{}, ev.data);
      const auto generation = cache_generation();
      auto state = enrich(ev.entity_kind, base, nullptr);
      auto r = store->put(ev.entity_kind, ev.entity_id, version, *ev.sequence, base, state,
                          stored ? stored->revision : 0);
      if (r.outcome == entity_states::put_outcome::stored) {
        notify(*r.state);
        if (cache_generation() != generation)
          reenrich_after_invalidation(std::move(*r.state), ev);
        return;
      }
      if (r.outcome == entity_states::put_outcome::stale)
        return;
      // conflict: a rebuild stored a new revision meanwhile; redo on top of it.
    }
    throw std::runtime_error("state pipeline: " + ev.entity_kind + "/" + ev.entity_id +
                             " kept changing under event " + ev.id + " (" +
                             std::to_string(max_cas_attempts) + " attempts); retrying later");
  }

  std::uint64_t cache_generation() const {
    std::lock_guard<std::mutex> guard{cache_mu};
    return cache.generation();
  }

  /// An invalidation happened while `handle` enriched and stored `st`: a lookup may have come
  /// from a row dropped meanwhile, and a refresh queued by it may already have passed this
  /// entity. Re-enriching (the dropped rows now miss the cache) and storing only a changed
  /// state closes that window; a racing job's newer revision wins (it read SQL afterwards).
  void reenrich_after_invalidation(stored_state st, const event& ev) {
    try {
      auto state = enrich(st.kind, st.base, nullptr);
      if (state == st.state)
        return;
      if (auto stored = store->replace_state(st.kind, st.id, st.revision, state))
        notify(*stored);
    } catch (...) {
      // The event is stored; failing it now would only redeliver an applied event.
      spdlog::warn(
          "state pipeline: {}/{} (event {}) may hold a looked-up row invalidated while it "
          "was stored, and enriching it again failed: {}; POST /v1/rebuild with its kind and "
          "id repairs it",
          st.kind, st.id, ev.id, core::exception_text(std::current_exception()));
    }
  }

  // --- rebuild ----------------------------------------------------------------------------

  template <class F>
  void update_job(const std::string& id, F&& f) {
    std::lock_guard<std::mutex> guard{jobs_mu};
    if (auto it = jobs.find(id); it != jobs.end())
      f(it->second.progress);
  }

  /// Re-enriches one entity and stores it with a new revision; false if it kept racing.
  bool rebuild_one(stored_state st, memo& fresh) {
    for (std::size_t attempt = 0; attempt < max_cas_attempts; ++attempt) {
      auto state = enrich(st.kind, st.base, &fresh);
      if (auto stored = store->replace_state(st.kind, st.id, st.revision, state)) {
        notify(*stored);
        return true;
      }
      auto reloaded = store->load(st.kind, st.id);
      if (!reloaded)
        return false;
      st = std::move(*reloaded);
    }
    return false;
  }

  /// rebuild_one, counted in the job as done or failed (with the error); never throws for
  /// one entity's failure, so the job goes on with the others.
  void rebuild_counted(const std::string& job_id, stored_state st, memo& fresh) {
    const auto what = st.kind + "/" + st.id;
    std::string error;
    bool ok = false;
    try {
      ok = rebuild_one(std::move(st), fresh);
      if (!ok)
        error = what + ": kept racing live updates";
    } catch (...) {
      error = what + ": " + core::exception_text(std::current_exception());
      spdlog::warn("state pipeline: rebuild {}: {}", job_id, error);
    }
    update_job(job_id, [&](rebuild_progress& p) {
      (ok ? p.done : p.failed) += 1;
      if (!ok)
        p.error = error;
    });
  }

  /// The jobs lane's task for job `job_id`: runs it, unless stop() failed it while queued.
  void run_job(const std::string& job_id) {
    rebuild_progress job;
    std::optional<refresh_spec> refresh;
    {
      std::lock_guard<std::mutex> guard{jobs_mu};
      if (stopping)
        return;
      auto& j = jobs.at(job_id);  // queued jobs are never forgotten
      // From now on a new invalidation of the same row needs a job of its own: this one
      // may read SQL before that change.
      if (j.refresh)
        queued_refreshes.erase(j.refresh->key);
      j.progress.state = "running";
      j.progress.started_at = rfc3339_now();
      job = j.progress;
      refresh = j.refresh;
    }
    memo fresh;
    try {
      if (refresh) {
        run_refresh(job_id, *refresh, fresh);
      } else if (!job.entity_id.empty()) {
        auto st = store->load(job.kind, job.entity_id);
        update_job(job_id, [&](rebuild_progress& p) { p.total = st ? 1 : 0; });
        if (st)
          rebuild_counted(job_id, std::move(*st), fresh);
      } else {
        const auto total = store->entity_count(job.kind);
        update_job(job_id, [&](rebuild_progress& p) { p.total = total; });
        std::string after_kind, after_id;
        for (;;) {
          auto page = store->entities(job.kind, rebuild_page, after_kind, after_id);
          if (page.empty())
            break;
          after_kind = page.back().kind;
          after_id = page.back().id;
          for (auto& st : page) {
            if (cancel)
              throw std::runtime_error("cancelled: the state pipeline stopped");
            rebuild_counted(job_id, std::move(st), fresh);
          }
        }
      }
      update_job(job_id, [&](rebuild_progress& p) {
        p.state = "done";
        p.finished_at = rfc3339_now();
      });
    } catch (...) {
      const auto error = core::exception_text(std::current_exception());
      spdlog::error("state pipeline: rebuild {} failed: {}", job_id, error);
      update_job(job_id, [&](rebuild_progress& p) {
        p.state = "failed";
        p.error = error;
        p.finished_at = rfc3339_now();
      });
    }
  }

  std::string start_rebuild(const std::string& kind, const std::string& id) {
    if (!id.empty() && kind.empty())
      throw std::invalid_argument("rebuild: entity id '" + id +
                                  "' given without its kind; give "
                                  "both (e.g. kind 'application', id 'A-1001') or neither");
    std::lock_guard<std::mutex> guard{jobs_mu};
    if (stopping)
      throw std::runtime_error("rebuild: the state pipeline is stopping; try again after start");
    queued_job j;
    j.progress.id = "rebuild-" + std::to_string(next_job++);
    j.progress.kind = kind;
    j.progress.entity_id = id;
    return enqueue(std::move(j));
  }

  /// Queues `j` (callers hold jobs_mu) and returns its id.
  std::string enqueue(queued_job j) {
    j.progress.state = "queued";
    const auto id = j.progress.id;
    jobs.emplace(id, std::move(j));
    job_order.push_back(id);
    // Forget the oldest finished jobs beyond the last `kept_jobs`.
    while (job_order.size() > kept_jobs) {
      auto& oldest = jobs.at(job_order.front()).progress;
      if (oldest.state != "done" && oldest.state != "failed")
        break;
      jobs.erase(job_order.front());
      job_order.pop_front();
    }
    if (!jobs_lane)
      jobs_lane = std::make_unique<engine::lane>("state pipeline jobs");
    jobs_lane->post([this, id] { run_job(id); });  // accepted: only stop() stops it
    return id;
  }

  // --- refresh ----------------------------------------------------------------------------

  /// Queues a refresh of the entities whose base binds lookup `i` to `params`, unless one for
  /// the same row is still queued (it has not read SQL yet, so it sees this change too).
  void queue_refresh(std::size_t i, const std::vector<json::value>& params, const event& ev) {
    const auto& l = enrichment.lookups[i];
    refresh_spec spec;
    spec.lookup = i;
    std::string shown;
    for (const auto& p : params) {
      auto text = core::scalar_text(p);
      if (!text) {
        // The store compares texts, as the cache keys do; a value without one is no key.
        spdlog::warn(
            "state pipeline: event {} ({}) invalidates lookup '{}' with a parameter that is "
            "not a string, integer, boolean or whole number ({}); stored entities are not "
            "refreshed (check enrichment.lookups[].invalidation_keys)",
            ev.id, ev.type, l.name, json::serialize(p));
        return;
      }
      shown += (shown.empty() ? "" : ", ") + *text;
      spec.texts.push_back(std::move(*text));
    }
    spec.key = core::lookup_cache::key(l.name, params);
    std::lock_guard<std::mutex> guard{jobs_mu};
    if (stopping) {
      spdlog::warn(
          "state pipeline: stopping, so the entities that used lookup '{}' ({}) are not "
          "refreshed after event {}; POST /v1/rebuild with kind '{}' after the restart",
          l.name, shown, ev.id, l.entity_kind);
      return;
    }
    if (queued_refreshes.count(spec.key) != 0)
      return;
    queued_job j;
    j.progress.id = "refresh-" + std::to_string(next_refresh++);
    j.progress.kind = l.entity_kind;
    j.progress.cause = "lookup '" + l.name + "' (" + shown + ") invalidated by event " + ev.id +
                       " (" + ev.type + ")";
    const auto key = spec.key;
    j.refresh = std::move(spec);
    queued_refreshes.emplace(key, enqueue(std::move(j)));
  }

  enum class refreshed { stored, unchanged, raced };

  /// Re-enriches one entity from SQL and stores it only if its state changed, with the
  /// compare-and-set on its revision (a racing live update wins; then the newer row is
  /// checked again).
  refreshed refresh_one(stored_state st, const refresh_spec& spec, memo& fresh) {
    const auto& l = enrichment.lookups[spec.lookup];
    for (std::size_t attempt = 0; attempt < max_cas_attempts; ++attempt) {
      // The store matched it in SQL; a reloaded row may have moved to another row since.
      const auto params = core::lookup_params(st.base, l.params);
      if (!params || core::lookup_cache::key(l.name, *params) != spec.key)
        return refreshed::unchanged;
      auto state = enrich(st.kind, st.base, &fresh);
      if (state == st.state)
        return refreshed::unchanged;
      if (auto stored = store->replace_state(st.kind, st.id, st.revision, state)) {
        notify(*stored);
        return refreshed::stored;
      }
      auto reloaded = store->load(st.kind, st.id);
      if (!reloaded)
        return refreshed::unchanged;
      st = std::move(*reloaded);
    }
    return refreshed::raced;
  }

  void run_refresh(const std::string& job_id, const refresh_spec& spec, memo& fresh) {
    const auto& l = enrichment.lookups[spec.lookup];
    std::string after_id;
    for (;;) {
      auto page = store->entities_with(l.entity_kind, l.params, spec.texts, rebuild_page, after_id);
      if (page.empty())
        break;
      after_id = page.back().id;
      update_job(job_id, [&](rebuild_progress& p) { p.total += page.size(); });
      for (auto& st : page) {
        if (cancel)
          throw std::runtime_error("cancelled: the state pipeline stopped");
        const auto what = st.kind + "/" + st.id;
        std::optional<refreshed> outcome;
        std::string error;
        try {
          outcome = refresh_one(std::move(st), spec, fresh);
          if (*outcome == refreshed::raced)
            error = what + ": kept racing live updates";
        } catch (...) {
          error = what + ": " + core::exception_text(std::current_exception());
          spdlog::warn("state pipeline: {}: {}", job_id, error);
        }
        update_job(job_id, [&](rebuild_progress& p) {
          if (!error.empty()) {
            p.failed += 1;
            p.error = error;
          } else if (*outcome == refreshed::stored) {
            p.done += 1;
          } else {
            p.unchanged += 1;
          }
        });
      }
    }
  }

  /// Fails the queued jobs, cancels the running one and joins the jobs lane. The entity lanes
  /// go on (`handle` keeps working) until the pipeline is destroyed.
  void stop() {
    std::unique_ptr<engine::lane> lane;
    {
      std::lock_guard<std::mutex> guard{jobs_mu};
      stopping = true;
      cancel = true;
      for (const auto& id : job_order) {
        auto& p = jobs.at(id).progress;
        if (p.state != "queued")
          continue;
        p.state = "failed";
        p.error = "cancelled: the state pipeline stopped before the job started";
        p.finished_at = rfc3339_now();
      }
      queued_refreshes.clear();
      lane = std::move(jobs_lane);  // no new one: enqueue is refused from here on
    }
    if (lane)
      lane->stop();  // drops the queued tasks, waits for the running job
  }

  void handle_async(event_ptr ev, async_event_handler::done_fn done) {
    auto& lane = lane_of(*ev);
    const bool queued = lane.post([this, ev, done] {
      std::exception_ptr error;
      try {
        apply(*ev);
      } catch (...) {
        error = std::current_exception();
      }
      done(error);
    });
    if (!queued)  // only while the pipeline is destroyed: the bus retries
      done(std::make_exception_ptr(
          std::runtime_error("state pipeline: shutting down; " + ev->id + " is retried later")));
  }
};

state_pipeline::state_pipeline(const config& cfg, std::shared_ptr<entity_states> store,
                               const ports::open_lookup_database& open_lookups)
    : impl_(std::make_unique<impl>(cfg, std::move(store), open_lookups)) {}

state_pipeline::~state_pipeline() { stop(); }

void state_pipeline::on_change(std::function<void(const stored_state&)> listener) {
  std::lock_guard<std::mutex> guard{impl_->listeners_mu};
  impl_->listeners.push_back(std::move(listener));
}

void state_pipeline::handle(const event& ev) { impl_->apply(ev); }

void state_pipeline::handle_async(event_ptr ev, async_event_handler::done_fn done) {
  impl_->handle_async(std::move(ev), std::move(done));
}

std::string state_pipeline::start_rebuild(const std::string& kind, const std::string& id) {
  return impl_->start_rebuild(kind, id);
}

std::optional<rebuild_progress> state_pipeline::rebuild_status(const std::string& job_id) const {
  std::lock_guard<std::mutex> guard{impl_->jobs_mu};
  auto it = impl_->jobs.find(job_id);
  if (it == impl_->jobs.end())
    return std::nullopt;
  return it->second.progress;
}

std::optional<stored_state> state_pipeline::state_of(const std::string& kind,
                                                     const std::string& id) const {
  return impl_->store->load(kind, id);
}

std::string state_pipeline::skip_reason(const event& ev) const {
  if (!ev.sequence)
    return {};
  for (const auto& l : impl_->enrichment.lookups)
    if (!l.invalidated_by.empty() && l.invalidated_by == ev.type)
      return {};  // it drops a cached row and refreshes, whatever its entity holds
  const auto stored = impl_->store->load(ev.entity_kind, ev.entity_id);
  if (!stored)
    return {};
  const auto decision = core::decide(core::entity_position{stored->version, stored->sequence},
                                     ev.entity_version, *ev.sequence);
  if (decision == core::entity_decision::apply)
    return {};
  const auto seq = [](std::uint64_t s) { return "journal sequence " + std::to_string(s); };
  auto text = "event " + ev.id + " (" + seq(*ev.sequence) + ") for " + ev.entity_kind + "/" +
              ev.entity_id + " is " + core::to_string(decision) + ": ";
  if (ev.entity_version) {
    const auto stored_version = stored->version ? std::to_string(*stored->version) : "?";
    text += decision == core::entity_decision::stale
                ? "the stored state is at version " + stored_version + " (from " +
                      seq(stored->sequence) + "), newer than the event's version " +
                      std::to_string(*ev.entity_version)
                : "the stored state is at its version " + stored_version;
  } else {
    text += decision == core::entity_decision::stale
                ? "the stored state came from " + seq(stored->sequence) +
                      ", later than the event (which has no entityversion)"
                : "the stored state came from this event";
  }
  return text + ", so the state pipeline would skip it";
}

core::lookup_cache_stats state_pipeline::cache_stats() const {
  std::lock_guard<std::mutex> guard{impl_->cache_mu};
  return impl_->cache.stats();
}

void state_pipeline::stop() { impl_->stop(); }

}  // namespace switchboard::actors
