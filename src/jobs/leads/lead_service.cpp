// The "leads" service (submit, close, inbound, remind, expire), "dealers" (set_location) and
// "forwards" (form leads to lead tracking and marketing). Each handler is straight-line durable
// steps on the engine; the admission itself is core::decide_admission.

#include "jobs/leads/services.hpp"

#include "core/json_path.hpp"
#include "core/time.hpp"
#include "core/url.hpp"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <cstdlib>

namespace switchboard::jobs::leads {

using core::lead_status;
using core::to_string;

namespace {

/// A lead as the admission stores it (status, number and conversation are the caller's).
lead_row new_lead(const std::string& id, const core::lead_submission& sub,
                  const location_row& loc) {
  lead_row l;
  l.id = id;
  l.dealer_id = sub.dealer_id;
  l.location_id = sub.location_id;
  l.customer_name = sub.customer_name;
  l.customer_phone = sub.customer_phone;
  l.message = sub.message;
  l.location_phone = loc.phone;
  l.created_at = rfc3339_now();
  return l;
}

}  // namespace

/// Sends a message into a lead's conversation as step `step`, at most once: a retry after an
/// unknown outcome first lists the conversation's messages for this step's id.
json::value lead_services::send_once(step_context& ctx, const std::string& step,
                                     const std::string& sid, const std::string& body,
                                     const std::string& lead_id) {
  const auto step_id = ctx.step_id(step);
  return ctx.effect(
      step,
      [&]() -> json::value {
        tw::message_fields m;
        m.body = body;
        m.attributes = json::object{{"step", step_id}, {"lead", lead_id}};
        auto r = ok_or_throw(twilio_of(ctx).send_message(sid, m));
        return json::object{{"message_sid", str(r.as_object(), "sid")}};
      },
      [&]() -> std::optional<json::value> {
        tw::message_listing listing;
        listing.newest_first = true;
        auto page = lookup(twilio_of(ctx).list_messages(sid, listing));
        if (!page)
          return std::nullopt;
        if (const auto* list = page->as_object().if_contains("messages");
            list != nullptr && list->is_array())
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
std::string lead_services::render(lead_records& store, const std::string& tmpl, const lead_row& l) {
  auto loc = store.location(l.dealer_id, l.location_id);
  const json::object values{{"customer_name", l.customer_name},
                            {"customer_phone", l.customer_phone},
                            {"message", l.message},
                            {"dealer_name", loc ? loc->dealer_name : l.dealer_id},
                            {"location_name", loc ? loc->name : l.location_id},
                            {"lead_id", l.id}};
  auto r = core::render_template(tmpl, "", "", values);
  return r.text ? *r.text : tmpl;
}

json::value lead_services::lead_submit(step_context& ctx) {
  const auto id = ctx.invocation().key;
  auto parsed = core::parse_submission(ctx.body(), cfg.leads.max_message_chars);
  if (auto* p = std::get_if<core::input_problem>(&parsed))
    throw step_terminal(p->field + ": " + p->problem);
  const auto sub = std::get<core::lead_submission>(parsed);

  auto admitted = ctx.local("lead.admit", [&]() -> json::value {
    auto& db = connection_of(ctx);
    auto& store = db.leads;
    // What the rules need, read in the transaction that applies their verdict.
    core::admission_snapshot seen;
    seen.lead_exists = store.lead(id).has_value();
    const auto loc =
        seen.lead_exists ? std::nullopt : store.location(sub.dealer_id, sub.location_id);
    seen.location_known = loc.has_value();
    if (loc)
      // Checked when the request came; checked again here, with the location as it is now.
      if (auto p =
              core::customer_phone_problem(sub.customer_phone, loc->phone, cfg.leads.proxy_numbers))
        throw step_terminal(p->field + ": " + p->problem);
    std::optional<conversation_row> conv;
    if (loc) {
      seen.open_lead = store.active_lead(sub.customer_phone, sub.dealer_id, sub.location_id);
      conv = store.active_conversation(sub.customer_phone, loc->phone);
      if (conv)
        seen.open_conversation = conv->id;
      else {
        auto use = store.proxies_in_use(sub.customer_phone, loc->phone);
        seen.proxies_in_use = std::move(use.held);
        seen.proxies_releasing = std::move(use.releasing);
      }
    }
    using verdict = core::admission_effects::verdict;
    const auto effects = core::decide_admission(seen, sub, cfg.leads.proxy_numbers);
    switch (effects.what) {
      case verdict::exists: return json::object{{"outcome", "exists"}};
      case verdict::unknown_location:
        throw step_terminal("dealer '" + sub.dealer_id + "' has no location '" + sub.location_id +
                            "'");
      case verdict::already_open:
        return json::object{{"outcome", "already_open"}, {"lead_id", *seen.open_lead}};
      case verdict::wait_for_release:
        throw step_retry("no proxy number of leads.proxy_numbers is free for " +
                         sub.customer_phone + " at " + loc->phone +
                         " yet: waiting for a closing conversation to release one");
      case verdict::no_free_proxy: {
        // Not the lead's fault and not for good: a number frees when a conversation closes.
        // Nothing is stored, and the submit's idempotency key is let go, so that the same lead
        // id submitted again runs anew.
        ctx.journal().release_idempotency_key(ctx.invocation().n);
        const auto why =
            "no free proxy number: all " + std::to_string(cfg.leads.proxy_numbers.size()) +
            " numbers of leads.proxy_numbers already bind " + sub.customer_phone + " or " +
            loc->phone + " in open conversations; submit the lead again later (a number frees " +
            "when a lead closes), or add numbers to the pool";
        return json::object{{"outcome", "pool_full"}, {"error", why}};
      }
      case verdict::admit: break;
    }
    if (effects.close_lead)
      store.set_lead_closed(*effects.close_lead, std::string{to_string(lead_status::closed)},
                            std::string{to_string(core::close_reason::replaced)}, id, "",
                            rfc3339_now());
    if (!conv)
      conv = store.insert_conversation(sub.customer_phone, loc->phone, *effects.new_proxy,
                                       rfc3339_now());
    lead_row l = new_lead(id, sub, *loc);
    l.status = to_string(lead_status::opening);
    l.proxy_number = conv->proxy_number;
    l.conversation_id = conv->id;
    store.insert_lead(l);
    if (effects.close_lead)
      // After the new lead joined: the old conversation closes only if nobody uses it now.
      if (auto old = store.lead(*effects.close_lead))
        if (auto close = release_conversation(db, old->conversation_id))
          ctx.dispatch_after_commit(*close);
    json::object out{{"outcome", "opening"}, {"conversation_id", conv->id}};
    if (seen.open_lead)
      out["replaced"] = *seen.open_lead;
    return out;
  });
  const auto& a = admitted.as_object();
  const auto outcome = str(a, "outcome");
  if (outcome == "already_open")
    return json::object{{"status", "already_open"}, {"lead_id", str(a, "lead_id")}};
  if (outcome == "exists")
    return json::object{{"status", "exists"}, {"lead_id", id}};
  if (outcome == "pool_full")
    return json::object{{"status", "pool_full"}, {"lead_id", id}, {"error", str(a, "error")}};

  auto opened = ctx.call("lead.conversation", "conversations", str(a, "conversation_id"), "open",
                         json::object{});
  const auto sid = str(opened.as_object(), "sid");
  auto lead = store_of(ctx).lead(id);
  if (!lead || lead->status != to_string(lead_status::opening))
    return json::object{{"status", lead ? lead->status : "missing"}, {"lead_id", id}};
  send_once(ctx, "lead.first-message", sid, render(store_of(ctx), cfg.leads.first_message, *lead),
            id);
  ctx.local("lead.opened", [&]() -> json::value {
    const auto now = core::unix_millis_now();
    store_of(ctx).set_lead_open(id, rfc3339_now(), now);
    if (cfg.leads.reminder_after.count() > 0)
      ctx.schedule(now + cfg.leads.reminder_after.count(), "leads", id, "remind", json::object{});
    if (cfg.leads.close_inactive_after.count() > 0)
      ctx.schedule(now + cfg.leads.close_inactive_after.count(), "leads", id, "expire",
                   json::object{});
    return json::object{};
  });
  return json::object{{"status", "open"}, {"lead_id", id}};
}

json::value lead_services::lead_close(step_context& ctx, const std::string& reason) {
  const auto id = ctx.invocation().key;
  auto closed = ctx.local("lead.close", [&]() -> json::value {
    auto lead = store_of(ctx).lead(id);
    if (!lead)
      throw step_terminal("no lead " + id);
    json::object out{{"status", to_string(lead_status::closed)}, {"lead_id", id}};
    if (core::active_lead(lead->status)) {
      store_of(ctx).set_lead_closed(id, std::string{to_string(lead_status::closed)}, reason, "", "",
                                    rfc3339_now());
      if (claim_conversation_release(connection_of(ctx), lead->conversation_id))
        out["release"] = lead->conversation_id;
    }
    return out;
  });
  // What the close frees is free when it answers: the conversation (when this was its last
  // lead) is closed on Twilio, and its proxy number back in the pool, before the close is done.
  const auto release = str(closed.as_object(), "release");
  if (!release.empty())
    ctx.call("lead.release", "conversations", release, "close", json::object{});
  return json::object{{"status", to_string(lead_status::closed)}, {"lead_id", id}};
}

json::value lead_services::lead_inbound(step_context& ctx) {
  const auto id = ctx.invocation().key;
  const auto author = str(ctx.body(), "author");
  return ctx.local("lead.inbound", [&]() -> json::value {
    auto lead = store_of(ctx).lead(id);
    if (!lead || lead->status != to_string(lead_status::open))
      return json::object{{"counted", false}};
    const bool customer = author == lead->customer_phone;
    if (!customer && author != lead->location_phone)
      return json::object{{"counted", false}};
    store_of(ctx).count_inbound(id, customer, core::unix_millis_now());
    return json::object{{"counted", true}, {"from", customer ? "customer" : "location"}};
  });
}

json::value lead_services::lead_remind(step_context& ctx) {
  const auto id = ctx.invocation().key;
  auto lead = store_of(ctx).lead(id);
  if (!lead || lead->status != to_string(lead_status::open) || lead->dealer_messages > 0)
    return json::object{{"reminded", false}};
  auto conv = store_of(ctx).conversation(lead->conversation_id);
  if (!conv || conv->status != to_string(core::conversation_status::open))
    return json::object{{"reminded", false}};
  // The reminder is for the dealer alone: an SMS to the location's phone from the
  // conversation's proxy number, never a message in the conversation (the customer is in it).
  // What it says, to whom and from when is recorded first, so that every attempt sends the same
  // SMS and a lookup after an unknown outcome knows what to look for.
  auto due = ctx.local("lead.reminder-due", [&]() -> json::value {
    return json::object{{"to", lead->location_phone},
                        {"from", conv->proxy_number},
                        {"body", render(store_of(ctx), cfg.leads.reminder_message, *lead)},
                        {"not_before_s", core::unix_millis_now() / 1000}};
  });
  const auto& d = due.as_object();
  tw::sms_fields sms{str(d, "to"), str(d, "from"), str(d, "body")};
  const auto not_before_s = d.at("not_before_s").to_number<std::int64_t>();
  ctx.effect(
      "lead.reminder",
      [&]() -> json::value {
        auto r = ok_or_throw(twilio_of(ctx).send_sms(sms));
        return json::object{{"message_sid", str(r.as_object(), "sid")}};
      },
      [&]() -> std::optional<json::value> {
        // Twilio's Messages API takes no idempotency key: an SMS of this step is one to the same
        // phone, from the same number, with the same text, made after the step began.
        return search_list(
            twilio_of(ctx), twilio_of(ctx).list_sms(tw::sms_listing{sms.to, sms.from, 50}),
            "messages", 20, [&](const json::object& m, std::optional<json::value>& found) {
              const auto made = core::rfc2822_to_unix_seconds(str(m, "date_created"));
              if (made && *made < not_before_s)
                return list_search::stop;  // newest first: the rest are older still
              if (str(m, "body") == sms.body)
                found = json::object{{"message_sid", str(m, "sid")}};
              return list_search::next;
            });
      });
  ctx.local("lead.reminded", [&]() -> json::value {
    store_of(ctx).count_reminder(id);
    return json::object{};
  });
  return json::object{{"reminded", true}};
}

json::value lead_services::lead_expire(step_context& ctx) {
  const auto id = ctx.invocation().key;
  auto lead = store_of(ctx).lead(id);
  if (!lead || lead->status != to_string(lead_status::open))
    return json::object{{"closed", false}};
  const auto due = lead->last_activity_ms + cfg.leads.close_inactive_after.count();
  if (due > core::unix_millis_now()) {
    ctx.local("lead.expire-later", [&]() -> json::value {
      ctx.schedule(due, "leads", id, "expire", json::object{});
      return json::object{{"due_ms", due}};
    });
    return json::object{{"closed", false}};
  }
  lead_close(ctx, std::string{to_string(core::close_reason::inactive)});
  return json::object{{"closed", true}};
}

/// A failed or cancelled lead invocation: a submit that cannot finish releases its lead.
std::vector<std::uint64_t> lead_services::lead_failed(lead_connection& c, const invocation_row& row,
                                                      const std::string& why) {
  if (row.handler != "submit")
    return {};
  if (auto close = end_lead(c, row.key, lead_status::failed,
                            std::string{to_string(core::close_reason::failed)}, "", why))
    return {*close};
  return {};
}

json::value lead_services::dealer_set_location(step_context& ctx) {
  const auto dealer = ctx.invocation().key;
  const auto& b = ctx.body();
  return ctx.local("dealer.set_location", [&]() -> json::value {
    auto existing = store_of(ctx).locations(dealer);
    auto location = str(b, "location");
    location_row row{dealer, str(b, "dealer_name"), location, str(b, "name"), str(b, "phone")};
    for (const auto& l : existing) {
      if (row.dealer_name.empty())
        row.dealer_name = l.dealer_name;
      if (l.location_id == location && row.name.empty())
        row.name = l.name;
    }
    const auto previous = store_of(ctx).upsert_location(row);
    return json::object{{"dealer", dealer},
                        {"location", location},
                        {"phone", row.phone},
                        {"previous_phone", previous}};
  });
}

json::value lead_services::forward(step_context& ctx) {
  const auto key = ctx.invocation().key;  // "<form lead id>:<target>"
  const auto colon = key.rfind(':');
  const auto id = key.substr(0, colon);
  const auto target = key.substr(colon + 1);
  const auto& url =
      target == "lead_tracking" ? cfg.form_leads.lead_tracking_url : cfg.form_leads.marketing_url;
  if (url.empty())
    throw step_terminal("form_leads." + target + "_url is not configured any more");
  auto form = store_of(ctx).form_lead(id);
  if (!form)
    throw step_terminal("no form lead " + id);
  return ctx.effect("forward." + target, [&]() -> json::value {
    // A user and password in the URL are the receiver's Basic auth; what is logged, journaled
    // and answered shows the URL without them.
    const auto to = core::split_http_url(url);
    const auto shown = core::redacted_url(url);
    httplib::Client client(to.origin);
    if (to.user)
      client.set_basic_auth(*to.user, to.password.value_or(""));
    client.set_tcp_nodelay(true);  // else the body waits out a delayed ACK of the headers (40 ms)
    const auto timeout = cfg.form_leads.timeout;
    client.set_connection_timeout(std::chrono::duration_cast<std::chrono::seconds>(timeout).count(),
                                  static_cast<long>((timeout.count() % 1000) * 1000));
    client.set_read_timeout(std::chrono::duration_cast<std::chrono::seconds>(timeout).count(),
                            static_cast<long>((timeout.count() % 1000) * 1000));
    json::error_code ec;
    auto lead = json::parse(form->first, ec);
    const auto payload =
        json::serialize(json::object{{"id", id}, {"received_at", form->second}, {"lead", lead}});
    // The same key on every attempt: the receiver keeps the first and answers repeats alike.
    httplib::Headers headers{{"Idempotency-Key", id + ":" + target}};
    auto res = client.Post(to.target.c_str(), headers, payload, "application/json");
    if (!res)
      throw step_retry("POST " + shown + ": " + httplib::to_string(res.error()));
    if (res->status >= 200 && res->status < 300)
      return json::object{{"status", res->status}};
    const auto what = "POST " + shown + " answered " + std::to_string(res->status);
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
    // The receiver's answer may quote the URL it was sent to.
    throw step_terminal(what + ": " + core::redact_urls(res->body.substr(0, 200)));
  });
}

std::vector<actors::service_spec> lead_services::specs() {
  const actors::step_retry_policy retry{cfg.leads.max_attempts, cfg.leads.backoff_initial,
                                        cfg.leads.backoff_max};
  auto* self = this;
  auto as_leads = [](ports::durable_connection& c) -> lead_connection& {
    return static_cast<lead_connection&>(c);
  };
  std::vector<actors::service_spec> services;
  services.push_back({"leads",
                      cfg.leads.workers,
                      retry,
                      {{"submit", [self](step_context& c) { return self->lead_submit(c); }},
                       {"close",
                        [self](step_context& c) {
                          const auto reason = str(c.body(), "reason");
                          return self->lead_close(
                              c, reason.empty() ? std::string{to_string(core::close_reason::closed)}
                                                : reason);
                        }},
                       {"inbound", [self](step_context& c) { return self->lead_inbound(c); }},
                       {"remind", [self](step_context& c) { return self->lead_remind(c); }},
                       {"expire", [self](step_context& c) { return self->lead_expire(c); }}},
                      [self, as_leads](ports::durable_connection& c, const invocation_row& row,
                                       const std::string& why) {
                        return self->lead_failed(as_leads(c), row, why);
                      }});
  services.push_back({"conversations",
                      cfg.leads.workers,
                      retry,
                      {{"open", [self](step_context& c) { return self->conversation_open(c); }},
                       {"close", [self](step_context& c) { return self->conversation_close(c); }}},
                      [self, as_leads](ports::durable_connection& c, const invocation_row& row,
                                       const std::string& why) {
                        return self->conversation_failed(as_leads(c), row, why);
                      }});
  services.push_back(
      {"dealers",
       1,
       retry,
       {{"set_location", [self](step_context& c) { return self->dealer_set_location(c); }}},
       {}});
  services.push_back(
      {"forwards",
       2,
       actors::step_retry_policy{cfg.form_leads.max_attempts, cfg.form_leads.backoff_initial,
                                 cfg.form_leads.backoff_max},
       {{"forward", [self](step_context& c) { return self->forward(c); }}},
       {}});
  return services;
}

}  // namespace switchboard::jobs::leads
