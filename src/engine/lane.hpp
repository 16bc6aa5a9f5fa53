#pragma once

// Lanes: dedicated threads serving a FIFO queue of tasks, for the blocking I/O (SQLite, the
// Twilio HTTP client, rabbitmq-c) that must never run on a CAF scheduler thread. An actor posts
// a task and gets its result back as a message (the task sends it); a plain thread may instead
// `run` a closure and wait for it.
//
// - `lane`: one thread. Tasks run one at a time, in the order they were posted.
// - `lane_pool`: N threads sharing one queue. Tasks start in post order, each on the first
//   free thread, so they may finish out of order; `worker_index()` tells a task which thread
//   it is on, for per-thread resources (a connection per runner).
//
// Stopping: `request_stop()` refuses further posts (post returns false and destroys the task
// unrun) and, under `on_stop::drop` (the default), forgets the queued tasks; under
// `on_stop::drain` the threads run what is queued first. `stop()` (also the destructor) does
// that and joins: it returns once the running tasks (and, draining, the queue) are done. A
// task that throws is logged; the thread goes on with the next.

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace switchboard::engine {

/// What a stop does with the tasks still queued (the running ones always finish).
enum class on_stop {
  drop,   ///< forget them; a `run` waiting for one throws lane_stopped
  drain,  ///< run them all before the threads end
};

/// Thrown by `run` when its closure was refused (the lane is stopping) or dropped unrun.
class lane_stopped : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

class lane_pool {
public:
  using task = std::function<void()>;

  /// Starts `threads` threads (at least 1). `name` appears in the logs of failed tasks.
  lane_pool(std::string name, std::size_t threads, on_stop policy = on_stop::drop);
  ~lane_pool();  ///< stop()
  lane_pool(const lane_pool&) = delete;
  lane_pool& operator=(const lane_pool&) = delete;

  /// Queues `t`; thread-safe. False (and `t` destroyed unrun, on this thread) once a stop was
  /// requested.
  bool post(task t);

  /// Runs `fn` on one of the threads and waits: returns its result or rethrows its exception.
  /// Throws lane_stopped if the lane refused or dropped it. Called from one of this pool's
  /// own threads it runs `fn` at once, in place (waiting behind the queue would deadlock).
  template <class F>
  std::invoke_result_t<std::decay_t<F>&> run(F&& fn);

  /// Refuses posts from now on and, under on_stop::drop, forgets the queued tasks. Does not
  /// wait; idempotent.
  void request_stop();

  /// request_stop(), then waits for the threads to end. Idempotent and thread-safe. Throws
  /// std::logic_error when called from a task of this pool (a thread cannot join itself).
  void stop();

  /// True on the threads of this pool.
  bool on_lane() const noexcept;

  /// The calling thread's index (0 to size() - 1) in the pool it belongs to; `npos` on a
  /// thread of no pool.
  static std::size_t worker_index() noexcept;
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

  std::size_t size() const noexcept { return threads_.size(); }
  const std::string& name() const noexcept { return name_; }

private:
  void serve(std::size_t index);

  const std::string name_;
  const on_stop policy_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<task> tasks_;
  bool stopping_ = false;
  std::mutex join_mu_;                // stop() may be called from several threads at once
  std::vector<std::thread> threads_;  // last: started once the queue exists
};

/// One thread: tasks run one at a time, in post order.
class lane final : public lane_pool {
public:
  explicit lane(std::string name, on_stop policy = on_stop::drop)
      : lane_pool(std::move(name), 1, policy) {}
};

// --- run ------------------------------------------------------------------------------------

namespace detail {

/// The promise of one `run`; whoever destroys it unfulfilled (a dropped task) fails the wait.
template <class F, class R>
struct lane_call {
  explicit lane_call(F f) : fn(std::move(f)) {}
  ~lane_call() {
    if (!fulfilled)
      result.set_exception(
          std::make_exception_ptr(lane_stopped("the lane stopped before running the call")));
  }
  lane_call(const lane_call&) = delete;
  lane_call& operator=(const lane_call&) = delete;

  void operator()() {
    fulfilled = true;
    try {
      if constexpr (std::is_void_v<R>) {
        fn();
        result.set_value();
      } else {
        result.set_value(fn());
      }
    } catch (...) {
      result.set_exception(std::current_exception());
    }
  }

  F fn;
  std::promise<R> result;
  bool fulfilled = false;
};

}  // namespace detail

template <class F>
std::invoke_result_t<std::decay_t<F>&> lane_pool::run(F&& fn) {
  using R = std::invoke_result_t<std::decay_t<F>&>;
  if (on_lane())
    return fn();
  auto call = std::make_shared<detail::lane_call<std::decay_t<F>, R>>(std::forward<F>(fn));
  auto answer = call->result.get_future();
  // The task holds the only other reference: dropped unrun, it fails `answer`.
  post([call = std::move(call)] { (*call)(); });
  return answer.get();
}

}  // namespace switchboard::engine
