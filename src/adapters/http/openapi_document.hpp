#pragma once

// The OpenAPI 3.1 description of the daemon's HTTP API (api/openapi.json, compiled in), served
// at `GET /v1/openapi.json`; tests/adapters/http_openapi_test.cpp checks it against the routes.

#include <string_view>

namespace switchboard::adapters::http {

std::string_view openapi_document();

}  // namespace switchboard::adapters::http
