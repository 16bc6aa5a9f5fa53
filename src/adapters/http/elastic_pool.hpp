#pragma once

// A pool for jobs that may block: it starts a thread whenever a job arrives and none is free, up
// to `max_threads` (beyond that, jobs wait in order), and lets a thread that had nothing to do
// for `idle_exit` end, so an idle server holds only a few threads. The daemon's HTTP listener
// runs its handlers on one (a handler may wait for data to reach the disk). The Twilio
// emulator's cpp-httplib server gives it one job per connection (see emulator.cpp), which
// keeps its thread for the connection's kept-alive life: a fixed pool of N would make the N+1st
// client wait seconds, however idle the others are.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace switchboard::adapters::http {

class elastic_pool {
public:
  elastic_pool(std::size_t max_threads, std::size_t keep_threads,
               std::chrono::milliseconds idle_exit = std::chrono::seconds(30))
      : max_threads_(max_threads < 1 ? 1 : max_threads),
        keep_threads_(keep_threads),
        idle_exit_(idle_exit) {}
  elastic_pool(const elastic_pool&) = delete;
  elastic_pool& operator=(const elastic_pool&) = delete;
  ~elastic_pool() { shutdown(); }

  void enqueue(std::function<void()> fn) {
    std::vector<std::thread> ended;
    {
      std::lock_guard<std::mutex> guard{mu_};
      ended = take_ended();
      jobs_.push_back(std::move(fn));
      if (idle_ >= jobs_.size() || live_ >= max_threads_) {
        cv_.notify_one();
      } else {
        ++live_;
        std::thread t([this] { work(); });
        threads_.emplace(t.get_id(), std::move(t));
      }
    }
    for (auto& t : ended)
      t.join();  // already returned, or about to
  }

  void shutdown() {
    std::vector<std::thread> threads;
    {
      std::lock_guard<std::mutex> guard{mu_};
      if (stopped_)
        return;
      stopped_ = true;
      for (auto& [id, t] : threads_)
        threads.push_back(std::move(t));
      threads_.clear();
      ended_.clear();
    }
    cv_.notify_all();
    for (auto& t : threads)
      t.join();
  }

  /// Threads alive now (for figures and tests).
  std::size_t threads() const {
    std::lock_guard<std::mutex> guard{mu_};
    return live_;
  }

private:
  void work() {
    std::unique_lock<std::mutex> lock{mu_};
    for (;;) {
      ++idle_;
      const bool woke = cv_.wait_for(lock, idle_exit_, [&] { return stopped_ || !jobs_.empty(); });
      --idle_;
      if (stopped_ && jobs_.empty())
        break;
      if (!woke) {
        if (live_ > keep_threads_)
          break;  // idle too long, and more threads live than kept ready: end this one
        continue;
      }
      auto fn = std::move(jobs_.front());
      jobs_.pop_front();
      lock.unlock();
      fn();  // a whole connection: its requests, until it closes or idles out
      lock.lock();
    }
    --live_;
    if (!stopped_)
      ended_.push_back(std::this_thread::get_id());  // the next enqueue joins it
  }

  /// The threads that ended by themselves, out of `threads_`, to join. Under `mu_`.
  std::vector<std::thread> take_ended() {
    std::vector<std::thread> out;
    for (auto id : ended_) {
      auto it = threads_.find(id);
      if (it != threads_.end()) {
        out.push_back(std::move(it->second));
        threads_.erase(it);
      }
    }
    ended_.clear();
    return out;
  }

  const std::size_t max_threads_;
  const std::size_t keep_threads_;
  const std::chrono::milliseconds idle_exit_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  std::map<std::thread::id, std::thread> threads_;
  std::vector<std::thread::id> ended_;  // returned from work(), not yet joined
  std::size_t live_ = 0;                // threads started and not ended
  std::size_t idle_ = 0;                // of those, waiting for a job
  bool stopped_ = false;
};

}  // namespace switchboard::adapters::http
