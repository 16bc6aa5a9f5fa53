// The lead routes: keyed services under /v1/ (behind the API token) and Twilio's conversation
// webhook (signed by Twilio instead).

#include "jobs/leads/job.hpp"

#include "core/form.hpp"
#include "core/media_type.hpp"

#include <boost/json.hpp>

#include <optional>

namespace switchboard::jobs {

namespace json = boost::json;
using ports::error_reply;
using ports::http_reply;
using ports::http_request;
using ports::route_access;

namespace {

http_reply reply_of(const keyed_answer& a) {
  auto reply = ports::json_reply(a.status, json::serialize(a.body));
  // An answer that says when to try again says it in the header HTTP clients read, too.
  if (const auto* o = a.body.if_object())
    if (const auto* after = o->if_contains("retry_after_s"); after != nullptr && after->is_int64())
      reply.headers.emplace_back("Retry-After", std::to_string(after->get_int64()));
  return reply;
}

/// The lead routes read JSON: a body in another media type (text/plain, a form) is refused
/// before anything is recorded. No body at all is fine (close, resume, cancel take none).
std::optional<http_reply> refused_media_type(const http_request& req) {
  if (req.body.empty())
    return std::nullopt;
  const auto content_type = req.header("Content-Type");
  if (core::has_media_type(content_type, "application/json"))
    return std::nullopt;
  return error_reply(
      415, (content_type.empty() ? std::string{"the request has no Content-Type"}
                                 : "Content-Type '" + content_type + "' is not accepted") +
               ": send the body as JSON with Content-Type: application/json "
               "(application/json; charset=utf-8 is fine)");
}

keyed_request request_of(const http_request& req, std::string service, std::string key,
                         std::string handler) {
  keyed_request r;
  r.method = req.method;
  r.service = std::move(service);
  r.key = std::move(key);
  r.handler = std::move(handler);
  r.body = req.body;
  r.idempotency_key = req.header("Idempotency-Key");
  r.status_filter = req.param("status");
  r.query = req.params;
  return r;
}

}  // namespace

std::vector<ports::http_route> lead_routes(leads_job* job) {
  auto run = [job](const keyed_request& r) {
    if (job == nullptr)
      return error_reply(
          404,
          "lead conversations and form leads are not configured on this server: set "
          "leads.proxy_numbers and leads.dealers, or a form_leads URL, in its configuration");
    return reply_of(job->invoke(r));
  };
  const std::string services = "(leads|dealers|conversations|invocations|form-leads)";
  return {
      // Twilio signs its webhooks; a bearer token is not what it sends.
      {"POST", "/v1/webhooks/twilio/conversations", route_access::open,
       [job](const http_request& req) {
         if (job == nullptr)
           return error_reply(404, "lead conversations are not configured on this server");
         if (!core::has_media_type(req.header("Content-Type"), "application/x-www-form-urlencoded"))
           return error_reply(
               415, "Twilio's conversation webhooks are application/x-www-form-urlencoded");
         return reply_of(job->conversations_webhook(core::parse_form(req.body),
                                                    req.header("X-Twilio-Signature")));
       }},
      {"POST", "/v1/(leads|form-leads)", route_access::bearer_token,
       [run](const http_request& req) {
         if (auto refused = refused_media_type(req))
           return *refused;
         return run(request_of(req, req.matches[1], "", ""));
       }},
      {"POST", "/v1/" + services + "/([^/]+)/([A-Za-z_-]+)", route_access::bearer_token,
       [run](const http_request& req) {
         if (auto refused = refused_media_type(req))
           return *refused;
         return run(request_of(req, req.matches[1], req.matches[2], req.matches[3]));
       }},
      {"GET", "/v1/invocations", route_access::bearer_token,
       [run](const http_request& req) { return run(request_of(req, "invocations", "", "")); }},
      {"GET", "/v1/" + services + "/([^/]+)", route_access::bearer_token,
       [run](const http_request& req) {
         return run(request_of(req, req.matches[1], req.matches[2], ""));
       }},
  };
}

}  // namespace switchboard::jobs
