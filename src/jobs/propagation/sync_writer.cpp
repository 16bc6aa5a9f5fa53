#include "jobs/propagation/sync_writer.hpp"

#include "core/exception_text.hpp"
#include "core/target_mapping.hpp"
#include "core/write_schedule.hpp"
#include "engine/actor_support.hpp"
#include "engine/lane.hpp"
#include "jobs/propagation/state_write.hpp"

#include <spdlog/spdlog.h>
#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <algorithm>
#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <utility>
#include <vector>

namespace switchboard::actors {

using ports::stored_state;
using namespace std::chrono_literals;

namespace {

/// One I/O lane of a writer: a thread with its own Twilio client and a FIFO of jobs. A job
/// never runs on a CAF scheduler thread: the client blocks.
struct io_lane {
  io_lane(std::unique_ptr<ports::twilio::twilio_api> twilio, const std::string& target)
      : client(std::move(twilio)), thread("sync writer '" + target + "' I/O") {}

  template <class F>
  void post(F&& job) {
    thread.post([this, job = std::forward<F>(job)]() mutable { job(*this); });
  }

  std::unique_ptr<ports::twilio::twilio_api> client;
  seen_revisions seen;  // only touched by this lane's thread
  // Last: stopped (queued jobs dropped, the one under way finished) and joined before the
  // client it uses goes.
  engine::lane thread;
};

}  // namespace

struct sync_writer::impl {
  target_config target;
  std::shared_ptr<ports::state_database> store;
  sync_writer_options options;
  std::vector<std::unique_ptr<io_lane>> lanes;

  std::atomic<std::uint64_t> offers{0}, coalesced{0}, writes_sent{0}, ok{0}, retried{0},
      rate_limited{0}, conflicts{0}, dead{0}, pending{0}, in_flight{0}, starts{0};

  mutable std::mutex actor_mutex;
  caf::actor_addr current;  // the writer actor receiving notify()'s offers; weak: no cycle

  ~impl() { stop(); }

  void stop() {
    // Every lane first, then the joins: otherwise the later lanes go on with their queues (each
    // job up to the client's timeouts) while the first is joined, and stop takes lanes x that.
    for (auto& lane : lanes)
      lane->thread.request_stop();
    for (auto& lane : lanes)
      lane->thread.stop();
  }

  void attach(caf::actor_addr writer) {
    std::lock_guard lock{actor_mutex};
    current = std::move(writer);
  }

  io_lane& lane_for(const std::string& id) {
    return *lanes[std::hash<std::string>{}(id) % lanes.size()];
  }

  write_offer offer_of(const stored_state& s) const {
    auto object = core::target_object_of(target, s.kind, s.id, s.state);
    return write_offer{s.id, s.revision, object ? object->pace_group() : std::string{}};
  }

  void post_write(const std::string& id, std::uint64_t revision, caf::actor reply_to) {
    lane_for(id).post([this, id, revision, reply_to = std::move(reply_to)](io_lane& lane) {
      caf::anon_send(reply_to, write_done_atom_v, run_write(lane, id, revision));
    });
  }

  void post_dead(const std::string& id, std::uint64_t revision, std::string error) {
    lane_for(id).post([this, id, revision, error = std::move(error)](io_lane&) {
      try {
        store->mark_dead(target.name, target.entity_kind, id, revision, error);
      } catch (...) {
        spdlog::error("sync writer '{}': recording the dead write of {} '{}' failed: {}",
                      target.name, target.entity_kind, id,
                      core::exception_text(std::current_exception()));
      }
    });
  }

  void post_backlog(std::string after_id, caf::actor reply_to) {
    // Spread over the lanes by cursor, so one busy lane does not hold every page.
    lane_for(after_id).post(
        [this, after_id = std::move(after_id), reply_to = std::move(reply_to)](io_lane&) {
          std::vector<write_offer> page;
          bool more = true;
          std::string cursor = after_id;
          try {
            const auto states =
                store->unwritten(target.name, target.entity_kind, options.backlog_page,
                                 after_id.empty() ? std::string{} : target.entity_kind, after_id);
            page.reserve(states.size());
            for (const auto& s : states)
              page.push_back(offer_of(s));
            more = states.size() >= options.backlog_page;
            if (!states.empty())
              cursor = states.back().id;
          } catch (...) {
            // An empty page with more to come: the actor asks again a little later.
            spdlog::error("sync writer '{}': reading unwritten {} states failed: {}", target.name,
                          target.entity_kind, core::exception_text(std::current_exception()));
            page.clear();
          }
          caf::anon_send(reply_to, backlog_atom_v, std::move(page), more, std::move(cursor));
        });
  }

  /// One write on a lane: the newest stored state of the entity, set on its object.
  write_report run_write(io_lane& lane, const std::string& id, std::uint64_t offered) {
    write_report report;
    report.id = id;
    report.revision = offered;
    std::optional<stored_state> state;
    try {
      state = store->load(target.entity_kind, id);
    } catch (...) {
      report.what = write_report::kind::backoff;
      report.error = "reading the state of " + target.entity_kind + " '" + id +
                     "' failed: " + core::exception_text(std::current_exception());
      return report;
    }
    if (!state) {
      report.what = write_report::kind::give_up;
      report.error = "no stored state for " + target.entity_kind + " '" + id + "'";
      return report;
    }
    report.revision = state->revision;
    auto mapped = core::map_target(target, state->kind, state->id, state->state);
    if (!mapped) {
      report.what = write_report::kind::give_up;
      report.error = std::move(mapped.error);
      return report;
    }
    auto result = write_state(*lane.client, mapped.write->object, mapped.write->payload, lane.seen);
    writes_sent += result.writes;
    rate_limited += result.rate_limited;
    conflicts += result.conflicts;
    switch (result.result.what) {
      case core::write_result::kind::ok:
        // Counted before it is recorded: whoever sees the ledger say "written" sees it counted.
        ++ok;
        try {
          store->mark_written(target.name, state->kind, state->id, state->revision);
        } catch (...) {
          // Written, but not recorded: write it again later (harmless, it sets the state).
          report.what = write_report::kind::backoff;
          report.error = "recording the write of " + target.entity_kind + " '" + id +
                         "' failed: " + core::exception_text(std::current_exception());
          return report;
        }
        report.what = write_report::kind::written;
        break;
      case core::write_result::kind::retry_after:
        report.what = write_report::kind::retry_after;
        report.retry_after_ms = result.result.delay.count();
        break;
      case core::write_result::kind::backoff: report.what = write_report::kind::backoff; break;
      case core::write_result::kind::give_up: report.what = write_report::kind::give_up; break;
    }
    report.error = std::move(result.error);
    return report;
  }
};

namespace {

using clock_point = caf::actor_clock::time_point;

struct writer_state {
  static inline const char* name = "switchboard.sync_writer";
  std::shared_ptr<sync_writer::impl> writer;
  std::unique_ptr<core::write_schedule> schedule;
  core::write_schedule_counts published;  // the schedule's counts already added to the stats
  std::optional<clock_point> timer_at;    // the earliest pace message on its way
  // The backlog: unwritten entities, read a page at a time as the schedule drains.
  std::string backlog_after;
  bool backlog_more = true;
  bool backlog_reading = false;
  bool rescan_after_read = false;  // a rescan came while a page was being read
  std::optional<clock_point> backlog_retry_at;
};

using writer_ptr = sync_writer_actor::stateful_pointer<writer_state>;

core::write_result result_of(const write_report& r) {
  switch (r.what) {
    case write_report::kind::written: return core::write_result::ok();
    case write_report::kind::retry_after:
      return core::write_result::retry_in(std::chrono::milliseconds{r.retry_after_ms});
    case write_report::kind::backoff: return core::write_result::backoff();
    case write_report::kind::give_up: return core::write_result::give_up();
  }
  return core::write_result::give_up();
}

void publish(writer_ptr self) {
  auto& st = self->state;
  auto& w = *st.writer;
  const auto& now = st.schedule->counts();
  w.offers += now.offers - st.published.offers;
  w.coalesced += now.coalesced - st.published.coalesced;
  w.retried += now.retried - st.published.retried;
  w.dead += now.dead - st.published.dead;
  st.published = now;
  w.pending = st.schedule->pending();
  w.in_flight = st.schedule->in_flight();
}

/// Starts every write that may start, reads the next backlog page when the schedule runs low,
/// and sets a timer for the next moment something becomes due.
void pump(writer_ptr self) {
  auto& st = self->state;
  const auto now = self->clock().now();
  const auto me = caf::actor_cast<caf::actor>(self);
  while (auto ticket = st.schedule->next_ready(now))
    st.writer->post_write(ticket->key, ticket->revision, me);

  const auto page = st.writer->options.backlog_page;
  const bool running_low = st.schedule->pending() < std::max<std::size_t>(page / 2, 1);
  if (st.backlog_more && !st.backlog_reading && running_low &&
      (!st.backlog_retry_at || *st.backlog_retry_at <= now)) {
    st.backlog_reading = true;
    st.backlog_retry_at.reset();
    st.writer->post_backlog(st.backlog_after, me);
  }

  auto wake = st.schedule->next_wakeup();
  if (st.backlog_retry_at && (!wake || *st.backlog_retry_at < *wake))
    wake = st.backlog_retry_at;
  if (wake && (!st.timer_at || *wake < *st.timer_at)) {
    st.timer_at = *wake;
    using duration = caf::actor_clock::duration_type;
    const auto delay = std::max<duration>(*wake - now, duration{});
    self->delayed_send(self, delay, pace_atom_v);
  }
  publish(self);
}

sync_writer_actor::behavior_type writer_impl(writer_ptr self,
                                             std::shared_ptr<sync_writer::impl> writer) {
  auto& st = self->state;
  st.writer = std::move(writer);
  auto& w = *st.writer;
  install_exception_logger(self, "sync writer '" + w.target.name + "'");
  core::write_limits limits;
  limits.concurrency = w.target.concurrency;
  limits.min_interval = w.target.min_interval;
  limits.max_attempts = w.target.max_attempts;
  limits.backoff_initial = w.target.backoff_initial;
  limits.backoff_max = w.target.backoff_max;
  const auto seed =
      w.options.seed != 0
          ? w.options.seed + w.starts.load()
          : static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  st.schedule = std::make_unique<core::write_schedule>(limits, seed);
  if (w.starts++ > 0)
    spdlog::info("sync writer '{}' restarted: reading its backlog of unwritten {} states",
                 w.target.name, w.target.entity_kind);
  // Attach before reading the backlog: a state stored after the read starts reaches this actor
  // through notify(), one stored before is in the backlog.
  w.attach(self->address());
  pump(self);

  return {
      [self](write_offer_atom, const write_offer& offer) {
        self->state.schedule->offer(offer.id, offer.revision, self->clock().now(),
                                    offer.pace_group);
        pump(self);
      },
      [self](backlog_atom, const std::vector<write_offer>& page, bool more,
             const std::string& cursor) {
        auto& s = self->state;
        const auto now = self->clock().now();
        for (const auto& offer : page)
          s.schedule->offer(offer.id, offer.revision, now, offer.pace_group);
        s.backlog_reading = false;
        s.backlog_more = more;
        s.backlog_after = cursor;
        if (page.empty() && more)
          s.backlog_retry_at = now + 1s;  // the read failed (logged by the lane): again soon
        if (s.rescan_after_read) {
          s.rescan_after_read = false;
          s.backlog_after.clear();
          s.backlog_more = true;
        }
        pump(self);
      },
      [self](rescan_atom) {
        auto& s = self->state;
        s.schedule->forget_written();
        if (s.backlog_reading) {
          s.rescan_after_read = true;
        } else {
          s.backlog_after.clear();
          s.backlog_more = true;
          s.backlog_retry_at.reset();
        }
        pump(self);
      },
      [self](write_done_atom, const write_report& report) {
        auto& s = self->state;
        const auto done = s.schedule->complete(report.id, report.revision, result_of(report),
                                               self->clock().now());
        if (done.what == core::write_completion::kind::dead) {
          spdlog::warn(
              "sync writer '{}': gave up writing {} '{}' at revision {} after {} "
              "attempt(s): {}",
              s.writer->target.name, s.writer->target.entity_kind, report.id, done.revision,
              done.attempts, report.error);
          // Count it before the lane records it: whoever sees the dead write in the store (the
          // ledger's counts) then also sees it in stats().dead.
          publish(self);
          s.writer->post_dead(report.id, done.revision, report.error);
        } else if (report.what != write_report::kind::written) {
          spdlog::debug("sync writer '{}': {} '{}' will be retried: {}", s.writer->target.name,
                        s.writer->target.entity_kind, report.id, report.error);
        }
        pump(self);
      },
      [self](pace_atom) {
        // Forget the timer even if this was an older, superseded one: at worst one more wakeup,
        // never a missed one.
        self->state.timer_at.reset();
        pump(self);
      },
  };
}

}  // namespace

std::shared_ptr<sync_writer> sync_writer::create(target_config target,
                                                 const twilio_factory& make_twilio,
                                                 std::shared_ptr<ports::state_database> store,
                                                 sync_writer_options options) {
  if (auto p = core::target_problem(target))
    throw std::invalid_argument("target '" + target.name + "': " + p->key + " " + p->problem +
                                "; allowed: " + p->allowed);
  if (!store)
    throw std::invalid_argument("target '" + target.name + "': no state store given");
  if (!make_twilio)
    throw std::invalid_argument("target '" + target.name + "': no Twilio client given");
  auto p = std::make_shared<impl>();
  p->target = std::move(target);
  p->store = std::move(store);
  p->options = options;
  p->options.backlog_page = std::max<std::size_t>(p->options.backlog_page, 1);
  const auto lanes = options.io_threads != 0 ? options.io_threads : p->target.concurrency;
  for (std::size_t i = 0; i < std::max<std::size_t>(lanes, 1); ++i)
    p->lanes.push_back(std::make_unique<io_lane>(make_twilio(), p->target.name));
  return std::shared_ptr<sync_writer>(new sync_writer(std::move(p)));
}

sync_writer::sync_writer(std::shared_ptr<impl> p) : impl_(std::move(p)) {}

sync_writer::~sync_writer() { impl_->stop(); }

child_spec sync_writer::child() const {
  return child_spec{"sync-writer:" + impl_->target.name, restart_policy::permanent,
                    [w = impl_](caf::actor_system& sys) {
                      return caf::actor_cast<caf::actor>(sys.spawn(writer_impl, w));
                    }};
}

void sync_writer::notify(const stored_state& state) const {
  if (state.kind != impl_->target.entity_kind)
    return;
  auto offer = impl_->offer_of(state);
  caf::actor to;
  {
    std::lock_guard lock{impl_->actor_mutex};
    to = caf::actor_cast<caf::actor>(impl_->current);
  }
  if (to)
    caf::anon_send(to, write_offer_atom_v, std::move(offer));
}

void sync_writer::rescan() const {
  caf::actor to;
  {
    std::lock_guard lock{impl_->actor_mutex};
    to = caf::actor_cast<caf::actor>(impl_->current);
  }
  if (to)
    caf::anon_send(to, rescan_atom_v);
}

sync_writer_stats sync_writer::stats() const {
  const auto& w = *impl_;
  sync_writer_stats s;
  s.target = w.target.name;
  s.offers = w.offers;
  s.coalesced = w.coalesced;
  s.writes_sent = w.writes_sent;
  s.ok = w.ok;
  s.retried = w.retried;
  s.rate_limited = w.rate_limited;
  s.conflicts = w.conflicts;
  s.dead = w.dead;
  s.pending = w.pending;
  s.in_flight = w.in_flight;
  const auto starts = w.starts.load();
  s.restarts = starts > 0 ? starts - 1 : 0;
  return s;
}

const target_config& sync_writer::target() const noexcept { return impl_->target; }

void sync_writer::stop() { impl_->stop(); }

}  // namespace switchboard::actors
