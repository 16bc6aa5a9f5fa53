#include "jobs/propagation/state_write.hpp"

#include <boost/json/value.hpp>

#include <optional>
#include <utility>

namespace switchboard::actors {

using ports::twilio::call_result;
using ports::twilio::outcome;

namespace json = boost::json;
using target_kind = target_config::kind;

const std::string* seen_revisions::find(const std::string& object) const {
  auto it = revisions_.find(object);
  return it == revisions_.end() ? nullptr : &it->second;
}

void seen_revisions::remember(const std::string& object, std::string revision) {
  if (revisions_.size() >= capacity_ && revisions_.find(object) == revisions_.end())
    revisions_.clear();  // a cache: losing it costs one unconditional write per object
  revisions_[object] = std::move(revision);
}

namespace {

core::write_result result_of(const call_result& r) {
  switch (r.kind) {
    case outcome::ok: return core::write_result::ok();
    case outcome::retryable: return core::write_result::retry_in(r.retry_after);
    case outcome::ambiguous:
      // Safe to repeat without looking first: the write sets the whole state. A 503 names a delay.
      return r.retry_after.count() > 0 ? core::write_result::retry_in(r.retry_after)
                                       : core::write_result::backoff();
    case outcome::conflict: return core::write_result::backoff();
    case outcome::terminal: return core::write_result::give_up();
  }
  return core::write_result::give_up();
}

std::string failure_text(const call_result& r) {
  // The client's message names the request, the status and Twilio's code.
  return r.message.empty() ? std::string{"no answer (status "} + std::to_string(r.status) + ")"
                           : r.message;
}

}  // namespace

state_write_result write_state(ports::twilio::twilio_api& twilio, const core::target_object& object,
                               const json::object& payload, seen_revisions& seen) {
  state_write_result out;
  const auto name = object.describe();
  const json::value data(payload);

  auto count = [&](const call_result& r, bool writes) {
    if (writes)
      ++out.writes;
    if (r.status == 429)
      ++out.rate_limited;
    if (r.kind == outcome::conflict)
      ++out.conflicts;
  };
  auto if_match = [&]() -> std::optional<std::string> {
    if (const auto* revision = seen.find(name))
      return *revision;
    return std::nullopt;
  };
  auto succeeded = [&](const call_result& r) {
    if (auto revision = r.revision(); !revision.empty())
      seen.remember(name, std::move(revision));
    else
      seen.forget(name);
    out.result = core::write_result::ok();
    return out;
  };
  auto failed = [&](const call_result& r) {
    if (r.kind != outcome::retryable)
      seen.forget(name);  // it may have changed (an ambiguous write may have happened)
    out.result = result_of(r);
    out.error = name + ": " + failure_text(r);
    return out;
  };

  // Each round is one update, plus the reads and creates it calls for; a round ends in a
  // result or in another round (a conflict resolved). Bounded, so a fight with another writer
  // over one object turns into a backoff rather than a loop.
  constexpr int rounds = 4;
  for (int round = 0; round < rounds; ++round) {
    call_result r;
    switch (object.type) {
      case target_kind::sync_document:
        r = twilio.update_document(object.service, object.document, data, if_match());
        break;
      case target_kind::sync_map_item:
        r = twilio.update_map_item(object.service, object.map, object.key, data, if_match());
        break;
      case target_kind::taskrouter_worker:
        r = twilio.update_worker_attributes(object.workspace, object.worker, data, if_match());
        break;
    }
    count(r, true);
    if (r)
      return succeeded(r);

    if (r.kind == outcome::conflict) {
      // Someone else wrote it since we last saw it: read its revision and set our state on it.
      seen.forget(name);
      call_result current;
      switch (object.type) {
        case target_kind::sync_document:
          current = twilio.fetch_document(object.service, object.document);
          break;
        case target_kind::sync_map_item:
          current = twilio.fetch_map_item(object.service, object.map, object.key);
          break;
        case target_kind::taskrouter_worker:
          current = twilio.fetch_worker(object.workspace, object.worker);
          break;
      }
      count(current, false);
      if (current) {
        if (auto revision = current.revision(); !revision.empty())
          seen.remember(name, std::move(revision));
        continue;
      }
      if (current.status == 404)
        continue;  // deleted meanwhile: the next update finds it missing and creates it
      return failed(current);
    }

    if (r.kind == outcome::terminal && r.status == 404 &&
        object.type != target_kind::taskrouter_worker) {
      seen.forget(name);
      const auto created =
          object.type == target_kind::sync_document
              ? twilio.create_document(object.service, object.document, data)
              : twilio.create_map_item(object.service, object.map, object.key, data);
      count(created, true);
      if (created)
        return succeeded(created);
      if (created.kind == outcome::conflict)
        continue;  // created by someone meanwhile (54301, 54208): update it
      if (object.type == target_kind::sync_map_item && created.status == 404) {
        // The map itself is missing: create it (409 = created meanwhile), then the item.
        const auto map = twilio.create_map(object.service, object.map);
        count(map, true);
        if (map || map.kind == outcome::conflict)
          continue;
        return failed(map);
      }
      return failed(created);
    }
    return failed(r);
  }
  out.result = core::write_result::backoff();
  out.error = name + ": the object kept changing under the write (" + std::to_string(rounds) +
              " conflicts in a row); another writer may be setting it";
  return out;
}

}  // namespace switchboard::actors
