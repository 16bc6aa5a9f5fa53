#pragma once

// The HTTP routes a job serves, as plain data: the HTTP adapter registers them with its server
// and answers them, so a job owns its endpoints without knowing the server library. Adding an
// endpoint is one entry in the job's routes.cpp.

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace switchboard::ports {

/// One request as a route sees it.
struct http_request {
  std::string method;
  std::string path;
  std::string body;
  std::vector<std::string> matches;  ///< the pattern's groups; [0] is the whole path
  std::function<std::string(const std::string& name)> header;  ///< "" when absent
  std::function<std::string(const std::string& name)> param;   ///< query parameter, "" when absent
  std::vector<std::pair<std::string, std::string>> headers;    ///< every header, as received
  std::vector<std::pair<std::string, std::string>> params;     ///< every query parameter, decoded
  std::string request_id;  ///< the X-Request-Id the answer carries (for logs)
};

/// What a route answers.
struct http_reply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
};

/// Who may call a route.
enum class route_access {
  bearer_token,  ///< `Authorization: Bearer $SWITCHBOARD_API_TOKEN` (everything under /v1/)
  open,          ///< no token: the route checks its own credentials (e.g. Twilio's signature)
};

struct http_route {
  std::string method;   ///< "GET", "POST", "DELETE"
  std::string pattern;  ///< an ECMAScript regex over the whole path, e.g. `/v1/state/([^/]+)`
  route_access access = route_access::bearer_token;
  std::function<http_reply(const http_request&)> handle;
};

/// A JSON answer, ending with a newline: `curl URL` then leaves the shell's prompt on a line
/// of its own, and line-oriented tools read the answer as one line.
inline http_reply json_reply(int status, std::string body) {
  http_reply r;
  r.status = status;
  r.body = std::move(body);
  if (!r.body.empty() && r.body.back() != '\n')
    r.body += '\n';
  return r;
}

/// `{"error": why}`: how every route names what was wrong.
inline http_reply error_reply(int status, const std::string& why) {
  return json_reply(status, boost::json::serialize(boost::json::object{{"error", why}}));
}

}  // namespace switchboard::ports
