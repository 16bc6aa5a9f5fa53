#pragma once

// The latest state of every entity (`<data_dir>/state.db`) and, per target, which revision of
// it was written there. View data: the journal stays the source of truth, so this file can
// always be rebuilt by replaying the state subscription from zero.
//
// Thread-safe: one connection behind a mutex (entity pipelines, writers and rebuild share it).
// WAL with synchronous=NORMAL: a commit survives a process crash; after a power loss the
// newest commits may be lost, and the state subscription's checkpoint (fsync'd in the journal)
// can then be ahead of it -- `POST /v1/rebuild` or a replay from zero repairs that.

#include "ports/entity_states.hpp"

#include <boost/json/object.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace switchboard::adapters::sqlite {

// The port's vocabulary (ports/entity_states.hpp); the names stay usable here.
using ports::stored_state;
using ports::target_counts;

/// A write a target gave up on (after its retry budget); a newer revision or a rebuild retries.
struct dead_write {
  std::string target;
  std::string kind;
  std::string id;
  std::uint64_t revision = 0;
  std::string error;
  std::string at;
};

class state_store final : public ports::state_database {
public:
  /// Opens or creates the file; throws std::runtime_error naming the path and the cause.
  explicit state_store(const std::string& path);
  ~state_store() override;
  state_store(const state_store&) = delete;
  state_store& operator=(const state_store&) = delete;

  // --- entity state (the pipeline and rebuild) -----------------------------------------------

  /// The entity's stored state, if any.
  std::optional<stored_state> load(const std::string& kind, const std::string& id) const override;

  using put_outcome = ports::entity_states::put_outcome;
  using put_result = ports::entity_states::put_result;

  /// Stores `base` and `state` for the entity, as of an event with `version` (its
  /// entityversion, if any) and journal `sequence`, and bumps the revision (1 for a new
  /// entity). Enforced by the SQL statement itself, so no caller can bypass it:
  /// - an event with a version is stored only if the stored version is absent or lower;
  /// - an event without a version is stored only if `sequence` is above the stored sequence,
  ///   and keeps the stored version (so a redelivered older versioned event stays stale);
  /// - with `expected_revision`, only if the stored revision equals it (0 = not stored yet):
  ///   an optimistic check against a racing rebuild.
  /// The stored sequence never decreases. Throws store_error on SQLite failures.
  put_result put(const std::string& kind, const std::string& id,
                 std::optional<std::int64_t> version, std::uint64_t sequence,
                 const boost::json::object& base, const boost::json::object& state,
                 std::optional<std::uint64_t> expected_revision = std::nullopt) override;

  /// Compare-and-set for rebuild: replaces the entity's `state` (base, version and sequence
  /// stay) and bumps its revision, only if the stored revision is still `expected_revision`.
  /// Returns the stored row, or nothing if the revision moved on (or the entity is unknown),
  /// so a rebuild racing a live update never overwrites the newer state.
  std::optional<stored_state> replace_state(const std::string& kind, const std::string& id,
                                            std::uint64_t expected_revision,
                                            const boost::json::object& state) override;

  /// Up to `limit` entities (of `entity_kind`, all if empty), ordered by (kind, id) after
  /// (`after_kind`, `after_id`): pages through every entity, e.g. for a rebuild.
  std::vector<stored_state> entities(const std::string& entity_kind, std::size_t limit,
                                     const std::string& after_kind = {},
                                     const std::string& after_id = {}) const override;

  /// Up to `limit` entities of `entity_kind` whose `base` holds, at every dotted path of
  /// `paths` ("accountManager.id"), a scalar whose text equals the `texts` entry at the same
  /// index, ordered by id after `after_id`: pages through the entities that used one lookup
  /// row (the state pipeline's refresh after an invalidation). Text as core::scalar_text and
  /// the lookup cache's keys have it: "7" matches 7, 7.0 and "7"; "true" matches true; null,
  /// objects, arrays and fractional numbers match nothing. Paths and texts are bound, never
  /// spliced into SQL. A scan of the kind's rows (no index on base; one full scan per refresh
  /// is acceptable for now): 60-80 ms over 100,000 entities, all pages ([.state_bench] test).
  /// Throws std::invalid_argument for a path it cannot address (an empty member name or one
  /// holding '"') or if the sizes differ; store_error on SQLite failures.
  std::vector<stored_state> entities_with(const std::string& entity_kind,
                                          const std::vector<std::string>& paths,
                                          const std::vector<std::string>& texts, std::size_t limit,
                                          const std::string& after_id = {}) const override;

  /// The SQLite JSON path ('$."a"."b"') of a dotted path ("a.b"), every member name quoted so
  /// that none is read as path syntax; nothing if a member is empty or holds '"' (SQLite's
  /// quoted labels have no escape) or a control character.
  static std::optional<std::string> sqlite_json_path(const std::string& dotted);

  /// Whether `sqlite_json_path` can address `dotted`.
  bool searchable(const std::string& dotted) const override;

  /// How many entities (of `entity_kind`, all if empty) are stored.
  std::uint64_t entity_count(const std::string& entity_kind = {}) const override;

  // --- the per-target ledger (writers) -----------------------------------------------------
  // A target's first ledger call for a kind gives it a ledger row for every stored entity of
  // that kind (once, O(entities)); from then on rows follow every put/replace_state (triggers),
  // and the pending ones sit in a partial index: `unwritten` costs O(pending + page), measured
  // at about 5 us per call with 1 pending of 100,000 entities.

  /// Entities of `entity_kind` whose revision is newer than what `target` has written and
  /// that are not dead at that revision; at most `limit`, ordered by (kind, id) after
  /// (`after_kind`, `after_id`) so that a caller can page through all of them.
  std::vector<stored_state> unwritten(const std::string& target, const std::string& entity_kind,
                                      std::size_t limit, const std::string& after_kind = {},
                                      const std::string& after_id = {}) const override;

  /// Records that `target` holds `revision` of the entity (never lowers a recorded revision).
  void mark_written(const std::string& target, const std::string& kind, const std::string& id,
                    std::uint64_t revision) override;

  /// Records that `target` gave up on `revision` of the entity, with the last error.
  void mark_dead(const std::string& target, const std::string& kind, const std::string& id,
                 std::uint64_t revision, const std::string& error) override;

  /// Forgets what `target` wrote for the entities of `entity_kind` (all if empty; one entity
  /// if `id` is given) so that they count as unwritten again: rebuild's re-push.
  void forget_written(const std::string& target, const std::string& entity_kind = {},
                      const std::string& id = {});

  target_counts counts(const std::string& target, const std::string& entity_kind) const override;
  std::vector<dead_write> dead_writes(const std::string& target, std::size_t limit) const;

  /// Caps the file at `pages` pages (SQLite's `max_page_count`, for this connection; never
  /// below its current size) and returns the cap in force: tests make the disk "full" with it.
  std::int64_t set_max_page_count(std::int64_t pages);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace switchboard::adapters::sqlite
