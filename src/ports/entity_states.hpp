#pragma once

// The entities' latest state and, per target, which revision of it was written there, as
// ports: `entity_states` (what the state pipeline and rebuilds read and store), `write_ledger`
// (what the sync writers record) and `state_database`, both on one store.
// adapters/sqlite/state_store implements it over `<data_dir>/state.db`.
//
// View data: the journal stays the source of truth, so the store can always be rebuilt by
// replaying the state subscription from zero. Implementations are thread-safe (entity lanes,
// writers and rebuilds share one store).

#include <boost/json/object.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace switchboard::ports {

/// One entity's stored state.
struct stored_state {
  std::string kind;
  std::string id;
  std::optional<std::int64_t> version;  ///< entityversion of the last applied event, if any
  std::uint64_t revision = 0;           ///< local; grows on every change (rebuilds too)
  std::uint64_t sequence = 0;           ///< journal sequence of the last applied event
  boost::json::object base;             ///< the entity's own fields, merged from its events
  boost::json::object state;            ///< base + lookups: what targets receive
  std::string updated_at;               ///< RFC 3339
};

/// One target's ledger for one entity kind, counted.
struct target_counts {
  std::uint64_t pending = 0;  ///< entities whose newest revision is not yet written (nor dead)
  std::uint64_t written = 0;  ///< entities written at their newest revision
  std::uint64_t dead = 0;     ///< entities whose newest revision was given up on
};

/// The entities' state: the state pipeline's live updates, rebuilds and refreshes.
class entity_states {
public:
  virtual ~entity_states() = default;

  /// The entity's stored state, if any.
  virtual std::optional<stored_state> load(const std::string& kind,
                                           const std::string& id) const = 0;

  /// What a `put` did.
  enum class put_outcome {
    stored,    ///< written; `state` holds the stored row with its new revision
    stale,     ///< not written: the stored state is as new or newer (see `put`)
    conflict,  ///< not written: the stored revision is not `expected_revision` (reload, redo)
  };
  struct put_result {
    put_outcome outcome = put_outcome::stored;
    std::optional<stored_state> state;  ///< the row as stored after the call (none if absent)
  };

  /// Stores `base` and `state` for the entity, as of an event with `version` (its
  /// entityversion, if any) and journal `sequence`, and bumps the revision (1 for a new
  /// entity). The store enforces, so that no caller can bypass it:
  /// - an event with a version is stored only if the stored version is absent or lower;
  /// - an event without a version is stored only if `sequence` is above the stored sequence,
  ///   and keeps the stored version (so a redelivered older versioned event stays stale);
  /// - with `expected_revision`, only if the stored revision equals it (0 = not stored yet):
  ///   an optimistic check against a racing rebuild.
  /// The stored sequence never decreases. Throws ports::store_error on storage failures.
  virtual put_result put(const std::string& kind, const std::string& id,
                         std::optional<std::int64_t> version, std::uint64_t sequence,
                         const boost::json::object& base, const boost::json::object& state,
                         std::optional<std::uint64_t> expected_revision = std::nullopt) = 0;

  /// Compare-and-set for rebuild: replaces the entity's `state` (base, version and sequence
  /// stay) and bumps its revision, only if the stored revision is still `expected_revision`.
  /// Returns the stored row, or nothing if the revision moved on (or the entity is unknown),
  /// so a rebuild racing a live update never overwrites the newer state.
  virtual std::optional<stored_state> replace_state(const std::string& kind, const std::string& id,
                                                    std::uint64_t expected_revision,
                                                    const boost::json::object& state) = 0;

  /// Up to `limit` entities (of `entity_kind`, all if empty), ordered by (kind, id) after
  /// (`after_kind`, `after_id`): pages through every entity, e.g. for a rebuild.
  virtual std::vector<stored_state> entities(const std::string& entity_kind, std::size_t limit,
                                             const std::string& after_kind = {},
                                             const std::string& after_id = {}) const = 0;

  /// Up to `limit` entities of `entity_kind` whose `base` holds, at every dotted path of
  /// `paths` ("accountManager.id"), a scalar whose text equals the `texts` entry at the same
  /// index, ordered by id after `after_id`: pages through the entities that used one lookup
  /// row (the refresh after an invalidation). Text as core::scalar_text and the lookup cache's
  /// keys have it: "7" matches 7, 7.0 and "7"; "true" matches true; null, objects, arrays and
  /// fractional numbers match nothing. Throws std::invalid_argument for a path that is not
  /// `searchable` or if the sizes differ.
  virtual std::vector<stored_state> entities_with(const std::string& entity_kind,
                                                  const std::vector<std::string>& paths,
                                                  const std::vector<std::string>& texts,
                                                  std::size_t limit,
                                                  const std::string& after_id = {}) const = 0;

  /// Whether `entities_with` can match on the dotted path `dotted` (e.g. not when a member
  /// name is empty or holds a character the store cannot address).
  virtual bool searchable(const std::string& dotted) const = 0;

  /// How many entities (of `entity_kind`, all if empty) are stored.
  virtual std::uint64_t entity_count(const std::string& entity_kind = {}) const = 0;
};

/// Per target, which revision of each entity it holds: the sync writers' at-least-once.
class write_ledger {
public:
  virtual ~write_ledger() = default;

  /// Entities of `entity_kind` whose revision is newer than what `target` has written and
  /// that are not dead at that revision; at most `limit`, ordered by (kind, id) after
  /// (`after_kind`, `after_id`) so that a caller can page through all of them.
  virtual std::vector<stored_state> unwritten(const std::string& target,
                                              const std::string& entity_kind, std::size_t limit,
                                              const std::string& after_kind = {},
                                              const std::string& after_id = {}) const = 0;

  /// Records that `target` holds `revision` of the entity (never lowers a recorded revision).
  virtual void mark_written(const std::string& target, const std::string& kind,
                            const std::string& id, std::uint64_t revision) = 0;

  /// Records that `target` gave up on `revision` of the entity, with the last error.
  virtual void mark_dead(const std::string& target, const std::string& kind, const std::string& id,
                         std::uint64_t revision, const std::string& error) = 0;

  virtual target_counts counts(const std::string& target, const std::string& entity_kind) const = 0;
};

/// The entities' state and the targets' ledger in one store (a writer loads the newest state
/// of what it writes).
class state_database : public entity_states, public write_ledger {};

}  // namespace switchboard::ports
