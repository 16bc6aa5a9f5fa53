// leads_bench --mode=http: the lead route as a user drives it, and as issue 15 compares it with
// a durable-execution server. Two child processes, as in production: `switchboard run` (the
// daemon, leads.db on --dir) and `switchboard twilio-emulator`; this process is only the load
// driver. --clients closed-loop clients (default 32), each on its own kept-alive connection,
// submit --leads leads (unique customer phones over --dealers dealers of one location each)
// with POST /v1/leads/{id}/submit and wait for the answer (201: the conversation is open on the
// emulator, every step on disk). --latency-ms adds that much to every emulator answer (a fault
// rule), to stand in for Twilio's own latency.
//
// Figures: leads/s, latency p50/p99/max, and CPU per lead of the daemon and of the emulator
// apart (from /proc/PID/stat over the run). Beside them the peer's figure as recorded in the
// issue (Restate 1.7 + a Node service on this machine, same emulator and driver): it is not run
// here, so the ratio is against that record.

#include "bench_util.hpp"

#include <httplib.h>
#include <boost/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#ifndef SWITCHBOARD_CLI_PATH
#define SWITCHBOARD_CLI_PATH "switchboard"
#endif

namespace leads_http {

namespace fs = std::filesystem;
namespace json = boost::json;
using bench::steady;

namespace {

/// A child process started with its stdout and stderr in `log`; stopped (SIGTERM, then
/// SIGKILL after 10 s) by PID when it goes out of scope.
class child {
public:
  child(const std::vector<std::string>& argv, const std::string& log) : log_(log) {
    // Emptied here, not only by the child: a "listening on" line left by an earlier run must
    // not be read as this one's.
    std::ofstream{log, std::ios::trunc};
    pid_ = ::fork();
    if (pid_ < 0)
      throw std::runtime_error(std::string{"fork: "} + std::strerror(errno));
    if (pid_ == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      std::vector<char*> args;
      for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execv(args[0], args.data());
      std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
      ::_exit(127);
    }
  }
  child(const child&) = delete;
  child& operator=(const child&) = delete;
  ~child() { stop(); }

  pid_t pid() const { return pid_; }

  /// The address after "listening on " in the child's log, waiting up to 20 s for it.
  std::string listening_address() {
    const auto until = steady::now() + std::chrono::seconds(20);
    while (steady::now() < until) {
      std::ifstream in(log_);
      std::string line;
      while (std::getline(in, line)) {
        const auto at = line.find("listening on ");
        if (at != std::string::npos)
          return line.substr(at + 13);
      }
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("the child exited before listening; see " + log_);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    throw std::runtime_error("the child did not say where it listens within 20 s; see " + log_);
  }

  /// User + system CPU seconds so far (all its threads).
  double cpu_seconds() const {
    std::ifstream in("/proc/" + std::to_string(pid_) + "/stat");
    std::string text;
    std::getline(in, text);              // one line
    const auto close = text.rfind(')');  // the command name may hold spaces
    if (close == std::string::npos)
      return 0;
    std::istringstream fields(text.substr(close + 2));
    std::string f;
    double utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> f; ++i) {
      if (i == 14)
        utime = std::stod(f);
      if (i == 15)
        stime = std::stod(f);
    }
    return (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
  }

  void stop() {
    if (pid_ <= 0)
      return;
    ::kill(pid_, SIGTERM);
    const auto until = steady::now() + std::chrono::seconds(10);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (steady::now() > until) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pid_ = -1;
  }

private:
  pid_t pid_ = -1;
  std::string log_;
};

std::string phone(std::uint64_t prefix, std::uint64_t n) {
  auto digits = std::to_string(n);
  return "+1" + std::to_string(prefix) +
         std::string(7 - std::min<std::size_t>(7, digits.size()), '0') + digits;
}

std::string daemon_config(const std::string& data_dir, const std::string& twilio_url,
                          std::size_t dealers, std::size_t proxies, std::size_t workers,
                          const std::string& policy, const std::string& log_level) {
  json::array numbers;
  for (std::size_t i = 0; i < proxies; ++i)
    numbers.emplace_back(phone(555020, i));
  json::array ds;
  for (std::size_t i = 0; i < dealers; ++i)
    ds.emplace_back(json::object{
        {"id", "D" + std::to_string(i)},
        {"name", "Dealer " + std::to_string(i)},
        {"locations", json::array{json::object{
                          {"id", "main"}, {"name", "Main"}, {"phone", phone(555030, i)}}}}});
  json::object leads{{"proxy_numbers", numbers},
                     {"reminder_after_ms", 0},
                     {"close_inactive_after_ms", 0},
                     {"answer_timeout_ms", 60000},
                     {"dealers", ds}};
  if (workers > 0)
    leads["workers"] = workers;
  json::object cfg{{"data_dir", data_dir},
                   {"http", json::object{{"host", "127.0.0.1"}, {"port", 0}}},
                   {"log", json::object{{"level", log_level}}},
                   {"twilio", json::object{{"base_url", twilio_url}}},
                   {"leads", leads}};
  if (!policy.empty())
    cfg["scheduler"] = json::object{{"policy", policy}};
  return json::serialize(cfg);
}

// The peer's figures as issue 15 records them (not measured here): 32 and 1 in flight.
struct peer_figure {
  double leads_per_s_low, leads_per_s_high, p99_ms_low, p99_ms_high;
};
constexpr peer_figure peer_32{106, 119, 1200, 1300};
constexpr peer_figure peer_1{43, 48, 0, 0};

}  // namespace

void run(const bench::args& a, const std::string& account_sid, const std::string& auth_token) {
  const auto leads = a.num<std::uint64_t>("leads", 1500);
  const auto clients = std::max<std::size_t>(a.num<std::size_t>("clients", 32), 1);
  const auto dealers = std::max<std::size_t>(a.num<std::size_t>("dealers", 50), 1);
  const auto proxies = a.num<std::size_t>("proxies", 64);
  const auto workers = a.num<std::size_t>("workers", 0);  // 0: the daemon's default
  const auto latency_ms = a.num<int>("latency-ms", 0);
  const auto cli = a.get("cli", SWITCHBOARD_CLI_PATH);
  const auto policy = a.get("policy", "");      // scheduler.policy; empty: the daemon's default
  const auto log_level = a.get("log", "warn");  // the daemon's log.level
  if ((leads + dealers - 1) / dealers > proxies)
    throw std::invalid_argument("--proxies: each location keeps all its leads open, so it needs " +
                                std::to_string((leads + dealers - 1) / dealers) + " numbers");

  std::string dir = a.get("dir", "");
  bool remove_dir = false;
  if (dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp && *tmp ? tmp : "/var/tmp") + "/leads_http_XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr)
      throw std::runtime_error("cannot create a scratch directory under " + pattern);
    dir = pattern;
    remove_dir = true;
  } else {
    fs::remove_all(fs::path{dir} / "data");
    fs::create_directories(dir);
  }
  const auto data_dir = (fs::path{dir} / "data").string();
  fs::create_directories(data_dir);

  child emulator({cli, "twilio-emulator", "--host", "127.0.0.1", "--port", "0", "--account-sid",
                  account_sid, "--auth-token", auth_token},
                 (fs::path{dir} / "emulator.log").string());
  const auto twilio_address = emulator.listening_address();
  const auto twilio_url = "http://" + twilio_address;
  if (latency_ms > 0) {
    httplib::Client c(twilio_url);
    c.set_basic_auth(account_sid, auth_token);
    const auto body = json::serialize(json::object{
        {"rules", json::array{json::object{{"route", "*"}, {"latency_ms", latency_ms}}}}});
    auto res = c.Post("/_emulator/faults", body, "application/json");
    if (!res || res->status / 100 != 2)
      throw std::runtime_error("the emulator refused the latency rule: " +
                               (res ? res->body : httplib::to_string(res.error())));
  }
  const auto config_path = (fs::path{dir} / "switchboard.json").string();
  {
    std::ofstream out(config_path);
    out << daemon_config(data_dir, twilio_url, dealers, proxies, workers, policy, log_level);
  }
  const std::string api_token = "leads-bench-api-token";
  ::setenv("SWITCHBOARD_API_TOKEN", api_token.c_str(), 1);
  child daemon({cli, "run", "--config", config_path}, (fs::path{dir} / "daemon.log").string());
  const auto address = daemon.listening_address();
  const httplib::Headers auth{{"Authorization", "Bearer " + api_token}};

  std::atomic<std::uint64_t> next{0}, opened{0}, other{0};
  std::mutex mu;
  std::vector<double> latencies;
  std::string first_other;
  const double daemon_cpu0 = daemon.cpu_seconds(), emulator_cpu0 = emulator.cpu_seconds();
  const auto t0 = steady::now();
  std::vector<std::thread> threads;
  for (std::size_t c = 0; c < clients; ++c)
    threads.emplace_back([&] {
      httplib::Client cl("http://" + address);
      cl.set_keep_alive(true);
      // As curl and browsers do: else each POST's body waits for the ACK of its headers, which
      // the daemon delays by 40 ms (Nagle against delayed ACK), a wait that is the driver's own.
      cl.set_tcp_nodelay(true);
      cl.set_read_timeout(120, 0);
      std::vector<double> mine;
      for (auto n = next++; n < leads; n = next++) {
        const auto body =
            json::serialize(json::object{{"customer_name", "Customer " + std::to_string(n)},
                                         {"customer_phone", phone(555040, n)},
                                         {"dealer_id", "D" + std::to_string(n % dealers)},
                                         {"location_id", "main"},
                                         {"message", "Is the car still available?"}});
        const auto started = steady::now();
        auto res = cl.Post(("/v1/leads/H" + std::to_string(n) + "/submit").c_str(), auth, body,
                           "application/json");
        mine.push_back(bench::seconds_between(started, steady::now()) * 1000);
        if (res && res->status == 201) {
          ++opened;
        } else {
          ++other;
          std::lock_guard<std::mutex> guard{mu};
          if (first_other.empty())
            first_other = (res ? std::to_string(res->status) + " " + res->body
                               : httplib::to_string(res.error())) +
                          " after " + bench::num(mine.back()) + " ms";
        }
      }
      std::lock_guard<std::mutex> guard{mu};
      latencies.insert(latencies.end(), mine.begin(), mine.end());
    });
  for (auto& t : threads)
    t.join();
  const auto secs = bench::seconds_between(t0, steady::now());
  const double daemon_cpu = daemon.cpu_seconds() - daemon_cpu0;
  const double emulator_cpu = emulator.cpu_seconds() - emulator_cpu0;
  daemon.stop();
  emulator.stop();
  if (remove_dir)
    fs::remove_all(dir);

  const double rate = static_cast<double>(opened) / secs;
  const double p50 = bench::quantile(latencies, 0.5), p99 = bench::quantile(latencies, 0.99);
  const double max = latencies.empty() ? 0 : *std::max_element(latencies.begin(), latencies.end());
  const auto done = static_cast<double>(std::max<std::uint64_t>(opened + other, 1));
  const auto& peer = clients == 1 ? peer_1 : peer_32;
  const bool peer_known = clients == 1 || clients == 32;
  const double peer_mid = (peer.leads_per_s_low + peer.leads_per_s_high) / 2;
  auto line = bench::json_line();
  line.str("bench", "leads")
      .str("mode", "http")
      .number("clients", static_cast<double>(clients))
      .number("leads", static_cast<double>(leads))
      .number("dealers", static_cast<double>(dealers))
      .number("emulator_latency_ms", latency_ms)
      .number("opened", static_cast<double>(opened))
      .number("other_answers", static_cast<double>(other))
      .number("seconds", secs)
      .number("leads_per_s", rate)
      .number("p50_ms", p50)
      .number("p99_ms", p99)
      .number("max_ms", max)
      .number("daemon_cpu_ms_per_lead", daemon_cpu * 1000 / done)
      .number("emulator_cpu_ms_per_lead", emulator_cpu * 1000 / done)
      .number("loadavg1", bench::loadavg1());
  if (peer_known && latency_ms == 0) {
    line.number("peer_leads_per_s_low", peer.leads_per_s_low)
        .number("peer_leads_per_s_high", peer.leads_per_s_high)
        .number("ratio_leads_per_s_vs_peer_mid", rate / peer_mid);
    if (peer.p99_ms_high > 0)
      line.number("peer_p99_ms_low", peer.p99_ms_low)
          .number("peer_p99_ms_high", peer.p99_ms_high)
          .number("ratio_p99_vs_peer_mid", p99 / ((peer.p99_ms_low + peer.p99_ms_high) / 2));
  }
  line.print();
  std::cerr << "leads over HTTP, " << clients << " clients, emulator +" << latency_ms
            << " ms: " << opened << " opened";
  if (other > 0)
    std::cerr << ", " << other << " other (first: " << first_other.substr(0, 200) << ")";
  std::cerr << " in " << bench::num(secs) << " s = " << bench::num(rate) << " leads/s; p50 "
            << bench::num(p50) << " ms, p99 " << bench::num(p99) << " ms, max " << bench::num(max)
            << " ms; CPU per lead: daemon " << bench::num(daemon_cpu * 1000 / done)
            << " ms, emulator " << bench::num(emulator_cpu * 1000 / done) << " ms";
  if (peer_known && latency_ms == 0)
    std::cerr << "; peer (recorded in issue 15, not run here) " << bench::num(peer.leads_per_s_low)
              << "-" << bench::num(peer.leads_per_s_high) << " leads/s: ratio "
              << bench::num(rate / peer_mid);
  std::cerr << "\n";
}

}  // namespace leads_http
