#pragma once

// The emulator's webhook courier: delivers the webhooks the products raise, one at a time on
// its own thread, signed like Twilio's, and remembers how each delivery went. Internal.

#include "adapters/twilio/emulator_impl.hpp"
#include "adapters/twilio/signature.hpp"
#include "core/url.hpp"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace switchboard::adapters::twilio::internal {

constexpr auto webhook_timeout = std::chrono::seconds{5};  // Twilio's, for every webhook
constexpr std::size_t delivery_log_capacity = 1000;

/// Sends webhooks one at a time on its own thread, signed with the auth token, and remembers
/// how each went (GET /_emulator/state shows them).
class webhook_courier {
public:
  explicit webhook_courier(std::string auth_token) : token_(std::move(auth_token)) {}
  ~webhook_courier() { stop(); }

  void start() {
    std::lock_guard lock{mutex_};
    stopping_ = false;
    if (!thread_.joinable())
      thread_ = std::thread([this] { run(); });
  }

  void send(std::vector<webhook_call> calls) {
    if (calls.empty())
      return;
    {
      std::lock_guard lock{mutex_};
      for (auto& c : calls)
        queue_.push_back(std::move(c));
    }
    wake_.notify_one();
  }

  /// Drops what is queued and interrupts the delivery under way.
  void stop() {
    {
      std::lock_guard lock{mutex_};
      stopping_ = true;
      queue_.clear();
      if (current_ != nullptr)
        current_->stop();
    }
    wake_.notify_all();
    if (thread_.joinable())
      thread_.join();
  }

  json::array deliveries() const {
    std::lock_guard lock{mutex_};
    return deliveries_;
  }

private:
  void run() {
    std::unique_lock lock{mutex_};
    while (true) {
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_)
        return;
      auto next = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      auto outcome = deliver(next);
      lock.lock();
      if (deliveries_.size() >= delivery_log_capacity)
        deliveries_.erase(deliveries_.begin());
      deliveries_.push_back(std::move(outcome));
    }
  }

  json::object deliver(const webhook_call& call) {
    json::object outcome{{"event", call.event},
                         {"webhook_sid", call.webhook_sid},
                         {"url", call.url},
                         {"method", call.method}};
    const auto scheme_end = call.url.find("://");
    if (scheme_end == std::string::npos) {
      outcome["error"] = "not an absolute URL";
      return outcome;
    }
    const auto path_start = call.url.find('/', scheme_end + 3);
    const auto origin = call.url.substr(0, path_start);
    std::string target = path_start == std::string::npos ? "/" : call.url.substr(path_start);

    httplib::Client client{origin};
    client.set_tcp_nodelay(true);  // else the body waits out a delayed ACK of the headers (40 ms)
    client.set_connection_timeout(webhook_timeout);
    client.set_read_timeout(webhook_timeout);
    client.set_write_timeout(webhook_timeout);
    {
      std::lock_guard lock{mutex_};
      if (stopping_)
        return outcome;
      current_ = &client;
    }

    auto result = send_signed(client, call, target);
    {
      std::lock_guard lock{mutex_};
      current_ = nullptr;
    }
    if (result) {
      outcome["status"] = result->status;
    } else {
      outcome["error"] = httplib::to_string(result.error());
      spdlog::warn("twilio emulator: webhook {} to {} failed: {}", call.event,
                   core::redacted_url(call.url), httplib::to_string(result.error()));
    }
    return outcome;
  }

  httplib::Result send_signed(httplib::Client& client, const webhook_call& call,
                              std::string target) const {
    if (call.method == "GET") {
      // The parameters travel in the query string, so they are part of the signed URL.
      std::string query;
      for (const auto& [name, value] : call.params)
        query += (query.empty() ? "" : "&") + url_segment(name) + "=" + url_segment(value);
      const auto sep = target.find('?') == std::string::npos ? "?" : "&";
      const auto full_url = call.url + (query.empty() ? "" : sep + query);
      target += query.empty() ? "" : sep + query;
      httplib::Headers headers{{"X-Twilio-Signature", twilio_signature(token_, full_url, {})},
                               {"User-Agent", "TwilioProxy/1.1"}};
      return client.Get(target.c_str(), headers);
    }
    httplib::Params params;
    for (const auto& [name, value] : call.params)
      params.emplace(name, value);
    httplib::Headers headers{
        {"X-Twilio-Signature", twilio_signature(token_, call.url, call.params)},
        {"User-Agent", "TwilioProxy/1.1"}};
    return client.Post(target.c_str(), headers, params);
  }

  std::string token_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<webhook_call> queue_;
  bool stopping_ = false;
  httplib::Client* current_ = nullptr;
  json::array deliveries_;
  std::thread thread_;
};

}  // namespace switchboard::adapters::twilio::internal
