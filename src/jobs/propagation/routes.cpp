// The entity-state routes: rebuild, its progress, an entity's state, the propagation's figures.

#include "jobs/propagation/job.hpp"

#include <boost/json.hpp>

namespace switchboard::jobs {

namespace json = boost::json;
using ports::error_reply;
using ports::http_reply;
using ports::http_request;
using ports::json_reply;

namespace {

http_reply not_configured() {
  return error_reply(
      404,
      "entity-state propagation is not configured on this server: add `sources.amqp`, "
      "`targets` or `enrichment.lookups` to its configuration");
}

http_reply start_rebuild(propagation_job& job, const http_request& req) {
  std::string kind;
  std::string id;
  if (!req.body.empty()) {
    json::error_code ec;
    const auto body = json::parse(req.body, ec);
    const auto* obj = ec ? nullptr : body.if_object();
    auto text_member = [&](const char* name, std::string& out) {
      const auto* v = obj->if_contains(name);
      if (v == nullptr || v->is_null())
        return true;
      if (!v->is_string())
        return false;
      out.assign(v->get_string().data(), v->get_string().size());
      return true;
    };
    if (obj == nullptr || !text_member("kind", kind) || !text_member("id", id))
      return error_reply(
          400,
          "the body must be empty (rebuild everything) or a JSON object with optional "
          "string members \"kind\" and \"id\", e.g. {\"kind\": \"application\"}");
    for (const auto& member : *obj)
      if (member.key() != "kind" && member.key() != "id")
        return error_reply(400, "unknown member \"" + std::string(member.key()) +
                                    "\" in the rebuild request; allowed: \"kind\", \"id\"");
    if (!id.empty() && kind.empty())
      return error_reply(400, "an \"id\" needs its \"kind\": entity ids are unique per kind");
  }
  const auto rebuild_id = job.rebuild(kind, id);
  auto reply =
      json_reply(202, json::serialize(json::object{{"id", rebuild_id},
                                                   {"status_url", "/v1/rebuild/" + rebuild_id}}));
  reply.headers.emplace_back("Location", "/v1/rebuild/" + rebuild_id);
  return reply;
}

http_reply rebuild_progress_of(propagation_job& job, const http_request& req) {
  const auto progress = job.rebuild_status(req.matches[1]);
  if (!progress)
    return error_reply(404, "no rebuild with id " + req.matches[1] +
                                " (ids are kept in memory until the server restarts)");
  return json_reply(200, json::serialize(json::object{{"id", progress->id},
                                                      {"state", progress->state},
                                                      {"kind", progress->kind},
                                                      {"entity_id", progress->entity_id},
                                                      {"total", progress->total},
                                                      {"done", progress->done},
                                                      {"failed", progress->failed},
                                                      {"unchanged", progress->unchanged},
                                                      {"cause", progress->cause},
                                                      {"error", progress->error},
                                                      {"started_at", progress->started_at},
                                                      {"finished_at", progress->finished_at}}));
}

http_reply state_of(propagation_job& job, const http_request& req) {
  const auto& kind = req.matches[1];
  const auto& id = req.matches[2];
  const auto state = job.entity_state(kind, id);
  if (!state)
    return error_reply(404, "no state stored for " + kind + " " + id);
  return json_reply(200, json::serialize(*state));
}

}  // namespace

std::vector<ports::http_route> propagation_routes(propagation_job* job) {
  // Without the job every route answers how to turn it on.
  auto serve = [job](http_reply (*fn)(propagation_job&, const http_request&)) {
    return [job, fn](const http_request& req) {
      return job != nullptr ? fn(*job, req) : not_configured();
    };
  };
  return {
      {"POST", "/v1/rebuild", ports::route_access::bearer_token, serve(start_rebuild)},
      {"GET", R"(/v1/rebuild/([A-Za-z0-9_-]+))", ports::route_access::bearer_token,
       serve(rebuild_progress_of)},
      {"GET", R"(/v1/state/([^/]+)/([^/]+))", ports::route_access::bearer_token, serve(state_of)},
      {"GET", "/v1/propagation", ports::route_access::bearer_token,
       serve([](propagation_job& j, const http_request&) {
         return json_reply(200, json::serialize(j.status()));
       })},
  };
}

}  // namespace switchboard::jobs
