#include "core/write_schedule.hpp"

#include "core/policy/backoff.hpp"

#include <algorithm>
#include <utility>

namespace switchboard::core {

write_schedule::write_schedule(write_limits limits, std::uint64_t seed)
    : limits_(limits), rng_(seed) {
  limits_.concurrency = std::max<std::size_t>(limits_.concurrency, 1);
  limits_.max_attempts = std::max<std::size_t>(limits_.max_attempts, 1);
}

bool write_schedule::offer(const std::string& key, std::uint64_t revision, time_point now,
                           const std::string& pace_group) {
  auto [it, fresh] = keys_.try_emplace(key);
  auto& k = it->second;
  if (fresh || !k.in_flight)
    set_group(k, pace_group.empty() ? key : pace_group);
  if (revision <= std::max(k.newest, k.written)) {
    ++counts_.stale;
    return false;
  }
  ++counts_.offers;
  // A pending revision (waiting, or behind the write in flight) that will now never be sent.
  if (wants_write(k) && (!k.in_flight || k.newest > k.flying))
    ++counts_.coalesced;
  if (!wants_write(k) && !k.in_flight) {
    // Idle (written, or dead at an older revision): a newer revision starts afresh.
    k.attempts = 0;
    k.not_before = {};
  }
  k.newest = revision;
  k.idle_since.reset();
  if (!k.in_flight && !k.queued)
    enqueue(key, k, std::max(now, k.not_before));
  return true;
}

std::optional<write_ticket> write_schedule::next_ready(time_point now) {
  forget_idle(now);
  while (in_flight_ < limits_.concurrency && !waiting_.empty()) {
    auto first = waiting_.begin();
    if (std::get<0>(*first) > now)
      return std::nullopt;
    const auto order = std::get<1>(*first);
    auto key = std::get<2>(*first);
    auto& k = keys_.at(key);
    const auto ready = std::max(k.not_before, group_ready(k.group));
    waiting_.erase(first);
    k.queued.reset();
    if (ready > now) {
      // Another key of its group started meanwhile: wait, keeping its place among equals.
      slot later{ready, order, key};
      waiting_.insert(later);
      k.queued = std::move(later);
      continue;
    }
    k.in_flight = true;
    k.flying = k.newest;
    ++in_flight_;
    auto& g = groups_[k.group];
    g.last_start = now;
    g.started = true;
    ++counts_.started;
    return write_ticket{std::move(key), k.newest, k.attempts + 1};
  }
  return std::nullopt;
}

write_completion write_schedule::complete(const std::string& key, std::uint64_t revision,
                                          const write_result& result, time_point now) {
  auto it = keys_.find(key);
  if (it == keys_.end() || !it->second.in_flight)
    return {write_completion::kind::unknown, revision, 0};
  auto& k = it->second;
  k.in_flight = false;
  --in_flight_;
  // The writer may have found (and written, or failed) a newer state than it was offered.
  k.newest = std::max(k.newest, revision);

  if (result.what == write_result::kind::ok) {
    ++counts_.ok;
    k.written = std::max(k.written, revision);
    k.attempts = 0;
    k.not_before = {};
    if (wants_write(k)) {
      enqueue(key, k, now);  // the group's pacing delays it by min_interval from this start
      return {write_completion::kind::again, revision, 0};
    }
    went_idle(key, k, now);
    return {write_completion::kind::done, revision, 0};
  }

  ++k.attempts;
  const bool retry =
      result.what != write_result::kind::give_up && k.attempts < limits_.max_attempts;
  if (retry) {
    ++counts_.retried;
    const auto delay = result.what == write_result::kind::retry_after && result.delay.count() > 0
                           ? result.delay
                           : backoff_delay(k.attempts);
    k.not_before = now + delay;
    enqueue(key, k, k.not_before);
    return {write_completion::kind::again, revision, 0};
  }

  ++counts_.dead;
  const auto attempts = k.attempts;
  k.dead_at = std::max(k.dead_at, revision);
  k.attempts = 0;
  k.not_before = {};
  if (wants_write(k))
    enqueue(key, k, now);  // a newer revision came while the last attempt ran: afresh
  else
    went_idle(key, k, now);
  return {write_completion::kind::dead, revision, attempts};
}

void write_schedule::forget_written() {
  for (auto& [key, k] : keys_) {
    if (k.in_flight || k.queued)
      continue;
    k.newest = k.written = k.dead_at = 0;
    k.attempts = 0;
  }
}

std::optional<write_schedule::time_point> write_schedule::next_wakeup() const {
  if (in_flight_ >= limits_.concurrency || waiting_.empty())
    return std::nullopt;
  return std::get<0>(*waiting_.begin());
}

write_schedule::time_point write_schedule::group_ready(const std::string& group) const {
  auto it = groups_.find(group);
  if (it == groups_.end() || !it->second.started)
    return time_point::min();
  return it->second.last_start + limits_.min_interval;
}

void write_schedule::enqueue(const std::string& key, key_state& k, time_point at) {
  dequeue(k);
  slot s{at, ++order_, key};
  waiting_.insert(s);
  k.queued = std::move(s);
  k.idle_since.reset();
}

void write_schedule::dequeue(key_state& k) {
  if (k.queued) {
    waiting_.erase(*k.queued);
    k.queued.reset();
  }
}

void write_schedule::set_group(key_state& k, const std::string& group) {
  if (k.group == group)
    return;
  if (!k.group.empty()) {
    auto old = groups_.find(k.group);
    if (old != groups_.end() && --old->second.keys == 0)
      groups_.erase(old);
  }
  k.group = group;
  if (!group.empty())
    ++groups_[group].keys;
}

std::chrono::milliseconds write_schedule::backoff_delay(std::size_t attempts) {
  // Doubling from backoff_initial, capped; "equal jitter": half fixed, half random, so that
  // keys failing together (a 5xx burst) do not come back together. Not core::jittered's
  // 1 +/- jitter: this window stays under backoff_max, which bounds how late a write comes back.
  const auto base = core::doubling_delay(limits_.backoff_initial, limits_.backoff_max, attempts);
  const auto half = base.count() / 2;
  std::uniform_int_distribution<std::int64_t> jitter(0, base.count() - half);
  return std::chrono::milliseconds{half + jitter(rng_)};
}

void write_schedule::went_idle(const std::string& key, key_state& k, time_point now) {
  k.idle_since = now;
  idle_.emplace_back(now, key);
}

std::chrono::steady_clock::duration write_schedule::forget_after() const {
  // Long enough to keep pacing the object and to recognise a late, stale offer of a revision
  // just written; short enough that memory follows activity.
  return std::max<std::chrono::steady_clock::duration>(2 * limits_.min_interval,
                                                       std::chrono::seconds{1});
}

void write_schedule::forget_idle(time_point now) {
  const auto after = forget_after();
  while (!idle_.empty() && idle_.front().first + after <= now) {
    auto [since, key] = std::move(idle_.front());
    idle_.pop_front();
    auto it = keys_.find(key);
    if (it == keys_.end())
      continue;
    auto& k = it->second;
    if (k.idle_since != since || k.in_flight || k.queued || wants_write(k))
      continue;  // busy again since, or queued again for idleness later
    set_group(k, {});
    keys_.erase(it);
  }
}

}  // namespace switchboard::core
