#include "jobs/leads/job.hpp"

#include "engine/durable/invocations.hpp"
#include "adapters/sqlite/lead_store.hpp"
#include "adapters/twilio/client.hpp"
#include "adapters/twilio/signature.hpp"
#include "core/json_path.hpp"
#include "core/lead_rules.hpp"
#include "core/phone.hpp"
#include "core/time.hpp"

#include <boost/json.hpp>
#include <httplib.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>
#include <random>

namespace switchboard {

namespace json = boost::json;
namespace tw = adapters::twilio;
using actors::step_context;
using actors::step_retry;
using actors::step_terminal;
using adapters::sqlite::conversation_row;
using adapters::sqlite::invocation_row;
using adapters::sqlite::lead_row;
using adapters::sqlite::lead_store;

namespace {

keyed_answer answer(int status, json::value body) { return keyed_answer{status, std::move(body)}; }

keyed_answer error(int status, const std::string& why, json::object extra = {}) {
  extra["error"] = why;
  return answer(status, std::move(extra));
}

std::string str(const json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string{};
}

/// A Twilio answer as a step's outcome: the body when it succeeded, else the right exception.
json::value ok_or_throw(const tw::call_result& r) {
  switch (r.kind) {
    case tw::outcome::ok:
      return r.body;
    case tw::outcome::retryable:
      throw step_retry(r.message, r.retry_after);
    case tw::outcome::ambiguous:
      throw step_retry(r.message, {}, true);
    default:
      throw step_terminal(r.message + (r.code != 0 ? " (Twilio error " + std::to_string(r.code) + ")" : ""));
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

json::value lead_json(const lead_row& l, const std::string& conversation_sid) {
  return json::object{{"id", l.id},
                      {"status", l.status},
                      {"dealer_id", l.dealer_id},
                      {"location_id", l.location_id},
                      {"customer_name", l.customer_name},
                      {"customer_phone", l.customer_phone},
                      {"message", l.message},
                      {"location_phone", l.location_phone},
                      {"proxy_number", l.proxy_number},
                      {"conversation_id", l.conversation_id},
                      {"conversation_sid", conversation_sid},
                      {"created_at", l.created_at},
                      {"opened_at", l.opened_at},
                      {"closed_at", l.closed_at},
                      {"close_reason", l.close_reason},
                      {"replaced_by", l.replaced_by},
                      {"error", l.error},
                      {"customer_messages", l.customer_messages},
                      {"dealer_messages", l.dealer_messages},
                      {"reminders_sent", l.reminders_sent}};
}

json::value invocation_json(const actors::invocation_view& v) {
  json::array steps;
  for (const auto& s : v.steps)
    steps.push_back(json::object{{"name", s.name},
                                 {"status", s.status},
                                 {"attempts", s.attempts},
                                 {"error", s.error},
                                 {"updated_at", s.updated_at}});
  json::value result = nullptr;
  if (!v.row.result.empty()) {
    json::error_code ec;
    result = json::parse(v.row.result, ec);
  }
  return json::object{{"id", v.row.id()},          {"service", v.row.service}, {"key", v.row.key},
                      {"handler", v.row.handler},  {"status", v.row.status},   {"result", result},
                      {"error", v.row.error},      {"created_at", v.row.created_at},
                      {"updated_at", v.row.updated_at}, {"steps", std::move(steps)}};
}

std::optional<std::uint64_t> invocation_number(const std::string& id) {
  if (id.rfind("inv-", 0) != 0 || id.size() < 5 || id.size() > 24)
    return std::nullopt;
  std::uint64_t n = 0;
  for (std::size_t i = 4; i < id.size(); ++i) {
    if (id[i] < '0' || id[i] > '9')
      return std::nullopt;
    n = n * 10 + static_cast<std::uint64_t>(id[i] - '0');
  }
  return n;
}

std::string random_id(const char* prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string out = prefix;
  auto v = rng();
  for (int i = 0; i < 16; ++i, v >>= 4)
    out += hex[v & 0xF];
  return out;
}

/// Closes `id` (status closed or failed) and, when its conversation has no active lead left,
/// marks the conversation closing and creates its close invocation (returned, to dispatch after
/// the commit). Inside a write transaction.
std::optional<std::uint64_t> end_lead(lead_store& store, const std::string& id, const std::string& status,
                                      const std::string& reason, const std::string& replaced_by,
                                      const std::string& error) {
  auto lead = store.lead(id);
  if (!lead || (lead->status != "opening" && lead->status != "open"))
    return std::nullopt;
  store.set_lead_closed(id, status, reason, replaced_by, error, rfc3339_now());
  auto conv = store.conversation(lead->conversation_id);
  if (!conv || (conv->status != "opening" && conv->status != "open") ||
      !store.conversation_leads(conv->id, true).empty())
    return std::nullopt;  // a conversation stays open while any lead uses it
  store.set_conversation_status(conv->id, "closing", rfc3339_now());
  return store.create_invocation({"conversations", conv->id, "close", "{}", ""}, rfc3339_now(), core::unix_millis_now());
}

/// Splits "http://host:port/path?q" into ("http://host:port", "/path?q").
std::pair<std::string, std::string> split_url(const std::string& url) {
  const auto scheme = url.find("://");
  const auto slash = url.find('/', scheme == std::string::npos ? 0 : scheme + 3);
  if (slash == std::string::npos)
    return {url, "/"};
  return {url.substr(0, slash), url.substr(slash)};
}

} // namespace

struct leads::impl {
  config cfg;
  std::function<std::string()> listen_address;
  std::string auth_token;  // TWILIO_AUTH_TOKEN, for inbound signatures
  std::unique_ptr<actors::invocation_engine> engine;

  // --- the conversation service ---------------------------------------------------------------

  json::value conversation_open(step_context& ctx) {
    auto& store = ctx.store();
    auto conv = store.conversation(ctx.invocation().key);
    if (!conv)
      throw step_terminal("no conversation " + ctx.invocation().key);
    if (conv->status == "open" && !conv->sid.empty())
      return json::object{{"sid", conv->sid}};
    if (conv->status != "opening")
      throw step_terminal("conversation " + conv->id + " is " + conv->status + ", it cannot open again");
    const auto unique_name = conv->unique_name();
    auto find_by_name = [&]() -> std::optional<json::value> {
      auto found = lookup(ctx.twilio().fetch_conversation(unique_name));
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
          auto r = ctx.twilio().create_conversation(f);
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
        auto page = lookup(ctx.twilio().fetch_page("https://conversations.twilio.com/v1/Conversations/" + sid + "/Webhooks"));
        if (!page)
          return std::nullopt;
        if (const auto* list = page->as_object().if_contains("webhooks"); list != nullptr && list->is_array())
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
            auto body = ok_or_throw(ctx.twilio().create_conversation_webhook(sid, f));
            return json::object{{"webhook", str(body.as_object(), "sid")}};
          },
          find_webhook);
    }

    // The binding of an SMS address through a proxy number: who holds it now, if anyone.
    auto holder_of = [&](const std::string& address) -> std::optional<std::string> {
      auto r = ctx.twilio().participant_conversations(address);
      auto page = lookup(r);
      if (!page)
        return std::nullopt;
      if (const auto* list = page->as_object().if_contains("conversations"); list != nullptr && list->is_array())
        for (const auto& c : list->get_array()) {
          const auto& o = c.as_object();
          const auto* binding = o.if_contains("participant_messaging_binding");
          if (binding == nullptr || !binding->is_object())
            continue;
          if (str(binding->as_object(), "proxy_address") == conv->proxy_number &&
              str(o, "conversation_state") != "closed")
            return str(o, "conversation_sid");
        }
      return std::nullopt;
    };
    auto add = [&](const std::string& step, const std::string& address, const char* role, bool may_adopt) {
      auto find = [&]() -> std::optional<json::value> {
        if (auto holder = holder_of(address))
          return json::value(json::object{{"sid", *holder}});
        return std::nullopt;
      };
      return ctx.effect(
          step,
          [&]() -> json::value {
            auto r = ctx.twilio().add_sms_participant(sid, address, conv->proxy_number,
                                                      json::object{{"role", role}, {"conversation", conv->id}});
            if (r.kind == tw::outcome::conflict && r.code == 50416) {
              // The pair is bound in a conversation already: an earlier attempt of ours, or one that
              // holds it from before. Use that conversation; never fail the lead over it.
              auto holder = holder_of(address);
              if (!holder)
                throw step_retry("Twilio says " + address + " via " + conv->proxy_number +
                                 " is bound already, but no open conversation shows it yet");
              if (*holder != sid && !may_adopt)
                throw step_terminal(address + " via " + conv->proxy_number + " is bound in conversation " + *holder +
                                    ", not " + sid + "; close that conversation or add numbers to leads.proxy_numbers");
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
        auto r = ctx.twilio().update_conversation_state(empty_sid, tw::conversation_state::closed);
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
      ctx.store().set_conversation_sid(conv->id, sid);
      ctx.store().set_conversation_status(conv->id, "open", rfc3339_now());
      return json::object{{"sid", sid}};
    });
  }

  json::value conversation_close(step_context& ctx) {
    auto conv = ctx.store().conversation(ctx.invocation().key);
    if (!conv || conv->status == "closed")
      return json::object{{"status", "closed"}};
    if (!conv->sid.empty()) {
      const auto sid = conv->sid;
      ctx.effect(
          "conversation.close",
          [&]() -> json::value {
            auto r = ctx.twilio().update_conversation_state(sid, tw::conversation_state::closed);
            if (r.status != 404)  // gone already: closed is what we wanted
              ok_or_throw(r);
            return json::object{{"sid", sid}};
          },
          [&]() -> std::optional<json::value> {
            auto found = lookup(ctx.twilio().fetch_conversation(sid));
            if (!found || str(found->as_object(), "state") == "closed")
              return json::value(json::object{{"sid", sid}});
            return std::nullopt;
          });
    }
    return ctx.local("conversation.closed", [&]() -> json::value {
      ctx.store().set_conversation_status(conv->id, "closed", rfc3339_now());
      return json::object{{"status", "closed"}};
    });
  }

  // --- the lead service -------------------------------------------------------------------------

  /// Sends a message into a lead's conversation as step `step`, at most once: a retry after an
  /// unknown outcome first lists the conversation's messages for this step's id.
  json::value send_once(step_context& ctx, const std::string& step, const std::string& sid, const std::string& body,
                        const std::string& lead_id) {
    const auto step_id = ctx.step_id(step);
    return ctx.effect(
        step,
        [&]() -> json::value {
          tw::message_fields m;
          m.body = body;
          m.attributes = json::object{{"step", step_id}, {"lead", lead_id}};
          auto r = ok_or_throw(ctx.twilio().send_message(sid, m));
          return json::object{{"message_sid", str(r.as_object(), "sid")}};
        },
        [&]() -> std::optional<json::value> {
          tw::message_listing listing;
          listing.newest_first = true;
          auto page = lookup(ctx.twilio().list_messages(sid, listing));
          if (!page)
            return std::nullopt;
          if (const auto* list = page->as_object().if_contains("messages"); list != nullptr && list->is_array())
            for (const auto& m : list->get_array()) {
              json::error_code ec;
              auto attributes = json::parse(str(m.as_object(), "attributes"), ec);
              if (!ec && attributes.is_object() && str(attributes.as_object(), "step") == step_id)
                return json::value(json::object{{"message_sid", str(m.as_object(), "sid")}});
            }
          return std::nullopt;
        });
  }

  /// A message template (leads.first_message, leads.reminder_message) filled for a lead; the
  /// configuration checked its placeholders.
  std::string render(lead_store& store, const std::string& tmpl, const lead_row& l) {
    auto loc = store.location(l.dealer_id, l.location_id);
    const json::object values{{"customer_name", l.customer_name}, {"customer_phone", l.customer_phone},
                              {"message", l.message},             {"dealer_name", loc ? loc->dealer_name : l.dealer_id},
                              {"location_name", loc ? loc->name : l.location_id}, {"lead_id", l.id}};
    auto r = core::render_template(tmpl, "", "", values);
    return r.text ? *r.text : tmpl;
  }

  json::value lead_submit(step_context& ctx) {
    const auto id = ctx.invocation().key;
    auto parsed = core::parse_submission(ctx.body(), cfg.leads.max_message_chars);
    if (auto* p = std::get_if<core::input_problem>(&parsed))
      throw step_terminal(p->field + ": " + p->problem);
    const auto sub = std::get<core::lead_submission>(parsed);

    auto admitted = ctx.local("lead.admit", [&]() -> json::value {
      auto& store = ctx.store();
      if (store.lead(id))
        return json::object{{"outcome", "exists"}};
      auto loc = store.location(sub.dealer_id, sub.location_id);
      if (!loc)
        throw step_terminal("dealer '" + sub.dealer_id + "' has no location '" + sub.location_id + "'");
      const auto open = store.active_lead(sub.customer_phone, sub.dealer_id, sub.location_id);
      const auto decision = core::admit(open, sub.replace);
      if (decision == core::admission::already_open)
        return json::object{{"outcome", "already_open"}, {"lead_id", *open}};
      std::optional<std::uint64_t> close_old;
      if (decision == core::admission::replace_open)
        store.set_lead_closed(*open, "closed", "replaced", id, "", rfc3339_now());
      auto conv = store.active_conversation(sub.customer_phone, loc->phone);
      if (!conv) {
        const auto proxy = core::choose_proxy(cfg.leads.proxy_numbers, store.proxies_in_use(sub.customer_phone, loc->phone));
        if (!proxy)
          throw step_terminal("no free proxy number: all " + std::to_string(cfg.leads.proxy_numbers.size()) +
                              " numbers of leads.proxy_numbers already bind " + sub.customer_phone + " or " + loc->phone +
                              " in open conversations; add numbers to the pool or close leads");
        conv = store.insert_conversation(sub.customer_phone, loc->phone, *proxy, rfc3339_now());
      }
      lead_row l;
      l.id = id;
      l.status = "opening";
      l.dealer_id = sub.dealer_id;
      l.location_id = sub.location_id;
      l.customer_name = sub.customer_name;
      l.customer_phone = sub.customer_phone;
      l.message = sub.message;
      l.location_phone = loc->phone;
      l.proxy_number = conv->proxy_number;
      l.conversation_id = conv->id;
      l.created_at = rfc3339_now();
      store.insert_lead(l);
      if (decision == core::admission::replace_open) {
        // After the new lead joined: the old conversation closes only if nobody uses it now.
        if (auto old = store.lead(*open); old) {
          auto old_conv = store.conversation(old->conversation_id);
          if (old_conv && (old_conv->status == "opening" || old_conv->status == "open") &&
              store.conversation_leads(old_conv->id, true).empty()) {
            store.set_conversation_status(old_conv->id, "closing", rfc3339_now());
            ctx.dispatch_after_commit(store.create_invocation({"conversations", old_conv->id, "close", "{}", ""},
                                                              rfc3339_now(), core::unix_millis_now()));
          }
        }
      }
      json::object out{{"outcome", "opening"}, {"conversation_id", conv->id}};
      if (open)
        out["replaced"] = *open;
      return out;
    });
    const auto& a = admitted.as_object();
    const auto outcome = str(a, "outcome");
    if (outcome == "already_open")
      return json::object{{"status", "already_open"}, {"lead_id", str(a, "lead_id")}};
    if (outcome == "exists")
      return json::object{{"status", "exists"}, {"lead_id", id}};

    auto opened = ctx.call("lead.conversation", "conversations", str(a, "conversation_id"), "open", json::object{});
    const auto sid = str(opened.as_object(), "sid");
    auto lead = ctx.store().lead(id);
    if (!lead || lead->status != "opening")
      return json::object{{"status", lead ? lead->status : "missing"}, {"lead_id", id}};
    send_once(ctx, "lead.first-message", sid, render(ctx.store(), cfg.leads.first_message, *lead), id);
    ctx.local("lead.opened", [&]() -> json::value {
      const auto now = core::unix_millis_now();
      ctx.store().set_lead_open(id, rfc3339_now(), now);
      if (cfg.leads.reminder_after.count() > 0)
        ctx.schedule(now + cfg.leads.reminder_after.count(), "leads", id, "remind", json::object{});
      if (cfg.leads.close_inactive_after.count() > 0)
        ctx.schedule(now + cfg.leads.close_inactive_after.count(), "leads", id, "expire", json::object{});
      return json::object{};
    });
    return json::object{{"status", "open"}, {"lead_id", id}};
  }

  json::value lead_close(step_context& ctx, const std::string& reason) {
    const auto id = ctx.invocation().key;
    return ctx.local("lead.close", [&]() -> json::value {
      auto lead = ctx.store().lead(id);
      if (!lead)
        throw step_terminal("no lead " + id);
      if (auto close = end_lead(ctx.store(), id, "closed", reason, "", ""))
        ctx.dispatch_after_commit(*close);
      return json::object{{"status", "closed"}, {"lead_id", id}};
    });
  }

  json::value lead_inbound(step_context& ctx) {
    const auto id = ctx.invocation().key;
    const auto author = str(ctx.body(), "author");
    return ctx.local("lead.inbound", [&]() -> json::value {
      auto lead = ctx.store().lead(id);
      if (!lead || lead->status != "open")
        return json::object{{"counted", false}};
      const bool customer = author == lead->customer_phone;
      if (!customer && author != lead->location_phone)
        return json::object{{"counted", false}};
      ctx.store().count_inbound(id, customer, core::unix_millis_now());
      return json::object{{"counted", true}, {"from", customer ? "customer" : "location"}};
    });
  }

  json::value lead_remind(step_context& ctx) {
    const auto id = ctx.invocation().key;
    auto lead = ctx.store().lead(id);
    if (!lead || lead->status != "open" || lead->dealer_messages > 0)
      return json::object{{"reminded", false}};
    auto conv = ctx.store().conversation(lead->conversation_id);
    if (!conv || conv->sid.empty() || conv->status != "open")
      return json::object{{"reminded", false}};
    send_once(ctx, "lead.reminder", conv->sid, render(ctx.store(), cfg.leads.reminder_message, *lead), id);
    ctx.local("lead.reminded", [&]() -> json::value {
      ctx.store().count_reminder(id);
      return json::object{};
    });
    return json::object{{"reminded", true}};
  }

  json::value lead_expire(step_context& ctx) {
    const auto id = ctx.invocation().key;
    auto lead = ctx.store().lead(id);
    if (!lead || lead->status != "open")
      return json::object{{"closed", false}};
    const auto due = lead->last_activity_ms + cfg.leads.close_inactive_after.count();
    if (due > core::unix_millis_now()) {
      ctx.local("lead.expire-later", [&]() -> json::value {
        ctx.schedule(due, "leads", id, "expire", json::object{});
        return json::object{{"due_ms", due}};
      });
      return json::object{{"closed", false}};
    }
    lead_close(ctx, "inactive");
    return json::object{{"closed", true}};
  }

  /// A failed or cancelled lead invocation: a submit that cannot finish releases its lead.
  std::vector<std::uint64_t> lead_failed(lead_store& store, const invocation_row& row, const std::string& why) {
    if (row.handler != "submit")
      return {};
    if (auto close = end_lead(store, row.key, "failed", "failed", "", why))
      return {*close};
    return {};
  }

  std::vector<std::uint64_t> conversation_failed(lead_store& store, const invocation_row& row, const std::string& why) {
    if (row.handler != "open")
      return {};
    // Its leads fail through their own call step; the conversation ends with them. If Twilio
    // has it already (the create step is done), it is closed there too, so that it holds no
    // bindings.
    spdlog::warn("leads: conversation {} could not open: {}", row.key, why);
    auto conv = store.conversation(row.key);
    if (!conv || conv->status != "opening")
      return {};
    std::string sid;
    if (auto created = store.step(row.n, "conversation.create"); created && created->status == "done") {
      json::error_code ec;
      auto v = json::parse(created->result, ec);
      if (!ec && v.is_object())
        sid = str(v.as_object(), "sid");
    }
    if (sid.empty()) {
      store.set_conversation_status(conv->id, "closed", rfc3339_now());
      return {};
    }
    store.set_conversation_sid(conv->id, sid);
    store.set_conversation_status(conv->id, "closing", rfc3339_now());
    return {store.create_invocation({"conversations", conv->id, "close", "{}", ""}, rfc3339_now(),
                                    core::unix_millis_now())};
  }

  // --- dealers and forwards ---------------------------------------------------------------------

  json::value dealer_set_location(step_context& ctx) {
    const auto dealer = ctx.invocation().key;
    const auto& b = ctx.body();
    return ctx.local("dealer.set_location", [&]() -> json::value {
      auto existing = ctx.store().locations(dealer);
      auto location = str(b, "location");
      adapters::sqlite::location_row row{dealer, str(b, "dealer_name"), location, str(b, "name"), str(b, "phone")};
      for (const auto& l : existing) {
        if (row.dealer_name.empty())
          row.dealer_name = l.dealer_name;
        if (l.location_id == location && row.name.empty())
          row.name = l.name;
      }
      const auto previous = ctx.store().upsert_location(row);
      return json::object{{"dealer", dealer}, {"location", location}, {"phone", row.phone}, {"previous_phone", previous}};
    });
  }

  json::value forward(step_context& ctx) {
    const auto key = ctx.invocation().key;  // "<form lead id>:<target>"
    const auto colon = key.rfind(':');
    const auto id = key.substr(0, colon);
    const auto target = key.substr(colon + 1);
    const auto& url = target == "lead_tracking" ? cfg.form_leads.lead_tracking_url : cfg.form_leads.marketing_url;
    if (url.empty())
      throw step_terminal("form_leads." + target + "_url is not configured any more");
    auto form = ctx.store().form_lead(id);
    if (!form)
      throw step_terminal("no form lead " + id);
    return ctx.effect("forward." + target, [&]() -> json::value {
      const auto [base, path] = split_url(url);
      httplib::Client client(base);
      const auto timeout = cfg.form_leads.timeout;
      client.set_connection_timeout(std::chrono::duration_cast<std::chrono::seconds>(timeout).count(),
                                    static_cast<long>((timeout.count() % 1000) * 1000));
      client.set_read_timeout(std::chrono::duration_cast<std::chrono::seconds>(timeout).count(),
                              static_cast<long>((timeout.count() % 1000) * 1000));
      json::error_code ec;
      auto lead = json::parse(form->first, ec);
      const auto payload = json::serialize(json::object{{"id", id}, {"received_at", form->second}, {"lead", lead}});
      // The same key on every attempt: the receiver keeps the first and answers repeats alike.
      httplib::Headers headers{{"Idempotency-Key", id + ":" + target}};
      auto res = client.Post(path.c_str(), headers, payload, "application/json");
      if (!res)
        throw step_retry("POST " + url + ": " + httplib::to_string(res.error()));
      if (res->status >= 200 && res->status < 300)
        return json::object{{"status", res->status}};
      const auto what = "POST " + url + " answered " + std::to_string(res->status);
      if (res->status == 408 || res->status == 429 || res->status >= 500) {
        std::chrono::milliseconds after{0};
        if (res->has_header("Retry-After")) {
          const auto v = res->get_header_value("Retry-After");
          char* end = nullptr;
          const auto s = std::strtol(v.c_str(), &end, 10);
          if (end != v.c_str() && s > 0 && s < 3600)
            after = std::chrono::seconds{s};
        }
        throw step_retry(what, after);
      }
      throw step_terminal(what + ": " + res->body.substr(0, 200));
    });
  }

  // --- the HTTP side -------------------------------------------------------------------------------

  std::string webhook_url() const {
    if (!cfg.leads.webhook_url.empty())
      return cfg.leads.webhook_url;
    return "http://" + listen_address() + "/v1/webhooks/twilio/conversations";
  }

  keyed_answer outcome_of(std::uint64_t n, const std::function<keyed_answer(const json::value& result)>& done) {
    auto row = engine->wait(n, cfg.leads.answer_timeout);
    if (!row)
      return error(500, "the invocation inv-" + std::to_string(n) + " is gone");
    json::object ref{{"invocation", row->id()}, {"status_url", "/v1/invocations/" + row->id()}};
    if (row->status == "running" || row->status == "parked") {
      ref["status"] = row->status;
      if (!row->error.empty())
        ref["error"] = row->error;
      return answer(202, std::move(ref));
    }
    if (row->status == "failed" || row->status == "cancelled") {
      ref["status"] = row->status;
      return error(502, row->service + "/" + row->key + "/" + row->handler + " " + row->status + ": " + row->error,
                   std::move(ref));
    }
    json::error_code ec;
    auto result = json::parse(row->result, ec);
    return done(ec ? json::value(nullptr) : result);
  }

  std::optional<lead_row> read_lead(const std::string& id, std::string* sid = nullptr) {
    std::optional<lead_row> out;
    engine->with_store([&](lead_store& s) {
      out = s.lead(id);
      if (out && sid != nullptr)
        if (auto c = s.conversation(out->conversation_id))
          *sid = c->sid;
    });
    return out;
  }

  keyed_answer lead_answer(const std::string& id, int status, const std::string& invocation) {
    std::string sid;
    auto lead = read_lead(id, &sid);
    if (!lead)
      return error(404, "no lead " + id);
    return answer(status, json::object{{"lead", lead_json(*lead, sid)}, {"invocation", invocation}});
  }

  keyed_answer submit(const std::string& id, const std::string& body_text, const std::string& idempotency_key) {
    json::error_code ec;
    auto body = json::parse(body_text.empty() ? "{}" : body_text, ec);
    if (ec)
      return error(400, "the body is not JSON: " + ec.message());
    auto parsed = core::parse_submission(body, cfg.leads.max_message_chars);
    if (auto* p = std::get_if<core::input_problem>(&parsed))
      return error(400, (p->field.empty() ? "" : p->field + ": ") + p->problem, json::object{{"field", p->field}});
    const auto& sub = std::get<core::lead_submission>(parsed);
    bool known = false;
    engine->with_store([&](lead_store& s) { known = s.location(sub.dealer_id, sub.location_id).has_value(); });
    if (!known)
      return error(404, "no location '" + sub.location_id + "' of dealer '" + sub.dealer_id +
                            "': check dealer_id and location_id (GET /v1/dealers/" + sub.dealer_id + ")",
                   json::object{{"field", "location_id"}});
    const auto key = idempotency_key.empty() ? "submit:" + id + (sub.replace ? ":replace" : "") : idempotency_key;
    const auto n = engine->submit({"leads", id, "submit", json::serialize(core::to_json(sub)), key}).first;
    auto out = outcome_of(n, [&](const json::value& result) {
      const auto& r = result.as_object();
      const auto status = str(r, "status");
      if (status == "already_open")
        return error(409,
                     "a lead is already open for " + sub.customer_phone + " at dealer " + sub.dealer_id + " location " +
                         sub.location_id + ": " + str(r, "lead_id") +
                         "; resubmit with \"replace\": true to close it and open a new one",
                     json::object{{"status", "already_open"}, {"lead_id", str(r, "lead_id")}});
      // The lead the invocation made: an Idempotency-Key reused with another id answers for it.
      const auto made = str(r, "lead_id");
      return lead_answer(made.empty() ? id : made, status == "exists" ? 200 : 201, "inv-" + std::to_string(n));
    });
    if (out.status == 202 || out.status == 502)
      out.body.as_object()["lead_id"] = id;
    return out;
  }

  keyed_answer set_location(const std::string& dealer, const std::string& body_text) {
    json::error_code ec;
    auto body = json::parse(body_text.empty() ? "{}" : body_text, ec);
    if (ec || !body.is_object())
      return error(400, "the body must be a JSON object such as {\"location\": \"north\", \"phone\": \"+15550001111\"}");
    const auto& b = body.as_object();
    for (const auto& m : b)
      if (m.key() != "location" && m.key() != "phone" && m.key() != "name" && m.key() != "dealer_name")
        return error(400, "unknown member \"" + std::string(m.key()) + "\"; allowed: location, phone, name, dealer_name",
                     json::object{{"field", std::string(m.key())}});
    const auto location = str(b, "location");
    const auto phone = str(b, "phone");
    if (!core::valid_key(dealer))
      return error(400, "the dealer id must be 1 to 128 of A-Z, a-z, 0-9, '_', '.', '-'");
    if (!core::valid_key(location))
      return error(400, "location: must be 1 to 128 of A-Z, a-z, 0-9, '_', '.', '-'", json::object{{"field", "location"}});
    if (auto p = core::e164_problem(phone))
      return error(400, "phone: is \"" + phone.substr(0, 32) + "\", which " + *p + "; write it in E.164, e.g. +15551234567",
                   json::object{{"field", "phone"}});
    for (const auto& proxy : cfg.leads.proxy_numbers)
      if (proxy == phone)
        return error(400, "phone: " + phone + " is one of leads.proxy_numbers; a location needs its own number",
                     json::object{{"field", "phone"}});
    const auto n = engine->submit({"dealers", dealer, "set_location", body_text, ""}).first;
    return outcome_of(n, [](const json::value& result) { return answer(200, result); });
  }

  keyed_answer form_lead(const std::string& body_text, const std::string& idempotency_key) {
    if (cfg.form_leads.lead_tracking_url.empty() && cfg.form_leads.marketing_url.empty())
      return error(404, "form leads are not configured: set form_leads.lead_tracking_url and/or form_leads.marketing_url");
    json::error_code ec;
    auto body = json::parse(body_text, ec);
    if (ec || !body.is_object())
      return error(400, "a form lead is a JSON object, e.g. {\"email\": \"ana@example.com\", \"first_name\": \"Ana\"}");
    const auto& o = body.as_object();
    const auto email = str(o, "email");
    const auto phone = str(o, "phone");
    if (email.empty() && phone.empty())
      return error(400, "a form lead needs \"email\" or \"phone\" to be reachable", json::object{{"field", "email"}});
    if (!email.empty() && (email.find('@') == std::string::npos || email.front() == '@' || email.back() == '@'))
      return error(400, "email: \"" + email.substr(0, 64) + "\" is not an e-mail address", json::object{{"field", "email"}});
    if (!phone.empty())
      if (auto p = core::e164_problem(phone))
        return error(400, "phone: " + *p + "; write it in E.164, e.g. +15551234567", json::object{{"field", "phone"}});
    std::string id;
    std::vector<std::pair<std::string, std::uint64_t>> created;
    engine->with_store([&](lead_store& s) {
      s.write([&] {
        if (!idempotency_key.empty())
          if (auto n = s.idempotent("forwards", idempotency_key, core::unix_millis_now() - 86'400'000))
            if (auto row = s.invocation(*n)) {
              id = row->key.substr(0, row->key.rfind(':'));
              return;
            }
        id = random_id("F-");
        s.insert_form_lead(id, json::serialize(body), rfc3339_now());
        bool first = true;
        for (const auto& [target, url] : {std::pair<std::string, std::string>{"lead_tracking", cfg.form_leads.lead_tracking_url},
                                          {"marketing", cfg.form_leads.marketing_url}}) {
          if (url.empty())
            continue;
          const auto key = id + ":" + target;
          created.emplace_back(key, s.create_invocation({"forwards", key, "forward", "{}",
                                                         first ? idempotency_key : std::string{}},
                                                        rfc3339_now(), core::unix_millis_now()));
          first = false;
        }
      });
    });
    for (const auto& [key, n] : created)
      engine->dispatch("forwards", key, n);
    return answer(202, json::object{{"id", id}, {"status_url", "/v1/form-leads/" + id}});
  }

  keyed_answer get(const keyed_request& r) {
    const auto& service = r.service;
    const auto& key = r.key;
    if (service == "leads") {
      std::string sid;
      auto lead = read_lead(key, &sid);
      return lead ? answer(200, lead_json(*lead, sid)) : error(404, "no lead " + key);
    }
    if (service == "conversations") {
      std::optional<conversation_row> c;
      std::vector<std::string> of;
      engine->with_store([&](lead_store& s) {
        c = s.conversation(key);
        if (c)
          of = s.conversation_leads(c->id, false);
      });
      if (!c)
        return error(404, "no conversation " + key + " (ids look like cv-12)");
      json::array leads_of;
      for (auto& l : of)
        leads_of.push_back(json::value(l));
      return answer(200, json::object{{"id", c->id},
                                      {"status", c->status},
                                      {"customer_phone", c->customer_phone},
                                      {"location_phone", c->location_phone},
                                      {"proxy_number", c->proxy_number},
                                      {"sid", c->sid},
                                      {"unique_name", c->unique_name()},
                                      {"created_at", c->created_at},
                                      {"closed_at", c->closed_at},
                                      {"leads", std::move(leads_of)}});
    }
    if (service == "dealers") {
      std::vector<adapters::sqlite::location_row> locs;
      engine->with_store([&](lead_store& s) { locs = s.locations(key); });
      if (locs.empty())
        return error(404, "no dealer " + key);
      json::array out;
      for (auto& l : locs)
        out.push_back(json::object{{"id", l.location_id}, {"name", l.name}, {"phone", l.phone}});
      return answer(200, json::object{{"id", key}, {"name", locs.front().dealer_name}, {"locations", std::move(out)}});
    }
    if (service == "invocations") {
      if (key.empty()) {
        std::vector<invocation_row> rows;
        engine->with_store([&](lead_store& s) { rows = s.invocations(r.status_filter, 100); });
        json::array out;
        for (auto& row : rows)
          out.push_back(invocation_json({row, {}}));
        return answer(200, json::object{{"invocations", std::move(out)}});
      }
      auto n = invocation_number(key);
      auto v = n ? engine->view(*n) : std::nullopt;
      return v ? answer(200, invocation_json(*v)) : error(404, "no invocation " + key + " (ids look like inv-12)");
    }
    if (service == "form-leads") {
      std::optional<std::pair<std::string, std::string>> form;
      std::vector<invocation_row> forwards;
      engine->with_store([&](lead_store& s) {
        form = s.form_lead(key);
        if (form)
          forwards = s.invocations_of("forwards", key + ":");
      });
      if (!form)
        return error(404, "no form lead " + key);
      json::array out;
      for (auto& f : forwards)
        out.push_back(json::object{{"target", f.key.substr(f.key.rfind(':') + 1)},
                                   {"status", f.status},
                                   {"invocation", f.id()},
                                   {"error", f.error}});
      json::error_code ec;
      auto lead = json::parse(form->first, ec);
      return answer(200, json::object{{"id", key}, {"received_at", form->second}, {"lead", lead}, {"forwards", std::move(out)}});
    }
    return error(404, "no such service: " + service);
  }
};

leads::leads(const config& cfg, std::function<std::string()> listen_address) : impl_(std::make_unique<impl>()) {
  auto& d = *impl_;
  d.cfg = cfg;
  d.listen_address = std::move(listen_address);
  if (const char* token = std::getenv("TWILIO_AUTH_TOKEN"))
    d.auth_token = token;
  actors::engine_options opts;
  opts.database = (std::filesystem::path{cfg.data_dir} / "leads.db").string();
  opts.twilio.base_url = cfg.twilio.base_url;
  opts.twilio.connect_timeout = cfg.twilio.connect_timeout;
  opts.twilio.read_timeout = cfg.twilio.read_timeout;
  opts.passivate_after = cfg.leads.passivate_after;
  if (const char* fp = std::getenv("SWITCHBOARD_FAILPOINT"); fp != nullptr && *fp != '\0') {
    opts.failpoint = fp;
    spdlog::warn("SWITCHBOARD_FAILPOINT={}: this process kills itself when it gets there (crash tests only)", fp);
  }
  const actors::step_retry_policy retry{cfg.leads.max_attempts, cfg.leads.backoff_initial, cfg.leads.backoff_max};
  impl* raw = &d;
  std::vector<actors::service_spec> services;
  services.push_back({"leads", cfg.leads.workers, retry,
                      {{"submit", [raw](step_context& c) { return raw->lead_submit(c); }},
                       {"close", [raw](step_context& c) { return raw->lead_close(c, str(c.body(), "reason").empty() ? "closed" : str(c.body(), "reason")); }},
                       {"inbound", [raw](step_context& c) { return raw->lead_inbound(c); }},
                       {"remind", [raw](step_context& c) { return raw->lead_remind(c); }},
                       {"expire", [raw](step_context& c) { return raw->lead_expire(c); }}},
                      [raw](lead_store& s, const invocation_row& row, const std::string& why) { return raw->lead_failed(s, row, why); }});
  services.push_back({"conversations", cfg.leads.workers, retry,
                      {{"open", [raw](step_context& c) { return raw->conversation_open(c); }},
                       {"close", [raw](step_context& c) { return raw->conversation_close(c); }}},
                      [raw](lead_store& s, const invocation_row& row, const std::string& why) {
                        return raw->conversation_failed(s, row, why);
                      }});
  services.push_back({"dealers", 1, retry, {{"set_location", [raw](step_context& c) { return raw->dealer_set_location(c); }}}, {}});
  services.push_back({"forwards", 2,
                      actors::step_retry_policy{cfg.form_leads.max_attempts, cfg.form_leads.backoff_initial, cfg.form_leads.backoff_max},
                      {{"forward", [raw](step_context& c) { return raw->forward(c); }}},
                      {}});
  d.engine = std::make_unique<actors::invocation_engine>(std::move(opts), std::move(services));
  // The configured dealers are the starting point; set_location changes them at run time,
  // and such a change outlives restarts until the file gives that location another number.
  d.engine->with_store([&](lead_store& s) {
    s.write([&] {
      for (const auto& dealer : cfg.leads.dealers)
        for (const auto& l : dealer.locations) {
          const auto in_force = s.seed_location({dealer.id, dealer.name, l.id, l.name, l.phone});
          if (in_force != l.phone)
            spdlog::info("leads: dealer {} location {} keeps {} (set at run time; the file says {})", dealer.id, l.id,
                         in_force, l.phone);
        }
    });
  });
}

leads::~leads() { stop(); }

child_spec leads::child(const supervision_config& supervision) { return impl_->engine->child(supervision); }

keyed_answer leads::invoke(const keyed_request& r) {
  auto& d = *impl_;
  try {
    if (r.method == "GET")
      return d.get(r);
    if (r.service == "leads") {
      if (d.cfg.leads.proxy_numbers.empty())
        return error(404, "web-to-text leads are not configured on this server: set leads.proxy_numbers and leads.dealers");
      if (r.key.empty()) {
        // A repeated create with the same Idempotency-Key answers for the lead it created.
        std::string id;
        if (!r.idempotency_key.empty())
          d.engine->with_store([&](lead_store& s) {
            if (auto n = s.idempotent("leads", r.idempotency_key, core::unix_millis_now() - 86'400'000))
              if (auto row = s.invocation(*n))
                id = row->key;
          });
        return d.submit(id.empty() ? random_id("L-") : id, r.body, r.idempotency_key);
      }
      if (!core::valid_key(r.key))
        return error(400, "a lead id must be 1 to 128 of A-Z, a-z, 0-9, '_', '.', '-'");
      if (r.handler == "submit")
        return d.submit(r.key, r.body, r.idempotency_key);
      if (r.handler == "close") {
        if (!d.read_lead(r.key))
          return error(404, "no lead " + r.key);
        const auto n =
            d.engine->submit({"leads", r.key, "close", r.body.empty() ? "{}" : r.body, r.idempotency_key}).first;
        return d.outcome_of(n, [&](const json::value&) { return d.lead_answer(r.key, 200, "inv-" + std::to_string(n)); });
      }
      return error(404, "leads has no handler '" + r.handler + "'; POST /v1/leads/{id}/submit or /v1/leads/{id}/close");
    }
    if (r.service == "dealers") {
      if (r.handler == "set_location")
        return d.set_location(r.key, r.body);
      return error(404, "dealers has no handler '" + r.handler + "'; POST /v1/dealers/{id}/set_location");
    }
    if (r.service == "form-leads" && r.key.empty())
      return d.form_lead(r.body, r.idempotency_key);
    if (r.service == "invocations") {
      auto n = invocation_number(r.key);
      if (!n)
        return error(404, "no invocation " + r.key + " (ids look like inv-12)");
      if (r.handler == "resume" || r.handler == "cancel") {
        const bool ok = r.handler == "resume" ? d.engine->resume(*n) : d.engine->cancel(*n);
        if (!ok)
          return error(409, r.key + " is not parked (only parked invocations can be resumed or cancelled)");
        auto v = d.engine->view(*n);
        return answer(200, v ? invocation_json(*v) : json::value(nullptr));
      }
      return error(404, "invocations has no handler '" + r.handler + "'; use resume or cancel");
    }
    return error(404, "no handler " + r.handler + " for " + r.service);
  } catch (const std::exception& e) {
    spdlog::error("leads: {} /v1/{}/{}/{}: {}", r.method, r.service, r.key, r.handler, e.what());
    return error(503, std::string{"could not record the request: "} + e.what() + " (nothing was done; send it again)");
  }
}

keyed_answer leads::conversations_webhook(const std::vector<std::pair<std::string, std::string>>& params,
                                          const std::string& signature) {
  auto& d = *impl_;
  if (d.auth_token.empty())
    return error(403, "this server cannot check X-Twilio-Signature: TWILIO_AUTH_TOKEN is not set in its environment");
  const auto url = d.webhook_url();
  if (signature.empty())
    return error(403, "missing X-Twilio-Signature: only Twilio may call this webhook");
  if (!tw::validate_twilio_signature(d.auth_token, url, params, signature))
    return error(403, "X-Twilio-Signature does not match this request for " + url +
                          ": check TWILIO_AUTH_TOKEN and that leads.webhook_url is exactly the URL Twilio calls");
  auto param = [&](const char* name) {
    for (const auto& [k, v] : params)
      if (k == name)
        return v;
    return std::string{};
  };
  const auto event = param("EventType");
  if (event != "onMessageAdded")
    return answer(200, json::object{{"status", "ignored"}, {"event", event}});
  const auto message_sid = param("MessageSid");
  const auto conversation_sid = param("ConversationSid");
  const auto author = param("Author");
  if (message_sid.empty() || conversation_sid.empty())
    return error(400, "onMessageAdded needs MessageSid and ConversationSid");
  try {
    bool duplicate = false;
    std::vector<std::pair<std::string, std::uint64_t>> routed;
    d.engine->with_store([&](lead_store& s) {
      s.write([&] {
        if (!s.record_inbound(message_sid, conversation_sid, author, rfc3339_now())) {
          duplicate = true;
          return;
        }
        auto conv = s.conversation_by_sid(conversation_sid);
        if (!conv)
          return;
        const auto body = json::serialize(json::object{{"message_sid", message_sid}, {"author", author}});
        for (const auto& lead : s.conversation_leads(conv->id, true))
          routed.emplace_back(lead, s.create_invocation({"leads", lead, "inbound", body, "inbound:" + message_sid},
                                                        rfc3339_now(), core::unix_millis_now()));
      });
    });
    if (duplicate)
      return answer(200, json::object{{"status", "duplicate"}, {"message_sid", message_sid}});
    json::array ids;
    for (const auto& [lead, n] : routed) {
      d.engine->dispatch("leads", lead, n);
      ids.push_back(json::value(lead));
    }
    return answer(200, json::object{{"status", "routed"}, {"message_sid", message_sid}, {"leads", std::move(ids)}});
  } catch (const std::exception& e) {
    // Not recorded: Twilio retries a webhook that fails.
    return error(503, std::string{"could not record the message: "} + e.what());
  }
}

json::value leads::status() const {
  json::object ended;
  for (const auto& [k, v] : impl_->engine->counters())
    ended[k] = v;
  return json::object{{"active_entities", impl_->engine->active_entities()}, {"invocations_ended", std::move(ended)}};
}

std::size_t leads::active_entities() const { return impl_->engine->active_entities(); }

void leads::release_answers() { impl_->engine->release_answers(); }

void leads::stop() {
  if (impl_ && impl_->engine)
    impl_->engine->stop();
}

} // namespace switchboard
