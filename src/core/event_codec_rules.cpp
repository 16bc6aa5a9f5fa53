// The CloudEvents codec's rules (event_codec_rules.hpp).

#include "core/event_codec_rules.hpp"

#include "core/time.hpp"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_stack.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::core::codec {

namespace json = boost::json;

// --- errors --------------------------------------------------------------------------------

decode_result failure(std::string field, std::string reason) {
  decode_result r;
  r.error = decode_error{std::move(field), std::move(reason)};
  return r;
}

decode_error error_at(std::string field, std::string reason) {
  return decode_error{std::move(field), std::move(reason)};
}

/// Cuts user input that goes into an error message, keeping whole UTF-8 sequences.
std::string shown(std::string_view s) {
  if (s.size() <= max_shown_bytes)
    return std::string(s);
  std::size_t n = max_shown_bytes;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80)
    --n;
  return std::string(s.substr(0, n)) + "...";
}

const char* a_kind(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null: return "null";
    case json::kind::bool_: return "a boolean";
    case json::kind::int64:
    case json::kind::uint64: return "an integer";
    case json::kind::double_: return "a number with a fraction or exponent";
    case json::kind::string: return "a string";
    case json::kind::array: return "an array";
    case json::kind::object: return "an object";
  }
  return "an unknown JSON value";
}

std::size_t saturating_add(std::size_t a, std::size_t b) {
  return a > std::numeric_limits<std::size_t>::max() - b ? std::numeric_limits<std::size_t>::max()
                                                         : a + b;
}

std::string too_big_reason(std::size_t limit) {
  return "serializes to more than " + std::to_string(limit) +
         " bytes (max_event_bytes); send a smaller payload";
}

// --- attribute names -----------------------------------------------------------------------

attr classify(std::string_view k) noexcept {
  switch (k.size()) {
    case 2:
      if (k == "id")
        return attr::id;
      break;
    case 4:
      if (k == "type")
        return attr::type;
      if (k == "time")
        return attr::time;
      if (k == "data")
        return attr::data;
      break;
    case 6:
      if (k == "source")
        return attr::source;
      break;
    case 7:
      if (k == "subject")
        return attr::subject;
      break;
    case 8:
      if (k == "entityid")
        return attr::entityid;
      break;
    case 10:
      if (k == "entitykind")
        return attr::entitykind;
      if (k == "dataschema")
        return attr::dataschema;
      break;
    case 11:
      if (k == "specversion")
        return attr::specversion;
      if (k == "causationid")
        return attr::causationid;
      if (k == "traceparent")
        return attr::traceparent;
      if (k == "data_base64")
        return attr::data_base64;
      break;
    case 13:
      if (k == "entityversion")
        return attr::entityversion;
      if (k == "correlationid")
        return attr::correlationid;
      break;
    case 15:
      if (k == "datacontenttype")
        return attr::datacontenttype;
      if (k == "journalsequence")
        return attr::journalsequence;
      break;
    default: break;
  }
  return attr::extension;
}

/// The event member behind a string attribute, or nullptr for the others.
std::string event::*string_member(attr a) noexcept {
  switch (a) {
    case attr::id: return &event::id;
    case attr::source: return &event::source;
    case attr::type: return &event::type;
    case attr::subject: return &event::subject;
    case attr::time: return &event::time;
    case attr::datacontenttype: return &event::datacontenttype;
    case attr::dataschema: return &event::dataschema;
    case attr::entitykind: return &event::entity_kind;
    case attr::entityid: return &event::entity_id;
    case attr::correlationid: return &event::correlation_id;
    case attr::causationid: return &event::causation_id;
    case attr::traceparent: return &event::traceparent;
    default: return nullptr;
  }
}

/// What a required attribute is, for "is required (...)" and "must not be empty (...)".
const char* required_hint(std::string_view name) noexcept {
  if (name == "id")
    return "a non-empty string; with source, the dedupe key";
  if (name == "source")
    return "a non-empty URI-reference naming the producer";
  if (name == "type")
    return "a non-empty string such as application.status_changed";
  if (name == "entitykind")
    return "a non-empty string naming the kind of entity, e.g. application";
  if (name == "entityid")
    return "a non-empty string naming the entity";
  return nullptr;
}

std::optional<std::string> extension_name_problem(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 20;
  for (char c : name)
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'));
  if (ok)
    return std::nullopt;
  std::string reason =
      "is not a valid extension attribute name: CloudEvents 1.0 names are 1 to 20 characters "
      "a-z or 0-9";
  // "entityId" or "entity_id" are almost always a misspelt switchboard attribute.
  std::string folded;
  for (char c : name.substr(0, 32)) {
    if (c >= 'A' && c <= 'Z')
      folded.push_back(static_cast<char>(c - 'A' + 'a'));
    else if (c != '_' && c != '-')
      folded.push_back(c);
  }
  if (folded != name && classify(folded) != attr::extension)
    reason += "; did you mean '" + folded + "'?";
  return reason;
}

// --- attribute formats ---------------------------------------------------------------------

constexpr const char* rfc3339_example =
    "an RFC 3339 timestamp such as 2026-11-23T14:00:00Z or 2026-11-23T14:00:00.123+01:00";

std::optional<std::string> time_problem(std::string_view s) {
  core::rfc3339_fields f;
  const auto problem = core::parse_rfc3339(s, f);
  auto out_of_range = [](const char* what, int v, const std::string& range) {
    return std::string("has ") + what + " " + std::to_string(v) + " out of range (" + range +
           "); must be " + rfc3339_example;
  };
  using p = core::rfc3339_problem;
  switch (problem) {
    case p::none: return std::nullopt;
    case p::format: return std::string("must be ") + rfc3339_example;
    case p::zone_missing:
      return std::string("must be ") + rfc3339_example +
             " (the time zone, Z or +hh:mm, is missing)";
    case p::month: return out_of_range("month", f.month, "01-12");
    case p::day:
      return out_of_range("day", f.day,
                          "01-" + std::to_string(core::days_in_month(f.year, f.month)));
    case p::hour: return out_of_range("hour", f.hour, "00-23");
    case p::minute: return out_of_range("minute", f.minute, "00-59");
    case p::second: return out_of_range("second", f.second, "00-60");
    case p::offset_hour: return out_of_range("offset hour", f.offset_hour, "00-23");
    case p::offset_minute: return out_of_range("offset minute", f.offset_minute, "00-59");
  }
  return std::string("must be ") + rfc3339_example;
}

std::optional<std::string> traceparent_problem(std::string_view s) {
  const char* format_reason =
      "must be a W3C traceparent 00-<32 lowercase hex trace-id>-<16 lowercase hex parent-id>-<2 "
      "lowercase hex flags>, e.g. 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  auto hex = [&](std::size_t pos, std::size_t n, bool& all_zero) {
    all_zero = true;
    for (std::size_t i = pos; i < pos + n; ++i) {
      const char c = s[i];
      if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
        return false;
      all_zero = all_zero && c == '0';
    }
    return true;
  };
  bool zero_trace = false, zero_parent = false, unused = false;
  if (s.size() != 55 || s.substr(0, 3) != "00-" || s[35] != '-' || s[52] != '-' ||
      !hex(3, 32, zero_trace) || !hex(36, 16, zero_parent) || !hex(53, 2, unused))
    return format_reason;
  if (zero_trace)
    return std::string("has an all-zero trace-id, which W3C trace context forbids; ") +
           format_reason;
  if (zero_parent)
    return std::string("has an all-zero parent-id, which W3C trace context forbids; ") +
           format_reason;
  return std::nullopt;
}

std::optional<std::string> content_type_problem(std::string_view s) {
  // Any media type: `type/subtype`, parameters after ';' (RFC 6838 token characters).
  std::string_view media = s.substr(0, s.find(';'));
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t'))
    media.remove_suffix(1);
  const auto slash = media.find('/');
  auto token = [](std::string_view t) {
    if (t.empty())
      return false;
    for (const char c : t)
      if (!(std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '!' || c == '#' || c == '$' ||
            c == '&' || c == '-' || c == '^' || c == '_' || c == '.' || c == '+'))
        return false;
    return true;
  };
  if (slash != std::string_view::npos && token(media.substr(0, slash)) &&
      token(media.substr(slash + 1)))
    return std::nullopt;
  return "must be a media type such as application/json or text/plain, got '" + shown(s) + "'";
}

std::optional<std::string> base64_problem(std::string_view s, const codec_limits& limits) {
  if (s.size() > limits.max_event_bytes)
    return too_big_reason(limits.max_event_bytes);
  std::size_t pad = 0;
  for (const char c : s) {
    const bool alphabet = std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '+' || c == '/';
    if (c == '=') {
      ++pad;
    } else if (!alphabet || pad > 0) {
      return "must be base64 text (RFC 4648: A-Z a-z 0-9 + / and '=' padding at the end)";
    }
  }
  if (pad > 2 || s.size() % 4 != 0)
    return "must be base64 text whose length is a multiple of 4 (padded with '=')";
  return std::nullopt;
}

/// Checks a context attribute's string value; `name` is its wire name.
std::optional<decode_error> string_attribute_problem(attr a, std::string_view name,
                                                     std::string_view s,
                                                     const codec_limits& limits) {
  if (s.size() > limits.max_attribute_bytes)
    return error_at(std::string(name), "is " + std::to_string(s.size()) + " bytes long; at most " +
                                           std::to_string(limits.max_attribute_bytes) +
                                           " bytes are allowed (max_attribute_bytes)");
  if (s.empty()) {
    if (const char* hint = required_hint(name))
      return error_at(std::string(name), std::string("must not be empty (") + hint + ")");
    return error_at(std::string(name), "must not be empty; leave the attribute out instead");
  }
  std::optional<std::string> problem;
  if (a == attr::time)
    problem = time_problem(s);
  else if (a == attr::traceparent)
    problem = traceparent_problem(s);
  else if (a == attr::datacontenttype)
    problem = content_type_problem(s);
  if (problem)
    return error_at(std::string(name), std::move(*problem));
  return std::nullopt;
}

// --- sizes as Boost.JSON serializes them -----------------------------------------------------

std::size_t json_string_size(std::string_view s) noexcept {
  std::size_t n = s.size() + 2;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\' || c == '\b' || c == '\t' || c == '\n' || c == '\f' || c == '\r')
      n += 1;
    else if (c < 0x20)
      n += 5;
  }
  return n;
}

std::size_t decimal_size(std::uint64_t v) noexcept {
  std::size_t n = 1;
  while (v >= 10) {
    v /= 10;
    ++n;
  }
  return n;
}

std::size_t scalar_size(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null: return 4;
    case json::kind::bool_: return v.get_bool() ? 4 : 5;
    case json::kind::int64: {
      const std::int64_t i = v.get_int64();
      return i < 0 ? 1 + decimal_size(0 - static_cast<std::uint64_t>(i))
                   : decimal_size(static_cast<std::uint64_t>(i));
    }
    case json::kind::uint64: return decimal_size(v.get_uint64());
    case json::kind::double_: return json::serialize(v).size();
    case json::kind::string: return json_string_size(v.get_string());
    default: return 0;  // containers are measured by walk_tree
  }
}

// --- the payload walk ----------------------------------------------------------------------

void append_path_key(std::string& path, std::string_view key) {
  bool plain = !key.empty() && key.size() <= max_shown_bytes;
  for (char c : key)
    plain = plain && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '_' || c == '-');
  if (plain) {
    path += '.';
    path += key;
  } else {
    path += "[\"";
    path += shown(key);
    path += "\"]";
  }
}

/// JSON has no Infinity or NaN: a number beyond double range parses as infinity, and stored
/// so it would serialize as `Infinity`, which no JSON parser (the journal's included) reads.
std::string non_finite_reason(double d) {
  if (std::isnan(d))
    return "is NaN, which JSON cannot carry; send a number or null";
  return std::string("is a number beyond the range of a double (") + (d < 0 ? "-" : "") +
         "1.7976931348623157e308 is the largest magnitude); send a smaller number, or the value "
         "as a string";
}

/// One open container during the walk and the child being visited in it.
struct walk_frame {
  const json::object* obj;
  const json::array* arr;
  std::size_t index;
};

std::string frames_path(std::string_view root, const std::vector<walk_frame>& frames) {
  std::string path(root);
  for (const walk_frame& f : frames) {
    if (f.obj)
      append_path_key(path, (f.obj->begin() + f.index)->key());
    else
      path += "[" + std::to_string(f.index) + "]";
  }
  return path;
}

/// Checks the string lengths (values and member names) and the nesting depth of `root`
/// (level 1) and, if `size` is given, adds its serialized size and stops once it passes
/// `limits.max_event_bytes`. Iterative, so a deep value built in code cannot overflow the
/// stack.
std::optional<decode_error> walk_tree(const json::object& root, std::string_view root_name,
                                      const codec_limits& limits, std::size_t* size) {
  // Reused per thread: the walk is not re-entrant, and this keeps it free of allocations.
  thread_local std::vector<walk_frame> frames;
  frames.clear();
  frames.push_back({&root, nullptr, 0});
  std::size_t total = size ? *size : 0;
  auto open = [&](std::size_t n) { total += 2 + (n > 0 ? n - 1 : 0); };
  open(root.size());

  while (!frames.empty()) {
    walk_frame& f = frames.back();
    const std::size_t n = f.obj ? f.obj->size() : f.arr->size();
    if (f.index == n) {
      frames.pop_back();
      if (!frames.empty())
        ++frames.back().index;
      continue;
    }
    const json::value* child;
    if (f.obj) {
      const json::key_value_pair& kv = *(f.obj->begin() + f.index);
      if (kv.key().size() > limits.max_string_bytes)
        return error_at(frames_path(root_name, frames),
                        "has a member name of " + std::to_string(kv.key().size()) +
                            " bytes; at most " + std::to_string(limits.max_string_bytes) +
                            " bytes are allowed (max_string_bytes)");
      if (size)
        total += json_string_size(kv.key()) + 1;
      child = &kv.value();
    } else {
      child = &(*f.arr)[f.index];
    }

    if (child->is_object() || child->is_array()) {
      if (frames.size() + 1 > limits.max_depth)
        return error_at(frames_path(root_name, frames),
                        "nests objects and arrays deeper than " + std::to_string(limits.max_depth) +
                            " levels (max_depth; '" + std::string(root_name) +
                            "' itself is level 1); flatten the payload");
      if (child->is_object()) {
        open(child->get_object().size());
        frames.push_back({&child->get_object(), nullptr, 0});
      } else {
        open(child->get_array().size());
        frames.push_back({nullptr, &child->get_array(), 0});
      }
    } else {
      if (child->is_string() && child->get_string().size() > limits.max_string_bytes)
        return error_at(frames_path(root_name, frames),
                        "is a string of " + std::to_string(child->get_string().size()) +
                            " bytes; at most " + std::to_string(limits.max_string_bytes) +
                            " bytes are allowed (max_string_bytes)");
      if (child->is_double() && !std::isfinite(child->get_double()))
        return error_at(frames_path(root_name, frames), non_finite_reason(child->get_double()));
      if (size)
        total += scalar_size(*child);
      ++f.index;
    }
    if (size && total > limits.max_event_bytes)
      return error_at("$", too_big_reason(limits.max_event_bytes));
  }
  if (size)
    *size = total;
  return std::nullopt;
}

std::optional<decode_error> extension_value_problem(std::string_view name, const json::value& v,
                                                    const codec_limits& limits) {
  switch (v.kind()) {
    case json::kind::string:
      if (v.get_string().size() > limits.max_string_bytes)
        return error_at(std::string(name),
                        "is a string of " + std::to_string(v.get_string().size()) +
                            " bytes; at most " + std::to_string(limits.max_string_bytes) +
                            " bytes are allowed (max_string_bytes)");
      return std::nullopt;
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::bool_: return std::nullopt;
    default:
      return error_at(std::string(name),
                      std::string("is an extension attribute and must be a string, an integer or "
                                  "a boolean, got ") +
                          a_kind(v) + "; put structured values in 'data'");
  }
}

// --- parsing -------------------------------------------------------------------------------

namespace {

/// Builds the value as boost::json::parser's own handler does, and notes the integer literals
/// that the parser had to turn into doubles (more digits than 64 bits hold).
class checked_handler {
public:
  static constexpr std::size_t max_object_size = json::object::max_size();
  static constexpr std::size_t max_array_size = json::array::max_size();
  static constexpr std::size_t max_key_size = json::string::max_size();
  static constexpr std::size_t max_string_size = json::string::max_size();

  checked_handler(unsigned char* scratch, std::size_t size, std::string_view text,
                  std::vector<wide_integer>& wide)
      : st(json::storage_ptr(), scratch, size), text_(text), wide_(wide) {}

  json::value_stack st;

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_object_begin(json::error_code&) { return true; }
  bool on_object_end(std::size_t n, json::error_code&) {
    st.push_object(n);
    return true;
  }
  bool on_array_begin(json::error_code&) { return true; }
  bool on_array_end(std::size_t n, json::error_code&) {
    st.push_array(n);
    return true;
  }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    st.push_chars(s);
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code&) {
    st.push_key(s);
    return true;
  }
  bool on_string_part(json::string_view s, std::size_t, json::error_code&) {
    st.push_chars(s);
    return true;
  }
  bool on_string(json::string_view s, std::size_t, json::error_code&) {
    st.push_string(s);
    return true;
  }
  bool on_number_part(json::string_view s, json::error_code&) {
    head_.append(s.data(), s.size());  // only when a number spans two writes
    return true;
  }
  bool on_int64(std::int64_t i, json::string_view, json::error_code&) {
    head_.clear();
    st.push_int64(i);
    return true;
  }
  bool on_uint64(std::uint64_t u, json::string_view, json::error_code&) {
    head_.clear();
    st.push_uint64(u);
    return true;
  }
  bool on_double(double d, json::string_view s, json::error_code&) {
    // A literal without fraction or exponent is an integer; the parser makes a double of it
    // only when it does not fit 64 bits, so it has 20 characters at least (18446744073709551616,
    // -9223372036854775809): shorter doubles, nearly all, pass on one comparison.
    if (head_.size() + s.size() >= 20 && d != 0 && !has_fraction_or_exponent(head_) &&
        !has_fraction_or_exponent(s)) {
      wide_integer w;
      const char* text_end = text_.data() + text_.size();
      w.end = s.data() >= text_.data() && s.data() + s.size() <= text_end
                  ? static_cast<std::size_t>(s.data() + s.size() - text_.data())
                  : text_.size();
      w.literal = shown(head_ + std::string(s.data(), s.size()));
      wide_.push_back(std::move(w));
    }
    head_.clear();
    st.push_double(d);
    return true;
  }
  bool on_bool(bool b, json::error_code&) {
    st.push_bool(b);
    return true;
  }
  bool on_null(json::error_code&) {
    st.push_null();
    return true;
  }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

private:
  static bool has_fraction_or_exponent(std::string_view s) noexcept {
    return s.find_first_of(".eE") != std::string_view::npos;
  }

  std::string_view text_;
  std::vector<wide_integer>& wide_;
  std::string head_;
};

}  // namespace

bool parse_json_checked(std::string_view text, std::size_t max_depth, json::value& out,
                        json::error_code& ec, std::size_t& offset,
                        std::vector<wide_integer>& wide) {
  json::parse_options opt;
  opt.max_depth = max_depth;
  unsigned char scratch[4096];  // the value stack's working space for typical events
  json::basic_parser<checked_handler> p(opt, scratch, sizeof scratch, text, wide);
  p.handler().st.reset();
  offset = p.write_some(false, text.data(), text.size(), ec);
  if (!ec && offset < text.size())
    ec = json::error::extra_data;
  if (!ec && !p.done())
    ec = json::error::incomplete;
  if (ec)
    return false;
  out = p.handler().st.release();
  return true;
}

std::string wide_integer_reason(const wide_integer& w) {
  return "is the integer " + w.literal +
         ", which has more digits than 64 bits hold (-9223372036854775808 to "
         "18446744073709551615), so it would lose digits as a double; send it as a string to "
         "keep every digit, or with an exponent (e.g. 1.5e30) if a rounded number will do";
}

void open_containers::advance_to(std::size_t offset) {
  offset = std::min(offset, text_.size());
  for (; pos_ < offset; ++pos_) {
    const char c = text_[pos_];
    if (in_string_) {
      if (escaped_)
        escaped_ = false;
      else if (c == '\\')
        escaped_ = true;
      else if (c == '"') {
        in_string_ = false;
        if (capturing_)
          frames_.back().key = std::move(captured_);
        capturing_ = false;
        continue;
      }
      if (capturing_ && captured_.size() <= max_shown_bytes * 4)
        captured_.push_back(c);
      continue;
    }
    switch (c) {
      case '"':
        in_string_ = true;
        // A string inside an object, before its ':', is a member name.
        capturing_ = !frames_.empty() && !frames_.back().is_array && frames_.back().index == 0;
        captured_.clear();
        break;
      case '{': frames_.push_back({false, 0, {}}); break;
      case '[': frames_.push_back({true, 0, {}}); break;
      case '}':
      case ']':
        if (!frames_.empty())
          frames_.pop_back();
        break;
      case ',':
        if (!frames_.empty())
          frames_.back().index = frames_.back().is_array ? frames_.back().index + 1 : 0;
        break;
      case ':':
        if (!frames_.empty())
          frames_.back().index = 1;
        break;
      default: break;
    }
  }
}

std::string open_containers::path(std::size_t first, std::string_view root) const {
  std::string path(root);
  for (std::size_t i = first; i < frames_.size(); ++i) {
    if (frames_[i].is_array)
      path += "[" + std::to_string(frames_[i].index) + "]";
    else if (path.empty() && !frames_[i].key.empty())
      path = shown(frames_[i].key);
    else
      append_path_key(path, frames_[i].key);
  }
  return path;
}

}  // namespace switchboard::core::codec
