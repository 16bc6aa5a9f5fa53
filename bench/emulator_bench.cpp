// emulator_bench: what one Conversations request costs the Twilio emulator when a run has left
// --conversations=20000 behind, against an empty emulator. Each phase starts a fresh in-process
// emulator, fills it (every conversation with a unique name, an SMS participant and timers, as
// the leads leave them), then times --requests=500 of each kind over one keep-alive loopback
// connection: create a conversation, add an SMS participant to it, fetch it by unique name,
// find the customer with ParticipantConversations?Address=, and an inbound SMS to its binding.
// Prints per-request microseconds for both sizes and their ratio (1 = independent of what is
// left behind).

#include "bench_util.hpp"

#include "adapters/twilio/emulator.hpp"

#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace twilio = switchboard::adapters::twilio;

namespace {

constexpr const char* account_sid = "AC0123456789abcdef0123456789abcdef";
constexpr const char* auth_token = "emulator-bench-token";
constexpr const char* proxy_number = "+15550000000";

std::string customer(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "+1666%07d", i);
  return buf;
}

void expect(const httplib::Result& r, int status, const char* what) {
  if (!r || r->status != status)
    throw std::runtime_error(
        std::string{what} + ": expected " + std::to_string(status) + ", got " +
        (r ? std::to_string(r->status) + " " + r->body : httplib::to_string(r.error())));
}

/// The SID in a JSON answer (the first "sid" field), without a JSON parse.
std::string sid_of(const std::string& body) {
  const auto at = body.find("\"sid\":\"");
  if (at == std::string::npos)
    throw std::runtime_error("no sid in " + body);
  return body.substr(at + 7, 34);
}

/// One conversation as a lead leaves it: a unique name, timers, one SMS participant.
std::string add_lead(httplib::Client& c, int i) {
  auto r = c.Post("/conversations/v1/Conversations",
                  httplib::Params{{"UniqueName", "lead-" + std::to_string(i)},
                                  {"FriendlyName", "lead"},
                                  {"Timers.Inactive", "PT1H"},
                                  {"Timers.Closed", "P1D"}});
  expect(r, 201, "create conversation");
  const auto sid = sid_of(r->body);
  r = c.Post("/conversations/v1/Conversations/" + sid + "/Participants",
             httplib::Params{{"MessagingBinding.Address", customer(i)},
                             {"MessagingBinding.ProxyAddress", proxy_number}});
  expect(r, 201, "add participant");
  return sid;
}

using op_times = std::map<std::string, double>;  ///< op -> microseconds per request

op_times measure(int existing, int requests) {
  twilio::emulator_options o;
  o.account_sid = account_sid;
  o.auth_token = auth_token;
  twilio::emulator emu{o};
  emu.start();
  httplib::Client c{emu.base_url()};
  c.set_basic_auth(account_sid, auth_token);
  c.set_keep_alive(true);
  c.set_tcp_nodelay(true);  // else each POST waits out a delayed ACK (40 ms)
  c.set_read_timeout(std::chrono::seconds{60});

  const auto fill_start = bench::steady::now();
  for (int i = 0; i < existing; ++i)
    add_lead(c, i);
  std::fprintf(stderr, "  filled %d conversations in %.1f s\n", existing,
               bench::seconds_between(fill_start, bench::steady::now()));

  op_times out;
  auto time = [&](const char* op, const std::function<void(int)>& one) {
    const auto start = bench::steady::now();
    for (int k = 0; k < requests; ++k)
      one(existing + k);
    out[op] = bench::seconds_between(start, bench::steady::now()) * 1e6 / requests;
  };
  std::vector<std::string> sids(static_cast<std::size_t>(existing + requests));
  time("create_conversation", [&](int i) {
    auto r = c.Post("/conversations/v1/Conversations",
                    httplib::Params{{"UniqueName", "lead-" + std::to_string(i)},
                                    {"Timers.Inactive", "PT1H"},
                                    {"Timers.Closed", "P1D"}});
    expect(r, 201, "create conversation");
    sids[static_cast<std::size_t>(i)] = sid_of(r->body);
  });
  time("add_sms_participant", [&](int i) {
    expect(c.Post("/conversations/v1/Conversations/" + sids[static_cast<std::size_t>(i)] +
                      "/Participants",
                  httplib::Params{{"MessagingBinding.Address", customer(i)},
                                  {"MessagingBinding.ProxyAddress", proxy_number}}),
           201, "add participant");
  });
  time("fetch_by_unique_name", [&](int i) {
    expect(c.Get("/conversations/v1/Conversations/lead-" + std::to_string(i)), 200,
           "fetch conversation");
  });
  time("participant_conversations", [&](int i) {
    expect(c.Get("/conversations/v1/ParticipantConversations?Address=%2B" + customer(i).substr(1)),
           200, "ParticipantConversations");
  });
  time("inbound_sms", [&](int i) {
    expect(c.Post("/_emulator/inbound-sms",
                  httplib::Params{{"From", customer(i)}, {"To", proxy_number}, {"Body", "hi"}}),
           201, "inbound SMS");
  });
  emu.stop();
  return out;
}

}  // namespace

int main(int argc, char** argv) try {
  bench::args a{argc, argv};
  if (a.has("help")) {
    std::fprintf(stderr, "emulator_bench [--conversations=20000] [--requests=500]\n");
    return 0;
  }
  const auto existing = a.num<int>("conversations", 20000);
  const auto requests = a.num<int>("requests", 500);
  std::fprintf(stderr, "emulator_bench: load average %.2f\n", bench::loadavg1());

  std::fprintf(stderr, "empty emulator:\n");
  const auto empty = measure(0, requests);
  std::fprintf(stderr, "%d conversations left behind:\n", existing);
  const auto full = measure(existing, requests);

  std::fprintf(stderr, "%-26s %12s %12s %8s\n", "us per request", "0",
               std::to_string(existing).c_str(), "ratio");
  for (const auto& [op, us] : empty) {
    const auto us_full = full.at(op);
    bench::json_line j;
    j.str("bench", "emulator")
        .str("op", op)
        .number("requests", requests)
        .number("us_per_request_empty", us)
        .number("conversations", existing)
        .number("us_per_request_full", us_full)
        .number("ratio", us_full / us);
    j.print();
    std::fprintf(stderr, "%-26s %12.1f %12.1f %8.2f\n", op.c_str(), us, us_full, us_full / us);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "emulator_bench: %s\n", e.what());
  return 1;
}
