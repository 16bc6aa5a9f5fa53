#pragma once

/// @file switchboard/keyed.hpp
/// Keyed requests (since 0.4): calls of durable keyed services, as `runtime::invoke` takes them.
///
/// Guarantees: a POST that runs a handler is recorded durably before it is answered (2xx or
/// 202 means it will run to its end, also across crashes); each step with an external effect
/// runs at most once to completion; one key runs one request at a time.

#include <boost/json/value.hpp>

#include <string>
#include <utility>
#include <vector>

namespace switchboard {

/// A call of the keyed-service API: `POST /v1/{service}/{key}/{handler}`,
/// `POST /v1/{service}` (a new key) or `GET /v1/{service}/{key}`. Services: `leads`, `dealers`,
/// `conversations`, `invocations`, `form-leads`.
struct keyed_request {
  std::string method = "POST";  ///< "GET" or "POST"
  std::string service;
  std::string key;              ///< "" = create with a new id (POST) or list (GET)
  std::string handler;          ///< "" for GET and for creates
  std::string body;             ///< JSON text ("" = {})
  std::string idempotency_key;  ///< the Idempotency-Key header: the same key within 24 h
                                ///< answers as the first call did, without running again
  std::string status_filter;    ///< GET /v1/invocations?status=
  /// Every query parameter, decoded (GET /v1/invocations?limit=&before=). Since 0.5.
  std::vector<std::pair<std::string, std::string>> query;
};

/// The answer to a keyed request: an HTTP status and a JSON body (errors carry `error`).
struct keyed_answer {
  int status = 200;
  boost::json::value body;
};

}  // namespace switchboard
