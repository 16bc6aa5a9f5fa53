/// @file event_codec.cpp
/// The CloudEvents 1.0 JSON codec (structured mode and batches) with switchboard's limits.
/// Every rejection names the field (a JSON path, or `$` for the document) and what to fix.

#include "switchboard/event.hpp"

#include "core/event_codec_rules.hpp"
#include "core/time.hpp"

#include <boost/json/error.hpp>
#include <boost/json/parser.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/serializer.hpp>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace switchboard {

namespace {

namespace json = boost::json;
using namespace core::codec;

// --- decoding ------------------------------------------------------------------------------

/// "must be a non-negative integer (0 to MAX[, why])"; entity versions stop at 2^63-1.
std::string unsigned_expected(std::uint64_t max) {
  return "must be a non-negative integer (0 to " + std::to_string(max) +
         (max == max_entity_version
              ? ": the journal and the state store keep entity versions as signed 64-bit "
                "integers)"
              : ")");
}

std::optional<decode_error> take_unsigned(std::string_view name, const json::value& v,
                                          std::uint64_t max, std::optional<std::uint64_t>& out) {
  if (v.is_uint64() || (v.is_int64() && v.get_int64() >= 0)) {
    const std::uint64_t u =
        v.is_uint64() ? v.get_uint64() : static_cast<std::uint64_t>(v.get_int64());
    if (u > max)
      return error_at(std::string(name), unsigned_expected(max) + ", got " + std::to_string(u));
    out = u;
    return std::nullopt;
  }
  if (v.is_int64())
    return error_at(std::string(name),
                    unsigned_expected(max) + ", got " + std::to_string(v.get_int64()));
  if (v.is_double()) {
    char shortest[32];
    const auto end = std::to_chars(shortest, shortest + sizeof shortest, v.get_double()).ptr;
    return error_at(std::string(name),
                    unsigned_expected(max) + ", got " + std::string(shortest, end));
  }
  return error_at(std::string(name), unsigned_expected(max) + ", got " + a_kind(v));
}

/// Decodes the members of one event object. With a mutable object, `data` and extension
/// values are moved out rather than copied. With `count_size`, the serialized size is
/// measured along the way (the caller had no text to measure).
template <class Object>
decode_result decode_members(Object& obj, const codec_limits& limits, bool count_size) {
  constexpr bool movable = !std::is_const_v<Object>;
  decode_result out;
  event& ev = out.value.emplace();
  bool have_specversion = false;
  bool have_data = false;
  std::size_t size = 2 + (obj.size() > 0 ? obj.size() - 1 : 0);

  for (auto& kv : obj) {
    const std::string_view key = kv.key();
    auto& v = kv.value();
    const attr a = classify(key);
    if (count_size)
      size += json_string_size(key) + 1;

    if (std::string event::*member = string_member(a)) {
      if (!v.is_string())
        return failure(std::string(key), std::string("must be a string, got ") + a_kind(v));
      const std::string_view s = v.get_string();
      if (auto problem = string_attribute_problem(a, key, s, limits))
        return failure(std::move(problem->field), std::move(problem->reason));
      (ev.*member).assign(s.data(), s.size());
      if (count_size)
        size += json_string_size(s);
    } else {
      switch (a) {
        case attr::specversion:
          if (!v.is_string())
            return failure("specversion",
                           std::string("must be the string \"1.0\", got ") + a_kind(v));
          if (v.get_string() != "1.0")
            return failure("specversion",
                           "must be \"1.0\" (the CloudEvents version switchboard "
                           "accepts), got \"" +
                               shown(v.get_string()) + "\"");
          have_specversion = true;
          if (count_size)
            size += 5;
          break;
        case attr::entityversion:
        case attr::journalsequence:
          if (auto problem = a == attr::entityversion
                                 ? take_unsigned(key, v, max_entity_version, ev.entity_version)
                                 : take_unsigned(key, v, std::numeric_limits<std::uint64_t>::max(),
                                                 ev.sequence))
            return failure(std::move(problem->field), std::move(problem->reason));
          if (count_size)
            size += scalar_size(v);
          break;
        case attr::data:
          if (have_data)
            return failure("data", "and data_base64 are both present; send one of them");
          if (v.is_object()) {
            if (auto problem =
                    walk_tree(v.get_object(), "data", limits, count_size ? &size : nullptr))
              return failure(std::move(problem->field), std::move(problem->reason));
            if constexpr (movable)
              ev.data = std::move(v.get_object());
            else
              ev.data = v.get_object();
          } else {
            // Any other JSON value: checked as the one member of an object.
            json::object wrapped;
            wrapped.emplace("data", v);
            if (auto problem = walk_tree(wrapped, "$", limits, count_size ? &size : nullptr))
              return failure(
                  problem->field.rfind("$.", 0) == 0 ? problem->field.substr(2) : problem->field,
                  std::move(problem->reason));
            if constexpr (movable)
              ev.data_value = std::move(v);
            else
              ev.data_value = v;
          }
          have_data = true;
          break;
        case attr::data_base64:
          if (have_data)
            return failure("data_base64", "and data are both present; send one of them");
          if (!v.is_string())
            return failure("data_base64",
                           std::string("must be a string of base64 text, got ") + a_kind(v));
          if (auto problem = base64_problem(v.get_string(), limits))
            return failure("data_base64", std::move(*problem));
          if (count_size)
            size += v.get_string().size() + 2;
          ev.data_base64 = std::string{v.get_string()};
          have_data = true;
          break;
        default: {  // an extension attribute
          if (auto problem = extension_name_problem(key))
            return failure(shown(key), std::move(*problem));
          if (auto problem = extension_value_problem(key, v, limits))
            return failure(std::move(problem->field), std::move(problem->reason));
          if (count_size)
            size += scalar_size(v);
          if constexpr (movable)
            ev.extensions.emplace(key, std::move(v));
          else
            ev.extensions.emplace(key, v);
          break;
        }
      }
    }
    if (count_size && size > limits.max_event_bytes)
      return failure("$", too_big_reason(limits.max_event_bytes));
  }

  if (!have_specversion)
    return failure("specversion", "is required and must be \"1.0\"");
  for (const attr a : {attr::id, attr::source, attr::type, attr::entitykind, attr::entityid}) {
    if ((a == attr::entitykind || a == attr::entityid) && !limits.require_entity)
      continue;
    if ((ev.*string_member(a)).empty()) {
      const char* name = a == attr::id           ? "id"
                         : a == attr::source     ? "source"
                         : a == attr::type       ? "type"
                         : a == attr::entitykind ? "entitykind"
                                                 : "entityid";
      return failure(name, std::string("is required (") + required_hint(name) +
                               (a == attr::entitykind || a == attr::entityid
                                    ? "; entity-state propagation keys state by entity)"
                                    : ")"));
    }
  }
  (void)have_data;  // data is optional (CloudEvents 1.0): an event without it has `data: {}`
  return out;
}

template <class Value>
decode_result decode_value(Value& v, const codec_limits& limits, bool count_size) {
  if (!v.is_object())
    return failure("$", std::string("must be a JSON object (one CloudEvent in structured mode), "
                                    "got ") +
                            a_kind(v));
  return decode_members(v.get_object(), limits, count_size);
}

// --- parsing -------------------------------------------------------------------------------

std::string depth_reason(std::size_t max_depth) {
  return "nests objects and arrays deeper than " + std::to_string(max_depth) +
         " levels (max_depth; 'data' itself is level 1); flatten the payload";
}

std::string syntax_reason(const json::error_code& ec, std::size_t offset) {
  return "is not valid JSON: " + ec.message() + " at byte " + std::to_string(offset);
}

}  // namespace

// --- public API ----------------------------------------------------------------------------

std::string decode_error::message() const { return "field '" + field + "': " + reason; }

decode_result decode_event(std::string_view text, const codec_limits& limits) {
  if (text.size() > limits.max_event_bytes)
    return failure("$", "is " + std::to_string(text.size()) + " bytes; at most " +
                            std::to_string(limits.max_event_bytes) +
                            " bytes are allowed (max_event_bytes)");
  json::value v;
  json::error_code ec;
  std::size_t offset = 0;
  std::vector<wide_integer> wide;
  // Level 1 is the event object, so `data` (level 2) may hold max_depth levels.
  if (!parse_json_checked(text, saturating_add(limits.max_depth, 1), v, ec, offset, wide)) {
    if (ec != json::error::too_deep)
      return failure("$", syntax_reason(ec, offset));
    open_containers scan(text);
    scan.advance_to(offset);
    if (scan.frames().empty() || scan.frames().front().is_array)
      return failure("$",
                     "must be a JSON object (one CloudEvent in structured mode), got an "
                     "array");
    return failure(scan.path(0), depth_reason(limits.max_depth));
  }
  auto r = decode_value(v, limits, false);
  if (r && !wide.empty()) {
    open_containers scan(text);
    scan.advance_to(wide.front().end);
    return failure(scan.path(0), wide_integer_reason(wide.front()));
  }
  return r;
}

decode_result decode_event(const char* text, const codec_limits& limits) {
  return decode_event(std::string_view(text), limits);
}

decode_result decode_event(const boost::json::value& v, const codec_limits& limits) {
  return decode_value(v, limits, true);
}

batch_decode_result decode_event_batch(std::string_view text, const codec_limits& limits) {
  batch_decode_result result;
  auto document_error = [&](std::string reason) {
    result.document_error = decode_error{"$", std::move(reason)};
    return std::move(result);
  };
  if (text.size() > limits.max_batch_bytes)
    return document_error("is " + std::to_string(text.size()) + " bytes; at most " +
                          std::to_string(limits.max_batch_bytes) +
                          " bytes are allowed in one batch (max_batch_bytes)");
  json::value v;
  json::error_code ec;
  std::size_t offset = 0;
  std::vector<wide_integer> wide;
  // Level 1 is the batch array, level 2 an event, level 3 its `data`.
  if (!parse_json_checked(text, saturating_add(limits.max_depth, 2), v, ec, offset, wide)) {
    if (ec != json::error::too_deep)
      return document_error(syntax_reason(ec, offset));
    // The parser cannot skip one item, so a too-deep item makes the document unusable.
    open_containers scan(text);
    scan.advance_to(offset);
    const auto& frames = scan.frames();
    if (frames.size() < 2 || !frames.front().is_array)
      return document_error(
          "must be a JSON array of events (application/cloudevents-batch+json), "
          "and this document nests too deep to parse");
    return document_error("cannot be parsed: item [" + std::to_string(frames.front().index) +
                          "] at '" + scan.path(1) + "' " + depth_reason(limits.max_depth));
  }
  if (!v.is_array())
    return document_error(std::string("must be a JSON array of events "
                                      "(application/cloudevents-batch+json), got ") +
                          a_kind(v));
  json::array& items = v.get_array();
  if (items.size() > limits.max_batch_events)
    return document_error("holds " + std::to_string(items.size()) + " events; at most " +
                          std::to_string(limits.max_batch_events) +
                          " are allowed in one batch (max_batch_events); split the batch");
  result.items.reserve(items.size());
  for (json::value& item : items)
    result.items.push_back(decode_value(item, limits, true));
  // Wide integers reject their own item only, named by one pass over the text.
  open_containers scan(text);
  for (const wide_integer& w : wide) {
    scan.advance_to(w.end);
    const auto& frames = scan.frames();
    if (frames.size() < 2 || !frames.front().is_array)
      continue;  // not inside an item (cannot happen in an array of objects)
    const std::size_t i = frames.front().index;
    if (i < result.items.size() && result.items[i])
      result.items[i] = failure(scan.path(1), wide_integer_reason(w));
  }
  return result;
}

namespace {

/// Calls `f(name, string_view)` or `f(name, uint64)` for each context attribute present, in
/// wire order; `to_json`, `encode_event` and the size check share it so they agree.
template <class F>
void for_each_attribute(const event& ev, F&& f) {
  using sv = std::string_view;
  f(sv("specversion"), sv("1.0"));
  f(sv("id"), sv(ev.id));
  f(sv("source"), sv(ev.source));
  f(sv("type"), sv(ev.type));
  auto optional = [&](sv name, const std::string& s) {
    if (!s.empty())
      f(name, sv(s));
  };
  optional("subject", ev.subject);
  optional("time", ev.time);
  optional("datacontenttype", ev.datacontenttype);
  optional("dataschema", ev.dataschema);
  optional("entitykind", ev.entity_kind);
  optional("entityid", ev.entity_id);
  if (ev.entity_version)
    f(sv("entityversion"), *ev.entity_version);
  optional("correlationid", ev.correlation_id);
  optional("causationid", ev.causation_id);
  optional("traceparent", ev.traceparent);
  if (ev.sequence)
    f(sv("journalsequence"), *ev.sequence);
}

/// Extensions whose names collide with a known attribute are never written: the event's
/// members are the single source of truth for those.
bool writable_extension(std::string_view name) noexcept {
  return classify(name) == attr::extension;
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  std::size_t run = 0;  // start of the current run of characters that need no escape
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    out.append(s.data() + run, i - run);
    run = i + 1;
    out.push_back('\\');
    switch (c) {
      case '"': out.push_back('"'); break;
      case '\\': out.push_back('\\'); break;
      case '\b': out.push_back('b'); break;
      case '\t': out.push_back('t'); break;
      case '\n': out.push_back('n'); break;
      case '\f': out.push_back('f'); break;
      case '\r': out.push_back('r'); break;
      default:
        out.append("u00");
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 15]);
    }
  }
  out.append(s.data() + run, s.size() - run);
  out.push_back('"');
}

template <class T>
void append_serialized(std::string& out, json::serializer& sr, const T* v) {
  sr.reset(v);
  while (!sr.done()) {
    const std::size_t old = out.size();
    out.resize(old + 4096);
    const std::string_view part = sr.read(&out[old], 4096);
    out.resize(old + part.size());
  }
}

}  // namespace

boost::json::object to_json(const event& ev) {
  json::object obj;
  obj.reserve(16 + ev.extensions.size());
  for_each_attribute(ev, [&](std::string_view name, auto v) { obj.emplace(name, v); });
  for (const auto& kv : ev.extensions)
    if (writable_extension(kv.key()))
      obj.emplace(kv.key(), kv.value());
  if (ev.data_base64)
    obj.emplace("data_base64", *ev.data_base64);
  else if (ev.data_value)
    obj.emplace("data", *ev.data_value);
  else
    obj.emplace("data", ev.data);
  return obj;
}

std::string encode_event(const event& ev) {
  std::string out;
  out.reserve(512);
  out.push_back('{');
  auto key = [&](std::string_view name) {
    if (out.size() > 1)
      out.push_back(',');
    append_json_string(out, name);
    out.push_back(':');
  };
  for_each_attribute(ev, [&](std::string_view name, auto v) {
    key(name);
    if constexpr (std::is_same_v<decltype(v), std::string_view>) {
      append_json_string(out, v);
    } else {
      char digits[24];
      const auto end = std::to_chars(digits, digits + sizeof digits, v).ptr;
      out.append(digits, static_cast<std::size_t>(end - digits));
    }
  });
  json::serializer sr;
  for (const auto& kv : ev.extensions) {
    if (!writable_extension(kv.key()))
      continue;
    key(kv.key());
    append_serialized(out, sr, &kv.value());
  }
  if (ev.data_base64) {
    key("data_base64");
    append_json_string(out, *ev.data_base64);
  } else {
    key("data");
    if (ev.data_value)
      append_serialized(out, sr, &*ev.data_value);
    else
      append_serialized(out, sr, &ev.data);
  }
  out.push_back('}');
  return out;
}

std::optional<decode_error> validate_event(const event& ev, const codec_limits& limits) {
  std::size_t size = 2;
  std::size_t members = 0;
  std::optional<decode_error> problem;
  for_each_attribute(ev, [&](std::string_view name, auto v) {
    ++members;
    size += json_string_size(name) + 1;
    if constexpr (std::is_same_v<decltype(v), std::string_view>) {
      size += json_string_size(v);
      if (problem || name == "specversion")
        return;
      if (v.empty() && required_hint(name) &&
          (limits.require_entity || (name != "entitykind" && name != "entityid")))
        problem =
            error_at(std::string(name), std::string("is required (") + required_hint(name) + ")");
      else
        problem = string_attribute_problem(classify(name), name, v, limits);
    } else {
      size += decimal_size(v);
      if (!problem && name == "entityversion" && v > max_entity_version)
        problem = error_at("entityversion",
                           unsigned_expected(max_entity_version) + ", got " + std::to_string(v));
    }
  });
  if (problem)
    return problem;
  if (limits.require_entity)
    for (const char* name : {"entitykind", "entityid"})
      if ((name[6] == 'k' ? ev.entity_kind : ev.entity_id).empty())
        return error_at(name, std::string("is required (") + required_hint(name) + ")");
  if (ev.data_base64 && ev.data_value)
    return error_at("data", "and data_base64 are both set; set one of them");
  if (ev.data_base64)
    if (auto bad = base64_problem(*ev.data_base64, limits))
      return error_at("data_base64", std::move(*bad));
  for (const auto& kv : ev.extensions) {
    const std::string_view name = kv.key();
    if (!writable_extension(name))
      return error_at(shown(name),
                      "is a CloudEvents or switchboard attribute, not an extension; "
                      "set the event's own member instead");
    if (auto bad_name = extension_name_problem(name))
      return error_at(shown(name), std::move(*bad_name));
    if (auto bad_value = extension_value_problem(name, kv.value(), limits))
      return bad_value;
    ++members;
    size += json_string_size(name) + 1 + scalar_size(kv.value());
  }
  ++members;
  size += json_string_size("data") + 1 + (members - 1);  // member names, ':' and ','
  if (size > limits.max_event_bytes)
    return error_at("$", too_big_reason(limits.max_event_bytes));
  if (ev.data_base64)
    return size + ev.data_base64->size() > limits.max_event_bytes
               ? std::optional<decode_error>(error_at("$", too_big_reason(limits.max_event_bytes)))
               : std::nullopt;
  if (ev.data_value) {
    json::object wrapped;
    wrapped.emplace("data", *ev.data_value);
    return walk_tree(wrapped, "$", limits, &size);
  }
  return walk_tree(ev.data, "data", limits, &size);
}

std::string rfc3339_now() {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  const std::time_t secs = system_clock::to_time_t(now);
  std::tm utc{};
  gmtime_r(&secs, &utc);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(ms));
  return buf;
}

}  // namespace switchboard
