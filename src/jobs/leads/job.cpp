// The leads job's lifecycle and the requests it takes: keyed requests (submit, close, set a
// location, form leads, resume/cancel invocations) and Twilio's signed webhooks.

#include "jobs/leads/job.hpp"

#include "core/phone.hpp"
#include "core/time.hpp"
#include "core/url.hpp"
#include "jobs/leads/services.hpp"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <random>

namespace switchboard::jobs {

using namespace leads;

namespace {

std::string random_id(const char* prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string out = prefix;
  auto v = rng();
  for (int i = 0; i < 16; ++i, v >>= 4)
    out += hex[v & 0xF];
  return out;
}

}  // namespace

namespace leads {

std::string lead_services::webhook_url() const {
  if (!cfg.leads.webhook_url.empty())
    return cfg.leads.webhook_url;
  return "http://" + listen_address() + "/v1/webhooks/twilio/conversations";
}

keyed_answer lead_services::outcome_of(
    std::uint64_t n, const std::function<keyed_answer(const json::value& result)>& done) {
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
    return error(
        502,
        row->service + "/" + row->key + "/" + row->handler + " " + row->status + ": " + row->error,
        std::move(ref));
  }
  json::error_code ec;
  auto result = json::parse(row->result, ec);
  return done(ec ? json::value(nullptr) : result);
}

keyed_answer lead_services::submit(const std::string& id, const std::string& body_text,
                                   const std::string& idempotency_key) {
  json::error_code ec;
  auto body = json::parse(body_text.empty() ? "{}" : body_text, ec);
  if (ec)
    return error(400, "the body is not JSON: " + ec.message());
  auto parsed = core::parse_submission(body, cfg.leads.max_message_chars);
  if (auto* p = std::get_if<core::input_problem>(&parsed))
    return error(400, (p->field.empty() ? "" : p->field + ": ") + p->problem,
                 json::object{{"field", p->field}});
  const auto& sub = std::get<core::lead_submission>(parsed);
  std::optional<location_row> loc;
  bool dealer_known = false;
  with_leads([&](lead_connection& db) {
    loc = db.leads.location(sub.dealer_id, sub.location_id);
    dealer_known = loc.has_value() || !db.leads.locations(sub.dealer_id).empty();
  });
  if (!dealer_known)
    return error(404,
                 "dealer_id: no dealer '" + sub.dealer_id +
                     "' is configured on this server: check dealer_id (leads.dealers lists them)",
                 json::object{{"field", "dealer_id"}});
  if (!loc)
    return error(404,
                 "location_id: dealer '" + sub.dealer_id + "' has no location '" + sub.location_id +
                     "': check location_id (GET /v1/dealers/" + sub.dealer_id +
                     " lists its locations)",
                 json::object{{"field", "location_id"}});
  if (auto p =
          core::customer_phone_problem(sub.customer_phone, loc->phone, cfg.leads.proxy_numbers))
    return error(400, p->field + ": " + p->problem, json::object{{"field", p->field}});
  const auto key =
      idempotency_key.empty() ? "submit:" + id + (sub.replace ? ":replace" : "") : idempotency_key;
  const auto n =
      engine->submit({"leads", id, "submit", json::serialize(core::to_json(sub)), key}).first;
  auto out = outcome_of(n, [&](const json::value& result) {
    const auto& r = result.as_object();
    const auto status = str(r, "status");
    if (status == "already_open")
      return error(409,
                   "a lead is already open for " + sub.customer_phone + " at dealer " +
                       sub.dealer_id + " location " + sub.location_id + ": " + str(r, "lead_id") +
                       "; resubmit with \"replace\": true to close it and open a new one",
                   json::object{{"status", "already_open"}, {"lead_id", str(r, "lead_id")}});
    if (status == "pool_full") {
      pool_full_refusals.fetch_add(1, std::memory_order_relaxed);
      return error(503, str(r, "error"),
                   json::object{{"status", "pool_full"},
                                {"lead_id", str(r, "lead_id")},
                                {"retry_after_s", pool_full_retry_after_s}});
    }
    // The lead the invocation made: an Idempotency-Key reused with another id answers for it.
    const auto made = str(r, "lead_id");
    return lead_answer(made.empty() ? id : made, status == "exists" ? 200 : 201,
                       "inv-" + std::to_string(n));
  });
  if (out.status == 202 || out.status == 502)
    out.body.as_object()["lead_id"] = id;
  return out;
}

keyed_answer lead_services::set_location(const std::string& dealer, const std::string& body_text) {
  json::error_code ec;
  auto body = json::parse(body_text.empty() ? "{}" : body_text, ec);
  if (ec || !body.is_object())
    return error(400,
                 "the body must be a JSON object such as {\"location\": \"north\", \"phone\": "
                 "\"+15550001111\"}");
  const auto& b = body.as_object();
  for (const auto& m : b)
    if (m.key() != "location" && m.key() != "phone" && m.key() != "name" &&
        m.key() != "dealer_name")
      return error(400,
                   "unknown member \"" + std::string(m.key()) +
                       "\"; allowed: location, phone, name, dealer_name",
                   json::object{{"field", std::string(m.key())}});
  const auto location = str(b, "location");
  const auto phone = str(b, "phone");
  if (!core::valid_key(dealer))
    return error(400, "the dealer id must be 1 to 128 of A-Z, a-z, 0-9, '_', '.', '-'");
  if (!core::valid_key(location))
    return error(400, "location: must be 1 to 128 of A-Z, a-z, 0-9, '_', '.', '-'",
                 json::object{{"field", "location"}});
  if (auto p = core::e164_problem(phone))
    return error(400,
                 "phone: is \"" + phone.substr(0, 32) + "\", which " + *p +
                     "; write it in E.164, e.g. +15551234567",
                 json::object{{"field", "phone"}});
  for (const auto& proxy : cfg.leads.proxy_numbers)
    if (proxy == phone)
      return error(
          400,
          "phone: " + phone + " is one of leads.proxy_numbers; a location needs its own number",
          json::object{{"field", "phone"}});
  const auto n = engine->submit({"dealers", dealer, "set_location", body_text, ""}).first;
  return outcome_of(n, [](const json::value& result) { return answer(200, result); });
}

keyed_answer lead_services::form_lead(const std::string& body_text,
                                      const std::string& idempotency_key) {
  if (cfg.form_leads.lead_tracking_url.empty() && cfg.form_leads.marketing_url.empty())
    return error(404,
                 "form leads are not configured: set form_leads.lead_tracking_url and/or "
                 "form_leads.marketing_url");
  json::error_code ec;
  auto body = json::parse(body_text, ec);
  if (ec || !body.is_object())
    return error(400,
                 "a form lead is a JSON object, e.g. {\"email\": \"ana@example.com\", "
                 "\"first_name\": \"Ana\"}");
  const auto& o = body.as_object();
  const auto email = str(o, "email");
  const auto phone = str(o, "phone");
  if (email.empty() && phone.empty())
    return error(400, "a form lead needs \"email\" or \"phone\" to be reachable",
                 json::object{{"field", "email"}});
  if (!email.empty() &&
      (email.find('@') == std::string::npos || email.front() == '@' || email.back() == '@'))
    return error(400, "email: \"" + email.substr(0, 64) + "\" is not an e-mail address",
                 json::object{{"field", "email"}});
  if (!phone.empty())
    if (auto p = core::e164_problem(phone))
      return error(400, "phone: " + *p + "; write it in E.164, e.g. +15551234567",
                   json::object{{"field", "phone"}});
  std::string id;
  std::vector<std::pair<std::string, std::uint64_t>> created;
  with_leads([&](lead_connection& db) {
    auto& journal = db.journal();
    journal.write([&] {
      if (!idempotency_key.empty())
        if (auto n = journal.idempotent("forwards", idempotency_key,
                                        core::unix_millis_now() - 86'400'000))
          if (auto row = journal.invocation(*n)) {
            id = row->key.substr(0, row->key.rfind(':'));
            return;
          }
      id = random_id("F-");
      db.leads.insert_form_lead(id, json::serialize(body), rfc3339_now());
      bool first = true;
      for (const auto& [target, url] :
           {std::pair<std::string, std::string>{"lead_tracking", cfg.form_leads.lead_tracking_url},
            {"marketing", cfg.form_leads.marketing_url}}) {
        if (url.empty())
          continue;
        const auto key = id + ":" + target;
        created.emplace_back(
            key, journal.create_invocation(
                     {"forwards", key, "forward", "{}", first ? idempotency_key : std::string{}},
                     rfc3339_now(), core::unix_millis_now()));
        first = false;
      }
    });
  });
  for (const auto& [key, n] : created)
    engine->dispatch("forwards", key, n);
  return answer(202, json::object{{"id", id}, {"status_url", "/v1/form-leads/" + id}});
}

}  // namespace leads

struct leads_job::impl {
  lead_services services;
  host* h = nullptr;

  /// 503 outside `running`: before start the database is not open, after stop it is closed.
  std::optional<keyed_answer> refused_outside_running(const char* before_start,
                                                      const char* after_stop) const {
    const auto now = h->current_phase();
    if (now == phase::running)
      return std::nullopt;
    return error(503, now == phase::created ? before_start : after_stop);
  }
};

leads_job::leads_job(lead_adapters outside) : impl_(std::make_unique<impl>()) {
  impl_->services.outside = std::move(outside);
}

leads_job::~leads_job() { stop(); }

void leads_job::prepare(host& h) {
  auto& d = impl_->services;
  impl_->h = &h;
  const auto& cfg = h.cfg;
  d.cfg = cfg;
  d.env = &h.env;
  d.listen_address = h.listen_address;
  actors::engine_options opts;
  opts.name = "leads";
  const auto database = (std::filesystem::path{cfg.data_dir} / "leads.db").string();
  opts.open_connection = [database,
                          &outside = d.outside]() -> std::unique_ptr<ports::durable_connection> {
    return std::make_unique<lead_connection>(outside.open_database(database), outside.make_twilio);
  };
  opts.passivate_after = cfg.leads.passivate_after;
  if (!h.env.failpoint.empty()) {
    opts.failpoint = h.env.failpoint;
    spdlog::warn(
        "SWITCHBOARD_FAILPOINT={}: this process kills itself when it gets there (crash tests only)",
        h.env.failpoint);
  }
  d.engine = std::make_unique<actors::invocation_engine>(std::move(opts), d.specs());
  // The configured dealers are the starting point; set_location changes them at run time,
  // and such a change outlives restarts until the file gives that location another number.
  d.with_leads([&](lead_connection& db) {
    db.journal().write([&] {
      for (const auto& dealer : cfg.leads.dealers)
        for (const auto& l : dealer.locations) {
          const auto in_force =
              db.leads.seed_location({dealer.id, dealer.name, l.id, l.name, l.phone});
          if (in_force != l.phone)
            spdlog::info(
                "leads: dealer {} location {} keeps {} (set at run time; the file says {})",
                dealer.id, l.id, in_force, l.phone);
        }
    });
  });
}

std::vector<child_spec> leads_job::children(const supervision_config& supervision) {
  return {impl_->services.engine->child(supervision)};
}

keyed_answer leads_job::invoke(const keyed_request& r) {
  auto& d = impl_->services;
  if (auto refused =
          impl_->refused_outside_running("the runtime is not started; call start() first",
                                         "the runtime is stopping; nothing was recorded"))
    return *refused;
  try {
    if (r.method == "GET")
      return d.get(r);
    if (r.service == "leads") {
      if (d.cfg.leads.proxy_numbers.empty())
        return error(404,
                     "web-to-text leads are not configured on this server: set leads.proxy_numbers "
                     "and leads.dealers");
      if (r.key.empty()) {
        // A repeated create with the same Idempotency-Key answers for the lead it created.
        std::string id;
        if (!r.idempotency_key.empty())
          d.with_leads([&](lead_connection& db) {
            if (auto n = db.journal().idempotent("leads", r.idempotency_key,
                                                 core::unix_millis_now() - 86'400'000))
              if (auto row = db.journal().invocation(*n))
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
        const auto n = d.engine
                           ->submit({"leads", r.key, "close", r.body.empty() ? "{}" : r.body,
                                     r.idempotency_key})
                           .first;
        return d.outcome_of(n, [&](const json::value&) {
          return d.lead_answer(r.key, 200, "inv-" + std::to_string(n));
        });
      }
      return error(404, "leads has no handler '" + r.handler +
                            "'; POST /v1/leads/{id}/submit or /v1/leads/{id}/close");
    }
    if (r.service == "dealers") {
      if (r.handler == "set_location")
        return d.set_location(r.key, r.body);
      return error(
          404, "dealers has no handler '" + r.handler + "'; POST /v1/dealers/{id}/set_location");
    }
    if (r.service == "form-leads" && r.key.empty())
      return d.form_lead(r.body, r.idempotency_key);
    if (r.service == "invocations") {
      auto n = invocation_number(r.key);
      if (!n)
        return error(404, "no invocation " + r.key + " (ids look like inv-12)");
      if (r.handler == "resume" || r.handler == "cancel") {
        // The whole chain: a caller parked on a parked callee only parks again when resumed
        // alone, and a cancelled caller would leave its callee parked.
        const bool resume = r.handler == "resume";
        const auto acted = resume ? d.engine->resume(*n) : d.engine->cancel(*n);
        if (acted.empty()) {
          auto v = d.engine->view(*n);
          if (!v)
            return error(404, "no invocation " + r.key + " (ids look like inv-12)");
          return error(409,
                       r.key + " is " + v->row.status +
                           " and nothing in its chain is parked (only parked invocations "
                           "can be resumed or cancelled)",
                       json::object{{"status", v->row.status}});
        }
        auto v = d.engine->view(*n);
        auto out = v ? invocation_json(*v) : json::value(json::object{});
        json::array ids;
        for (auto a : acted)
          ids.push_back(json::value("inv-" + std::to_string(a)));
        out.as_object()[resume ? "resumed" : "cancelled"] = std::move(ids);
        return answer(200, std::move(out));
      }
      return error(404, "invocations has no handler '" + r.handler + "'; use resume or cancel");
    }
    return error(404, "no handler " + r.handler + " for " + r.service);
  } catch (const std::exception& e) {
    spdlog::error("leads: {} /v1/{}/{}/{}: {}", r.method, r.service, r.key, r.handler, e.what());
    return error(503, std::string{"could not record the request: "} + e.what() +
                          " (nothing was done; send it again)");
  }
}

keyed_answer leads_job::conversations_webhook(
    const std::vector<std::pair<std::string, std::string>>& params, const std::string& signature) {
  auto& d = impl_->services;
  if (auto refused =
          impl_->refused_outside_running("the runtime is not running; nothing was recorded",
                                         "the runtime is not running; nothing was recorded"))
    return *refused;  // Twilio retries a webhook that fails
  const auto& auth_token = d.env->twilio_auth_token;
  if (auth_token.empty())
    return error(403,
                 "this server cannot check X-Twilio-Signature: TWILIO_AUTH_TOKEN is not set in its "
                 "environment");
  const auto url = d.webhook_url();
  if (signature.empty())
    return error(403, "missing X-Twilio-Signature: only Twilio may call this webhook");
  if (!d.outside.signed_by_twilio(auth_token, url, params, signature))
    return error(
        403,
        "X-Twilio-Signature does not match this request for " + core::redacted_url(url) +
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
    d.with_leads([&](lead_connection& db) {
      auto& s = db.leads;
      db.journal().write([&] {
        if (!s.record_inbound(message_sid, conversation_sid, author, rfc3339_now())) {
          duplicate = true;
          return;
        }
        auto conv = s.conversation_by_sid(conversation_sid);
        if (!conv)
          return;
        const auto body =
            json::serialize(json::object{{"message_sid", message_sid}, {"author", author}});
        for (const auto& lead : s.conversation_leads(conv->id, true))
          routed.emplace_back(lead, db.journal().create_invocation(
                                        {"leads", lead, "inbound", body, "inbound:" + message_sid},
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
    return answer(
        200, json::object{
                 {"status", "routed"}, {"message_sid", message_sid}, {"leads", std::move(ids)}});
  } catch (const std::exception& e) {
    // Not recorded: Twilio retries a webhook that fails.
    return error(503, std::string{"could not record the message: "} + e.what());
  }
}

json::value leads_job::status() const {
  const auto& engine = *impl_->services.engine;
  json::object ended;
  for (const auto& [k, v] : engine.counters())
    ended[k] = v;
  const auto& d = impl_->services;
  return json::object{
      {"active_entities", engine.active_entities()},
      {"invocations_ended", std::move(ended)},
      {"proxy_pool",
       json::object{{"total", d.cfg.leads.proxy_numbers.size()},
                    {"refused_full", d.pool_full_refusals.load(std::memory_order_relaxed)}}}};
}

std::size_t leads_job::active_entities() const { return impl_->services.engine->active_entities(); }

void leads_job::drain() {
  if (impl_->services.engine)
    impl_->services.engine->release_answers();  // requests waiting for a lead answer 202 now
}

void leads_job::stop() {
  if (impl_ && impl_->services.engine)
    impl_->services.engine->stop();
}

std::vector<ports::http_route> leads_job::routes() { return lead_routes(this); }

}  // namespace switchboard::jobs
