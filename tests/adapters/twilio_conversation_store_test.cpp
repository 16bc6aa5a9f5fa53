// The emulator's conversation indexes (conversation_store) against what a scan of every
// conversation finds: after any mix of creates, deletes, renames, state changes, participant
// changes and timers, each lookup answers as the scan does. The clock is a plain time_point, so
// timers of minutes and days fire without waiting.

#include "adapters/twilio/emulator_impl.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <random>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using namespace switchboard::adapters::twilio::internal;

namespace {

const time_point t0 = time_point{} + std::chrono::hours{24 * 365 * 50};

conversation make_conversation(int n, std::optional<std::string> unique_name = std::nullopt) {
  conversation c;
  c.sid = "CH" + std::string(32 - std::to_string(n).size(), '0') + std::to_string(n);
  c.unique_name = std::move(unique_name);
  c.created = c.updated = t0;
  return c;
}

participant sms(std::string address, std::string proxy, int n) {
  participant p;
  p.sid = "MB" + std::to_string(n);
  p.address = std::move(address);
  p.proxy_address = std::move(proxy);
  return p;
}

// --- the scans the indexes replace ------------------------------------------------------------

const conversation* scan_find(const conversation_store& s, const std::string& name) {
  const bool by_sid = switchboard::adapters::twilio::rules::is_sid(name, "CH");
  for (const auto& c : s.all())
    if (by_sid ? c.sid == name : (c.unique_name && *c.unique_name == name))
      return &c;
  return nullptr;
}

const participant* scan_binding(const conversation_store& s, const std::string& address,
                                const std::string& proxy) {
  for (const auto& c : s.all())
    if (is_open(c))
      for (const auto& p : c.participants)
        if (p.address == address && p.proxy_address == proxy)
          return &p;
  return nullptr;
}

std::vector<const participant*> scan_participants(const conversation_store& s,
                                                  const std::optional<std::string>& identity,
                                                  const std::optional<std::string>& address) {
  std::vector<const participant*> out;
  for (const auto& c : s.all())
    for (const auto& p : c.participants)
      if ((identity && p.identity == identity) || (address && p.address == address))
        out.push_back(&p);
  return out;
}

/// What fire_timers did before the queue: one pass over every conversation.
struct scanned_timers {
  std::string state;
  time_point updated;
};
void scan_fire(std::vector<std::pair<const conversation*, scanned_timers>>& model, time_point now) {
  for (auto& [c, m] : model) {
    if (c->date_closed && *c->date_closed <= now && m.state != "closed") {
      m.state = "closed";
      m.updated = *c->date_closed;
    } else if (c->date_inactive && *c->date_inactive <= now && m.state == "active") {
      m.state = "inactive";
      m.updated = *c->date_inactive;
    }
  }
}

}  // namespace

TEST_CASE("Conversation store: a renamed or deleted conversation is not found by its old name",
          "[twilio][emulator]") {
  conversation_store s;
  auto& a = s.add(make_conversation(1, "lead-1"));
  auto& b = s.add(make_conversation(2, "lead-2"));
  CHECK(s.find("lead-1") == &a);
  CHECK(s.find(a.sid) == &a);

  s.set_unique_name(a, "lead-1b");
  CHECK(s.find("lead-1") == nullptr);
  CHECK(s.find("lead-1b") == &a);
  s.set_unique_name(b, "lead-1");  // the old name is free again
  CHECK(s.find("lead-1") == &b);

  const auto sid = b.sid;
  s.remove(b);
  CHECK(s.find(sid) == nullptr);
  CHECK(s.find("lead-1") == nullptr);
  CHECK(s.find("lead-1b") == &a);
  CHECK(s.all().size() == 1);
}

TEST_CASE("Conversation store: closing or deleting frees an SMS binding for another conversation",
          "[twilio][emulator]") {
  conversation_store s;
  auto& first = s.add(make_conversation(1));
  const auto& p1 = s.add_participant(first, sms("+15551230001", "+15559990000", 1));
  CHECK(s.open_binding("+15551230001", "+15559990000").p == &p1);

  s.set_state(first, "inactive");  // inactive is still open
  CHECK(s.open_binding("+15551230001", "+15559990000").conv == &first);
  s.set_state(first, "closed");
  CHECK(s.open_binding("+15551230001", "+15559990000").conv == nullptr);

  auto& second = s.add(make_conversation(2));
  const auto& p2 = s.add_participant(second, sms("+15551230001", "+15559990000", 2));
  CHECK(s.open_binding("+15551230001", "+15559990000").p == &p2);
  // Both still list the customer, oldest first; the closed one too.
  const auto listed = s.participants_of(std::nullopt, std::string{"+15551230001"});
  REQUIRE(listed.size() == 2);
  CHECK(listed[0].p == &p1);
  CHECK(listed[1].p == &p2);

  s.remove(second);
  CHECK(s.open_binding("+15551230001", "+15559990000").conv == nullptr);
  CHECK(s.participants_of(std::nullopt, std::string{"+15551230001"}).size() == 1);

  auto& third = s.add(make_conversation(3));
  const auto& p3 = s.add_participant(third, sms("+15551230001", "+15559990000", 3));
  s.remove_participant(third, p3);
  CHECK(s.open_binding("+15551230001", "+15559990000").conv == nullptr);
  CHECK(s.participants_of(std::nullopt, std::string{"+15551230001"}).size() == 1);
}

TEST_CASE("Conversation store: timers fire in order, each once, among many conversations",
          "[twilio][emulator]") {
  conversation_store s;
  std::vector<conversation*> all;
  for (int i = 0; i < 1000; ++i) {
    auto& c = s.add(make_conversation(i));
    c.inactive_after = std::chrono::minutes{1 + i % 97};
    if (i % 3 == 0)
      c.closed_after = std::chrono::minutes{10 + i % 13};
    s.restart_timers(c, t0);
    all.push_back(&c);
  }
  // A message to #5 at 30 s restarts its timers; #6 is closed by hand.
  s.restart_timers(*all[5], t0 + 30s);
  s.set_state(*all[6], "closed");

  for (auto now = t0; now <= t0 + 2h; now += 17s) {
    s.fire_timers(now);
    for (auto* c : all) {
      INFO(c->sid << " at " << (now - t0).count());
      const bool closed_due = c->date_closed && *c->date_closed <= now;
      const bool inactive_due = c->date_inactive && *c->date_inactive <= now;
      if (c == all[6])
        CHECK(c->state == "closed");
      else if (closed_due)
        CHECK(c->state == "closed");
      else if (inactive_due)
        CHECK(c->state == "inactive");
      else
        CHECK(c->state == "active");
    }
  }
  CHECK(all[0]->updated == *all[0]->date_closed);  // 1 min inactive, then closed at 10 min
  CHECK(all[1]->updated == *all[1]->date_inactive);
  CHECK(all[5]->updated == t0 + 30s + 6min);
}

TEST_CASE("Conversation store: random changes, indexes answer as a scan of everything does",
          "[twilio][emulator]") {
  std::mt19937 rng{7};
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  conversation_store s;
  std::vector<std::pair<const conversation*, scanned_timers>> timers_model;
  const std::vector<std::string> addresses = {"+15550000001", "+15550000002", "+15550000003",
                                              "+15550000004"};
  const std::vector<std::string> proxies = {"+15559990000", "+15559990001"};
  auto now = t0;
  int serial = 0;

  auto nth = [&](int i) -> conversation& {
    auto it = s.all().begin();
    std::advance(it, i);
    return const_cast<conversation&>(*it);
  };
  for (int step = 0; step < 4000; ++step) {
    const int conversations = static_cast<int>(s.all().size());
    const int op = conversations == 0 ? 0 : pick(9);
    now += std::chrono::seconds{pick(90)};
    s.fire_timers(now);
    scan_fire(timers_model, now);
    if (op == 0) {
      std::optional<std::string> name;
      if (pick(2) == 0) {
        name = "lead-" + std::to_string(pick(30));
        if (s.find(*name) != nullptr)
          name.reset();
      }
      auto c = make_conversation(++serial, name);
      c.created = c.updated = now;
      auto& stored = s.add(std::move(c));
      if (pick(2) == 0) {
        stored.inactive_after = std::chrono::minutes{1 + pick(20)};
        stored.closed_after = std::chrono::minutes{10 + pick(30)};
        s.restart_timers(stored, now);
      }
      timers_model.push_back({&stored, {stored.state, stored.updated}});
      continue;
    }
    auto& c = nth(pick(conversations));
    auto model = std::find_if(timers_model.begin(), timers_model.end(),
                              [&](const auto& m) { return m.first == &c; });
    REQUIRE(model != timers_model.end());
    switch (op) {
      case 1:
        s.remove(c);
        timers_model.erase(model);
        break;
      case 2: {
        std::optional<std::string> name = "lead-" + std::to_string(pick(30));
        if (pick(4) == 0)
          name.reset();
        if (!name || s.find(*name) == nullptr)
          s.set_unique_name(c, name);
        break;
      }
      case 3:
        if (c.state != "closed") {
          const auto state = pick(3) == 0 ? "closed" : pick(2) == 0 ? "inactive" : "active";
          s.set_state(c, state);
          model->second.state = state;
        }
        break;
      case 4:  // a message: back to active, timers from now
        if (c.state == "inactive") {
          s.set_state(c, "active");
          model->second.state = "active";
        }
        s.restart_timers(c, now);
        break;
      case 5:
      case 6: {
        const auto& address = addresses[static_cast<std::size_t>(pick(4))];
        const auto& proxy = proxies[static_cast<std::size_t>(pick(2))];
        if (scan_binding(s, address, proxy) == nullptr)  // as POST .../Participants refuses
          s.add_participant(c, sms(address, proxy, ++serial));
        break;
      }
      case 7:
        if (!c.participants.empty()) {
          auto it = c.participants.begin();
          std::advance(it, pick(static_cast<int>(c.participants.size())));
          s.remove_participant(c, *it);
        }
        break;
      default: {
        participant p;
        p.sid = "MB" + std::to_string(++serial);
        p.identity = "agent-" + std::to_string(pick(3));
        s.add_participant(c, std::move(p));
      }
    }

    for (int n = 0; n < 30; ++n) {
      const auto name = "lead-" + std::to_string(n);
      REQUIRE(s.find(name) == scan_find(s, name));
    }
    for (const auto& c2 : s.all())
      REQUIRE(s.find(c2.sid) == &c2);
    REQUIRE(timers_model.size() == s.all().size());
    for (const auto& [conv, m] : timers_model) {
      REQUIRE(conv->state == m.state);
      REQUIRE(conv->updated == m.updated);
    }
    for (const auto& a : addresses) {
      for (const auto& p : proxies)
        REQUIRE(s.open_binding(a, p).p == scan_binding(s, a, p));
      const std::optional<std::string> identity = "agent-" + std::to_string(pick(3));
      const auto want = scan_participants(s, identity, a);
      const auto got = s.participants_of(identity, a);
      REQUIRE(got.size() == want.size());
      for (std::size_t i = 0; i < got.size(); ++i)
        REQUIRE(got[i].p == want[i]);
    }
  }
}
