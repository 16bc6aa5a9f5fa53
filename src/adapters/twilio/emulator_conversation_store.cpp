// The emulator's conversations and their indexes (conversation_store, emulator_impl.hpp): each
// change to an indexed field updates every index it appears in, so a lookup never needs a scan.

#include "adapters/twilio/emulator_impl.hpp"

#include <algorithm>
#include <string>
#include <utility>

namespace switchboard::adapters::twilio::internal {

conversation& conversation_store::add(conversation c) {
  c.seq = next_seq_++;
  list_.push_back(std::move(c));
  const auto it = std::prev(list_.end());
  auto& stored = *it;
  by_sid_.emplace(stored.sid, it);
  if (stored.unique_name)
    by_unique_name_.emplace(*stored.unique_name, &stored);
  for (auto& p : stored.participants) {
    p.seq = next_seq_++;
    index_participant(stored, p);
  }
  schedule(stored);
  return stored;
}

void conversation_store::remove(conversation& c) {
  for (const auto& p : c.participants)
    unindex_participant(c, p);
  unschedule(c);
  set_unique_name(c, std::nullopt);
  const auto it = by_sid_.find(c.sid);
  if (it == by_sid_.end())
    return;
  const auto where = it->second;
  by_sid_.erase(it);
  list_.erase(where);
}

conversation* conversation_store::find(const std::string& name) {
  if (rules::is_sid(name, "CH")) {
    const auto it = by_sid_.find(name);
    return it == by_sid_.end() ? nullptr : &*it->second;
  }
  return find_unique_name(name);
}

conversation* conversation_store::find_unique_name(const std::string& name) {
  const auto it = by_unique_name_.find(name);
  return it == by_unique_name_.end() ? nullptr : it->second;
}

void conversation_store::set_unique_name(conversation& c, std::optional<std::string> name) {
  if (c.unique_name) {
    const auto it = by_unique_name_.find(*c.unique_name);
    if (it != by_unique_name_.end() && it->second == &c)
      by_unique_name_.erase(it);
  }
  c.unique_name = std::move(name);
  if (c.unique_name)
    by_unique_name_.emplace(*c.unique_name, &c);
}

void conversation_store::set_state(conversation& c, std::string state) {
  const bool was_open = is_open(c);
  c.state = std::move(state);
  if (was_open != is_open(c))
    for (auto& p : c.participants) {
      if (was_open)
        unbind(c, p);
      else
        bind(c, p);
    }
  schedule(c);
}

void conversation_store::restart_timers(conversation& c, time_point now) {
  c.date_inactive =
      c.inactive_after ? std::optional<time_point>{now + *c.inactive_after} : std::nullopt;
  c.date_closed = c.closed_after ? std::optional<time_point>{now + *c.closed_after} : std::nullopt;
  schedule(c);
}

void conversation_store::fire_timers(time_point now) {
  while (!timers_.empty() && timers_.begin()->first <= now) {
    auto& c = *timers_.begin()->second;
    unschedule(c);
    // As Twilio: a conversation past both timers goes straight to closed.
    if (c.date_closed && *c.date_closed <= now && c.state != "closed") {
      set_state(c, "closed");
      c.updated = *c.date_closed;
    } else if (c.date_inactive && *c.date_inactive <= now && c.state == "active") {
      set_state(c, "inactive");  // queues the closed timer, which is still ahead
      c.updated = *c.date_inactive;
    }
  }
}

participant& conversation_store::add_participant(conversation& c, participant p) {
  p.seq = next_seq_++;
  c.participants.push_back(std::move(p));
  auto& stored = c.participants.back();
  index_participant(c, stored);
  return stored;
}

void conversation_store::remove_participant(conversation& c, const participant& p) {
  unindex_participant(c, p);
  c.participants.remove_if([&](const participant& o) { return &o == &p; });
}

conversation_store::participant_ref conversation_store::open_binding(const std::string& address,
                                                                     const std::string& proxy) {
  const auto it = open_bindings_.find({address, proxy});
  return it == open_bindings_.end() ? participant_ref{} : it->second;
}

std::vector<conversation_store::participant_ref> conversation_store::participants_of(
    const std::optional<std::string>& identity, const std::optional<std::string>& address) const {
  participants_by_seq found;  // a participant may match both: listed once
  for (const auto& [key, index] :
       {std::pair{&identity, &by_identity_}, std::pair{&address, &by_address_}}) {
    if (!*key)
      continue;
    const auto it = index->find(**key);
    if (it != index->end())
      found.insert(it->second.begin(), it->second.end());
  }
  std::vector<participant_ref> out;
  out.reserve(found.size());
  for (const auto& [seq, ref] : found)
    out.push_back(ref);
  return out;
}

void conversation_store::index_participant(conversation& c, participant& p) {
  const seq_key key{c.seq, p.seq};
  if (p.address)
    by_address_[*p.address].emplace(key, participant_ref{&c, &p});
  if (p.identity)
    by_identity_[*p.identity].emplace(key, participant_ref{&c, &p});
  if (is_open(c))
    bind(c, p);
}

void conversation_store::unindex_participant(const conversation& c, const participant& p) {
  const seq_key key{c.seq, p.seq};
  for (const auto& [name, index] :
       {std::pair{&p.address, &by_address_}, std::pair{&p.identity, &by_identity_}}) {
    if (!*name)
      continue;
    const auto it = index->find(**name);
    if (it == index->end())
      continue;
    it->second.erase(key);
    if (it->second.empty())
      index->erase(it);
  }
  unbind(c, p);
}

void conversation_store::bind(conversation& c, participant& p) {
  if (p.address && p.proxy_address)
    open_bindings_.emplace(std::pair{*p.address, *p.proxy_address}, participant_ref{&c, &p});
}

void conversation_store::unbind(const conversation& c, const participant& p) {
  if (!p.address || !p.proxy_address)
    return;
  const auto it = open_bindings_.find({*p.address, *p.proxy_address});
  if (it != open_bindings_.end() && it->second.conv == &c && it->second.p == &p)
    open_bindings_.erase(it);
}

void conversation_store::schedule(conversation& c) {
  unschedule(c);
  // The earliest timer that can still change the state: closing from any open state,
  // going inactive only from active.
  std::optional<time_point> due;
  if (c.state != "closed" && c.date_closed)
    due = c.date_closed;
  if (c.state == "active" && c.date_inactive && (!due || *c.date_inactive < *due))
    due = c.date_inactive;
  if (due)
    scheduled_.emplace(&c, timers_.emplace(*due, &c));
}

void conversation_store::unschedule(const conversation& c) {
  const auto it = scheduled_.find(&c);
  if (it == scheduled_.end())
    return;
  timers_.erase(it->second);
  scheduled_.erase(it);
}

}  // namespace switchboard::adapters::twilio::internal
