#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

namespace switchboard::internal {

/// Runs the runtime's blocking CAF calls (scoped actors, creating and destroying the actor
/// system) on one thread of its own. CAF 0.17 hangs in ~actor_system when the system is
/// destroyed on another thread than the one that used scoped actors (or spawned detached
/// actors), and a host may call start(), subscribe() and stop() from any threads.
class control_thread {
public:
  control_thread() : thread_([this] { loop(); }) {}
  ~control_thread() {
    {
      std::lock_guard<std::mutex> guard{mu_};
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  /// Runs `fn` on the control thread and waits for it; rethrows what it throws.
  void run(const std::function<void()>& fn) {
    if (std::this_thread::get_id() == thread_.get_id()) {
      fn();
      return;
    }
    std::packaged_task<void()> task{fn};
    auto done = task.get_future();
    {
      std::lock_guard<std::mutex> guard{mu_};
      tasks_.push_back(std::move(task));
    }
    cv_.notify_one();
    done.get();
  }

private:
  void loop() {
    for (;;) {
      std::packaged_task<void()> task;
      {
        std::unique_lock<std::mutex> lock{mu_};
        cv_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
        if (tasks_.empty())
          return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::packaged_task<void()>> tasks_;
  bool stopping_ = false;
  std::thread thread_;
};

} // namespace switchboard::internal
