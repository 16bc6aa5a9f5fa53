#pragma once

/// @file switchboard/event.hpp
/// The event envelope: CloudEvents 1.0 in JSON with switchboard's extension attributes
/// (since 0.1). See DESIGN.md, "The event envelope on the wire".

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include "switchboard/export.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard {

/// One event as switchboard stores and routes it.
///
/// Wire names (CloudEvents attributes) are given beside each member. Extension attributes
/// that switchboard does not know are kept in `extensions` and written back unchanged.
struct event {
  std::string id;               ///< `id`: with `source`, the dedupe key. Required.
  std::string source;           ///< `source`: URI-reference of the producer. Required.
  std::string type;             ///< `type`, e.g. `application.status_changed`. Required.
  std::string subject;          ///< `subject`, optional.
  std::string time;             ///< `time`, RFC 3339; set on ingest when absent.
  std::string datacontenttype;  ///< `datacontenttype`; JSON only (absent means JSON).
  std::string dataschema;       ///< `dataschema`, optional URI.
  /// `entitykind`, e.g. `application`, and `entityid`, e.g. `A-1001`: the entity the event is
  /// about, which orders its events and keys its state. Required where a job needs them (the
  /// daemon: when entity-state propagation is configured, see codec_limits::require_entity);
  /// optional otherwise since 0.5, and then an event is its own entity for ordering.
  std::string entity_kind;
  std::string entity_id;
  std::optional<std::uint64_t> entity_version;  ///< `entityversion`: a stale version never wins;
                                                ///< 0 to `max_entity_version`.
  std::string correlation_id;  ///< `correlationid`: carried on every log line about the event.
  std::string causation_id;    ///< `causationid`: the id of the event that caused this one.
  std::string traceparent;     ///< `traceparent`: W3C trace context.
  std::optional<std::uint64_t> sequence;  ///< `journalsequence`: set once the journal stored it.
  /// `data` when it is a JSON object: the payload the jobs read. Empty when the event has none
  /// (it is then stored and sent as `{}`) or when its data is in one of the two below.
  boost::json::object data;
  /// `data` when it is another JSON value: a string, an array, a number, true, false or null
  /// (since 0.5).
  std::optional<boost::json::value> data_value;
  /// `data_base64`: binary data as base64 text, kept verbatim (since 0.5).
  std::optional<std::string> data_base64;
  boost::json::object extensions;  ///< other extension attributes, kept verbatim.
};

/// The largest `entityversion` accepted (since 0.4): the journal and the state store keep
/// versions as signed 64-bit integers, so larger ones are refused rather than clamped.
constexpr std::uint64_t max_entity_version = 9223372036854775807u;  // 2^63 - 1

/// Events travel between actors as shared immutable pointers: routing to N consumers copies
/// a pointer, never the payload.
using event_ptr = std::shared_ptr<const event>;

/// Limits the codec enforces on untrusted input. Every limit has a safe default.
struct codec_limits {
  std::size_t max_event_bytes = 256 * 1024;  ///< whole serialized event
  std::size_t max_depth = 32;                ///< nesting of objects/arrays inside `data`
  std::size_t max_string_bytes = 64 * 1024;  ///< any one string value in `data` or extensions
  std::size_t max_attribute_bytes = 1024;    ///< each context attribute (id, type, source, ...)
  std::size_t max_batch_events = 1000;       ///< events in one `application/cloudevents-batch+json`
  std::size_t max_batch_bytes = 4 * 1024 * 1024;  ///< whole batch document
  /// `entitykind` and `entityid` are required where a job keys on them: the runtime requires
  /// them of published and ingested events when this is true (the default) and entity-state
  /// propagation is configured; otherwise any CloudEvent is taken. `decode_event` and
  /// `validate_event` take it as given. Since 0.5.
  bool require_entity = true;
};

/// Why an input was rejected: the field (a JSON path such as `data.items[3].name`, or `$` for
/// the document itself) and the reason, phrased so that a producer knows what to fix.
struct decode_error {
  std::string field;
  std::string reason;
  /// "field 'entityid': is required (a non-empty string naming the entity)"
  SWITCHBOARD_API std::string message() const;
};

/// The outcome of decoding one event: either an event or the first problem found.
struct decode_result {
  std::optional<event> value;
  decode_error error;
  explicit operator bool() const noexcept { return value.has_value(); }
};

/// Decodes one event in CloudEvents 1.0 structured JSON mode. Numbers are held to what the
/// journal stores exactly (since 0.4): an integer literal beyond 64 bits, a number beyond
/// double range (`1e400`) and an `entityversion` above `max_entity_version` are rejected,
/// naming the field.
SWITCHBOARD_API decode_result decode_event(std::string_view json, const codec_limits& limits = {});

/// Same as the `std::string_view` overload; without it a string literal or `const char*`
/// would be ambiguous between the text and the `boost::json::value` overloads.
SWITCHBOARD_API decode_result decode_event(const char* json, const codec_limits& limits = {});

/// Decodes one event from an already parsed JSON value (e.g. one item of a batch). The
/// size limit is checked against the value's serialized size.
SWITCHBOARD_API decode_result decode_event(const boost::json::value& json,
                                           const codec_limits& limits = {});

/// Decodes a batch (`application/cloudevents-batch+json`: a JSON array of events). Each item
/// is decoded on its own, so one bad item does not reject the others. If the document itself
/// is unusable (not JSON, not an array, too big, too many items), the result holds one error
/// whose field is `$` and no items.
struct batch_decode_result {
  std::vector<decode_result> items;
  std::optional<decode_error> document_error;
};
SWITCHBOARD_API batch_decode_result decode_event_batch(std::string_view json,
                                                       const codec_limits& limits = {});

/// The CloudEvents JSON object of an event (structured mode). `encode_event(decode(x))`
/// reproduces every attribute of x.
SWITCHBOARD_API boost::json::object to_json(const event& ev);

/// `to_json` serialized to a string.
SWITCHBOARD_API std::string encode_event(const event& ev);

/// Checks the members a valid event must have (the same rules as the decoder), for events
/// built in code rather than decoded: NaN and infinite doubles in `data` are refused too
/// (since 0.4). Returns the first problem, or nothing.
SWITCHBOARD_API std::optional<decode_error> validate_event(const event& ev,
                                                           const codec_limits& limits = {});

/// Current UTC time as RFC 3339 with millisecond precision, e.g. `2026-11-23T14:00:00.123Z`.
SWITCHBOARD_API std::string rfc3339_now();

}  // namespace switchboard
