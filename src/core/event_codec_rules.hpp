#pragma once

// The CloudEvents codec's rules, shared by decoding, encoding and validation (event_codec.cpp):
// attribute names and formats, the sizes Boost.JSON serializes to, and the payload walk that
// checks lengths and depth. Every problem names the field and what to fix. Internal.

#include "switchboard/event.hpp"

#include <boost/json/error.hpp>
#include <boost/json/value.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::core::codec {

constexpr std::size_t max_shown_bytes = 64;  // longest piece of user input quoted in an error

enum class attr {
  specversion,
  id,
  source,
  type,
  subject,
  time,
  datacontenttype,
  dataschema,
  entitykind,
  entityid,
  entityversion,
  correlationid,
  causationid,
  traceparent,
  journalsequence,
  data,
  data_base64,
  extension
};

decode_result failure(std::string field, std::string reason);
decode_error error_at(std::string field, std::string reason);
/// Cuts user input that goes into an error message, keeping whole UTF-8 sequences.
std::string shown(std::string_view s);
/// "null", "a boolean", "a number", ...: what a JSON value is, for messages.
const char* a_kind(const boost::json::value& v);
std::size_t saturating_add(std::size_t a, std::size_t b);
std::string too_big_reason(std::size_t limit);

attr classify(std::string_view k) noexcept;
/// The event member behind a string attribute, or nullptr for the others.
std::string event::*string_member(attr a) noexcept;
/// What a required attribute is, for "is required (...)" and "must not be empty (...)".
const char* required_hint(std::string_view name) noexcept;
std::optional<std::string> extension_name_problem(std::string_view name);
/// Checks a context attribute's string value; `name` is its wire name.
std::optional<decode_error> string_attribute_problem(attr a, std::string_view name,
                                                     std::string_view s,
                                                     const codec_limits& limits);

/// Sizes as Boost.JSON serializes them.
std::size_t json_string_size(std::string_view s) noexcept;
std::size_t decimal_size(std::uint64_t v) noexcept;
std::size_t scalar_size(const boost::json::value& v);

void append_path_key(std::string& path, std::string_view key);
/// Why `s` is not padded base64 text (RFC 4648), or nullopt.
std::optional<std::string> base64_problem(std::string_view s, const codec_limits& limits);

/// Checks the string lengths (values and member names) and the nesting depth of `root`
/// (level 1) and, if `size` is given, adds its serialized size and stops once it passes
/// `limits.max_event_bytes`. Iterative, so a deep value built in code cannot overflow the stack.
std::optional<decode_error> walk_tree(const boost::json::object& root, std::string_view root_name,
                                      const codec_limits& limits, std::size_t* size);
std::optional<decode_error> extension_value_problem(std::string_view name,
                                                    const boost::json::value& v,
                                                    const codec_limits& limits);

// --- parsing -------------------------------------------------------------------------------

/// An integer literal with more digits than 64 bits hold: Boost.JSON turns it into a double,
/// silently losing digits, so the codec rejects it. `end` is its end offset in the text.
struct wide_integer {
  std::size_t end = 0;
  std::string literal;  ///< cut for messages (shown())
};

/// Parses `text` as boost::json::parser does, with at most `max_depth` levels of nesting,
/// and appends each integer literal beyond 64 bits to `wide`, in document order. On failure,
/// `offset` is where the parser stopped.
bool parse_json_checked(std::string_view text, std::size_t max_depth, boost::json::value& out,
                        boost::json::error_code& ec, std::size_t& offset,
                        std::vector<wide_integer>& wide);

/// "is the integer 1234...: more digits than ..." for a rejected wide integer.
std::string wide_integer_reason(const wide_integer& w);

/// Replays (valid) JSON text from its start, tracking the containers open at a point, to name
/// the path of a place the parser reported by offset. `advance_to` only moves forward, so
/// naming many places in one document costs one pass over it.
class open_containers {
public:
  struct frame {
    bool is_array = false;
    std::size_t index = 0;  ///< arrays: the element; objects: 0 = before ':', 1 = in the value
    std::string key;        ///< objects: the current member's name
  };

  explicit open_containers(std::string_view text) : text_(text) {}
  void advance_to(std::size_t offset);
  /// Open containers, outermost (the document) first.
  const std::vector<frame>& frames() const noexcept { return frames_; }
  /// The path of the current place below frame `first`, under `root` ("data.items[2].n");
  /// with an empty `root`, a leading member name stands alone ("items[2].n").
  std::string path(std::size_t first, std::string_view root = {}) const;

private:
  std::string_view text_;
  std::size_t pos_ = 0;
  std::vector<frame> frames_;
  bool in_string_ = false, escaped_ = false, capturing_ = false;
  std::string captured_;
};

}  // namespace switchboard::core::codec
