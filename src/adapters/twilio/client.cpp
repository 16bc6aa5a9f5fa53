#include "adapters/twilio/client.hpp"

#include "core/url.hpp"

#include <httplib.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <stdexcept>
#include <utility>

namespace switchboard::adapters::twilio {

namespace json = boost::json;
using std::chrono::milliseconds;

client_options client_options_for(const twilio_config& twilio) {
  client_options o;
  o.base_url = twilio.base_url;
  o.connect_timeout = twilio.connect_timeout;
  o.read_timeout = twilio.read_timeout;
  return o;
}

// --- classification -------------------------------------------------------------------------

namespace {

/// An ETag or If-Match value without W/ and quotes: "\"7\"" -> "7".
std::string bare_tag(std::string tag) {
  if (tag.rfind("W/", 0) == 0)
    tag.erase(0, 2);
  if (tag.size() >= 2 && tag.front() == '"' && tag.back() == '"')
    tag = tag.substr(1, tag.size() - 2);
  return tag;
}

/// Retry-After as a delay: delta-seconds or an HTTP-date (RFC 9110 §10.2.3); nothing if absent
/// or unreadable.
std::optional<milliseconds> retry_after_delay(const std::string& value,
                                              std::chrono::system_clock::time_point now) {
  if (value.empty())
    return std::nullopt;
  if (value.find_first_not_of("0123456789") == std::string::npos) {
    if (value.size() > 9)  // longer than any sane wait; stay clear of overflow
      return std::chrono::hours{24 * 365};
    return std::chrono::seconds{std::atol(value.c_str())};
  }
  std::tm when{};
  const char* end = ::strptime(value.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &when);
  if (end == nullptr || *end != '\0')
    return std::nullopt;
  const auto at = std::chrono::system_clock::from_time_t(::timegm(&when));
  return std::max(milliseconds{0}, std::chrono::duration_cast<milliseconds>(at - now));
}

int int_of(const json::value& v) {
  if (v.is_int64())
    return static_cast<int>(v.get_int64());
  if (v.is_uint64())
    return static_cast<int>(v.get_uint64());
  if (v.is_double())
    return static_cast<int>(v.get_double());
  return 0;
}

/// Twilio's error code and message from an error body; the start of the text if it is not
/// Twilio's JSON (a proxy's HTML page, say).
void read_error_body(const std::string& text, call_result& r) {
  boost::system::error_code ec;
  auto parsed = json::parse(text, ec);
  if (!ec && parsed.is_object()) {
    const auto& o = parsed.as_object();
    if (const auto* code = o.if_contains("code"))
      r.code = int_of(*code);
    if (const auto* message = o.if_contains("message"); message && message->is_string())
      r.message = std::string{message->get_string()};
    if (const auto* revision = o.if_contains("revision")) {
      if (revision->is_string())
        r.current_revision = std::string{revision->get_string()};
      else if (revision->is_number())
        r.current_revision = std::to_string(int_of(*revision));
    }
    r.body = std::move(parsed);
  }
  if (r.message.empty()) {
    constexpr std::size_t shown = 200;
    r.message = text.empty() ? "no body" : text.substr(0, shown);
  }
}

}  // namespace

call_result classify_answer(const http_answer& answer, bool only_reads,
                            milliseconds default_retry_after,
                            std::chrono::system_clock::time_point now) {
  call_result r;
  r.status = answer.status;
  r.etag = bare_tag(answer.etag);
  const int s = answer.status;

  if (s >= 200 && s < 300) {
    if (s == 204 || answer.body.empty()) {
      r.kind = outcome::ok;
      return r;
    }
    boost::system::error_code ec;
    r.body = json::parse(answer.body, ec);
    if (!ec) {
      r.kind = outcome::ok;
      return r;
    }
    // Something answered 2xx but not with Twilio's JSON: a write happened somewhere, or a
    // misconfigured URL reached another server. A read can only be a configuration problem.
    r.body = nullptr;
    r.kind = only_reads ? outcome::terminal : outcome::ambiguous;
    r.message = std::to_string(s) + " with a body that is not JSON (" + ec.message() +
                "); check that the base URL points at Twilio or the emulator";
    return r;
  }

  read_error_body(answer.body, r);
  const auto status_text = [&] {
    return std::to_string(s) + (r.code != 0 ? " (Twilio " + std::to_string(r.code) + ")" : "") +
           ": " + r.message;
  };
  if (s == 429) {
    // Twilio documents 429 (20429, 54009) as refused before anything happened: safe to resend.
    r.kind = outcome::retryable;
    r.retry_after = retry_after_delay(answer.retry_after, now).value_or(default_retry_after);
  } else if (s == 409 || s == 412) {
    r.kind = outcome::conflict;
    if (!r.current_revision && !r.etag.empty())
      r.current_revision = r.etag;
  } else if (s >= 500) {
    // No 5xx is documented as "not applied" (a 503 may come after the write was stored): a
    // write is ambiguous, so its caller looks before writing again. Still, wait as asked.
    r.kind = only_reads ? outcome::retryable : outcome::ambiguous;
    const auto asked = retry_after_delay(answer.retry_after, now);
    if (only_reads || s == 503)
      r.retry_after = asked.value_or(default_retry_after);
    else if (asked)
      r.retry_after = *asked;
  } else {
    r.kind = outcome::terminal;
  }
  r.message = status_text();
  return r;
}

// --- the client -----------------------------------------------------------------------------

namespace {

enum class product { sync, conversations, taskrouter, api };
constexpr std::array<const char*, 4> product_names = {"sync", "conversations", "taskrouter", "api"};

using form = std::vector<std::pair<std::string, std::string>>;

/// Percent-encodes everything but RFC 3986's unreserved characters: for path segments (map
/// keys, unique names) and form or query values ('+' in a phone number stays a '+').
std::string percent_encode(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += ch;
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 0xf];
    }
  }
  return out;
}

std::string form_encode(const form& fields) {
  std::string out;
  for (const auto& [name, value] : fields) {
    if (!out.empty())
      out += '&';
    out += percent_encode(name) + "=" + percent_encode(value);
  }
  return out;
}

/// "https://host[:port]" and the path prefix ("" or "/sync") of a product URL.
std::pair<std::string, std::string> split_base_url(const std::string& given, const char* setting) {
  // Errors show the URL without a user and password.
  const auto url = core::redacted_url(given);
  if (url != given)
    throw std::invalid_argument(std::string{"twilio client: "} + setting + " '" + url +
                                "' carries a user and password: Twilio's credentials come from "
                                "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or client_options), "
                                "never from the URL");
  const auto scheme_end = url.find("://");
  const auto scheme = scheme_end == std::string::npos ? std::string{} : url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https")
    throw std::invalid_argument(std::string{"twilio client: "} + setting + " '" + url +
                                "' is not an http:// or https:// URL (e.g. "
                                "https://sync.twilio.com or http://127.0.0.1:8089)");
  const auto path_start = url.find('/', scheme_end + 3);
  if (path_start == scheme_end + 3)
    throw std::invalid_argument(std::string{"twilio client: "} + setting + " '" + url +
                                "' has no host");
  if (path_start == std::string::npos)
    return {url, ""};
  auto prefix = url.substr(path_start);
  while (!prefix.empty() && prefix.back() == '/')
    prefix.pop_back();
  if (prefix.find_first_of("?#") != std::string::npos)
    throw std::invalid_argument(std::string{"twilio client: "} + setting + " '" + url +
                                "' must not carry a query or fragment");
  return {url.substr(0, path_start), prefix};
}

std::string from_env(const std::string& given, const char* name) {
  if (!given.empty())
    return given;
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

std::string json_text(const json::value& v) { return json::serialize(v); }

}  // namespace

struct client::impl {
  /// One product's host: its connection and the prefix its paths go under.
  struct endpoint {
    std::string origin;  ///< https://sync.twilio.com
    std::string prefix;  ///< "" for Twilio, "/sync" for the emulator
    std::unique_ptr<httplib::Client> http;
    std::mutex mutex;  ///< one request at a time on the connection
  };

  client_options options;
  std::array<endpoint, 4> endpoints;

  explicit impl(client_options o) : options(std::move(o)) {
    options.account_sid = from_env(options.account_sid, "TWILIO_ACCOUNT_SID");
    options.auth_token = from_env(options.auth_token, "TWILIO_AUTH_TOKEN");
    if (options.account_sid.empty())
      throw std::invalid_argument(
          "twilio client: no account SID: set TWILIO_ACCOUNT_SID or client_options::account_sid "
          "(\"AC\" + 32 hex digits, from the Twilio console or the emulator)");
    if (options.auth_token.empty())
      throw std::invalid_argument(
          "twilio client: no auth token: set TWILIO_AUTH_TOKEN or client_options::auth_token");

    const std::array<const std::string*, 4> given = {&options.sync_url, &options.conversations_url,
                                                     &options.taskrouter_url, &options.api_url};
    const std::array<const char*, 4> settings = {"sync_url", "conversations_url", "taskrouter_url",
                                                 "api_url"};
    for (std::size_t i = 0; i < endpoints.size(); ++i) {
      std::string url = *given[i];
      const char* setting = settings[i];
      if (url.empty() && !options.base_url.empty()) {
        url = options.base_url;
        while (!url.empty() && url.back() == '/')
          url.pop_back();
        url += std::string{"/"} + product_names[i];
        setting = "base_url";
      } else if (url.empty()) {
        url = std::string{"https://"} + product_names[i] + ".twilio.com";
      }
      auto [origin, prefix] = split_base_url(url, setting);
      auto& e = endpoints[i];
      e.origin = std::move(origin);
      e.prefix = std::move(prefix);
      e.http = std::make_unique<httplib::Client>(e.origin);
      if (!e.http->is_valid())
        throw std::invalid_argument(std::string{"twilio client: cannot use "} + setting + " '" +
                                    url + "'");
      auto& h = *e.http;
      h.set_basic_auth(options.account_sid, options.auth_token);
      h.set_keep_alive(true);
      h.set_tcp_nodelay(true);
      h.set_url_encode(false);  // paths and queries are percent-encoded here
      h.set_connection_timeout(options.connect_timeout);
      h.set_read_timeout(options.read_timeout);
      h.set_write_timeout(options.write_timeout);
      h.set_default_headers({{"Accept", "application/json"}, {"User-Agent", "switchboard"}});
      if (!options.ca_cert_path.empty())
        h.set_ca_cert_path(options.ca_cert_path);
    }
  }

  enum class verb { get, post, del };

  /// Sends one request and classifies what comes back (or does not).
  call_result send(product p, verb v, const std::string& path, const form& fields = {},
                   const std::optional<std::string>& if_match = std::nullopt) {
    auto& e = endpoints[static_cast<std::size_t>(p)];
    const std::string target = e.prefix + path;
    const char* method = v == verb::get ? "GET" : v == verb::post ? "POST" : "DELETE";
    httplib::Headers headers;
    if (if_match)
      headers.emplace("If-Match", *if_match);

    const auto res = [&] {
      std::lock_guard lock{e.mutex};
      switch (v) {
        case verb::get: return e.http->Get(target, headers);
        case verb::post:
          return e.http->Post(target, headers, form_encode(fields),
                              "application/x-www-form-urlencoded");
        case verb::del: break;
      }
      return e.http->Delete(target, headers);
    }();
    const bool only_reads = v == verb::get;
    call_result r;
    if (res) {
      http_answer a{res->status, res->body, res->get_header_value("Retry-After"),
                    res->get_header_value("ETag")};
      r = classify_answer(a, only_reads, options.default_retry_after,
                          std::chrono::system_clock::now());
    } else {
      r = transport_failure(res.error(), only_reads);
    }
    if (r.kind != outcome::ok)  // Twilio's message may quote a URL it was given (a webhook's)
      r.message =
          core::redact_urls(std::string{method} + " " + e.origin + target + ": " + r.message);
    return r;
  }

  /// A request that got no answer. Before the request was written (no connection, TLS
  /// handshake) nothing happened; after, a write may have happened.
  call_result transport_failure(httplib::Error error, bool only_reads) const {
    call_result r;
    using httplib::Error;
    const auto what = httplib::to_string(error);
    switch (error) {
      case Error::Connection:
      case Error::ConnectionTimeout:
      case Error::BindIPAddress:
      case Error::SSLConnection:
        r.kind = outcome::retryable;
        r.retry_after = options.default_retry_after;
        r.message = "could not connect (" + what + "); nothing was sent";
        break;
      case Error::SSLLoadingCerts:
      case Error::SSLServerVerification:
        r.kind = outcome::terminal;
        r.message = "TLS certificate problem (" + what +
                    "); check client_options::ca_cert_path and the system's CA certificates";
        break;
      case Error::ExceedRedirectCount:
      case Error::UnsupportedMultipartBoundaryChars:
        r.kind = outcome::terminal;
        r.message = what;
        break;
      default:  // Read (incl. read timeout), Write, Canceled, Compression, Unknown
        r.kind = only_reads ? outcome::retryable : outcome::ambiguous;
        if (only_reads)
          r.retry_after = options.default_retry_after;
        r.message = "no answer (" + what + ")" +
                    (only_reads ? std::string{}
                                : "; the write may have happened: look before writing again");
        break;
    }
    return r;
  }

  /// fetch_page: the product and product-relative path of an absolute page URL.
  std::optional<std::pair<product, std::string>> route_page_url(const std::string& url) const {
    if (url.rfind("/2010-04-01/", 0) == 0)  // the 2010-04-01 API's paging URIs are relative
      return std::pair{product::api, url};
    for (std::size_t i = 0; i < endpoints.size(); ++i) {
      const auto twilio_host = std::string{"https://"} + product_names[i] + ".twilio.com/";
      if (url.rfind(twilio_host, 0) == 0)
        return std::pair{static_cast<product>(i), url.substr(twilio_host.size() - 1)};
      const auto base = endpoints[i].origin + endpoints[i].prefix + "/";
      if (url.rfind(base, 0) == 0)
        return std::pair{static_cast<product>(i), url.substr(base.size() - 1)};
    }
    return std::nullopt;
  }
};

client::client(client_options options) : impl_(std::make_unique<impl>(std::move(options))) {}
client::~client() = default;

const client_options& client::options() const noexcept { return impl_->options; }

namespace {

std::string sync_service_path(const std::string& service_sid) {
  return "/v1/Services/" + percent_encode(service_sid);
}

void add_ttl(form& f, const char* name, std::optional<std::chrono::seconds> ttl) {
  if (ttl)
    f.emplace_back(name, std::to_string(ttl->count()));
}

}  // namespace

// --- Sync -----------------------------------------------------------------------------------

call_result client::create_document(const std::string& service_sid,
                                    const std::optional<std::string>& unique_name,
                                    const json::value& data,
                                    std::optional<std::chrono::seconds> ttl) {
  form f;
  if (unique_name)
    f.emplace_back("UniqueName", *unique_name);
  f.emplace_back("Data", json_text(data));
  add_ttl(f, "Ttl", ttl);
  return impl_->send(product::sync, impl::verb::post, sync_service_path(service_sid) + "/Documents",
                     f);
}

call_result client::fetch_document(const std::string& service_sid, const std::string& document) {
  return impl_->send(product::sync, impl::verb::get,
                     sync_service_path(service_sid) + "/Documents/" + percent_encode(document));
}

call_result client::update_document(const std::string& service_sid, const std::string& document,
                                    const json::value& data,
                                    const std::optional<std::string>& if_match,
                                    std::optional<std::chrono::seconds> ttl) {
  form f{{"Data", json_text(data)}};
  add_ttl(f, "Ttl", ttl);
  return impl_->send(product::sync, impl::verb::post,
                     sync_service_path(service_sid) + "/Documents/" + percent_encode(document), f,
                     if_match);
}

call_result client::delete_document(const std::string& service_sid, const std::string& document,
                                    const std::optional<std::string>& if_match) {
  return impl_->send(product::sync, impl::verb::del,
                     sync_service_path(service_sid) + "/Documents/" + percent_encode(document), {},
                     if_match);
}

call_result client::create_map(const std::string& service_sid, const std::string& unique_name) {
  return impl_->send(product::sync, impl::verb::post, sync_service_path(service_sid) + "/Maps",
                     {{"UniqueName", unique_name}});
}

namespace {
std::string map_items_path(const std::string& service_sid, const std::string& map) {
  return sync_service_path(service_sid) + "/Maps/" + percent_encode(map) + "/Items";
}
}  // namespace

call_result client::create_map_item(const std::string& service_sid, const std::string& map,
                                    const std::string& key, const json::value& data,
                                    std::optional<std::chrono::seconds> ttl) {
  form f{{"Key", key}, {"Data", json_text(data)}};
  add_ttl(f, "ItemTtl", ttl);
  return impl_->send(product::sync, impl::verb::post, map_items_path(service_sid, map), f);
}

call_result client::fetch_map_item(const std::string& service_sid, const std::string& map,
                                   const std::string& key) {
  return impl_->send(product::sync, impl::verb::get,
                     map_items_path(service_sid, map) + "/" + percent_encode(key));
}

call_result client::update_map_item(const std::string& service_sid, const std::string& map,
                                    const std::string& key, const json::value& data,
                                    const std::optional<std::string>& if_match,
                                    std::optional<std::chrono::seconds> ttl) {
  form f{{"Data", json_text(data)}};
  add_ttl(f, "ItemTtl", ttl);
  return impl_->send(product::sync, impl::verb::post,
                     map_items_path(service_sid, map) + "/" + percent_encode(key), f, if_match);
}

call_result client::delete_map_item(const std::string& service_sid, const std::string& map,
                                    const std::string& key,
                                    const std::optional<std::string>& if_match) {
  return impl_->send(product::sync, impl::verb::del,
                     map_items_path(service_sid, map) + "/" + percent_encode(key), {}, if_match);
}

// --- Conversations --------------------------------------------------------------------------

namespace {
std::string conversation_path(const std::string& conversation) {
  return "/v1/Conversations/" + percent_encode(conversation);
}
}  // namespace

call_result client::create_conversation(const conversation_fields& fields) {
  form f;
  if (fields.unique_name)
    f.emplace_back("UniqueName", *fields.unique_name);
  if (fields.friendly_name)
    f.emplace_back("FriendlyName", *fields.friendly_name);
  if (fields.attributes)
    f.emplace_back("Attributes", json_text(*fields.attributes));
  return impl_->send(product::conversations, impl::verb::post, "/v1/Conversations", f);
}

call_result client::fetch_conversation(const std::string& conversation) {
  return impl_->send(product::conversations, impl::verb::get, conversation_path(conversation));
}

call_result client::update_conversation_state(const std::string& conversation,
                                              conversation_state state) {
  const char* name = state == conversation_state::active     ? "active"
                     : state == conversation_state::inactive ? "inactive"
                                                             : "closed";
  return impl_->send(product::conversations, impl::verb::post, conversation_path(conversation),
                     {{"State", name}});
}

call_result client::add_sms_participant(const std::string& conversation, const std::string& address,
                                        const std::string& proxy_address,
                                        const std::optional<json::value>& attributes) {
  form f{{"MessagingBinding.Address", address}, {"MessagingBinding.ProxyAddress", proxy_address}};
  if (attributes)
    f.emplace_back("Attributes", json_text(*attributes));
  return impl_->send(product::conversations, impl::verb::post,
                     conversation_path(conversation) + "/Participants", f);
}

call_result client::send_message(const std::string& conversation, const message_fields& fields) {
  form f;
  if (fields.author)
    f.emplace_back("Author", *fields.author);
  f.emplace_back("Body", fields.body);
  if (fields.attributes)
    f.emplace_back("Attributes", json_text(*fields.attributes));
  return impl_->send(product::conversations, impl::verb::post,
                     conversation_path(conversation) + "/Messages", f);
}

call_result client::list_messages(const std::string& conversation, const message_listing& listing) {
  const std::string query = std::string{"?Order="} + (listing.newest_first ? "desc" : "asc") +
                            "&PageSize=" + std::to_string(listing.page_size);
  return impl_->send(product::conversations, impl::verb::get,
                     conversation_path(conversation) + "/Messages" + query);
}

call_result client::participant_conversations(const std::string& address) {
  return impl_->send(
      product::conversations, impl::verb::get,
      "/v1/ParticipantConversations?Address=" + percent_encode(address) + "&PageSize=50");
}

call_result client::create_conversation_webhook(const std::string& conversation,
                                                const conversation_webhook_fields& fields) {
  form f{{"Target", fields.target}};
  if (fields.url)
    f.emplace_back("Configuration.Url", *fields.url);
  if (fields.url || fields.method != "POST")
    f.emplace_back("Configuration.Method", fields.method);
  for (const auto& filter : fields.filters)
    f.emplace_back("Configuration.Filters", filter);
  for (const auto& trigger : fields.triggers)
    f.emplace_back("Configuration.Triggers", trigger);
  if (fields.flow_sid)
    f.emplace_back("Configuration.FlowSid", *fields.flow_sid);
  return impl_->send(product::conversations, impl::verb::post,
                     conversation_path(conversation) + "/Webhooks", f);
}

// --- Messages -------------------------------------------------------------------------------

namespace {
std::string messages_path(const std::string& account_sid) {
  return "/2010-04-01/Accounts/" + percent_encode(account_sid) + "/Messages.json";
}
}  // namespace

call_result client::send_sms(const sms_fields& fields) {
  return impl_->send(product::api, impl::verb::post, messages_path(impl_->options.account_sid),
                     {{"To", fields.to}, {"From", fields.from}, {"Body", fields.body}});
}

call_result client::list_sms(const sms_listing& listing) {
  return impl_->send(product::api, impl::verb::get,
                     messages_path(impl_->options.account_sid) + "?To=" +
                         percent_encode(listing.to) + "&From=" + percent_encode(listing.from) +
                         "&PageSize=" + std::to_string(listing.page_size));
}

// --- TaskRouter -----------------------------------------------------------------------------

namespace {
std::string worker_path(const std::string& workspace_sid, const std::string& worker_sid) {
  return "/v1/Workspaces/" + percent_encode(workspace_sid) + "/Workers/" +
         percent_encode(worker_sid);
}
}  // namespace

call_result client::fetch_worker(const std::string& workspace_sid, const std::string& worker_sid) {
  return impl_->send(product::taskrouter, impl::verb::get, worker_path(workspace_sid, worker_sid));
}

call_result client::update_worker_attributes(const std::string& workspace_sid,
                                             const std::string& worker_sid,
                                             const json::value& attributes,
                                             const std::optional<std::string>& if_match) {
  return impl_->send(product::taskrouter, impl::verb::post, worker_path(workspace_sid, worker_sid),
                     {{"Attributes", json_text(attributes)}}, if_match);
}

// --- paging ---------------------------------------------------------------------------------

call_result client::fetch_page(const std::string& page_url) {
  const auto routed = impl_->route_page_url(page_url);
  if (!routed) {
    call_result r;
    r.kind = outcome::terminal;
    r.message = "GET " + page_url +
                ": not a page of a configured product URL (sync, conversations, taskrouter, api)";
    return r;
  }
  return impl_->send(routed->first, impl::verb::get, routed->second);
}

}  // namespace switchboard::adapters::twilio
