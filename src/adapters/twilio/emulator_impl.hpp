#pragma once

// Internals shared by the emulator's .cpp files (emulator.cpp serves HTTP; emulator_sync.cpp,
// emulator_conversations.cpp, emulator_taskrouter.cpp and emulator_messaging.cpp hold the
// products): the objects the
// emulator keeps, the request plumbing handlers see, and the route table. Never installed.

#include "adapters/twilio/emulator.hpp"
#include "adapters/twilio/emulator_rules.hpp"

#include <httplib.h>
#include <boost/json.hpp>

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace switchboard::adapters::twilio::internal {

namespace json = boost::json;
using rules::steady_clock;
using rules::wall_clock;
using time_point = wall_clock::time_point;
using string_pairs = std::vector<std::pair<std::string, std::string>>;

// --- answers --------------------------------------------------------------------------------

/// An answer in Twilio's error shape ({"code", "message", "more_info", "status"}). Handlers
/// throw it before they change anything, so a refused request leaves the state as it was.
class api_error : public std::runtime_error {
public:
  api_error(int http_status, int twilio_code, const std::string& message)
      : std::runtime_error(message), status(http_status), code(twilio_code) {}
  int status;
  int code;
  std::optional<int> retry_after_s;  ///< sent as Retry-After
};

/// A successful answer: a status, a JSON body (null for 204) and extra headers (ETag).
struct answer {
  int status = 200;
  json::value body;
  string_pairs headers;
};

inline answer created(json::object body) { return {201, std::move(body), {}}; }
inline answer ok(json::object body) { return {200, std::move(body), {}}; }
inline answer no_content() { return {204, nullptr, {}}; }

// --- the objects ----------------------------------------------------------------------------

/// A map item or a list item. Expired items are dropped when next looked at.
struct sync_item {
  std::string key;          ///< map items
  std::uint64_t index = 0;  ///< list items
  json::value data;
  std::uint64_t revision = 0;
  std::optional<time_point> expires;
  time_point created, updated;
};

struct sync_document {
  std::string sid;
  std::optional<std::string> unique_name;
  json::value data;
  std::uint64_t revision = 0;
  std::optional<time_point> expires;
  time_point created, updated;
};

/// A Sync Map or List: its items by key (maps, in key order) or by index (lists).
struct sync_collection {
  std::string sid;
  std::optional<std::string> unique_name;
  std::uint64_t revision = 0;
  std::optional<time_point> expires;
  time_point created, updated;
  std::map<std::string, sync_item> items_by_key;
  std::map<std::uint64_t, sync_item> items_by_index;
  std::uint64_t next_index = 0;
};

struct sync_service {
  std::string sid;
  std::optional<std::string> unique_name;  ///< only "default", the account's implicit service
  std::string friendly_name;
  std::optional<std::string> webhook_url;
  bool reachability_webhooks_enabled = false;
  bool acl_enabled = false;
  bool reachability_debouncing_enabled = false;
  std::int64_t reachability_debouncing_window = 5000;
  bool webhooks_from_rest_enabled = false;
  time_point created, updated;
  std::list<sync_document> documents;
  std::list<sync_collection> maps;
  std::list<sync_collection> lists;
  /// SID and unique name -> object, per list. A service may hold tens of thousands of
  /// documents; a linear search per request made the emulator the bottleneck of switchboard's
  /// own benchmarks. Inserts add to an index; a removal marks it stale, and the next lookup
  /// rebuilds it.
  struct name_index {
    std::unordered_map<std::string, const void*> by_name;
    bool stale = true;
  };
  name_index documents_index, maps_index, lists_index;
};

struct participant {
  std::uint64_t seq = 0;  ///< set by conversation_store: the order participants were added
  std::string sid;
  std::optional<std::string> identity;       ///< chat participants
  std::optional<std::string> address;        ///< SMS participants: the customer's number
  std::optional<std::string> proxy_address;  ///< SMS participants: our Twilio number
  std::string attributes = "{}";
  std::optional<std::string> role_sid;
  time_point created, updated;
};

struct message {
  std::string sid;
  std::uint64_t index = 0;
  std::string author;
  std::optional<std::string> body;
  std::string attributes = "{}";
  std::optional<std::string> participant_sid;
  time_point created, updated;
};

/// A conversation-scoped webhook.
struct conversation_webhook {
  std::string sid;
  std::string target;  ///< webhook | trigger | studio
  std::optional<std::string> url;
  std::string method = "POST";
  std::vector<std::string> filters;
  std::vector<std::string> triggers;
  std::optional<std::string> flow_sid;
  time_point created, updated;
};

/// A conversation. `sid`, `unique_name`, `state`, `date_inactive`, `date_closed` and
/// `participants` are indexed by conversation_store: change them only through it.
struct conversation {
  std::uint64_t seq = 0;  ///< set by conversation_store: the order conversations were created
  std::string sid;
  std::optional<std::string> unique_name;
  std::optional<std::string> friendly_name;
  std::optional<std::string> messaging_service_sid;
  std::string attributes = "{}";
  std::string state = "active";
  std::optional<std::chrono::seconds> inactive_after, closed_after;  ///< Timers.*
  std::optional<time_point> date_inactive, date_closed;              ///< when the timers fire
  time_point created, updated;
  std::list<participant> participants;
  std::list<message> messages;
  std::list<conversation_webhook> webhooks;
  std::uint64_t next_message_index = 0;
};

inline bool is_open(const conversation& c) { return c.state != "closed"; }

/// Every conversation, in creation order, with the indexes each request looks things up in:
/// by SID and unique name, the open conversations' SMS bindings (address + proxy address), the
/// participants by address and by identity, and a queue of pending timers. A run may leave tens
/// of thousands of conversations behind; with these a request costs the same as in an empty
/// emulator. Every change to an indexed field goes through this class, which keeps the indexes
/// in step (std::list keeps pointers to its elements valid).
class conversation_store {
public:
  /// A participant together with its conversation.
  struct participant_ref {
    conversation* conv = nullptr;
    participant* p = nullptr;
  };

  /// Every conversation, oldest first.
  const std::list<conversation>& all() const { return list_; }

  /// Stores `c` (with its unique name, state and timers as given) and indexes it.
  conversation& add(conversation c);
  /// Deletes `c` and everything that points to it.
  void remove(conversation& c);
  /// The conversation with this SID (CH...) or else this unique name, or nullptr.
  conversation* find(const std::string& name);
  conversation* find_unique_name(const std::string& name);

  void set_unique_name(conversation& c, std::optional<std::string> name);
  /// Closing frees the conversation's SMS bindings for other conversations.
  void set_state(conversation& c, std::string state);
  /// Starts both timers again from `now`, from `inactive_after` and `closed_after`.
  void restart_timers(conversation& c, time_point now);
  /// Moves the conversations whose timers are due at `now` to inactive or closed; costs only the
  /// timers that are due.
  void fire_timers(time_point now);

  participant& add_participant(conversation& c, participant p);
  void remove_participant(conversation& c, const participant& p);

  /// The open conversation (and its participant) holding this SMS binding; at most one does.
  participant_ref open_binding(const std::string& address, const std::string& proxy);
  /// The participants with this identity or this address, oldest conversation first, then in
  /// the order they were added (ParticipantConversations' order).
  std::vector<participant_ref> participants_of(const std::optional<std::string>& identity,
                                               const std::optional<std::string>& address) const;

private:
  using seq_key = std::pair<std::uint64_t, std::uint64_t>;  ///< (conversation, participant)
  using participants_by_seq = std::map<seq_key, participant_ref>;
  using timer_queue = std::multimap<time_point, conversation*>;

  void index_participant(conversation& c, participant& p);
  void unindex_participant(const conversation& c, const participant& p);
  void bind(conversation& c, participant& p);
  void unbind(const conversation& c, const participant& p);
  /// Queues the next timer of `c` that can still change its state, if any.
  void schedule(conversation& c);
  void unschedule(const conversation& c);

  std::list<conversation> list_;
  std::unordered_map<std::string, std::list<conversation>::iterator> by_sid_;
  std::unordered_map<std::string, conversation*> by_unique_name_;
  std::map<std::pair<std::string, std::string>, participant_ref> open_bindings_;
  std::unordered_map<std::string, participants_by_seq> by_address_, by_identity_;
  timer_queue timers_;
  std::unordered_map<const conversation*, timer_queue::iterator> scheduled_;
  std::uint64_t next_seq_ = 1;
};

struct activity {
  std::string sid;
  std::string friendly_name;
  bool available = false;
  time_point created, updated;
};

struct worker {
  std::string sid;
  std::string friendly_name;
  std::string attributes = "{}";
  std::string activity_sid;
  std::uint64_t version = 0;  ///< ETag / If-Match
  time_point created, updated, status_changed;
};

struct workspace {
  std::string sid;
  std::string friendly_name;
  std::optional<std::string> event_callback_url;
  std::optional<std::string> events_filter;
  bool multi_task_enabled = true;
  std::string prioritize_queue_order = "FIFO";
  std::string default_activity_sid, timeout_activity_sid;
  time_point created, updated;
  std::list<activity> activities;
  std::list<worker> workers;
};

/// An SMS the account sent through the Messages API (2010-04-01).
struct sms_message {
  std::string sid;  ///< SM...
  std::string to, from, body;
  std::string status;  ///< queued, then delivered
  std::optional<time_point> sent;
  time_point created, updated;
};

/// Everything the emulator keeps; guarded by one mutex in emulator.cpp.
struct state {
  std::list<sms_message> sms;  ///< in the order they were sent
  std::list<sync_service> sync_services;
  conversation_store conversations;
  std::string conversations_service_sid;  ///< the account's default chat service (IS...)
  std::list<workspace> workspaces;
  std::map<std::string, rules::token_bucket> sync_write_buckets;  ///< by object SID
  /// The earliest expiry of any Sync object, if any has a TTL: requests skip the sweep for
  /// expired objects until then.
  std::optional<time_point> sync_next_expiry;
};

/// A webhook to send once the state lock is released.
struct webhook_call {
  std::string url;
  std::string method;  ///< POST or GET
  string_pairs params;
  std::string event;
  std::string webhook_sid;
};

// --- what a handler sees --------------------------------------------------------------------

/// One request: its path arguments (the `{}` segments of the route) and its parameters (query
/// and form body, as cpp-httplib merges them).
class call {
public:
  call(const httplib::Request& request, std::vector<std::string> path_args)
      : http(request), args(std::move(path_args)) {}

  const std::string& arg(std::size_t i) const { return args.at(i); }
  bool has(const std::string& name) const { return http.has_param(name.c_str()); }
  std::optional<std::string> param(const std::string& name) const {
    if (!has(name))
      return std::nullopt;
    return http.get_param_value(name.c_str());
  }
  std::vector<std::string> params(const std::string& name) const {
    std::vector<std::string> out;
    auto [first, last] = http.params.equal_range(name);
    for (auto it = first; it != last; ++it)
      out.push_back(it->second);
    return out;
  }
  std::string header(const char* name) const { return http.get_header_value(name); }

  const httplib::Request& http;
  std::vector<std::string> args;
};

/// The state and services a handler works with; the state lock is held while a handler runs.
struct context {
  context(const emulator_options& opts, state& objects, std::mt19937_64& rng, std::string base)
      : options(opts), st(objects), sid_rng(rng), base_url(std::move(base)) {}

  const emulator_options& options;
  state& st;
  std::mt19937_64& sid_rng;
  std::string base_url;  ///< http://HOST:PORT
  time_point now = wall_clock::now();
  steady_clock::time_point steady_now = steady_clock::now();
  std::vector<webhook_call> webhooks;  ///< queued by handlers, sent after the lock is released

  std::string new_sid(std::string_view prefix) { return rules::make_sid(prefix, sid_rng); }

  /// The absolute URL of `path` ("/v1/...") of `product` ("sync", "conversations", ...).
  std::string url(std::string_view product, std::string_view path) const {
    if (options.twilio_urls)
      return "https://" + std::string{product} + ".twilio.com" + std::string{path};
    return base_url + "/" + std::string{product} + std::string{path};
  }
};

using handler = std::function<answer(context&, const call&)>;

/// How a route takes its input: Twilio's form fields (checked against `fields`), or a JSON body
/// (the emulator's own POST /_emulator/faults).
enum class body_kind { form, json };

struct route {
  std::string method;
  std::string pattern;  ///< "/sync/v1/Services/{}/Documents/{}"; `{}` is one path segment
  std::vector<std::string> fields;  ///< every form or query field this route accepts
  handler run;
  body_kind body = body_kind::form;
};

class route_table {
public:
  void add(std::string method, std::string pattern, std::vector<std::string> fields, handler run,
           body_kind body = body_kind::form) {
    routes_.push_back(
        {std::move(method), std::move(pattern), std::move(fields), std::move(run), body});
  }

  struct match {
    const route* found = nullptr;
    std::vector<std::string> args;
    std::vector<std::string> methods_for_path;  ///< when the path is known but not the method
  };

  match find(std::string_view method, std::string_view path) const {
    match m;
    const auto have = rules::path_segments(path);
    for (const auto& r : routes_) {
      const auto want = rules::path_segments(r.pattern);
      if (want.size() != have.size())
        continue;
      std::vector<std::string> args;
      bool same = true;
      for (std::size_t i = 0; i < want.size() && same; ++i) {
        if (want[i] == "{}")
          args.emplace_back(have[i]);
        else
          same = want[i] == have[i];
      }
      if (!same)
        continue;
      if (r.method == method) {
        m.found = &r;
        m.args = std::move(args);
        return m;
      }
      m.methods_for_path.push_back(r.method);
    }
    return m;
  }

private:
  std::vector<route> routes_;
};

// --- helpers for handlers (emulator.cpp) -----------------------------------------------------

/// 404 in Twilio's words for a resource that does not exist.
api_error not_found(int code, const std::string& what);
/// 400 code 20001 for a missing required parameter.
api_error missing_parameter(const std::string& name);

/// A JSON-typed field (Data, Attributes): the parsed value, or 400 with `code` naming the field.
json::value json_field(const std::string& name, const std::string& text, int code);
/// An integer field, or 400 (20001) naming it; nothing if absent.
std::optional<std::int64_t> int_field(const call& c, const std::string& name, std::int64_t min,
                                      std::int64_t max);
/// A boolean field ("true"/"false", any case), or 400 (20001) naming it; nothing if absent.
std::optional<bool> bool_field(const call& c, const std::string& name);
/// The If-Match header without quotes; empty if absent.
std::string if_match(const call& c);

inline json::value optional_string(const std::optional<std::string>& s) {
  return s ? json::value(*s) : json::value(nullptr);
}
inline json::value optional_time(const std::optional<time_point>& t) {
  return t ? json::value(rules::iso8601(*t)) : json::value(nullptr);
}
/// A path segment percent-encoded for a URL (map item keys, unique names).
std::string url_segment(std::string_view text);

/// One page of a list, as both of Twilio's list shapes page it: Page and PageSize (default 50,
/// 1 to `max_page_size`), or a PageToken ("PT" + the offset of the page's first record, as our
/// paging links give it; 400 naming `link_field` otherwise). Each link is (Page, PageToken).
struct page_cut {
  using link = std::pair<std::int64_t, std::optional<std::int64_t>>;
  std::int64_t page = 0, page_size = 50, offset = 0;
  json::array records;  ///< the page's records, taken from `all`
  link first, current;
  std::optional<link> previous, next;
};
page_cut cut_page(const call& c, json::array all, std::int64_t max_page_size,
                  const char* link_field);

/// A list response: {key: [page of all], "meta": {...}} with Page / PageSize / PageToken paging
/// (PageSize default 50, at most `max_page_size`: 100 in Twilio's specs for most lists).
/// `path` is the list's path ("/v1/Services/IS.../Documents").
json::object page_of(const context& ctx, const call& c, std::string_view product,
                     const std::string& path, const char* key, json::array all,
                     std::int64_t max_page_size = 100);
/// The paging query fields every list route accepts.
std::vector<std::string> paging_fields(std::vector<std::string> more = {});

// --- the products ---------------------------------------------------------------------------

void add_sync_routes(route_table& routes);
void add_conversations_routes(route_table& routes);
void add_taskrouter_routes(route_table& routes);
/// The Messages API of api.twilio.com/2010-04-01, under /api (emulator_messaging.cpp).
void add_messaging_routes(route_table& routes);

/// POST /_emulator/inbound-sms: an SMS from a customer (From) to one of our numbers (To).
answer inbound_sms(context& ctx, const call& c);

/// Every object of each product, for GET /_emulator/state.
json::value dump_sync(context& ctx);
json::value dump_conversations(context& ctx);
json::value dump_taskrouter(context& ctx);
json::value dump_messaging(context& ctx);

}  // namespace switchboard::adapters::twilio::internal
