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
#include <memory>
#include <mutex>
#include <optional>
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
  ~lane_pool();  ///< stop(); so never destroy a pool from one of its own tasks
  lane_pool(const lane_pool&) = delete;
  lane_pool& operator=(const lane_pool&) = delete;

  /// Queues `t`; thread-safe. False (and `t` destroyed unrun, on this thread) once a stop was
  /// requested.
  bool post(task t);

  /// Runs `fn` on one of the threads and waits: returns its result (a value, not a reference)
  /// or rethrows its exception. Throws lane_stopped if the lane refused or dropped it. Called from
  /// one of this pool's own threads it runs `fn` at once, in place (waiting behind the queue would
  /// deadlock).
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

/// Where a `run` waits: on the caller's stack, filled by the lane under the mutex (so the
/// caller, not the lane, drops the last reference to a thrown exception).
template <class R>
struct lane_answer {
  void finish() {
    std::lock_guard<std::mutex> guard{mu};
    ready = true;
    cv.notify_one();  // under the lock: the caller may return (and free this) once it is free
  }
  R get() {
    std::unique_lock<std::mutex> lock{mu};
    cv.wait(lock, [&] { return ready; });
    if (error)
      std::rethrow_exception(error);
    if constexpr (!std::is_void_v<R>)
      return std::move(*value);
  }

  std::mutex mu;
  std::condition_variable cv;
  bool ready = false;
  std::exception_ptr error;
  std::conditional_t<std::is_void_v<R>, bool, std::optional<R>> value{};
};

/// One `run` as a task; shared by the task's copies. Destroyed without having run (dropped,
/// or refused by post), it answers lane_stopped.
template <class F, class R>
struct lane_call {
  lane_call(F& f, lane_answer<R>& a) : fn(f), answer(a) {}
  ~lane_call() {
    if (ran)
      return;
    answer.error = std::make_exception_ptr(lane_stopped("the lane stopped before the call ran"));
    answer.finish();
  }
  lane_call(const lane_call&) = delete;
  lane_call& operator=(const lane_call&) = delete;

  void operator()() {
    ran = true;
    try {
      if constexpr (std::is_void_v<R>)
        fn();
      else
        answer.value.emplace(fn());
    } catch (...) {
      answer.error = std::current_exception();
    }
    answer.finish();  // the last touch: the caller's frame may be gone right after
  }

  F& fn;
  lane_answer<R>& answer;
  bool ran = false;
};

}  // namespace detail

template <class F>
std::invoke_result_t<std::decay_t<F>&> lane_pool::run(F&& fn) {
  using R = std::invoke_result_t<std::decay_t<F>&>;
  static_assert(!std::is_reference_v<R>, "lane_pool::run returns values; return a copy");
  if (on_lane())
    return fn();
  detail::lane_answer<R> answer;
  auto call = std::make_shared<detail::lane_call<std::remove_reference_t<F>, R>>(fn, answer);
  post([call = std::move(call)] { (*call)(); });  // refused, the call answers at once
  return answer.get();
}

}  // namespace switchboard::engine
