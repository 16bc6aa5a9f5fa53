#pragma once

// Latest-state coalescing and pacing of the writes to ONE target (a Sync service, a map, a
// TaskRouter workspace). Pure: the caller passes the time and seeds the jitter, so tests drive
// it with a fake clock.
//
// Each key (an entity) has at most one write in flight and at most one pending revision: a
// newer offer replaces the pending one (coalesced), so a burst of updates costs a few writes of
// the newest state. Writes of one pacing group (the Twilio object the key writes: a document,
// or the map its item belongs to) start at least `min_interval` apart, because Twilio Sync
// allows 20 writes/s per object (map items count against their map). At most `concurrency`
// writes are in flight in all. A failed write is tried again with the key's NEWEST revision,
// after Retry-After or an exponential backoff with jitter, until `max_attempts`; then the key is
// dead at that revision, and only a newer offer starts it afresh.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

namespace switchboard::core {

struct write_limits {
  std::size_t concurrency = 4;                 ///< writes in flight in all (at least 1)
  std::chrono::milliseconds min_interval{50};  ///< per pacing group, between write starts
  std::size_t max_attempts = 10;               ///< failed attempts before a key is dead
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{10'000};
};

/// How one write ended, as far as scheduling cares.
struct write_result {
  enum class kind {
    ok,           ///< written: the revision is on the target
    retry_after,  ///< not done; the target named a delay (429 Retry-After, 503)
    backoff,      ///< not done or not known (timeout, 5xx, repeated conflicts): back off
    give_up,      ///< will never work at this revision (bad input, no such worker)
  };
  kind what = kind::ok;
  std::chrono::milliseconds delay{0};  ///< retry_after only

  static write_result ok() { return {kind::ok, {}}; }
  static write_result retry_in(std::chrono::milliseconds d) { return {kind::retry_after, d}; }
  static write_result backoff() { return {kind::backoff, {}}; }
  static write_result give_up() { return {kind::give_up, {}}; }
};

/// A write to start now: the key's newest revision, and which attempt this is (1 = first).
struct write_ticket {
  std::string key;
  std::uint64_t revision = 0;
  std::size_t attempt = 1;
};

/// What `complete` decided.
struct write_completion {
  enum class kind {
    done,     ///< written; nothing newer pending
    again,    ///< will be written again (a newer revision, or a retry)
    dead,     ///< given up at `revision`: record it as a dead write
    unknown,  ///< no write of this key was in flight (ignored)
  };
  kind what = kind::done;
  std::uint64_t revision = 0;  ///< dead: the revision given up on
  std::size_t attempts = 0;    ///< dead: how many attempts were made
};

/// Counters since construction.
struct write_schedule_counts {
  std::uint64_t offers = 0;     ///< revisions offered that were newer than the key's known ones
  std::uint64_t stale = 0;      ///< offers ignored: not newer than pending, in flight or written
  std::uint64_t coalesced = 0;  ///< pending revisions replaced by a newer one before a write
  std::uint64_t started = 0;    ///< writes started (first attempts and retries)
  std::uint64_t ok = 0;
  std::uint64_t retried = 0;  ///< failed attempts that will be tried again
  std::uint64_t dead = 0;
};

class write_schedule {
public:
  using clock = std::chrono::steady_clock;
  using time_point = clock::time_point;

  /// `seed` drives the backoff jitter (the same seed, the same delays).
  explicit write_schedule(write_limits limits, std::uint64_t seed = 1);

  /// A new revision of `key`, to be written to the object named by `pace_group` ("" = the key
  /// itself). Ignored unless newer than every revision of the key pending, in flight or written.
  /// Returns true if it was taken.
  bool offer(const std::string& key, std::uint64_t revision, time_point now,
             const std::string& pace_group = {});

  /// The next write to start at `now`, if one may start; it counts as in flight until
  /// `complete`. Call until it answers nothing, then wait until `next_wakeup()`.
  std::optional<write_ticket> next_ready(time_point now);

  /// The end of the write in flight for `key`. `revision` is the revision actually written
  /// (may exceed the ticket's when the writer found a newer state); offers up to it are done.
  write_completion complete(const std::string& key, std::uint64_t revision,
                            const write_result& result, time_point now);

  /// Forgets which revisions were written or given up on (for keys not waiting or in flight),
  /// so that offers of those same revisions are taken again: after the target's ledger was
  /// reset (a re-push). Pacing is kept.
  void forget_written();

  /// When `next_ready` may next answer something, if anything is waiting and a slot is free.
  /// Earlier than due is possible (a shared pacing group); never later.
  std::optional<time_point> next_wakeup() const;

  std::size_t pending() const noexcept { return waiting_.size(); }  ///< keys waiting to be written
  std::size_t in_flight() const noexcept { return in_flight_; }
  const write_schedule_counts& counts() const noexcept { return counts_; }
  const write_limits& limits() const noexcept { return limits_; }
  /// Keys the schedule still remembers: waiting, in flight, or idle for less than
  /// `forget_after` (so that pacing and stale offers are judged right); bounded by activity,
  /// not by the number of keys ever seen.
  std::size_t remembered() const noexcept { return keys_.size(); }

private:
  using slot = std::tuple<time_point, std::uint64_t, std::string>;  // (eligible, order, key)

  struct group_state {
    time_point last_start{};
    bool started = false;
    std::size_t keys = 0;  ///< keys remembered in this group
  };

  struct key_state {
    std::uint64_t newest = 0;   ///< newest revision offered
    std::uint64_t written = 0;  ///< newest revision written
    std::uint64_t dead_at = 0;  ///< newest revision given up on
    bool in_flight = false;
    std::uint64_t flying = 0;    ///< the revision of the write in flight
    std::size_t attempts = 0;    ///< failed attempts since the last success or fresh start
    time_point not_before{};     ///< retry delay
    std::optional<slot> queued;  ///< its entry in waiting_, if waiting
    std::optional<time_point> idle_since;  ///< nothing to do since then: forgotten later
    std::string group;
  };

  bool wants_write(const key_state& k) const noexcept {
    return k.newest > k.written && k.newest > k.dead_at;
  }
  time_point group_ready(const std::string& group) const;
  void enqueue(const std::string& key, key_state& k, time_point at);
  void dequeue(key_state& k);
  void set_group(key_state& k, const std::string& group);
  std::chrono::milliseconds backoff_delay(std::size_t attempts);
  void went_idle(const std::string& key, key_state& k, time_point now);
  void forget_idle(time_point now);
  std::chrono::steady_clock::duration forget_after() const;

  write_limits limits_;
  std::mt19937_64 rng_;
  std::unordered_map<std::string, key_state> keys_;
  std::unordered_map<std::string, group_state> groups_;
  std::set<slot> waiting_;
  std::deque<std::pair<time_point, std::string>> idle_;  // keys gone idle, oldest first
  std::uint64_t order_ = 0;
  std::size_t in_flight_ = 0;
  write_schedule_counts counts_;
};

}  // namespace switchboard::core
