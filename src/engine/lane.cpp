#include "engine/lane.hpp"

#include "core/exception_text.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace switchboard::engine {

namespace {

// Which pool the current thread serves, for on_lane() and worker_index().
thread_local const lane_pool* current_pool = nullptr;
thread_local std::size_t current_index = lane_pool::npos;

}  // namespace

lane_pool::lane_pool(std::string name, std::size_t threads, on_stop policy)
    : name_(std::move(name)), policy_(policy) {
  const auto n = std::max<std::size_t>(threads, 1);
  threads_.reserve(n);
  try {
    for (std::size_t i = 0; i < n; ++i)
      threads_.emplace_back([this, i] { serve(i); });
  } catch (...) {
    stop();  // the threads already started must not outlive a failed constructor
    throw;
  }
}

lane_pool::~lane_pool() { stop(); }

bool lane_pool::post(task t) {
  {
    std::lock_guard<std::mutex> guard{mu_};
    if (!stopping_) {
      tasks_.push_back(std::move(t));
      wake_.notify_one();
      return true;
    }
  }
  return false;  // `t` goes here, outside the lock: its captures may do anything
}

void lane_pool::request_stop() {
  std::deque<task> dropped;
  {
    std::lock_guard<std::mutex> guard{mu_};
    stopping_ = true;
    if (policy_ == on_stop::drop)
      dropped.swap(tasks_);
  }
  wake_.notify_all();
  // `dropped` is destroyed here, outside the lock (a dropped run() fails its caller).
}

void lane_pool::stop() {
  if (on_lane())
    throw std::logic_error(name_ + ": stop() called from one of its own tasks");
  request_stop();
  std::lock_guard<std::mutex> guard{join_mu_};
  for (auto& t : threads_)
    if (t.joinable())
      t.join();
}

bool lane_pool::on_lane() const noexcept { return current_pool == this; }

std::size_t lane_pool::worker_index() noexcept { return current_index; }

void lane_pool::serve(std::size_t index) {
  current_pool = this;
  current_index = index;
  for (;;) {
    task next;
    {
      std::unique_lock<std::mutex> lock{mu_};
      wake_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty())
        return;  // stopping, and nothing left to drain (a drop emptied the queue)
      next = std::move(tasks_.front());
      tasks_.pop_front();
    }
    try {
      next();
    } catch (...) {
      spdlog::error("{}: a task failed: {}", name_, core::exception_text(std::current_exception()));
    }
  }
}

}  // namespace switchboard::engine
