// Twilio Sync as the emulator serves it: Services, Documents, Maps and Map Items, Lists and List
// Items, with revisions and If-Match, TTLs, the 16 KiB data limit and the per-object write rate.

#include "adapters/twilio/emulator_impl.hpp"

#include <algorithm>
#include <charconv>
#include <limits>
#include <string>

namespace switchboard::adapters::twilio::internal {

namespace {

constexpr std::string_view product = "sync";
constexpr std::size_t max_data_bytes = 16 * 1024;
constexpr std::size_t max_unique_name = 320;
constexpr std::size_t max_key = 320;
constexpr std::int64_t max_ttl_s = 31'536'000;  // a year, Sync's longest TTL

// --- looking things up ----------------------------------------------------------------------

bool expired(const std::optional<time_point>& at, time_point now) { return at && *at <= now; }

/// Drops what has expired in every service (Twilio deletes expired objects on its own
/// schedule; the emulator does it when Sync is next used) and notes the next expiry. Nothing
/// to do, and no scan, before the earliest expiry.
void drop_expired(context& ctx) {
  auto& next = ctx.st.sync_next_expiry;
  if (!next || ctx.now < *next)
    return;
  next.reset();
  auto keep = [&](const std::optional<time_point>& at) {
    if (expired(at, ctx.now))
      return false;
    if (at && (!next || *at < *next))
      next = at;
    return true;
  };
  for (auto& s : ctx.st.sync_services) {
    const auto before = s.documents.size();
    s.documents.remove_if([&](const sync_document& d) { return !keep(d.expires); });
    s.documents_index.stale = s.documents_index.stale || s.documents.size() != before;
    for (auto [collections, index] :
         {std::pair{&s.maps, &s.maps_index}, std::pair{&s.lists, &s.lists_index}}) {
      const auto count = collections->size();
      collections->remove_if([&](const sync_collection& c) { return !keep(c.expires); });
      index->stale = index->stale || collections->size() != count;
      for (auto& c : *collections) {
        for (auto it = c.items_by_key.begin(); it != c.items_by_key.end();)
          it = keep(it->second.expires) ? std::next(it) : c.items_by_key.erase(it);
        for (auto it = c.items_by_index.begin(); it != c.items_by_index.end();)
          it = keep(it->second.expires) ? std::next(it) : c.items_by_index.erase(it);
      }
    }
  }
}

std::string service_path(const sync_service& s) { return "/v1/Services/" + s.sid; }

/// The service named in the path: its SID, or "default", the account's implicit service.
sync_service& service_of(context& ctx, const std::string& name) {
  auto& services = ctx.st.sync_services;
  auto it = std::find_if(services.begin(), services.end(), [&](const sync_service& s) {
    return s.sid == name || (s.unique_name && *s.unique_name == name);
  });
  if (it == services.end()) {
    if (name != "default")
      throw not_found(20404, "/Services/" + name);
    sync_service s;
    s.sid = ctx.new_sid("IS");
    s.unique_name = "default";
    s.friendly_name = "Default Service";
    s.created = s.updated = ctx.now;
    services.push_back(std::move(s));
    it = std::prev(services.end());
  }
  drop_expired(ctx);
  return *it;
}

sync_service::name_index& index_of(sync_service& s, const std::list<sync_document>&) {
  return s.documents_index;
}
sync_service::name_index& index_of(sync_service& s, const std::list<sync_collection>& l) {
  return &l == &s.maps ? s.maps_index : s.lists_index;
}

/// The object of `objects` (a list of `s`) with this SID or unique name, or nullptr.
template <typename T>
T* find_named(sync_service& s, std::list<T>& objects, const std::string& name,
              std::string_view prefix) {
  auto& index = index_of(s, objects);
  if (index.stale) {
    index.by_name.clear();
    for (const auto& o : objects) {
      index.by_name.emplace(o.sid, &o);
      if (o.unique_name)
        index.by_name.emplace(*o.unique_name, &o);
    }
    index.stale = false;
  }
  const auto it = index.by_name.find(name);
  if (it == index.by_name.end())
    return nullptr;
  auto* found = static_cast<T*>(const_cast<void*>(it->second));
  // A SID-shaped name means a SID; anything else a unique name (a unique name may not look
  // like a SID, see check_unique_name).
  const bool by_sid = rules::is_sid(name, prefix);
  return (by_sid ? found->sid == name : (found->unique_name && *found->unique_name == name))
             ? found
             : nullptr;
}

/// Adds the object just appended to `objects` to its index.
template <typename T>
void index_added(sync_service& s, std::list<T>& objects) {
  auto& index = index_of(s, objects);
  if (index.stale)
    return;  // rebuilt on the next lookup anyway
  const auto& o = objects.back();
  index.by_name.emplace(o.sid, &o);
  if (o.unique_name)
    index.by_name.emplace(*o.unique_name, &o);
}

sync_document& document_of(sync_service& s, const std::string& name) {
  auto* d = find_named(s, s.documents, name, "ET");
  if (d == nullptr)
    throw not_found(54100, service_path(s) + "/Documents/" + name);
  return *d;
}

sync_collection& map_of(sync_service& s, const std::string& name) {
  auto* m = find_named(s, s.maps, name, "MP");
  if (m == nullptr)
    throw not_found(54200, service_path(s) + "/Maps/" + name);
  return *m;
}

sync_collection& list_of(sync_service& s, const std::string& name) {
  auto* l = find_named(s, s.lists, name, "ES");
  if (l == nullptr)
    throw not_found(54150, service_path(s) + "/Lists/" + name);
  return *l;
}

// --- request fields -------------------------------------------------------------------------

/// `Data`: a JSON string of at most 16 KiB; nothing if absent.
std::optional<json::value> data_field(const call& c) {
  auto text = c.param("Data");
  if (!text)
    return std::nullopt;
  if (text->size() > max_data_bytes)
    throw api_error(400, 54006,
                    "Request entity too large: Data is " + std::to_string(text->size()) +
                        " bytes; a Sync Document, Map Item or List Item holds at most 16 KiB "
                        "(16384 bytes) of JSON. Split the data across several objects");
  return json_field("Data", *text, 20001);
}

/// When something with a TTL of `ttl` seconds expires (0: never).
std::optional<time_point> expiry(const context& ctx, std::int64_t ttl) {
  if (ttl == 0)
    return std::nullopt;
  const auto at = ctx.now + std::chrono::seconds{ttl};
  auto& next = ctx.st.sync_next_expiry;  // drop_expired sweeps from then on
  if (!next || at < *next)
    next = at;
  return at;
}

/// The first of the TTL fields present, in Twilio's precedence order.
std::optional<std::int64_t> ttl_field(const call& c, std::initializer_list<const char*> names) {
  for (const char* name : names)
    if (auto v = int_field(c, name, 0, max_ttl_s))
      return v;
  return std::nullopt;
}

void check_unique_name(const std::string& name, std::string_view sid_prefix) {
  if (name.empty() || name.size() > max_unique_name || rules::is_sid(name, sid_prefix))
    throw api_error(400, 54302,
                    "Invalid unique name '" + name +
                        "': use 1 to 320 characters that do not "
                        "look like a SID (" +
                        std::string{sid_prefix} + " + 32 hex digits)");
}

/// 412 with the product's code when If-Match names another revision.
void check_revision(const call& c, std::uint64_t revision, int code, const std::string& what) {
  const auto expected = if_match(c);
  if (!expected.empty() && expected != std::to_string(revision))
    throw api_error(412, code,
                    "The revision of the " + what +
                        " does not match the expected revision "
                        "(If-Match: " +
                        expected + ", current revision: " + std::to_string(revision) +
                        "). Fetch it again and retry with the "
                        "current revision");
}

/// Counts a write against a Sync object's rate (20/s with a 10 s burst window by default).
void charge_write(context& ctx, const std::string& object_sid) {
  if (!ctx.options.enforce_rate_limits)
    return;
  const double rate = ctx.options.sync_writes_per_s;
  const double burst = rate * ctx.options.sync_burst_window_s;
  auto [it, fresh] = ctx.st.sync_write_buckets.try_emplace(object_sid, rate, burst, ctx.steady_now);
  (void)fresh;
  if (it->second.take(ctx.steady_now))
    return;
  const int wait = it->second.retry_after_s(ctx.steady_now);
  api_error e(429, 54009,
              "Rate limit exceeded for Sync object " + object_sid + ": at most " +
                  std::to_string(static_cast<int>(rate)) +
                  " writes a second per object (bursts of " +
                  std::to_string(static_cast<int>(burst)) + "); retry after " +
                  std::to_string(wait) + " s with exponential back-off");
  e.retry_after_s = wait;
  throw e;
}

answer with_etag(answer a, std::uint64_t revision) {
  a.headers.emplace_back("ETag", std::to_string(revision));
  return a;
}

// --- JSON -----------------------------------------------------------------------------------

json::object service_json(const context& ctx, const sync_service& s) {
  const auto path = service_path(s);
  json::object links{{"documents", ctx.url(product, path + "/Documents")},
                     {"lists", ctx.url(product, path + "/Lists")},
                     {"maps", ctx.url(product, path + "/Maps")},
                     {"streams", ctx.url(product, path + "/Streams")}};
  return {{"sid", s.sid},
          {"unique_name", optional_string(s.unique_name)},
          {"account_sid", ctx.options.account_sid},
          {"friendly_name", s.friendly_name},
          {"date_created", rules::iso8601(s.created)},
          {"date_updated", rules::iso8601(s.updated)},
          {"url", ctx.url(product, path)},
          {"webhook_url", optional_string(s.webhook_url)},
          {"webhooks_from_rest_enabled", s.webhooks_from_rest_enabled},
          {"reachability_webhooks_enabled", s.reachability_webhooks_enabled},
          {"acl_enabled", s.acl_enabled},
          {"reachability_debouncing_enabled", s.reachability_debouncing_enabled},
          {"reachability_debouncing_window", s.reachability_debouncing_window},
          {"links", std::move(links)}};
}

json::object document_json(const context& ctx, const sync_service& s, const sync_document& d) {
  const auto path = service_path(s) + "/Documents/" + d.sid;
  json::object links{{"permissions", ctx.url(product, path + "/Permissions")}};
  return {{"sid", d.sid},
          {"unique_name", optional_string(d.unique_name)},
          {"account_sid", ctx.options.account_sid},
          {"service_sid", s.sid},
          {"url", ctx.url(product, path)},
          {"links", std::move(links)},
          {"revision", std::to_string(d.revision)},
          {"data", d.data},
          {"date_expires", optional_time(d.expires)},
          {"date_created", rules::iso8601(d.created)},
          {"date_updated", rules::iso8601(d.updated)},
          {"created_by", "system"}};
}

/// A map ("Maps") or a list ("Lists").
json::object collection_json(const context& ctx, const sync_service& s, const sync_collection& c,
                             const char* kind) {
  const auto path = service_path(s) + "/" + kind + "/" + c.sid;
  json::object links{{"items", ctx.url(product, path + "/Items")},
                     {"permissions", ctx.url(product, path + "/Permissions")}};
  return {{"sid", c.sid},
          {"unique_name", optional_string(c.unique_name)},
          {"account_sid", ctx.options.account_sid},
          {"service_sid", s.sid},
          {"url", ctx.url(product, path)},
          {"links", std::move(links)},
          {"revision", std::to_string(c.revision)},
          {"date_expires", optional_time(c.expires)},
          {"date_created", rules::iso8601(c.created)},
          {"date_updated", rules::iso8601(c.updated)},
          {"created_by", "system"}};
}

json::object map_item_json(const context& ctx, const sync_service& s, const sync_collection& m,
                           const sync_item& i) {
  return {{"key", i.key},
          {"account_sid", ctx.options.account_sid},
          {"service_sid", s.sid},
          {"map_sid", m.sid},
          {"url",
           ctx.url(product, service_path(s) + "/Maps/" + m.sid + "/Items/" + url_segment(i.key))},
          {"revision", std::to_string(i.revision)},
          {"data", i.data},
          {"date_expires", optional_time(i.expires)},
          {"date_created", rules::iso8601(i.created)},
          {"date_updated", rules::iso8601(i.updated)},
          {"created_by", "system"}};
}

json::object list_item_json(const context& ctx, const sync_service& s, const sync_collection& l,
                            const sync_item& i) {
  return {{"index", i.index},
          {"account_sid", ctx.options.account_sid},
          {"service_sid", s.sid},
          {"list_sid", l.sid},
          {"url", ctx.url(product, service_path(s) + "/Lists/" + l.sid + "/Items/" +
                                       std::to_string(i.index))},
          {"revision", std::to_string(i.revision)},
          {"data", i.data},
          {"date_expires", optional_time(i.expires)},
          {"date_created", rules::iso8601(i.created)},
          {"date_updated", rules::iso8601(i.updated)},
          {"created_by", "system"}};
}

// --- services -------------------------------------------------------------------------------

const std::vector<std::string> service_fields = {"FriendlyName",
                                                 "WebhookUrl",
                                                 "ReachabilityWebhooksEnabled",
                                                 "AclEnabled",
                                                 "ReachabilityDebouncingEnabled",
                                                 "ReachabilityDebouncingWindow",
                                                 "WebhooksFromRestEnabled"};

void apply_service_fields(const call& c, sync_service& s) {
  const auto window = int_field(c, "ReachabilityDebouncingWindow", 1000, 30000);
  const auto reach = bool_field(c, "ReachabilityWebhooksEnabled");
  const auto acl = bool_field(c, "AclEnabled");
  const auto debounce = bool_field(c, "ReachabilityDebouncingEnabled");
  const auto from_rest = bool_field(c, "WebhooksFromRestEnabled");
  if (auto v = c.param("FriendlyName"))
    s.friendly_name = *v;
  if (auto v = c.param("WebhookUrl"))
    s.webhook_url = *v;
  if (reach)
    s.reachability_webhooks_enabled = *reach;
  if (acl)
    s.acl_enabled = *acl;
  if (debounce)
    s.reachability_debouncing_enabled = *debounce;
  if (window)
    s.reachability_debouncing_window = *window;
  if (from_rest)
    s.webhooks_from_rest_enabled = *from_rest;
}

void add_service_routes(route_table& routes) {
  routes.add("POST", "/sync/v1/Services", service_fields, [](context& ctx, const call& c) {
    sync_service s;
    apply_service_fields(c, s);
    s.sid = ctx.new_sid("IS");
    s.created = s.updated = ctx.now;
    ctx.st.sync_services.push_back(std::move(s));
    return created(service_json(ctx, ctx.st.sync_services.back()));
  });
  routes.add("GET", "/sync/v1/Services", paging_fields(), [](context& ctx, const call& c) {
    json::array all;
    for (const auto& s : ctx.st.sync_services)
      all.push_back(service_json(ctx, s));
    return ok(page_of(ctx, c, product, "/v1/Services", "services", std::move(all)));
  });
  routes.add("GET", "/sync/v1/Services/{}", {}, [](context& ctx, const call& c) {
    return ok(service_json(ctx, service_of(ctx, c.arg(0))));
  });
  routes.add("POST", "/sync/v1/Services/{}", service_fields, [](context& ctx, const call& c) {
    auto& s = service_of(ctx, c.arg(0));
    apply_service_fields(c, s);
    s.updated = ctx.now;
    return ok(service_json(ctx, s));
  });
  routes.add("DELETE", "/sync/v1/Services/{}", {}, [](context& ctx, const call& c) {
    auto& s = service_of(ctx, c.arg(0));
    ctx.st.sync_services.remove_if([&](const sync_service& o) { return &o == &s; });
    return no_content();
  });
}

// --- documents ------------------------------------------------------------------------------

void add_document_routes(route_table& routes) {
  const std::string base = "/sync/v1/Services/{}/Documents";
  routes.add("POST", base, {"UniqueName", "Data", "Ttl"}, [](context& ctx, const call& c) {
    auto& s = service_of(ctx, c.arg(0));
    auto unique_name = c.param("UniqueName");
    if (unique_name) {
      check_unique_name(*unique_name, "ET");
      if (find_named(s, s.documents, *unique_name, "ET") != nullptr)
        throw api_error(409, 54301,
                        "Unique name already exists: a Document named '" + *unique_name +
                            "' exists in Service " + s.sid + "; update it, or delete it first");
    }
    auto data = data_field(c);
    const auto ttl = ttl_field(c, {"Ttl"});
    sync_document d;
    d.sid = ctx.new_sid("ET");
    d.unique_name = unique_name;
    d.data = data ? std::move(*data) : json::object{};
    d.expires = expiry(ctx, ttl.value_or(0));
    d.created = d.updated = ctx.now;
    s.documents.push_back(std::move(d));
    index_added(s, s.documents);
    return with_etag(created(document_json(ctx, s, s.documents.back())), 0);
  });
  routes.add("GET", base, paging_fields(), [](context& ctx, const call& c) {
    auto& s = service_of(ctx, c.arg(0));
    json::array all;
    for (const auto& d : s.documents)
      all.push_back(document_json(ctx, s, d));
    return ok(
        page_of(ctx, c, product, service_path(s) + "/Documents", "documents", std::move(all)));
  });
  routes.add("GET", base + "/{}", {}, [](context& ctx, const call& c) {
    auto& s = service_of(ctx, c.arg(0));
    const auto& d = document_of(s, c.arg(1));
    return with_etag(ok(document_json(ctx, s, d)), d.revision);
  });
  routes.add("POST", base + "/{}", {"Data", "Ttl"}, [](context& ctx, const call& c) {
    auto& s = service_of(ctx, c.arg(0));
    auto& d = document_of(s, c.arg(1));
    auto data = data_field(c);
    const auto ttl = ttl_field(c, {"Ttl"});
    charge_write(ctx, d.sid);
    check_revision(c, d.revision, 54103, "Document " + d.sid);
    if (data)
      d.data = std::move(*data);
    if (ttl)
      d.expires = expiry(ctx, *ttl);
    ++d.revision;
    d.updated = ctx.now;
    return with_etag(ok(document_json(ctx, s, d)), d.revision);
  });
  routes.add("DELETE", base + "/{}", {}, [](context& ctx, const call& c) {
    auto& s = service_of(ctx, c.arg(0));
    auto& d = document_of(s, c.arg(1));
    charge_write(ctx, d.sid);
    check_revision(c, d.revision, 54103, "Document " + d.sid);
    s.documents.remove_if([&](const sync_document& o) { return &o == &d; });
    s.documents_index.stale = true;
    return no_content();
  });
}

// --- maps and lists -------------------------------------------------------------------------

/// Routes shared by Maps and Lists: create, list, fetch, update (TTL) and delete.
void add_collection_routes(route_table& routes, const char* kind, std::string_view prefix) {
  const bool is_map = std::string_view{kind} == "Maps";
  const std::string base = std::string{"/sync/v1/Services/{}/"} + kind;
  auto collections = [is_map](sync_service& s) -> std::list<sync_collection>& {
    return is_map ? s.maps : s.lists;
  };
  auto one = [is_map](sync_service& s, const std::string& name) -> sync_collection& {
    return is_map ? map_of(s, name) : list_of(s, name);
  };

  routes.add("POST", base, {"UniqueName", "Ttl", "CollectionTtl"},
             [=](context& ctx, const call& c) {
               auto& s = service_of(ctx, c.arg(0));
               auto& all = collections(s);
               auto unique_name = c.param("UniqueName");
               if (unique_name) {
                 check_unique_name(*unique_name, prefix);
                 if (find_named(s, all, *unique_name, prefix) != nullptr)
                   throw api_error(409, 54301,
                                   std::string{"Unique name already exists: a "} +
                                       (is_map ? "Map" : "List") + " named '" + *unique_name +
                                       "' exists in Service " + s.sid);
               }
               const auto ttl = ttl_field(c, {"Ttl", "CollectionTtl"});
               sync_collection col;
               col.sid = ctx.new_sid(prefix);
               col.unique_name = unique_name;
               col.expires = expiry(ctx, ttl.value_or(0));
               col.created = col.updated = ctx.now;
               all.push_back(std::move(col));
               index_added(s, all);
               return created(collection_json(ctx, s, all.back(), kind));
             });
  routes.add("GET", base, paging_fields(), [=](context& ctx, const call& c) {
    auto& s = service_of(ctx, c.arg(0));
    json::array out;
    for (const auto& col : collections(s))
      out.push_back(collection_json(ctx, s, col, kind));
    return ok(page_of(ctx, c, product, service_path(s) + "/" + kind, is_map ? "maps" : "lists",
                      std::move(out)));
  });
  routes.add("GET", base + "/{}", {}, [=](context& ctx, const call& c) {
    auto& s = service_of(ctx, c.arg(0));
    return ok(collection_json(ctx, s, one(s, c.arg(1)), kind));
  });
  routes.add("POST", base + "/{}", {"Ttl", "CollectionTtl"}, [=](context& ctx, const call& c) {
    auto& s = service_of(ctx, c.arg(0));
    auto& col = one(s, c.arg(1));
    const auto ttl = ttl_field(c, {"Ttl", "CollectionTtl"});
    charge_write(ctx, col.sid);
    if (ttl)
      col.expires = expiry(ctx, *ttl);
    ++col.revision;
    col.updated = ctx.now;
    return ok(collection_json(ctx, s, col, kind));
  });
  routes.add("DELETE", base + "/{}", {}, [=](context& ctx, const call& c) {
    auto& s = service_of(ctx, c.arg(0));
    auto& col = one(s, c.arg(1));
    charge_write(ctx, col.sid);
    collections(s).remove_if([&](const sync_collection& o) { return &o == &col; });
    index_of(s, collections(s)).stale = true;
    return no_content();
  });
}

/// Applies the TTL fields of an item write: Ttl/ItemTtl to the item, CollectionTtl to its map
/// or list.
void apply_item_ttls(const context& ctx, const call& c, sync_item& item, sync_collection& col) {
  if (auto ttl = ttl_field(c, {"Ttl", "ItemTtl"}))
    item.expires = expiry(ctx, *ttl);
  if (auto ttl = ttl_field(c, {"CollectionTtl"}))
    col.expires = expiry(ctx, *ttl);
}

void touch(const context& ctx, sync_collection& col) {
  ++col.revision;
  col.updated = ctx.now;
}

/// Order, From and Bounds of an item listing.
struct item_query {
  bool descending = false;
  std::optional<std::string> from;
  bool inclusive = true;
};

item_query item_query_of(const call& c) {
  item_query q;
  if (auto order = c.param("Order")) {
    if (*order != "asc" && *order != "desc")
      throw api_error(400, 20001, "Invalid Order '" + *order + "': use asc or desc");
    q.descending = *order == "desc";
  }
  if (auto bounds = c.param("Bounds")) {
    if (*bounds != "inclusive" && *bounds != "exclusive")
      throw api_error(400, 20001, "Invalid Bounds '" + *bounds + "': use inclusive or exclusive");
    q.inclusive = *bounds == "inclusive";
  }
  q.from = c.param("From");
  return q;
}

/// Whether an item at `position` comes at or after `from` in the listing's order.
template <typename K>
bool after_from(const item_query& q, const K& position, const K& from) {
  if (position == from)
    return q.inclusive;
  return q.descending ? position < from : from < position;
}

const std::vector<std::string> item_write_fields = {"Data", "Ttl", "ItemTtl", "CollectionTtl"};

void add_map_item_routes(route_table& routes) {
  const std::string base = "/sync/v1/Services/{}/Maps/{}/Items";
  auto create_fields = item_write_fields;
  create_fields.insert(create_fields.begin(), "Key");
  routes.add("POST", base, create_fields, [](context& ctx, const call& c) {
    auto& s = service_of(ctx, c.arg(0));
    auto& m = map_of(s, c.arg(1));
    auto key = c.param("Key");
    if (!key)
      throw missing_parameter("Key");
    if (key->empty() || key->size() > max_key)
      throw api_error(400, 54209,
                      "Invalid Map Item key: use 1 to 320 characters (got " +
                          std::to_string(key->size()) + ")");
    auto data = data_field(c);
    if (!data)
      throw api_error(400, 54206, "Invalid Map Item data: the Data parameter is required");
    charge_write(ctx, m.sid);
    if (m.items_by_key.count(*key) != 0)
      throw api_error(409, 54208,
                      "Map Item already exists: key '" + *key + "' is in Map " + m.sid +
                          "; update it with POST .../Items/" + url_segment(*key) +
                          " or pick another key");
    sync_item item;
    item.key = *key;
    item.data = std::move(*data);
    item.created = item.updated = ctx.now;
    apply_item_ttls(ctx, c, item, m);
    touch(ctx, m);
    const auto& stored = m.items_by_key.emplace(*key, std::move(item)).first->second;
    return with_etag(created(map_item_json(ctx, s, m, stored)), 0);
  });
  routes.add("GET", base, paging_fields({"Order", "From", "Bounds"}),
             [](context& ctx, const call& c) {
               auto& s = service_of(ctx, c.arg(0));
               auto& m = map_of(s, c.arg(1));
               const auto q = item_query_of(c);
               json::array all;
               auto add = [&](const sync_item& i) {
                 if (!q.from || after_from(q, i.key, *q.from))
                   all.push_back(map_item_json(ctx, s, m, i));
               };
               if (q.descending)
                 for (auto it = m.items_by_key.rbegin(); it != m.items_by_key.rend(); ++it)
                   add(it->second);
               else
                 for (const auto& [key, item] : m.items_by_key)
                   add(item);
               return ok(page_of(ctx, c, product, service_path(s) + "/Maps/" + m.sid + "/Items",
                                 "items", std::move(all)));
             });
  auto item_of = [](sync_collection& m, const std::string& key) -> sync_item& {
    auto it = m.items_by_key.find(key);
    if (it == m.items_by_key.end())
      throw not_found(54201, "Map Item '" + key + "' in Map " + m.sid);
    return it->second;
  };
  routes.add("GET", base + "/{}", {}, [=](context& ctx, const call& c) {
    auto& s = service_of(ctx, c.arg(0));
    auto& m = map_of(s, c.arg(1));
    const auto& item = item_of(m, c.arg(2));
    return with_etag(ok(map_item_json(ctx, s, m, item)), item.revision);
  });
  routes.add("POST", base + "/{}", item_write_fields, [=](context& ctx, const call& c) {
    auto& s = service_of(ctx, c.arg(0));
    auto& m = map_of(s, c.arg(1));
    auto& item = item_of(m, c.arg(2));
    auto data = data_field(c);
    charge_write(ctx, m.sid);
    check_revision(c, item.revision, 54205, "Map Item '" + item.key + "'");
    if (data)
      item.data = std::move(*data);
    apply_item_ttls(ctx, c, item, m);
    ++item.revision;
    item.updated = ctx.now;
    touch(ctx, m);
    return with_etag(ok(map_item_json(ctx, s, m, item)), item.revision);
  });
  routes.add("DELETE", base + "/{}", {}, [=](context& ctx, const call& c) {
    auto& s = service_of(ctx, c.arg(0));
    auto& m = map_of(s, c.arg(1));
    auto& item = item_of(m, c.arg(2));
    charge_write(ctx, m.sid);
    check_revision(c, item.revision, 54205, "Map Item '" + item.key + "'");
    m.items_by_key.erase(item.key);
    touch(ctx, m);
    return no_content();
  });
}

void add_list_item_routes(route_table& routes) {
  const std::string base = "/sync/v1/Services/{}/Lists/{}/Items";
  routes.add("POST", base, item_write_fields, [](context& ctx, const call& c) {
    auto& s = service_of(ctx, c.arg(0));
    auto& l = list_of(s, c.arg(1));
    auto data = data_field(c);
    if (!data)
      throw missing_parameter("Data");
    charge_write(ctx, l.sid);
    sync_item item;
    item.index = l.next_index++;
    item.data = std::move(*data);
    item.created = item.updated = ctx.now;
    apply_item_ttls(ctx, c, item, l);
    touch(ctx, l);
    const auto& stored = l.items_by_index.emplace(item.index, std::move(item)).first->second;
    return with_etag(created(list_item_json(ctx, s, l, stored)), 0);
  });
  routes.add("GET", base, paging_fields({"Order", "From", "Bounds"}),
             [](context& ctx, const call& c) {
               auto& s = service_of(ctx, c.arg(0));
               auto& l = list_of(s, c.arg(1));
               const auto q = item_query_of(c);
               std::optional<std::uint64_t> from;
               if (q.from) {
                 from = static_cast<std::uint64_t>(
                     int_field(c, "From", 0, std::numeric_limits<std::int64_t>::max()).value());
               }
               json::array all;
               auto add = [&](const sync_item& i) {
                 if (!from || after_from(q, i.index, *from))
                   all.push_back(list_item_json(ctx, s, l, i));
               };
               if (q.descending)
                 for (auto it = l.items_by_index.rbegin(); it != l.items_by_index.rend(); ++it)
                   add(it->second);
               else
                 for (const auto& [index, item] : l.items_by_index)
                   add(item);
               return ok(page_of(ctx, c, product, service_path(s) + "/Lists/" + l.sid + "/Items",
                                 "items", std::move(all)));
             });
  auto item_of = [](sync_collection& l, const std::string& index_text) -> sync_item& {
    std::uint64_t index = 0;
    auto [end, ec] =
        std::from_chars(index_text.data(), index_text.data() + index_text.size(), index);
    auto it = ec == std::errc{} && end == index_text.data() + index_text.size()
                  ? l.items_by_index.find(index)
                  : l.items_by_index.end();
    if (it == l.items_by_index.end())
      throw not_found(54151, "List Item " + index_text + " in List " + l.sid);
    return it->second;
  };
  routes.add("GET", base + "/{}", {}, [=](context& ctx, const call& c) {
    auto& s = service_of(ctx, c.arg(0));
    auto& l = list_of(s, c.arg(1));
    const auto& item = item_of(l, c.arg(2));
    return with_etag(ok(list_item_json(ctx, s, l, item)), item.revision);
  });
  routes.add("POST", base + "/{}", item_write_fields, [=](context& ctx, const call& c) {
    auto& s = service_of(ctx, c.arg(0));
    auto& l = list_of(s, c.arg(1));
    auto& item = item_of(l, c.arg(2));
    auto data = data_field(c);
    charge_write(ctx, l.sid);
    check_revision(c, item.revision, 54155, "List Item " + std::to_string(item.index));
    if (data)
      item.data = std::move(*data);
    apply_item_ttls(ctx, c, item, l);
    ++item.revision;
    item.updated = ctx.now;
    touch(ctx, l);
    return with_etag(ok(list_item_json(ctx, s, l, item)), item.revision);
  });
  routes.add("DELETE", base + "/{}", {}, [=](context& ctx, const call& c) {
    auto& s = service_of(ctx, c.arg(0));
    auto& l = list_of(s, c.arg(1));
    auto& item = item_of(l, c.arg(2));
    charge_write(ctx, l.sid);
    check_revision(c, item.revision, 54155, "List Item " + std::to_string(item.index));
    l.items_by_index.erase(item.index);
    touch(ctx, l);
    return no_content();
  });
}

}  // namespace

void add_sync_routes(route_table& routes) {
  add_service_routes(routes);
  add_document_routes(routes);
  add_collection_routes(routes, "Maps", "MP");
  add_collection_routes(routes, "Lists", "ES");
  add_map_item_routes(routes);
  add_list_item_routes(routes);
}

json::value dump_sync(context& ctx) {
  json::array services;
  drop_expired(ctx);
  for (auto& s : ctx.st.sync_services) {
    auto out = service_json(ctx, s);
    json::array documents, maps, lists;
    for (const auto& d : s.documents)
      documents.push_back(document_json(ctx, s, d));
    for (const auto& m : s.maps) {
      auto m_json = collection_json(ctx, s, m, "Maps");
      json::array items;
      for (const auto& [key, item] : m.items_by_key)
        items.push_back(map_item_json(ctx, s, m, item));
      m_json["items"] = std::move(items);
      maps.push_back(std::move(m_json));
    }
    for (const auto& l : s.lists) {
      auto l_json = collection_json(ctx, s, l, "Lists");
      json::array items;
      for (const auto& [index, item] : l.items_by_index)
        items.push_back(list_item_json(ctx, s, l, item));
      l_json["items"] = std::move(items);
      lists.push_back(std::move(l_json));
    }
    out["documents"] = std::move(documents);
    out["maps"] = std::move(maps);
    out["lists"] = std::move(lists);
    services.push_back(std::move(out));
  }
  return json::object{{"services", std::move(services)}};
}

}  // namespace switchboard::adapters::twilio::internal
