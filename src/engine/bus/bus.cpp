#include "engine/bus/bus.hpp"

#include "core/policy/backoff.hpp"
#include "engine/actor_support.hpp"
#include "engine/bus/async_handler.hpp"
#include "engine/supervision/supervisor.hpp"

#include <spdlog/spdlog.h>
#include <caf/all.hpp>

#include <algorithm>
#include <random>
#include <set>
#include <unordered_map>

namespace switchboard::actors {

// -- journal_tail ------------------------------------------------------------------------

journal_tail::journal_tail(std::size_t capacity, std::uint64_t last_sequence)
    : capacity_(std::max<std::size_t>(capacity, 1)),
      first_(last_sequence + 1),
      last_(last_sequence) {}

void journal_tail::append(std::vector<event_ptr> events) {
  std::vector<consumer_actor> wake;
  {
    std::lock_guard<std::mutex> guard{mu_};
    for (auto& ev : events) {
      if (events_.empty())
        first_ = *ev->sequence;
      events_.push_back(std::move(ev));
    }
    if (!events_.empty())
      last_ = *events_.back()->sequence;
    while (events_.size() > capacity_) {
      events_.pop_front();
      ++first_;
    }
    wake = listeners_;
  }
  for (auto& c : wake)
    caf::anon_send(c, wake_atom_v);
}

journal_tail::read_status journal_tail::read(std::uint64_t after, std::size_t max,
                                             std::vector<event_ptr>& out) const {
  std::lock_guard<std::mutex> guard{mu_};
  if (after >= last_)
    return read_status::ok;
  if (events_.empty() || after + 1 < first_)
    return read_status::evicted;
  auto offset = static_cast<std::size_t>(after + 1 - first_);
  auto end = std::min(events_.size(), offset + max);
  for (auto i = offset; i < end; ++i)
    out.push_back(events_[i]);
  return read_status::ok;
}

std::uint64_t journal_tail::last_sequence() const {
  std::lock_guard<std::mutex> guard{mu_};
  return last_;
}

void journal_tail::add_listener(const consumer_actor& c) {
  std::lock_guard<std::mutex> guard{mu_};
  listeners_.push_back(c);
}

void journal_tail::remove_listener(const caf::actor_addr& c) {
  std::lock_guard<std::mutex> guard{mu_};
  listeners_.erase(std::remove_if(listeners_.begin(), listeners_.end(),
                                  [&](const consumer_actor& x) { return x.address() == c; }),
                   listeners_.end());
}

std::size_t partition_of(const std::string& kind, const std::string& id, std::size_t n) {
  if (n <= 1)
    return 0;
  // FNV-1a over kind, a separator, and id: stable across runs, builds and platforms.
  std::uint64_t h = 14695981039346656037ull;
  auto mix = [&h](unsigned char c) {
    h ^= c;
    h *= 1099511628211ull;
  };
  for (unsigned char c : kind)
    mix(c);
  mix(0);
  for (unsigned char c : id)
    mix(c);
  return static_cast<std::size_t>(h % n);
}

namespace {

// -- partition -----------------------------------------------------------------------------

// The partition's queue: the batches as received, and a position in the first one (no
// per-event copy of the shared pointers).
class batch_queue {
public:
  void push(const event_batch& b) {
    if (!b->empty())
      batches_.push_back(b);
  }
  bool empty() const noexcept { return batches_.empty(); }
  const event_ptr& front() const { return (*batches_.front())[head_]; }
  void pop_front() {
    if (++head_ == batches_.front()->size()) {
      batches_.pop_front();
      head_ = 0;
    }
  }

private:
  std::deque<event_batch> batches_;
  std::size_t head_ = 0;
};

struct partition_state {
  static inline const char* name = "switchboard.partition";
  std::shared_ptr<subscription_entry> entry;
  std::shared_ptr<const bus_context> ctx;
  consumer_actor owner;
  const async_event_handler* async = nullptr;  // in entry->handler, when it is one
  batch_queue queue;
  std::uint32_t attempts = 0;  // failed attempts of the event at the head
  bool waiting = false;        // a retry of the head is scheduled
  std::uint64_t retry_token = 0;
  bool handling = false;  // an async handler has the head; `handled` is on its way
  std::uint64_t handle_token = 0;
  std::unordered_map<std::string, std::uint64_t> applied_version;  // per entity
  std::mt19937_64 rng{std::random_device{}()};

  bool busy() const noexcept { return waiting || handling; }
};

using partition_ptr = partition_actor::stateful_pointer<partition_state>;

std::chrono::milliseconds retry_delay(const retry_policy& policy, std::uint32_t attempt,
                                      std::mt19937_64& rng) {
  return core::backoff_delay({policy.initial, policy.max, policy.jitter}, attempt, rng);
}

/// How a handler call ended: `failure` empty and not terminal means handled. The same for
/// handlers run in place and async ones (classified on their thread).
struct handler_outcome {
  std::string failure;
  bool terminal = false;
};

handler_outcome outcome_of(std::exception_ptr error) {
  if (!error)
    return {};
  try {
    std::rethrow_exception(error);
  } catch (const terminal_error& e) {
    return {e.what(), true};
  } catch (const std::exception& e) {
    return {e.what(), false};
  } catch (...) {
    return {"a non-standard exception", false};
  }
}

void park(partition_ptr self, const event& ev, const char* reason, std::uint32_t attempts,
          const std::string& error) {
  auto& st = self->state;
  auto consumer = st.entry->consumer_name();
  spdlog::error("{} consumer '{}' parked event {} as a dead letter ({}, {} attempt(s)): {}",
                log_context(ev), consumer, *ev.sequence, reason, attempts, error);
  ports::dead_letter letter;
  letter.consumer = consumer;
  letter.sequence = *ev.sequence;
  letter.reason = reason;
  letter.attempts = attempts;
  letter.last_error = error;
  st.ctx->writer->park(std::move(letter));
}

/// The key of the head event in applied_version, or "" when its versions are not tracked.
std::string version_key(const partition_state& st, const event& ev) {
  if (st.entry->options.drop_stale_versions && ev.entity_version)
    return ev.entity_kind + '\0' + ev.entity_id;
  return {};
}

/// Settles the head event after its handler ran: schedules a retry (false: the head stays),
/// or records it done (handled, or parked) and pops it.
bool settle_head(partition_ptr self, const handler_outcome& outcome,
                 std::vector<std::uint64_t>& done) {
  auto& st = self->state;
  const auto& opts = st.entry->options;
  const auto& ev = st.queue.front();
  if (!outcome.failure.empty() || outcome.terminal) {
    ++st.attempts;
    if (!outcome.terminal && st.attempts < opts.retry.max_attempts) {
      auto delay = retry_delay(opts.retry, st.attempts, st.rng);
      spdlog::warn("{} consumer '{}' failed (attempt {} of {}), retrying in {} ms: {}",
                   log_context(*ev), st.entry->consumer_name(), st.attempts,
                   opts.retry.max_attempts, delay.count(), outcome.failure);
      st.waiting = true;
      self->delayed_send(self, delay, retry_atom_v, ++st.retry_token);
      return false;
    }
    park(self, *ev, outcome.terminal ? "terminal error" : "retries exhausted", st.attempts,
         outcome.failure);
  } else if (auto key = version_key(st, *ev); !key.empty()) {
    auto& v = st.applied_version[key];
    v = std::max(v, *ev->entity_version);
  }
  st.attempts = 0;
  done.push_back(*ev->sequence);
  st.queue.pop_front();
  return true;
}

void process(partition_ptr self) {
  auto& st = self->state;
  std::vector<std::uint64_t> done;
  std::size_t budget = 256;  // then yield the thread to other actors
  while (!st.queue.empty() && !st.busy() && budget-- > 0) {
    const auto& ev = st.queue.front();  // valid until pop_front
    if (auto key = version_key(st, *ev); !key.empty()) {
      auto i = st.applied_version.find(key);
      if (i != st.applied_version.end() && *ev->entity_version < i->second) {
        SPDLOG_DEBUG("{} dropped: version {} is older than {}", log_context(*ev),
                     *ev->entity_version, i->second);
        done.push_back(*ev->sequence);
        st.queue.pop_front();
        continue;
      }
    }
    if (st.async != nullptr) {
      // The handler's own thread does the work; `handled` settles the head (see below).
      st.handling = true;
      const auto token = ++st.handle_token;
      // Weak: a queued handler must not keep a stopped partition (or its system) alive.
      st.async->start(ev, [addr = self->address(), token](std::exception_ptr error) {
        auto outcome = outcome_of(error);
        if (auto me = caf::actor_cast<partition_actor>(addr))
          caf::anon_send(me, handled_atom_v, token, std::move(outcome.failure), outcome.terminal);
      });
      break;
    }
    std::exception_ptr error;
    try {
      st.entry->handler(*ev);
    } catch (...) {
      error = std::current_exception();
    }
    if (!settle_head(self, outcome_of(error), done))
      break;
  }
  if (!done.empty())
    self->send(st.owner, done_atom_v, std::move(done));
  if (!st.busy() && !st.queue.empty())
    self->send(self, resume_atom_v);
}

partition_actor::behavior_type partition_impl(partition_ptr self,
                                              std::shared_ptr<subscription_entry> entry,
                                              std::shared_ptr<const bus_context> ctx,
                                              consumer_actor owner) {
  self->state.entry = std::move(entry);
  self->state.ctx = std::move(ctx);
  self->state.owner = std::move(owner);
  self->state.async = self->state.entry->handler.target<async_event_handler>();
  install_exception_logger(self, "partition of " + self->state.entry->consumer_name());
  return {
      [self](work_atom, const event_batch& batch) {
        self->state.queue.push(batch);
        if (!self->state.busy())
          process(self);
      },
      [self](retry_atom, std::uint64_t token) {
        if (token != self->state.retry_token || !self->state.waiting)
          return;
        self->state.waiting = false;
        process(self);
      },
      [self](resume_atom) {
        if (!self->state.busy())
          process(self);
      },
      [self](handled_atom, std::uint64_t token, const std::string& failure, bool terminal) {
        auto& st = self->state;
        if (token != st.handle_token || !st.handling)
          return;
        st.handling = false;
        std::vector<std::uint64_t> done;
        settle_head(self, handler_outcome{failure, terminal}, done);
        if (!done.empty())
          self->send(st.owner, done_atom_v, std::move(done));
        process(self);
      },
  };
}

// -- consumer ------------------------------------------------------------------------------

// Sequences handed to partitions, in increasing order (dispatch hands them on in cursor
// order), each with a done flag: no allocation per event, unlike a std::set.
class in_flight_window {
public:
  void insert(std::uint64_t seq) {
    q_.emplace_back(seq, false);
    ++open_;
  }
  void erase(std::uint64_t seq) {
    auto i = std::lower_bound(q_.begin(), q_.end(), seq,
                              [](const auto& x, std::uint64_t s) { return x.first < s; });
    if (i != q_.end() && i->first == seq && !i->second) {
      i->second = true;
      --open_;
    }
    while (!q_.empty() && q_.front().second)
      q_.pop_front();
  }
  std::size_t size() const noexcept { return open_; }
  bool empty() const noexcept { return open_ == 0; }
  std::uint64_t lowest() const noexcept { return q_.front().first; }  // !empty()

private:
  std::deque<std::pair<std::uint64_t, bool>> q_;
  std::size_t open_ = 0;
};

struct consumer_state {
  static inline const char* name = "switchboard.consumer";
  std::shared_ptr<subscription_entry> entry;
  std::shared_ptr<const bus_context> ctx;
  std::vector<partition_actor> partitions;
  std::uint64_t cursor = 0;     // the last sequence examined
  in_flight_window in_flight;   // handed to a partition, not done yet
  std::uint64_t published = 0;  // the last progress made visible / checkpointed
  bool positioned = false;      // cursor known (durable consumers read their checkpoint)
  bool fetching = false;        // a disk read is under way
};

using consumer_ptr = consumer_actor::stateful_pointer<consumer_state>;

void advance(consumer_ptr self) {
  auto& st = self->state;
  auto progress = st.in_flight.empty() ? st.cursor : st.in_flight.lowest() - 1;
  if (progress <= st.published)
    return;
  st.published = progress;
  st.entry->progress.store(progress);
  if (st.entry->durable)
    st.ctx->writer->save_checkpoint(st.entry->options.name, progress);
}

/// A row that cannot be decoded has no handler to retry: it is parked at once (for a matching
/// pattern) and the cursor moves past it, so that it never stops the subscription.
void pass_unreadable(consumer_ptr self, const unreadable_event& row) {
  auto& st = self->state;
  if (row.sequence <= st.cursor)
    return;
  st.cursor = row.sequence;
  const bool matches = st.entry->pattern.matches(row.type);
  const auto consumer = st.entry->consumer_name();
  if (st.ctx->unreadable)
    st.ctx->unreadable->note(row, matches ? consumer : std::string{});
  if (!matches)
    return;
  spdlog::error("consumer '{}' parked journal event {} as a dead letter (unreadable): {}", consumer,
                row.sequence, row.reason);
  ports::dead_letter letter;
  letter.consumer = consumer;
  letter.sequence = row.sequence;
  letter.reason = "unreadable";
  letter.attempts = 0;  // never handed to the handler
  letter.last_error = row.reason;
  // Queued before the checkpoint that passes it, and the writer writes parks first.
  st.ctx->writer->park(std::move(letter));
}

/// Hands `events` (moved from) to the partitions; `unreadable` rows of the same read are
/// passed at their place in sequence order.
std::size_t dispatch(consumer_ptr self, std::vector<event_ptr>& events,
                     const std::vector<unreadable_event>* unreadable = nullptr) {
  auto& st = self->state;
  std::vector<std::vector<event_ptr>> lanes(st.partitions.size());
  std::size_t handed = 0;
  std::size_t next_unreadable = 0;
  auto pass_unreadable_before = [&](std::uint64_t seq) {
    for (; unreadable && next_unreadable < unreadable->size() &&
           (*unreadable)[next_unreadable].sequence < seq;
         ++next_unreadable)
      pass_unreadable(self, (*unreadable)[next_unreadable]);
  };
  for (auto& ev : events) {
    auto seq = *ev->sequence;
    pass_unreadable_before(seq);
    if (seq <= st.cursor)
      continue;
    st.cursor = seq;
    if (!st.entry->pattern.matches(ev->type))
      continue;
    st.in_flight.insert(seq);
    const auto lane = partition_of(ev->entity_kind, ev->entity_id, lanes.size());
    lanes[lane].push_back(std::move(ev));
    ++handed;
  }
  pass_unreadable_before(UINT64_MAX);
  for (std::size_t i = 0; i < lanes.size(); ++i)
    if (!lanes[i].empty())
      self->send(st.partitions[i], work_atom_v,
                 event_batch{std::make_shared<const std::vector<event_ptr>>(std::move(lanes[i]))});
  return handed;
}

void pump(consumer_ptr self) {
  auto& st = self->state;
  if (!st.positioned || st.fetching)
    return;
  const auto max_in_flight = std::max<std::size_t>(st.entry->options.max_in_flight, 1);
  std::vector<event_ptr> batch;
  while (st.in_flight.size() < max_in_flight) {
    auto want = std::min<std::size_t>(max_in_flight - st.in_flight.size(), 1024);
    batch.clear();
    if (st.ctx->tail->read(st.cursor, want, batch) == journal_tail::read_status::evicted) {
      st.fetching = true;
      consumer_actor me = self;
      st.ctx->reader->fetch(
          st.cursor, static_cast<std::uint32_t>(want),
          [me](std::shared_ptr<const std::vector<event_ptr>> events,
               std::shared_ptr<const std::vector<unreadable_event>> unreadable, std::string error) {
            caf::anon_send(me, fetched_atom_v, event_batch{std::move(events)},
                           unreadable_batch{std::move(unreadable)}, std::move(error));
          });
      return;
    }
    if (batch.empty())
      break;
    dispatch(self, batch);
  }
  advance(self);
}

void position(consumer_ptr self, std::uint64_t after) {
  auto& st = self->state;
  st.cursor = after;
  st.published = after;
  st.positioned = true;
  st.entry->progress.store(after);
  pump(self);
}

consumer_actor::behavior_type consumer_impl(consumer_ptr self,
                                            std::shared_ptr<subscription_entry> entry,
                                            std::shared_ptr<const bus_context> ctx) {
  auto& st = self->state;
  st.entry = std::move(entry);
  st.ctx = std::move(ctx);
  install_exception_logger(self, "consumer " + st.entry->consumer_name());
  consumer_actor me = self;
  auto lanes = std::max<std::size_t>(st.entry->options.partitions, 1);
  for (std::size_t i = 0; i < lanes; ++i)
    st.partitions.push_back(self->spawn<caf::linked>(partition_impl, st.entry, st.ctx, me));
  st.entry->set_current(me);
  st.ctx->tail->add_listener(me);
  self->attach_functor(
      [tail = st.ctx->tail, addr = self->address()] { tail->remove_listener(addr); });

  // Where to start: a replay request, else the progress of a previous incarnation, else the
  // saved checkpoint (durable) or the journal's end at subscribe time (ephemeral, set by the
  // runtime as the initial progress).
  auto replay = st.entry->restart_after.exchange(UINT64_MAX);
  if (replay != UINT64_MAX) {
    if (st.entry->durable)
      st.ctx->writer->save_checkpoint(st.entry->options.name, replay);
    position(self, replay);
  } else if (!st.entry->durable || st.entry->progress.load() > 0) {
    position(self, st.entry->progress.load());
  } else {
    st.ctx->reader->checkpoint(st.entry->options.name,
                               [me](std::uint64_t saved, std::string error) {
                                 caf::anon_send(me, checkpoint_atom_v, saved, std::move(error));
                               });
  }
  return {
      [self](wake_atom) { pump(self); },
      [self](fetched_atom, const event_batch& events, const unreadable_batch& unreadable,
             const std::string& error) {
        self->state.fetching = false;
        if (!error.empty() || !events) {
          spdlog::warn("consumer '{}': reading the journal failed ({}), retrying",
                       self->state.entry->consumer_name(), error);
          self->delayed_send(self, std::chrono::milliseconds(200), wake_atom_v);
          return;
        }
        if (events->empty() && (!unreadable || unreadable->empty())) {
          // The tail said "on disk" but the disk had nothing yet: look again shortly.
          self->delayed_send(self, std::chrono::milliseconds(20), wake_atom_v);
          return;
        }
        std::vector<event_ptr> copy(*events);
        dispatch(self, copy, unreadable.get());
        advance(self);
        pump(self);
      },
      [self](checkpoint_atom, std::uint64_t saved, const std::string& error) {
        if (!error.empty())
          throw std::runtime_error("cannot read the checkpoint of consumer '" +
                                   self->state.entry->options.name + "': " + error);
        if (!self->state.positioned)
          position(self, saved);
      },
      [self](done_atom, const std::vector<std::uint64_t>& seqs) {
        for (auto seq : seqs)
          self->state.in_flight.erase(seq);
        advance(self);
        pump(self);
      },
      [self](redeliver_atom, const event_ptr& ev) {
        auto& parts = self->state.partitions;
        auto lane = partition_of(ev->entity_kind, ev->entity_id, parts.size());
        self->send(parts[lane], work_atom_v,
                   event_batch{std::make_shared<const std::vector<event_ptr>>(1, ev)});
      },
  };
}

}  // namespace

child_spec consumer_child(std::shared_ptr<subscription_entry> entry,
                          std::shared_ptr<const bus_context> ctx) {
  auto id = "subscription-" + std::to_string(entry->id);
  return child_spec{std::move(id), restart_policy::permanent,
                    [entry = std::move(entry), ctx = std::move(ctx)](caf::actor_system& sys) {
                      return caf::actor_cast<caf::actor>(sys.spawn(consumer_impl, entry, ctx));
                    }};
}

}  // namespace switchboard::actors
