#include "adapters/http/ingest.hpp"

#include "core/event_codec_rules.hpp"
#include "core/media_type.hpp"

#include <openssl/evp.h>

#include <boost/json.hpp>

#include <charconv>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>

namespace switchboard::adapters::http {

namespace json = boost::json;
using core::media_type;

namespace {

constexpr std::string_view batch_type = "application/cloudevents-batch+json";
constexpr std::string_view structured_type = "application/cloudevents+json";
constexpr std::string_view json_type = "application/json";
constexpr int retry_after_seconds = 5;

std::string lower(std::string_view s) {
  std::string out{s};
  for (char& c : out)
    if (c >= 'A' && c <= 'Z')
      c = static_cast<char>(c - 'A' + 'a');
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

bool is_json_media(const std::string& media) {
  return media == json_type ||
         (media.size() > 5 && media.compare(media.size() - 5, 5, "+json") == 0 &&
          media.find('/') != std::string::npos);
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/// CloudEvents binary mode percent-encodes header values outside printable ASCII.
std::optional<std::string> percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    const int hi = i + 1 < s.size() ? hex_digit(s[i + 1]) : -1;
    const int lo = i + 2 < s.size() ? hex_digit(s[i + 2]) : -1;
    if (hi < 0 || lo < 0)
      return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

/// RFC 4648 base64 with padding (OpenSSL's encoder).
std::string base64_of(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1Fu;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0Fu;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07u;
    } else {
      return false;
    }
    if (i + n >= s.size())
      return false;
    for (std::size_t k = 1; k <= n; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80)
        return false;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    const std::uint32_t min = n == 1 ? 0x80 : n == 2 ? 0x800 : 0x10000;
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

std::optional<std::uint64_t> parse_unsigned(std::string_view s) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc{} || end != s.data() + s.size())
    return std::nullopt;
  return v;
}

/// The `id` of a JSON object if it is a string short enough to echo back, else "".
std::string id_of(const json::value& v, const codec_limits& limits) {
  if (!v.is_object())
    return {};
  auto* id = v.get_object().if_contains("id");
  if (id == nullptr || !id->is_string() || id->get_string().size() > limits.max_attribute_bytes)
    return {};
  return std::string{id->get_string()};
}

/// Parses untrusted JSON without throwing; `depth` bounds the nesting.
std::optional<json::value> parse_bounded(std::string_view text, std::size_t depth) {
  json::parse_options opt;
  opt.max_depth = depth;
  json::error_code ec;
  auto v = json::parse(text, ec, json::storage_ptr(), opt);
  if (ec)
    return std::nullopt;
  return v;
}

/// "field 'x': reason", or "the event <reason>" for the event as a whole (`$`).
std::string describe(const decode_error& e, std::string_view what = "the event") {
  if (e.field == "$")
    return std::string{what} + " " + e.reason;
  return e.message();
}

ingest_item decode_structured(std::string_view body, const codec_limits& limits) {
  ingest_item item;
  auto r = decode_event(body, limits);
  if (r) {
    item.id = r.value->id;
    item.value = std::move(r.value);
    return item;
  }
  item.reason = describe(r.error);
  if (body.size() <= limits.max_event_bytes)
    if (auto v = parse_bounded(body, limits.max_depth + 1))
      item.id = id_of(*v, limits);
  return item;
}

ingest_item decode_binary(std::string_view content_type, const header_list& headers,
                          std::string_view body, const codec_limits& limits) {
  ingest_item item;
  json::object attributes;
  std::string problem;
  auto reject = [&](std::string why) {
    if (problem.empty())
      problem = std::move(why);
  };
  for (const auto& [raw_name, raw_value] : headers) {
    auto name = lower(raw_name);
    if (name.size() <= 3 || name.compare(0, 3, "ce-") != 0)
      continue;
    const auto attribute = name.substr(3);
    const auto where = "header '" + name + "'";
    if (attribute == "data" || attribute == "data_base64" || attribute == "datacontenttype") {
      reject(where + ": is not allowed in binary mode; the request body is the event's data " +
             "and Content-Type its datacontenttype");
      continue;
    }
    auto value = percent_decode(trim(raw_value));
    if (!value) {
      reject(where + ": has a malformed percent-encoding; write each escaped byte as %XX");
      continue;
    }
    if (!valid_utf8(*value)) {
      reject(where + ": is not valid UTF-8 (after percent-decoding)");
      continue;
    }
    if (attributes.contains(attribute)) {
      reject(where + ": is given more than once; send each ce- header once");
      continue;
    }
    if (attribute == "id" && value->size() <= limits.max_attribute_bytes)
      item.id = *value;
    if (attribute == "entityversion" || attribute == "journalsequence") {
      auto number = parse_unsigned(*value);
      if (!number) {
        reject(where + ": must be a non-negative integer, got '" + value->substr(0, 64) + "'");
        continue;
      }
      attributes[attribute] = *number;
    } else {
      attributes[attribute] = *value;
    }
  }
  if (!problem.empty()) {
    item.reason = std::move(problem);
    return item;
  }
  attributes["datacontenttype"] = trim(content_type);
  if (body.size() > limits.max_event_bytes) {
    item.reason = "field 'data': the body is " + std::to_string(body.size()) + " bytes; at most " +
                  std::to_string(limits.max_event_bytes) +
                  " bytes are allowed in one event (max_event_bytes); send a smaller payload";
    return item;
  }
  if (!is_json_media(media_type(content_type))) {
    // Any other media type: text that is valid UTF-8 is kept as a string, anything else as
    // base64 (CloudEvents' data_base64), byte for byte.
    if (!body.empty()) {
      if (media_type(content_type).rfind("text/", 0) == 0 && valid_utf8(std::string{body}))
        attributes["data"] = json::string(body);
      else
        attributes["data_base64"] = base64_of(body);
    }
    auto r = decode_event(json::value(std::move(attributes)), limits);
    if (!r) {
      item.reason = describe(r.error);
      if (r.error.field != "$" && r.error.field.compare(0, 4, "data") != 0)
        item.reason += " (binary mode: header 'ce-" + r.error.field + "')";
      return item;
    }
    item.value = std::move(r.value);
    return item;
  }
  if (trim(body).empty()) {
    // No body: an event without data (CloudEvents 1.0 allows it).
    auto r = decode_event(json::value(std::move(attributes)), limits);
    if (!r) {
      item.reason = describe(r.error);
      if (r.error.field != "$")
        item.reason += " (binary mode: header 'ce-" + r.error.field + "')";
      return item;
    }
    item.value = std::move(r.value);
    return item;
  }
  json::value data;
  json::error_code ec;
  std::size_t offset = 0;
  std::vector<core::codec::wide_integer> wide;
  if (!core::codec::parse_json_checked(body, limits.max_depth, data, ec, offset, wide)) {
    item.reason = ec == json::error::too_deep
                      ? "field 'data': nests objects and arrays deeper than " +
                            std::to_string(limits.max_depth) + " levels (max_depth); flatten it"
                      : "field 'data': the request body is not valid JSON: " + ec.message();
    return item;
  }
  attributes["data"] = std::move(data);
  auto r = decode_event(json::value(std::move(attributes)), limits);
  if (!r) {
    item.reason = describe(r.error);
    if (r.error.field != "$" && r.error.field.compare(0, 4, "data") != 0)
      item.reason += " (binary mode: header 'ce-" + r.error.field + "')";
    return item;
  }
  if (!wide.empty()) {
    core::codec::open_containers scan(body);
    scan.advance_to(wide.front().end);
    item.reason = decode_error{scan.path(0, "data"), core::codec::wide_integer_reason(wide.front())}
                      .message();
    return item;
  }
  item.value = std::move(r.value);
  return item;
}

void decode_batch(ingest_request& request, std::string_view body, const codec_limits& limits) {
  request.batch = true;
  auto batch = decode_event_batch(body, limits);
  if (batch.document_error) {
    request.error_status = 400;
    request.error = describe(*batch.document_error, "the batch") +
                    "; nothing was stored: fix the document and send it again";
    return;
  }
  if (batch.items.empty()) {
    request.error_status = 400;
    request.error = "the batch is an empty JSON array, so there is nothing to store; send 1 to " +
                    std::to_string(limits.max_batch_events) +
                    " events in it (max_batch_events), or do not send the request";
    return;
  }
  std::optional<json::value> raw;  // parsed again only to name rejected items by their id
  bool parsed = false;
  request.items.reserve(batch.items.size());
  for (std::size_t i = 0; i < batch.items.size(); ++i) {
    auto& r = batch.items[i];
    ingest_item item;
    if (r) {
      item.id = r.value->id;
      item.value = std::move(r.value);
    } else {
      item.reason = "item [" + std::to_string(i) + "]: " + describe(r.error);
      if (!parsed) {
        raw = parse_bounded(body, limits.max_depth + 2);
        parsed = true;
      }
      if (raw && raw->is_array() && i < raw->get_array().size())
        item.id = id_of(raw->get_array()[i], limits);
    }
    request.items.push_back(std::move(item));
  }
}

/// The result of one item in the answer.
json::object result_json(const ingest_item& item, const std::optional<publish_receipt>& stored) {
  json::object out;
  if (item.id.empty())
    out["id"] = nullptr;
  else
    out["id"] = item.id;
  if (stored) {
    out["status"] = stored->status == publish_receipt::outcome::accepted ? "accepted" : "duplicate";
    out["sequence"] = stored->sequence;
  } else {
    out["status"] = "rejected";
    out["reason"] = item.reason;
  }
  return out;
}

std::string error_body(const std::string& error) {
  return json::serialize(json::object{{"error", error}});
}

}  // namespace

ingest_request decode_ingest(std::string_view content_type, const header_list& headers,
                             std::string_view body, const codec_limits& limits) {
  ingest_request request;
  const auto media = media_type(content_type);
  bool binary = false;
  for (const auto& [name, value] : headers)
    if (lower(name) == "ce-specversion")
      binary = true;

  if (media == batch_type) {
    decode_batch(request, body, limits);
  } else if (media == structured_type || (media == json_type && !binary)) {
    request.items.push_back(decode_structured(body, limits));
  } else if (binary) {
    request.items.push_back(decode_binary(content_type, headers, body, limits));
  } else {
    request.error_status = 415;
    request.error =
        (media.empty() ? std::string{"the request has no Content-Type"}
                       : "Content-Type '" + std::string{trim(content_type)} + "' is not accepted") +
        "; send one event as application/cloudevents+json (structured mode), a batch as "
        "application/cloudevents-batch+json, or ce-* headers with the data as the body, of any "
        "Content-Type (binary mode)";
  }
  return request;
}

ingest_answer ingest(ingest_request request, const publish_hook& publish,
                     std::chrono::milliseconds timeout) {
  if (request.error_status != 0)
    return {request.error_status, error_body(request.error), std::nullopt};

  // Every callback writes into this; it outlives a timed-out request.
  struct progress {
    std::mutex mu;
    std::condition_variable cv;
    std::size_t remaining = 0;
    std::vector<std::optional<publish_receipt>> stored;
    std::string first_error;
  };
  auto state = std::make_shared<progress>();
  state->stored.resize(request.items.size());
  std::size_t valid = 0;
  for (const auto& item : request.items)
    valid += item.value ? 1 : 0;
  state->remaining = valid;

  // All appends are queued back to back, so the journal writer commits them together.
  for (std::size_t i = 0; i < request.items.size(); ++i) {
    auto& item = request.items[i];
    if (!item.value)
      continue;
    publish(std::move(*item.value), [state, i](const publish_receipt* r, const std::string& error) {
      std::lock_guard<std::mutex> guard{state->mu};
      if (r != nullptr)
        state->stored[i] = *r;
      else if (state->first_error.empty())
        state->first_error = error;
      if (--state->remaining == 0)
        state->cv.notify_all();
    });
  }

  std::unique_lock<std::mutex> lock{state->mu};
  if (!state->cv.wait_for(lock, timeout, [&] { return state->remaining == 0; }))
    return {503,
            error_body("the journal did not confirm the events within " +
                       std::to_string(timeout.count()) +
                       " ms; nothing in this request is acknowledged: send it again after "
                       "Retry-After (events stored meanwhile are answered as duplicates)"),
            retry_after_seconds};
  if (!state->first_error.empty())
    return {503,
            error_body(state->first_error +
                       "; nothing in this request is acknowledged: send it again after "
                       "Retry-After (events stored meanwhile are answered as duplicates)"),
            retry_after_seconds};

  json::array results;
  results.reserve(request.items.size());
  std::size_t rejected = 0;
  for (std::size_t i = 0; i < request.items.size(); ++i) {
    rejected += state->stored[i] ? 0 : 1;
    results.push_back(result_json(request.items[i], state->stored[i]));
  }
  lock.unlock();

  json::object answer;
  int status = 200;
  if (rejected > 0 && rejected < request.items.size()) {
    status = 207;
  } else if (rejected > 0) {
    status = 400;
    answer["error"] = request.batch
                          ? "every event of the batch was rejected (" + std::to_string(rejected) +
                                "); nothing was stored: see each item's reason in results, fix "
                                "them and send again"
                          : "the event was rejected: " + request.items.front().reason +
                                "; nothing was stored: fix it and send it again";
  }
  answer["results"] = std::move(results);
  return {status, json::serialize(answer), std::nullopt};
}

boost::json::array journal_page_json(const journal_page& page) {
  json::array out;
  out.reserve(page.events.size() + page.unreadable.size());
  auto u = page.unreadable.begin();
  auto add_unreadable_before = [&](std::uint64_t seq) {
    for (; u != page.unreadable.end() && u->sequence < seq; ++u)
      out.push_back(json::object{{"journalsequence", u->sequence},
                                 {"unreadable", true},
                                 {"reason", u->reason},
                                 {"source", u->source},
                                 {"id", u->id},
                                 {"type", u->type},
                                 {"entitykind", u->entity_kind},
                                 {"entityid", u->entity_id}});
  };
  for (const auto& ev : page.events) {
    add_unreadable_before(ev.sequence.value_or(0));
    out.push_back(to_json(ev));
  }
  add_unreadable_before(std::numeric_limits<std::uint64_t>::max());
  return out;
}

}  // namespace switchboard::adapters::http
