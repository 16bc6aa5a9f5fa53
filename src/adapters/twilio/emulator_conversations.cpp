// Twilio Conversations as the emulator serves it: Conversations (states and timers),
// Participants (chat identities and SMS bindings, one open conversation per address + proxy
// address), Messages, conversation-scoped Webhooks (onMessageAdded, signed), the
// ParticipantConversations search, and inbound SMS from /_emulator/inbound-sms.

#include "adapters/twilio/emulator_impl.hpp"

#include <algorithm>
#include <cctype>
#include <string>

namespace switchboard::adapters::twilio::internal {

namespace {

constexpr std::string_view product = "conversations";
constexpr std::size_t max_body_chars = 1600;
constexpr std::size_t max_friendly_name = 256;

const std::vector<std::string> known_filters = {
    "onMessageAdded",      "onMessageUpdated",          "onMessageRemoved",
    "onConversationAdded", "onConversationUpdated",     "onConversationRemoved",
    "onParticipantAdded",  "onParticipantUpdated",      "onParticipantRemoved",
    "onDeliveryUpdated",   "onConversationStateUpdated"};

std::string conversation_path(const conversation& c) { return "/v1/Conversations/" + c.sid; }

/// Moves conversations whose timers have fired to inactive or closed.
void fire_timers(context& ctx) { ctx.st.conversations.fire_timers(ctx.now); }

/// Starts both timers again from now (at creation, on update and on each new message).
void restart_timers(context& ctx, conversation& c) {
  ctx.st.conversations.restart_timers(c, ctx.now);
}

const std::string& chat_service_sid(context& ctx) {
  if (ctx.st.conversations_service_sid.empty())
    ctx.st.conversations_service_sid = ctx.new_sid("IS");
  return ctx.st.conversations_service_sid;
}

/// The conversation named in the path: its SID or its unique name.
conversation& conversation_of(context& ctx, const std::string& name) {
  fire_timers(ctx);
  auto* found = ctx.st.conversations.find(name);
  if (found == nullptr)
    throw not_found(20404, "/Conversations/" + name);
  return *found;
}

/// The number of characters (UTF-8 code points) in `text`.
std::size_t characters(const std::string& text) {
  return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char ch) {
    return (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
  }));
}

std::string attributes_field(const call& c) {
  auto text = c.param("Attributes");
  if (!text)
    return "{}";
  json_field("Attributes", *text, 20001);
  return *text;
}

// --- JSON -----------------------------------------------------------------------------------

json::object conversation_json(context& ctx, const conversation& c) {
  const auto path = conversation_path(c);
  json::object timers;
  if (c.date_inactive)
    timers["date_inactive"] = rules::iso8601(*c.date_inactive);
  if (c.date_closed)
    timers["date_closed"] = rules::iso8601(*c.date_closed);
  json::object links{{"participants", ctx.url(product, path + "/Participants")},
                     {"messages", ctx.url(product, path + "/Messages")},
                     {"webhooks", ctx.url(product, path + "/Webhooks")}};
  return {{"account_sid", ctx.options.account_sid},
          {"chat_service_sid", chat_service_sid(ctx)},
          {"messaging_service_sid", optional_string(c.messaging_service_sid)},
          {"sid", c.sid},
          {"friendly_name", optional_string(c.friendly_name)},
          {"unique_name", optional_string(c.unique_name)},
          {"attributes", c.attributes},
          {"state", c.state},
          {"date_created", rules::iso8601(c.created)},
          {"date_updated", rules::iso8601(c.updated)},
          {"timers", std::move(timers)},
          {"url", ctx.url(product, path)},
          {"links", std::move(links)},
          {"bindings", nullptr}};
}

json::value binding_json(const participant& p) {
  if (!p.address)
    return nullptr;
  return json::object{{"type", "sms"},
                      {"address", *p.address},
                      {"proxy_address", optional_string(p.proxy_address)}};
}

json::object participant_json(const context& ctx, const conversation& c, const participant& p) {
  return {{"account_sid", ctx.options.account_sid},
          {"conversation_sid", c.sid},
          {"sid", p.sid},
          {"identity", optional_string(p.identity)},
          {"attributes", p.attributes},
          {"messaging_binding", binding_json(p)},
          {"role_sid", optional_string(p.role_sid)},
          {"date_created", rules::iso8601(p.created)},
          {"date_updated", rules::iso8601(p.updated)},
          {"url", ctx.url(product, conversation_path(c) + "/Participants/" + p.sid)},
          {"last_read_message_index", nullptr},
          {"last_read_timestamp", nullptr}};
}

json::object message_json(const context& ctx, const conversation& c, const message& m) {
  const auto path = conversation_path(c) + "/Messages/" + m.sid;
  json::object links{{"delivery_receipts", ctx.url(product, path + "/Receipts")},
                     {"channel_metadata", ctx.url(product, path + "/ChannelMetadata")}};
  return {{"account_sid", ctx.options.account_sid},
          {"conversation_sid", c.sid},
          {"sid", m.sid},
          {"index", m.index},
          {"author", m.author},
          {"body", optional_string(m.body)},
          {"media", nullptr},
          {"attributes", m.attributes},
          {"participant_sid", optional_string(m.participant_sid)},
          {"date_created", rules::iso8601(m.created)},
          {"date_updated", rules::iso8601(m.updated)},
          {"url", ctx.url(product, path)},
          {"delivery", nullptr},
          {"links", std::move(links)},
          {"content_sid", nullptr}};
}

json::object webhook_json(const context& ctx, const conversation& c,
                          const conversation_webhook& w) {
  json::object configuration;
  if (w.url)
    configuration["url"] = *w.url;
  std::string method;
  for (char ch : w.method)
    method += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  configuration["method"] = method;
  if (!w.filters.empty())
    configuration["filters"] = json::value_from(w.filters);
  if (!w.triggers.empty())
    configuration["triggers"] = json::value_from(w.triggers);
  if (w.flow_sid)
    configuration["flow_sid"] = *w.flow_sid;
  return {{"sid", w.sid},
          {"account_sid", ctx.options.account_sid},
          {"conversation_sid", c.sid},
          {"target", w.target},
          {"url", ctx.url(product, conversation_path(c) + "/Webhooks/" + w.sid)},
          {"configuration", std::move(configuration)},
          {"date_created", rules::iso8601(w.created)},
          {"date_updated", rules::iso8601(w.updated)}};
}

// --- conversations --------------------------------------------------------------------------

const std::vector<std::string> conversation_fields = {
    "FriendlyName",    "UniqueName",    "Attributes",         "State",
    "Timers.Inactive", "Timers.Closed", "MessagingServiceSid"};

std::optional<std::chrono::seconds> timer_field(const call& c, const std::string& name,
                                                std::chrono::seconds at_least) {
  auto text = c.param(name);
  if (!text)
    return std::nullopt;
  auto d = rules::parse_duration(*text);
  if (!d || *d < at_least)
    throw api_error(400, 20001,
                    "Invalid " + name + " '" + *text + "': use an ISO 8601 duration of at least " +
                        std::to_string(at_least.count() / 60) + " minutes, such as PT" +
                        std::to_string(at_least.count() / 60) + "M or P1D");
  return d;
}

/// Validates every conversation field of a create or update before anything changes, then
/// applies them. A new conversation (`conv` not yet stored) is stored before the fields are
/// applied, so that the store indexes them; returns the stored conversation.
conversation& apply_conversation_fields(context& ctx, const call& c, conversation& conv,
                                        bool is_new) {
  auto friendly = c.param("FriendlyName");
  if (friendly && friendly->size() > max_friendly_name)
    throw api_error(400, 20001, "Invalid FriendlyName: at most 256 characters");
  auto unique = c.param("UniqueName");
  if (unique) {
    if (rules::is_sid(*unique, "CH"))
      throw api_error(400, 50390,
                      "Unique name should not match the conversation SID pattern: '" + *unique +
                          "' looks like a Conversation SID (CH + 32 hex digits)");
    if (const auto* other = ctx.st.conversations.find_unique_name(*unique);
        other != nullptr && other != &conv)
      throw api_error(409, 50353,
                      "Conversation with provided unique name already exists: '" + *unique +
                          "' is " + other->sid +
                          "; fetch it with GET /conversations/v1/"
                          "Conversations/" +
                          url_segment(*unique));
  }
  std::optional<std::string> attributes;
  if (c.has("Attributes"))
    attributes = attributes_field(c);
  auto new_state = c.param("State");
  if (new_state) {
    if (*new_state != "active" && *new_state != "inactive" && *new_state != "closed" &&
        *new_state != "initializing")
      throw api_error(400, 20001,
                      "Invalid State '" + *new_state + "': use active, inactive or closed");
    if (conv.state == "closed" && *new_state != "closed")
      throw api_error(400, 20001,
                      "Conversation " + conv.sid +
                          " is closed and cannot be reopened; create a "
                          "new Conversation");
  }
  const auto inactive = timer_field(c, "Timers.Inactive", std::chrono::minutes{1});
  const auto closed = timer_field(c, "Timers.Closed", std::chrono::minutes{10});

  auto& store = ctx.st.conversations;
  auto& stored = is_new ? store.add(std::move(conv)) : conv;
  if (friendly)
    stored.friendly_name = friendly;
  if (unique)
    store.set_unique_name(stored, unique);
  if (attributes)
    stored.attributes = *attributes;
  if (new_state)
    store.set_state(stored, *new_state);
  if (auto v = c.param("MessagingServiceSid"))
    stored.messaging_service_sid = v;
  if (inactive)
    stored.inactive_after = inactive;
  if (closed)
    stored.closed_after = closed;
  if (inactive || closed)
    restart_timers(ctx, stored);
  return stored;
}

void add_conversation_routes(route_table& routes) {
  routes.add(
      "POST", "/conversations/v1/Conversations", conversation_fields,
      [](context& ctx, const call& c) {
        fire_timers(ctx);
        conversation conv;
        conv.sid = ctx.new_sid("CH");
        conv.created = conv.updated = ctx.now;
        return created(conversation_json(ctx, apply_conversation_fields(ctx, c, conv, true)));
      });
  routes.add(
      "GET", "/conversations/v1/Conversations", paging_fields({"State"}),
      [](context& ctx, const call& c) {
        fire_timers(ctx);
        const auto state = c.param("State");
        json::array all;
        for (const auto& conv : ctx.st.conversations.all())
          if (!state || conv.state == *state)
            all.push_back(conversation_json(ctx, conv));
        return ok(page_of(ctx, c, product, "/v1/Conversations", "conversations", std::move(all)));
      });
  routes.add("GET", "/conversations/v1/Conversations/{}", {}, [](context& ctx, const call& c) {
    return ok(conversation_json(ctx, conversation_of(ctx, c.arg(0))));
  });
  routes.add("POST", "/conversations/v1/Conversations/{}", conversation_fields,
             [](context& ctx, const call& c) {
               auto& conv = conversation_of(ctx, c.arg(0));
               apply_conversation_fields(ctx, c, conv, false);
               conv.updated = ctx.now;
               return ok(conversation_json(ctx, conv));
             });
  routes.add("DELETE", "/conversations/v1/Conversations/{}", {}, [](context& ctx, const call& c) {
    auto& conv = conversation_of(ctx, c.arg(0));
    ctx.st.conversations.remove(conv);
    return no_content();
  });
}

// --- participants ---------------------------------------------------------------------------

/// The open conversation that already holds an SMS binding address + proxy address, if any.
const conversation* holder_of_binding(context& ctx, const std::string& address,
                                      const std::string& proxy) {
  return ctx.st.conversations.open_binding(address, proxy).conv;
}

participant& participant_of(conversation& conv, const std::string& name) {
  const bool by_sid = rules::is_sid(name, "MB");
  auto it =
      std::find_if(conv.participants.begin(), conv.participants.end(), [&](const participant& p) {
        return by_sid ? p.sid == name : (p.identity && *p.identity == name);
      });
  if (it == conv.participants.end())
    throw api_error(
        404, 50432,
        "Participant not found: " + name + " is not a participant of Conversation " + conv.sid);
  return *it;
}

void add_participant_routes(route_table& routes) {
  const std::string base = "/conversations/v1/Conversations/{}/Participants";
  routes.add(
      "POST", base,
      {"Identity", "MessagingBinding.Address", "MessagingBinding.ProxyAddress", "Attributes",
       "RoleSid"},
      [](context& ctx, const call& c) {
        auto& conv = conversation_of(ctx, c.arg(0));
        auto identity = c.param("Identity");
        auto address = c.param("MessagingBinding.Address");
        auto proxy = c.param("MessagingBinding.ProxyAddress");
        if (!identity && !address)
          throw api_error(400, 20001,
                          "Missing required parameter: give Identity (a chat user) or "
                          "MessagingBinding.Address with MessagingBinding.ProxyAddress (an SMS "
                          "participant)");
        if (address && !proxy)
          throw missing_parameter("MessagingBinding.ProxyAddress");
        if (identity && address)
          throw api_error(400, 20001,
                          "Identity and MessagingBinding.Address cannot be combined: an SMS "
                          "participant has no identity");
        if (identity)
          for (const auto& p : conv.participants)
            if (p.identity && *p.identity == *identity)
              throw api_error(409, 50433,
                              "Participant already exists: identity '" + *identity + "' is " +
                                  p.sid + " in Conversation " + conv.sid);
        if (address)
          if (const auto* holder = holder_of_binding(ctx, *address, *proxy))
            throw api_error(409, 50416,
                            "A binding for this participant and proxy address already exists in "
                            "Conversation " +
                                holder->sid + " (" + *address + " via " + *proxy +
                                "). Close or delete that conversation, remove its participant, or "
                                "use another proxy address; GET /conversations/v1/"
                                "ParticipantConversations?Address=... finds it");
        participant p;
        p.sid = ctx.new_sid("MB");
        p.identity = identity;
        p.address = address;
        p.proxy_address = proxy;
        p.attributes = attributes_field(c);
        p.role_sid = c.param("RoleSid");
        p.created = p.updated = ctx.now;
        return created(
            participant_json(ctx, conv, ctx.st.conversations.add_participant(conv, std::move(p))));
      });
  routes.add("GET", base, paging_fields(), [](context& ctx, const call& c) {
    auto& conv = conversation_of(ctx, c.arg(0));
    json::array all;
    for (const auto& p : conv.participants)
      all.push_back(participant_json(ctx, conv, p));
    return ok(page_of(ctx, c, product, conversation_path(conv) + "/Participants", "participants",
                      std::move(all)));
  });
  routes.add("GET", base + "/{}", {}, [](context& ctx, const call& c) {
    auto& conv = conversation_of(ctx, c.arg(0));
    return ok(participant_json(ctx, conv, participant_of(conv, c.arg(1))));
  });
  routes.add("DELETE", base + "/{}", {}, [](context& ctx, const call& c) {
    auto& conv = conversation_of(ctx, c.arg(0));
    auto& p = participant_of(conv, c.arg(1));
    ctx.st.conversations.remove_participant(conv, p);
    return no_content();
  });
}

// --- messages and their webhooks ------------------------------------------------------------

/// Adds a message to a conversation, restarts its timers, and queues its onMessageAdded
/// webhooks when `notify` (inbound SMS always; REST only with X-Twilio-Webhook-Enabled: true).
const message& add_message(context& ctx, conversation& conv, message m, const char* source,
                           bool notify) {
  m.sid = ctx.new_sid("IM");
  m.index = conv.next_message_index++;
  m.created = m.updated = ctx.now;
  conv.messages.push_back(std::move(m));
  const auto& stored = conv.messages.back();
  if (conv.state == "inactive")
    ctx.st.conversations.set_state(conv, "active");
  restart_timers(ctx, conv);
  conv.updated = ctx.now;
  if (!notify)
    return stored;
  for (const auto& w : conv.webhooks) {
    if (w.target != "webhook" || !w.url ||
        std::find(w.filters.begin(), w.filters.end(), "onMessageAdded") == w.filters.end())
      continue;
    webhook_call call;
    call.url = *w.url;
    call.method = w.method;
    call.event = "onMessageAdded";
    call.webhook_sid = w.sid;
    call.params = {{"EventType", "onMessageAdded"},
                   {"AccountSid", ctx.options.account_sid},
                   {"ChatServiceSid", chat_service_sid(ctx)},
                   {"ConversationSid", conv.sid},
                   {"MessageSid", stored.sid},
                   {"Index", std::to_string(stored.index)},
                   {"Author", stored.author},
                   {"Body", stored.body.value_or("")},
                   {"Attributes", stored.attributes},
                   {"Source", source},
                   {"DateCreated", rules::iso8601(stored.created)},
                   {"WebhookSid", w.sid},
                   {"WebhookType", "webhook"},
                   {"RetryCount", "0"}};
    if (stored.participant_sid)
      call.params.emplace_back("ParticipantSid", *stored.participant_sid);
    if (conv.messaging_service_sid)
      call.params.emplace_back("MessagingServiceSid", *conv.messaging_service_sid);
    ctx.webhooks.push_back(std::move(call));
  }
  return stored;
}

void check_body(const std::string& body) {
  const auto n = characters(body);
  if (n > max_body_chars)
    throw api_error(400, 50504,
                    "Message body parameter is too long: " + std::to_string(n) +
                        " characters; a message holds at most 1600. Split it into several "
                        "messages");
}

void add_message_routes(route_table& routes) {
  const std::string base = "/conversations/v1/Conversations/{}/Messages";
  routes.add("POST", base, {"Author", "Body", "Attributes"}, [](context& ctx, const call& c) {
    auto& conv = conversation_of(ctx, c.arg(0));
    auto body = c.param("Body");
    if (!body)
      throw missing_parameter("Body");
    check_body(*body);
    message m;
    m.author = c.param("Author").value_or("system");
    m.body = body;
    m.attributes = attributes_field(c);
    // Twilio ties a message to the participant whose identity (or SMS address) wrote it.
    for (const auto& p : conv.participants)
      if ((p.identity && *p.identity == m.author) || (p.address && *p.address == m.author))
        m.participant_sid = p.sid;
    const bool notify = c.header("X-Twilio-Webhook-Enabled") == "true";
    const auto& stored = add_message(ctx, conv, std::move(m), "API", notify);
    return created(message_json(ctx, conv, stored));
  });
  routes.add("GET", base, paging_fields({"Order"}), [](context& ctx, const call& c) {
    auto& conv = conversation_of(ctx, c.arg(0));
    const auto order = c.param("Order").value_or("asc");
    if (order != "asc" && order != "desc")
      throw api_error(400, 20001, "Invalid Order '" + order + "': use asc or desc");
    json::array all;
    for (const auto& m : conv.messages)
      all.push_back(message_json(ctx, conv, m));
    if (order == "desc")
      std::reverse(all.begin(), all.end());
    return ok(page_of(ctx, c, product, conversation_path(conv) + "/Messages", "messages",
                      std::move(all)));
  });
  auto message_of = [](conversation& conv, const std::string& sid) -> message& {
    auto it = std::find_if(conv.messages.begin(), conv.messages.end(),
                           [&](const message& m) { return m.sid == sid; });
    if (it == conv.messages.end())
      throw not_found(20404, conversation_path(conv) + "/Messages/" + sid);
    return *it;
  };
  routes.add("GET", base + "/{}", {}, [=](context& ctx, const call& c) {
    auto& conv = conversation_of(ctx, c.arg(0));
    return ok(message_json(ctx, conv, message_of(conv, c.arg(1))));
  });
  routes.add("DELETE", base + "/{}", {}, [=](context& ctx, const call& c) {
    auto& conv = conversation_of(ctx, c.arg(0));
    auto& m = message_of(conv, c.arg(1));
    conv.messages.remove_if([&](const message& o) { return &o == &m; });
    return no_content();
  });
}

void add_webhook_routes(route_table& routes) {
  const std::string base = "/conversations/v1/Conversations/{}/Webhooks";
  routes.add(
      "POST", base,
      {"Target", "Configuration.Url", "Configuration.Method", "Configuration.Filters",
       "Configuration.Triggers", "Configuration.FlowSid"},
      [](context& ctx, const call& c) {
        auto& conv = conversation_of(ctx, c.arg(0));
        auto target = c.param("Target");
        if (!target)
          throw missing_parameter("Target");
        if (*target != "webhook" && *target != "trigger" && *target != "studio")
          throw api_error(400, 20001,
                          "Invalid Target '" + *target + "': use webhook, trigger or studio");
        conversation_webhook w;
        w.target = *target;
        w.url = c.param("Configuration.Url");
        if (*target != "studio" && !w.url)
          throw missing_parameter("Configuration.Url");
        if (auto method = c.param("Configuration.Method")) {
          std::string upper;
          for (char ch : *method)
            upper += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
          if (upper != "GET" && upper != "POST")
            throw api_error(400, 20001,
                            "Invalid Configuration.Method '" + *method + "': use GET or POST");
          w.method = upper;
        }
        w.filters = c.params("Configuration.Filters");
        for (const auto& f : w.filters)
          if (std::find(known_filters.begin(), known_filters.end(), f) == known_filters.end())
            throw api_error(400, 20001,
                            "Invalid Configuration.Filters '" + f +
                                "': use event names such as onMessageAdded");
        w.triggers = c.params("Configuration.Triggers");
        w.flow_sid = c.param("Configuration.FlowSid");
        if (*target == "studio" && !w.flow_sid)
          throw missing_parameter("Configuration.FlowSid");
        w.sid = ctx.new_sid("WH");
        w.created = w.updated = ctx.now;
        conv.webhooks.push_back(std::move(w));
        return created(webhook_json(ctx, conv, conv.webhooks.back()));
      });
  routes.add("GET", base, paging_fields(), [](context& ctx, const call& c) {
    auto& conv = conversation_of(ctx, c.arg(0));
    json::array all;
    for (const auto& w : conv.webhooks)
      all.push_back(webhook_json(ctx, conv, w));
    return ok(page_of(ctx, c, product, conversation_path(conv) + "/Webhooks", "webhooks",
                      std::move(all), 5));
  });
  auto webhook_of = [](conversation& conv, const std::string& sid) -> conversation_webhook& {
    auto it = std::find_if(conv.webhooks.begin(), conv.webhooks.end(),
                           [&](const conversation_webhook& w) { return w.sid == sid; });
    if (it == conv.webhooks.end())
      throw not_found(20404, conversation_path(conv) + "/Webhooks/" + sid);
    return *it;
  };
  routes.add("GET", base + "/{}", {}, [=](context& ctx, const call& c) {
    auto& conv = conversation_of(ctx, c.arg(0));
    return ok(webhook_json(ctx, conv, webhook_of(conv, c.arg(1))));
  });
  routes.add("DELETE", base + "/{}", {}, [=](context& ctx, const call& c) {
    auto& conv = conversation_of(ctx, c.arg(0));
    auto& w = webhook_of(conv, c.arg(1));
    conv.webhooks.remove_if([&](const conversation_webhook& o) { return &o == &w; });
    return no_content();
  });
}

// --- ParticipantConversations ---------------------------------------------------------------

void add_participant_conversation_routes(route_table& routes) {
  routes.add("GET", "/conversations/v1/ParticipantConversations",
             paging_fields({"Identity", "Address"}), [](context& ctx, const call& c) {
               fire_timers(ctx);
               const auto identity = c.param("Identity");
               const auto address = c.param("Address");
               if (!identity && !address)
                 throw api_error(400, 20001,
                                 "Missing required parameter: give Identity or Address (e.g. "
                                 "?Address=%2B15551234567)");
               json::array all;
               for (const auto& [conv_ptr, p_ptr] :
                    ctx.st.conversations.participants_of(identity, address)) {
                 const auto& conv = *conv_ptr;
                 const auto& p = *p_ptr;
                 const auto conv_json = conversation_json(ctx, conv);
                 json::object links{{"participant", ctx.url(product, conversation_path(conv) +
                                                                         "/Participants/" + p.sid)},
                                    {"conversation", ctx.url(product, conversation_path(conv))}};
                 all.push_back(json::object{
                     {"account_sid", ctx.options.account_sid},
                     {"chat_service_sid", chat_service_sid(ctx)},
                     {"participant_sid", p.sid},
                     {"participant_user_sid", nullptr},
                     {"participant_identity", optional_string(p.identity)},
                     {"participant_messaging_binding", binding_json(p)},
                     {"conversation_sid", conv.sid},
                     {"conversation_unique_name", optional_string(conv.unique_name)},
                     {"conversation_friendly_name", optional_string(conv.friendly_name)},
                     {"conversation_attributes", conv.attributes},
                     {"conversation_date_created", rules::iso8601(conv.created)},
                     {"conversation_date_updated", rules::iso8601(conv.updated)},
                     {"conversation_created_by", "system"},
                     {"conversation_state", conv.state},
                     {"conversation_timers", conv_json.at("timers")},
                     {"links", std::move(links)}});
               }
               return ok(page_of(ctx, c, product, "/v1/ParticipantConversations", "conversations",
                                 std::move(all), 50));
             });
}

}  // namespace

void add_conversations_routes(route_table& routes) {
  add_conversation_routes(routes);
  add_participant_routes(routes);
  add_message_routes(routes);
  add_webhook_routes(routes);
  add_participant_conversation_routes(routes);
}

answer inbound_sms(context& ctx, const call& c) {
  fire_timers(ctx);
  const auto from = c.param("From");
  const auto to = c.param("To");
  if (!from)
    throw missing_parameter("From");
  if (!to)
    throw missing_parameter("To");
  const auto body = c.param("Body").value_or("");
  check_body(body);
  if (const auto holder = ctx.st.conversations.open_binding(*from, *to); holder.conv != nullptr) {
    message m;
    m.author = *from;
    m.body = body;
    m.participant_sid = holder.p->sid;
    const auto& stored = add_message(ctx, *holder.conv, std::move(m), "SMS", true);
    return created(message_json(ctx, *holder.conv, stored));
  }
  throw api_error(404, 20404,
                  "No open Conversation has an SMS participant with address " + *from +
                      " and proxy address " + *to +
                      ": add one with POST /conversations/v1/Conversations/{CH}/Participants "
                      "(MessagingBinding.Address, MessagingBinding.ProxyAddress)");
}

json::value dump_conversations(context& ctx) {
  fire_timers(ctx);
  json::array out;
  for (const auto& conv : ctx.st.conversations.all()) {
    auto c_json = conversation_json(ctx, conv);
    json::array participants, messages, webhooks;
    for (const auto& p : conv.participants)
      participants.push_back(participant_json(ctx, conv, p));
    for (const auto& m : conv.messages)
      messages.push_back(message_json(ctx, conv, m));
    for (const auto& w : conv.webhooks)
      webhooks.push_back(webhook_json(ctx, conv, w));
    c_json["participants"] = std::move(participants);
    c_json["messages"] = std::move(messages);
    c_json["webhooks"] = std::move(webhooks);
    out.push_back(std::move(c_json));
  }
  return json::object{{"conversations", std::move(out)}};
}

}  // namespace switchboard::adapters::twilio::internal
