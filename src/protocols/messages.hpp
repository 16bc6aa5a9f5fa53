#pragma once

/// @file switchboard/messages.hpp
/// Every message type, atom and actor protocol of switchboard, in one place (since 0.1).
///
/// Each message is a plain struct or an atom-tagged tuple; the comment beside it says who
/// sends it, who handles it and what deduplicates it. Protocols are typed actor interfaces
/// at the end of this file. Messages stay inside one process: events cross process
/// boundaries only through the JSON codec (switchboard/event.hpp), never CAF serialization.

#include "switchboard/event.hpp"
#include "switchboard/journal.hpp"
#include "switchboard/supervision.hpp"

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/type_id.hpp>
#include <caf/typed_actor.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace switchboard {

// -- supervision -------------------------------------------------------------------------

/// How to (re)start one child of a supervisor. `start` spawns a fresh instance each time; the
/// supervisor links to it. Sent by whoever builds a tree to a supervisor (start_child); the
/// child's `id` is unique per supervisor.
struct child_spec {
  std::string id;
  restart_policy restart = restart_policy::permanent;
  std::function<caf::actor(caf::actor_system&)> start;
};

/// A supervisor's own settings. `observer` (optional) receives a `supervision_event` for
/// every lifecycle change, for logs, metrics and tests.
struct supervisor_spec {
  std::string name;
  restart_strategy strategy = restart_strategy::one_for_one;
  restart_intensity intensity;
  restart_backoff backoff;
  std::vector<child_spec> children;  ///< started in this order, stopped in reverse
  caf::actor observer;
};

/// What happened in a supervisor: sent by a supervisor to its observer; no reply.
struct supervision_event {
  enum class kind : std::uint8_t {
    started,            ///< a child (re)started; `generation` counts its starts from 1
    failed,             ///< a child ended unexpectedly; `reason` says how
    stopped,            ///< a child was stopped by its supervisor
    restart_scheduled,  ///< restarts will happen after `delay_ms`
    escalated,          ///< intensity exceeded: all children stopped, the supervisor exits
  };
  kind what = kind::started;
  std::string supervisor;
  std::string child;
  std::uint64_t generation = 0;
  std::int64_t delay_ms = 0;
  std::string reason;
};

std::string_view to_string(supervision_event::kind k) noexcept;

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, supervision_event& x) {
  return f(caf::meta::type_name("supervision_event"), x.what, x.supervisor, x.child, x.generation,
           x.delay_ms, x.reason);
}

// -- bus ---------------------------------------------------------------------------------

/// Journaled events in sequence order, shared between actors without copying.
using event_batch = std::shared_ptr<const std::vector<event_ptr>>;

/// Journal rows read from disk that cannot be decoded, in sequence order (beside the
/// event_batch of the same read; see switchboard/journal.hpp).
using unreadable_batch = std::shared_ptr<const std::vector<unreadable_event>>;

// -- sync writers (since 0.3) ------------------------------------------------------------

/// A new revision of one entity for a sync writer (src/actors/sync_writer.hpp) to write.
/// Sent by the writer's `notify()` (the entity pipeline) and by its backlog reader; handled by
/// the target's sync writer actor. Dedupe: (id, revision); older revisions are ignored.
struct write_offer {
  std::string id;  ///< the entity id; the target fixes the kind
  std::uint64_t revision = 0;
  std::string pace_group;  ///< the object Twilio rate-limits it against; "" = its own
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, write_offer& x) {
  return f(caf::meta::type_name("write_offer"), x.id, x.revision, x.pace_group);
}

/// How one write ended. Sent by a sync writer's I/O lane to the writer actor that started it
/// (a restarted actor never sees its predecessor's reports). Dedupe: (id, revision).
struct write_report {
  enum class kind : std::uint8_t {
    written,      ///< the target holds `revision` (recorded with mark_written)
    retry_after,  ///< not done; Twilio named a delay (429, 503)
    backoff,      ///< not done or not known (timeout, other 5xx, conflicts that kept coming)
    give_up,      ///< cannot work at this revision (bad data, no such worker, a template gap)
  };
  std::string id;
  std::uint64_t revision = 0;  ///< the revision written or tried (the newest stored then)
  kind what = kind::written;
  std::int64_t retry_after_ms = 0;
  std::string error;  ///< failures: what went wrong, for logs and dead writes
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, write_report& x) {
  return f(caf::meta::type_name("write_report"), x.id, x.revision, x.what, x.retry_after_ms,
           x.error);
}

}  // namespace switchboard

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(switchboard::child_spec)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(switchboard::supervisor_spec)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(switchboard::event_ptr)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(switchboard::event_batch)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(switchboard::unreadable_batch)

CAF_BEGIN_TYPE_ID_BLOCK(switchboard, caf::first_custom_type_id)

// supervisor <- anyone: start a child from a spec; replies the child's handle.
CAF_ADD_ATOM(switchboard, switchboard, start_child_atom, "sb_start")
// supervisor <- anyone: stop and forget the child with this id; replies true if it existed.
CAF_ADD_ATOM(switchboard, switchboard, stop_child_atom, "sb_stop")
// supervisor <- anyone: the ids of the running children, in start order.
CAF_ADD_ATOM(switchboard, switchboard, which_children_atom, "sb_which")
// supervisor <- itself (delayed): restart the pending children of restart round `epoch`.
CAF_ADD_ATOM(switchboard, switchboard, restart_atom, "sb_restart")
// consumer <- journal writer (after a commit) or itself: new events may be readable.
CAF_ADD_ATOM(switchboard, switchboard, wake_atom, "sb_wake")
// partition <- consumer: handle these events in order. Dedupe: the journal sequence.
CAF_ADD_ATOM(switchboard, switchboard, work_atom, "sb_work")
// consumer <- partition: these sequences are done (handled, dropped as stale, or parked).
CAF_ADD_ATOM(switchboard, switchboard, done_atom, "sb_done")
// partition <- itself (delayed): try the first event of the entity held under this token again.
CAF_ADD_ATOM(switchboard, switchboard, retry_atom, "sb_retry")
// partition <- itself: go on with the queue (yields the thread between rounds).
CAF_ADD_ATOM(switchboard, switchboard, resume_atom, "sb_resume")
// partition <- an async handler's lane: how the event it was given ended (token, error text
// or "" if handled, the failure's kind as bus.cpp classifies it). Dedupe: the token (one per
// start of an event).
CAF_ADD_ATOM(switchboard, switchboard, handled_atom, "sb_handled")
// consumer <- runtime: handle one event again outside the cursor (a dead letter retried).
CAF_ADD_ATOM(switchboard, switchboard, redeliver_atom, "sb_redeliv")
// consumer <- journal reader thread: events read from disk (catch-up) and the rows among
// them that cannot be decoded, or why the read failed.
CAF_ADD_ATOM(switchboard, switchboard, fetched_atom, "sb_fetched")
// consumer <- journal reader thread: its saved checkpoint, or why it could not be read.
CAF_ADD_ATOM(switchboard, switchboard, checkpoint_atom, "sb_ckpt")
// sync writer <- its target's notify() (entity pipeline): a new revision to write.
CAF_ADD_ATOM(switchboard, switchboard, write_offer_atom, "sb_woffer")
// sync writer <- its I/O lane: one page of unwritten entities (backlog after a (re)start),
// whether more follow, and the cursor (last id); empty with more = the read failed.
CAF_ADD_ATOM(switchboard, switchboard, backlog_atom, "sb_backlog")
// sync writer <- its I/O lane: how one write ended.
CAF_ADD_ATOM(switchboard, switchboard, write_done_atom, "sb_wdone")
// sync writer <- itself (delayed): paced or retried writes may be due.
CAF_ADD_ATOM(switchboard, switchboard, pace_atom, "sb_pace")
// sync writer <- its target's rescan() (after forget_written): read the backlog again.
CAF_ADD_ATOM(switchboard, switchboard, rescan_atom, "sb_rescan")

// keyed router <- leads' HTTP side, timers, start-up scan: run invocation N of this key.
// Dedupe: the invocation number (a runner skips an invocation that is no longer running).
CAF_ADD_ATOM(switchboard, switchboard, dispatch_atom, "sb_dispat")
// keyed entity <- its router: queue invocation N (one at a time per key).
CAF_ADD_ATOM(switchboard, switchboard, invoke_atom, "sb_invoke")
// keyed entity <- a runner thread: invocation N ran; retry after D ms, or D < 0: it ended.
CAF_ADD_ATOM(switchboard, switchboard, ran_atom, "sb_ran")
// keyed router <- one of its entities: it finished an invocation (for passivation).
CAF_ADD_ATOM(switchboard, switchboard, idle_atom, "sb_idle")
// keyed router <- itself (delayed): passivate entities idle for long enough.
CAF_ADD_ATOM(switchboard, switchboard, passivate_atom, "sb_passiv")

CAF_ADD_TYPE_ID(switchboard, (switchboard::child_spec))
CAF_ADD_TYPE_ID(switchboard, (switchboard::supervisor_spec))
CAF_ADD_TYPE_ID(switchboard, (switchboard::supervision_event))
CAF_ADD_TYPE_ID(switchboard, (switchboard::event_ptr))
CAF_ADD_TYPE_ID(switchboard, (switchboard::event_batch))
CAF_ADD_TYPE_ID(switchboard, (switchboard::unreadable_batch))
CAF_ADD_TYPE_ID(switchboard, (switchboard::write_offer))
CAF_ADD_TYPE_ID(switchboard, (switchboard::write_report))
CAF_ADD_TYPE_ID(switchboard, (std::vector<switchboard::write_offer>))

CAF_END_TYPE_ID_BLOCK(switchboard)

namespace switchboard {

// -- protocols ---------------------------------------------------------------------------

/// A supervisor (src/actors/supervisor.hpp). It also traps exits: an exit message from its
/// parent stops its children in reverse order, then the supervisor itself.
using supervisor_actor =
    caf::typed_actor<caf::replies_to<start_child_atom, child_spec>::with<caf::actor>,
                     caf::replies_to<stop_child_atom, std::string>::with<bool>,
                     caf::replies_to<which_children_atom>::with<std::vector<std::string>>,
                     caf::reacts_to<restart_atom, std::uint64_t>>;

/// A consumer: reads the journal from its cursor, filters by pattern, hands events to its
/// partitions within its credit, and saves its checkpoint as they finish.
using consumer_actor =
    caf::typed_actor<caf::reacts_to<wake_atom>,
                     caf::reacts_to<fetched_atom, event_batch, unreadable_batch, std::string>,
                     caf::reacts_to<checkpoint_atom, std::uint64_t, std::string>,
                     caf::reacts_to<done_atom, std::vector<std::uint64_t>>,
                     caf::reacts_to<redeliver_atom, event_ptr>>;

/// One partition of a consumer: runs the handler for its events one at a time, in order per
/// entity, with retries (an entity waiting for one holds back only its own later events);
/// parks what cannot be handled. An async handler (engine/bus/async_handler.hpp)
/// answers with `handled`.
using partition_actor =
    caf::typed_actor<caf::reacts_to<work_atom, event_batch>,
                     caf::reacts_to<retry_atom, std::uint64_t>, caf::reacts_to<resume_atom>,
                     caf::reacts_to<handled_atom, std::uint64_t, std::string, std::uint8_t>>;

/// A sync writer (src/actors/sync_writer.hpp): the latest-state writes of one target. Offers
/// come from its target's notify() and backlog pages; reports from its I/O lanes; pace from
/// its own timer; rescan from its target's rescan().
using sync_writer_actor =
    caf::typed_actor<caf::reacts_to<write_offer_atom, write_offer>,
                     caf::reacts_to<backlog_atom, std::vector<write_offer>, bool, std::string>,
                     caf::reacts_to<write_done_atom, write_report>, caf::reacts_to<pace_atom>,
                     caf::reacts_to<rescan_atom>>;

/// The router of one keyed service (src/actors/invocations.hpp): finds or spawns the entity
/// actor of a key, hands it invocations, passivates idle ones.
using keyed_router_actor =
    caf::typed_actor<caf::reacts_to<dispatch_atom, std::string, std::uint64_t>,
                     caf::reacts_to<idle_atom, std::string>, caf::reacts_to<passivate_atom>>;

/// The actor of one key: runs its invocations one at a time on its service's runner threads
/// (its state lives in SQLite), waiting out retries in between; `passivate` from its router
/// (only when nothing is queued) makes it quit.
using keyed_entity_actor =
    caf::typed_actor<caf::reacts_to<invoke_atom, std::uint64_t>,
                     caf::reacts_to<ran_atom, std::uint64_t, std::int64_t>,
                     caf::reacts_to<retry_atom, std::uint64_t>, caf::reacts_to<passivate_atom>>;

}  // namespace switchboard
