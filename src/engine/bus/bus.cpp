#include "engine/bus/bus.hpp"

#include "core/policy/backoff.hpp"
#include "engine/actor_support.hpp"
#include "engine/bus/async_handler.hpp"
#include "engine/supervision/supervisor.hpp"
#include "ports/journal_storage.hpp"  // store_error

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

/// An entity whose event failed and waits for its retry: that event first, then the entity's
/// later events in order, which wait behind it while the partition's other entities go on.
struct held_entity {
  std::deque<event_ptr> events;
  std::uint32_t attempts = 0;  // failed attempts of events.front()
};

struct partition_state {
  static inline const char* name = "switchboard.partition";
  std::shared_ptr<subscription_entry> entry;
  std::shared_ptr<const bus_context> ctx;
  consumer_actor owner;
  const async_event_handler* async = nullptr;             // in entry->handler, when it is one
  batch_queue queue;                                      // events not looked at yet, in order
  std::unordered_map<std::string, held_entity> held;      // by entity_key
  std::unordered_map<std::uint64_t, std::string> timers;  // retry token -> held entity's key
  std::uint64_t retry_token = 0;
  std::deque<std::string> due;  // held entities whose first event may run now
  bool handling = false;        // an async handler has `in_hand`; `handled` is on its way
  std::uint64_t handle_token = 0;
  event_ptr in_hand;
  std::string in_hand_key;  // its entity's key when that entity is held, else ""
  std::unordered_map<std::string, std::uint64_t> applied_version;  // per entity
  std::mt19937_64 rng{std::random_device{}()};
};

using partition_ptr = partition_actor::stateful_pointer<partition_state>;

/// An event without entity attributes is its own entity: nothing orders it behind another.
std::string entity_key(const event& ev) {
  if (ev.entity_kind.empty() && ev.entity_id.empty())
    return '\1' + ev.source + '\0' + ev.id;
  return ev.entity_kind + '\0' + ev.entity_id;
}

/// What a failed attempt says about the next one.
enum class failure_kind : std::uint8_t {
  none,       ///< handled
  transient,  ///< retry after the subscription's backoff
  storage,    ///< a storage failure (disk full, I/O error, busy database): the longer backoff
  terminal,   ///< dead-letter at once
};

// A full disk or an I/O error is the machine's trouble, not the event's, and often clears in
// seconds: these back off from 500 ms (doubling, capped at 5 s; the policy's own delays when
// longer), so the default 5 attempts span 7.5 s instead of the 0.75 s of 50 ms doubling.
constexpr std::chrono::milliseconds storage_backoff_initial{500};
constexpr std::chrono::milliseconds storage_backoff_max{5'000};

std::chrono::milliseconds retry_delay(const retry_policy& policy, failure_kind kind,
                                      std::uint32_t attempt, std::mt19937_64& rng) {
  core::backoff_policy p{policy.initial, policy.max, policy.jitter};
  if (kind == failure_kind::storage) {
    p.initial = std::max(p.initial, storage_backoff_initial);
    p.max = std::max(p.max, storage_backoff_max);
  }
  return core::backoff_delay(p, attempt, rng);
}

/// How a handler call ended. The same for handlers run in place and async ones (classified on
/// their thread).
struct handler_outcome {
  std::string failure;
  failure_kind kind = failure_kind::none;
};

handler_outcome outcome_of(std::exception_ptr error) {
  if (!error)
    return {};
  try {
    std::rethrow_exception(error);
  } catch (const terminal_error& e) {
    return {e.what(), failure_kind::terminal};
  } catch (const ports::store_error& e) {
    return {e.what(), e.retryable() ? failure_kind::storage : failure_kind::transient};
  } catch (const std::exception& e) {
    return {e.what(), failure_kind::transient};
  } catch (...) {
    return {"a non-standard exception", failure_kind::transient};
  }
}

void dead_letter(partition_ptr self, const event& ev, const char* reason, std::uint32_t attempts,
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

/// The key of `ev` in applied_version, or "" when its versions are not tracked.
std::string version_key(const partition_state& st, const event& ev) {
  if (st.entry->options.drop_stale_versions && ev.entity_version)
    return entity_key(ev);
  return {};
}

/// The held entity `key`'s first event is done: its next one (if any) is due, else the entity
/// is no longer held.
void release_front(partition_state& st, const std::string& key) {
  auto it = st.held.find(key);
  if (it == st.held.end())
    return;
  it->second.events.pop_front();
  it->second.attempts = 0;
  if (it->second.events.empty())
    st.held.erase(it);
  else
    st.due.push_back(key);
}

/// Settles `ev` after its handler ran (`key`: its entity's key if the entity is held with `ev`
/// first, else ""): holds the entity until a retry (its later events wait behind it), or
/// records `ev` done (handled, or dead-lettered) and lets its entity go on.
void settle(partition_ptr self, const event_ptr& ev, const std::string& key,
            const handler_outcome& outcome, std::vector<std::uint64_t>& done) {
  auto& st = self->state;
  const auto& opts = st.entry->options;
  if (outcome.kind != failure_kind::none) {
    auto held = key.empty() ? st.held.end() : st.held.find(key);
    const auto attempts = (held == st.held.end() ? 0 : held->second.attempts) + 1;
    if (outcome.kind != failure_kind::terminal && attempts < opts.retry.max_attempts) {
      auto entity = key;
      if (held == st.held.end()) {
        entity = entity_key(*ev);
        held = st.held.emplace(entity, held_entity{}).first;
        held->second.events.push_back(ev);
      }
      held->second.attempts = attempts;
      auto delay = retry_delay(opts.retry, outcome.kind, attempts, st.rng);
      spdlog::warn(
          "{} consumer '{}' failed (attempt {} of {}), retrying in {} ms{}; {} later event(s) of "
          "its entity wait, the others go on: {}",
          log_context(*ev), st.entry->consumer_name(), attempts, opts.retry.max_attempts,
          delay.count(), outcome.kind == failure_kind::storage ? " (a storage failure)" : "",
          held->second.events.size() - 1, outcome.failure);
      const auto token = ++st.retry_token;
      st.timers.emplace(token, std::move(entity));
      self->delayed_send(self, delay, retry_atom_v, token);
      return;
    }
    dead_letter(self, *ev,
                outcome.kind == failure_kind::terminal ? "terminal error" : "retries exhausted",
                attempts, outcome.failure);
  } else if (auto vkey = version_key(st, *ev); !vkey.empty()) {
    auto& v = st.applied_version[vkey];
    v = std::max(v, *ev->entity_version);
  }
  done.push_back(*ev->sequence);
  if (!key.empty())
    release_front(st, key);
}

/// The next event to run: the first event of a due held entity, else the queue's head, unless
/// that head's entity is held (then it joins its entity's line, and the next head is looked
/// at). `key` is set to the held entity's key, or "" for an event from the queue.
event_ptr take_next(partition_state& st, std::string& key) {
  while (!st.due.empty()) {
    key = std::move(st.due.front());
    st.due.pop_front();
    if (auto it = st.held.find(key); it != st.held.end())
      return it->second.events.front();
  }
  key.clear();
  while (!st.queue.empty()) {
    auto ev = st.queue.front();
    st.queue.pop_front();
    if (!st.held.empty()) {
      if (auto it = st.held.find(entity_key(*ev)); it != st.held.end()) {
        it->second.events.push_back(std::move(ev));
        continue;
      }
    }
    return ev;
  }
  return nullptr;
}

void process(partition_ptr self) {
  auto& st = self->state;
  std::vector<std::uint64_t> done;
  std::size_t budget = 256;  // then yield the thread to other actors
  std::string key;
  while (!st.handling && budget-- > 0) {
    auto ev = take_next(st, key);
    if (!ev)
      break;
    if (auto vkey = version_key(st, *ev); !vkey.empty()) {
      auto i = st.applied_version.find(vkey);
      if (i != st.applied_version.end() && *ev->entity_version < i->second) {
        SPDLOG_DEBUG("{} dropped: version {} is older than {}", log_context(*ev),
                     *ev->entity_version, i->second);
        done.push_back(*ev->sequence);
        if (!key.empty())
          release_front(st, key);
        continue;
      }
    }
    if (st.async != nullptr) {
      // The handler's own thread does the work; `handled` settles the event (see below).
      st.handling = true;
      st.in_hand = ev;
      st.in_hand_key = std::move(key);
      const auto token = ++st.handle_token;
      // Weak: a queued handler must not keep a stopped partition (or its system) alive.
      st.async->start(ev, [addr = self->address(), token](std::exception_ptr error) {
        auto outcome = outcome_of(error);
        if (auto me = caf::actor_cast<partition_actor>(addr))
          caf::anon_send(me, handled_atom_v, token, std::move(outcome.failure),
                         static_cast<std::uint8_t>(outcome.kind));
      });
      break;
    }
    std::exception_ptr error;
    try {
      st.entry->handler(*ev);
    } catch (...) {
      error = std::current_exception();
    }
    settle(self, ev, key, outcome_of(error), done);
  }
  if (!done.empty())
    self->send(st.owner, done_atom_v, std::move(done));
  if (!st.handling && (!st.queue.empty() || !st.due.empty()))
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
        if (!self->state.handling)
          process(self);
      },
      [self](retry_atom, std::uint64_t token) {
        auto& st = self->state;
        auto it = st.timers.find(token);
        if (it == st.timers.end())
          return;
        st.due.push_back(std::move(it->second));
        st.timers.erase(it);
        if (!st.handling)
          process(self);
      },
      [self](resume_atom) {
        if (!self->state.handling)
          process(self);
      },
      [self](handled_atom, std::uint64_t token, const std::string& failure, std::uint8_t kind) {
        auto& st = self->state;
        if (token != st.handle_token || !st.handling)
          return;
        st.handling = false;
        auto ev = std::move(st.in_hand);
        auto key = std::move(st.in_hand_key);
        std::vector<std::uint64_t> done;
        settle(self, ev, key, handler_outcome{failure, static_cast<failure_kind>(kind)}, done);
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
    const auto lane = partition_for(*ev, lanes.size());
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
        auto lane = partition_for(*ev, parts.size());
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
