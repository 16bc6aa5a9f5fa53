#pragma once

// Decoding one AMQP message body into a switchboard event: MassTransit's JSON envelope
// (mapped by the source's `messages` configuration) or a plain CloudEvents event. Pure: the
// AMQP adapter calls it per delivery and sends what fails to the error queue with the reason.

#include "switchboard/config.hpp"
#include "switchboard/event.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace switchboard::core {

/// An event, or why the message cannot become one (a sentence naming the field and the fix).
struct amqp_decode_result {
  std::optional<event> value;
  std::string error;
  explicit operator bool() const noexcept { return value.has_value(); }
};

/// Decodes one message consumed from `source.queue`.
///
/// MassTransit: `messageId` -> id (the dedupe key), the first mapping whose `message_type`
/// equals any URN of `messageType` -> type and entity kind, the entity id and version from
/// `message` at the mapping's dotted paths, `message` -> data, `sentTime` -> time,
/// `correlationId` -> correlationid, `initiatorId` -> causationid, and source =
/// `source.event_source` or "amqp/" + queue. CloudEvents bodies go through `decode_event`.
/// Either way the result passes `validate_event(ev, limits)`.
amqp_decode_result decode_amqp_message(std::string_view body, std::string_view content_type,
                                       const amqp_source_config& source,
                                       const codec_limits& limits);

/// The CloudEvents `source` of events mapped from `source`'s messages.
std::string amqp_event_source(const amqp_source_config& source);

/// MassTransit writes `sentTime` with 7 fraction digits and, for unspecified DateTime kinds,
/// without a zone. Returns an RFC 3339 text the journal accepts (fraction cut to 6 digits,
/// `Z` added when the zone is missing), or nothing if `text` is no timestamp at all.
std::optional<std::string> normalize_sent_time(std::string_view text);

}  // namespace switchboard::core
