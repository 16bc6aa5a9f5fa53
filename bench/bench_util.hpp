#pragma once

// Small helpers shared by the bench programs: argument parsing, statistics, CPU and load
// readings, JSON number formatting. Header-only; nothing here is switchboard-specific.

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace bench {

using steady = std::chrono::steady_clock;

inline double seconds_between(steady::time_point a, steady::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

/// `--name=value` arguments; `get` returns the default when absent, throws on a bad number.
class args {
public:
  args(int argc, char** argv) : items_(argv + 1, argv + argc) {}

  bool has(std::string_view name) const {
    for (const auto& a : items_)
      if (a == "--" + std::string(name))
        return true;
    return false;
  }
  std::string get(std::string_view name, std::string fallback) const {
    const std::string prefix = "--" + std::string(name) + "=";
    for (const auto& a : items_)
      if (a.rfind(prefix, 0) == 0)
        return a.substr(prefix.size());
    return fallback;
  }
  template <class T>
  T num(std::string_view name, T fallback) const {
    auto text = get(name, "");
    if (text.empty())
      return fallback;
    char* end = nullptr;
    double v = std::strtod(text.c_str(), &end);
    if (end == text.c_str() || *end != '\0' || v < 0)
      throw std::invalid_argument("--" + std::string(name) +
                                  ": not a non-negative number: " + text);
    return static_cast<T>(v);
  }

private:
  std::vector<std::string> items_;
};

/// The q-quantile (0..1) of `v` by the nearest-rank method; sorts `v`.
inline double quantile(std::vector<double>& v, double q) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
  rank = std::clamp<std::size_t>(rank, 1, v.size());
  return v[rank - 1];
}

inline double median(std::vector<double> v) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  auto n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/// CPU seconds (user + system) the whole process has used so far.
inline double process_cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

/// The 1-minute load average, or -1 if unreadable.
inline double loadavg1() {
  std::ifstream in("/proc/loadavg");
  double v = -1;
  in >> v;
  return v;
}

/// Per thread of this process (from /proc/self/task/TID/schedstat): nanoseconds run on a
/// CPU and nanoseconds spent runnable but waiting for one.
struct thread_times {
  long tid = 0;
  std::uint64_t run_ns = 0;
  std::uint64_t wait_ns = 0;
};

inline std::vector<thread_times> thread_cpu_ns() {
  std::vector<thread_times> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    std::ifstream in(entry.path() / "schedstat");
    thread_times t;
    if (in >> t.run_ns >> t.wait_ns) {
      t.tid = std::stol(entry.path().filename().string());
      out.push_back(t);
    }
  }
  return out;
}

/// A JSON number: integers without a fraction, others with 6 significant digits.
inline std::string num(double v) {
  if (!std::isfinite(v))
    return "null";
  char buf[64];
  if (std::fabs(v) >= 1000 || std::fabs(v - std::round(v)) < 1e-9)
    std::snprintf(buf, sizeof buf, "%.0f", v);  // rates, counts, microseconds >= 1000
  else
    std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

inline std::string num_list(const std::vector<double>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i)
    s += (i ? "," : "") + num(v[i]);
  return s + "]";
}

/// Builds one JSON object line: `json_line j; j.str("bench","x").num("v",1); j.print();`.
class json_line {
public:
  json_line& str(std::string_view key, std::string_view value) {
    field(key);
    body_ += '"';
    for (char c : value) {
      if (c == '"' || c == '\\')
        body_ += '\\';
      body_ += c;
    }
    body_ += '"';
    return *this;
  }
  json_line& number(std::string_view key, double value) {
    field(key);
    body_ += num(value);
    return *this;
  }
  json_line& raw(std::string_view key, std::string_view json) {
    field(key);
    body_ += json;
    return *this;
  }
  void print() const {
    std::printf("{%s}\n", body_.c_str());
    std::fflush(stdout);
  }

private:
  void field(std::string_view key) {
    if (!body_.empty())
      body_ += ',';
    body_ += '"';
    body_ += key;
    body_ += "\":";
  }
  std::string body_;
};

}  // namespace bench
