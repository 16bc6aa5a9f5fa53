#pragma once

// The latest state of every entity (`<data_dir>/state.db`) and, per target, which revision of
// it was written there. View data: the journal stays the source of truth, so this file can
// always be rebuilt by replaying the state subscription from zero.
//
// Thread-safe: one connection behind a mutex (entity pipelines, writers and rebuild share it).
// WAL with synchronous=NORMAL: a commit survives a process crash; after a power loss the
// newest commits may be lost, and the state subscription's checkpoint (fsync'd in the journal)
// can then be ahead of it -- `POST /v1/rebuild` or a replay from zero repairs that.

#include <boost/json/object.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace switchboard::adapters::sqlite {

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

/// A write a target gave up on (after its retry budget); a newer revision or a rebuild retries.
struct dead_write {
  std::string target;
  std::string kind;
  std::string id;
  std::uint64_t revision = 0;
  std::string error;
  std::string at;
};

struct target_counts {
  std::uint64_t pending = 0;  ///< entities whose newest revision is not yet written (nor dead)
  std::uint64_t written = 0;  ///< entities written at their newest revision
  std::uint64_t dead = 0;     ///< entities whose newest revision was given up on
};

class state_store {
public:
  /// Opens or creates the file; throws std::runtime_error naming the path and the cause.
  explicit state_store(const std::string& path);
  ~state_store();
  state_store(const state_store&) = delete;
  state_store& operator=(const state_store&) = delete;

  // --- entity state (the pipeline and rebuild) -----------------------------------------------
  // (declared by the state pipeline work; see the .cpp)

  std::optional<stored_state> load(const std::string& kind, const std::string& id) const;

  // --- the per-target ledger (writers) -----------------------------------------------------

  /// Entities of `entity_kind` whose revision is newer than what `target` has written and
  /// that are not dead at that revision; at most `limit`, ordered by (kind, id) after
  /// (`after_kind`, `after_id`) so that a caller can page through all of them.
  std::vector<stored_state> unwritten(const std::string& target, const std::string& entity_kind,
                                      std::size_t limit, const std::string& after_kind = {},
                                      const std::string& after_id = {}) const;

  /// Records that `target` holds `revision` of the entity (never lowers a recorded revision).
  void mark_written(const std::string& target, const std::string& kind, const std::string& id,
                    std::uint64_t revision);

  /// Records that `target` gave up on `revision` of the entity, with the last error.
  void mark_dead(const std::string& target, const std::string& kind, const std::string& id,
                 std::uint64_t revision, const std::string& error);

  /// Forgets what `target` wrote for the entities of `entity_kind` (all if empty; one entity
  /// if `id` is given) so that they count as unwritten again: rebuild's re-push.
  void forget_written(const std::string& target, const std::string& entity_kind = {},
                      const std::string& id = {});

  target_counts counts(const std::string& target, const std::string& entity_kind) const;
  std::vector<dead_write> dead_writes(const std::string& target, std::size_t limit) const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace switchboard::adapters::sqlite
