// propagation_bench: entity-state propagation end to end, in one process, over loopback.
//
// A real runtime (journal, durable "switchboard.state" subscription, SQL enrichment from a
// SQLite file with cache-aside, state.db, one Sync document writer) publishes to switchboard's
// Twilio emulator over HTTP on 127.0.0.1 (rate limits on: 20 writes/s per document).
//
//   latency   events for distinct entities offered at a fixed rate (default 10k/s for 5 s)
//             through runtime::publish_async; for each, the time from the publish call to the
//             emulator's answer to the write of that entity's document. Each entity gets one
//             event, so every event costs one Sync write: an update of a document created
//             before the run (the steady state of a deployment; new documents cost one more
//             request, the update's 404, before the create).
//
// Prints one JSON object per line on stdout, a summary on stderr. Options (--name=value):
//   --rate=10000 --seconds=5 --managers=100 (distinct account managers: cache hit ratio)
//   --partitions=2 --concurrency=8 (the writer's parallel requests) --threads=2 (CAF
//   scheduler threads) --policy=sharing|stealing (CAF scheduler; default: the config's)
//   --dir=PATH --keep

#include "bench_util.hpp"

#include "adapters/twilio/client.hpp"
#include "adapters/twilio/emulator.hpp"
#include "switchboard/config.hpp"
#include "switchboard/event.hpp"
#include "switchboard/runtime.hpp"

#include <SQLiteCpp/SQLiteCpp.h>
#include <httplib.h>
#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace switchboard;
using bench::steady;

namespace {

constexpr const char* account_sid = "AC00000000000000000000000000000b01";
constexpr const char* auth_token = "propagation-bench-token";

std::string make_dir(const std::string& given) {
  if (!given.empty()) {
    fs::create_directories(given);
    return given;
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/propagation_bench_XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr)
    throw std::runtime_error("cannot create a scratch directory under " + pattern);
  return pattern;
}

void make_crm(const std::string& path, int managers) {
  SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  db.exec("CREATE TABLE account_managers (id TEXT PRIMARY KEY, name TEXT NOT NULL, phone TEXT)");
  SQLite::Transaction tx(db);
  SQLite::Statement insert(db, "INSERT INTO account_managers VALUES (?, ?, ?)");
  for (int i = 0; i < managers; ++i) {
    insert.bind(1, "AM-" + std::to_string(i));
    insert.bind(2, "Manager " + std::to_string(i));
    insert.bind(3, "+1555010" + std::to_string(1000 + i));
    insert.exec();
    insert.reset();
  }
  tx.commit();
}

/// Creates documents bench-0 .. bench-(n-1) with `threads` clients, so that the measured writes
/// are updates of existing documents (the steady state of a deployment).
void precreate(const std::string& base, const std::string& service, std::uint64_t n, int threads) {
  std::vector<std::thread> workers;
  std::atomic<std::uint64_t> next{0};
  std::atomic<std::uint64_t> failed{0};
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&] {
      adapters::twilio::client_options o;
      o.base_url = base;
      adapters::twilio::client c(o);
      for (auto i = next++; i < n; i = next++)
        if (!c.create_document(service, "bench-" + std::to_string(i),
                               json::object{{"status", "new"}}))
          ++failed;
    });
  for (auto& w : workers)
    w.join();
  if (failed > 0)
    throw std::runtime_error(std::to_string(failed.load()) + " documents could not be created");
}

}  // namespace

int main(int argc, char** argv) try {
  bench::args a(argc, argv);
  const double rate = a.num("rate", 10000.0);
  const double seconds = a.num("seconds", 5.0);
  const int managers = a.num("managers", 100);
  const std::size_t partitions = a.num<std::size_t>("partitions", 2);
  const std::size_t concurrency = a.num<std::size_t>("concurrency", 8);
  const bool keep = a.has("keep");
  const std::string dir = make_dir(a.get("dir", ""));
  spdlog::set_level(spdlog::level::warn);
  ::setenv("TWILIO_ACCOUNT_SID", account_sid, 1);
  ::setenv("TWILIO_AUTH_TOKEN", auth_token, 1);

  const auto n = static_cast<std::uint64_t>(rate * seconds);
  std::vector<steady::time_point> published(n);
  std::vector<double> latency_us;
  latency_us.reserve(n);
  std::mutex mu;
  std::atomic<std::uint64_t> written{0};
  std::atomic<std::uint64_t> too_many{0};
  std::atomic<std::uint64_t> requests{0};
  std::atomic<bool> published_all{false};

  adapters::twilio::emulator_options eo;
  eo.account_sid = account_sid;
  eo.auth_token = auth_token;
  eo.on_answer = [&](const std::string& method, const std::string& path, int status) {
    requests.fetch_add(1, std::memory_order_relaxed);
    if (status == 429)
      too_many.fetch_add(1, std::memory_order_relaxed);
    if (method != "POST" || (status != 200 && status != 201))
      return;
    const auto at = path.rfind("/bench-");
    if (at == std::string::npos)
      return;
    const auto i = std::strtoull(path.c_str() + at + 7, nullptr, 10);
    const auto now = steady::now();
    if (i < n) {
      std::lock_guard<std::mutex> g{mu};
      latency_us.push_back(std::chrono::duration<double, std::micro>(now - published[i]).count());
    }
    written.fetch_add(1, std::memory_order_relaxed);
  };
  adapters::twilio::emulator emu(eo);
  emu.start();
  std::string service;
  {
    // The client adapter makes no Sync services (switchboard never does); ask the emulator
    // directly.
    httplib::Client http(emu.base_url());
    http.set_basic_auth(account_sid, auth_token);
    auto res = http.Post("/sync/v1/Services", httplib::Params{{"FriendlyName", "bench"}});
    if (!res || res->status != 201)
      throw std::runtime_error("cannot create a Sync service on the emulator");
    service = std::string(json::parse(res->body).at("sid").as_string());
  }
  const auto t_pre = steady::now();
  precreate(emu.base_url(), service, n, 4);
  std::cerr << "propagation: " << n << " documents created in "
            << bench::seconds_between(t_pre, steady::now()) << " s\n";
  make_crm(dir + "/crm.db", managers);

  config cfg;
  cfg.data_dir = dir + "/data";
  cfg.http.enabled = false;
  cfg.enrichment.database = dir + "/crm.db";
  lookup_config l;
  l.name = "manager";
  l.entity_kind = "application";
  l.sql = "SELECT name, phone FROM account_managers WHERE id = ?";
  l.params = {"accountManagerId"};
  l.into = "accountManager";
  cfg.enrichment.lookups.push_back(l);
  cfg.state.partitions = partitions;
  cfg.scheduler.max_threads = a.num<std::size_t>("threads", cfg.scheduler.max_threads);
  if (a.get("policy", "") == "stealing")
    cfg.scheduler.policy = scheduler_config::policy_kind::stealing;
  else if (a.get("policy", "") == "sharing")
    cfg.scheduler.policy = scheduler_config::policy_kind::sharing;
  target_config t;
  t.name = "documents";
  t.type = target_config::kind::sync_document;
  t.entity_kind = "application";
  t.service = service;
  t.document = "bench-{id}";
  t.fields = {{"status", "status"}, {"manager", "accountManager.name"}};
  t.concurrency = concurrency;
  cfg.targets.push_back(t);
  cfg.twilio.base_url = emu.base_url();

  runtime rt(cfg);
  rt.start();
  // A plain subscriber beside the state pipeline: the bus's own share of the latency.
  std::vector<double> bus_us;
  bus_us.reserve(n);
  std::mutex bus_mu;
  rt.subscribe("*", [&](const event& ev) {
    const auto i = std::strtoull(ev.entity_id.c_str(), nullptr, 10);
    const auto now = steady::now();
    std::lock_guard<std::mutex> g{bus_mu};
    if (i < n)
      bus_us.push_back(std::chrono::duration<double, std::micro>(now - published[i]).count());
  });

  const auto cpu0 = bench::process_cpu_seconds();
  const auto start = steady::now();
  const auto interval = std::chrono::duration<double>(1.0 / rate);
  std::atomic<std::uint64_t> acked{0};
  for (std::uint64_t i = 0; i < n; ++i) {
    const auto due =
        start + std::chrono::duration_cast<steady::duration>(interval * static_cast<double>(i));
    if (steady::now() < due)
      std::this_thread::sleep_until(due);
    event ev;
    ev.id = "bench-" + std::to_string(i);
    ev.source = "bench/propagation";
    ev.type = "application.status_changed";
    ev.entity_kind = "application";
    ev.entity_id = std::to_string(i);
    ev.entity_version = 1;
    ev.data = json::object{{"status", "submitted"},
                           {"accountManagerId", "AM-" + std::to_string(i % managers)}};
    published[i] = steady::now();
    rt.publish_async(std::move(ev),
                     [&acked](const publish_receipt*, const std::string&) { acked.fetch_add(1); });
  }
  const auto offered_end = steady::now();
  published_all = true;
  const auto deadline = steady::now() + std::chrono::seconds(120);
  while (written.load() < n && steady::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const auto end = steady::now();
  const auto cpu1 = bench::process_cpu_seconds();
  const auto status = rt.propagation_status();
  rt.stop();
  emu.stop();

  std::vector<double> lat;
  {
    std::lock_guard<std::mutex> g{mu};
    lat = latency_us;
  }
  const double achieved = static_cast<double>(n) / bench::seconds_between(start, offered_end);
  const double p50 = bench::quantile(lat, 0.50);
  const double p99 = bench::quantile(lat, 0.99);
  const double pmax = lat.empty() ? 0 : lat.back();
  std::vector<double> bus;
  {
    std::lock_guard<std::mutex> g{bus_mu};
    bus = bus_us;
  }
  const double bus_p50 = bench::quantile(bus, 0.50);
  const double bus_p99 = bench::quantile(bus, 0.99);
  bench::json_line j;
  j.str("bench", "propagation")
      .str("phase", "latency")
      .number("events", static_cast<double>(n))
      .number("offered_per_s", rate)
      .number("achieved_per_s", achieved)
      .number("written", static_cast<double>(written.load()))
      .number("latency_p50_us", p50)
      .number("latency_p99_us", p99)
      .number("latency_max_us", pmax)
      .number("bus_p50_us", bus_p50)
      .number("bus_p99_us", bus_p99)
      .number("emulator_requests", static_cast<double>(requests.load()))
      .number("http_429", static_cast<double>(too_many.load()))
      .number("drain_s", bench::seconds_between(offered_end, end))
      .number("cpu_s", cpu1 - cpu0)
      .number("load1", bench::loadavg1())
      .raw("propagation", json::serialize(status));
  j.print();
  std::cerr << "propagation: " << n << " events offered at " << rate << "/s (achieved " << achieved
            << "/s); written " << written.load() << "; publish -> Sync write p50 " << p50 / 1000
            << " ms, p99 " << p99 / 1000 << " ms, max " << pmax / 1000
            << " ms (publish -> a plain subscriber: p50 " << bus_p50 / 1000 << " ms, p99 "
            << bus_p99 / 1000 << " ms); " << requests.load() << " emulator requests, "
            << too_many.load() << " 429s; cpu " << (cpu1 - cpu0) << " s\n";
  if (!keep)
    fs::remove_all(dir);
  return written.load() == n ? 0 : 1;
} catch (const std::exception& e) {
  std::cerr << "propagation_bench: " << e.what() << "\n";
  return 2;
}
