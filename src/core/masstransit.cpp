#include "core/masstransit.hpp"

#include "core/event_codec_rules.hpp"
#include "core/json_path.hpp"
#include "core/media_type.hpp"
#include "core/time.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/parse_options.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <cctype>

namespace switchboard::core {

namespace json = boost::json;

namespace {

constexpr std::string_view masstransit_type = "application/vnd.masstransit+json";
constexpr std::string_view cloudevents_type = "application/cloudevents+json";

/// Unlabelled bodies and generic JSON labels are sniffed; anything else is not ours.
bool sniffable(const std::string& mt) {
  return mt.empty() || mt == "application/json" || mt == "text/json" ||
         (mt.size() > 5 && mt.compare(mt.size() - 5, 5, "+json") == 0);
}

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

std::string string_or_empty(const json::object& o, std::string_view key, std::string& error) {
  auto it = o.find(json::string_view(key.data(), key.size()));
  if (it == o.end() || it->value().is_null())
    return {};
  if (!it->value().is_string()) {
    error = "field '" + std::string(key) + "': must be a string, not " +
            json::serialize(it->value()).substr(0, 64);
    return {};
  }
  const auto& s = it->value().get_string();
  return std::string(s.data(), s.size());
}

std::string list(const std::vector<std::string>& items) {
  if (items.empty())
    return "none";
  std::string out;
  for (const auto& s : items)
    out += (out.empty() ? "" : ", ") + quoted(s);
  return out;
}

amqp_decode_result failure(std::string why) { return {std::nullopt, std::move(why)}; }

amqp_decode_result decode_masstransit(const json::object& env, const amqp_source_config& source,
                                      const codec_limits& limits) {
  std::string error;
  event ev;
  ev.id = string_or_empty(env, "messageId", error);
  if (!error.empty())
    return failure("MassTransit envelope: " + error + " (the message's GUID)");
  if (ev.id.empty())
    return failure(
        "MassTransit envelope: field 'messageId' is missing; it is the dedupe key, so every "
        "message needs one (MassTransit sets it when publishing)");

  // messageType: URNs, most specific first. A lone string is accepted too.
  std::vector<std::string> urns;
  auto mt = env.find("messageType");
  if (mt != env.end() && mt->value().is_string()) {
    urns.emplace_back(mt->value().get_string());
  } else if (mt != env.end() && mt->value().is_array()) {
    for (const auto& u : mt->value().get_array())
      if (u.is_string())
        urns.emplace_back(u.get_string());
  }
  if (urns.empty())
    return failure(
        "MassTransit envelope: field 'messageType' is missing or holds no URN strings; expected "
        "e.g. [\"urn:message:Crm.Events:ApplicationStatusChanged\"]");

  const amqp_message_mapping* mapping = nullptr;
  for (const auto& m : source.messages) {
    if (std::find(urns.begin(), urns.end(), m.message_type) != urns.end()) {
      mapping = &m;
      break;
    }
  }
  if (mapping == nullptr) {
    std::vector<std::string> configured;
    for (const auto& m : source.messages)
      configured.push_back(m.message_type);
    return failure("message type not mapped: messageType " + list(urns) + " matches none of " +
                   "the message types configured for source " + quoted(source.name) + " (" +
                   list(configured) + "); add a mapping to sources.amqp[].messages");
  }
  const std::string for_mapping = " (mapping for " + quoted(mapping->message_type) + ")";

  auto msg = env.find("message");
  if (msg == env.end() || !msg->value().is_object())
    return failure("MassTransit envelope: field 'message' must be a JSON object (the payload)" +
                   std::string(msg == env.end() ? ", but it is missing" : ""));
  const json::value& payload = msg->value();

  const json::value* id_value = find_path(payload, mapping->entity_id_field);
  if (id_value == nullptr)
    return failure("field 'message." + mapping->entity_id_field + "': is missing; it holds the " +
                   "entity id" + for_mapping);
  auto id_text = scalar_text(*id_value);
  if (!id_text || id_text->empty())
    return failure("field 'message." + mapping->entity_id_field + "': must be a non-empty " +
                   "string or integer (the entity id), not " +
                   json::serialize(*id_value).substr(0, 64) + for_mapping);

  if (!mapping->entity_version_field.empty()) {
    const json::value* v = find_path(payload, mapping->entity_version_field);
    const std::string where = "field 'message." + mapping->entity_version_field + "': ";
    if (v == nullptr)
      return failure(where + "is missing; it holds the entity version" + for_mapping);
    if (v->is_uint64() && v->get_uint64() <= max_entity_version)
      ev.entity_version = v->get_uint64();
    else if (v->is_int64() && v->get_int64() >= 0)
      ev.entity_version = static_cast<std::uint64_t>(v->get_int64());
    else
      return failure(where + "must be a non-negative integer of at most " +
                     std::to_string(max_entity_version) +
                     " (the entity version; the journal and the state store keep versions as "
                     "signed 64-bit integers), not " +
                     json::serialize(*v).substr(0, 64) + for_mapping);
  }

  ev.source = amqp_event_source(source);
  ev.type = mapping->event_type;
  ev.entity_kind = mapping->entity_kind;
  ev.entity_id = std::move(*id_text);
  ev.subject = ev.entity_kind + "/" + ev.entity_id;
  ev.correlation_id = string_or_empty(env, "correlationId", error);
  ev.causation_id = string_or_empty(env, "initiatorId", error);
  const std::string sent = string_or_empty(env, "sentTime", error);
  if (!error.empty())
    return failure("MassTransit envelope: " + error);
  if (!sent.empty()) {
    auto t = normalize_sent_time(sent);
    if (!t)
      return failure("MassTransit envelope: field 'sentTime': " + quoted(sent.substr(0, 64)) +
                     " is not an ISO 8601 timestamp such as 2026-11-23T14:00:00.1234567Z");
    ev.time = std::move(*t);
  }
  ev.data = payload.get_object();

  if (auto problem = validate_event(ev, limits))
    return failure("MassTransit message " + quoted(ev.id) + " maps to an invalid event: " +
                   problem->message() + " ('data' is the envelope's 'message')" + for_mapping);
  return {std::move(ev), {}};
}

}  // namespace

std::string amqp_event_source(const amqp_source_config& source) {
  return source.event_source.empty() ? "amqp/" + source.queue : source.event_source;
}

std::optional<std::string> normalize_sent_time(std::string_view text) {
  std::string t(text);
  rfc3339_fields f;
  auto problem = parse_rfc3339(t, f);
  if (problem == rfc3339_problem::zone_missing) {
    t += 'Z';  // MassTransit's times are UTC; an unspecified DateTime kind drops the `Z`
    problem = parse_rfc3339(t, f);
  }
  if (problem != rfc3339_problem::none)
    return std::nullopt;
  // Cut the fraction to microseconds (what the journal keeps anyway).
  auto dot = t.find('.', 19);
  if (dot != std::string::npos) {
    auto end = dot + 1;
    while (end < t.size() && std::isdigit(static_cast<unsigned char>(t[end])))
      ++end;
    if (end - dot - 1 > 6)
      t.erase(dot + 7, end - dot - 7);
  }
  return t;
}

amqp_decode_result decode_amqp_message(std::string_view body, std::string_view content_type,
                                       const amqp_source_config& source,
                                       const codec_limits& limits) {
  const auto mt = media_type(content_type);
  const std::string label =
      content_type.empty() ? "no content type" : "content type " + quoted(content_type);
  if (body.size() > limits.max_event_bytes)
    return failure("message body is " + std::to_string(body.size()) + " bytes, more than " +
                   "max_event_bytes (" + std::to_string(limits.max_event_bytes) +
                   "); send smaller messages or raise limits.max_event_bytes");
  if (mt == cloudevents_type) {
    auto r = decode_event(body, limits);
    if (!r)
      return failure("CloudEvents event: " + r.error.message());
    return {std::move(r.value), {}};
  }
  if (mt != masstransit_type && !sniffable(mt))
    return failure(label + " is not supported; send " + std::string(masstransit_type) + " or " +
                   std::string(cloudevents_type));

  // Level 1 is the envelope, so `message` (level 2) may hold max_depth levels.
  json::value v;
  json::error_code ec;
  std::size_t offset = 0;
  std::vector<codec::wide_integer> wide;
  codec::parse_json_checked(body, limits.max_depth + 1, v, ec, offset, wide);
  if (ec == json::error::too_deep)
    return failure("message body nests objects and arrays deeper than " +
                   std::to_string(limits.max_depth) + " levels below the envelope (max_depth); " +
                   "flatten the payload");
  if (ec)
    return failure("message body (" + label + ") is not valid JSON: " + ec.message());
  if (!v.is_object())
    return failure("message body (" + label + ") must be a JSON object (a MassTransit envelope " +
                   "or a CloudEvents event)");
  const auto& obj = v.get_object();
  // What is stored: the envelope's `message`, or all of a CloudEvents event. An integer there
  // beyond 64 bits would be stored as a rounded double; the parser made one already.
  auto wide_stored = [&](bool only_message) -> std::optional<std::string> {
    codec::open_containers scan(body);
    for (const auto& w : wide) {
      scan.advance_to(w.end);
      if (!only_message || (scan.frames().size() >= 2 && scan.frames()[0].key == "message"))
        return "field '" + scan.path(0) + "': " + codec::wide_integer_reason(w);
    }
    return std::nullopt;
  };
  if (mt == masstransit_type || obj.contains("messageType")) {
    auto r = decode_masstransit(obj, source, limits);
    if (r && !wide.empty())
      if (auto problem = wide_stored(true))
        return failure("MassTransit message " + quoted(r.value->id) + ": " + *problem);
    return r;
  }
  if (obj.contains("specversion")) {
    auto r = decode_event(v, limits);
    if (!r)
      return failure("CloudEvents event: " + r.error.message());
    if (auto problem = wide_stored(false))
      return failure("CloudEvents event: " + *problem);
    return {std::move(r.value), {}};
  }
  return failure("message body (" + label + ") is neither a MassTransit envelope (no " +
                 "'messageType') nor a CloudEvents event (no 'specversion')");
}

}  // namespace switchboard::core
