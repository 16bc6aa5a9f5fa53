#include "actors/state_pipeline.hpp"

#include "adapters/sqlite/lookup_db.hpp"
#include "core/entity_state.hpp"
#include "core/exception_text.hpp"
#include "switchboard/runtime.hpp"  // terminal_error

#include <spdlog/spdlog.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace switchboard::actors {

using adapters::sqlite::state_store;
using adapters::sqlite::stored_state;
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
  std::shared_ptr<state_store> store;
  std::unique_ptr<adapters::sqlite::lookup_db> lookups;  // null when no lookups are configured

  mutable std::mutex cache_mu;  // never held during a query
  core::lookup_cache cache;

  std::mutex listeners_mu;
  std::vector<std::function<void(const stored_state&)>> listeners;

  // Rebuild jobs: a queue served by one thread, started with the first job.
  mutable std::mutex jobs_mu;
  std::condition_variable jobs_cv;
  std::deque<std::string> queue;
  std::map<std::string, rebuild_progress> jobs;  // by id; the oldest finished are dropped
  std::deque<std::string> job_order;
  std::uint64_t next_job = 1;
  bool stopping = false;
  std::atomic<bool> cancel{false};
  std::thread worker;

  impl(const config& cfg, std::shared_ptr<state_store> s)
      : enrichment(cfg.enrichment),
        store(std::move(s)),
        cache(cfg.enrichment.cache_ttl, cfg.enrichment.cache_max_entries) {
    if (!store)
      throw std::invalid_argument("state_pipeline: no state store given");
    if (!enrichment.lookups.empty())
      lookups = std::make_unique<adapters::sqlite::lookup_db>(enrichment, cfg.state.partitions + 1);
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

  void invalidate(const event& ev) {
    for (const auto& l : enrichment.lookups) {
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
      std::lock_guard<std::mutex> guard{cache_mu};
      cache.invalidate(l.name, *params);
    }
  }

  void handle(const event& ev) {
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
      auto state = enrich(ev.entity_kind, base, nullptr);
      auto r = store->put(ev.entity_kind, ev.entity_id, version, *ev.sequence, base, state,
                          stored ? stored->revision : 0);
      if (r.outcome == state_store::put_outcome::stored) {
        notify(*r.state);
        return;
      }
      if (r.outcome == state_store::put_outcome::stale)
        return;
      // conflict: a rebuild stored a new revision meanwhile; redo on top of it.
    }
    throw std::runtime_error("state pipeline: " + ev.entity_kind + "/" + ev.entity_id +
                             " kept changing under event " + ev.id + " (" +
                             std::to_string(max_cas_attempts) + " attempts); retrying later");
  }

  // --- rebuild ----------------------------------------------------------------------------

  template <class F>
  void update_job(const std::string& id, F&& f) {
    std::lock_guard<std::mutex> guard{jobs_mu};
    if (auto it = jobs.find(id); it != jobs.end())
      f(it->second);
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

  void run_job(const std::string& job_id) {
    rebuild_progress job;
    update_job(job_id, [&](rebuild_progress& p) {
      p.state = "running";
      p.started_at = rfc3339_now();
      job = p;
    });
    memo fresh;
    try {
      if (!job.entity_id.empty()) {
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

  void serve_jobs() {
    for (;;) {
      std::string id;
      {
        std::unique_lock<std::mutex> lock{jobs_mu};
        jobs_cv.wait(lock, [&] { return stopping || !queue.empty(); });
        if (stopping)
          return;
        id = queue.front();
        queue.pop_front();
      }
      run_job(id);
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
    rebuild_progress p;
    p.id = "rebuild-" + std::to_string(next_job++);
    p.state = "queued";
    p.kind = kind;
    p.entity_id = id;
    jobs.emplace(p.id, p);
    job_order.push_back(p.id);
    queue.push_back(p.id);
    // Forget the oldest finished jobs beyond the last `kept_jobs`.
    while (job_order.size() > kept_jobs) {
      auto& oldest = jobs.at(job_order.front());
      if (oldest.state != "done" && oldest.state != "failed")
        break;
      jobs.erase(job_order.front());
      job_order.pop_front();
    }
    if (!worker.joinable())
      worker = std::thread([this] { serve_jobs(); });
    jobs_cv.notify_all();
    return p.id;
  }

  void stop() {
    {
      std::lock_guard<std::mutex> guard{jobs_mu};
      stopping = true;
      cancel = true;
      for (const auto& id : queue) {
        auto& p = jobs.at(id);
        p.state = "failed";
        p.error = "cancelled: the state pipeline stopped before the job started";
        p.finished_at = rfc3339_now();
      }
      queue.clear();
    }
    jobs_cv.notify_all();
    if (worker.joinable())
      worker.join();
  }
};

state_pipeline::state_pipeline(const config& cfg, std::shared_ptr<state_store> store)
    : impl_(std::make_unique<impl>(cfg, std::move(store))) {}

state_pipeline::~state_pipeline() { stop(); }

void state_pipeline::on_change(std::function<void(const stored_state&)> listener) {
  std::lock_guard<std::mutex> guard{impl_->listeners_mu};
  impl_->listeners.push_back(std::move(listener));
}

void state_pipeline::handle(const event& ev) { impl_->handle(ev); }

std::string state_pipeline::start_rebuild(const std::string& kind, const std::string& id) {
  return impl_->start_rebuild(kind, id);
}

std::optional<rebuild_progress> state_pipeline::rebuild_status(const std::string& job_id) const {
  std::lock_guard<std::mutex> guard{impl_->jobs_mu};
  auto it = impl_->jobs.find(job_id);
  if (it == impl_->jobs.end())
    return std::nullopt;
  return it->second;
}

std::optional<stored_state> state_pipeline::state_of(const std::string& kind,
                                                     const std::string& id) const {
  return impl_->store->load(kind, id);
}

core::lookup_cache_stats state_pipeline::cache_stats() const {
  std::lock_guard<std::mutex> guard{impl_->cache_mu};
  return impl_->cache.stats();
}

void state_pipeline::stop() { impl_->stop(); }

}  // namespace switchboard::actors
