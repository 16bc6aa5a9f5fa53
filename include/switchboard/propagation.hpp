#pragma once

/// @file switchboard/propagation.hpp
/// Entity-state propagation's public types (since 0.3; its own header since 0.4).

#include <cstdint>
#include <string>

namespace switchboard {

/// A rebuild of entity state: every selected entity is re-enriched from SQL and pushed again
/// to every target.
///
/// Refresh jobs share it: after an event announces that a looked-up row changed, the state
/// pipeline queues "refresh-N", which re-enriches the stored entities that used that row and
/// stores only those whose state changed (`done`; the others count as `unchanged`).
struct rebuild_progress {
  std::string id;  ///< "rebuild-N", or "refresh-N" for a refresh
  /// "queued", "running", "done" (every selected entity was tried; see `failed`) or "failed"
  /// (the job could not go on: the store failed, or the runtime stopped).
  std::string state;
  std::string kind;             ///< the entity kind rebuilt; "" = all
  std::string entity_id;        ///< the one entity rebuilt; "" = all of `kind`
  std::uint64_t total = 0;      ///< entities selected (known once running; a refresh
                                ///< counts them as its pages find them)
  std::uint64_t done = 0;       ///< entities re-enriched and stored so far
  std::uint64_t failed = 0;     ///< entities whose lookups failed (their state is kept)
  std::uint64_t unchanged = 0;  ///< refresh: entities already current (no new revision)
  std::string cause;            ///< refresh: the lookup, its parameters and the event
  std::string error;            ///< why it failed, or the last entity error
  std::string started_at;       ///< RFC 3339; "" while queued
  std::string finished_at;      ///< RFC 3339; "" until done or failed
};

}  // namespace switchboard
