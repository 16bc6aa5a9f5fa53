#pragma once

// Entity-state propagation, the part between the bus and the writers: for each event of the
// durable "state" subscription, decide stale/apply against the stored state, merge the event's
// data into the entity's base, enrich it with SQL lookups (cache-aside), store it, and tell the
// writers. Also rebuilds (re-enrich every stored entity from SQL) on demand, and refreshes
// the stored entities that used a looked-up row when an event announces that row changed.
//
// Enrichment: for each lookup of the entity's kind, the parameters are read from the merged
// base at the lookup's dotted `params`; the first row (or null: no row, or a parameter missing,
// in which case no query runs) is put under the top-level member `into` of the state, which is
// base + those members. Lookups read the base only, never each other's results.
//
// A plain class, no actor. Its SQLite work stays off CAF scheduler threads: the bus hands
// events to `handle_async`, which handles them on the pipeline's entity lanes (one per state
// partition, several at once, one entity always on the same lane, in order); rebuilds and
// refreshes run on its jobs lane. `handle` does the same work on the calling thread.

#include "core/lookup_cache.hpp"
#include "engine/bus/async_handler.hpp"
#include "ports/enrichment.hpp"
#include "ports/entity_states.hpp"
#include "switchboard/config.hpp"
#include "switchboard/event.hpp"
#include "switchboard/propagation.hpp"
#include "switchboard/subscription.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace switchboard::actors {

/// Progress of one rebuild job (kept in memory; the last 100 jobs): the public struct.
using rebuild_progress = switchboard::rebuild_progress;

/// JSON for `GET /v1/state/{kind}/{id}`: kind, id, version (or null), revision, sequence,
/// base, state, updated_at.
boost::json::object to_json(const ports::stored_state& s);

class state_pipeline {
public:
  /// Uses cfg.enrichment (when it has lookups, opens and checks the lookup database with
  /// `open_lookups`: throws ports::lookup_config_error naming the key) and
  /// cfg.state.partitions (lookup connections = partitions + 1, one for the rebuild).
  state_pipeline(const config& cfg, std::shared_ptr<ports::entity_states> store,
                 const ports::open_lookup_database& open_lookups);
  ~state_pipeline();  ///< stop()
  state_pipeline(const state_pipeline&) = delete;
  state_pipeline& operator=(const state_pipeline&) = delete;

  /// Registers a listener called with every newly stored state (live and rebuilt), on the
  /// lane that stored it; it must not block (writers use it as a wake-up: the store's
  /// ledger, not this call, is what they must rely on). Exceptions from it are logged and
  /// dropped. Register before events flow.
  void on_change(std::function<void(const ports::stored_state&)> listener);

  /// The durable subscription's handler. If the event's type is a lookup's `invalidated_by`,
  /// drops the cached row named by its `invalidation_keys` and queues a refresh job
  /// ("refresh-N", see rebuild_status): every stored entity of the lookup's kind whose base
  /// binds the same parameters is re-enriched from SQL, and stored with a new revision (and
  /// listeners told) only if its state changed; a live update racing it wins. A refresh for a
  /// row whose refresh is still queued is not queued twice. Then, unless the event is stale or
  /// already applied, merges it, enriches, stores (a new revision) and notifies; if any
  /// invalidation happened meanwhile, enriches it once more and stores that if it differs.
  /// Throws on lookup or store failures (the bus retries, then dead-letters); throws
  /// terminal_error for an event without a journal sequence (the pipeline must be fed by a
  /// durable subscription). Refresh jobs are in memory: a crash before one ran loses it (a
  /// rebuild repairs the entities). Runs on the calling thread, which keeps each entity's
  /// events in order (several callers may run at once, for different entities).
  void handle(const event& ev);

  /// `handle` off the calling thread, for the bus (see async_event_handler): queues the event
  /// on its entity's lane (lanes as many as state partitions, by the bus's partition hash) and
  /// returns; `done` runs there with what `handle` would have thrown. Events given in order
  /// are handled in order.
  void handle_async(event_ptr ev, async_event_handler::done_fn done);

  /// Why `handle` would do nothing with `ev` now, or "" if it would apply it (or invalidate a
  /// lookup): "stale" or "already applied" against the entity's stored state, named with both
  /// versions (or journal sequences). For a dead letter's retry; reads the store on the
  /// calling thread.
  std::string skip_reason(const event& ev) const;

  /// Queues a rebuild of every entity (of `kind`; of one entity if `id` is given too) and
  /// returns its job id. Jobs run one at a time, in order, on the pipeline's jobs lane: each
  /// selected entity's stored base is enriched again from SQL (bypassing, then refreshing, the
  /// cache) and stored with a new revision even if unchanged, so every target writes it again.
  /// A live update racing a rebuild wins (compare-and-set on the revision; the rebuild retries
  /// that entity). Throws std::invalid_argument if `id` is given without `kind`, and
  /// std::runtime_error after stop().
  std::string start_rebuild(const std::string& kind = {}, const std::string& id = {});

  /// A job's progress (rebuild or refresh); nothing for an unknown (or long forgotten) job id.
  std::optional<rebuild_progress> rebuild_status(const std::string& job_id) const;

  /// The entity's stored state (`GET /v1/state/{kind}/{id}`).
  std::optional<ports::stored_state> state_of(const std::string& kind, const std::string& id) const;

  core::lookup_cache_stats cache_stats() const;

  /// Cancels the running rebuild (its job ends "failed": cancelled), fails queued ones, and
  /// joins the jobs lane. Idempotent. `handle` keeps working (the bus stops first).
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace switchboard::actors
