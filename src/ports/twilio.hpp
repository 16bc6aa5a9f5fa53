#pragma once

// The Twilio REST calls switchboard makes, as a port: the vocabulary of a call's answer
// (`call_result`, whose `outcome` says what the caller may do next) and `twilio_api`, the
// interface jobs call. adapters/twilio/client implements it over HTTP (Twilio's hosts or the
// emulator); a test may implement it with a fake. Implementations never retry: retry and
// reconciliation policy lives with the caller.

#include <boost/json.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace switchboard::ports::twilio {

/// What a caller may do after a call. Every failure falls in exactly one class.
enum class outcome {
  /// 2xx: Twilio did it; `body` holds its answer (null for 204 No Content).
  ok,
  /// Twilio did not do it, or the call only read: send the same request again after
  /// `retry_after`. 429 (Retry-After honoured; Twilio documents it as not applied), a
  /// connection that could not be opened (nothing was sent), and any failure of a GET (a read
  /// changes nothing).
  retryable,
  /// A write that may or may not have happened: no answer (read timeout, connection reset after
  /// sending), any 5xx, 503 included (Twilio documents none as not applied), or a 2xx whose body
  /// is not JSON. Look at Twilio's state (fetch the object, list the messages) before writing
  /// again, after `retry_after` (a 503's Retry-After or the default; 0 if the answer named none).
  ambiguous,
  /// 409 or 412: the object is not in the state the request assumed (stale If-Match, the key or
  /// unique name or SMS binding already exists). `code` says which; `current_revision` carries
  /// the object's revision when Twilio's answer names it.
  conflict,
  /// Any other 4xx (bad input, not found, bad credentials) or a configuration failure (TLS
  /// certificates): sending it again will not help. `code` and `message` say why.
  terminal,
};

inline const char* to_string(outcome o) noexcept {
  switch (o) {
    case outcome::ok: return "ok";
    case outcome::retryable: return "retryable";
    case outcome::ambiguous: return "ambiguous";
    case outcome::conflict: return "conflict";
    case outcome::terminal: return "terminal";
  }
  return "unknown";
}

/// The answer to one call.
struct call_result {
  outcome kind = outcome::terminal;
  int status = 0;           ///< HTTP status; 0 when no answer came
  boost::json::value body;  ///< ok: the parsed answer; failures: Twilio's error body if JSON
  std::string etag;         ///< the ETag header without quotes (Sync and worker revisions)
  int code = 0;             ///< failures: Twilio's error code (54103, 20429, ...); 0 if none
  std::string message;      ///< failures: "METHOD path: what went wrong", for logs and users
  std::chrono::milliseconds retry_after{0};     ///< retryable: wait at least this long
  std::optional<std::string> current_revision;  ///< conflict: the object's revision, if known

  explicit operator bool() const noexcept { return kind == outcome::ok; }
  /// The string field `key` of `body` ("sid", "state", ...); empty if absent or not a string.
  std::string text(std::string_view key) const {
    if (const auto* o = body.if_object())
      if (const auto* v = o->if_contains(key))
        if (const auto* s = v->if_string())
          return std::string{*s};
    return {};
  }
  /// The revision of the object answered: `body.revision` (Sync) or else the ETag (workers).
  std::string revision() const {
    auto r = text("revision");
    return r.empty() ? etag : r;
  }
};

/// The fields of a new conversation; the ones left empty are not sent.
struct conversation_fields {
  std::optional<std::string> unique_name;  ///< choose it from the business key: it finds the
                                           ///< conversation again after an ambiguous create
  std::optional<std::string> friendly_name;
  std::optional<boost::json::value> attributes;  ///< sent as a JSON string
};

enum class conversation_state { active, inactive, closed };

struct message_fields {
  std::optional<std::string> author;             ///< Twilio's default is "system"
  std::string body;                              ///< at most 1600 characters
  std::optional<boost::json::value> attributes;  ///< carry switchboard's step id here
};

/// A conversation-scoped webhook (Target "webhook" with a URL, "trigger", or "studio" + flow).
struct conversation_webhook_fields {
  std::string target = "webhook";
  std::optional<std::string> url;
  std::string method = "POST";
  std::vector<std::string> filters;   ///< onMessageAdded, ...
  std::vector<std::string> triggers;  ///< for target "trigger"
  std::optional<std::string> flow_sid;
};

struct message_listing {
  bool newest_first = false;
  int page_size = 50;
};

/// An SMS through the Messages API, outside any conversation: it reaches `to` only.
struct sms_fields {
  std::string to;    ///< E.164
  std::string from;  ///< one of the account's numbers, E.164
  std::string body;  ///< at most 1600 characters
};

/// The account's messages sent to `to` from `from`, newest first (Twilio's order).
struct sms_listing {
  std::string to;
  std::string from;
  int page_size = 50;  ///< 1 to 1000
};

/// The calls. Implementations BLOCK for up to their timeouts: make them on a lane, never on a
/// CAF scheduler thread.
class twilio_api {
public:
  virtual ~twilio_api() = default;

  // --- Sync (`document`, `map`: a SID or a unique name) -------------------------------------

  virtual call_result create_document(const std::string& service_sid,
                                      const std::optional<std::string>& unique_name,
                                      const boost::json::value& data,
                                      std::optional<std::chrono::seconds> ttl = std::nullopt) = 0;
  virtual call_result fetch_document(const std::string& service_sid,
                                     const std::string& document) = 0;
  /// With `if_match`, Twilio applies the update only at that revision (else conflict 412/54103).
  virtual call_result update_document(const std::string& service_sid, const std::string& document,
                                      const boost::json::value& data,
                                      const std::optional<std::string>& if_match = std::nullopt,
                                      std::optional<std::chrono::seconds> ttl = std::nullopt) = 0;
  virtual call_result delete_document(
      const std::string& service_sid, const std::string& document,
      const std::optional<std::string>& if_match = std::nullopt) = 0;

  virtual call_result create_map(const std::string& service_sid,
                                 const std::string& unique_name) = 0;
  /// Conflict 409/54208 if the key exists: update it instead.
  virtual call_result create_map_item(const std::string& service_sid, const std::string& map,
                                      const std::string& key, const boost::json::value& data,
                                      std::optional<std::chrono::seconds> ttl = std::nullopt) = 0;
  virtual call_result fetch_map_item(const std::string& service_sid, const std::string& map,
                                     const std::string& key) = 0;
  virtual call_result update_map_item(const std::string& service_sid, const std::string& map,
                                      const std::string& key, const boost::json::value& data,
                                      const std::optional<std::string>& if_match = std::nullopt,
                                      std::optional<std::chrono::seconds> ttl = std::nullopt) = 0;
  virtual call_result delete_map_item(
      const std::string& service_sid, const std::string& map, const std::string& key,
      const std::optional<std::string>& if_match = std::nullopt) = 0;

  // --- Conversations (`conversation`: a CH SID or a unique name) -----------------------------

  virtual call_result create_conversation(const conversation_fields& fields) = 0;
  virtual call_result fetch_conversation(const std::string& conversation) = 0;
  virtual call_result update_conversation_state(const std::string& conversation,
                                                conversation_state state) = 0;
  /// An SMS participant: the customer's `address` reached through our `proxy_address`.
  /// Conflict 409/50416 while another open conversation holds the same pair.
  virtual call_result add_sms_participant(
      const std::string& conversation, const std::string& address, const std::string& proxy_address,
      const std::optional<boost::json::value>& attributes = std::nullopt) = 0;
  virtual call_result send_message(const std::string& conversation,
                                   const message_fields& fields) = 0;
  /// One page of messages; follow `body.meta.next_page_url` with fetch_page.
  virtual call_result list_messages(const std::string& conversation,
                                    const message_listing& listing = {}) = 0;
  /// The conversations an SMS address takes part in (GET /v1/ParticipantConversations), oldest
  /// first, 50 a page; follow `body.meta.next_page_url` with fetch_page.
  virtual call_result participant_conversations(const std::string& address) = 0;
  virtual call_result create_conversation_webhook(const std::string& conversation,
                                                  const conversation_webhook_fields& fields) = 0;

  // --- Messages (api.twilio.com/2010-04-01, the account's own) ---------------------------------

  /// POST /2010-04-01/Accounts/{AccountSid}/Messages.json: one SMS. No idempotency key: after
  /// an ambiguous outcome, list the messages (list_sms) before sending again.
  virtual call_result send_sms(const sms_fields& fields) = 0;
  /// One page of GET /2010-04-01/Accounts/{AccountSid}/Messages.json?To=&From=; follow
  /// `body.next_page_uri` (relative to api.twilio.com) with fetch_page.
  virtual call_result list_sms(const sms_listing& listing) = 0;

  // --- TaskRouter ----------------------------------------------------------------------------

  virtual call_result fetch_worker(const std::string& workspace_sid,
                                   const std::string& worker_sid) = 0;
  /// Replaces the worker's whole attribute object. Conflict 412/20412 on a stale `if_match`.
  virtual call_result update_worker_attributes(
      const std::string& workspace_sid, const std::string& worker_sid,
      const boost::json::value& attributes,
      const std::optional<std::string>& if_match = std::nullopt) = 0;

  // --- paging --------------------------------------------------------------------------------

  /// GET a `next_page_url` / `previous_page_url` from a list answer. Twilio's host names
  /// (https://conversations.twilio.com/v1/...) map to the configured product URL; a URL under
  /// a configured product URL is used as is; a path of the 2010-04-01 API
  /// (`next_page_uri`: /2010-04-01/...) goes to the api product. Terminal if it is none of these.
  virtual call_result fetch_page(const std::string& page_url) = 0;
};

}  // namespace switchboard::ports::twilio
