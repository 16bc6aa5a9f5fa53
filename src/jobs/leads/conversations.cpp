// The "conversations" service: a conversation between a customer and a location's number
// through a proxy number, opened on Twilio step by step (each step found again after an unknown
// outcome, never repeated), and closed once no active lead uses it.

#include "jobs/leads/services.hpp"

#include "core/time.hpp"

#include <spdlog/spdlog.h>

namespace switchboard::jobs::leads {

using core::conversation_status;
using core::to_string;

namespace {
std::string text_of(conversation_status s) { return std::string{to_string(s)}; }
/// How many pages of ParticipantConversations a binding lookup reads at most (50 a page, the most
/// Twilio gives).
constexpr int max_binding_pages = 1000;
}  // namespace

/// A Twilio answer as a step's outcome: the body when it succeeded, else the right exception.
json::value ok_or_throw(const tw::call_result& r) {
  switch (r.kind) {
    case tw::outcome::ok: return r.body;
    case tw::outcome::retryable: throw step_retry(r.message, r.retry_after);
    case tw::outcome::ambiguous: throw step_retry(r.message, r.retry_after, true);
    default:
      throw step_terminal(r.message +
                          (r.code != 0 ? " (Twilio error " + std::to_string(r.code) + ")" : ""));
  }
}

/// A read done to find out what happened: success, "not found", or a retry.
std::optional<json::value> lookup(const tw::call_result& r) {
  if (r.kind == tw::outcome::ok)
    return r.body;
  if (r.status == 404)
    return std::nullopt;
  throw step_retry("looking up an earlier attempt: " + r.message, r.retry_after);
}

std::optional<json::value> search_list(
    tw::twilio_api& twilio, const tw::call_result& first, const char* key, int max_pages,
    const std::function<list_search(const json::object&, std::optional<json::value>&)>& visit) {
  auto page = lookup(first);
  for (int pages = 1; page; ++pages) {
    const auto& o = page->as_object();
    std::optional<json::value> found;
    if (const auto* list = o.if_contains(key); list != nullptr && list->is_array())
      for (const auto& record : list->get_array())
        if (!record.is_object() || visit(record.as_object(), found) == list_search::stop || found)
          return found;
    const auto* meta = o.if_contains("meta");
    auto next = meta != nullptr && meta->is_object() ? str(meta->as_object(), "next_page_url")
                                                     : str(o, "next_page_uri");
    if (next.empty())
      return std::nullopt;
    if (pages >= max_pages)
      throw step_retry(std::string{"the list of "} + key + " has more than " +
                       std::to_string(max_pages) + " pages; retrying later");
    page = lookup(twilio.fetch_page(next));
  }
  return std::nullopt;
}

tw::twilio_api& lead_connection::twilio() {
  if (!twilio_) {
    try {
      twilio_ = make_twilio_();
    } catch (const std::exception& e) {
      throw step_terminal(std::string{"cannot reach Twilio: "} + e.what());
    }
  }
  return *twilio_;
}

std::uint64_t begin_conversation_close(lead_connection& c, const conversation_row& conv) {
  c.leads.set_conversation_status(conv.id, text_of(conversation_status::closing), rfc3339_now());
  return c.journal().create_invocation({"conversations", conv.id, "close", "{}", ""}, rfc3339_now(),
                                       core::unix_millis_now());
}

bool claim_conversation_release(lead_connection& c, const std::string& id) {
  auto conv = c.leads.conversation(id);
  if (!conv || !core::active_conversation(conv->status) ||
      !c.leads.conversation_leads(conv->id, true).empty())
    return false;  // a conversation stays open while any lead uses it
  c.leads.set_conversation_status(conv->id, text_of(conversation_status::closing), rfc3339_now());
  return true;
}

std::optional<std::uint64_t> release_conversation(lead_connection& c, const std::string& id) {
  if (!claim_conversation_release(c, id))
    return std::nullopt;
  return c.journal().create_invocation({"conversations", id, "close", "{}", ""}, rfc3339_now(),
                                       core::unix_millis_now());
}

std::optional<std::uint64_t> end_lead(lead_connection& c, const std::string& id,
                                      core::lead_status status, const std::string& reason,
                                      const std::string& replaced_by, const std::string& error) {
  auto lead = c.leads.lead(id);
  if (!lead || !core::active_lead(lead->status))
    return std::nullopt;
  c.leads.set_lead_closed(id, std::string{to_string(status)}, reason, replaced_by, error,
                          rfc3339_now());
  return release_conversation(c, lead->conversation_id);
}

json::value lead_services::conversation_open(step_context& ctx) {
  auto& store = store_of(ctx);
  auto conv = store.conversation(ctx.invocation().key);
  if (!conv)
    throw step_terminal("no conversation " + ctx.invocation().key);
  if (conv->status == text_of(conversation_status::open) && !conv->sid.empty())
    return json::object{{"sid", conv->sid}};
  if (conv->status != text_of(conversation_status::opening))
    throw step_terminal("conversation " + conv->id + " is " + conv->status +
                        ", it cannot open again");
  const auto unique_name = conv->unique_name();
  auto find_by_name = [&]() -> std::optional<json::value> {
    auto found = lookup(twilio_of(ctx).fetch_conversation(unique_name));
    if (!found)
      return std::nullopt;
    return json::value(json::object{{"sid", str(found->as_object(), "sid")}});
  };
  auto created = ctx.effect(
      "conversation.create",
      [&]() -> json::value {
        tw::conversation_fields f;
        f.unique_name = unique_name;
        f.friendly_name = "Lead " + conv->customer_phone + " / " + conv->location_phone;
        f.attributes = json::object{{"switchboard_conversation", conv->id}};
        auto r = twilio_of(ctx).create_conversation(f);
        if (r.kind == tw::outcome::conflict)  // the unique name exists: an earlier attempt made it
          if (auto found = find_by_name())
            return *found;
        return json::object{{"sid", str(ok_or_throw(r).as_object(), "sid")}};
      },
      find_by_name);
  auto sid = str(created.as_object(), "sid");

  if (!cfg.leads.webhook_url.empty()) {
    const auto& url = cfg.leads.webhook_url;
    auto find_webhook = [&]() -> std::optional<json::value> {
      // Twilio's own URL: the client maps it to the configured host (the emulator's too).
      auto page = lookup(twilio_of(ctx).fetch_page(
          "https://conversations.twilio.com/v1/Conversations/" + sid + "/Webhooks"));
      if (!page)
        return std::nullopt;
      if (const auto* list = page->as_object().if_contains("webhooks");
          list != nullptr && list->is_array())
        for (const auto& w : list->get_array()) {
          const auto* cfgv = w.as_object().if_contains("configuration");
          if (cfgv != nullptr && cfgv->is_object() && str(cfgv->as_object(), "url") == url)
            return json::value(json::object{{"webhook", str(w.as_object(), "sid")}});
        }
      return std::nullopt;
    };
    ctx.effect(
        "conversation.webhook",
        [&]() -> json::value {
          tw::conversation_webhook_fields f;
          f.url = url;
          f.filters = {"onMessageAdded"};
          auto body = ok_or_throw(twilio_of(ctx).create_conversation_webhook(sid, f));
          return json::object{{"webhook", str(body.as_object(), "sid")}};
        },
        find_webhook);
  }

  // The binding of an SMS address through a proxy number: who holds it now, if anyone. Every
  // page is read: a location's phone takes part in one conversation per customer it ever had,
  // closed ones included, and the list is oldest first, so the open holder is often on the last.
  auto holder_of = [&](const std::string& address) -> std::optional<std::string> {
    auto holder = search_list(
        twilio_of(ctx), twilio_of(ctx).participant_conversations(address), "conversations",
        max_binding_pages, [&](const json::object& c, std::optional<json::value>& found) {
          const auto* binding = c.if_contains("participant_messaging_binding");
          if (binding != nullptr && binding->is_object() &&
              str(binding->as_object(), "proxy_address") == conv->proxy_number &&
              str(c, "conversation_state") != "closed")
            found = json::value(str(c, "conversation_sid"));
          return list_search::next;
        });
    if (!holder)
      return std::nullopt;
    return std::string(holder->as_string());
  };
  auto add = [&](const std::string& step, const std::string& address, const char* role,
                 bool may_adopt) {
    auto find = [&]() -> std::optional<json::value> {
      // Another conversation holding the pair is not our earlier attempt: for the location, that
      // is for the add to refuse (50416) as the run below does, not a success.
      if (auto holder = holder_of(address); holder && (*holder == sid || may_adopt))
        return json::value(json::object{{"sid", *holder}, {"adopted", *holder != sid}});
      return std::nullopt;
    };
    return ctx.effect(
        step,
        [&]() -> json::value {
          auto r = twilio_of(ctx).add_sms_participant(
              sid, address, conv->proxy_number,
              json::object{{"role", role}, {"conversation", conv->id}});
          if (r.kind == tw::outcome::conflict && r.code == 50416) {
            // The pair is bound in a conversation already: an earlier attempt of ours, or one that
            // holds it from before. Use that conversation; never fail the lead over it.
            auto holder = holder_of(address);
            if (!holder)
              throw step_retry("Twilio says " + address + " via " + conv->proxy_number +
                               " is bound already, but no open conversation shows it yet");
            if (*holder != sid && !may_adopt)
              throw step_terminal(
                  address + " via " + conv->proxy_number + " is bound in conversation " + *holder +
                  ", not " + sid +
                  "; close that conversation or add numbers to leads.proxy_numbers");
            return json::object{{"sid", *holder}, {"adopted", *holder != sid}};
          }
          ok_or_throw(r);
          return json::object{{"sid", sid}};
        },
        find);
  };
  auto customer = add("conversation.customer", conv->customer_phone, "customer", true);
  const auto adopted = str(customer.as_object(), "sid");
  if (!adopted.empty() && adopted != sid) {
    // The conversation created above stays empty: close it so it holds nothing.
    const auto empty_sid = sid;
    ctx.effect("conversation.discard", [&]() -> json::value {
      auto r = twilio_of(ctx).update_conversation_state(empty_sid, tw::conversation_state::closed);
      if (r.status != 404)
        ok_or_throw(r);
      return json::object{{"closed", empty_sid}};
    });
    sid = adopted;
    spdlog::info("leads: conversation {} uses {}, which already held {} via {}", conv->id, sid,
                 conv->customer_phone, conv->proxy_number);
  }
  add("conversation.location", conv->location_phone, "location", false);
  return ctx.local("conversation.ready", [&]() -> json::value {
    store_of(ctx).set_conversation_sid(conv->id, sid);
    store_of(ctx).set_conversation_status(conv->id, text_of(conversation_status::open),
                                          rfc3339_now());
    return json::object{{"sid", sid}};
  });
}

json::value lead_services::conversation_close(step_context& ctx) {
  auto conv = store_of(ctx).conversation(ctx.invocation().key);
  if (!conv || conv->status == text_of(conversation_status::closed))
    return json::object{{"status", "closed"}};
  if (!conv->sid.empty()) {
    const auto sid = conv->sid;
    ctx.effect(
        "conversation.close",
        [&]() -> json::value {
          auto r = twilio_of(ctx).update_conversation_state(sid, tw::conversation_state::closed);
          if (r.status != 404)  // gone already: closed is what we wanted
            ok_or_throw(r);
          return json::object{{"sid", sid}};
        },
        [&]() -> std::optional<json::value> {
          auto found = lookup(twilio_of(ctx).fetch_conversation(sid));
          if (!found || str(found->as_object(), "state") == "closed")
            return json::value(json::object{{"sid", sid}});
          return std::nullopt;
        });
  }
  return ctx.local("conversation.closed", [&]() -> json::value {
    store_of(ctx).set_conversation_status(conv->id, text_of(conversation_status::closed),
                                          rfc3339_now());
    return json::object{{"status", "closed"}};
  });
}

std::vector<std::uint64_t> lead_services::conversation_failed(lead_connection& c,
                                                              const invocation_row& row,
                                                              const std::string& why) {
  if (row.handler != "open")
    return {};
  // Its leads fail through their own call step; the conversation ends with them. If Twilio
  // has it already (the create step is done), it is closed there too, so that it holds no
  // bindings.
  spdlog::warn("leads: conversation {} could not open: {}", row.key, why);
  auto conv = c.leads.conversation(row.key);
  if (!conv || conv->status != text_of(conversation_status::opening))
    return {};
  std::string sid;
  if (auto created = c.journal().step(row.n, "conversation.create");
      created && created->status == "done") {
    json::error_code ec;
    auto v = json::parse(created->result, ec);
    if (!ec && v.is_object())
      sid = str(v.as_object(), "sid");
  }
  if (sid.empty()) {
    c.leads.set_conversation_status(conv->id, text_of(conversation_status::closed), rfc3339_now());
    return {};
  }
  c.leads.set_conversation_sid(conv->id, sid);
  return {begin_conversation_close(c, *conv)};
}

}  // namespace switchboard::jobs::leads
