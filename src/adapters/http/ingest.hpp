#pragma once

// `POST /v1/events`: turns an HTTP request into events (CloudEvents HTTP binding: structured,
// binary and batch mode), publishes them, and builds the answer once every accepted event is
// durable. Knows nothing of cpp-httplib, so the whole path is plain data in, plain data out.

#include "switchboard/event.hpp"
#include "switchboard/journal.hpp"
#include "switchboard/publish.hpp"

#include <boost/json/array.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace switchboard::adapters::http {

/// One item of an ingest request: a decoded event, or why it was rejected.
struct ingest_item {
  std::optional<event> value;
  std::string id;      ///< the item's id when it had a readable one (also for rejections)
  std::string reason;  ///< why it was rejected, when there is no value
};

/// What an ingest request holds: its items in order, or why the request as a whole is unusable
/// (`error_status` is then 400 or 415 and `error` says what to change).
struct ingest_request {
  std::vector<ingest_item> items;
  bool batch = false;
  int error_status = 0;
  std::string error;
};

/// A header as received: name (any case) and value.
using header_list = std::vector<std::pair<std::string, std::string>>;

/// Decodes a `POST /v1/events` request by its content mode:
/// - `application/cloudevents-batch+json`: a JSON array, each item decoded on its own;
/// - `application/cloudevents+json`, or `application/json` without `ce-specversion`: one event
///   in structured mode;
/// - a `ce-specversion` header with a JSON body: binary mode, attributes from `ce-*` headers
///   (percent-decoded), the body as `data`, `Content-Type` as `datacontenttype`.
ingest_request decode_ingest(std::string_view content_type, const header_list& headers,
                             std::string_view body, const codec_limits& limits);

/// Publishes one event and reports once it is durable (or failed); see
/// `runtime::publish_async`.
using publish_hook = std::function<void(
    event, std::function<void(const publish_receipt*, const std::string& error)>)>;

/// An HTTP answer: status, JSON body and, for 503, the Retry-After seconds.
struct ingest_answer {
  int status = 200;
  std::string body;
  std::optional<int> retry_after;
};

/// Publishes the request's valid items, waits until every one is durable or failed (at most
/// `timeout`), and answers: 200 when every item was stored (accepted or duplicate), 207 when
/// some were stored and some rejected, 400 when none was stored because all were rejected or
/// the document was unusable, 415 for an unsupported content type, 503 with Retry-After when
/// the journal did not store them (nothing is acknowledged then; sending again is safe,
/// stored events come back as duplicates).
ingest_answer ingest(ingest_request request, const publish_hook& publish,
                     std::chrono::milliseconds timeout);

/// `GET /v1/events`: the page's events and unreadable rows in sequence order; an unreadable
/// row is `{"journalsequence", "unreadable": true, "reason", "source", "id", "type",
/// "entitykind", "entityid"}` (what its columns say), so that a reader can page past it.
boost::json::array journal_page_json(const journal_page& page);

}  // namespace switchboard::adapters::http
