// The lead routes: keyed services under /v1/ (behind the API token) and Twilio's conversation
// webhook (signed by Twilio instead).

#include "jobs/leads/job.hpp"

#include "core/form.hpp"

#include <boost/json.hpp>

namespace switchboard::jobs {

namespace json = boost::json;
using ports::error_reply;
using ports::http_reply;
using ports::http_request;
using ports::route_access;

namespace {

http_reply reply_of(const keyed_answer& a) {
  return ports::json_reply(a.status, json::serialize(a.body));
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
         if (req.header("Content-Type").rfind("application/x-www-form-urlencoded", 0) != 0)
           return error_reply(
               415, "Twilio's conversation webhooks are application/x-www-form-urlencoded");
         return reply_of(job->conversations_webhook(core::parse_form(req.body),
                                                    req.header("X-Twilio-Signature")));
       }},
      {"POST", "/v1/(leads|form-leads)", route_access::bearer_token,
       [run](const http_request& req) { return run(request_of(req, req.matches[1], "", "")); }},
      {"POST", "/v1/" + services + "/([^/]+)/([A-Za-z_-]+)", route_access::bearer_token,
       [run](const http_request& req) {
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
